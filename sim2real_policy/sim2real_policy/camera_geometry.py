"""Camera geometry from 3D-2D correspondences: the projection matrix and its inverse on planes.

A 3 x 4 projection matrix ``proj`` maps base-frame points to pixels. It is fitted by the direct
linear transform (Hartley-normalized) and refined on the reprojection error with SciPy; it
needs no intrinsics, so it absorbs whatever the image pipeline does to the frame (crop, zoom,
rotation about the centre are affine maps of the image and compose into ``proj``). Six or more
points that are not coplanar determine it.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.optimize import least_squares


class GeometryError(ValueError):
    """Correspondences that cannot determine the camera."""


def project(proj: np.ndarray, points) -> np.ndarray:
    """Pixels (N x 2) of base-frame points (N x 3)."""
    points = np.atleast_2d(np.asarray(points, float))
    homogeneous = np.hstack([points, np.ones((len(points), 1))]) @ proj.T
    return homogeneous[:, :2] / homogeneous[:, 2:3]


def camera_pose(proj: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The camera a projection is: intrinsics ``K``, centre and orientation.

    ``K`` is 3 x 3 (px), the centre (m) and the orientation (a quaternion ``(x, y, z, w)``)
    are in the base frame. The orientation is the optical frame's (REP-103: z along the view,
    x to the image's right, y down), so a static transform base -> camera shows the camera in
    RViz or Foxglove. ``K`` is in the pixels ``proj`` maps to (the processed image's).
    """
    from scipy.spatial.transform import Rotation

    proj = np.asarray(proj, float)
    if not proj.shape == (3, 4) or not np.all(np.isfinite(proj)):
        raise GeometryError(f'a projection is 3 x 4 finite numbers, got {proj.tolist()!r}')
    if abs(np.linalg.det(proj[:, :3])) < 1e-12:
        raise GeometryError('the projection is singular: it is no camera')
    # a projection is defined up to scale, its sign included: the sign that puts points in
    # front of the camera at positive depth makes the decomposition a proper rotation
    proj = proj * np.sign(np.linalg.det(proj[:, :3]))
    intrinsics, rotation, centre = cv2.decomposeProjectionMatrix(proj)[:3]
    signs = np.diag(np.sign(np.diag(intrinsics)))   # a positive focal length and aspect
    intrinsics, rotation = intrinsics @ signs, signs @ rotation
    position = centre[:3, 0] / centre[3, 0]
    quaternion = Rotation.from_matrix(rotation.T).as_quat()   # camera axes in the base frame
    return intrinsics / intrinsics[2, 2], position, quaternion


def _normalizer(points: np.ndarray) -> np.ndarray:
    """Similarity that moves ``points`` to their centroid and scales to mean distance sqrt(d)."""
    d = points.shape[1]
    centre = points.mean(axis=0)
    scale = np.sqrt(d) / max(1e-12, np.mean(np.linalg.norm(points - centre, axis=1)))
    norm = np.eye(d + 1)
    norm[:d, :d] *= scale
    norm[:d, d] = -scale * centre
    return norm


def fit_projection(world, pixels) -> tuple[np.ndarray, float]:
    """``(proj, rms_px)``: the projection matrix through the correspondences, and its residual."""
    world = np.asarray(world, float)
    pixels = np.asarray(pixels, float)
    _check(world, pixels)
    norm_w, norm_p = _normalizer(world), _normalizer(pixels)
    w = (np.hstack([world, np.ones((len(world), 1))]) @ norm_w.T)
    p = (np.hstack([pixels, np.ones((len(pixels), 1))]) @ norm_p.T)
    rows = []
    for (xw, yw, zw, ww), (u, v, _) in zip(w, p):
        point = np.array([xw, yw, zw, ww])
        rows.append(np.concatenate([point, np.zeros(4), -u * point]))
        rows.append(np.concatenate([np.zeros(4), point, -v * point]))
    _, _, vt = np.linalg.svd(np.asarray(rows))
    proj = np.linalg.inv(norm_p) @ vt[-1].reshape(3, 4) @ norm_w
    proj /= np.linalg.norm(proj)

    def residual(flat):
        return (project(flat.reshape(3, 4), world) - pixels).ravel()

    proj = least_squares(residual, proj.ravel(), method='lm').x.reshape(3, 4)
    proj /= np.linalg.norm(proj) * np.sign(proj[2, 3] if proj[2, 3] else 1.0)
    rms = float(np.sqrt(np.mean(np.sum((project(proj, world) - pixels) ** 2, axis=1))))
    return proj, rms


def fit_pinhole(world, pixels, size, fovy_deg: float) -> tuple[np.ndarray, float]:
    """``(P, rms_px)`` of a centred pinhole camera through the correspondences.

    ``size`` is the image's (width, height) in pixels, ``fovy_deg`` the nominal vertical
    field of view (the start of the focal length's fit).
    """
    world = np.ascontiguousarray(world, float)     # cv2 refuses strided views
    pixels = np.ascontiguousarray(pixels, float)
    _check(world, pixels)
    width, height = size
    focal = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)

    def camera(x):
        intrinsics = np.array([[x[0], 0.0, centre[0]], [0.0, x[0], centre[1]], [0, 0, 1.0]])
        rotation, _ = cv2.Rodrigues(x[1:4])
        return intrinsics @ np.hstack([rotation, x[4:7, None]])

    nominal = np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0, 0, 1.0]])
    found, rvec, tvec, _ = cv2.solvePnPRansac(world, pixels, nominal, None,
                                              reprojectionError=3.0, iterationsCount=200,
                                              flags=cv2.SOLVEPNP_ITERATIVE)
    if not found:
        raise GeometryError('solvePnP found no camera pose for the correspondences')
    start = np.concatenate([[focal], rvec.ravel(), tvec.ravel()])
    # Huber loss: a detection or two far off (the TCP half out of the frame, hidden by a
    # patch) must not drag the camera; the caller drops them and fits again.
    fitted = least_squares(lambda x: (project(camera(x), world) - pixels).ravel(), start,
                           loss='huber', f_scale=1.0).x
    proj = camera(fitted)
    rms = float(np.sqrt(np.mean(np.sum((project(proj, world) - pixels) ** 2, axis=1))))
    return proj, rms


def _check(world: np.ndarray, pixels: np.ndarray) -> None:
    if world.shape[0] != pixels.shape[0] or world.shape[0] < 6:
        raise GeometryError(f'need at least 6 correspondences, got {len(world)}')
    if not (np.all(np.isfinite(world)) and np.all(np.isfinite(pixels))):
        raise GeometryError('correspondences must be finite')
    centred = world - world.mean(axis=0)
    if np.linalg.svd(centred, compute_uv=False)[-1] < 1e-3 * np.sqrt(len(world)):
        raise GeometryError('the 3D points are (nearly) coplanar: the camera is undetermined')


def pixel_to_plane(proj: np.ndarray, pixel, z: float) -> np.ndarray:
    """The base-frame point ``(x, y, z)`` on the horizontal plane at ``z`` seen at ``pixel``."""
    homography = np.stack([proj[:, 0], proj[:, 1], proj[:, 2] * z + proj[:, 3]], axis=1)
    x, y, w = np.linalg.solve(homography, np.array([pixel[0], pixel[1], 1.0]))
    return np.array([x / w, y / w, z])


def height_on_vertical(proj: np.ndarray, xy, pixel) -> float:
    """The height ``z`` of the point above ``(x, y)`` that best projects onto ``pixel``."""
    a, b = [], []
    for row, coordinate in ((0, pixel[0]), (1, pixel[1])):
        line = proj[row] - coordinate * proj[2]          # line . (x, y, z, 1) = 0
        a.append(line[2])
        b.append(line[0] * xy[0] + line[1] * xy[1] + line[3])
    a, b = np.asarray(a), np.asarray(b)
    return float(-(a @ b) / (a @ a))
