#!/usr/bin/env bash
# The ROS 2 half of the tests, where a ROS 2 Jazzy is installed (/opt/ros/jazzy, or $ROS_SETUP):
# build the four packages in a workspace outside the checkout (the checkout is its source),
# then `colcon test` (every package's pytest suite: the ros-marked tests, the launch tests, and
# the message package's lint tests) and `colcon test-result`. The Python packages rosdep has no
# key for come from tools/requirements-ros.txt, as on a robot PC.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
setup="${ROS_SETUP:-/opt/ros/jazzy/setup.bash}"
ws="${SIM2REAL_WS:-${TMPDIR:-/tmp}/sim2real_ws}"
say() { printf 'test-ros: %s\n' "$*"; }
if [ ! -f "$setup" ]; then
  say "ROS 2 not found ($setup): nothing to run"
  exit 0
fi
# ROS's Python is the system one: its scripts' shebang, not a virtual environment's.
export PATH="/usr/bin:$PATH"
set +u
# shellcheck disable=SC1090
source "$setup"
[ -f "$(dirname "$setup")/local_env.sh" ] && source "$(dirname "$setup")/local_env.sh"
# Gazebo Harmonic and ros_gz, where they are not in the ROS prefix (GZ_SETUP: their setup
# files, space-separated): the Gazebo launch test runs with them and skips without
for extra in ${GZ_SETUP:-}; do
  # shellcheck disable=SC1090
  source "$extra"
done
set -u
# DDS stays on this machine; participants announce themselves every second (see the file)
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST MUJOCO_GL="${MUJOCO_GL:-egl}" \
  RMW_IMPLEMENTATION=rmw_cyclonedds_cpp \
  CYCLONEDDS_URI="file://$root/tools/cyclonedds-localhost.xml"
# An install that is there but incomplete (a build stopped half way) is no ROS 2 to test on:
# say what is missing and run nothing, as on a machine without ROS.
if ! python3 -c 'import rclpy, launch, launch_testing' 2>/dev/null; then
  say "ROS 2 at $setup is incomplete (rclpy, launch or launch_testing does not import): nothing to run"
  exit 0
fi
# colcon is a pip tool, not part of ROS: pip --user puts it in ~/.local/bin.
export PATH="$PATH:$HOME/.local/bin"
if ! command -v colcon > /dev/null; then
  say "installing colcon for $(command -v python3)"
  # colcon pulls pytest 9, whose plugin checks launch_testing's pytest plugin fails.
  python3 -m pip install --quiet --user --break-system-packages \
    colcon-common-extensions 'pytest<8' 'pytest-rerunfailures<15' \
    || { say "colcon is not installed and pip could not install it: nothing to run"; exit 0; }
fi
if ! python3 -c 'import mujoco, onnxruntime, onnx, rosbags, mcap, ruckig' 2>/dev/null; then
  say "installing tools/requirements-ros.txt for $(command -v python3)"
  python3 -m pip install --quiet --user --break-system-packages \
    -r "$root/tools/requirements-ros.txt"
fi
mkdir -p "$ws/src"
ln -sfn "$root" "$ws/src/sim2real"
cd "$ws"
say "colcon build in $ws"
colcon build --metas src/sim2real/colcon.meta --symlink-install \
  --event-handlers console_cohesion- > "$ws/build.log" 2>&1 \
  || { tail -n 40 "$ws/build.log"; exit 1; }
set +u
source install/setup.bash
set -u
say "colcon test"
rm -rf build/*/test_results build/*/pytest.xml
colcon test --metas src/sim2real/colcon.meta --event-handlers console_direct- \
  --pytest-args -p no:cacheprovider "$@" || true
if ! colcon test-result > /dev/null; then
  # The launch tests start real process graphs on a 2-core machine they load themselves; a
  # package with a failure is tested once more, and both outcomes are printed.
  colcon test-result --verbose | tail -n 40 || true
  say "a package failed: testing it once more"
  colcon test --metas src/sim2real/colcon.meta --event-handlers console_direct- \
    --packages-select-test-failures --pytest-args -p no:cacheprovider "$@" || true
fi
colcon test-result --all --verbose | tail -n 30
colcon test-result
