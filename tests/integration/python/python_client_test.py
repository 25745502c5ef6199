#!/usr/bin/env python3
"""The API is usable outside C++: a Python client generated from proto/moecap/v1 with Debian's
python3-grpcio submits a plan to a real coordinator with two real CPU agents and reads the results.

Usage: python_client_test.py --proto-dir DIR --coordinator BIN --agent BIN
Stubs are generated with protoc's --python_out and grpc_python_plugin (Debian's grpc_tools.protoc
is too old for proto3 `optional`). Every wait is bounded; every process is stopped at the end.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from moecap_testlib import AGENT_CPU_FLAGS, Cluster, generate_stubs, test_dir  # noqa: E402

PLAN = """
name: python-client-smoke
model: Mixtral-8x7B
hardware: {backend: cpu}
parallelism: {nodes: 2, devices_per_node: 1}
workload:
  phases: [prefill, decode]
  batch_sizes: [2, 4]
  prompt_len: 8
  output_len: 4
  layers: 1
  scale: 64
  dtype: fp32
  warmup: 1
  iterations: 3
  check: true
labels: {client: python}
"""

BAD_PLAN = """
name: bad
model: mixtral-8x7b
workload:
  batch_sizes: [1, 0]
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--coordinator", required=True)
    ap.add_argument("--agent", required=True)
    args = ap.parse_args()

    # The coordinator on port 0 (its address read from its "listening on" line), two agents; all
    # stopped at the end, the directory removed (MOECAP_KEEP_TEST_DIRS=1 keeps it).
    agent_flags = ["--insecure", *AGENT_CPU_FLAGS, "--peak-bandwidth-gb-s", "10",
                   "--peak-gflops", "50"]
    with test_dir("moecap-pyclient-") as work, Cluster(
            args, work, listen="127.0.0.1:0", lease_s=10, agent_name="py-agent-{}",
            agent_flags=agent_flags) as cluster:
        generate_stubs(args.proto_dir, work)
        import grpc
        from moecap.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

        cluster.start_coordinator()
        address = cluster.address
        cluster.start_agents(2)

        channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(channel).result(timeout=20)
        jobs = job_service_pb2_grpc.JobServiceStub(channel)

        # A bad plan is refused with INVALID_ARGUMENT naming the field path.
        try:
            jobs.SubmitPlan(job_service_pb2.SubmitPlanRequest(plan_yaml=BAD_PLAN, origin="bad.yaml"),
                            timeout=10)
            raise AssertionError("a plan with batch size 0 was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
            assert "batch_sizes[1]" in e.details(), e.details()

        # Both agents registered.
        deadline = time.time() + 60
        while time.time() < deadline:
            agents = jobs.ListAgents(job_service_pb2.ListAgentsRequest(), timeout=10).agents
            if len(agents) == 2:
                break
            time.sleep(0.2)
        assert len(agents) == 2, f"{len(agents)} agents registered"

        submitted = jobs.SubmitPlan(
            job_service_pb2.SubmitPlanRequest(plan_yaml=PLAN, origin="python"), timeout=10)
        job_id = submitted.job_id
        assert job_id, "no job id"
        assert submitted.job.points_total == 2, submitted.job.points_total

        terminal = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED,
                    job_pb2.JOB_STATE_CANCELLED}
        deadline = time.time() + 180
        state = None
        while time.time() < deadline:
            job = jobs.GetJob(job_service_pb2.GetJobRequest(job_id=job_id), timeout=10).job
            state = job.state
            if state in terminal:
                break
            time.sleep(0.25)
        assert state == job_pb2.JOB_STATE_SUCCEEDED, \
            f"job ended {job_pb2.JobState.Name(state)}: {job.failure_reason}"

        results = jobs.GetResults(job_service_pb2.GetResultsRequest(job_id=job_id), timeout=10)
        assert results.model == "mixtral-8x7b", results.model
        assert len(results.results) == 2, len(results.results)
        for point in results.results:
            assert point.devices == 2, point.devices
            assert point.check.checked and point.check.passed, point.check
            assert len(point.phases) == 2, point.phases
            for phase in point.phases:
                assert 0 < phase.s_mbu and 0 < phase.s_mfu, phase
                assert phase.bytes > 0 and phase.flops > 0
                assert phase.step_time.p50 > 0
        print(f"python client: job {job_id} succeeded with {len(results.results)} results")
        return 0


if __name__ == "__main__":
    sys.exit(main())
