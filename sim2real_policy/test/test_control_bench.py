"""The control benchmark's simulated-clock figures (no wall-clock assertions)."""
from sim2real_policy import control_bench


def test_every_latency_keeps_every_tick_commanded_and_blending_beats_naive():
    rows = control_bench.latency_sweep(seconds=6.0)
    assert [r['inference_latency_ms'] for r in rows] == list(control_bench.LATENCIES_MS)
    for row in rows:
        assert row['tick_coverage'] == 1.0
        if row['inference_latency_ms'] < 1000:
            assert row['max_step_blended'] < row['max_step_naive']
    assert rows[0]['fresh_fraction'] > 0.95
    sync = {r['inference_latency_ms']: r['command_rate_hz'] for r in
            control_bench.sync_baseline()}
    assert sync[0] == 100.0 and sync[1000] < 1.0
