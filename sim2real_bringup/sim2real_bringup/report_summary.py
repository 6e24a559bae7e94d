"""The numbers of a run report (report.json), computed from the series of ``report_data``.

Every figure says what it is: ``measured`` (on the wall clock: the robot's node clock, or
the model run timed by the in-process runtime), ``simulated`` (charged or scheduled on the
simulated clock of an in-process run: a model, not a measurement) or ``counted`` (outcomes,
verdicts, messages).
"""
from __future__ import annotations

from collections import Counter
import re

import numpy as np

from sim2real_bringup import interfaces as ifc
from sim2real_bringup.metrics import RollingMetrics

M = 'sim2real_msgs/msg/'
CLOSE_DROP = 0.005      # m: the commanded width this far below the episode's widest = closing
SETTLED_WIDTH = 0.0005  # m: the measured width moving less than this ...
SETTLED_TIME = 0.2      # s: ... for this long = closed (the fingers stopped)
DEADLINE_MISSES = (
    'control ticks whose command missed the freshness budget: served from the tail of a chunk '
    'older than fresh_chunk_age (config/control.yaml), or held for want of a usable chunk '
    'while the policy was to drive; not the fallbacks a degraded mode orders. Summed over the '
    "run's controller restarts (in-process, one per episode). A chunk's tail is a planned "
    'fallback (the 100 Hz loop never waits): misses are a share to watch, not failures.')


def names(typename: str, prefix: str) -> dict:
    """``{value: NAME}`` of a message type's constants with ``prefix``."""
    return {v: k[len(prefix):] for k, v in ifc.constants(M + typename).items()
            if k.startswith(prefix)}


def stats(values) -> dict:
    """mean, p50, p95, p99 (None for no values)."""
    values = np.asarray(values, float)
    if values.size == 0:
        return {'mean': None, 'p50': None, 'p95': None, 'p99': None}
    return {'mean': float(values.mean()), 'p50': float(np.percentile(values, 50)),
            'p95': float(np.percentile(values, 95)), 'p99': float(np.percentile(values, 99))}


def deadline_misses(control) -> int:
    """Deadline misses of the whole run: each controller's count, summed over its restarts.

    In-process every episode starts a new controller, whose count starts again from 0.
    """
    metrics = RollingMetrics(window=1)
    for row in control:
        metrics.on_control(row[1], row[4], row[5])
    return int(metrics.deadline_misses)


def _clock_what(clock: str) -> str:
    return ('simulated clock (scheduled and charged by the in-process runtime: a model, not a '
            'measurement)' if clock == 'simulated' else 'measured on the robot (wall clock)')


def health(series: dict, clock: str, extra: dict) -> dict:
    """Latency, control timing, safety interventions, modes, stops, anomalies."""
    control = series['control']
    period = np.array([r[1] for r in control if np.isfinite(r[1])]) * 1e3
    jitter = np.array([abs(r[6]) for r in control if len(r) > 6 and np.isfinite(r[6])]) * 1e3
    obs_to_cmd = np.array([r[2] for r in control if np.isfinite(r[2])]) * 1e3
    sources = names('ControlDiagnostics', 'SOURCE_')
    charged = np.array([lat for _, lat in series['chunk_latency'] if np.isfinite(lat)]) * 1e3
    # measured inference: the robot's chunks, or the model run timed by the in-process runtime
    if clock == 'robot':
        inference = {**stats(charged), 'what': 'measured: ActionChunk.inference_latency on the '
                     "robot's clock", 'basis': 'measured', 'count': int(charged.size)}
    elif extra.get('inference_wall_ms', {}).get('p95') is not None:
        wall = extra['inference_wall_ms']
        inference = {'p50': wall.get('p50'), 'p95': wall.get('p95'), 'p99': wall.get('p99'),
                     'count': wall.get('inferences'), 'basis': 'measured',
                     'what': 'measured: the model run on the wall clock by the in-process '
                             'runtime (not in the bag; kept in report.json)'}
    else:
        inference = {'p50': None, 'p95': None, 'p99': None, 'count': 0, 'basis': 'not measured',
                     'what': 'not measured: no model was timed (a scripted or recorded policy, '
                             'or a report rebuilt without the run that timed it)'}
    verdict_names = names('SafetyStatus', 'VERDICT_')
    verdicts = Counter(verdict_names.get(r[1], str(r[1])) for r in series['verdicts'])
    checked = len(series['verdicts'])
    changed = checked - verdicts.get('PASS', 0)
    constraints = Counter(c for r in series['verdicts'] for c in r[2])
    ticks = len(control)
    misses = deadline_misses(control)
    return {
        'clock': clock,
        'inference_latency_ms': inference,
        'inference_charged_ms': {**stats(charged), 'basis': clock,
                                 'what': 'ActionChunk.inference_latency: ' + _clock_what(clock)},
        'observation_to_command_ms': {**stats(obs_to_cmd), 'basis': clock,
                                      'what': 'ControlDiagnostics.latency (observation stamp to '
                                              'first command of its chunk): '
                                              + _clock_what(clock)},
        'control_period_ms': {**stats(period), 'basis': clock,
                              'jitter_p99': float(np.percentile(jitter, 99))
                              if jitter.size else None,
                              'jitter_max': float(jitter.max()) if jitter.size else None,
                              'what': 'ControlDiagnostics.period and |jitter|: '
                                      + (_clock_what(clock) if clock == 'robot' else
                                         "the scheduler's period by construction, not "
                                         'measured; measure it with `sim2real bench control` '
                                         'or on the robot')},
        'deadline_misses': {'count': misses, 'ticks': ticks,
                            'share': misses / ticks if ticks else None,
                            'what': DEADLINE_MISSES},
        'command_sources': dict(Counter(sources.get(r[3], str(r[3])) for r in control)),
        'safety': {'checked': checked, 'changed': changed,
                   'changed_share': changed / checked if checked else None,
                   'verdicts': dict(verdicts), 'constraints': dict(constraints.most_common())},
        'modes': mode_timeline(series['modes']),
        'stops': software_stops(series['verdicts']),
        'anomalies': anomalies(series.get('anomalies', [])),
    }


def mode_timeline(modes) -> dict:
    """Time in each mode, every change with its reason, and the acknowledgements."""
    mode_names = names('SupervisorState', 'MODE_')
    time_in = Counter()
    changes = []
    for (t0, m0, _), (t1, _, _) in zip(modes, modes[1:]):
        time_in[mode_names.get(m0, str(m0))] += t1 - t0
    for (_, m0, _), (t1, m1, reason) in zip(modes, modes[1:]):
        if m1 != m0:
            changes.append({'t': t1, 'from': mode_names.get(m0, str(m0)),
                            'to': mode_names.get(m1, str(m1)), 'reason': reason})
    acknowledged = [{'t': c['t'], 'operator': m.group(1), 'note': m.group(2)}
                    for c in changes
                    if (m := re.match(r'acknowledged by (.+?): (.*)', c['reason']))]
    return {'time_s': {k: round(v, 3) for k, v in time_in.items()}, 'changes': changes,
            'first': mode_names.get(modes[0][1]) if modes else None,
            'acknowledgements': acknowledged}


def software_stops(verdicts) -> list[dict]:
    """Each software stop: when it latched, its cause (who asked), when it was reset."""
    stops, active = [], None
    for t, _, _, stop_active, cause, *_ in verdicts:
        if stop_active and active is None:
            active = {'latched_t': t, 'cause': cause, 'reset_t': None,
                      'reset_by': 'not in the bag (the safety node logs the reset operator '
                                  'to /rosout, which the bag does not record)'}
            stops.append(active)
        elif not stop_active and active is not None:
            active['reset_t'] = t
            active = None
    return stops


def anomalies(rows) -> list[dict]:
    """The logger's WARN/ERROR checks, grouped: first and last time seen, how often."""
    grouped: dict = {}
    for t, name, level, message in rows:
        entry = grouped.setdefault((name, message), {'check': name, 'message': message,
                                                     'level': 'ERROR' if level >= 2
                                                     else 'WARN', 'first_t': t, 'count': 0})
        entry['last_t'] = t
        entry['count'] += 1
    return list(grouped.values())


def episodes(series: dict) -> list[dict]:
    """Each episode's result, its bag time range and the moments a filmstrip shows."""
    commands = np.array(series['commands'], float).reshape(-1, 6)
    robot = np.array(series.get('robot', []), float).reshape(-1, 4)
    out = []
    for result in series['results']:
        end = result['t_end']
        start = max(0.0, end - result['duration_s'])
        out.append({**result, 't_start': start,
                    'moments': moments(commands, robot, start, end, result['success'])})
    return out


def moments(commands: np.ndarray, robot: np.ndarray, start: float, end: float,
            success: bool) -> list[tuple[str, float]]:
    """``[(label, t)]``: start, before closing, after closing, lift or failure.

    Closing begins at the first safe command of the episode narrower than its widest by
    ``CLOSE_DROP``; it is done when the measured width has moved less than ``SETTLED_WIDTH``
    for ``SETTLED_TIME`` (or one second later, without a measured width). An episode that
    never closed shows its start, middle and end.
    """
    last = 'lift' if success else 'failure'
    inside = commands[(commands[:, 0] >= start) & (commands[:, 0] <= end)]
    if len(inside) == 0:
        return [('start', start), (last, end)]
    widest = np.maximum.accumulate(inside[:, 5])
    closing = np.flatnonzero(inside[:, 5] < widest - CLOSE_DROP)
    if closing.size == 0:
        return [('start', start), ('middle, never closed', (start + end) / 2), (last, end)]
    t_close = float(inside[closing[0], 0])
    t_closed = min(t_close + 1.0, end)
    state = robot[(robot[:, 0] >= t_close) & (robot[:, 0] <= end)]
    for i in range(len(state)):
        t = state[i, 0]
        later = state[(state[:, 0] >= t) & (state[:, 0] <= t + SETTLED_TIME)]
        if later[-1, 0] - t >= SETTLED_TIME * 0.9 and np.ptp(later[:, 1]) < SETTLED_WIDTH:
            t_closed = float(state[i, 0])
            break
    return [('start', start), ('before closing', t_close), ('after closing', t_closed),
            (last, end)]


def summarize(series: dict, clock: str = 'simulated', extra: dict | None = None) -> dict:
    """The numbers of report.json (the keys of earlier reports kept)."""
    extra = extra or {}
    results = series['results']
    commands = np.array([c[1:] for c in series['commands']]) if series['commands'] \
        else np.zeros((0, 5))
    steps = np.abs(np.diff(commands, axis=0)) if len(commands) > 1 else np.zeros((0, 5))
    successes = sum(1 for r in results if r['success'])
    found = health(series, clock, extra)
    from sim2real_bringup.evaluation import wilson_interval
    return {
        'episodes': len(results), 'successes': successes,
        'success_rate': successes / len(results) if results else None,
        'ci95': list(wilson_interval(successes, len(results))) if results else None,
        'first5_success_rate': (sum(r['success'] for r in results[:5]) / len(results[:5])
                                if results else None),
        'clock': clock,
        'inference_latency_ms': found['inference_charged_ms'],
        'inference_measured_ms': found['inference_latency_ms'],
        'observation_to_command_ms': found['observation_to_command_ms'],
        'control_period_ms': found['control_period_ms'],
        'deadline_misses': found['deadline_misses']['count'],
        'deadline_misses_detail': found['deadline_misses'],
        'command_sources': found['command_sources'],
        'safety': {'verdicts': found['safety']['verdicts'],
                   'violations': found['safety']['constraints'],
                   'checked': found['safety']['checked'],
                   'changed': found['safety']['changed'],
                   'changed_share': found['safety']['changed_share']},
        'modes': {'time_s': found['modes']['time_s'],
                  'changes': len(found['modes']['changes']),
                  'transitions': found['modes']['changes'],
                  'acknowledgements': found['modes']['acknowledgements']},
        'software_stops': found['stops'],
        'anomalies': found['anomalies'],
        'policy_models': dict(series.get('model_ids', {})),
        'max_command_step': {'xyz_m': float(np.max(np.linalg.norm(
            np.diff(commands[:, :3], axis=0), axis=1))) if len(commands) > 1 else None,
            'gripper_m': float(steps[:, 4].max()) if len(steps) else None},
        'results': episodes(series),
    }
