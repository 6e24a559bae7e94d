"""The cell file's check against the camera: verified, suspect, and what it ignores."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from sim2real_policy.calibration_check import CalibrationCheck, CheckState
from sim2real_policy.camera_geometry import project

# a pinhole 1 m in front of the stage looking back at it (f = 116 px, 96 x 96 image)
P = np.array([[0.0, 116.0, -48.0, 48.0], [0.0, 0.0, -116.0, 48.0 + 116.0 * 0.2],
              [-1.0, 0.0, 0.0, 1.5]])
TCP = np.array([0.55, 0.0, 0.2])


def seen(tcp, offset=(0.0, 0.0), confidence=0.9):
    u, v = project(P, np.asarray(tcp)[None])[0]
    return (u + offset[0], v + offset[1], confidence)


HOME_POINT = [[*TCP, *project(P, TCP[None])[0]]]   # seen exactly where projected


def test_fingertips_where_the_file_puts_them_verify_it():
    check = CalibrationCheck(P, HOME_POINT)
    for _ in range(7):
        assert check.add(TCP, seen(TCP, (0.5, -0.3))) is CheckState.VERIFYING
    assert check.add(TCP, seen(TCP, (0.5, -0.3))) is CheckState.VERIFIED
    assert check.residual_px == pytest.approx(math.hypot(0.5, 0.3))
    assert check.reason == ''


def test_fingertips_several_pixels_off_make_it_suspect_for_good():
    check = CalibrationCheck(P, HOME_POINT, max_residual_px=2.5)
    for _ in range(8):
        check.add(TCP, seen(TCP, (3.0, 2.0)))
    assert check.state is CheckState.SUSPECT and '3.6 px' in check.reason
    for _ in range(20):   # good frames afterwards do not clear it: the camera moved
        check.add(TCP, seen(TCP))
    assert check.state is CheckState.SUSPECT


def test_unconfident_or_non_finite_detections_are_not_evidence():
    check = CalibrationCheck(P, HOME_POINT)
    for _ in range(20):
        check.add(TCP, seen(TCP, (9.0, 9.0), confidence=0.001))
        check.add(TCP, (math.nan, 3.0, 0.9))
        check.add(TCP, seen(TCP, confidence=math.nan))
    assert check.state is CheckState.VERIFYING and not check.residuals


def test_a_scattered_network_around_the_right_place_is_not_a_moved_camera():
    # some lighting scatters the fingertips by pixels around the right place (seen
    # in a heavy world): the offset of the window is small, whatever single frames say
    rng = np.random.default_rng(0)
    check = CalibrationCheck(P, HOME_POINT, max_residual_px=2.0)
    for _ in range(15):
        check.add(TCP, seen(TCP, tuple(rng.normal(0.0, 2.0, 2))))
    assert check.state is CheckState.VERIFIED, check.residual_px


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-20.0, 20.0), st.floats(-20.0, 20.0)), min_size=8,
                max_size=40), st.floats(0.5, 5.0))
def test_the_state_follows_the_median_offset_of_the_window(offsets, limit):
    check = CalibrationCheck(P, HOME_POINT, max_residual_px=limit, window=15, min_frames=8)
    states = [check.add(TCP, seen(TCP, offset)) for offset in offsets]
    first_suspect = next((i for i, s in enumerate(states) if s is CheckState.SUSPECT), None)
    for i, state in enumerate(states):
        if i < 7:
            assert state is CheckState.VERIFYING
            continue
        window = np.asarray(offsets[max(0, i - 14):i + 1])
        offset = float(np.hypot(*np.median(window, axis=0)))
        if first_suspect is None or i < first_suspect:
            assert (state is CheckState.SUSPECT) == (offset > limit) or \
                abs(offset - limit) < 1e-6
        else:
            assert state is CheckState.SUSPECT   # once suspect, for good


def test_a_check_point_cancels_the_networks_own_bias_at_that_pose():
    # commissioned: the network saw the fingertips 3 px right of the projection at home
    home = TCP
    u, v, _ = seen(home, (3.0, 0.0))
    check = CalibrationCheck(P, [[*home, u, v]], max_residual_px=2.0)
    for _ in range(8):   # live, the same bias: verified (the projection alone says 3 px)
        check.add(home + (0.002, 0.0, 0.0), seen(home + (0.002, 0.0, 0.0), (3.0, 0.0)))
    assert check.state is CheckState.VERIFIED and check.residual_px < 0.01
    moved = CalibrationCheck(P, [[*home, u, v]], max_residual_px=2.0)
    for _ in range(8):   # the camera tilted: the fingertips 4 px further
        moved.add(home, seen(home, (3.0, 4.0)))
    assert moved.state is CheckState.SUSPECT


def test_away_from_the_check_pose_nothing_is_compared():
    u, v, _ = seen(TCP)
    check = CalibrationCheck(P, [[*TCP, u, v]])
    for _ in range(20):
        check.add(TCP + (0.05, 0.0, 0.0), seen(TCP + (0.05, 0.0, 0.0), (9.0, 9.0)))
    assert check.state is CheckState.VERIFYING and not check.residuals
    assert np.allclose(check.check_pose, TCP)
    with pytest.raises(ValueError, match='check point'):
        CalibrationCheck(P, [])
