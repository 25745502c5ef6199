#!/usr/bin/env python3
"""End-to-end monitoring of a real cluster: a moecap-coordinator and two moecap-agents on loopback,
each serving /metrics, run a job submitted with moecapctl; then a real Prometheus scrapes them
(prometheus_scrape_test.py) and the S-MBU/S-MFU series of that job must hold exactly the values
the coordinator reported (`moecapctl results -o json`), and every dashboard expression must be
valid and return data. Every wait is bounded; every process is stopped. Exit 77: a tool missing.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration",
                                "lib"))
from moecap_testlib import AGENT_CPU_FLAGS, Cluster, free_address, test_dir  # noqa: E402

PLAN = """
name: monitored
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 2, devices_per_node: 1}
workload:
  phases: [prefill, decode]
  batch_sizes: [2]
  prompt_len: 8
  output_len: 4
  layers: 1
  scale: 64
  dtype: fp32
  warmup: 1
  iterations: 3
pricing: {usd_per_device_hour: 0.1}
"""


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--coordinator", "--agent", "--ctl", "--prometheus", "--dashboard"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    if not os.path.exists(args.prometheus):
        print(f"SKIP: {args.prometheus} not found (Debian package prometheus)")
        return 77
    # An in-memory database; every process serves /metrics on a free port. All are stopped at
    # the end, the directory removed (MOECAP_KEEP_TEST_DIRS=1 keeps it).
    coord_metrics = free_address()
    agent_flags = ["--insecure", *AGENT_CPU_FLAGS, "--threads-per-rank", "1",
                   "--peak-bandwidth-gb-s", "20", "--peak-gflops", "60"]
    with test_dir("moecap-e2e-cluster-") as work, Cluster(
            args, work, db="", lease_s=None, agent_flags=agent_flags,
            coordinator_flags=["--metrics-listen", coord_metrics, "--insecure"]) as cluster:
        cluster.start_coordinator()
        agent_metrics = []
        for i in range(2):
            addr = free_address()
            agent_metrics.append(addr)
            cluster.start_agent(f"agent-{i}", ["--metrics-listen", addr])
        plan = os.path.join(work, "plan.yaml")
        with open(plan, "w") as f:
            f.write(PLAN)
        # submit --wait waits (--agents-grace-s) for the agents started just before to register.
        run = cluster.ctl("submit", plan, "--wait", "--agents-grace-s", "120", "-o", "json",
                          check=False, timeout=180)
        if run.returncode != 0:
            print(run.stdout, run.stderr)
            return 1
        text = run.stdout
        results = json.loads(text[text.index("\n{") + 1:] if not text.startswith("{") else text)
        job_id = results["job_id"]
        expectations = []
        for point in results["results"]:
            batch = next(p["value"] for p in point["parameters"] if p["name"] == "batch_size")
            for phase in point["phases"]:
                name = phase["phase"].replace("PHASE_", "").lower()
                labels = f'job_id="{job_id}",point="{point["point_index"]}",phase="{name}",batch="{batch}"'
                expectations.append(f"moecap_result_sparse_mbu{{{labels}}}={phase['s_mbu']!r}")
                expectations.append(f"moecap_result_sparse_mfu{{{labels}}}={phase['s_mfu']!r}")
        command = [sys.executable, os.path.join(os.path.dirname(__file__), "prometheus_scrape_test.py"),
                   "--prometheus", args.prometheus, "--dashboard", args.dashboard, "--timeout", "30",
                   "--no-every-sample",
                   # A CPU host without readable RAPL counters reports no measured energy.
                   "--may-be-empty", "Measured energy per output token",
                   "--may-be-empty", "Measured mean power",
                   "--target", f"moecap-coordinator={coord_metrics}"]
        for addr in agent_metrics:
            command += ["--target", f"moecap-agent={addr}"]
        for e in expectations:
            command += ["--expect", e]
        print("expecting:", *expectations, sep="\n  ")
        return subprocess.run(command, timeout=240).returncode


if __name__ == "__main__":
    sys.exit(main())
