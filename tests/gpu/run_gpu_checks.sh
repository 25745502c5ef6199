#!/bin/bash
# The GPU backend's checks on a machine with an NVIDIA GPU (CI has none): the GPU unit tests
# (agent_cuda_kernels_test includes the attention kernels against their host references),
# moecap-bench's performance self-check (decode attention alone: the split-KV kernels' KV bytes/s
# against the device copy probe, GQA and MLA, bf16 and fp8 KV; then the layers' decode bytes/s
# against the copy probe and prefill FLOP/s against the cuBLAS bf16 GEMM probe), the same layers
# in PyTorch for comparison, and a one-GPU end-to-end job through a real coordinator and a
# `moecap-agent --backend cuda`, whose phases must carry the GPU's measured energy (NVML).
#
#   tests/gpu/run_gpu_checks.sh BIN_DIR OUT_DIR
#
# BIN_DIR holds moecap-coordinator, moecap-agent, moecapctl, moecap-bench and the GPU test
# binaries (agent_cuda_kernels_test, agent_cuda_engine_test, agent_cuda_attention_test,
# agent_nccl_test); every step runs under a timeout and writes its log to OUT_DIR; the summary
# lists each step's exit status.
set -u
bin=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
summary="$out/summary.txt"
: >"$summary"

step() {  # step NAME SECONDS COMMAND...: runs it with a timeout, logs to OUT_DIR/NAME.log
  local name=$1 seconds=$2
  shift 2
  local start=$SECONDS
  echo "== $name: $*"
  timeout -k 10 "$seconds" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - start))s" | tee -a "$summary"
  tail -n 25 "$out/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem \
  --format=csv | tee "$out/device.txt"

for t in agent_cuda_kernels_test agent_cuda_engine_test agent_cuda_attention_test agent_nccl_test \
  agent_gpu_discovery_test; do
  [ -x "$bin/$t" ] && step "$t" 90 "$bin/$t"
done

# One decoder step end to end on the GPU (attention over a 512 + 16 context, then the MoE block),
# checked against the host's double-precision reference.
step decoder_check 120 "$bin/moecap-bench" --backend cuda --layer decoder --dtype bf16 --scale 4 \
  --layers 2 --batch 8 --phase both --prompt-len 512 --output-len 32 --check

# The figures: moecap's layers, then the same layers in PyTorch (prefill 16 x 512 tokens in both).
step bench_self_check 150 "$bin/moecap-bench" --backend cuda --self-check-perf
step torch_compare 150 env PYTHONUNBUFFERED=1 python3 "$root/tests/gpu/torch_moe_layer.py" \
  --layers 4 --batches 1 8 32 64 --prefill-tokens 8192

# One GPU, end to end: coordinator + one CUDA agent + moecapctl, as a user runs it.
work=$(mktemp -d)
addr=127.0.0.1:50151
# Plaintext on loopback, said explicitly where this build has the flag.
insecure=()
"$bin/moecap-coordinator" --help 2>&1 | grep -q -- --insecure && insecure=(--insecure)
"$bin/moecap-coordinator" "${insecure[@]}" --listen "$addr" --db "$work/moecap.db" \
  >"$out/coordinator.log" 2>&1 &
coordinator=$!
"$bin/moecap-agent" "${insecure[@]}" --coordinator "$addr" --name gpu-agent --backend cuda \
  --work-dir "$work/agent" >"$out/agent.log" 2>&1 &
agent=$!
sleep 3
step e2e_agents 30 "$bin/moecapctl" agents --coordinator "$addr"
step e2e_check_job 120 "$bin/moecapctl" submit "$root/examples/plans/mixtral-8x7b-gpu-check.yaml" \
  --wait --agents-grace-s 30 --coordinator "$addr"
step e2e_perf_job 150 "$bin/moecapctl" submit "$root/examples/plans/mixtral-8x7b-h100x1.yaml" \
  --wait --agents-grace-s 30 --coordinator "$addr"
step e2e_perf_json 60 bash -c "'$bin/moecapctl' status -o json --coordinator $addr"
# Measured energy (issue 18): every phase of the last job read the GPU's NVML energy counter.
step e2e_energy 60 python3 - "$bin/moecapctl" "$addr" <<'PY'
import json, subprocess, sys
ctl, addr = sys.argv[1], sys.argv[2]
def run(*argv):
    return json.loads(subprocess.run([ctl, *argv, "-o", "json", "--coordinator", addr],
                                     capture_output=True, text=True, check=True).stdout)
jobs = run("status").get("jobs", [])
job = sorted(j["id"] for j in jobs)[-1]
bad = []
for point in run("results", job).get("results", []):
    for phase in point.get("phases", []):
        source, j = phase.get("energy_source", ""), phase.get("energy_joules_per_step")
        print(point.get("point_index"), phase.get("phase"), source, j, phase.get("mean_power_watts"),
              phase.get("joules_per_token"))
        if not source.startswith("nvml") or not j or j <= 0:
            bad.append((point.get("point_index"), phase.get("phase"), phase.get("energy_unavailable")))
print("energy not measured:", bad) if bad else print("energy measured on every phase")
sys.exit(1 if bad else 0)
PY
kill "$agent" "$coordinator" 2>/dev/null
wait 2>/dev/null
rm -rf "$work"
echo "== summary"
cat "$summary"
