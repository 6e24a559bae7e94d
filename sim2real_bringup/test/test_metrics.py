"""RollingMetrics, the logger's core: windows, anomaly checks, counts across restarts."""
import math

import pytest

from sim2real_bringup.metrics import ERROR, OK, RollingMetrics, WARN


def checks(metrics):
    return {name: (level, message, values) for name, level, message, values
            in metrics.snapshot()}


def test_inference_latency_percentiles_over_the_window_and_the_budget_warning():
    m = RollingMetrics(window=10, latency_budget=0.5)
    level, _, values = checks(m)['inference_latency_ms']
    assert level == OK and math.isnan(values['p95'])  # nothing yet: no figure, no alarm
    for latency in [9.0] * 5 + [0.01 * k for k in range(1, 11)] + [math.nan]:
        m.on_chunk(latency)
    level, message, values = checks(m)['inference_latency_ms']
    # only the last 10 finite samples count: 10..100 ms; the 9 s ones left the window
    assert values['mean'] == pytest.approx(55.0)
    assert values['p50'] == pytest.approx(55.0)
    assert level == OK and message == 'ok'
    m.on_chunk(0.8)
    m.on_chunk(0.9)
    level, message, values = checks(m)['inference_latency_ms']
    assert values['p95'] > 500.0 and level == WARN and message == 'p95 over budget'


def test_control_period_jitter_warning_and_unknown_periods():
    m = RollingMetrics(period=0.01, jitter_budget=0.001)
    m.on_control(math.nan, 0)  # the first tick has no period
    for _ in range(99):
        m.on_control(0.0105, 0)
    level, _, values = checks(m)['control_period_ms']
    assert values['mean'] == pytest.approx(10.5) and values['jitter_p99'] == pytest.approx(0.5)
    assert level == OK
    for _ in range(5):
        m.on_control(0.013, 0)
    level, message, values = checks(m)['control_period_ms']
    assert values['jitter_p99'] > 1.0 and level == WARN and message == 'jitter p99 over budget'


def test_deadline_misses_are_summed_over_controller_restarts():
    """A restarted controller (a new episode in-process) counts from 0 again: nothing is lost."""
    m = RollingMetrics()
    for tick, misses in enumerate([0, 1, 2, 5, 7], start=1):
        m.on_control(0.01, misses, tick)
    assert m.deadline_misses == 7
    for tick, misses in enumerate([0, 3, 4], start=1):  # the next episode's controller
        m.on_control(0.01, misses, tick)
    assert m.deadline_misses == 11
    # a restart caught by the tick counter even when the new count starts level
    m.on_control(0.01, 4, 1)
    assert m.deadline_misses == 15
    assert checks(m)['control_period_ms'][2]['deadline_misses'] == 15


def test_a_command_step_over_spike_step_is_a_spike():
    m = RollingMetrics(spike_step=0.01)
    m.on_command((0.5, 0.0, 0.2, 0.0, 0.08))
    m.on_command((0.509, 0.0, 0.2, 0.0, 0.0))   # 9 mm (and the gripper does not count)
    assert checks(m)['action_spikes'][0] == OK
    m.on_command((0.509, 0.008, 0.208, 0.0, 0.0))  # 11.3 mm in one tick
    level, message, values = checks(m)['action_spikes']
    assert level == WARN and values['spikes'] == 1 and '1 command steps' in message


def test_an_episode_reset_is_not_a_spike_but_a_spike_right_after_it_is():
    """Issue 37: the nominal demo warned once per episode, for the reset between episodes."""
    m = RollingMetrics(spike_step=0.01)
    m.on_command((0.6, 0.05, 0.15, 0.0, 0.02))    # the lift, end of an episode
    m.on_result(True)
    m.on_command((0.5, 0.0, 0.2, 0.0, 0.085))     # the next world, the stage at home: 12 cm
    assert checks(m)['action_spikes'][:2] == (OK, 'ok')
    m.on_command((0.5, 0.0, 0.2025, 0.0, 0.085))  # 2.5 mm: a step the filter lets through
    assert checks(m)['action_spikes'][0] == OK
    m.on_command((0.5, 0.0, 0.2275, 0.0, 0.085))  # 25 mm in one tick of the new episode
    level, _, values = checks(m)['action_spikes']
    assert level == WARN and values['spikes'] == 1


def test_time_in_each_mode_and_interventions():
    m = RollingMetrics()
    m.on_mode('NORMAL', 0.0)
    m.on_mode('NORMAL', 1.0)
    m.on_mode('HUMAN_REQUIRED', 2.5)
    m.on_mode('HUMAN_REQUIRED', 3.0)
    m.on_mode('NORMAL', 4.0)        # a human acknowledged: an intervention
    m.on_mode('VISION_DEGRADED', 4.5)
    m.on_mode('NORMAL', 4.0)        # a clock that went back adds nothing
    _, _, modes = checks(m)['supervisor_modes']
    assert modes == pytest.approx({'NORMAL': 3.0, 'HUMAN_REQUIRED': 1.5,
                                   'VISION_DEGRADED': 0.0})
    assert checks(m)['grasp_success'][2]['interventions'] == 1


def test_success_degradation_needs_five_results_and_a_low_rate():
    m = RollingMetrics(min_success_rate=0.5, results_window=6)
    for success in (False, False, False, False):
        m.on_result(success)
    level, _, values = checks(m)['grasp_success']
    assert level == OK and values['success_rate'] == 0.0  # too few episodes to judge
    m.on_result(False)
    assert checks(m)['grasp_success'][:2] == (WARN, 'success degraded')
    for success in (True, True, True, True):   # the window keeps the last 6
        m.on_result(success)
    level, _, values = checks(m)['grasp_success']
    assert level == OK and values['episodes'] == 6
    assert values['success_rate'] == pytest.approx(4 / 6)
    assert values['failure_rate'] == pytest.approx(2 / 6)
    assert ERROR not in {level for _, level, _, _ in m.snapshot()}
