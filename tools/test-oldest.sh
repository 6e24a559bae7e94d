#!/usr/bin/env bash
# The suite's tests against the oldest supported scientific stack: what a ROS 2 Jazzy robot PC
# (Ubuntu 24.04) has from its distribution -- numpy 1.26.4, SciPy 1.11.4, OpenCV 4.6 -- with
# tools/requirements-ros.txt on top, in .venv-oldest. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-oldest"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.installed"
digest="$(cat "$root/tools/requirements-ros.txt" "$root/tools/requirements-test.txt" "$0" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    numpy==1.26.4 scipy==1.11.4 opencv-python-headless==4.6.0.66 PyYAML==6.0.1 \
    matplotlib==3.6.3
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$root/tools/requirements-ros.txt" -r "$root/tools/requirements-test.txt"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    -e "$root/sim2real_safety" -e "$root/sim2real_policy" -e "$root/sim2real_bringup"
  echo "$digest" > "$stamp"
fi
"$venv/bin/python" -c 'import numpy, scipy, cv2; print(f"oldest stack: numpy {numpy.__version__}, scipy {scipy.__version__}, OpenCV {cv2.__version__}")'
export MUJOCO_GL="${MUJOCO_GL:-egl}" ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
cd "$root"
exec "$venv/bin/python" -m pytest "$@"
