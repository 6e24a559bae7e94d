"""Fault injection through the in-process runtime: every supervised fault, end to end."""
import functools

import pytest

from sim2real_bringup.drills import DRILLS, LOGGER_DRILLS
from sim2real_bringup.pipeline import PipelineConfig


@functools.lru_cache(maxsize=None)
def drill(name):
    return {**DRILLS, **LOGGER_DRILLS}[name]()


@pytest.mark.parametrize('name', sorted(DRILLS))
def test_drill(name):
    result = drill(name)
    # the first degraded mode the supervisor entered after the injection, for the drilled
    # cause (not another rule that leads to the same mode)
    assert result['reached_mode'] == result['expected_mode'], result
    assert result['expected_reason'] in result['reason'], result
    assert result['in_time'], result
    assert result['fallback_ok'], result
    assert result['recovery_ok'], result
    assert result['unsafe_commands'] == 0, result
    assert result['passed'], result


def test_a_silent_stall_is_caught_by_stall_detection_after_stall_time():
    """Issue 17: the stall drill went through the driver's fault flag, in a budget < stall_time."""
    stall_time = PipelineConfig.load().supervisor.stall_time
    result = drill('gripper_stall_detected')
    assert result['driver_fault_flag'] is False, result
    assert result['reason'].startswith('gripper stalled'), result
    assert result['time_budget_s'] > stall_time
    assert stall_time <= result['time_to_mode_s'] <= result['time_budget_s'], result


def test_a_command_spike_warns_and_the_episode_reset_before_it_does_not():
    """Issue 37: every episode reset counted as an action spike, so a real one told nothing."""
    result = drill('command_spike')
    # the step from one episode's last command to the next world's first raised nothing
    assert result['reset_quiet'], result
    # a 25 mm step on the wire: WARN on /diagnostics at the logger's next publish
    assert result['reached_level'] == 'WARN', result
    assert 'command steps over 0.01 m' in result['reason'], result
    assert result['in_time'] and result['audit_saw_spike'], result
    assert result['unsafe_before'] == 0 and result['passed'], result
