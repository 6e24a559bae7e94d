"""Camera geometry: the projection fitted from correspondences, and its inverse on planes."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from sim2real_policy.camera_geometry import (
    fit_projection,
    GeometryError,
    height_on_vertical,
    pixel_to_plane,
    project,
)
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.robot import GripperSim

GRID = np.array([[x, y, z] for x in (0.42, 0.55, 0.68) for y in (-0.15, 0.15)
                 for z in (0.14, 0.26)])


def camera(offset=(0.0, 0.0, 0.0), tilt=0.0, zoom=1.0, roll_deg=0.0):
    """A projection matrix built from first principles (not by the code under test)."""
    position = np.array([1.12, 0.0, 0.52]) + offset
    forward = np.array([0.52, 0.0, 0.08]) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    c, s = math.cos(tilt), math.sin(tilt)
    forward, up = c * forward + s * up, c * up - s * forward
    rot = np.stack([right, -up, forward])            # camera x right, y down, z forward
    f = 0.5 * 96 / math.tan(math.radians(22.5)) * zoom
    intr = np.array([[f, 0, 47.5], [0, f, 47.5], [0, 0, 1.0]])
    a = math.radians(roll_deg)
    roll = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    centre = np.array([[1, 0, -47.5], [0, 1, -47.5], [0, 0, 1]])
    intr = np.linalg.inv(centre) @ roll @ centre @ intr
    return intr @ np.hstack([rot, -rot @ position[:, None]])


@settings(max_examples=40, deadline=None)
@given(st.tuples(*[st.floats(-0.03, 0.03)] * 3), st.floats(-0.05, 0.05), st.floats(1.0, 1.2),
       st.floats(-5.0, 5.0))
def test_the_fitted_projection_reproduces_the_camera(offset, tilt, zoom, roll):
    proj_true = camera(offset, tilt, zoom, roll)
    proj, rms = fit_projection(GRID, project(proj_true, GRID))
    assert rms < 1e-6
    table = np.array([[0.5, 0.1, 0.0], [0.62, -0.08, 0.03], [0.47, 0.0, -0.04]])
    assert np.allclose(project(proj, table), project(proj_true, table), atol=1e-6)


def test_the_calibration_grid_keeps_detection_noise_to_millimetres_on_the_table():
    # The procedure's grid (low beside the objects, high above): 0.3 px of detection noise on
    # every point must leave the table mapping within a few millimetres.
    from sim2real_policy.cell_calibration import CellCalibrationConfig, grid_targets

    grid = np.array(grid_targets(CellCalibrationConfig(), 0.01))[:, :3]
    rng = np.random.default_rng(3)
    proj_true = camera((0.02, -0.02, 0.015), 0.03)
    errors = []
    for _ in range(100):
        pixels = project(proj_true, grid) + rng.normal(0.0, 0.3, (len(grid), 2))
        proj, _ = fit_projection(grid, pixels)
        point = np.array([rng.uniform(0.46, 0.64), rng.uniform(-0.12, 0.12), 0.01])
        back = pixel_to_plane(proj, project(proj_true, point)[0], 0.01)
        errors.append(np.linalg.norm(back - point))
    assert np.percentile(errors, 95) < 0.004


@settings(max_examples=60, deadline=None)
@given(st.floats(0.40, 0.70), st.floats(-0.2, 0.2), st.floats(-0.05, 0.05),
       st.floats(0.0, 0.08))
def test_a_pixel_goes_back_to_its_point_on_the_plane_and_vertical(x, y, z, rise):
    proj = camera((0.01, -0.02, 0.0), 0.02)
    point = np.array([x, y, z])
    assert np.allclose(pixel_to_plane(proj, project(proj, point)[0], z), point, atol=1e-9)
    above = point + (0, 0, rise)
    assert height_on_vertical(proj, (x, y), project(proj, above)[0]) == pytest.approx(z + rise,
                                                                                abs=1e-9)


@pytest.mark.parametrize('world, message', [
    (GRID[:5], 'at least 6'),
    (GRID * [1, 1, 0], 'coplanar'),
    (np.where(GRID == GRID[0, 0], np.nan, GRID), 'finite'),
])
def test_correspondences_that_cannot_determine_the_camera_are_refused(world, message):
    with pytest.raises(GeometryError, match=message):
        fit_projection(world, project(camera(), np.nan_to_num(world))[:len(world)])


def test_the_fitted_camera_agrees_with_the_simulators_projection():
    # The simulator's own pinhole (GripperSim.project, privileged) against a fit of it.
    with GripperSim(SimParams(camera_offset=(0.02, -0.02, 0.015), camera_tilt=0.03),
                    settle_s=0.0) as sim:
        pixels = np.array([sim.project(p) for p in GRID])
        proj, rms = fit_projection(GRID, pixels)
        probe = np.array([0.55, 0.05, 0.02])
        assert rms < 1e-6
        assert np.allclose(project(proj, probe)[0], sim.project(probe), atol=1e-6)


def test_the_fitted_projection_decomposes_into_the_simulators_camera():
    # K, centre and optical-frame orientation of a fit, against the simulated camera's own
    from scipy.spatial.transform import Rotation

    from sim2real_policy.camera_geometry import camera_pose
    with GripperSim(SimParams(camera_offset=(0.02, -0.02, 0.015), camera_tilt=0.03),
                    settle_s=0.0) as sim:
        proj, _ = fit_projection(GRID, np.array([sim.project(p) for p in GRID]))
        cam = sim.model.camera('scene').id
        position = sim.data.cam_xpos[cam].copy()
        axes = sim.data.cam_xmat[cam].reshape(3, 3)   # MuJoCo: right, up, backward
    for sign in (1.0, -1.0):   # the fit's scale may come with either sign
        intrinsics, centre, quaternion = camera_pose(sign * proj)
        optical = Rotation.from_quat(quaternion).as_matrix()
        assert np.allclose(centre, position, atol=1e-5)
        assert np.allclose(optical, np.column_stack([axes[:, 0], -axes[:, 1], -axes[:, 2]]),
                           atol=1e-5)
        focal = 48.0 / np.tan(np.radians(45.0) / 2)
        assert np.allclose(intrinsics, [[focal, 0, 48], [0, focal, 48], [0, 0, 1]], atol=1e-3)
    with pytest.raises(GeometryError, match='singular'):
        camera_pose(np.zeros((3, 4)))


def test_a_camera_moved_with_its_aim_translates_without_turning():
    # A knocked camera: every point shifts in the image by about f * 2 cm / depth, where a
    # camera moved alone re-aims at the same target, which stays put in the image.
    from sim2real_policy.sim.scene import CAMERA_TARGET

    target = np.asarray(CAMERA_TARGET)
    shift = (0.0, 0.02, 0.0)
    with GripperSim(SimParams(), settle_s=0.0) as sim:
        before = np.array(sim.project(target))
    with GripperSim(SimParams(camera_offset=shift), settle_s=0.0) as sim:
        re_aimed = np.array(sim.project(target))
    with GripperSim(SimParams(camera_offset=shift, camera_aim_offset=shift),
                    settle_s=0.0) as sim:
        knocked = np.array(sim.project(target))
        moved_back = np.array(sim.project(target + shift))
    assert np.allclose(re_aimed, before, atol=1e-6)
    assert 2.5 < np.linalg.norm(knocked - before) < 4.0     # 116 px * 0.02 m / 0.74 m
    assert np.allclose(moved_back, before, atol=1e-6)       # the same view, translated


@settings(max_examples=30, deadline=None)
@given(st.tuples(*[st.floats(-0.03, 0.03)] * 3), st.floats(-0.05, 0.05), st.floats(1.0, 1.2),
       st.floats(-5.0, 5.0))
def test_the_pinhole_fit_reproduces_a_zoomed_and_rolled_camera(offset, tilt, zoom, roll):
    from sim2real_policy.camera_geometry import fit_pinhole

    proj_true = camera(offset, tilt, zoom, roll)
    proj, rms = fit_pinhole(GRID, project(proj_true, GRID), (96, 96), 45.0)
    assert rms < 1e-4
    table = np.array([[0.5, 0.1, 0.0], [0.62, -0.08, 0.03], [0.47, 0.0, -0.04]])
    assert np.allclose(project(proj, table), project(proj_true, table), atol=1e-3)


def test_the_pinhole_fit_halves_the_cost_of_detection_noise():
    from sim2real_policy.camera_geometry import fit_pinhole
    from sim2real_policy.cell_calibration import CellCalibrationConfig, grid_targets

    grid = np.array(grid_targets(CellCalibrationConfig(), 0.0))[:, :3]
    rng = np.random.default_rng(5)
    general, pinhole = [], []
    for _ in range(60):
        proj_true = camera(rng.uniform(-0.03, 0.03, 3), rng.uniform(-0.05, 0.05),
                           rng.uniform(1.0, 1.2), rng.uniform(-5, 5))
        pixels = project(proj_true, grid) + rng.normal(0.0, 0.5, (len(grid), 2))
        point = np.array([rng.uniform(0.46, 0.64), rng.uniform(-0.12, 0.12), 0.0])
        seen = project(proj_true, point)[0]
        for fit, errors in ((fit_projection(grid, pixels)[0], general),
                            (fit_pinhole(grid, pixels, (96, 96), 45.0)[0], pinhole)):
            errors.append(np.linalg.norm(pixel_to_plane(fit, seen, 0.0) - point))
    assert np.mean(pinhole) < 0.75 * np.mean(general)
