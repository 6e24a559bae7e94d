"""Run reports from a rosbag2 bag: report.json and report.html with plots.

Everything is recomputed from the bag alone (no state of the run that wrote it), so a bag
from the robot, from `ros2 bag record` or from the in-process runtime gives the same report.
"""
from __future__ import annotations

import base64
from collections import Counter
import html
import io
import json
from pathlib import Path

import numpy as np

from sim2real_bringup import convert
from sim2real_bringup import interfaces as ifc
from sim2real_bringup.bag import bag_summary, BagError, read_bag
from sim2real_bringup.metrics import RollingMetrics
from sim2real_bringup.topics import BY_NAME

NS = 1e9
M = 'sim2real_msgs/msg/'
# The topics a report is made of (each with the suite's type).
REPORT_TOPICS = ('/policy/action_chunk', '/control/diagnostics', '/safety/command',
                 '/safety/status', '/supervisor/state', '/episode/result')


def _names(typename: str, prefix: str) -> dict:
    return {v: k[len(prefix):] for k, v in ifc.constants(typename).items()
            if k.startswith(prefix)}


def check_topics(bag: str | Path) -> list[str]:
    """The report's topics the bag holds with the suite's types.

    Raises :class:`BagError` (one line naming the bag and what is missing) when it holds none
    of them, or holds one of them with another type.
    """
    held = bag_summary(bag)
    wrong = [f'{name} is {held[name]["type"]}, not {BY_NAME[name].typename}'
             for name in REPORT_TOPICS if name in held
             and held[name]['type'] != BY_NAME[name].typename]
    if wrong:
        raise BagError(f'{bag}: not the sim2real types: {"; ".join(wrong)}')
    present = [name for name in REPORT_TOPICS if name in held]
    if not present:
        others = ', '.join(f'{name} ({info["type"]})' for name, info in list(held.items())[:5])
        more = f' and {len(held) - 5} more' if len(held) > 5 else ''
        raise BagError(f'{bag}: no sim2real topic to report on (none of '
                       f'{", ".join(REPORT_TOPICS)}); the bag holds '
                       f'{others + more if held else "no topics"}')
    return present


def collect(bag: str | Path) -> dict:
    """The series a report needs, read from the bag (:class:`BagError` if it has none)."""
    check_topics(bag)
    series = {'chunk_latency': [], 'control': [], 'commands': [], 'verdicts': [], 'modes': [],
              'results': [], 'transitions': []}
    for m in read_bag(bag, topics=set(REPORT_TOPICS)):
        t, msg = m.time_ns / NS, m.msg
        if m.topic == '/policy/action_chunk':
            series['chunk_latency'].append((t, msg.inference_latency))
        elif m.topic == '/control/diagnostics':
            series['control'].append((t, msg.period, msg.latency, msg.command_source,
                                      msg.deadline_misses, msg.tick))
        elif m.topic == '/safety/command':
            series['commands'].append((t, *convert.command_pose(msg)))
        elif m.topic == '/safety/status':
            series['verdicts'].append((t, msg.verdict,
                                       tuple(v.constraint for v in msg.violations)))
        elif m.topic == '/supervisor/state':
            series['modes'].append((t, msg.mode, msg.reason))
        elif m.topic == '/episode/result':
            series['results'].append((t, msg.episode, msg.success, msg.duration, msg.seed))
    return series


def _deadline_misses(control) -> int:
    """Deadline misses of the whole run: each controller's count, summed over its restarts.

    In-process every episode starts a new controller, whose count starts again from 0.
    """
    metrics = RollingMetrics(window=1)
    for _, period, _, _, misses, tick in control:
        metrics.on_control(period, misses, tick)
    return int(metrics.deadline_misses)


def summarize(series: dict) -> dict:
    """The numbers of report.json."""
    verdict_names = _names(M + 'SafetyStatus', 'VERDICT_')
    mode_names = _names(M + 'SupervisorState', 'MODE_')
    results = series['results']
    latency = np.array([lat for _, lat in series['chunk_latency']]) * 1e3
    control = np.array([(p, lat) for _, p, lat, *_ in series['control']], dtype=float) \
        if series['control'] else np.zeros((0, 2))
    obs_to_cmd = control[:, 1][np.isfinite(control[:, 1])] * 1e3 if len(control) else []
    periods = control[:, 0][np.isfinite(control[:, 0])] * 1e3 if len(control) else []
    verdicts = Counter(verdict_names[v] for _, v, _ in series['verdicts'])
    constraints = Counter(c for _, _, cs in series['verdicts'] for c in cs)
    # time in each mode, from consecutive state messages
    time_in = Counter()
    changes = 0
    modes = series['modes']
    for (t0, m0, _), (t1, m1, _) in zip(modes, modes[1:]):
        time_in[mode_names[m0]] += t1 - t0
        changes += m1 != m0
    commands = np.array([c[1:] for c in series['commands']]) if series['commands'] \
        else np.zeros((0, 5))
    steps = np.abs(np.diff(commands, axis=0)) if len(commands) > 1 else np.zeros((0, 5))

    def stats(values):
        values = np.asarray(values, float)
        if values.size == 0:
            return {'mean': None, 'p50': None, 'p95': None, 'p99': None}
        return {'mean': float(values.mean()), 'p50': float(np.percentile(values, 50)),
                'p95': float(np.percentile(values, 95)), 'p99': float(np.percentile(values, 99))}

    successes = sum(1 for r in results if r[2])
    return {
        'episodes': len(results), 'successes': successes,
        'success_rate': successes / len(results) if results else None,
        'inference_latency_ms': stats(latency),
        'observation_to_command_ms': stats(obs_to_cmd),
        'control_period_ms': stats(periods),
        'deadline_misses': _deadline_misses(series['control']),
        'safety': {'verdicts': dict(verdicts), 'violations': dict(constraints),
                   'checked': len(series['verdicts'])},
        'modes': {'time_s': {k: round(v, 3) for k, v in time_in.items()},
                  'changes': changes},
        'max_command_step': {'xyz_m': float(np.max(np.linalg.norm(
            np.diff(commands[:, :3], axis=0), axis=1))) if len(commands) > 1 else None,
            'gripper_m': float(steps[:, 4].max()) if len(steps) else None},
        'results': [{'episode': int(e), 'success': bool(s), 'duration_s': float(d),
                     'seed': int(seed)} for _, e, s, d, seed in results],
    }


def _figure_png(draw) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3))
    draw(axis)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode('ascii')


PLOTS = ('action distribution', 'action rate of change', 'latency histogram',
         'supervisor-mode timeline', 'success over episodes', 'safety verdicts over time')


def plots(series: dict) -> dict:
    """Each plot of the report, as base64 PNG."""
    commands = np.array(series['commands']) if series['commands'] \
        else np.zeros((0, 6))
    names = ['x', 'y', 'z', 'yaw', 'gripper_width']
    mode_names = _names(M + 'SupervisorState', 'MODE_')
    verdict_names = _names(M + 'SafetyStatus', 'VERDICT_')

    def distribution(ax):
        if len(commands):
            ax.boxplot([commands[:, i + 1] for i in range(5)])
            ax.set_xticks(range(1, 6), names)
        ax.set_title('safe command distribution (m, rad)')

    def rate(ax):
        if len(commands) > 1:
            dt = np.diff(commands[:, 0])
            dt[dt <= 0] = np.nan
            for i, name in enumerate(names[:3]):
                ax.plot(commands[1:, 0], np.diff(commands[:, i + 1]) / dt, lw=0.6, label=name)
            ax.legend(loc='upper right')
        ax.set_title('command rate of change (m/s)')
        ax.set_xlabel('time (s)')

    def latency(ax):
        values = [lat * 1e3 for _, _, lat, *_ in series['control'] if np.isfinite(lat)]
        if values:
            ax.hist(values, bins=50)
        ax.set_title('observation-to-command latency (ms)')

    def modes(ax):
        if series['modes']:
            t = [m[0] for m in series['modes']]
            ax.step(t, [m[1] for m in series['modes']], where='post')
        ax.set_yticks(sorted(mode_names), [mode_names[k] for k in sorted(mode_names)])
        ax.set_title('supervisor mode')
        ax.set_xlabel('time (s)')

    def success(ax):
        results = series['results']
        if results:
            outcomes = np.array([r[2] for r in results], float)
            ax.bar(range(len(outcomes)), outcomes)
            ax.plot(np.cumsum(outcomes) / np.arange(1, len(outcomes) + 1), 'k-',
                    label='running success rate')
            ax.legend()
        ax.set_ylim(0, 1.05)
        ax.set_title('success over episodes')
        ax.set_xlabel('episode')

    def verdicts(ax):
        if series['verdicts']:
            t = np.array([v[0] for v in series['verdicts']])
            v = np.array([v[1] for v in series['verdicts']])
            for code, name in sorted(verdict_names.items()):
                mask = v == code
                if mask.any():
                    ax.plot(t[mask], v[mask], '|', label=name)
            ax.legend(loc='upper right', fontsize=7)
        ax.set_yticks(sorted(verdict_names), [verdict_names[k] for k in sorted(verdict_names)])
        ax.set_title('safety verdicts')
        ax.set_xlabel('time (s)')

    draws = dict(zip(PLOTS, (distribution, rate, latency, modes, success, verdicts)))
    return {name: _figure_png(draw) for name, draw in draws.items()}


def write_report(bag: str | Path, out_dir: str | Path, extra: dict | None = None) -> dict:
    """Write report.json and report.html for ``bag`` into ``out_dir``; return the summary."""
    out_dir = Path(out_dir)
    series = collect(bag)  # everything is read and computed before anything is written
    summary = summarize(series)
    summary.update(extra or {})
    summary['plots'] = list(PLOTS)
    images = plots(series)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'report.json').write_text(json.dumps(summary, indent=2))
    body = ''.join(f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" '
                   f'src="data:image/png;base64,{png}">' for name, png in images.items())
    table = html.escape(json.dumps({k: v for k, v in summary.items() if k != 'results'},
                                   indent=2))
    (out_dir / 'report.html').write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><title>sim2real report</title>'
        f'</head><body><h1>sim2real run report</h1><p>bag: {html.escape(str(bag))}</p>'
        f'<pre>{table}</pre>{body}</body></html>')
    return summary
