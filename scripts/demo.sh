#!/usr/bin/env bash
# The README's main job: set up, train EBGAN-PT on Fashion-MNIST for a few minutes,
# write sample grids, a loss/energy plot and report.md. Extra arguments go to
# 'ebgan train' (e.g. --steps 100). Prints the run folder at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# Offline build machines keep the datasets beside the repo; elsewhere the usual
# discovery (cache, /usr/share/datasets, torchvision download) applies.
if [ -z "${EBGAN_DATA:-}" ] && [ -d ../shared/data/fashion-mnist ]; then
  export EBGAN_DATA="$(cd ../shared/data && pwd)"
fi
out="runs/demo-$(date +%Y%m%d-%H%M%S)"
.venv/bin/ebgan train --config demo --out "$out" "$@"
.venv/bin/ebgan sample --run "$out" --n 100 --out "$out/samples-100.png"
echo "demo run: $out (report.md, losses.png, samples/, samples-100.png)"
