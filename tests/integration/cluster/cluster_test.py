#!/usr/bin/env python3
"""The cluster end to end: a real moecap-coordinator and three real moecap-agent processes on
loopback, driven through moecapctl as a user would.

Checks: results arrive and their bytes/FLOPs equal moecap-bench's for the same plan (times within
noise); gang scheduling (a 3-agent job waits while a 2-agent job runs); cancel; a plan that can
never fit is rejected; the coordinator killed (SIGKILL) and restarted on the same database keeps
every job and result and finishes the queued ones.

Usage: cluster_test.py --coordinator BIN --agent BIN --ctl BIN --bench BIN
Every wait is bounded; every process is stopped at the end.
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

TOO_BIG = """
name: too-big
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 16, devices_per_node: 1}
workload: {batch_sizes: [1], prompt_len: 8, output_len: 4, scale: 64}
"""

TERMINAL = {"succeeded", "failed", "cancelled"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.coordinator = None
        self.agents = []

    def start_coordinator(self):
        log = open(os.path.join(self.work, "coordinator.log"), "a")
        self.coordinator = subprocess.Popen(
            [self.args.coordinator, "--listen", self.address, "--db",
             os.path.join(self.work, "moecap.db"), "--lease-s", "5", "--insecure"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.coordinator.stdout.readline()
            if line.startswith("listening on"):
                return
            if self.coordinator.poll() is not None:
                break
        raise AssertionError("coordinator did not start; see coordinator.log")

    def start_agents(self, n):
        for i in range(n):
            self.agents.append(subprocess.Popen(
                [self.args.agent, "--coordinator", self.address, "--name", f"agent-{i}", "--insecure",
                 "--backend", "cpu", "--data-address", "127.0.0.1", "--devices", "1",
                 "--peak-bandwidth-gb-s", "20", "--peak-gflops", "60", "--threads-per-rank", "1",
                 "--reconnect-max-s", "1", "--work-dir", os.path.join(self.work, f"agent-{i}")],
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(self.work, f"agent-{i}.log"), "a")))

    def ctl(self, *argv, check=True, timeout=120):
        p = subprocess.run([self.args.ctl, *argv, "--coordinator", self.address],
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"moecapctl {' '.join(argv)} exited {p.returncode}: {p.stderr}")
        return p

    def write_plan(self, name, text):
        path = os.path.join(self.work, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def submit(self, name, nodes, iterations):
        # Three ranks need a model whose experts divide by 3: Qwen1.5-MoE has 60.
        model = "mixtral-8x7b" if nodes != 3 else "qwen1.5-moe-a2.7b"
        path = self.write_plan(
            name, SMALL.format(name=name, model=model, nodes=nodes, iterations=iterations))
        return self.ctl("submit", path).stdout.strip()

    def job(self, job_id):
        return json.loads(self.ctl("status", job_id, "-o", "json").stdout)

    def state(self, job_id):
        return self.job(job_id)["state"].replace("JOB_STATE_", "").lower()

    def wait_state(self, job_id, states, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.state(job_id)
            if s in states:
                return s
            time.sleep(0.1)
        raise AssertionError(f"{job_id} still {self.state(job_id)} after {timeout}s")

    def wait_idle_agents(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            agents = json.loads(self.ctl("agents", "-o", "json").stdout).get("agents", [])
            if sum(a["state"] == "AGENT_STATE_IDLE" for a in agents) >= n:
                return
            time.sleep(0.2)
        raise AssertionError(f"fewer than {n} idle agents after {timeout}s")

    def stop(self):
        procs = self.agents + ([self.coordinator] if self.coordinator else [])
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def check_matches_bench(cluster, job_id, args):
    results = json.loads(cluster.ctl("results", job_id, "-o", "json").stdout)
    bench = json.loads(subprocess.run(
        [args.bench, "--model", "mixtral-8x7b", "--ranks", "2", "--batch", "4", "--phase", "both",
         "--prompt-len", "8", "--layers", "1", "--scale", "64", "--iters", "3", "--warmup", "1",
         "--seed", "7", "--peak-bandwidth-gb-s", "20", "--peak-tflops", "0.06", "-o", "json"],
        capture_output=True, text=True, timeout=120, check=True).stdout)
    by_phase = {p["phase"]: p for p in bench["points"]}
    (point,) = results["results"]
    assert point["check"]["passed"], point["check"]
    for phase in point["phases"]:
        name = phase["phase"].replace("PHASE_", "").lower()
        ref = by_phase[name]
        # Bytes and FLOPs are counted, not timed: they must be equal exactly.
        assert phase["bytes"] == ref["counted"]["bytes"], (name, phase["bytes"], ref["counted"])
        assert phase["flops"] == ref["counted"]["flops"], (name, phase["flops"], ref["counted"])
        # Times are measured by two different runs on a shared machine: same order of magnitude.
        ratio = phase["step_time"]["p50"] / ref["seconds"]["step"]["p50"]
        assert 0.1 < ratio < 10, (name, ratio)
    print(f"results of {job_id} match moecap-bench (bytes and FLOPs exactly)")


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--coordinator", "--agent", "--ctl", "--bench"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--scenario", choices=["basic", "restart"], default="restart",
                    help="basic: steps 1-4; restart: also kill and restart the coordinator")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="moecap-cluster-")
    cluster = Cluster(args, work)
    try:
        cluster.start_coordinator()
        cluster.start_agents(3)
        cluster.wait_idle_agents(3)

        # 1. Results arrive and match moecap-bench.
        first = cluster.submit("first", nodes=2, iterations=3)
        assert cluster.wait_state(first, TERMINAL, 120) == "succeeded", cluster.job(first)
        check_matches_bench(cluster, first, args)
        cluster.wait_idle_agents(3)

        # 2. A plan that can never fit is rejected at submit, naming the reason.
        p = cluster.ctl("submit", cluster.write_plan("too-big", TOO_BIG), check=False)
        assert p.returncode != 0 and "expert" in p.stderr, (p.returncode, p.stderr)

        # 3. Gang scheduling: a 3-agent job waits while a 2-agent job runs.
        long2 = cluster.submit("long2", nodes=2, iterations=400)
        cluster.wait_state(long2, {"running", "rendezvous"}, 60)
        gang3 = cluster.submit("gang3", nodes=3, iterations=3)
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
        running = cluster.submit("before-kill", nodes=3, iterations=400)
        queued = cluster.submit("queued-at-kill", nodes=2, iterations=3)
        cluster.wait_state(running, {"running", "rendezvous"}, 60)
        cluster.coordinator.kill()
        cluster.coordinator.wait()
        cluster.start_coordinator()
        for job_id in (first, gang3):  # finished results survive
            assert cluster.state(job_id) == "succeeded"
        results = json.loads(cluster.ctl("results", first, "-o", "json").stdout)
        assert len(results["results"]) == 1
        # The interrupted job is requeued once and both finish once the agents are back.
        assert cluster.wait_state(queued, TERMINAL, 180) == "succeeded", cluster.job(queued)
        assert cluster.wait_state(running, TERMINAL, 240) in ("succeeded",), cluster.job(running)
        # Requeued exactly once: one INTERRUPTED transition in its history.
        history = [t["state"] for t in cluster.job(running).get("history", [])]
        assert history.count("JOB_STATE_INTERRUPTED") == 1, history
        listed = json.loads(cluster.ctl("status", "-o", "json").stdout)["jobs"]
        assert len(listed) == 5, [j["id"] for j in listed]  # none lost (the cancelled one too)
        print("cluster test passed")
        return 0
    finally:
        cluster.stop()
        if os.environ.get("MOECAP_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
