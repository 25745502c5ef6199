#!/usr/bin/env python3
"""The cluster end to end: a real moecap-coordinator and three real moecap-agent processes on
loopback, driven through moecapctl as a user would.

Checks: results arrive with the same fields as moecap-bench's for the same plan and seed, every
counted figure equal (bytes, FLOPs, activated experts, imbalance, exchange bytes, the per-rank
rows) and every timed one measured in both; gang scheduling (a 3-agent job waits while a 2-agent job runs); cancel; a plan that can
never fit is rejected; the coordinator killed (SIGKILL) and restarted on the same database keeps
every job and result, requeues the interrupted one once and finishes the queued one.

Usage: cluster_test.py --coordinator BIN --agent BIN --ctl BIN --bench BIN
Every wait is bounded; every process is stopped at the end.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from moecap_testlib import TERMINAL, Cluster, test_dir, wait_until  # noqa: E402

SMALL = """
name: {name}
model: {model}
hardware: {{backend: cpu}}
parallelism: {{nodes: {nodes}, devices_per_node: 1}}
workload:
  phases: [prefill, decode]
  batch_sizes: [4]
  prompt_len: 8
  output_len: 4
  layers: 1
  scale: 64
  dtype: fp32
  seed: 7
  warmup: 1
  iterations: {iterations}
  check: true
"""

# Iterations of a job that must still be running when the test acts on it: minutes of work on
# any machine, far longer than the test waits (it is cancelled).
FOREVER = 1_000_000

TOO_BIG = """
name: too-big
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 16, devices_per_node: 1}
workload: {batch_sizes: [1], prompt_len: 8, output_len: 4, scale: 64}
"""


def submit(cluster, name, nodes, iterations):
    """Submits the SMALL plan on `nodes` agents; returns the job id."""
    # Three ranks need a model whose experts divide by 3: Qwen1.5-MoE has 60.
    model = "mixtral-8x7b" if nodes != 3 else "qwen1.5-moe-a2.7b"
    return cluster.submit_text(
        name, SMALL.format(name=name, model=model, nodes=nodes, iterations=iterations))


# The figures counted, not timed: equal exactly between moecap-bench and the cluster (both run
# the same aggregation, common/aggregate). Every other figure is timed and must be present and
# measured in both.
COUNTED = ("phase", "bytes", "flops", "dense_bytes", "dense_flops", "tokens_per_step",
           "iterations", "activated_experts", "imbalance", "imbalance_per_layer", "breakdown",
           "metric_core")
COUNTED_COMMUNICATION = ("dispatch_logical_bytes", "dispatch_remote_bytes",
                         "combine_logical_bytes", "combine_remote_bytes")
COUNTED_RANK = ("rank", "tokens_per_step", "pairs_computed_per_step", "counts", "physical_counts",
                "activation_bytes")
TIMED = ("s_mbu", "s_mfu", "tokens_per_s", "achieved_bandwidth_bytes_per_s")


def check_matches_bench(cluster, job_id, args):
    results = json.loads(cluster.ctl("results", job_id, "-o", "json").stdout)
    bench = json.loads(subprocess.run(
        [args.bench, "--model", "mixtral-8x7b", "--ranks", "2", "--batch", "4", "--phase", "both",
         "--prompt-len", "8", "--output-len", "4", "--layers", "1", "--scale", "64",
         "--iters", "3", "--warmup", "1",
         "--seed", "7", "--check", "--peak-bandwidth-gb-s", "20", "--peak-tflops", "0.06",
         "-o", "json"],
        capture_output=True, text=True, timeout=120, check=True).stdout)
    (ref_point,) = bench["results"]
    (point,) = results["results"]
    assert point["check"]["passed"] and ref_point["check"]["passed"], (point["check"],
                                                                       ref_point["check"])
    ref_phases = {p["phase"]: p for p in ref_point["phases"]}
    assert set(ref_phases) == {p["phase"] for p in point["phases"]}, (ref_phases.keys(), point)
    for phase in point["phases"]:
        name = phase["phase"]
        ref = ref_phases[name]
        # The same result type with the same fields, filled by the same code.
        assert set(phase) == set(ref), (name, set(phase) ^ set(ref))
        for key in COUNTED:
            assert phase[key] == ref[key], (name, key, phase[key], ref[key])
        for key in COUNTED_COMMUNICATION:
            assert phase["communication"][key] == ref["communication"][key], (name, key)
        for which in ("dispatch_bandwidth", "combine_bandwidth"):
            for key in ("logical_bytes", "remote_bytes"):
                assert phase[which][key] == ref[which][key], (name, which, key)
        assert len(phase["ranks"]) == len(ref["ranks"]) == 2, (name, phase["ranks"])
        for row, ref_row in zip(phase["ranks"], ref["ranks"]):
            for key in COUNTED_RANK:
                assert row[key] == ref_row[key], (name, key, row[key], ref_row[key])
        assert phase["check"]["passed"] and ref["check"]["passed"], (name, phase["check"])
        # Times are measured by two different runs of microsecond steps on a shared 2-core
        # machine: their ratio swung from 0.09 to 42 between runs, so it is printed, not asserted
        # (speed belongs in benchmarks); both must be measured (positive).
        for key in TIMED:
            assert phase[key] > 0 and ref[key] > 0, (name, key, phase[key], ref[key])
        for figure in (phase, ref):
            assert figure["step_time"]["p50"] > 0, (name, figure["step_time"])
            assert 0 <= figure["harness_overhead"] < 1, (name, figure["harness_overhead"])
        print(f"{name}: step p50 cluster {phase['step_time']['p50'] * 1e3:.3f} ms, "
              f"bench {ref['step_time']['p50'] * 1e3:.3f} ms")
    print(f"results of {job_id} match moecap-bench (every counted figure exactly)")


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--coordinator", "--agent", "--ctl", "--bench"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--scenario", choices=["basic", "restart"], default="restart",
                    help="basic: steps 1-4; restart: also kill and restart the coordinator")
    args = ap.parse_args()
    # Every process is stopped at the end, the directory removed (MOECAP_KEEP_TEST_DIRS=1 keeps it).
    with test_dir("moecap-cluster-") as work, Cluster(args, work) as cluster:
        cluster.start_coordinator()
        cluster.start_agents(3)
        cluster.wait_idle_agents(3)

        # 1. Results arrive and match moecap-bench.
        first = submit(cluster, "first", nodes=2, iterations=3)
        assert cluster.wait_state(first, TERMINAL, 120) == "succeeded", cluster.job(first)
        check_matches_bench(cluster, first, args)
        cluster.wait_idle_agents(3)

        # 2. A plan that can never fit is rejected at submit, naming the reason.
        p = cluster.ctl("submit", cluster.write_plan("too-big", TOO_BIG), check=False)
        assert p.returncode != 0 and "expert" in p.stderr, (p.returncode, p.stderr)

        # 3. Gang scheduling: a 3-agent job waits while a 2-agent job runs. The running job is
        # one that cannot end by itself within the test (a million iterations: minutes), so
        # that the cancel below always finds it running, however fast this machine is.
        long2 = submit(cluster, "long2", nodes=2, iterations=FOREVER)
        cluster.wait_state(long2, {"running", "rendezvous"}, 60)
        gang3 = submit(cluster, "gang3", nodes=3, iterations=3)
        time.sleep(0.5)
        assert cluster.state(gang3) == "queued", cluster.job(gang3)
        assert cluster.state(long2) in ("running", "rendezvous", "scheduled", "aggregating")

        # 4. Cancel the running job: the queued one then runs to the end.
        cluster.ctl("cancel", long2)
        assert cluster.wait_state(long2, TERMINAL, 30) == "cancelled"
        assert cluster.wait_state(gang3, TERMINAL, 120) == "succeeded", cluster.job(gang3)
        cluster.wait_idle_agents(3)

        if args.scenario == "basic":
            print("cluster test (basic) passed")
            return 0

        # 5. The coordinator killed mid-queue and restarted on the same database.
        # The running job cannot end by itself within the test (see step 3): the kill always
        # finds it running, so it is always interrupted.
        running = submit(cluster, "before-kill", nodes=3, iterations=FOREVER)
        queued = submit(cluster, "queued-at-kill", nodes=2, iterations=3)
        cluster.wait_state(running, {"running", "rendezvous"}, 60)
        cluster.coordinator.kill()
        cluster.coordinator.wait()
        cluster.start_coordinator()
        for job_id in (first, gang3):  # finished results survive
            assert cluster.state(job_id) == "succeeded"
        results = json.loads(cluster.ctl("results", first, "-o", "json").stdout)
        assert len(results["results"]) == 1
        # The interrupted job is requeued once and runs again (before or after the job queued
        # behind it: the agents rejoin in any order, and two free agents may take that one
        # first); cancelled then, it lets the queued one run to the end in any case.
        def requeued_and_running():
            job = cluster.job(running)
            history = [t["state"] for t in job.get("history", [])]
            return "JOB_STATE_INTERRUPTED" in history and cluster.state(running) in (
                "running", "rendezvous")
        wait_until(requeued_and_running, 120, 0.2,
                   f"{running} was not requeued and started again after the restart")
        cluster.ctl("cancel", running)
        assert cluster.wait_state(running, TERMINAL, 30) == "cancelled", cluster.job(running)
        assert cluster.wait_state(queued, TERMINAL, 180) == "succeeded", cluster.job(queued)
        # Requeued exactly once: one INTERRUPTED transition in its history.
        history = [t["state"] for t in cluster.job(running).get("history", [])]
        assert history.count("JOB_STATE_INTERRUPTED") == 1, history
        listed = json.loads(cluster.ctl("status", "-o", "json").stdout)["jobs"]
        assert len(listed) == 5, [j["id"] for j in listed]  # none lost (the cancelled one too)
        print("cluster test passed")
        return 0


if __name__ == "__main__":
    sys.exit(main())
