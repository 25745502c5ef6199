#!/usr/bin/env python3
"""Multi-host on one machine (issue 17): the coordinator and each of three agents in its own
network namespace with its own address, joined by veth pairs to a bridge that lives in a fifth
namespace, so that no traffic leaves them (the addresses, 10.213.0.0/24, exist only inside).

1. A three-node job runs over Gloo across the namespaces (each rank listens on its agent's own
   address) and succeeds.
2. One agent's link goes down mid-point: the job fails within the lease plus the collective
   timeout (and slack), its reason naming that agent.
3. The link comes back: the agent rejoins and the next three-node job succeeds.

It skips (exit 77) with the reason where namespaces cannot be made (not root, no `ip netns`).
Usage: multihost_test.py --coordinator BIN --agent BIN --ctl BIN
Every wait is bounded; every process and namespace is removed at the end.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from moecap_testlib import (TERMINAL, Cluster, ManagedProcess, run_ctl, test_dir,  # noqa: E402
                            wait_until)

SKIP = 77
LEASE_S = 2
COLLECTIVE_S = 5
SUBNET = "10.213.0"
COORDINATOR_IP = f"{SUBNET}.1"
PORT = 50551

PLAN = """
name: {name}
model: qwen1.5-moe-a2.7b  # 60 experts: 20 on each of the 3 ranks
hardware: {{backend: cpu}}
parallelism: {{nodes: 3, devices_per_node: 1}}
workload:
  phases: [prefill, decode]
  batch_sizes: [6]
  prompt_len: 8
  output_len: 4
  layers: {layers}
  scale: 32
  dtype: fp32
  seed: 7
  warmup: 1
  iterations: {iterations}
  check: true
  timeouts: {{collective_seconds: {collective}, rendezvous_seconds: 20}}
"""


def ip(*argv, check=True):
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=check)


class Namespaces:
    """The bridge namespace and one namespace per host, each with eth0 on the bridge."""

    def __init__(self, tag):
        self.tag = tag
        self.bridge = f"mc{tag}-br"
        self.hosts = {}  # name -> (namespace, address)

    def __enter__(self):
        ip("netns", "add", self.bridge)
        ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge, "link", "set", "br0", "up")
        return self

    def add(self, name, address):
        ns = f"mc{self.tag}-{name}"
        ip("netns", "add", ns)
        peer = f"v{len(self.hosts)}"
        # The pair is made inside the host's namespace, its peer moved to the bridge's: nothing
        # is ever created in the machine's own namespace.
        ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer)
        ip("-n", ns, "link", "set", peer, "netns", self.bridge)
        ip("-n", self.bridge, "link", "set", peer, "master", "br0")
        ip("-n", self.bridge, "link", "set", peer, "up")
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = (ns, address)
        return ns

    def link(self, name, up):
        ip("-n", self.hosts[name][0], "link", "set", "eth0", "up" if up else "down")

    def exec_prefix(self, name):
        return ["ip", "netns", "exec", self.hosts[name][0]]

    def __exit__(self, *exc):
        for ns, _ in self.hosts.values():
            ip("netns", "del", ns, check=False)
        ip("netns", "del", self.bridge, check=False)


def can_make_namespaces():
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_SYS_ADMIN"
    probe = f"mcprobe{os.getpid()}"
    try:
        r = ip("netns", "add", probe, check=False)
    except FileNotFoundError:
        return "no `ip` command (iproute2)"
    if r.returncode != 0:
        return f"`ip netns add` failed: {r.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


class NamespacedCluster(Cluster):
    """The cluster fixture with every process inside its host's namespace."""

    def __init__(self, args, work, namespaces):
        super().__init__(args, work, listen=f"{COORDINATOR_IP}:{PORT}", lease_s=LEASE_S,
                         agent_flags=[])
        self.ns = namespaces

    def start_coordinator(self, timeout=30):
        self.coordinator = ManagedProcess(
            [*self.ns.exec_prefix("coordinator"), self.args.coordinator, "--listen", self.address,
             "--db", self.db, "--lease-s", str(LEASE_S), "--insecure"],
            os.path.join(self.work, "coordinator.log"), stdout=subprocess.PIPE)
        if self.coordinator.wait_for_line("listening on ", timeout) is None:
            raise AssertionError(f"the coordinator did not start; coordinator.log:\n"
                                 f"{self.coordinator.log_tail()}")
        return self.coordinator

    def _agent_process(self, name, extra):
        address = self.ns.hosts[name][1]
        return ManagedProcess(
            [*self.ns.exec_prefix(name), self.args.agent, "--coordinator", self.address, "--name",
             name, "--insecure", "--backend", "cpu", "--data-address", address, "--devices", "1",
             "--peak-bandwidth-gb-s", "20", "--peak-gflops", "60", "--threads-per-rank", "1",
             "--reconnect-max-s", "1", *extra, "--work-dir", os.path.join(self.work, name)],
            os.path.join(self.work, f"{name}.log"), stdout=subprocess.DEVNULL)

    def ctl(self, *argv, check=True, timeout=120, env=None):
        prefix = self.ns.exec_prefix("coordinator")
        return run_ctl(prefix[0], *prefix[1:], self.args.ctl, *argv, "--coordinator",
                       self.address, check=check, timeout=timeout, env=env)


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--coordinator", "--agent", "--ctl"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    why_not = can_make_namespaces()
    if why_not:
        print(f"SKIP: {why_not}")
        return SKIP
    names = ["agent-0", "agent-1", "agent-2"]
    with test_dir("moecap-multihost-") as work, Namespaces(str(os.getpid() % 100000)) as ns:
        ns.add("coordinator", COORDINATOR_IP)
        for i, name in enumerate(names):
            ns.add(name, f"{SUBNET}.{10 + i}")
        with NamespacedCluster(args, work, ns) as cluster:
            cluster.start_coordinator()
            for name in names:
                cluster.start_agent(name)
            cluster.wait_idle_agents(3, timeout=60)
            hosts = sorted(a["info"]["data_plane_host"] for a in cluster.agents_list())
            assert hosts == [f"{SUBNET}.10", f"{SUBNET}.11", f"{SUBNET}.12"], hosts

            # 1. Across the namespaces.
            job = cluster.submit_text("across", PLAN.format(
                name="across", layers=1, iterations=3, collective=COLLECTIVE_S))
            assert cluster.wait_state(job, TERMINAL, 180) == "succeeded", cluster.job(job)
            print(f"1. a 3-node job over Gloo across the namespaces succeeded ({job})")

            # 2. agent-2's link down mid-point.
            job = cluster.submit_text("cut", PLAN.format(
                name="cut", layers=24, iterations=200, collective=COLLECTIVE_S))
            cluster.wait_state(job, {"running"}, 60)
            time.sleep(1.0)  # into the timed steps (the bound below starts at the cut)
            cut = time.time()
            ns.link("agent-2", up=False)
            bound = LEASE_S + COLLECTIVE_S + 10
            assert cluster.wait_state(job, TERMINAL, bound) == "failed", cluster.job(job)
            took = time.time() - cut
            reason = cluster.job(job).get("failure_reason", "")
            assert "agent-2" in reason, reason
            print(f"2. link down: the job failed {took:.1f} s after the cut (bound {bound} s), "
                  f"reason: {reason[:160]}")

            # 3. The link back: agent-2 rejoins and the next job runs on all three.
            ns.link("agent-2", up=True)
            cluster.wait_idle_agents(3, timeout=60)
            job = cluster.submit_text("after", PLAN.format(
                name="after", layers=1, iterations=3, collective=COLLECTIVE_S))
            assert cluster.wait_state(job, TERMINAL, 180) == "succeeded", cluster.job(job)
            print(f"3. link up: agent-2 rejoined and the next job succeeded ({job})")
    print("multihost: all scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
