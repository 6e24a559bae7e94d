"""The bumped-camera drill on the full in-process stack.

A tilted or sideways-knocked camera is caught, an unmoved one is not, and nothing unsafe is
commanded either way.
"""
from sim2real_bringup.camera_drill import run_trial


def test_a_camera_tilted_after_commissioning_stops_autonomy_before_a_grasp():
    trial = run_trial(80003, 'tilt')
    assert trial['caught'], trial
    assert 'camera calibration suspect' in trial['reason'] and 'px' in trial['reason']
    assert not trial['grasp_begun']
    assert trial['time_to_caught_s'] < 2.0      # at home, before the first approach
    assert trial['unsafe_commands'] == 0


def test_a_camera_knocked_2_cm_sideways_stops_autonomy_before_a_grasp():
    trial = run_trial(80001, 'shift')
    assert trial['caught'], trial
    assert 'camera calibration suspect' in trial['reason']
    assert not trial['grasp_begun'] and trial['unsafe_commands'] == 0


def test_the_camera_as_commissioned_passes_the_check_and_the_policy_goes_on():
    trial = run_trial(80003, 'none')
    assert not trial['caught'] and trial['check'] == 'VERIFIED', trial
    assert trial['residual_px'] < 2.0 and trial['grasp_begun']
    assert trial['unsafe_commands'] == 0
