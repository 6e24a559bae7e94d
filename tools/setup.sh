#!/usr/bin/env bash
# Prepare this checkout to run the suite without ROS: Debian packages for headless rendering,
# a virtual environment in .venv, the pinned Python packages and the three suite packages
# (editable). Safe to run again: it only does what is missing.
#   tools/setup.sh          runtime only
#   tools/setup.sh --test   runtime plus the test, lint, training and Ray (scale-out) tools
# One line per step (what, how long). The tools' own output goes to a log: a failed step's is
# printed in full, else only the warnings that matter; the last install's is .venv/setup.log.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

log="$(mktemp "${TMPDIR:-/tmp}/sim2real-setup.XXXXXX")"
keep_log=0
trap '[ "$keep_log" = 1 ] || rm -f "$log"' EXIT
started="${EPOCHREALTIME/[.,]/}"
# setuptools prints a screen-long banner for every editable install ("Editable installation"):
# advice about import shadowing that does not apply to these packages.
export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Editable installation"

seconds_since() {  # $1: a start from EPOCHREALTIME without its point (microseconds)
  local us=$(( ${EPOCHREALTIME/[.,]/} - $1 ))
  printf '%d.%d s' $(( us / 1000000 )) $(( us % 1000000 / 100000 ))
}

# step WHAT COMMAND...: one line, "setup: WHAT ... done (TIME)"; on failure its whole output.
step() {
  local what="$1" t0="${EPOCHREALTIME/[.,]/}" rc=0 from
  shift
  printf 'setup: %s ... ' "$what"
  printf '==> %s\n' "$what" >>"$log"
  from=$(( $(wc -l <"$log") + 1 ))
  "$@" >>"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    keep_log=1
    printf 'FAILED (%s, exit %d)\n' "$(seconds_since "$t0")" "$rc"
    tail -n "+$from" "$log" >&2
    printf 'setup: FAILED: %s (exit %d); the full log is %s\n' "$what" "$rc" "$log" >&2
    exit "$rc"
  fi
  printf 'done (%s)\n' "$(seconds_since "$t0")"
}

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
  apt_install() {
    $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
  }
  step "installing Debian packages: ${missing[*]}" apt_install
fi

# 2. The virtual environment (recreated if a previous attempt left it broken).
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  make_venv() { rm -rf "$venv" && python3 -m venv "$venv"; }
  step "creating $venv" make_venv
fi
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check --no-input --progress-bar off)

# 3. Pinned packages and the suite itself, skipped when nothing changed since the last run.
reqs=("$root/tools/requirements.txt")
sets="runtime"
if [ "$with_tests" = 1 ]; then
  reqs+=("$root/tools/requirements-test.txt" "$root/tools/requirements-train.txt"
         "$root/tools/requirements-ray.txt")
  sets="runtime, test, training, Ray"
fi
stamp="$venv/.sim2real-installed-$with_tests"
digest="$(cat "${reqs[@]}" "$root"/sim2real_*/setup.py | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  args=()
  for req in "${reqs[@]}"; do args+=(-r "$req"); done
  step "upgrading pip in $venv" "${pip[@]}" --upgrade pip
  step "installing the pinned packages ($sets)" "${pip[@]}" "${args[@]}"
  step "installing the suite's 3 packages (editable)" "${pip[@]}" --no-deps \
    -e "$root/sim2real_safety" -e "$root/sim2real_policy" -e "$root/sim2real_bringup"
  echo "$digest" > "$stamp"
  # Warnings that matter, once each. Not shown: a configured package index without a
  # package (pip: "Location ... is ignored"), which changes nothing when another has it.
  grep -iE '(^|[^a-z])(warning|error|deprecat)' "$log" \
    | grep -vE "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" \
    | awk '!seen[$0]++' | sed 's/^/setup:   /' || true
  mv -f "$log" "$venv/setup.log"
fi
printf 'setup: ready (%s, %s in all)\n' "$("$py" --version)" "$(seconds_since "$started")"
