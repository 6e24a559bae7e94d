"""An independent audit of a bag's safe commands, for the report's checklist.

Every ``/safety/command`` is checked by :class:`~sim2real_safety.audit.OutputAuditor` (no code
shared with the filter) against the limits of the config folder: finite, inside every range,
within the rate limits of the previous command. An in-process run resets its world and its
safety node each episode, and commissions each cell's table from its touch-off (recorded in
the bag): the audit follows both.
"""
from __future__ import annotations

import bisect
import dataclasses

from sim2real_bringup.config import config_digest
from sim2real_safety.audit import OutputAuditor

NS = 1e9


def audit_commands(series: dict, info: dict) -> dict:
    """``{"commands", "unsafe", "first_problems", "what"}`` for the bag's safe commands."""
    from sim2real_bringup.pipeline import PipelineConfig, recorded_calibrations
    from sim2real_safety.cell_file import commissioned_table

    config = PipelineConfig.load()
    per_episode = info['clock'] == 'simulated'
    calibrations = (recorded_calibrations(info['calibrations'], info.get('bag', 'the bag'))
                    if per_episode and config.runtime['commission_table'] else [])
    ends = [r['t_end'] for r in series['results']]

    def auditor_for(episode: int) -> OutputAuditor:
        limits = config.safety
        if per_episode and config.runtime['commission_table'] and episode < len(calibrations):
            calibration = calibrations[episode]
            table = commissioned_table(limits, calibration, info.get('bag', 'the bag'))
            limits = dataclasses.replace(limits, **{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in table.items()})
        return OutputAuditor(limits)

    auditor, current, problems, unsafe = auditor_for(0), 0, [], 0
    for t, *pose in series['commands']:
        episode = bisect.bisect_left(ends, t) if per_episode else 0
        if episode != current:
            auditor, current = auditor_for(episode), episode
        found = auditor.audit(pose, round(t * NS))
        unsafe += bool(found)
        if found and len(problems) < 5:
            problems.append({'t': t, 'problems': found})
    digest = config_digest()
    recorded = info.get('config_sha256')
    what = ('independent audit of every /safety/command against config/safety.yaml'
            + (" (each episode's table as commissioned by its touch-off)" if per_episode
               else ''))
    if recorded and recorded != digest:
        what += (f'; NOTE: the run used config {recorded}, the audit the current config '
                 f'{digest}')
    return {'commands': len(series['commands']), 'unsafe': unsafe,
            'first_problems': problems, 'what': what, 'config_sha256': digest}
