#!/usr/bin/env python3
"""The API is usable outside C++: a Python client generated from proto/moecap/v1 with Debian's
python3-grpcio submits a plan to a real coordinator with two real CPU agents and reads the results.

Usage: python_client_test.py --proto-dir DIR --coordinator BIN --agent BIN
Stubs are generated with protoc's --python_out and grpc_python_plugin (Debian's grpc_tools.protoc
is too old for proto3 `optional`). Every wait is bounded; every process is stopped at the end.
"""
import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

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


def generate_stubs(proto_dir, out_dir):
    plugin = shutil.which("grpc_python_plugin")
    if plugin is None:
        print("SKIP: grpc_python_plugin not found (apt-get install protobuf-compiler-grpc)")
        sys.exit(77)
    protos = sorted(glob.glob(os.path.join(proto_dir, "moecap", "v1", "*.proto")))
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out_dir}",
                    f"--grpc_out={out_dir}", f"--plugin=protoc-gen-grpc={plugin}", *protos],
                   check=True)
    for d in ("moecap", os.path.join("moecap", "v1")):
        open(os.path.join(out_dir, d, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)


def start_coordinator(binary, work):
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--db",
                             os.path.join(work, "moecap.db"), "--lease-s", "10", "--insecure"],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "coord.log"), "w"),
                            text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("listening on "):
            return proc, "127.0.0.1:" + line.strip().rsplit(":", 1)[1]
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the coordinator did not report its port; see coord.log")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--coordinator", required=True)
    ap.add_argument("--agent", required=True)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="moecap-pyclient-")
    procs = []
    try:
        generate_stubs(args.proto_dir, work)
        import grpc
        from moecap.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

        coord, address = start_coordinator(args.coordinator, work)
        procs.append(coord)
        for i in range(2):
            procs.append(subprocess.Popen(
                [args.agent, "--coordinator", address, "--name", f"py-agent-{i}", "--insecure",
                 "--backend", "cpu", "--data-address", "127.0.0.1", "--devices", "1",
                 "--peak-bandwidth-gb-s", "10", "--peak-gflops", "50",
                 "--work-dir", os.path.join(work, f"agent-{i}")],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"agent-{i}.log"), "w")))

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
        if os.environ.get("MOECAP_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
