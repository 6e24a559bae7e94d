"""The control benchmark's figures: what they measure, checked (no wall-clock assertions)."""
import pytest

from sim2real_policy import control_bench
from sim2real_policy.control import ControlConfig

SECONDS = 6.0


@pytest.fixture(scope='module')
def sweep():
    return {r['inference_latency_ms']: r for r in control_bench.latency_sweep(seconds=SECONDS)}


def test_sweep_reports_where_the_commands_came_from_as_the_controller_saw_it(sweep):
    """Issue 17: tick_coverage was 1.0 by construction; these fractions move with latency."""
    config = ControlConfig()
    ticks = round(SECONDS / config.control_period)
    assert list(sweep) == list(control_bench.LATENCIES_MS)
    fresh = [sweep[ms]['fresh_fraction'] for ms in control_bench.LATENCIES_MS]
    assert fresh == sorted(fresh, reverse=True)  # later chunks: never more fresh commands
    for ms, row in sweep.items():
        if ms < config.fresh_chunk_age * 1e3:
            # chunks keep coming in time: the only holds are before the first one arrives
            assert row['hold_fraction'] * ticks == pytest.approx(ms / 10), row
            assert row['tail_fraction'] == 0.0, row
            # the first command from a chunk is at its arrival, a tick `latency` after its
            # observation (the chunk's age would be larger on average)
            assert row['observation_to_command_ms'] == pytest.approx(ms), row
        else:
            assert row['fresh_fraction'] == 0.0, row  # every chunk is older than fresh
            assert row['deadline_misses'] == ticks, row
    # 500 ms: 16 actions of 50 ms run out before the next chunk arrives, 500 ms later
    assert sweep[500]['tail_fraction'] > 0.3 and sweep[500]['hold_fraction'] > 0.3
    # 1000 ms = max_chunk_age: each chunk arrives past its last action; the controller holds
    assert sweep[1000]['hold_fraction'] == 1.0
    assert sweep[1000]['observation_to_command_ms'] is None


def test_blending_beats_naive_switching(sweep):
    for ms, row in sweep.items():
        if ms < 1000:
            assert row['max_step_blended'] < row['max_step_naive'], row


def test_sync_baseline_is_labelled_a_model():
    assert 'a model, not a measurement' in control_bench.SYNC_MODEL
    assert [r['inference_latency_ms'] for r in control_bench.sync_baseline()] == \
        list(control_bench.LATENCIES_MS)


def test_jitter_is_measured_on_the_control_nodes_own_timer(tmp_path, monkeypatch):
    """Issue 17: the jitter loop was a busy-spin of its own, not the node's timer."""
    from sim2real_policy.standin import build_standin
    from sim2real_safety import timing

    made = []

    class Recording(timing.PreciseTimer):
        def __init__(self, period_s, callback, *args, **kwargs):
            made.append(period_s)
            super().__init__(period_s, callback, *args, **kwargs)

    monkeypatch.setattr(timing, 'PreciseTimer', Recording)
    figures = control_bench.wall_clock_jitter(build_standin(tmp_path / 'standin.onnx'),
                                              seconds=0.3)
    assert made == [ControlConfig().control_period]
    assert figures['ticks'] >= 2 and figures['inferences'] >= 1, figures
    assert figures['p50'] <= figures['p99'] <= figures['max'], figures
