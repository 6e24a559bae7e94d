"""The seed's deployment checklist, judged on one run's measured figures.

Each row is PASS, FAIL or NOT MEASURED (never a pass on a modelled figure, nor on a sum of
parts): success in simulation (or the first five trials on the reality proxy or the robot),
observation-to-command latency (the age measured on the robot; NOT MEASURED on the simulated
clock), unsafe commands found by an independent audit of the bag, and, when two runs are
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


def latency_row(p95_ms: float | None, clock: str,
                inference_p95_ms: float | None = None) -> dict:
    """The observation-to-command row: the measured age of the observation a command used.

    ``p95_ms``: ControlDiagnostics.latency's p95 (observation stamp to the first command of
    its chunk), judged only when ``clock`` is ``robot`` (measured on the wall clock). On the
    simulated clock it is scheduled and charged, a model: NOT MEASURED, never made up from
    its parts. ``inference_p95_ms``: the model run timed on the wall clock, shown as such.
    """
    item = f'observation-to-command latency p95 < {LATENCY_P95_MAX_MS:.0f} ms'
    if clock == 'robot':
        if p95_ms is None:
            return _row(item, None, 'no ControlDiagnostics.latency in the run',
                        "measured on the robot's wall clock (ControlDiagnostics.latency)")
        return _row(item, p95_ms < LATENCY_P95_MAX_MS,
                    f'{p95_ms:.1f} ms, measured on the wall clock',
                    "measured on the robot's wall clock (ControlDiagnostics.latency)")
    parts = ['not measured' if p95_ms is None
             else f'{p95_ms:.1f} ms charged on the simulated clock (a model, not judged)']
    if inference_p95_ms is not None:
        parts.append(f'inference alone {inference_p95_ms:.2f} ms measured on the wall clock')
    return _row(item, None, '; '.join(parts),
                'the age is measured only on a robot (ControlDiagnostics.latency on its wall '
                'clock); in-process it is scheduled on the simulated clock')


def run_checklist(summary: dict, where: str) -> list[dict]:
    """The checklist rows of one run (``summary``: report.json's numbers).

    ``where``: ``proxy``, ``robot`` or a simulation profile.
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
    inference = summary['inference_measured_ms']
    rows.append(latency_row(summary['observation_to_command_ms']['p95'], summary['clock'],
                            inference.get('p95') if summary['clock'] != 'robot' else None))
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
