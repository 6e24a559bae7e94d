"""The online actuation-delay estimate: found on a simulated stage, bounded on any stream."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from sim2real_policy import sysid
from sim2real_policy.delay_estimation import DelayEstimationConfig, DelayEstimator
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.robot import GripperSim

MS = 1_000_000


def _close(delay):
    """Within 10 %, or within one 10 ms sample of the streams for delays under 100 ms."""
    return pytest.approx(delay, abs=max(0.1 * delay, 0.01))


def _drive(sim, estimator, commands, start_ns=0):
    """Send each command, step 10 ms, report the measured TCP; the estimator runs along."""
    t = start_ns
    for command in commands:
        sim.command((*command[:3], 0.0, 0.085))
        estimator.add_command(t, command)
        sim.step(0.01)
        t += 10 * MS
        estimator.add_state(t, sim.tcp()[:3])
        estimator.update(t)
    return t


@pytest.mark.parametrize('delay,world', [
    (0.03, {}), (0.12, {}), (0.25, {}),
    (0.15, {'encoder_noise': 0.001, 'joint_damping': 1.5, 'stage_mass': 1.5}),
])
def test_the_delay_of_a_simulated_stage_is_found(delay, world):
    """MuJoCo's stage (not the estimator's own model) with a known delay, moved by sines."""
    sim = GripperSim(SimParams(action_delay=delay, **world))
    estimator = DelayEstimator(DelayEstimationConfig())
    _drive(sim, estimator, sysid.excitation(3, duration=4.0))
    assert estimator.delay == _close(delay)
    assert len(estimator.adaptation.updates) >= 5


def test_a_stage_at_rest_leaves_the_estimate_alone():
    sim = GripperSim(SimParams(action_delay=0.2))
    estimator = DelayEstimator(DelayEstimationConfig(initial=0.05))
    _drive(sim, estimator, np.tile([0.55, 0.0, 0.25], (300, 1)))
    assert estimator.delay == 0.05
    assert estimator.adaptation.updates == []


def test_a_change_of_delay_is_followed_and_a_restart_keeps_the_estimate():
    sim = GripperSim(SimParams(action_delay=0.05))
    estimator = DelayEstimator(DelayEstimationConfig())
    t = _drive(sim, estimator, sysid.excitation(1, duration=3.0))
    assert estimator.delay == _close(0.05)
    sim.params = sim.params.replace(action_delay=0.15)
    before = estimator.delay
    estimator.restart()   # a new episode: the streams are forgotten, the estimate is kept
    assert estimator.delay == before
    _drive(sim, estimator, sysid.excitation(2, duration=4.0), start_ns=t)
    assert estimator.delay == _close(0.15)


def test_one_spoiled_window_moves_nothing_but_a_fit_from_before_a_still_spell_does_not_vote():
    estimator = DelayEstimator(DelayEstimationConfig(initial=0.05))
    for k in range(3):   # three overlapping windows: 50 ms
        estimator.accept({'delay': 0.05}, (10_000 + 250 * k) * MS)
    # the next window reads 300 ms (a contact): the median of three still says 50 ms
    estimator.accept({'delay': 0.3}, 10_750 * MS)
    assert estimator.delay == pytest.approx(0.05)
    for k in range(2):   # two more at 50 ms
        estimator.accept({'delay': 0.05}, (11_000 + 250 * k) * MS)
    # the stage stood still 2 s (no window said anything), the delay changed meanwhile: the
    # first window after the spell moves the estimate; the two fits before it do not outvote it
    estimator.accept({'delay': 0.15}, 13_250 * MS)
    assert estimator.delay == pytest.approx(0.1)   # one max_step up


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 0.3), st.floats(0.0, 0.3), st.floats(1.0, 10.0))
def test_a_spoiled_first_window_after_a_still_spell_costs_at_most_two_steps(
        delay, spoiled, spell_s):
    """Good windows at ``delay``, a still spell, one spoiled window, then good ones again."""
    cfg = DelayEstimationConfig(initial=delay, max_delay=0.3)
    estimator = DelayEstimator(cfg)
    t = 10_000 * MS
    for _ in range(4):
        t += 250 * MS
        estimator.accept({'delay': delay}, t)
    t += int(spell_s * 1000) * MS
    errors = [abs(estimator.accept({'delay': spoiled}, t) - delay)]
    for _ in range(12):
        t += 250 * MS
        errors.append(abs(estimator.accept({'delay': delay}, t) - delay))
    assert max(errors) <= 2 * cfg.max_step + 1e-9
    assert errors[-1] <= 0.1 * max(delay, 0.05)   # back within 10 % (or 5 ms) in 3 s


def test_a_window_without_the_stages_response_says_nothing():
    """Still 1.5 s, then a 4 cm move: no fit until the stage has moved too, then the delay."""
    sim = GripperSim(SimParams(action_delay=0.2))
    estimator = DelayEstimator(DelayEstimationConfig())
    start = sim.tcp(False)[:3]
    still = np.tile(start, (150, 1))
    moved = np.tile(start + [0.0, 0.0, -0.04], (100, 1))
    fits = []
    t = 0
    for command in np.vstack([still, moved]):
        sim.command((*command, 0.0, 0.085))
        estimator.add_command(t, command)
        sim.step(0.01)
        t += 10 * MS
        estimator.add_state(t, sim.tcp()[:3])
        fits.append((t / 1e9, estimator.fit(estimator.snapshot(t))))
    # the command jumped at 1.5 s and the stage 0.2 s later: in between, nothing
    assert all(fit is None for when, fit in fits if when <= 1.7)
    found = [fit for when, fit in fits if when >= 1.8 and fit is not None]
    assert len(found) >= 35 and all(fit['delay'] == _close(0.2) for fit in found)


finite = st.floats(-1.0, 2.0)
sample = st.one_of(finite, st.just(math.nan), st.just(math.inf))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(sample, sample, sample, sample, sample, sample), min_size=1,
                max_size=400),
       st.floats(0.0, 0.3), st.integers(1, 30))
def test_whatever_the_streams_the_delay_stays_bounded_and_moves_in_small_steps(
        rows, initial, stride_ms):
    """Random, jumping and non-finite commands and states, at any rate."""
    cfg = DelayEstimationConfig(initial=initial, max_delay=0.3)
    estimator = DelayEstimator(cfg)
    t, previous = 0, initial
    for cx, cy, cz, px, py, pz in rows:
        estimator.add_command(t, (cx, cy, cz))
        t += stride_ms * MS
        estimator.add_state(t, (px, py, pz))
        delay = estimator.update(t)
        assert 0.0 <= delay <= 0.3
        assert abs(delay - previous) <= cfg.max_step + 1e-12
        previous = delay
