"""Control benchmark: the 100 Hz loop under inference latency, against the synchronous loop.

* ``latency_sweep`` -- on the simulated clock: a policy whose chunks (a smooth reference plus
  a per-chunk prediction error) arrive ``latency`` after their observation; the controller
  ticks at 100 Hz. Reported per latency: the fraction of ticks that emitted a command, the
  fraction served from a chunk younger than ``max_chunk_age``, and the largest command step,
  blended (crossfade) vs naive switching, on the same chunk stream.
* ``sync_baseline`` -- the seed's loop, inference inline: one command per inference.
* ``wall_clock_jitter`` -- the controller on a thread at 100 Hz in wall time while another
  thread runs ONNX inference back to back; the tick period's deviation from 10 ms.
* ``inference_latency`` -- a model on ONNX Runtime and on cv2.dnn, batch 1.
"""
from __future__ import annotations

import math
import threading
import time

import numpy as np

from sim2real_policy.control import Chunk, ControlConfig, Controller

MS = 1_000_000
LATENCIES_MS = (0, 50, 100, 200, 500, 1000)


def _reference(t: np.ndarray) -> np.ndarray:
    """A smooth 5-D reference trajectory (m, rad) at times ``t`` (s)."""
    return np.stack([0.55 + 0.08 * np.sin(0.8 * t), 0.1 * np.sin(0.5 * t + 1.0),
                     0.2 + 0.05 * np.sin(0.9 * t), 0.3 * np.sin(0.3 * t),
                     0.04 + 0.04 * np.sin(0.7 * t)], axis=-1)


def _run(latency_s: float, blending: str, seconds: float, seed: int,
         horizon: int = 16, period: float = 0.05, min_inference_period: float = 0.1) -> dict:
    rng = np.random.default_rng(seed)
    config = ControlConfig(blending=blending, smoothing=1.0)
    controller = Controller(config, tuple(_reference(np.array(0.0))))
    tick_ns = int(config.control_period * 1e9)
    next_obs_ns, pending = 0, []
    emitted = fresh = 0
    commands = []
    ticks = int(seconds / config.control_period)
    for k in range(ticks):
        now = k * tick_ns
        if now >= next_obs_ns:  # inference starts on the newest observation
            t_obs = now / 1e9
            actions = _reference(t_obs + period * np.arange(horizon)) + rng.normal(0, 0.003, 5)
            pending.append((now + int(latency_s * 1e9), Chunk(now, actions, period, 0.0,
                                                              latency_s, k, 0)))
            next_obs_ns = now + int(max(latency_s, min_inference_period) * 1e9)
        while pending and pending[0][0] <= now:
            _, chunk = pending.pop(0)
            controller.on_chunk(chunk, now)
        out = controller.tick(now)
        if all(math.isfinite(v) for v in out.command):
            emitted += 1
        if math.isfinite(out.chunk_age) and out.chunk_age <= config.max_chunk_age:
            fresh += 1
        commands.append(out.command)
    steps = np.linalg.norm(np.diff(np.asarray(commands)[:, :3], axis=0), axis=1)
    return {'tick_coverage': emitted / ticks, 'fresh_fraction': fresh / ticks,
            'max_step': float(steps.max())}


def latency_sweep(seconds: float = 20.0, seed: int = 0) -> list[dict]:
    """Per injected latency: coverage, freshness, largest step blended vs naive."""
    rows = []
    for latency_ms in LATENCIES_MS:
        blended = _run(latency_ms / 1000, 'crossfade', seconds, seed)
        naive = _run(latency_ms / 1000, 'naive', seconds, seed)
        ensemble = _run(latency_ms / 1000, 'ensemble', seconds, seed)
        rows.append({'inference_latency_ms': latency_ms,
                     'tick_coverage': blended['tick_coverage'],
                     'fresh_fraction': blended['fresh_fraction'],
                     'max_step_blended': blended['max_step'], 'max_step_naive': naive['max_step'],
                     'max_step_ensemble': ensemble['max_step']})
    return rows


def sync_baseline(control_period: float = 0.01) -> list[dict]:
    """The seed's synchronous loop: observe, infer inline, act; the rate it reaches."""
    rows = []
    for latency_ms in LATENCIES_MS:
        # each iteration waits for the inference, then for the rest of its control period
        iteration = max(control_period, latency_ms / 1000 + 1e-4)
        rows.append({'inference_latency_ms': latency_ms, 'command_rate_hz': 1.0 / iteration})
    return rows


def wall_clock_jitter(model_path, seconds: float = 5.0) -> dict:
    """Tick period jitter (ms) at 100 Hz with inference running on another thread."""
    from sim2real_policy.policy import PolicyRunner

    runner = PolicyRunner(model_path)
    width, height = runner.meta.image_size
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    proprio = [0.55, 0.0, 0.2, 0.0, 0.04, 0.0]
    stop = threading.Event()
    inferences = [0]

    def infer():
        while not stop.is_set():
            runner.predict(frame, proprio, preprocessed=True)
            inferences[0] += 1
            time.sleep(0.0005)  # a real policy node waits for the next frame

    worker = threading.Thread(target=infer, daemon=True)
    worker.start()
    config = ControlConfig()
    controller = Controller(config, tuple(proprio[:5]))
    period_ns = int(config.control_period * 1e9)
    stamps = []
    start = time.perf_counter_ns()
    deadline = start
    while time.perf_counter_ns() - start < seconds * 1e9:
        deadline += period_ns
        # sleep most of the wait, spin the last 0.5 ms: the OS wakes threads late
        remaining = deadline - time.perf_counter_ns()
        if remaining > 600_000:
            time.sleep((remaining - 500_000) / 1e9)
        while time.perf_counter_ns() < deadline:
            pass
        now = time.perf_counter_ns()
        controller.tick(now)
        stamps.append(now)
    stop.set()
    worker.join()
    jitter = np.abs(np.diff(stamps) - period_ns) / 1e6
    return {'p50': float(np.percentile(jitter, 50)), 'p99': float(np.percentile(jitter, 99)),
            'max': float(jitter.max()), 'ticks': len(stamps), 'inferences': inferences[0]}


def inference_latency(model_path, runs: int = 500) -> dict:
    """p50/p95/p99 (ms) of one prediction, ONNX Runtime and cv2.dnn, batch 1."""
    from sim2real_policy.policy import PolicyRunner

    figures = {}
    for backend in ('onnxruntime', 'cv2_dnn'):
        runner = PolicyRunner(model_path, backend)
        width, height = runner.meta.image_size
        frame = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
        proprio = [0.55, 0.0, 0.2, 0.0, 0.04, 0.0]
        for _ in range(20):
            runner.predict(frame, proprio, preprocessed=True)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            runner.predict(frame, proprio, preprocessed=True)
            times.append((time.perf_counter() - start) * 1e3)
        figures[backend] = {q: float(np.percentile(times, int(q[1:]))) for q in
                            ('p50', 'p95', 'p99')}
    return figures
