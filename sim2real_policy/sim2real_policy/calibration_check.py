"""Does the cell file still fit the live cell? The fingertips, seen against where it puts them.

At commissioning the fingertips are seen once more at a check pose (the suite's home): the
cell file keeps that pixel and the TCP measured there (``check_points``). Every inference of
the keypoint policy finds the TCP in the frame; with the stage at rest near a check point
(no latency between frame and reading to blur the comparison), the residual is the live
pixel against the commissioned one, moved by the projection's own difference between the
two measured TCPs. The keypoint network's bias at that pose is in both and cancels; what is
left is the camera. A file without check points (commissioned before the check) is not
checked: the policy says so at start.

The check is VERIFYING until ``min_frames`` residuals are in, then VERIFIED while the offset
of the last ``window`` (the per-axis median of the signed residuals: the network scatters its
fingertips by several pixels in some lighting, the median of a camera's shift does not)
stays within ``max_residual_px``, SUSPECT once it does not: a camera
bumped or remounted since commissioning. A suspect camera stays suspect (only a new cell
file, i.e. a new :class:`CalibrationCheck`, clears it): the grasps it would aim are off.

Measured against the projection alone (8 heavy cells, seeds 70100-70107, 5 frames at 5
poses): 0.26-1.72 px as commissioned, 2.9-5.5 px tilted 2 degrees, and 3 false alarms in
100 heavy evaluation episodes (2.9-3.6 px at home): the network's bias at a pose it was not
fitted at. Hence the check point.
"""
from __future__ import annotations

from collections import deque
import enum

import numpy as np

from sim2real_policy.camera_geometry import project


class CheckState(enum.IntEnum):
    """Values match PolicyHealth.CALIBRATION_*."""

    NONE = 0        # no cell file to check (a policy that needs none)
    VERIFYING = 1
    VERIFIED = 2
    SUSPECT = 3


class CalibrationCheck:
    """Residuals of the fingertips against the cell file's projection of the measured TCP."""

    def __init__(self, projection, check_points, max_residual_px: float = 2.0,
                 window: int = 15, min_frames: int = 8, min_confidence: float = 0.02,
                 near_m: float = 0.01):
        self.projection = np.asarray(projection, dtype=float)
        points = np.asarray(check_points, dtype=float).reshape(-1, 5)
        if not len(points):
            raise ValueError('a calibration check needs a check point (x, y, z, u, v)')
        self.check_xyz = points[:, :3]
        # the projection's own pixel at each check point, against which a live TCP near it
        # is moved: the commissioned pixel minus it is the network's bias there
        self.check_bias = points[:, 3:5] - project(self.projection, self.check_xyz)
        self.near_m = float(near_m)
        self.max_residual_px = float(max_residual_px)
        self.min_frames = int(min_frames)
        self.min_confidence = float(min_confidence)
        self.residuals: deque = deque(maxlen=int(window))
        self.state = CheckState.VERIFYING
        self.residual_px = float('nan')   # the median of the window

    @property
    def check_pose(self):
        """The first check point's TCP (m), where the policy goes to verify."""
        return self.check_xyz[0]

    def add(self, tcp_xyz, keypoint) -> CheckState:
        """One frame's TCP keypoint ``(u, v, confidence)`` and the measured TCP (m), at rest."""
        u, v, confidence = keypoint
        if not confidence >= self.min_confidence or self.state is CheckState.SUSPECT:
            return self.state
        tcp = np.asarray(tcp_xyz, dtype=float)[:3]
        expected = project(self.projection, tcp[None])[0]
        distances = np.linalg.norm(self.check_xyz - tcp, axis=1)
        nearest = int(np.argmin(distances))
        if not distances[nearest] <= self.near_m:
            return self.state   # not at a check pose: nothing to compare with
        expected = expected + self.check_bias[nearest]
        residual = (float(u - expected[0]), float(v - expected[1]))
        if not np.all(np.isfinite(residual)):
            return self.state
        self.residuals.append(residual)
        if len(self.residuals) >= self.min_frames:
            self.residual_px = float(np.hypot(*np.median(self.residuals, axis=0)))
            self.state = (CheckState.SUSPECT if self.residual_px > self.max_residual_px
                          else CheckState.VERIFIED)
        return self.state

    @property
    def reason(self) -> str:
        """What the state means, with the figures ('' while verified)."""
        if self.state is CheckState.SUSPECT:
            return (f'camera calibration suspect: the fingertips are {self.residual_px:.1f} px '
                    f'from where the cell file expects them (median offset of '
                    f'{len(self.residuals)} '
                    f'frames > {self.max_residual_px} px): was the camera moved? commission '
                    'the cell again')
        if self.state is CheckState.VERIFYING:
            return (f'verifying the cell file against the camera: {len(self.residuals)} of '
                    f'{self.min_frames} frames')
        return ''
