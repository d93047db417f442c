#!/usr/bin/env bash
# Creates .venv (Python 3.10+) and installs ebgan with its pinned dependencies
# (pyproject.toml is the one place versions are pinned). Re-runs only when pyproject changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.ebgan-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  touch "$stamp"
fi
