"""A two-node Ray cluster on 127.0.0.1 runs `sim2real evaluate` and gives the serial results.

The cluster runs in a network namespace of its own that has nothing but a loopback interface
(``unshare --user --net``): both Ray nodes on 127.0.0.1, and no packet can reach any other
address. Skipped where user namespaces are not allowed or Ray is not installed.
"""
import importlib.util
import json
import os
from pathlib import Path
import secrets
import shutil
import subprocess
import sys

from processes import is_loopback, listening_tcp
import pytest

HAS_RAY = importlib.util.find_spec('ray') is not None
# measured on the wall clock, so they differ from run to run; everything else must not
MEASURED = ('rollout', 'inference_wall_ms', 'inference_wall_ms_p99')


def comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in MEASURED}


def _user_namespaces_work() -> bool:
    if shutil.which('unshare') is None:
        return False
    probe = subprocess.run(['unshare', '--user', '--map-root-user', '--net', 'true'],
                           capture_output=True)
    return probe.returncode == 0


CLUSTER = r"""
set -eu
ip link set lo up 2>/dev/null || true
trap 'ray stop --force >/dev/null 2>&1 || true' EXIT
ray start --head --node-ip-address=127.0.0.1 --port=6390 --num-cpus=1 \
  --include-dashboard=false --disable-usage-stats >head.log 2>&1
ray start --address=127.0.0.1:6390 --node-ip-address=127.0.0.1 --num-cpus=1 \
  --disable-usage-stats >node.log 2>&1
python - <<'EOF' > nodes.json
import json, ray
ray.init(address='127.0.0.1:6390', log_to_driver=False)
print(json.dumps([n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']]))
EOF
cat /proc/net/tcp > tcp.txt; cat /proc/net/tcp6 > tcp6.txt
sim2real evaluate --only heavy --episodes 2 --ray-address 127.0.0.1:6390 --json cluster.json \
  >evaluate.log 2>&1
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason='ray is not installed '
                                        '(pip install -r tools/requirements-ray.txt)')
@pytest.mark.skipif(not _user_namespaces_work(),
                    reason='cannot make a network namespace (unshare --user --net)')
def test_a_two_node_cluster_on_loopback_gives_the_serial_evaluation(tmp_path):
    venv_bin = Path(sys.executable).parent
    token = tmp_path / 'token'
    token.write_text(secrets.token_hex(32))
    env = dict(os.environ, PATH=f'{venv_bin}:{os.environ["PATH"]}', MUJOCO_GL='egl',
               RAY_AUTH_MODE='token', RAY_AUTH_TOKEN_PATH=str(token),
               RAY_USAGE_STATS_ENABLED='0', HOME=str(tmp_path))
    for name in ('RAY_ADDRESS', 'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'):
        env.pop(name, None)   # a real cluster, whatever this process ran before
    done = subprocess.run(['unshare', '--user', '--map-root-user', '--net', 'bash', '-c',
                           CLUSTER], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    logs = {name: (tmp_path / name).read_text()[-2000:] for name in
            ('head.log', 'node.log', 'evaluate.log') if (tmp_path / name).exists()}
    assert done.returncode == 0, (done.stderr[-2000:], logs)
    assert json.loads((tmp_path / 'nodes.json').read_text()) == ['127.0.0.1', '127.0.0.1']
    cluster = json.loads((tmp_path / 'cluster.json').read_text())
    subprocess.run([str(venv_bin / 'sim2real'), 'evaluate', '--only', 'heavy', '--episodes',
                    '2', '--workers', '1', '--json', str(tmp_path / 'serial.json')],
                   cwd=tmp_path, check=True, capture_output=True, env=env, timeout=900)
    serial = json.loads((tmp_path / 'serial.json').read_text())
    for where in ('sim', 'proxy'):
        ran = cluster['details']['heavy'][where]['rollout']
        assert (ran['backend'], ran['workers']) == ('ray', 2)   # one CPU on each node
        assert comparable(cluster['details']['heavy'][where]) == \
            comparable(serial['details']['heavy'][where])
    # every socket listening in the namespace was on loopback (there was nothing else)
    listening = listening_tcp({name: (tmp_path / f'{name}.txt').read_text()
                               for name in ('tcp', 'tcp6')})
    assert len(listening) >= 4    # two GCS/raylet pairs at least: the check is not vacuous
    assert all(is_loopback(address) for address, _ in listening), listening
