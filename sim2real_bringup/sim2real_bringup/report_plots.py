"""The report's plots (matplotlib, Agg), one style, units on every axis, as base64 PNG.

Time axes are seconds from the bag's start on the run's clock (simulated for an in-process
run); the clock is named on each axis. Episode ends are marked with thin grey lines.
"""
from __future__ import annotations

import base64
import io

from matplotlib.ticker import MaxNLocator
import numpy as np

from sim2real_bringup.report_summary import names

PLOTS = ('success over episodes', 'proposed vs safe command', 'gripper width and effort',
         'action distribution', 'action rate of change', 'latency histogram',
         'supervisor-mode timeline', 'safety verdicts over time')
STYLE = {'font.size': 9, 'axes.titlesize': 10, 'axes.titleweight': 'bold',
         'axes.spines.top': False, 'axes.spines.right': False, 'axes.grid': True,
         'grid.alpha': 0.3, 'legend.fontsize': 8, 'legend.frameon': False,
         'figure.dpi': 100, 'savefig.dpi': 100}
GOOD, BAD, SAFE, PROPOSED = '#2e7d32', '#c62828', '#1565c0', '#ef6c00'
MAX_POINTS = 20_000   # longer series are decimated for drawing (every figure is computed
                      # from all of them)


def _png(draw, rows: int = 1, height: float = 2.6, sharex: bool = True) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(rows, 1, figsize=(8, height * rows), squeeze=False,
                                    sharex=sharex)
        draw(*axes[:, 0])
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format='png')
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode('ascii')


def _thin(array: np.ndarray) -> np.ndarray:
    step = max(1, len(array) // MAX_POINTS)
    return array[::step]


def latency_bins(values) -> np.ndarray | None:
    """Bin edges chosen from the data.

    A latency scheduled on a clock takes few distinct values (multiples of the control
    period): one bar per distinct value, centred on it. Otherwise Freedman-Diaconis bins
    (at most 60). None for no values.
    """
    values = np.asarray(values, float)
    if values.size == 0:
        return None
    distinct = np.unique(values)
    if distinct.size <= 20:
        gap = np.min(np.diff(distinct)) if distinct.size > 1 else max(1.0, distinct[0] * 0.1)
        return np.concatenate([distinct - gap / 2, [distinct[-1] + gap / 2]])
    edges = np.histogram_bin_edges(values, bins='fd')
    return edges if len(edges) <= 61 else np.histogram_bin_edges(values, bins=60)


def plots(series: dict, summary: dict) -> dict:
    """Each plot of the report, as base64 PNG, by name (:data:`PLOTS`)."""
    clock = 'simulated clock' if summary['clock'] == 'simulated' else "robot's clock"
    time_label = f'time from bag start (s, {clock})'
    safe = np.array(series['commands'], float).reshape(-1, 6)
    proposed = np.array(series.get('proposed', []), float).reshape(-1, 6)
    robot = np.array(series.get('robot', []), float).reshape(-1, 4)
    ends = [r['t_end'] for r in series['results']]

    def episode_lines(ax):
        for t in ends:
            ax.axvline(t, color='0.6', lw=0.6, zorder=0)

    def success(ax):
        results = summary['results']
        if results:
            from sim2real_bringup.evaluation import wilson_interval
            outcome = np.array([r['success'] for r in results], float)
            index = np.arange(1, len(outcome) + 1)
            ax.bar(index, np.where(outcome > 0, 1.0, 0.15), color=[
                GOOD if o else BAD for o in outcome], width=0.8, alpha=0.35,
                label='episode (tall: success, short: failure)')
            running = np.cumsum(outcome) / index
            bounds = np.array([wilson_interval(int(s), int(n))
                               for s, n in zip(np.cumsum(outcome), index)])
            ax.fill_between(index, bounds[:, 0], bounds[:, 1], color='k', alpha=0.1,
                            step='mid', label='95 % Wilson interval')
            ax.plot(index, running, 'k-', drawstyle='steps-mid', label='running success rate')
            ax.legend(loc='lower left')
        ax.set_ylim(0, 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel('success rate (counted)')
        ax.set_xlabel('episode (1 = first)')
        ax.set_title('success over episodes')

    def commanded(ax_z, ax_w):
        for data, colour, label, style in ((proposed, PROPOSED, 'proposed (controller)', '--'),
                                           (safe, SAFE, 'safe (after the filter)', '-')):
            if len(data):
                d = _thin(data)
                ax_z.plot(d[:, 0], d[:, 3], style, color=colour, lw=0.9, label=label)
                ax_w.plot(d[:, 0], d[:, 5] * 1e3, style, color=colour, lw=0.9, label=label)
        for ax in (ax_z, ax_w):
            episode_lines(ax)
        ax_z.set_ylabel('z (m)')
        ax_w.set_ylabel('gripper width (mm)')
        ax_w.set_xlabel(time_label)
        ax_z.set_title('proposed vs safe command (height and gripper)')
        if len(safe) or len(proposed):
            ax_z.legend(loc='upper right')

    def gripper(ax_w, ax_e):
        if len(robot):
            d = _thin(robot)
            ax_w.plot(d[:, 0], d[:, 1] * 1e3, color=SAFE, lw=0.9, label='measured')
            ax_e.plot(d[:, 0], d[:, 2], color=PROPOSED, lw=0.9)
        if len(safe):
            d = _thin(safe)
            ax_w.plot(d[:, 0], d[:, 5] * 1e3, ':', color='k', lw=0.8, label='commanded (safe)')
            ax_w.legend(loc='upper right')
        for ax in (ax_w, ax_e):
            episode_lines(ax)
        ax_w.set_ylabel('width (mm)')
        ax_e.set_ylabel('effort (N)')
        ax_e.set_xlabel(time_label)
        ax_w.set_title('gripper width and effort (measured, /robot/state)')

    def distribution(ax_p, ax_a):
        if len(safe):
            _horizontal_boxes(ax_p, [safe[:, 1], safe[:, 2], safe[:, 3], safe[:, 5]],
                              ['x', 'y', 'z', 'gripper width'])
            _horizontal_boxes(ax_a, [safe[:, 4]], ['yaw'])
        ax_p.set_xlabel('m')
        ax_a.set_xlabel('rad')
        ax_p.set_title('action distribution (safe commands; boxes: quartiles, whiskers: '
                       '1.5 IQR)')

    def rate(ax):
        if len(safe) > 1:
            dt = np.diff(safe[:, 0])
            ok = dt > 0
            speed = np.linalg.norm(np.diff(safe[:, 1:4], axis=0), axis=1)[ok] / dt[ok]
            t = safe[1:, 0][ok]
            ax.plot(_thin(t), _thin(speed), color=SAFE, lw=0.7, label='TCP speed')
            ax.legend(loc='upper right')
        episode_lines(ax)
        ax.set_ylabel('speed (m/s)')
        ax.set_xlabel(time_label)
        ax.set_title('action rate of change (safe command, |d xyz / dt|)')

    def latency(ax):
        values = np.array([r[2] for r in series['control'] if np.isfinite(r[2])]) * 1e3
        bins = latency_bins(values)
        if bins is not None:
            counts, edges = np.histogram(values, bins=bins)
            ax.bar(edges[:-1], counts / counts.sum() * 100, width=np.diff(edges) * 0.9,
                   align='edge', color=SAFE)
            for q, style in ((50, '-'), (95, '--')):
                p = np.percentile(values, q)
                ax.axvline(p, color='k', ls=style, lw=0.8, label=f'p{q} {p:.0f} ms')
            ax.legend(loc='upper right')
        ax.set_ylabel('share of control ticks (%)')
        ax.set_xlabel(f'observation-to-command latency (ms, {clock})')
        ax.set_title('latency histogram (ControlDiagnostics.latency)')

    def modes(ax):
        mode_names = names('SupervisorState', 'MODE_')
        if series['modes']:
            m = np.array([(t, mode) for t, mode, _ in series['modes']], float)
            ax.step(m[:, 0], m[:, 1], where='post', color=SAFE)
        episode_lines(ax)
        ax.set_yticks(sorted(mode_names), [mode_names[k] for k in sorted(mode_names)])
        ax.set_ylim(-0.5, max(mode_names) + 0.5)
        ax.set_xlabel(time_label)
        ax.set_title('supervisor-mode timeline')

    def verdicts(ax):
        verdict_names = names('SafetyStatus', 'VERDICT_')
        if series['verdicts']:
            t = np.array([v[0] for v in series['verdicts']])
            v = np.array([v[1] for v in series['verdicts']])
            for code, name in sorted(verdict_names.items()):
                mask = v == code
                if mask.any():
                    ax.plot(t[mask], v[mask], '|', ms=10,
                            color=GOOD if code == 0 else BAD if code >= 3 else PROPOSED,
                            label=f'{name} ({mask.sum()})')
            ax.legend(loc='upper right', ncols=3)
        episode_lines(ax)
        ax.set_yticks(sorted(verdict_names), [verdict_names[k] for k in sorted(verdict_names)])
        ax.set_ylim(-0.5, max(verdict_names) + 1.5)
        ax.set_xlabel(time_label)
        ax.set_title('safety verdicts over time (one mark per checked proposal)')

    draws = {'success over episodes': (success, 1), 'proposed vs safe command': (commanded, 2),
             'gripper width and effort': (gripper, 2), 'action distribution': (distribution, 2),
             'action rate of change': (rate, 1), 'latency histogram': (latency, 1),
             'supervisor-mode timeline': (modes, 1), 'safety verdicts over time': (verdicts, 1)}
    return {name: _png(draw, rows, height=2.4 if rows > 1 else 2.6,
                       sharex=name != 'action distribution')
            for name, (draw, rows) in draws.items()}


def comparison_plot(a: dict, b: dict) -> str:
    """Running success rate of two runs, each with its 95 % Wilson band, by episode."""
    from sim2real_bringup.evaluation import wilson_interval

    def draw(ax):
        for summary, colour, name in ((a, SAFE, 'A'), (b, PROPOSED, 'B')):
            outcome = np.array([r['success'] for r in summary['results']], float)
            if not outcome.size:
                continue
            index = np.arange(1, len(outcome) + 1)
            wins = np.cumsum(outcome)
            bounds = np.array([wilson_interval(int(s), int(n)) for s, n in zip(wins, index)])
            ax.fill_between(index, bounds[:, 0], bounds[:, 1], color=colour, alpha=0.12,
                            step='mid')
            ax.plot(index, wins / index, color=colour, drawstyle='steps-mid',
                    label=f'{name}: {summary["label"]}')
        ax.set_ylim(0, 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel('episode (1 = first)')
        ax.set_ylabel('running success rate (counted)')
        ax.set_title('success over episodes (bands: 95 % Wilson intervals)')
        ax.legend(loc='lower left')

    return _png(draw)


def _horizontal_boxes(ax, data: list, labels: list) -> None:
    """Horizontal box plots, labelled, on the matplotlib of a robot PC too.

    Boxplot's keywords for both changed in matplotlib 3.9-3.10 (``orientation``,
    ``tick_labels``); a robot PC has its distribution's (Debian 12: 3.6), which knows
    ``vert`` only, and the newer ones deprecate ``vert``.
    """
    import inspect

    horizontal = ({'orientation': 'horizontal'}
                  if 'orientation' in inspect.signature(ax.boxplot).parameters
                  else {'vert': False})
    ax.boxplot(data, showfliers=False, **horizontal)
    ax.set_yticks(range(1, len(data) + 1), labels)
