#!/usr/bin/env python3
"""Faults (issue 7): a real moecap-coordinator with a short lease (2 s) and three real moecap-agent
processes on loopback, driven through moecapctl.

1. An agent killed with SIGKILL mid-job: the coordinator marks it lost within the lease plus 5 s,
   the job (no retries) fails with a reason naming the lost agent, the point already reported is
   kept, and the surviving agent returns to idle.
2. The same with `retry: {max_retries: 1}`: the point is retried on the agents left and the job
   succeeds (attempt 2).
3. An agent stopped (SIGSTOP) past its lease, then continued (SIGCONT): it is declared lost and its
   job fails; it then rejoins under its own id (no duplicate agent, no duplicate rank), its stale
   work is cancelled (it returns to idle), nothing is counted twice, and a job needing all three
   agents then succeeds.

Usage: faults_test.py --coordinator BIN --agent BIN --ctl BIN
Every wait is bounded; every process is stopped at the end (a stopped one is continued first).
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from moecap_testlib import TERMINAL, Cluster, test_dir, wait_until  # noqa: E402

LEASE_S = 2
DETECT_S = LEASE_S + 5  # the bound: within the lease plus 5 s

# Two points (layers 1, then a long stack), so that one point is reported before the fault.
TWO_POINTS = """
name: {name}
model: mixtral-8x7b
hardware: {{backend: cpu}}
parallelism: {{nodes: {nodes}, devices_per_node: 1}}
workload:
  phases: [prefill, decode]
  batch_sizes: [4]
  prompt_len: 8
  output_len: 4
  scale: 64
  dtype: fp32
  seed: 7
  warmup: 1
  iterations: {iterations}
  timeouts: {{collective_seconds: 5, rendezvous_seconds: 10}}
sweeps:
  - layers: [1, {layers}]
retry: {{max_retries: {retries}}}
"""


class FaultCluster(Cluster):
    """The cluster fixture with a short lease."""

    def __init__(self, args, work):
        super().__init__(args, work, lease_s=LEASE_S)

    def submit_plan(self, name, nodes, iterations, layers, retries):
        return self.submit_text(name, TWO_POINTS.format(
            name=name, nodes=nodes, iterations=iterations, layers=layers, retries=retries))

    def agent_state(self, name):
        states = [a["state"] for a in self.agents_list() if a["info"]["name"] == name]
        return states

    def wait_agent_state(self, name, state, timeout):
        return wait_until(
            lambda: time.time() if f"AGENT_STATE_{state}" in self.agent_state(name) else None,
            timeout, 0.1,
            lambda: f"{name} not {state} after {timeout}s: {self.agent_state(name)}")

    def wait_results(self, job_id, n, timeout):
        wait_until(lambda: len(self.results(job_id)) >= n, timeout, 0.1,
                   f"{job_id}: fewer than {n} results after {timeout}s")

    def job_agents(self, job_id):
        """(name, process) of the agents of the job's current attempt."""
        names = [a["agent_name"] for a in self.job(job_id).get("agents", [])]
        return [(n, self.agent_process(n)) for n in names]


def wait_running_with_one_result(cluster, job_id, timeout=120):
    """Waits until point 0 is reported and point 1 runs; returns the job's agents."""
    cluster.wait_results(job_id, 1, timeout)
    cluster.wait_state(job_id, {"running", "rendezvous", "scheduled", "aggregating"}, 30)
    agents = cluster.job_agents(job_id)
    assert len(agents) == 2, cluster.job(job_id)
    return agents


def killed_agent_fails_the_job(cluster):
    job = cluster.submit_plan("sigkill", nodes=2, iterations=20, layers=100, retries=0)
    (victim, victim_proc), (survivor, _) = wait_running_with_one_result(cluster, job)
    killed_at = time.time()
    victim_proc.kill()
    victim_proc.wait()
    lost_at = cluster.wait_agent_state(victim, "LOST", DETECT_S + 3)
    assert cluster.wait_state(job, TERMINAL, DETECT_S + 3) == "failed", cluster.job(job)
    failed_after = time.time() - killed_at
    detected_after = lost_at - killed_at
    print(f"SIGKILL: agent lost after {detected_after:.1f} s, job failed after "
          f"{failed_after:.1f} s (lease {LEASE_S} s)")
    assert detected_after <= DETECT_S, detected_after
    assert failed_after <= DETECT_S + 1, failed_after  # one more poll of moecapctl
    reason = cluster.job(job).get("failure_reason", "")
    assert victim in reason and "lost" in reason, reason
    # The point reported before the fault is kept.
    assert len(cluster.results(job)) == 1, cluster.results(job)
    # The surviving agent aborts its collective and returns to idle (bounded by the plan's
    # collective timeout, 5 s, plus slack).
    cluster.wait_agent_state(survivor, "IDLE", 20)
    return victim


def killed_agent_is_retried(cluster):
    job = cluster.submit_plan("retried", nodes=2, iterations=20, layers=100, retries=1)
    (victim, victim_proc), _ = wait_running_with_one_result(cluster, job)
    victim_proc.kill()
    victim_proc.wait()
    cluster.wait_agent_state(victim, "LOST", DETECT_S + 3)
    # Requeued for its retry, then run on the two agents left to the end.
    assert cluster.wait_state(job, TERMINAL, 300) == "succeeded", cluster.job(job)
    points = cluster.job(job)["points"]
    assert points[1].get("attempts") == 2, points[1]
    assert victim not in {a["agent_name"] for a in cluster.job(job)["agents"]}
    assert len(cluster.results(job)) == 2
    print(f"SIGKILL with max_retries 1: point 1 retried without {victim}, job succeeded")
    return victim


def stopped_agent_rejoins(cluster):
    job = cluster.submit_plan("sigstop", nodes=2, iterations=20, layers=100, retries=0)
    (victim, victim_proc), (survivor, _) = wait_running_with_one_result(cluster, job)
    ids_before = {a["info"]["name"]: a["id"] for a in cluster.agents_list()}
    victim_proc.send_signal(signal.SIGSTOP)
    try:
        cluster.wait_agent_state(victim, "LOST", DETECT_S + 3)
        assert cluster.wait_state(job, TERMINAL, DETECT_S + 3) == "failed", cluster.job(job)
        results_before = cluster.results(job)
        assert len(results_before) == 1
        cluster.wait_agent_state(survivor, "IDLE", 20)
    finally:
        victim_proc.send_signal(signal.SIGCONT)
    # Back: it registers again under its own id and its stale run is cancelled.
    cluster.wait_agent_state(victim, "IDLE", 30)
    agents = cluster.agents_list()
    named = [a for a in agents if a["info"]["name"] == victim]
    assert len(named) == 1, named  # no duplicate agent
    assert named[0]["id"] == ids_before[victim], (named[0]["id"], ids_before[victim])
    # Nothing the stale run might still send is counted: the failed job keeps its one result.
    time.sleep(1)
    assert cluster.state(job) == "failed"
    assert cluster.results(job) == results_before
    # All three agents, the returned one included, run a job: three distinct ranks.
    after = cluster.submit_text("after-rejoin", TWO_POINTS.format(
        name="after-rejoin", nodes=3, iterations=3, layers=2, retries=0).replace(
            "mixtral-8x7b", "qwen1.5-moe-a2.7b"))
    assert cluster.wait_state(after, TERMINAL, 180) == "succeeded", cluster.job(after)
    assigned = cluster.job(after)["agents"]
    ranks = [r for a in assigned for r in a["ranks"]]
    assert sorted(ranks) == [0, 1, 2], assigned
    assert len({a["agent_name"] for a in assigned}) == 3, assigned
    print(f"SIGSTOP past the lease: {victim} lost, its job failed, it rejoined as "
          f"{named[0]['id']} and ran the next job")


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--coordinator", "--agent", "--ctl"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    # At the end every process is stopped (a stopped agent continued first) and the directory
    # removed (MOECAP_KEEP_TEST_DIRS=1 keeps it).
    with test_dir("moecap-faults-") as work, FaultCluster(args, work) as cluster:
        cluster.start_coordinator()
        cluster.start_agents(3)
        cluster.wait_idle_agents(3)

        victim = killed_agent_fails_the_job(cluster)
        cluster.restart_agent(victim)
        cluster.wait_idle_agents(3)

        victim = killed_agent_is_retried(cluster)
        cluster.restart_agent(victim)
        cluster.wait_idle_agents(3)

        stopped_agent_rejoins(cluster)
        print("faults test passed")
        return 0


if __name__ == "__main__":
    sys.exit(main())
