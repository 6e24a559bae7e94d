"""Run reports from a rosbag2 bag (report.json, one self-contained report.html); comparisons.

Everything is recomputed from the bag alone (no state of the run that wrote it), so a bag
from the robot, from `ros2 bag record` or from the in-process runtime gives the same report;
what only the run knew (the wall-clock timing of the model) comes in ``extra``. The parts:
``report_data`` reads the bag, ``report_summary`` computes the figures, ``report_audit``
checks the safe commands, ``checklist`` judges them, ``report_frames`` cuts the filmstrips,
``report_plots`` draws and ``report_html`` lays out the page.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from sim2real_bringup import report_data
from sim2real_bringup.checklist import run_checklist, transfer_row
from sim2real_bringup.report_data import check_topics, collect, REPORT_TOPICS  # noqa: F401
from sim2real_bringup.report_plots import PLOTS, plots  # noqa: F401
from sim2real_bringup.report_summary import summarize  # noqa: F401

# What only the run knew, kept when a report is rebuilt from its bag (sim2real report).
RUN_KEYS = ('where', 'seed', 'policy', 'simulated_s', 'wall_s', 'inference_wall_ms',
            'inference_charged_ms')


def build(bag: str | Path, extra: dict | None = None) -> tuple[dict, dict, dict]:
    """``(summary, info, series)`` of a bag; raises :class:`BagError` for a foreign one."""
    from sim2real_bringup.report_audit import audit_commands

    extra = dict(extra or {})
    held = check_topics(bag)
    series = collect(bag)
    info = report_data.run_info(bag, held)
    if 'where' in extra and info['where'].startswith('simulation ('):
        info['where'] = str(extra['where'])   # a run folder's report.json knew it
    summary = summarize(series, info['clock'], extra)
    summary.update(extra)
    summary['diagnostics_recorded'] = '/diagnostics' in held
    summary['run'] = {k: v for k, v in info.items() if k != 'calibrations'}
    summary['audit'] = audit_commands(series, info)
    where = info['where'] if info['where'] in ('proxy', 'robot') or info['clock'] == 'simulated' \
        else 'robot'
    summary['checklist'] = run_checklist(summary, where)
    summary['plots'] = list(PLOTS)
    return summary, info, series


def _run_folder(bag: Path) -> str:
    """The folder `sim2real replay` takes for this bag (a run folder holding bag/, or it)."""
    bag = Path(bag).resolve()
    return str(bag.parent if bag.name == 'bag' else bag)


def write_report(bag: str | Path, out_dir: str | Path, extra: dict | None = None) -> dict:
    """Write report.json and report.html for ``bag`` into ``out_dir``; return the summary."""
    from sim2real_bringup import report_html
    from sim2real_bringup.report_frames import filmstrips

    out_dir = Path(out_dir)
    # everything is read and computed before anything is written
    summary, info, series = build(bag, extra)
    images = plots(series, summary)
    strips = filmstrips(bag, summary['results'], series['frames'], series['start_ns'])
    run = _run_folder(Path(bag))
    page = report_html.run_page(summary, info, images, strips, run,
                                f'sim2real run report — {Path(run).name}')
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'report.json').write_text(json.dumps(summary, indent=2))
    (out_dir / 'report.html').write_text(page)
    return summary


def _fmt(value, kind: str = 'pct') -> str:
    if value is None:
        return 'n/a'
    return f'{value:.0%}' if kind == 'pct' else f'{value:.2f} ms' if kind == 'ms' else str(value)


def _mean_duration(s: dict) -> float | None:
    durations = [r['duration_s'] for r in s['results']]
    return sum(durations) / len(durations) if durations else None


def _duration(s: dict) -> str:
    mean = _mean_duration(s)
    return 'n/a' if mean is None else f'{mean:.1f} s'


def _disjoint(a, b) -> bool:
    return a is not None and b is not None and (a[1] < b[0] or b[1] < a[0])


def compare(a: dict, b: dict) -> tuple[list, list, list]:
    """``(rows, checklist, differences)`` of two summaries (A, then B)."""
    from sim2real_bringup.evaluation import ratio_interval

    def ci(s):
        return 'n/a' if not s.get('ci95') else f'{s["ci95"][0]:.0%}-{s["ci95"][1]:.0%}'

    def failures(s):
        counts = {}
        for r in s['results']:
            if not r['success']:
                counts[r['failure_reason'] or 'no reason'] = counts.get(
                    r['failure_reason'] or 'no reason', 0) + 1
        return ', '.join(f'{k} ({v})' for k, v in counts.items()) or 'none'

    def constraints(s):
        return ', '.join(f'{k} {v}' for k, v in s['safety']['violations'].items()) or 'none'

    def modes(s):
        return ', '.join(f'{k} {v:.1f} s' for k, v in s['modes']['time_s'].items()) or 'n/a'

    from sim2real_bringup.report_html import where_text

    ra, rb = a['run'], b['run']
    rows = [
        ('where', where_text(ra['where']), where_text(rb['where']), 'counted'),
        ('policy', ', '.join(a['policy_models']) + f' ({ra["policy_sha256"]})',
         ', '.join(b['policy_models']) + f' ({rb["policy_sha256"]})', 'counted'),
        ('config sha256', str(ra['config_sha256']), str(rb['config_sha256']), 'counted'),
        ('episodes', str(a['episodes']), str(b['episodes']), 'counted'),
        ('success rate', f'{_fmt(a["success_rate"])} ({a["successes"]}/{a["episodes"]})',
         f'{_fmt(b["success_rate"])} ({b["successes"]}/{b["episodes"]})', 'counted'),
        ('95 % Wilson interval', ci(a), ci(b), 'counted'),
        ('first 5 trials', _fmt(a['first5_success_rate']), _fmt(b['first5_success_rate']),
         'counted'),
        ('failures (reason)', failures(a), failures(b), 'counted'),
        ('episode duration, mean', _duration(a), _duration(b), a['clock']),
        ('safety: proposals changed', _fmt(a['safety']['changed_share']),
         _fmt(b['safety']['changed_share']), 'counted'),
        ('safety: constraints', constraints(a), constraints(b), 'counted'),
        ('unsafe commands (audit)', str(a['audit']['unsafe']), str(b['audit']['unsafe']),
         'counted'),
        ('supervisor modes', modes(a), modes(b), a['clock']),
        ('deadline misses (share of ticks)',
         _fmt(a['deadline_misses_detail']['share']), _fmt(b['deadline_misses_detail']['share']),
         'counted'),
        ('inference latency p95', _fmt(a['inference_measured_ms'].get('p95'), 'ms'),
         _fmt(b['inference_measured_ms'].get('p95'), 'ms'),
         a['inference_measured_ms']['basis']),
        ('observation-to-command p95', _fmt(a['observation_to_command_ms']['p95'], 'ms'),
         _fmt(b['observation_to_command_ms']['p95'], 'ms'), a['clock']),
    ]
    rate_a, rate_b = a['success_rate'], b['success_rate']
    interval = None
    if rate_a and rate_b is not None:
        interval = ratio_interval(b['ci95'], a['ci95'], rate_b, rate_a)
    row = transfer_row(rate_a, rate_b, interval)
    checklist = ([dict(r, item=f'A: {r["item"]}') for r in a['checklist']]
                 + [dict(r, item=f'B: {r["item"]}') for r in b['checklist']] + [row])
    differences = []
    if _disjoint(a.get('ci95'), b.get('ci95')):
        differences.append(f'success differs beyond chance: A {_fmt(rate_a)} [{ci(a)}] vs B '
                           f'{_fmt(rate_b)} [{ci(b)}] (95 % intervals do not overlap)')
    elif rate_a is not None and rate_b is not None and rate_a != rate_b:
        differences.append(f'success A {_fmt(rate_a)} vs B {_fmt(rate_b)}: within the noise '
                           f'of {a["episodes"]} and {b["episodes"]} episodes (the 95 % '
                           'intervals overlap)')
    if ra['policy_sha256'] != rb['policy_sha256']:
        differences.append(f'different policies: A {ra["policy_sha256"]}, B '
                           f'{rb["policy_sha256"]}')
    if ra['config_sha256'] != rb['config_sha256']:
        differences.append(f'different config folders: A {ra["config_sha256"]}, B '
                           f'{rb["config_sha256"]}')
    new = set(b['safety']['violations']) - set(a['safety']['violations'])
    if new:
        differences.append(f'constraints violated only in B: {", ".join(sorted(new))}')
    gone = set(a['safety']['violations']) - set(b['safety']['violations'])
    if gone:
        differences.append(f'constraints violated only in A: {", ".join(sorted(gone))}')
    modes_b = set(b['modes']['time_s']) - set(a['modes']['time_s'])
    if modes_b:
        differences.append(f'supervisor modes entered only in B: {", ".join(sorted(modes_b))}')
    for name, s in (('A', a), ('B', b)):
        if s['audit']['unsafe']:
            differences.append(f'{name}: {s["audit"]["unsafe"]} unsafe commands left the '
                               'safety filter')
    da, db = _mean_duration(a), _mean_duration(b)
    if da and db and abs(db - da) > 0.2 * da:
        differences.append(f'episodes last {db / da:.1f}x as long in B ({db:.1f} s) as in A '
                           f'({da:.1f} s, {a["clock"]} clock)')
    fa, fb = failures(a), failures(b)
    if fa != fb:
        differences.append(f'failure reasons: A {fa}; B {fb}')
    return rows, checklist, differences


def write_comparison(runs: list, out_dir: str | Path, extras: list) -> dict:
    """Write report.json and report.html comparing two runs (bags) into ``out_dir``."""
    from sim2real_bringup import report_html
    from sim2real_bringup.report_plots import comparison_plot

    out_dir = Path(out_dir)
    (a, _, _), (b, _, _) = (build(bag, extra) for bag, extra in zip(runs, extras))
    for s, bag in ((a, runs[0]), (b, runs[1])):
        folder = Path(_run_folder(Path(bag)))
        s['label'] = f'{folder.name} ({report_html.where_text(s["run"]["where"])})'
        s['report'] = os.path.relpath(folder / 'report.html', out_dir.resolve())
    rows, checklist, differences = compare(a, b)
    images = {'success over episodes (A and B)': comparison_plot(a, b)}
    title = f'sim2real comparison — A {Path(_run_folder(Path(runs[0]))).name} vs B ' \
        f'{Path(_run_folder(Path(runs[1]))).name}'
    page = report_html.comparison_page(a, b, rows, checklist, differences, images, title)
    result = {'a': a['label'], 'b': b['label'], 'transfer_ratio': checklist[-1],
              'rows': rows, 'checklist': checklist, 'differences': differences}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'report.json').write_text(json.dumps(result, indent=2))
    (out_dir / 'report.html').write_text(page)
    return result
