#!/usr/bin/env bash
# Prepare this checkout to run the suite without ROS: Debian packages for headless rendering,
# a virtual environment in .venv, the pinned Python packages and the three suite packages
# (editable). Safe to run again: it only does what is missing.
#   tools/setup.sh          runtime only
#   tools/setup.sh --test   runtime plus the test, lint, training and Ray (scale-out) tools
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

say() { printf 'setup: %s\n' "$*"; }

# 1. Debian packages: venv support for the system Python, and Mesa's EGL for MuJoCo's
#    offscreen rendering without a GPU (MUJOCO_GL=egl).
apt_packages=(libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0)
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
fi
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# 2. The virtual environment (recreated if a previous attempt left it broken).
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  say "creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

# 3. Pinned packages and the suite itself, skipped when nothing changed since the last run.
reqs=("$root/tools/requirements.txt")
[ "$with_tests" = 1 ] && reqs+=("$root/tools/requirements-test.txt" "$root/tools/requirements-train.txt"
                                 "$root/tools/requirements-ray.txt")
stamp="$venv/.sim2real-installed-$with_tests"
digest="$(cat "${reqs[@]}" "$root"/sim2real_*/setup.py | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  say "installing Python packages into $venv"
  "$py" -m pip install --quiet --disable-pip-version-check --upgrade pip
  args=()
  for req in "${reqs[@]}"; do args+=(-r "$req"); done
  "$py" -m pip install --quiet --disable-pip-version-check "${args[@]}"
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps \
    -e "$root/sim2real_safety" -e "$root/sim2real_policy" -e "$root/sim2real_bringup"
  echo "$digest" > "$stamp"
fi
say "ready ($("$py" --version))"
