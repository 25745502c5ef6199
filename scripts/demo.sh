#!/usr/bin/env bash
# The README's first command: set up, build, and run the main job: a local cluster on the CPU
# backend (an embedded coordinator and two moecap-agent processes on loopback) running a real
# Mixtral-8x7B-shaped plan at reduced scale, ending in a results table of S-MBU, S-MFU and cost.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "${MOECAP_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/setup.sh
fi
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target moecapctl moecap-agent
ctl="$root/build/release/ctl/moecapctl"

echo
echo "== moecapctl run examples/plans/mixtral-8x7b-cpu-decoder.yaml --local 2"
"$ctl" run examples/plans/mixtral-8x7b-cpu-decoder.yaml --local 2

echo
echo "== moecapctl analyze: the same model served on 2 x H100 SXM (batch 32, prompt 512, output 256)"
"$ctl" analyze --model mixtral-8x7b --hardware h100-sxm --gpus 2 --batch 32 \
  --prompt-len 512 --output-len 256 --dtype bf16 --ttft-s 0.41 --tpot-s 0.023
