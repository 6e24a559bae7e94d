"""The actuation-delay drill through the full in-process stack: the estimate follows a jump."""
import pytest

from sim2real_bringup.delay_drill import run_delay_drill


def test_the_controller_follows_a_delay_jump_within_5_s_and_keeps_grasping():
    """The shipped drill: 50 -> 150 ms two seconds into the 11th of 20 episodes.

    The drill `sim2real bench adaptation` measures. The control node's estimate, read from
    /control/diagnostics, is within 10 % of the new delay within 5 s and stays there. (A
    4-episode version, the change in the 3rd, tracked in 4.95 s with the grasp planner of
    8cc0af9 and 5.6 s with the one after it: the time depends on what the stage does after
    the change; see the bench's sweep of moments.)
    """
    result = run_delay_drill(episodes=20, change_episode=10, adapt=True)
    assert result['estimate_before_change_s'] == pytest.approx(0.05, abs=0.01)
    assert result['tracked_at_end']
    assert result['time_to_track_s'] <= 5.0
    assert result['share_within_after_track'] == 1.0
    assert result['max_error_after_track_s'] <= 0.015
    assert result['success_before'] == [True] * 10
    assert result['success_after'] and all(result['success_after'])


def test_a_change_episode_outside_the_run_is_refused():
    with pytest.raises(ValueError, match='change_episode'):
        run_delay_drill(episodes=3, change_episode=3)
