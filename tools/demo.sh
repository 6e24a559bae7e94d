#!/usr/bin/env bash
# The main job: set up (if needed) and run the in-process demo. Extra arguments go to
# `sim2real demo` (see `tools/demo.sh --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup.sh"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec "$root/.venv/bin/sim2real" demo "$@"
