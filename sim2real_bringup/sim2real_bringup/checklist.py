"""The seed's deployment checklist, judged on one run's measured figures.

Each row is PASS, FAIL or NOT MEASURED (never a pass on a modelled figure): success in
simulation (or the first five trials on the reality proxy or the robot), observation-to-command
latency, unsafe commands found by an independent audit of the bag, and, when two runs are
compared, the transfer ratio.
"""
from __future__ import annotations

SIM_SUCCESS_MIN = 0.70          # success rate in simulation
FIRST_TRIALS = 5                # trials on the proxy or the robot ...
FIRST_TRIALS_SUCCESS_MIN = 0.30  # ... of which more than this share succeed
LATENCY_P95_MAX_MS = 500.0      # observation-to-command, p95
TRANSFER_RATIO_MIN = 0.5        # success on B / success on A

PASS, FAIL, NOT_MEASURED = 'PASS', 'FAIL', 'NOT MEASURED'


def _row(item: str, ok: bool | None, figure: str, basis: str) -> dict:
    status = NOT_MEASURED if ok is None else (PASS if ok else FAIL)
    return {'item': item, 'status': status, 'passed': ok, 'figure': figure, 'basis': basis}


def _percent(value) -> str:
    return 'n/a' if value is None else f'{value:.0%}'


def run_checklist(summary: dict, where: str, control_period_ms: float | None) -> list[dict]:
    """The checklist rows of one run (``summary``: report.json's numbers).

    ``where``: ``proxy``, ``robot`` or a simulation profile. ``control_period_ms``: the
    configured control period, added to the measured inference p95 when the observation-to-
    command latency itself was only simulated (as `sim2real evaluate` does).
    """
    rows = []
    results = summary['results']
    n = len(results)
    if where in ('proxy', 'robot'):
        first = results[:FIRST_TRIALS]
        rate = sum(r['success'] for r in first) / len(first) if first else None
        rows.append(_row(
            f'first {FIRST_TRIALS} trials on the {"reality proxy" if where == "proxy" else where}'
            f': success > {FIRST_TRIALS_SUCCESS_MIN:.0%}',
            None if len(first) < FIRST_TRIALS else rate > FIRST_TRIALS_SUCCESS_MIN,
            f'{sum(r["success"] for r in first)}/{len(first)} = {_percent(rate)}'
            + ('' if len(first) >= FIRST_TRIALS else f' (only {len(first)} trials)'),
            'counted outcomes'))
    else:
        rate = summary['success_rate']
        ci = summary.get('ci95') or (None, None)
        rows.append(_row(
            f'success in simulation > {SIM_SUCCESS_MIN:.0%}',
            None if not n else rate > SIM_SUCCESS_MIN,
            f'{summary["successes"]}/{n} = {_percent(rate)} (95 % CI {_percent(ci[0])}-'
            f'{_percent(ci[1])})', 'counted outcomes'))
    item = f'observation-to-command latency p95 < {LATENCY_P95_MAX_MS:.0f} ms'
    if summary['clock'] == 'robot':
        p95 = summary['observation_to_command_ms']['p95']
        rows.append(_row(item, None if p95 is None else p95 < LATENCY_P95_MAX_MS,
                         'n/a' if p95 is None else f'{p95:.1f} ms',
                         "measured on the robot's clock (ControlDiagnostics.latency)"))
    else:
        p95 = summary['inference_measured_ms'].get('p95')
        if p95 is None or control_period_ms is None:
            rows.append(_row(item, None, 'no measurement', "the simulated clock's latency is "
                             'a model and is not judged; no model run was timed'))
        else:
            total = p95 + control_period_ms
            rows.append(_row(item, total < LATENCY_P95_MAX_MS,
                             f'{total:.1f} ms = inference p95 {p95:.2f} ms + one control '
                             f'period {control_period_ms:.0f} ms',
                             'inference measured on the wall clock; the control period is '
                             "the configured one; the simulated clock's latency is not "
                             'judged'))
    audit = summary.get('audit')
    if not audit or audit.get('commands', 0) == 0:
        rows.append(_row('no unsafe command left the safety filter', None, 'no command audited',
                         'independent audit of /safety/command'))
    else:
        rows.append(_row('no unsafe command left the safety filter', audit['unsafe'] == 0,
                         f'{audit["unsafe"]} unsafe of {audit["commands"]} commands',
                         audit['what']))
    return rows


def transfer_row(rate_a: float | None, rate_b: float | None, interval=None) -> dict:
    """The transfer ratio row: success on B / success on A > ``TRANSFER_RATIO_MIN``."""
    if not rate_a or rate_b is None:
        return _row(f'transfer ratio > {TRANSFER_RATIO_MIN}', None,
                    'n/a (no success on A)' if rate_a == 0 else 'n/a', 'counted outcomes')
    ratio = rate_b / rate_a
    bounds = '' if interval is None else f' (conservative 95 % interval {interval[0]:.2f}-' \
        f'{interval[1]:.2f})'
    return _row(f'transfer ratio > {TRANSFER_RATIO_MIN}', ratio > TRANSFER_RATIO_MIN,
                f'{ratio:.2f}{bounds}', 'counted outcomes of both runs')
