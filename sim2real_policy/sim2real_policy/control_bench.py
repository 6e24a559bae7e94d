"""Control benchmark: the 100 Hz loop under inference latency, against the synchronous loop.

* ``latency_sweep`` -- measured on the simulated clock: the controller ticks at 100 Hz and a
  policy's chunks (a smooth reference plus a per-chunk prediction error) arrive ``latency``
  after their observation. Reported per latency, as the controller itself classified its
  ticks: the fraction of commands from a fresh chunk (younger than ``fresh_chunk_age``), from
  a chunk's tail, and holds for want of a usable chunk; the observation-to-command latency the
  controller reports; and the largest command step, blended (crossfade, ensemble) vs naive
  switching, on the same chunk stream.
* ``sync_baseline`` -- a model, not a measurement: the seed's loop with inference inline
  gives one command per inference, so its rate is 1 / max(control period, latency).
* ``wall_clock_jitter`` -- measured on the wall clock: the control node's own tick timer
  (``sim2real_safety.timing.PreciseTimer``, what the node ticks on in ROS wall time) drives
  its ``Controller`` at 100 Hz while another thread runs ONNX inference back to back; the
  period between ticks as the controller saw it, and its deviation from 10 ms. No ROS
  executor or DDS: ``sim2real_bringup/test/bench_control_ros.py`` measures the node on ROS.
* ``inference_latency`` -- measured on the wall clock: a model on ONNX Runtime and on
  cv2.dnn, batch 1.
"""
from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np

from sim2real_policy.control import (
    Chunk,
    ControlConfig,
    Controller,
    SOURCE_CHUNK_TAIL,
    SOURCE_HOLD,
    SOURCE_POLICY,
)

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
    # The chunk switching itself, with the output taking the blended target as it is: the
    # shipped jerk-limited motion bounds every variant's steps alike and would hide it.
    config = ControlConfig(blending=blending, motion='smoothing', smoothing=1.0)
    controller = Controller(config, tuple(_reference(np.array(0.0))))
    tick_ns = int(config.control_period * 1e9)
    next_obs_ns, pending = 0, []
    sources = {SOURCE_POLICY: 0, SOURCE_CHUNK_TAIL: 0, SOURCE_HOLD: 0}
    latencies = []
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
        sources[out.source] += 1
        if math.isfinite(out.latency):
            latencies.append(out.latency)
        commands.append(out.command)
    steps = np.linalg.norm(np.diff(np.asarray(commands)[:, :3], axis=0), axis=1)
    return {'fresh_fraction': sources[SOURCE_POLICY] / ticks,
            'tail_fraction': sources[SOURCE_CHUNK_TAIL] / ticks,
            'hold_fraction': sources[SOURCE_HOLD] / ticks,
            'deadline_misses': controller.deadline_misses,
            'observation_to_command_ms': (float(np.median(latencies)) * 1e3 if latencies
                                          else None),  # None: no command came from a chunk
            'max_step': float(steps.max())}


def latency_sweep(seconds: float = 20.0, seed: int = 0) -> list[dict]:
    """Per injected latency, on the simulated clock: where the commands came from, steps.

    The fractions, the deadline misses and the observation-to-command latency (median, ms)
    are the crossfade controller's; the largest steps compare the blendings.
    """
    rows = []
    for latency_ms in LATENCIES_MS:
        blended = _run(latency_ms / 1000, 'crossfade', seconds, seed)
        naive = _run(latency_ms / 1000, 'naive', seconds, seed)
        ensemble = _run(latency_ms / 1000, 'ensemble', seconds, seed)
        rows.append({'inference_latency_ms': latency_ms,
                     **{k: blended[k] for k in ('fresh_fraction', 'tail_fraction',
                                                'hold_fraction', 'deadline_misses',
                                                'observation_to_command_ms')},
                     'max_step_blended': blended['max_step'], 'max_step_naive': naive['max_step'],
                     'max_step_ensemble': ensemble['max_step']})
    return rows


SYNC_MODEL = ('a model, not a measurement: one command per inference, so the rate is '
              '1 / max(control period, inference latency)')


def sync_baseline(control_period: float = 0.01) -> list[dict]:
    """The seed's synchronous loop's command rate per latency, from :data:`SYNC_MODEL`."""
    return [{'inference_latency_ms': latency_ms,
             'command_rate_hz': 1.0 / max(control_period, latency_ms / 1000)}
            for latency_ms in LATENCIES_MS]


def _runner(model_path, backend: str):
    """The model's runner, a keypoint policy with a placeholder cell calibration.

    The cost of a prediction does not depend on the camera it maps through.
    """
    from sim2real_policy.keypoint_policy import load_policy
    from sim2real_safety.cell_file import CellCalibration

    runner = load_policy(model_path, backend)
    if hasattr(runner, 'calibration'):
        placeholder = [[100.0, 0.0, 0.0, 0.0], [0.0, 100.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
        runner.calibration = CellCalibration(placeholder, 0.0, 0.0, 0, 0)
    return runner


def wall_clock_jitter(model_path, seconds: float = 5.0) -> dict:
    """Tick period jitter (ms) of the control node's timer, inference on another thread.

    The timer is the node's own (:class:`sim2real_safety.timing.PreciseTimer`) and the periods
    are the ones its ``Controller`` reports (``TickResult.period``, wall time). A deadline
    the timer misses by more than a period is skipped, which shows as a long period.
    """
    from sim2real_safety.timing import PreciseTimer

    runner = _runner(model_path, 'onnxruntime')
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
    periods = []

    def on_tick():
        periods.append(controller.tick(time.monotonic_ns()).period)

    switch_interval = sys.getswitchinterval()  # the timer lowers it for its thread
    timer = PreciseTimer(config.control_period, on_tick, 'bench_control_tick')
    try:
        time.sleep(seconds)
    finally:
        timer.cancel()
        timer.thread.join()
        stop.set()
        worker.join()
        sys.setswitchinterval(switch_interval)
    measured = np.asarray([p for p in periods if math.isfinite(p)])
    jitter = np.abs(measured - config.control_period) * 1e3
    if not jitter.size:
        return {'p50': math.nan, 'p99': math.nan, 'max': math.nan, 'ticks': len(periods),
                'inferences': inferences[0], 'period_mean_ms': math.nan}
    return {'p50': float(np.percentile(jitter, 50)), 'p99': float(np.percentile(jitter, 99)),
            'max': float(jitter.max()), 'ticks': len(periods), 'inferences': inferences[0],
            'period_mean_ms': float(measured.mean() * 1e3)}


def inference_latency(model_path, runs: int = 500) -> dict:
    """p50/p95/p99 (ms) of one prediction, ONNX Runtime and cv2.dnn, batch 1."""
    from sim2real_policy.keypoint_policy import KIND
    from sim2real_policy.policy import read_metadata

    figures = {}
    keypoints = read_metadata(model_path).extra.get('kind') == KIND
    for backend in ('onnxruntime',) if keypoints else ('onnxruntime', 'cv2_dnn'):
        runner = _runner(model_path, backend)
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
