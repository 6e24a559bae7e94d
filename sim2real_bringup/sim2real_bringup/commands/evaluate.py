"""Success in the training distribution and on the reality proxy, and the transfer ratio.

For the policies trained with no, light and heavy randomization (sim2real train
--randomization none|light|heavy), each evaluated closed-loop through the full stack for
--episodes episodes per cell, with 95% confidence intervals; the fine-tuned policy (sim2real
finetune) against the sim-only one on the proxy; and the seed's deployment checklist.
JSON (--json): {"cells": [...], "finetune": {...}, "checklist": [...]}.
"""
from __future__ import annotations

import json
from pathlib import Path
import time

from sim2real_bringup.commands.rollout_options import add_rollout_arguments, rollout_options
from sim2real_bringup.outputs import refuse_existing, write_new

PROFILES = ('none', 'light', 'heavy')


def add_arguments(parser) -> None:
    """Options of ``sim2real evaluate``."""
    parser.add_argument('--episodes', type=int, default=100, help='episodes per cell')
    parser.add_argument('--runs', type=Path, default=Path('runs'),
                        help='where `sim2real train` left runs/train-<profile>-0 (default runs)')
    parser.add_argument('--model', action='append', default=[], metavar='PROFILE=PATH',
                        help='the model trained with PROFILE (repeatable); default: '
                             'runs/train-PROFILE-0/model.onnx, the bundled policy for heavy')
    parser.add_argument('--finetuned', type=Path, default=None,
                        help='fine-tuned model (default runs/finetune-0/keypoints.onnx or '
                             'model.onnx if present)')
    parser.add_argument('--finetune-base', choices=PROFILES, default=None,
                        help='the cell the fine-tuned model is compared with on the proxy '
                             '(default: the randomization in its metadata, else heavy)')
    parser.add_argument('--only', nargs='+', choices=PROFILES, default=list(PROFILES),
                        help='evaluate only these cells')
    parser.add_argument('--realities', type=int, default=0, metavar='N',
                        help="also evaluate the heavy cell's model on N realities drawn at "
                             "random from the heavy ranges (seeds apart from the cells')")
    parser.add_argument('--json', type=Path, default=None, help='write the results here')
    add_rollout_arguments(parser)


def _models(args) -> dict:
    from sim2real_policy.models import BUNDLED

    models = {}
    for item in args.model:
        profile, _, path = item.partition('=')
        if profile not in PROFILES or not path:
            raise ValueError(f'--model takes PROFILE=PATH with PROFILE in {PROFILES}, got '
                             f'{item!r}')
        models[profile] = Path(path)
    for profile in args.only:
        if profile in models:
            continue
        folder = args.runs / f'train-{profile}-0'
        trained = [folder / name for name in ('keypoints.onnx', 'model.onnx')
                   if (folder / name).is_file()]
        if trained:
            models[profile] = trained[0]
        elif profile == 'heavy' and BUNDLED.is_file():
            models[profile] = BUNDLED
        else:
            raise FileNotFoundError(f'no model for randomization {profile!r}: run '
                                    f'`sim2real train --randomization {profile}` or pass '
                                    f'--model {profile}=PATH')
    return models


def _trained_on(model: Path) -> str:
    """The cell a model was trained in: its metadata's randomization, else heavy."""
    from sim2real_policy.policy import read_metadata

    profile = read_metadata(model).extra.get('randomization')
    return profile if profile in PROFILES else 'heavy'


def _recipe(model: Path) -> dict:
    """What a fine-tuned model's metadata says of its fine-tuning (episodes, frozen part)."""
    from sim2real_policy.policy import read_metadata

    recipe = read_metadata(model).extra.get('finetune', {})
    return {k: recipe[k] for k in ('base_model_id', 'real_episodes', 'holdout_episodes',
                                   'real_frames', 'real_fraction', 'frozen') if k in recipe}


def run(args) -> int:
    """Evaluate every cell and print the table and the checklist."""
    refuse_existing(args.json, '--json')
    from sim2real_bringup import checklist as checks
    from sim2real_bringup import evaluation
    from sim2real_bringup.evaluation import ratio_interval
    from sim2real_policy.policy import read_metadata
    from sim2real_policy.rollout import Progress

    if args.episodes < 1:
        raise ValueError(f'--episodes must be >= 1, got {args.episodes}')
    if args.realities < 0:
        raise ValueError(f'--realities must be >= 0, got {args.realities}')
    models = _models(args)
    if args.finetuned is not None and not args.finetuned.is_file():
        raise FileNotFoundError(f'--finetuned {args.finetuned} not found')
    options = rollout_options(args)

    def evaluate(model, where, episodes, first_seed=0):
        result = evaluation.evaluate(model, where, episodes, first_seed=first_seed,
                                     progress=Progress(f'{where} episodes', episodes),
                                     rollout_backend=options['backend'], **{
                                         k: options[k] for k in ('workers', 'ray_address')})
        rollout = result['rollout']
        print(f'  {where}: {episodes} episodes in {rollout["seconds"]:.0f} s on '
              f'{rollout["workers"]} {rollout["backend"]} worker(s) (wall clock; start-up '
              f'{rollout["startup_seconds"]:.1f} s)', flush=True)
        if result['calibration_failed']:
            print(f'    the cell calibration failed in {result["calibration_failed"]} episode(s) '
                  '(counted as failed)', flush=True)
        for mode, count in result['degraded_modes'].items():
            print(f'    supervisor went to {mode} in {count["episodes"]} episode(s), '
                  f'{count["failed_episodes"]} of them failed', flush=True)
        return result

    cells, raw = [], {}
    for profile in args.only:
        started = time.perf_counter()
        print(f'{profile}: {models[profile]}', flush=True)
        sim = evaluate(models[profile], profile, args.episodes)
        proxy = evaluate(models[profile], 'proxy', args.episodes)
        ratio = proxy['success_rate'] / sim['success_rate'] if sim['success_rate'] else None
        cell = {'randomization': profile, 'episodes': args.episodes,
                'sim_success': sim['success_rate'], 'proxy_success': proxy['success_rate'],
                'transfer_ratio': ratio,
                'ci95': {'sim_success': sim['ci95'], 'proxy_success': proxy['ci95'],
                         'transfer_ratio': list(ratio_interval(
                             proxy['ci95'], sim['ci95'], proxy['success_rate'],
                             sim['success_rate']))},
                'acknowledgements': sim['acknowledgements'] + proxy['acknowledgements'],
                'unsafe_commands': sim['unsafe_commands'] + proxy['unsafe_commands'],
                # charged on the simulated clock (the in-process model of latency)
                'latency_ms_p95': max(sim['latency_ms']['p95'] or 0,
                                      proxy['latency_ms']['p95'] or 0),
                # measured on the wall clock: the model actually run, per inference
                'inference_wall_ms_p95': max(sim['inference_wall_ms']['p95'] or 0,
                                             proxy['inference_wall_ms']['p95'] or 0),
                'calibration': {'sim': sim['calibration'], 'proxy': proxy['calibration']},
                'first5_proxy_success': proxy['first5_success_rate'],
                'seconds': time.perf_counter() - started}
        cells.append(cell)
        raw[profile] = {'sim': sim, 'proxy': proxy}
        ratio_text = 'n/a' if ratio is None else f'{ratio:.2f}'
        print(f'  sim {sim["success_rate"]:.0%} [{sim["ci95"][0]:.0%}, {sim["ci95"][1]:.0%}]  '
              f'proxy {proxy["success_rate"]:.0%} [{proxy["ci95"][0]:.0%}, '
              f'{proxy["ci95"][1]:.0%}]  transfer ratio {ratio_text}  '
              f'({cell["seconds"]:.0f} s)', flush=True)

    finetune = None
    finetuned = args.finetuned or next(
        (args.runs / 'finetune-0' / name for name in ('keypoints.onnx', 'model.onnx')
         if (args.runs / 'finetune-0' / name).is_file()), None)
    base_profile = args.finetune_base or (_trained_on(finetuned) if finetuned else None)
    if finetuned is not None and base_profile not in raw:
        print(f'fine-tuned {finetuned} not evaluated: it is compared with the {base_profile} '
              f'cell, which --only leaves out', flush=True)
    if finetuned is not None and base_profile in raw:
        recipe = _recipe(finetuned)
        cell_model = read_metadata(models[base_profile]).model_id
        if recipe.get('base_model_id', cell_model) != cell_model:
            print(f'note: {finetuned} was fine-tuned from {recipe["base_model_id"]}, not from '
                  f'the {base_profile} cell\'s {cell_model}: "before" is that cell\'s model',
                  flush=True)
        after = evaluate(finetuned, 'proxy', args.episodes)
        before = raw[base_profile]['proxy']
        finetune = {'base': base_profile, 'before': before['success_rate'],
                    'after': after['success_rate'],
                    'ci95': {'before': before['ci95'], 'after': after['ci95']},
                    'margin': after['success_rate'] - before['success_rate'],
                    'model': str(finetuned), 'episodes': args.episodes,
                    'recipe': recipe, 'before_model_id': cell_model}
        print(f'fine-tuning the {base_profile} model on the proxy: '
              f'{before["success_rate"]:.0%} [{before["ci95"][0]:.0%}, '
              f'{before["ci95"][1]:.0%}] -> {after["success_rate"]:.0%} '
              f'[{after["ci95"][0]:.0%}, {after["ci95"][1]:.0%}]')

    realities = None
    if args.realities:
        model = models.get('heavy') or models[args.only[-1]]
        print(f'{args.realities} random realities from the heavy ranges: {model}', flush=True)
        realities = evaluate(model, 'heavy', args.realities, first_seed=50_000)
        print(f'  {realities["success_rate"]:.0%} [{realities["ci95"][0]:.0%}, '
              f'{realities["ci95"][1]:.0%}]', flush=True)

    # the checklist is about the policy that ships: the bundled one (the heavy cell)
    deployed = next((c for c in cells if c['randomization'] == 'heavy'), cells[-1])
    # Every episode ran on the simulated clock: the latency row says NOT MEASURED, with the
    # charged age and the wall-clock inference as what they are (never a sum of the two).
    latency = checks.latency_row(deployed['latency_ms_p95'], 'simulated',
                                 deployed['inference_wall_ms_p95'])
    checklist = [
        {'item': f'sim success > {checks.SIM_SUCCESS_MIN:.0%}',
         'passed': deployed['sim_success'] > checks.SIM_SUCCESS_MIN},
        {'item': f'{checks.FIRST_TRIALS}-trial proxy success > '
                 f'{checks.FIRST_TRIALS_SUCCESS_MIN:.0%}',
         'passed': deployed['first5_proxy_success'] > checks.FIRST_TRIALS_SUCCESS_MIN},
        {'item': f'{latency["item"]} ({latency["figure"]})', 'passed': latency['passed']},
        {'item': 'no unsafe command left the safety filter',
         'passed': all(cell['unsafe_commands'] == 0 for cell in cells)},
        {'item': f'transfer ratio > {checks.TRANSFER_RATIO_MIN}',
         'passed': (deployed['transfer_ratio'] or 0) > checks.TRANSFER_RATIO_MIN},
    ]
    for entry in checklist:
        entry['status'] = (checks.NOT_MEASURED if entry['passed'] is None
                           else checks.PASS if entry['passed'] else checks.FAIL)
        print(f'{entry["status"]}  {entry["item"]}')
    result = {'cells': cells, 'finetune': finetune, 'realities': realities,
              'checklist': checklist, 'details': raw}
    if args.json:
        write_new(args.json, json.dumps(result, indent=2), '--json')
        print(f'wrote {args.json}')
    return 0
