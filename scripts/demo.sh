#!/usr/bin/env bash
# The README's first command: set up, build, and show what moecap measures.
# Runs the MoE-CAP calculator for Mixtral-8x7B on two H100s with measured TTFT/TPOT.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "${MOECAP_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/setup.sh
fi
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target moecapctl
ctl="$root/build/release/ctl/moecapctl"

echo
echo "== moecapctl analyze: Mixtral-8x7B, 2 x H100 SXM, batch 32, prompt 512, output 256"
"$ctl" analyze --model mixtral-8x7b --hardware h100-sxm --gpus 2 --batch 32 \
  --prompt-len 512 --output-len 256 --dtype bf16 --ttft-s 0.41 --tpot-s 0.023 --explain
