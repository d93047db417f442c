#!/usr/bin/env bash
# Issue 11's demo target: today's demo preset against the demo preset of the day the issue was
# filed (float32, no EMA), each trained for the same wall-clock (default 150 s) with seeds 0 and 1,
# scored by `ebgan compare` on the project classifier. The two compares run one after the other:
# run nothing else meanwhile, since a wall-clock budget turns other load into fewer steps.
# Usage: benchmarks/demo_before_after.sh OUT [BUDGET] [extra compare flags, e.g. --data-root DIR]
set -euo pipefail
out=${1:?usage: demo_before_after.sh OUT [BUDGET] [compare flags]}
budget=${2:-150s}
shift $(( $# >= 2 ? 2 : 1 ))
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ebgan="$here/.venv/bin/ebgan"
mkdir -p "$out/before" "$out/after"
# The demo preset at issue 11 (commit d4d82c9): float32, no EMA; its 900 steps give way to the budget.
cat > "$out/before/demo-ebgan-pt.yaml" <<'YAML'
dataset: fashion-mnist
model: seed32
objective: ebgan-pt
energy: l2
margin: 10.0
pt_weight: 0.1
batch_size: 64
lr_g: 0.0002
lr_d: 0.0002
beta1: 0.5
steps: 900
log_every: 25
sample_every: 150
checkpoint_every: 300
YAML
"$ebgan" presets demo > /dev/null  # the shipped preset exists
cp "$here/src/ebgan/presets/demo.yaml" "$out/after/demo-ebgan-pt.yaml"
for which in before after; do
  "$ebgan" compare --dataset fashion-mnist --objectives ebgan-pt --seeds 2 --budget "$budget" \
    --preset-dir "$out/$which" --preset-prefix demo --curve-points 3 --out "$out/compare-$which" "$@"
done
sed -n '3,5p' "$out/compare-before/results.md"
sed -n '5p' "$out/compare-after/results.md"
