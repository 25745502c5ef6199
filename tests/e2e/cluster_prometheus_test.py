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
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--coordinator", "--agent", "--ctl", "--prometheus", "--dashboard"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    if not os.path.exists(args.prometheus):
        print(f"SKIP: {args.prometheus} not found (Debian package prometheus)")
        return 77
    work = tempfile.mkdtemp(prefix="moecap-e2e-cluster-")
    procs = []
    try:
        grpc_addr = f"127.0.0.1:{free_port()}"
        coord_metrics = f"127.0.0.1:{free_port()}"
        coordinator = subprocess.Popen(
            [args.coordinator, "--listen", grpc_addr, "--db", "", "--metrics-listen", coord_metrics,
             "--insecure"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "coordinator.log"), "w"),
            text=True)
        procs.append(coordinator)
        deadline = time.time() + 30
        while time.time() < deadline and not coordinator.stdout.readline().startswith("listening"):
            if coordinator.poll() is not None:
                print("the coordinator exited; see coordinator.log")
                return 1
        agent_metrics = []
        for i in range(2):
            addr = f"127.0.0.1:{free_port()}"
            agent_metrics.append(addr)
            procs.append(subprocess.Popen(
                [args.agent, "--coordinator", grpc_addr, "--name", f"agent-{i}", "--insecure",
                 "--backend", "cpu",
                 "--data-address", "127.0.0.1", "--devices", "1", "--threads-per-rank", "1",
                 "--peak-bandwidth-gb-s", "20", "--peak-gflops", "60", "--metrics-listen", addr,
                 "--work-dir", os.path.join(work, f"agent-{i}")],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"agent-{i}.log"), "w")))
        plan = os.path.join(work, "plan.yaml")
        with open(plan, "w") as f:
            f.write(PLAN)
        # submit --wait waits for the agents' registration through the queue.
        run = subprocess.run([args.ctl, "submit", plan, "--wait", "-o", "json", "--coordinator",
                              grpc_addr], capture_output=True, text=True, timeout=180)
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
                   "--target", f"moecap-coordinator={coord_metrics}"]
        for addr in agent_metrics:
            command += ["--target", f"moecap-agent={addr}"]
        for e in expectations:
            command += ["--expect", e]
        print("expecting:", *expectations, sep="\n  ")
        return subprocess.run(command, timeout=240).returncode
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
