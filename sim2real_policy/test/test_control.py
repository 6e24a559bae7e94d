"""The 100 Hz controller: delay-aware chunks, blending, latency budget, fallbacks, modes."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from sim2real_policy.control import (
    Chunk,
    ControlConfig,
    Controller,
    SOURCE_CHUNK_TAIL,
    SOURCE_HOLD,
    SOURCE_HOME,
    SOURCE_POLICY,
    SOURCE_RELEASE_RAISE,
)
from sim2real_safety.supervisor import Mode

MS = 1_000_000
START = (0.55, 0.0, 0.25, 0.0, 0.085)


def ramp_chunk(stamp_ms, received_ms, x0=0.55, slope=0.1, horizon=16, period=0.05, seq=0):
    """X moves at `slope` m/s from x0 at the observation time."""
    t = np.arange(horizon) * period
    actions = np.tile(START, (horizon, 1)).astype(float)
    actions[:, 0] = x0 + slope * t
    return Chunk(stamp_ms * MS, actions, period, 0.0, (received_ms - stamp_ms) / 1000, seq,
                 received_ms * MS)


def controller(**overrides):
    # The chunk logic is tested with the output taking the target as it is (smoothing 1);
    # the jerk-limited motion has tests of its own below.
    cfg = ControlConfig(**{'motion': 'smoothing', 'smoothing': 1.0, **overrides})
    return Controller(cfg, START)


def test_delay_aware_start_skips_actions_already_past():
    ctl = controller(blending='naive')
    chunk = ramp_chunk(stamp_ms=1000, received_ms=1200)  # arrives 200 ms late
    assert ctl.on_chunk(chunk, 1200 * MS)
    ctl.tick(1200 * MS)  # first tick blends from the current output
    out = ctl.tick(1210 * MS)
    assert out.command[0] == pytest.approx(0.55 + 0.1 * 0.21)  # the action for t = 210 ms
    assert out.source == SOURCE_POLICY
    assert out.chunk_age == pytest.approx(0.21)
    assert out.latency == pytest.approx(0.20)  # its first command was at 1200 ms


def test_observation_to_command_is_the_chunks_first_command_not_its_age():
    """Issue 17: ControlDiagnostics.latency was always equal to chunk_age.

    The latency is the first tick that took its command from the chunk minus the chunk's
    observation stamp, the same for every tick the chunk serves; the age keeps growing.
    """
    ctl = controller(blending='naive')
    assert math.isnan(ctl.tick(1000 * MS).latency)  # no chunk: no latency
    assert ctl.on_chunk(ramp_chunk(stamp_ms=1000, received_ms=1030), 1030 * MS)
    ticks = range(1035, 1200, 10)
    outs = [ctl.tick(t * MS) for t in ticks]
    assert [o.chunk_age for o in outs] == pytest.approx([(t - 1000) / 1000 for t in ticks])
    assert [o.latency for o in outs] == pytest.approx([0.035] * len(outs))
    assert ctl.on_chunk(ramp_chunk(stamp_ms=1100, received_ms=1190, seq=1), 1190 * MS)
    first, second = ctl.tick(1205 * MS), ctl.tick(1215 * MS)
    assert (first.latency, second.latency) == pytest.approx((0.105, 0.105))
    assert (first.chunk_age, second.chunk_age) == pytest.approx((0.105, 0.115))


def test_interpolates_between_actions():
    chunk = ramp_chunk(0, 0)
    assert chunk.at(25 * MS)[0] == pytest.approx(0.55 + 0.1 * 0.025)


def test_chunk_older_than_max_age_is_never_used():
    ctl = controller(max_chunk_age=0.5, fresh_chunk_age=0.2)
    assert not ctl.on_chunk(ramp_chunk(0, 600), 600 * MS)
    assert ctl.tick(600 * MS).source == SOURCE_HOLD
    ctl2 = controller(max_chunk_age=0.5, fresh_chunk_age=0.2)
    ctl2.on_chunk(ramp_chunk(0, 100), 100 * MS)
    sources = [ctl2.tick(t * MS).source for t in range(100, 800, 10)]
    ages = np.arange(100, 800, 10) / 1000
    for age, source in zip(ages, sources):
        if age > 0.5:
            assert source == SOURCE_HOLD
        elif age > 0.2:
            assert source == SOURCE_CHUNK_TAIL
    assert ctl2.deadline_misses == sum(s != SOURCE_POLICY for s in sources)


def test_falls_back_to_tail_then_hold_when_chunks_stop():
    ctl = controller(max_chunk_age=1.0, fresh_chunk_age=0.3)
    ctl.on_chunk(ramp_chunk(0, 50, horizon=10), 50 * MS)  # covers 0..450 ms
    out = [ctl.tick(t * MS) for t in range(50, 900, 10)]
    sources = [o.source for o in out]
    assert SOURCE_POLICY in sources and SOURCE_CHUNK_TAIL in sources
    assert sources[-1] == SOURCE_HOLD
    held = [o.command for o in out if o.source == SOURCE_HOLD]
    assert all(c == held[0] for c in held)  # hold = the last output, no jump


def _switch_steps(blending, seed=0):
    """Largest command step when noisy chunks replace each other every 200 ms."""
    rng = np.random.default_rng(seed)
    ctl = controller(blending=blending, smoothing=1.0)
    steps, last = [], None
    for k in range(20):
        stamp = k * 200
        chunk = ramp_chunk(stamp, stamp + 100, x0=0.55 + 0.1 * stamp / 1000
                           + rng.normal(0, 0.004), seq=k)
        ctl.on_chunk(chunk, (stamp + 100) * MS)
        for t in range(stamp + 100, stamp + 300, 10):
            cmd = ctl.tick(t * MS).command
            if last is not None:
                steps.append(abs(cmd[0] - last[0]))
            last = cmd
    return max(steps)


def test_crossfade_switching_jumps_less_than_naive():
    for seed in range(5):
        assert _switch_steps('crossfade', seed) < 0.6 * _switch_steps('naive', seed)


def test_ensemble_averages_the_chunks_covering_the_tick():
    ctl = controller(blending='ensemble', ensemble_decay=0.0, crossfade_time=0.0)
    ctl.on_chunk(ramp_chunk(0, 0, x0=0.50, slope=0.0), 0)
    ctl.on_chunk(ramp_chunk(10, 10, x0=0.60, slope=0.0, seq=1), 10 * MS)
    ctl.tick(10 * MS)
    assert ctl.tick(20 * MS).command[0] == pytest.approx(0.55)


def test_smoothing_filters_the_target():
    ctl = controller(blending='naive', smoothing=0.5)
    ctl.on_chunk(ramp_chunk(0, 0, slope=0.0, x0=0.60), 0)
    ctl.tick(0)
    first = ctl.tick(10 * MS).command[0]
    assert first == pytest.approx(0.55 + 0.5 * 0.05)


def test_vision_degraded_uses_chunks_for_the_grace_period_then_goes_home():
    ctl = controller(vision_grace_period=0.5, home=(0.5, 0.0, 0.3, 0.0, 0.085))
    for k in range(200):
        t = k * 10
        if k % 10 == 0:
            ctl.on_chunk(ramp_chunk(t, t, x0=0.6, slope=0.0, seq=k), t * MS)
        if k == 50:
            ctl.on_mode(Mode.VISION_DEGRADED, t * MS, t * MS)
        out = ctl.tick(t * MS)
        if 50 <= k < 100:
            assert out.source in (SOURCE_POLICY, SOURCE_CHUNK_TAIL)
        elif k >= 101:
            assert out.source == SOURCE_HOME
    assert out.command[2] > 0.25  # travelling home at the fallback speed


def test_gripper_fault_stops_releases_then_raises():
    ctl = controller()
    ctl.on_chunk(ramp_chunk(0, 0, x0=0.6, slope=0.0), 0)
    pose = ctl.tick(0).command
    ctl.on_mode(Mode.GRIPPER_FAULT, 10 * MS, 10 * MS)
    out = [ctl.tick(t * MS) for t in range(10, 3000, 10)]
    assert all(o.source == SOURCE_RELEASE_RAISE for o in out)
    assert out[5].command == pytest.approx(pose)                  # stop at once
    assert out[40].command[4] == pytest.approx(0.085)             # released (open)
    assert out[-1].command[2] == pytest.approx(0.2) or out[-1].command[2] >= 0.2  # raised


@pytest.mark.parametrize('mode', [Mode.HUMAN_REQUIRED, Mode.SOFTWARE_STOP])
def test_hold_modes_hold(mode):
    ctl = controller()
    ctl.on_chunk(ramp_chunk(0, 0), 0)
    ctl.tick(0)
    before = ctl.tick(10 * MS).command
    ctl.on_mode(mode, 20 * MS, 20 * MS)
    outs = [ctl.tick(t * MS) for t in range(20, 500, 10)]
    assert all(o.source == SOURCE_HOLD and o.command == before for o in outs)


def test_resuming_after_a_fallback_blends_from_the_current_output():
    ctl = controller(crossfade_time=0.1)
    ctl.on_mode(Mode.HUMAN_REQUIRED, 0, 0)
    for t in range(0, 100, 10):
        ctl.tick(t * MS)
    ctl.on_mode(Mode.NORMAL, 100 * MS, 100 * MS)
    ctl.on_chunk(ramp_chunk(100, 100, x0=0.65, slope=0.0), 100 * MS)
    xs = [ctl.tick(t * MS).command[0] for t in range(100, 300, 10)]
    assert max(np.diff([0.55] + xs)) <= 0.1 / 10 + 1e-9  # 10 cm spread over 10 ticks
    assert xs[-1] == pytest.approx(0.65)


def test_tick_reports_period_and_jitter():
    ctl = controller()
    ctl.tick(0)
    out = ctl.tick(12 * MS)
    assert out.period == pytest.approx(0.012) and out.jitter == pytest.approx(0.002)
    assert math.isnan(ctl.__class__(ctl.config, START).tick(0).period)


@pytest.mark.parametrize('kwargs, message', [
    ({'blending': 'magic'}, 'blending'), ({'smoothing': 0.0}, 'smoothing'),
    ({'fresh_chunk_age': 2.0}, 'fresh_chunk_age'), ({'control_period': -1}, 'control_period'),
])
def test_bad_config_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ControlConfig(**kwargs)


def test_bad_chunks_are_refused():
    with pytest.raises(ValueError, match='horizon x 5'):
        Chunk(0, np.zeros((4, 3)), 0.05, 0.0, 0.0, 0, 0)
    with pytest.raises(ValueError, match='non-finite'):
        Chunk(0, np.full((4, 5), np.nan), 0.05, 0.0, 0.0, 0, 0)


def test_chunks_every_crossfade_time_do_not_replay_an_old_resume_pose():
    """Regression: a resume fade must end on its own clock, not be renewed by each chunk."""
    ctl = controller(crossfade_time=0.1, smoothing=1.0)
    steps, last = [], None
    for k in range(30):  # a chunk every 100 ms = crossfade_time, moving +x at 0.1 m/s
        stamp = k * 100
        ctl.on_chunk(ramp_chunk(stamp, stamp, x0=0.55 + 0.1 * stamp / 1000, seq=k), stamp * MS)
        for t in range(stamp, stamp + 100, 10):
            x = ctl.tick(t * MS).command[0]
            if last is not None:
                steps.append(abs(x - last))
            last = x
    assert max(steps) < 0.0025  # 1 mm per tick at 0.1 m/s, plus the initial fade-in


def test_a_chunk_stamped_in_the_future_is_refused_and_real_chunks_still_arrive():
    """Issue 17 F7: a chunk stamped 10 s ahead is refused.

    It used to be kept as the newest and shut out every real chunk until the episode ended.
    """
    ctl = controller(blending='naive')
    assert not ctl.on_chunk(ramp_chunk(stamp_ms=11_000, received_ms=1000), 1000 * MS)
    assert ctl.on_chunk(ramp_chunk(stamp_ms=1000, received_ms=1030, seq=1), 1030 * MS)
    assert ctl.on_chunk(ramp_chunk(stamp_ms=1100, received_ms=1130, seq=2), 1130 * MS)
    ctl.tick(1130 * MS)
    assert ctl.tick(1140 * MS).source == SOURCE_POLICY


LIMITS = ControlConfig()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.35, 0.75), st.floats(-0.2, 0.2), st.floats(0.0, 0.4),
                          st.floats(-1.5, 1.5), st.floats(0.0, 0.085), st.floats(-0.3, 0.3)),
                min_size=1, max_size=6),
       st.integers(5, 60))
def test_jerk_limited_output_keeps_its_velocity_and_acceleration_limits(targets, every):
    # Chunks jumping anywhere, at any rate: the output moves within the per-axis limits.
    ctl = Controller(ControlConfig(), START)
    outputs = [np.asarray(START, float)]
    t_ms = 0
    for k, (x, y, z, yaw, width, slope) in enumerate(targets):
        horizon, period = 16, 0.05
        actions = np.tile([x, y, z, yaw, width], (horizon, 1))
        actions[:, 0] += slope * np.arange(horizon) * period
        ctl.on_chunk(Chunk(t_ms * MS, actions, period, 0.0, 0.0, k, t_ms * MS), t_ms * MS)
        for _ in range(every):
            t_ms += 10
            outputs.append(np.asarray(ctl.tick(t_ms * MS).command))
    outputs = np.asarray(outputs)
    velocity = np.diff(outputs, axis=0) / 0.01
    acceleration = np.diff(velocity, axis=0) / 0.01
    assert np.all(np.abs(velocity) <= np.asarray(LIMITS.max_velocity) * 1.001 + 1e-9)
    assert np.all(np.abs(acceleration) <= np.asarray(LIMITS.max_acceleration) * 1.01 + 1e-6)


def test_jerk_limited_output_reaches_a_still_target_and_tracks_a_moving_one():
    ctl = Controller(ControlConfig(), START)
    still = np.tile([0.60, 0.05, 0.15, 0.3, 0.02], (16, 1))
    for k in range(0, 150):
        if k % 10 == 0:   # a new chunk every 100 ms, as the policy sends them
            ctl.on_chunk(Chunk(k * 10 * MS, still, 0.05, 0.0, 0.0, k, k * 10 * MS), k * 10 * MS)
        out = ctl.tick(k * 10 * MS).command
    assert np.allclose(out, still[0], atol=1e-6)
    # a target moving at 0.1 m/s in x is followed at its speed, not chased from behind
    ctl = Controller(ControlConfig(), START)
    errors = []
    for k in range(0, 150):
        t_ms = k * 10
        if k % 10 == 0:
            moving = np.tile(START, (16, 1)).astype(float)
            moving[:, 0] = START[0] + 0.1 * (t_ms / 1000 + np.arange(16) * 0.05)
            ctl.on_chunk(Chunk(t_ms * MS, moving, 0.05, 0.0, 0.0, k, t_ms * MS), t_ms * MS)
        out = ctl.tick(t_ms * MS).command
        errors.append(abs(out[0] - (START[0] + 0.1 * t_ms / 1000)))
    assert max(errors[100:]) < 0.002


def test_the_stage_axes_lead_the_chunk_by_the_actuation_delay_the_gripper_does_not():
    """A command reaches the stage 0.12 s after it leaves: x takes the action for then."""
    t = np.arange(16) * 0.05
    actions = np.tile(START, (16, 1)).astype(float)
    actions[:, 0] = 0.55 + 0.1 * t          # x ramps at 0.1 m/s
    actions[:, 4] = 0.085 - 0.05 * t        # the gripper closes at 0.05 m/s
    ctl = controller(actuation_delay=0.12, blending='naive')
    ctl.on_chunk(Chunk(0, actions, 0.05, 0.0, 0.0, 0, 0), 0)
    ctl.tick(190 * MS)  # the first tick after a hold starts from the current output
    out = ctl.tick(200 * MS).command
    assert out[0] == pytest.approx(0.55 + 0.1 * 0.32)
    assert out[4] == pytest.approx(0.085 - 0.05 * 0.2)
    ctl.set_actuation_delay(0.0)            # an estimate moved it
    assert ctl.tick(210 * MS).command[0] == pytest.approx(0.55 + 0.1 * 0.21)
    ctl.set_actuation_delay(5.0)            # never more than max_actuation_delay (0.3 s)
    assert ctl.tick(220 * MS).command[0] == pytest.approx(0.55 + 0.1 * 0.52)
    ctl.set_actuation_delay(math.nan)       # ignored
    assert ctl.tick(230 * MS).command[0] == pytest.approx(0.55 + 0.1 * 0.53)


def test_an_actuation_delay_beyond_its_maximum_is_refused():
    with pytest.raises(ValueError, match='actuation_delay'):
        ControlConfig(actuation_delay=0.5, max_actuation_delay=0.3)


# ------------------------------------------- no crash on the 100 Hz path (issue 31, item 4)
@pytest.mark.parametrize('huge', [1e4, -1e4, 1e12, 1e300])
@pytest.mark.parametrize('axis', range(5))
def test_a_finite_but_huge_target_holds_instead_of_raising(axis, huge):
    """Ruckig returned -101 (not in its result enum) and a ValueError escaped the tick."""
    control = Controller(ControlConfig(motion='ruckig'), START)
    actions = np.tile(START, (8, 1)).astype(float)
    actions[:, axis] = huge
    control.on_chunk(Chunk(0, actions, 0.05, 0.0, 0.001, 0, 0), 0)
    for k in range(1, 20):
        out = control.tick(k * 10 * MS)
        assert all(math.isfinite(v) for v in out.command)
        assert math.dist(out.command[:3], START[:3]) < 0.1


@pytest.mark.parametrize('axis, value', [(0, 1e4), (2, -0.5), (3, 3.0), (4, 0.2)])
def test_a_chunk_far_outside_the_workspace_is_refused(axis, value):
    cfg = ControlConfig()
    actions = np.tile(START, (8, 1)).astype(float)
    actions[3, axis] = value
    with pytest.raises(ValueError, match='outside \\[action_min, action_max\\]'):
        Chunk(0, actions, 0.05, 0.0, 0.001, 0, 0, (cfg.action_min, cfg.action_max))


@pytest.mark.parametrize('mode', [6, 99, -1])
def test_an_unknown_supervisor_mode_is_the_safest_one(mode):
    control = controller()
    control.on_chunk(ramp_chunk(0, 5), 5 * MS)
    control.on_mode(mode, 0, 10 * MS)
    assert control.mode == Mode.SOFTWARE_STOP
    first = control.tick(20 * MS).command
    assert control.tick(200 * MS).command == first  # held
