"""The options every command with many episodes shares: who runs them (sim2real_policy.rollout)."""
from __future__ import annotations

BACKENDS = ('serial', 'process', 'ray')   # sim2real_policy.rollout.BACKENDS, without importing it


def add_rollout_arguments(parser) -> None:
    """``--workers``, ``--rollout-backend`` and ``--ray-address``."""
    group = parser.add_argument_group('rollouts (results do not depend on these)')
    group.add_argument('--workers', type=int, default=None,
                       help="episodes run at once (default: the machine's cores; with "
                            "--ray-address, the cluster's CPUs)")
    group.add_argument('--rollout-backend', choices=BACKENDS, default=None,
                       help='serial (one process), process (local worker processes) or ray '
                            '(local Ray on 127.0.0.1, or the cluster at --ray-address); default: '
                            'serial for one worker, else process; ray with --ray-address')
    group.add_argument('--ray-address', default=None, metavar='HOST:PORT',
                       help='run the episodes on this existing Ray cluster')


def rollout_options(args) -> dict:
    """Keyword arguments for :func:`sim2real_policy.rollout.run` (checked)."""
    if args.workers is not None and args.workers < 1:
        raise ValueError(f'--workers must be >= 1, got {args.workers}')
    return {'workers': args.workers, 'backend': args.rollout_backend,
            'ray_address': args.ray_address}
