"""A data-collection session on the simulator, recorded like one on the robot.

  sim2real collect --phase teleop --episodes 20          # phase 1: human-driven grasps
  sim2real collect --phase policy --episodes 50 --fail 3,7 --intervene 7:3.0
                                                         # phase 2: the policy tries

The "human" is scripted (it sees the object through the simulator, as a person does through
their eyes) and uses the same topics a person's spacemouse would: /teleop/cmd_vel (Twist),
/teleop/joy (buttons), /collect/intervention (Bool), and the /collect/label service. Every
proposal, theirs and the policy's, goes through the safety node. The bag (run folder/bag)
holds episode boundaries, interventions, grasp attempts and labels as /collect/events; turn
it into a training set with `sim2real export`. On the robot: collect.launch.py.
"""
from __future__ import annotations

import json
from pathlib import Path
import time


def add_arguments(parser) -> None:
    """Options of ``sim2real collect``."""
    parser.add_argument('--phase', choices=('teleop', 'policy'), default='policy',
                        help='teleop: human-driven grasps; policy: the policy tries and a '
                             'human may intervene (default policy)')
    parser.add_argument('--episodes', type=int, default=10, help='episodes (default 10)')
    parser.add_argument('--policy', default='expert',
                        help='phase 2 policy: "expert" (the scripted grasp), "bundled", or an '
                             'ONNX file (default expert)')
    parser.add_argument('--robot', default='proxy',
                        help='simulated robot: proxy (the stand-in for the real one) or a '
                             'randomization profile (default proxy)')
    parser.add_argument('--fail', default='',
                        help='episodes where the expert policy misjudges the object by 6 cm '
                             '(injected failures), e.g. 3,7')
    parser.add_argument('--intervene', default='',
                        help='episode:seconds at which the scripted human takes over, e.g. 7:3')
    parser.add_argument('--relabel', default='',
                        help='episode:true|false labels the scripted human gives afterwards')
    parser.add_argument('--operator', default='scripted operator',
                        help="the operator's name recorded with interventions and labels")
    # Collected episodes become fine-tuning data: their worlds must not be the ones
    # `sim2real evaluate` then scores (seeds 0...; random realities 50 000...).
    parser.add_argument('--seed', type=int, default=500_000,
                        help='first episode seed (default 500000: apart from the seeds '
                             '`sim2real evaluate` uses)')
    parser.add_argument('--out', type=Path, default=None,
                        help='run folder (default runs/collect-<phase>-<seed>-<time>)')


def _pairs(text: str, what: str, convert) -> dict:
    out = {}
    for item in filter(None, (p.strip() for p in text.split(','))):
        key, sep, value = item.partition(':')
        if not sep:
            raise ValueError(f'--{what} entries are episode:value, got {item!r}')
        try:
            out[int(key)] = convert(value)
        except ValueError:
            raise ValueError(f'--{what}: bad entry {item!r}') from None
    return out


def _boolean(text: str) -> bool:
    if text.lower() not in ('true', 'false'):
        raise ValueError(text)
    return text.lower() == 'true'


def run(args) -> int:
    """Run the session and summarise it."""
    from sim2real_bringup.collect import OperatorScript, run_collection

    if args.episodes < 1:
        raise ValueError(f'--episodes must be >= 1, got {args.episodes}')
    try:
        failing = {int(v) for v in filter(None, (p.strip() for p in args.fail.split(',')))}
    except ValueError:
        raise ValueError(f'--fail takes episode numbers, e.g. 3,7; got {args.fail!r}') from None
    script = OperatorScript(
        name=args.operator, intervene=_pairs(args.intervene, 'intervene', float),
        relabel={k: (v, 'operator relabel') for k, v in
                 _pairs(args.relabel, 'relabel', _boolean).items()})
    out = args.out or Path('runs') / (f'collect-{args.phase}-{args.seed}-'
                                      f'{time.strftime("%Y%m%d-%H%M%S")}')
    if out.exists():
        raise FileExistsError(f'{out} exists already; choose another --out')
    started = time.perf_counter()

    def progress(record, done, total):
        print(f'  episode {done}/{total}: {"success" if record.success else "failure"} '
              f'({record.duration:.1f} s)', flush=True)

    session = run_collection(out, args.phase, args.episodes, policy=args.policy,
                             robot=args.robot, seed=args.seed, failing=failing, script=script,
                             progress=progress)
    (out / 'session.json').write_text(json.dumps(session, indent=1))
    episodes = session['episodes']
    print(f'{len(episodes)} episodes ({args.phase}): '
          f'{sum(bool(e["success"]) for e in episodes)} successful after labels, '
          f'{sum(e["interventions"] for e in episodes)} interventions, '
          f'{sum(e["label"] is not None for e in episodes)} operator labels; '
          f'{time.perf_counter() - started:.0f} s. Bag: {out / "bag"}; next: '
          f'sim2real export {out / "bag"} --out DATASET')
    return 0
