"""Grasp verification and bounded retry on the MuJoCo gripper, through the safety filter."""
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from sim2real_policy import grasp
from sim2real_policy.sim.expert import grasp_yaw
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.robot import GripperSim
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.supervisor import Supervisor, SupervisorConfig


def _grasp(limits, params: SimParams, error=(0.0, 0.0), wrong_attempts=1, where=None,
           camera=False, **config):
    """A verified grasp; the first ``wrong_attempts`` locate the object off by ``error``."""
    log = []
    with GripperSim(params) as sim:
        check = grasp.ImageCheck(lambda: sim.render(96, 96),
                                 lambda point: sim.project(point, 96, 96)) if camera else None

        def locate(attempt):
            x, y, z = where if where is not None else sim.object_position()
            if attempt < wrong_attempts:
                x, y = x + error[0], y + error[1]
            return x, y, z, grasp_yaw(params.object_shape, sim.object_yaw())

        outcome = grasp.execute_grasp_safely(sim, SafetyFilter(limits), locate,
                                             grasp.GraspCheckConfig(**config), log=log.append,
                                             camera=check)
        truth = {'lifted': sim.object_lifted(), 'in_gripper': sim.object_in_gripper()}
    return outcome, log, truth


def test_a_good_grasp_is_verified_on_the_first_attempt(suite_limits):
    outcome, log, truth = _grasp(suite_limits(), SimParams(seed=1))
    assert outcome.success and outcome.retries == 0
    assert [a.verdict for a in log] == ['held']
    assert truth['lifted'] and truth['in_gripper']  # the check agrees with the simulator


def test_the_camera_sees_a_lifted_object_leave_its_spot(suite_limits):
    outcome, log, truth = _grasp(suite_limits(), SimParams(seed=5), camera=True)
    assert outcome.success and log[0].verdict == 'held'
    assert log[0].image_change >= grasp.ImageCheck(None, None).min_change
    assert truth['lifted']


def test_the_camera_check_tells_a_cleared_spot_from_an_occupied_one():
    with GripperSim(SimParams(seed=6)) as sim:
        check = grasp.ImageCheck(lambda: sim.render(96, 96),
                                 lambda point: sim.project(point, 96, 96))
        check.before(sim.object_position())
        still, change_still = check.moved()
        address = sim.model.joint('object').qposadr[0]
        sim.data.qpos[address:address + 2] += (0.0, 0.15)   # the object is taken away
        sim.step(0.05)
        cleared, change_cleared = check.moved()
    assert still is False and change_still < check.min_change
    assert cleared is True and change_cleared >= check.min_change


def test_a_camera_that_sees_no_change_vetoes_the_gripper(suite_limits):
    # a camera threshold nothing can reach: every grasp the gripper calls held is "left"
    params = SimParams(seed=6)
    log = []
    with GripperSim(params) as sim:
        check = grasp.ImageCheck(lambda: sim.render(96, 96),
                                 lambda point: sim.project(point, 96, 96), min_change=1e9)
        outcome = grasp.execute_grasp_safely(
            sim, SafetyFilter(suite_limits()), lambda attempt: (*sim.object_position(), 0.0),
            grasp.GraspCheckConfig(max_retries=1), log=log.append, camera=check)
    assert [a.verdict for a in log] == ['left', 'left'] and not outcome.success


@pytest.mark.parametrize('max_retries', [0, 1, 3])
def test_an_empty_close_is_detected_and_retries_are_bounded(max_retries, suite_limits):
    # nothing where the gripper closes: the object stands 15 cm away
    params = SimParams(seed=2, object_x=0.45, object_y=0.12)
    outcome, log, truth = _grasp(suite_limits(), params, where=(0.60, -0.05, 0.0375),
                                 max_retries=max_retries)
    assert not outcome.success
    assert [a.verdict for a in log] == ['empty'] * (max_retries + 1)
    assert outcome.retries == max_retries
    assert outcome.failure_reason == ', '.join(['empty'] * (max_retries + 1))
    assert not truth['in_gripper']
    if max_retries:
        # the estimate did not move: each re-grasp is shifted, never the same grip twice
        targets = {a.target[:2] for a in log}
        assert len(targets) == max_retries + 1


def test_an_object_slipping_out_is_detected(suite_limits):
    # polished pads and a feeble gripper: the fingers stop on the object, then it slides out
    params = SimParams(seed=3, pad_friction=0.0, gripper_strength=0.05)
    outcome, log, truth = _grasp(suite_limits(), params, max_retries=1)
    assert not outcome.success
    assert [a.verdict for a in log] == ['slipped', 'slipped']
    assert all(a.grasp_width >= grasp.GraspCheckConfig().min_object_width for a in log)
    assert not truth['lifted']


def test_a_recovered_retry_succeeds_and_does_not_count_as_a_failure(suite_limits):
    # the first estimate is 6 cm off (a misdetection): the fingers close on air, the re-grasp
    # looks again and holds the object
    outcome, log, truth = _grasp(suite_limits(), SimParams(seed=4), error=(0.0, 0.06))
    assert [a.verdict for a in log] == ['empty', 'held']
    assert outcome.success and outcome.retries == 1
    assert truth['lifted'] and truth['in_gripper']
    # the supervisor hears one result per grasp: three exhausted grasps, then this one
    supervisor = Supervisor(SupervisorConfig())
    for k in range(3):
        supervisor.on_grasp_result(False, k)
    supervisor.on_grasp_result(outcome.success, 3)
    assert supervisor.consecutive_failures == 0
    # had every failed attempt been counted, the same session would have called a human:
    # 4 failures in a row > max_consecutive_failures (3)
    counted = Supervisor(SupervisorConfig())
    for k, attempt in enumerate([False] * 3 + [a.verdict == 'held' for a in log]):
        counted.on_grasp_result(attempt, k)
        if counted.consecutive_failures > SupervisorConfig().max_consecutive_failures:
            break
    assert counted.consecutive_failures == 4


finite = st.floats(-0.01, 0.1, allow_nan=False)
samples = st.lists(st.tuples(finite, st.floats(-10, 300, allow_nan=False)), min_size=1,
                   max_size=80)


@settings(max_examples=300, deadline=None)
@given(samples, st.sampled_from([float('nan'), float('inf')]))
def test_the_verifier_never_calls_held_on_a_width_below_the_minimum(stream, garbage):
    config = grasp.GraspCheckConfig()
    verifier = grasp.GraspVerifier(config)
    verifier.on_close()
    for k, (width, effort) in enumerate(stream):
        verdict = verifier.update(k * 10_000_000, width, effort)
        if verdict == grasp.HELD:
            assert width >= config.min_object_width and effort >= 0.5 * config.min_effort
        assert verifier.update(k * 10_000_000 + 1, garbage, effort) == verdict  # ignored
    if verifier.verdict == grasp.HELD:
        assert verifier.grasp_width >= config.min_object_width


@pytest.mark.parametrize('field, value', [('min_effort', -1.0), ('settle_time', np.nan),
                                          ('max_retries', 11), ('max_retries', 1.5)])
def test_bad_grasp_check_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        grasp.GraspCheckConfig(**{field: value})
