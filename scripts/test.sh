#!/usr/bin/env bash
# The README's test command: set up, then the whole suite on all cores.
# Tests needing real MNIST-family files use ../shared/data or EBGAN_DATA and skip otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n "${EBGAN_TEST_WORKERS:-auto}" "$@"
