"""report.html: one self-contained page (inline CSS, images as data: URIs, no script).

What a person reads first: the headline (success with its interval, where, policy, config,
date), the deployment checklist, the run's health, then the episodes with their filmstrips,
then the plots. Every figure carries a badge saying what it is: MEASURED (wall clock),
SIMULATED (charged or scheduled on the simulated clock: a model) or COUNTED.
"""
from __future__ import annotations

from html import escape
import shlex

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;
max-width:1100px;padding:16px 24px;color:#1b1b1b;line-height:1.4}
h1{font-size:1.45em;margin:.2em 0}h2{font-size:1.15em;border-bottom:2px solid #ddd;
padding-bottom:3px;margin-top:1.6em}h3{font-size:1em;margin:1em 0 .3em}
.headline{display:flex;gap:24px;align-items:center;flex-wrap:wrap;margin:10px 0}
.big{font-size:2.1em;font-weight:700}.sub{color:#555}
.verdict{font-size:1.2em;font-weight:700;padding:6px 14px;border-radius:6px}
.v-PASS{background:#e8f5e9;color:#1b5e20}.v-FAIL{background:#ffebee;color:#b71c1c}
.v-NOT{background:#fff8e1;color:#795500}
table{border-collapse:collapse;margin:6px 0;font-size:.92em}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px;
margin:8px 0}dl.meta dt{font-weight:600;color:#444}dl.meta dd{margin:0}
.badge{display:inline-block;font-size:.72em;font-weight:700;padding:1px 6px;border-radius:3px;
margin-left:6px;vertical-align:middle;letter-spacing:.03em}
.b-measured{background:#e3f2fd;color:#0d47a1}.b-simulated{background:#fff3e0;color:#8a4500}
.b-counted{background:#eceff1;color:#37474f}.b-not{background:#fff8e1;color:#795500}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px}
.card .fig{font-size:1.3em;font-weight:600}.note{color:#555;font-size:.88em}
.ok{color:#1b5e20;font-weight:700}.bad{color:#b71c1c;font-weight:700}
.warn{color:#8a4500;font-weight:700}
.strip{display:flex;gap:8px;flex-wrap:wrap;margin:4px 0 10px}
.strip figure{margin:0;text-align:center;font-size:.8em;color:#444}
.strip img{width:128px;height:auto;image-rendering:pixelated;border:1px solid #ccc}
code.cmd{display:block;background:#263238;color:#eceff1;padding:6px 10px;border-radius:4px;
user-select:all;white-space:pre-wrap;word-break:break-all;font-size:.88em}
figure.plot{margin:10px 0}figure.plot img{max-width:100%;border:1px solid #eee}
figure.plot figcaption{font-size:.85em;color:#555}
"""
BADGES = {'measured': ('MEASURED', 'b-measured', 'on the wall clock'),
          'simulated': ('SIMULATED', 'b-simulated',
                        'charged or scheduled on the simulated clock: a model, not a '
                        'measurement'),
          'counted': ('COUNTED', 'b-counted', 'counted outcomes, verdicts or messages'),
          'not measured': ('NOT MEASURED', 'b-not', 'no measurement in this run')}


def badge(kind: str) -> str:
    """A small label saying what a figure is."""
    if kind == 'robot':
        kind = 'measured'
    text, css, title = BADGES.get(kind, BADGES['not measured'])
    return f'<span class="badge {css}" title="{escape(title)}">{text}</span>'


def _ms(value, digits: int = 1) -> str:
    return 'n/a' if value is None else f'{value:.{digits}f} ms'


def _pct(value) -> str:
    return 'n/a' if value is None else f'{value:.0%}'


def where_text(where: str) -> str:
    """Where a run ran, in words."""
    if where == 'proxy':
        return 'reality proxy (config/reality_proxy.yaml)'
    if where == 'robot' or where.startswith('simulation'):
        return where
    return f'simulation, randomization profile "{where}"'


def _table(header, rows) -> str:
    head = ''.join(f'<th>{escape(h)}</th>' for h in header)
    body = ''.join('<tr>' + ''.join(f'<td>{c}</td>' for c in row) + '</tr>' for row in rows)
    return f'<table><tr>{head}</tr>{body}</table>'


def verdict_counts(checklist) -> str:
    """'2 PASS · 1 FAIL · 1 NOT MEASURED' and the class of the overall verdict."""
    counts = {s: sum(r['status'] == s for r in checklist)
              for s in ('PASS', 'FAIL', 'NOT MEASURED')}
    text = ' · '.join(f'{n} {s}' for s, n in counts.items() if n)
    css = 'v-FAIL' if counts['FAIL'] else ('v-NOT' if counts['NOT MEASURED'] else 'v-PASS')
    return text, css


def checklist_table(checklist) -> str:
    """The checklist as PASS/FAIL rows."""
    css = {'PASS': 'ok', 'FAIL': 'bad', 'NOT MEASURED': 'warn'}
    return _table(('', 'item', 'figure', 'judged on'), [
        (f'<span class="{css[r["status"]]}">{r["status"]}</span>', escape(r['item']),
         escape(r['figure']), escape(r['basis'])) for r in checklist])


def headline(summary: dict, info: dict, title: str) -> str:
    """Title, success with its interval, checklist verdict, and how the run was made."""
    n, k = summary['episodes'], summary['successes']
    ci = summary.get('ci95')
    text, css = verdict_counts(summary['checklist'])
    rate = (f'{k}/{n} grasps succeeded = {_pct(summary["success_rate"])}' if n
            else 'no episode ended')
    interval = (f'95 % Wilson interval {_pct(ci[0])}–{_pct(ci[1])} over {n} episodes'
                if ci else '')
    models = ', '.join(escape(m) for m in summary.get('policy_models', {})) or \
        escape(str(summary.get('policy') or 'unknown'))
    policy_sha = escape(str(info['policy_sha256'] or 'not recorded'))
    config_sha = escape(str(info['config_sha256'] or 'not recorded'))
    meta = [('where', escape(where_text(info['where']))),
            ('policy', f'{models} · sha256 <code>{policy_sha}</code>'),
            ('config', f'sha256 <code>{config_sha}</code> (every config/*.yaml)'),
            ('date', f'{escape(info["date"])} <span class="note">({escape(info["date_what"])})'
                     '</span>'),
            ('clock', escape('simulated (in-process runtime): timings below marked SIMULATED '
                             'are a model' if info['clock'] == 'simulated'
                             else "the robot's (timings are measured)")),
            ('bag', f'<code>{escape(info["bag"])}</code>'),
            ('data', '<a href="report.json">report.json</a> (every figure of this page)')]
    if summary.get('wall_s') is not None and summary.get('simulated_s') is not None:
        meta.insert(4, ('run time', f'{summary["simulated_s"]:.0f} s simulated in '
                                    f'{summary["wall_s"]:.0f} s {badge("measured")}'))
    return (f'<h1>{escape(title)}</h1><div class="headline"><div><div class="big">'
            f'{escape(rate)}{badge("counted")}</div><div class="sub">{escape(interval)}</div>'
            f'</div><div class="verdict {css}">Deployment checklist: {escape(text)}</div></div>'
            '<dl class="meta">' + ''.join(f'<dt>{k}</dt><dd>{v}</dd>' for k, v in meta)
            + '</dl><p class="note">Badges: ' + ' '.join(
                f'{badge(k)} {escape(BADGES[k][2])}' for k in ('measured', 'simulated',
                                                               'counted')) + '</p>')


def health_section(summary: dict) -> str:
    """Latency, control timing, deadline misses, safety, modes, stops, anomalies."""
    clock = summary['clock']
    measured = summary['inference_measured_ms']
    charged = summary['inference_latency_ms']
    o2c = summary['observation_to_command_ms']
    period = summary['control_period_ms']
    misses = summary['deadline_misses_detail']
    safety = summary['safety']
    cards = [
        ('inference latency', measured['basis'],
         f'p50 {_ms(measured["p50"], 2)} · p95 {_ms(measured["p95"], 2)} · '
         f'p99 {_ms(measured["p99"], 2)}',
         f'{measured["what"]}; {measured.get("count") or 0} inferences.'
         + (f' Charged per inference on the simulated clock: {_ms(charged["p50"])} '
            '(config/sim.yaml; a model).' if clock == 'simulated' else '')),
        ('observation-to-command latency', clock,
         f'p50 {_ms(o2c["p50"], 0)} · p95 {_ms(o2c["p95"], 0)} · p99 {_ms(o2c["p99"], 0)}',
         o2c['what']),
        ('control period and jitter', 'measured' if clock == 'robot' else 'not measured',
         f'period p50 {_ms(period["p50"], 2)} · |jitter| p99 {_ms(period["jitter_p99"], 3)}'
         f' · max {_ms(period["jitter_max"], 3)}' if clock == 'robot' else 'not measured',
         period['what']),
        ('deadline misses', 'counted',
         f'{misses["count"]} of {misses["ticks"]} ticks ({_pct(misses["share"])})',
         'What it counts: ' + misses['what'] + ' Command sources: ' + ', '.join(
             f'{k.lower()} {v}' for k, v in sorted(summary['command_sources'].items())) + '.'),
        ('safety filter', 'counted',
         f'{_pct(safety["changed_share"])} of {safety["checked"]} proposals changed',
         'Verdicts: ' + ', '.join(f'{k} {v}' for k, v in sorted(safety['verdicts'].items()))
         + '. Constraints: ' + (', '.join(f'{k} {v}' for k, v in safety['violations'].items())
                                or 'none') + '.'),
    ]
    html = '<div class="cards">' + ''.join(
        f'<div class="card"><div>{escape(name)}{badge(kind)}</div><div class="fig">'
        f'{escape(fig)}</div><div class="note">{escape(note)}</div></div>'
        for name, kind, fig, note in cards) + '</div>'
    modes = summary['modes']
    html += '<h3>supervisor modes</h3><p>Time in each mode: ' + escape(', '.join(
        f'{k} {v:.1f} s' for k, v in modes['time_s'].items()) or 'no state recorded') + \
        f' {badge(clock)}</p>'
    if modes['transitions']:
        html += _table(('t (s)', 'from', 'to', 'reason'), [
            (f'{c["t"]:.2f}', escape(c['from']), escape(c['to']), escape(c['reason']))
            for c in modes['transitions']])
    else:
        html += '<p class="note">No mode change: the supervisor stayed in ' \
                f'{escape(str(next(iter(modes["time_s"]), "its first mode")))}.</p>'
    if modes['acknowledgements']:
        html += '<p>Acknowledged by: ' + escape(', '.join(
            f'{a["operator"]} at {a["t"]:.1f} s ({a["note"]})'
            for a in modes['acknowledgements'])) + '</p>'
    html += '<h3>software stops and resets</h3>'
    if summary['software_stops']:
        html += _table(('latched at (s)', 'cause (who asked)', 'reset at (s)', 'reset by'), [
            (f'{s["latched_t"]:.2f}', escape(s['cause']),
             'still latched' if s['reset_t'] is None else f'{s["reset_t"]:.2f}',
             escape(s['reset_by'])) for s in summary['software_stops']])
    else:
        html += '<p class="note">No software stop in this run.</p>'
    html += "<h3>anomalies (the logger's rolling checks, /diagnostics)</h3>"
    if summary['anomalies']:
        html += _table(('level', 'check', 'message', 'first (s)', 'last (s)', 'reports'), [
            (escape(a['level']), escape(a['check']), escape(a['message']),
             f'{a["first_t"]:.1f}', f'{a["last_t"]:.1f}', str(a['count']))
            for a in summary['anomalies']])
    else:
        html += '<p class="note">None: every check of every /diagnostics report was OK' + \
                ('' if summary.get('diagnostics_recorded', True) else
                 ' (no /diagnostics in this bag)') + '.</p>'
    return html


def replay_command(run: str, episode: int) -> str:
    """The `sim2real replay` command that re-runs a recording (ready to copy)."""
    return (f'sim2real replay {shlex.quote(run)} --out '
            f'{shlex.quote(f"{run}-replay-episode-{episode}")}')


def episodes_section(summary: dict, strips: dict, run: str) -> str:
    """The episodes table, with filmstrips and, for failures, what to replay."""
    rows = []
    for e in summary['results']:
        outcome = '<span class="ok">success</span>' if e['success'] else \
            '<span class="bad">failure</span>'
        label = e['label'] + (f' ({escape(e["labelled_by"])})' if e['labelled_by'] else '')
        rows.append((str(e['episode']), outcome, f'{e["duration_s"]:.1f} s', str(e['attempts']),
                     str(e['interventions']), escape(e['failure_reason'] or '—'),
                     escape(label), str(e['seed']),
                     f'{e["t_start"]:.2f}–{e["t_end"]:.2f} s'))
    html = _table(('episode', 'outcome', 'duration', 'attempts', 'interventions',
                   'failure reason', 'label (set by)', 'seed', 'bag time'), rows)
    html += ('<p class="note">Durations and bag times are on the run\'s clock '
             f'({escape(summary["clock"])}). Filmstrips: every failed episode (up to 30) and '
             'the first 5 successful ones.</p>')
    for i, strip in strips.items():
        e = summary['results'][i]
        html += (f'<h3>episode {e["episode"]}: {"success" if e["success"] else "failure"}'
                 f'{" — " + escape(e["failure_reason"]) if e["failure_reason"] else ""}</h3>'
                 '<div class="strip">')
        for moment, t, frame_t, png in strip:
            if png:
                html += (f'<figure><img alt="episode {e["episode"]}: {escape(moment)}" '
                         f'src="data:image/png;base64,{png}"><figcaption>{escape(moment)}<br>'
                         f'{frame_t:.2f} s</figcaption></figure>')
            else:
                html += (f'<figure><figcaption>{escape(moment)} at {t:.2f} s:<br>no camera '
                         'frame recorded</figcaption></figure>')
        html += '</div>'
        if not e['success']:
            html += (f'<p>Bag time range to inspect: <b>{e["t_start"]:.2f}–{e["t_end"]:.2f} s'
                     "</b> from the bag's start (Foxglove: open the bag with "
                     'config/foxglove_layout.json and seek there). Replay the recording '
                     'through the current code (the whole bag; replay.json names the first '
                     'divergence):</p><code class="cmd">'
                     f'{escape(replay_command(run, e["episode"]))}</code>')
    return html


def plots_section(images: dict) -> str:
    """The plots, inline."""
    return ''.join(f'<figure class="plot"><img alt="{escape(name)}" '
                   f'src="data:image/png;base64,{png}"><figcaption>{escape(name)}</figcaption>'
                   '</figure>' for name, png in images.items())


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport"'
            f' content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
            f'<style>{CSS}</style></head><body>{body}</body></html>')


def run_page(summary: dict, info: dict, images: dict, strips: dict, run: str,
             title: str) -> str:
    """report.html of one run."""
    body = (headline(summary, info, title)
            + '<h2 id="checklist">deployment checklist</h2>'
            + checklist_table(summary['checklist'])
            + '<h2 id="health">health at a glance</h2>' + health_section(summary)
            + '<h2 id="episodes">episodes</h2>' + episodes_section(summary, strips, run)
            + '<h2 id="plots">plots</h2>' + plots_section(images)
            + '<p class="note">All figures: <a href="report.json">report.json</a>. '
              'Open the bag in Foxglove with config/foxglove_layout.json (README).</p>')
    return page(title, body)


def comparison_page(a: dict, b: dict, rows: list, checklist: list, differences: list,
                    images: dict, title: str) -> str:
    """report.html of a comparison of two runs (A, then B)."""
    ratio = checklist[-1]
    text, css = verdict_counts([ratio])
    body = (f'<h1>{escape(title)}</h1><div class="headline"><div><div class="big">transfer '
            f'ratio B/A: {escape(ratio["figure"])}{badge("counted")}</div><div class="sub">'
            f'A: {escape(a["label"])} · B: {escape(b["label"])}</div></div>'
            f'<div class="verdict {css}">{escape(ratio["status"])}: {escape(ratio["item"])}'
            '</div></div>'
            '<h2>differences that matter</h2>'
            + ('<ul>' + ''.join(f'<li>{escape(d)}</li>' for d in differences) + '</ul>'
               if differences else '<p class="note">None beyond the noise of the counts.</p>')
            + '<h2>side by side</h2>'
            + _table(('', 'A', 'B', 'what it is'), [
                (escape(r[0]), escape(r[1]), escape(r[2]), badge(r[3])) for r in rows])
            + '<h2>deployment checklist</h2>' + checklist_table(checklist)
            + '<h2>plots</h2>' + plots_section(images)
            + '<p class="note">Each run\'s own report: ' + ' · '.join(
                f'<a href="{escape(x["report"])}">{escape(x["label"])}</a>'
                for x in (a, b)) + '. All figures: <a href="report.json">report.json</a>.</p>')
    return page(title, body)
