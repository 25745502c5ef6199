#!/usr/bin/env python3
"""Security end to end (docs/security.md): a real moecap-coordinator with TLS, mTLS for agents and
a tokens file; real moecap-agent processes; moecapctl and a Python gRPC client (stubs generated
from proto/moecap/v1) checking exact status codes.

Proves: a plaintext client is refused; JobService without a token is UNAUTHENTICATED; a read-only
token may read but SubmitPlan/CancelJob are PERMISSION_DENIED; an admin token submits; two agents
with certificates from the coordinator's CA register and run a 2-node job to completion over TLS
(their rank workers' rendezvous included); an agent without a certificate is UNAUTHENTICATED, one
with a certificate of another CA fails the handshake, one registering under another name than its
certificate's is PERMISSION_DENIED (also acting for another agent's id); and the coordinator
refuses to start with neither TLS nor --insecure.

Certificates are throw-away, made with openssl in a temporary directory.
Usage: security_test.py --proto-dir DIR --coordinator BIN --agent BIN --ctl BIN
Every wait is bounded; every process is stopped at the end.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from moecap_testlib import AGENT_CPU_FLAGS, Cluster, generate_stubs, run_ctl  # noqa: E402

ADMIN_TOKEN = "admin-0123456789abcdef0123456789abcdef"
READER_TOKEN = "reader-0123456789abcdef0123456789abcdef"

PLAN = """
name: security-smoke
model: mixtral-8x7b
hardware: {backend: cpu}
parallelism: {nodes: 2, devices_per_node: 1}
workload:
  phases: [decode]
  batch_sizes: [2]
  prompt_len: 8
  output_len: 2
  layers: 1
  scale: 64
  dtype: fp32
  seed: 3
  warmup: 1
  iterations: 2
  check: true
"""

FAILURES = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60, **kw)


def make_certs(d):
    """CA, server (SAN 127.0.0.1/localhost), agent-a, agent-b, and agent-a from a rogue CA."""
    def ca(name):
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.pem", "-days", "2",
             "-subj", f"/CN={name}"])

    def leaf(name, cn, san, issuer):
        ext = f"{d}/{name}.ext"
        with open(ext, "w") as f:
            f.write(f"basicConstraints=CA:FALSE\nsubjectAltName={san}\n"
                    "keyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n")
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/CN={cn}"])
        run(["openssl", "x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/{issuer}.pem",
             "-CAkey", f"{d}/{issuer}.key", "-CAcreateserial", "-out", f"{d}/{name}.pem",
             "-days", "2", "-extfile", ext])

    ca("ca")
    ca("rogue-ca")
    leaf("server", "moecap-coordinator", "IP:127.0.0.1,DNS:localhost", "ca")
    leaf("agent-a", "agent-a", "DNS:agent-a", "ca")
    leaf("agent-b", "agent-b", "DNS:agent-b", "ca")
    leaf("rogue", "agent-a", "DNS:agent-a", "rogue-ca")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--proto-dir", "--coordinator", "--agent", "--ctl"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    if shutil.which("openssl") is None:
        print("SKIP: openssl not found")
        return 77

    work = tempfile.mkdtemp(prefix="moecap-security-")
    cluster = None
    try:
        generate_stubs(args.proto_dir, work)
        import grpc
        from moecap.v1 import (agent_pb2, agent_service_pb2, agent_service_pb2_grpc, common_pb2,
                               job_service_pb2, job_service_pb2_grpc, rendezvous_service_pb2,
                               rendezvous_service_pb2_grpc)
        certs = os.path.join(work, "certs")
        os.makedirs(certs)
        make_certs(certs)
        c = lambda name: os.path.join(certs, name)
        tokens = os.path.join(work, "tokens")
        with open(tokens, "w") as f:
            f.write(f"# moecapctl users\n{ADMIN_TOKEN} admin ops\n{READER_TOKEN} read-only viewer\n")

        # 0. Neither TLS nor --insecure: the coordinator does not start and says what to pass.
        p = subprocess.run([args.coordinator, "--listen", "127.0.0.1:0", "--db", ""],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode != 0 and "--insecure" in p.stderr and "--tls-cert" in p.stderr,
              f"no transport flags: refused to start ({p.stderr.strip()[-160:]})")
        p = subprocess.run([args.agent, "--coordinator", "127.0.0.1:1", "--name", "x"],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode != 0 and "--insecure" in p.stderr,
              "agent without --insecure or TLS flags: refused to start")

        # The coordinator over TLS (mTLS for agents) with the tokens file; agents with the CA.
        cluster = Cluster(
            args, work, lease_s=5,
            coordinator_flags=["--tls-cert", c("server.pem"), "--tls-key", c("server.key"),
                               "--tls-ca", c("ca.pem"), "--tokens-file", tokens],
            agent_flags=[*AGENT_CPU_FLAGS, "--threads-per-rank", "1", "--peak-bandwidth-gb-s",
                         "20", "--peak-gflops", "60", "--reconnect-max-s", "1", "--tls-ca",
                         c("ca.pem"), "--tls-server-name", "localhost"])
        cluster.start_coordinator()
        address = cluster.address

        def secure(cert=None, ca="ca.pem"):
            creds = grpc.ssl_channel_credentials(
                root_certificates=read(c(ca)),
                private_key=read(c(cert + ".key")) if cert else None,
                certificate_chain=read(c(cert + ".pem")) if cert else None)
            return grpc.secure_channel(address, creds)

        def code(call, *a, token=None, **kw):
            md = [("authorization", f"Bearer {token}")] if token else None
            try:
                call(*a, metadata=md, timeout=10, **kw)
                return grpc.StatusCode.OK
            except grpc.RpcError as e:
                return e.code()

        # 1. JobService: transport, tokens and roles.
        plain = job_service_pb2_grpc.JobServiceStub(grpc.insecure_channel(address))
        check(code(plain.ListAgents, job_service_pb2.ListAgentsRequest(), token=ADMIN_TOKEN)
              == grpc.StatusCode.UNAVAILABLE, "plaintext client: refused (UNAVAILABLE)")
        jobs = job_service_pb2_grpc.JobServiceStub(secure())
        check(code(jobs.ListAgents, job_service_pb2.ListAgentsRequest())
              == grpc.StatusCode.UNAUTHENTICATED, "no token: ListAgents UNAUTHENTICATED")
        check(code(jobs.ListJobs, job_service_pb2.ListJobsRequest(), token="not-a-token-at-all-x")
              == grpc.StatusCode.UNAUTHENTICATED, "unknown token: ListJobs UNAUTHENTICATED")
        check(code(jobs.ListAgents, job_service_pb2.ListAgentsRequest(), token=READER_TOKEN)
              == grpc.StatusCode.OK, "read-only token: ListAgents OK")
        check(code(jobs.ListJobs, job_service_pb2.ListJobsRequest(), token=READER_TOKEN)
              == grpc.StatusCode.OK, "read-only token: ListJobs OK")
        check(code(jobs.SubmitPlan, job_service_pb2.SubmitPlanRequest(plan_yaml=PLAN),
                   token=READER_TOKEN) == grpc.StatusCode.PERMISSION_DENIED,
              "read-only token: SubmitPlan PERMISSION_DENIED")
        check(code(jobs.CancelJob, job_service_pb2.CancelJobRequest(job_id="job-000001"),
                   token=READER_TOKEN) == grpc.StatusCode.PERMISSION_DENIED,
              "read-only token: CancelJob PERMISSION_DENIED")
        check(code(jobs.SubmitPlan,
                   job_service_pb2.SubmitPlanRequest(plan_yaml=PLAN, dry_run=True),
                   token=ADMIN_TOKEN) == grpc.StatusCode.OK, "admin token: SubmitPlan (dry run) OK")

        # 2. AgentService and RendezvousService: certificates.
        info = agent_pb2.AgentInfo(name="agent-b", hostname="h", backend=common_pb2.BACKEND_CPU)
        no_cert = agent_service_pb2_grpc.AgentServiceStub(secure())
        check(code(no_cert.Register, agent_service_pb2.RegisterRequest(agent=info))
              == grpc.StatusCode.UNAUTHENTICATED, "agent without a certificate: UNAUTHENTICATED")
        rdv = rendezvous_service_pb2_grpc.RendezvousServiceStub(secure())
        check(code(rdv.Set, rendezvous_service_pb2.RendezvousSetRequest(
            agent_id="agent-1", scope="s", key="k", value=b"v"))
              == grpc.StatusCode.UNAUTHENTICATED, "rendezvous without a certificate: UNAUTHENTICATED")
        rogue = agent_service_pb2_grpc.AgentServiceStub(secure(cert="rogue"))
        check(code(rogue.Register, agent_service_pb2.RegisterRequest(agent=info))
              == grpc.StatusCode.UNAVAILABLE,
              "agent with a certificate of another CA: handshake refused (UNAVAILABLE)")
        as_a = agent_service_pb2_grpc.AgentServiceStub(secure(cert="agent-a"))
        check(code(as_a.Register, agent_service_pb2.RegisterRequest(agent=info))
              == grpc.StatusCode.PERMISSION_DENIED,
              "agent-a's certificate registering as agent-b: PERMISSION_DENIED")

        # 3. Real agents over mTLS; one more with agent-a's certificate claiming agent-c.
        for name, cert in (("agent-a", "agent-a"), ("agent-b", "agent-b"), ("agent-c", "agent-a")):
            cluster.start_agent(name, ["--tls-cert", c(cert + ".pem"),
                                       "--tls-key", c(cert + ".key")])
        # An agent with no certificate at all (TLS to the server only).
        cluster.start_agent("agent-d")

        names = set()
        deadline = time.time() + 60
        while time.time() < deadline and not {"agent-a", "agent-b"} <= names:
            resp = jobs.ListAgents(job_service_pb2.ListAgentsRequest(), timeout=10,
                                   metadata=[("authorization", f"Bearer {READER_TOKEN}")])
            names = {a.info.name for a in resp.agents if a.state == agent_pb2.AGENT_STATE_IDLE}
            time.sleep(0.2)
        check({"agent-a", "agent-b"} <= names, f"agents with valid certificates registered: {names}")
        time.sleep(2)  # agent-c and agent-d have tried a few times by now (backoff <= 1 s)
        resp = jobs.ListAgents(job_service_pb2.ListAgentsRequest(), timeout=10,
                               metadata=[("authorization", f"Bearer {READER_TOKEN}")])
        all_names = {a.info.name for a in resp.agents}
        check("agent-c" not in all_names and "agent-d" not in all_names,
              f"agent-c (another's certificate) and agent-d (none) never registered: {all_names}")
        log_c = open(os.path.join(work, "agent-c.log")).read()
        check("not the agent the client certificate names" in log_c,
              "agent-c's log says its certificate names another agent")
        log_d = open(os.path.join(work, "agent-d.log")).read()
        check("need a client certificate" in log_d, "agent-d's log says it needs a certificate")

        # Acting for another agent's id with agent-a's certificate.
        ids = {a.info.name: a.id for a in resp.agents}
        check(code(as_a.Heartbeat, agent_service_pb2.HeartbeatRequest(
            agent_id=ids.get("agent-b", "?"), state=agent_pb2.AGENT_STATE_IDLE))
              == grpc.StatusCode.PERMISSION_DENIED,
              "agent-a's certificate heartbeating for agent-b: PERMISSION_DENIED")
        rdv_a = rendezvous_service_pb2_grpc.RendezvousServiceStub(secure(cert="agent-a"))
        check(code(rdv_a.Set, rendezvous_service_pb2.RendezvousSetRequest(
            agent_id=ids.get("agent-b", "?"), scope="s", key="k", value=b"v"))
              == grpc.StatusCode.PERMISSION_DENIED,
              "agent-a's certificate using agent-b's rendezvous: PERMISSION_DENIED")

        # 4. moecapctl: roles, then a 2-node job over TLS to completion.
        plan = os.path.join(work, "plan.yaml")
        with open(plan, "w") as f:
            f.write(PLAN)
        def ctl(*argv, timeout=60, env=None):
            return run_ctl(args.ctl, *argv, check=False, timeout=timeout, env=env)

        tls = ["--coordinator", address, "--tls-ca", c("ca.pem"), "--timeout-s", "10"]
        p = ctl("agents", *tls)
        check(p.returncode != 0 and "no bearer token" in p.stderr,
              f"moecapctl agents without a token: refused ({p.stderr.strip()})")
        p = ctl("agents", "--coordinator", address, "--insecure", "--token", READER_TOKEN,
                "--timeout-s", "5")
        check(p.returncode != 0 and "cannot reach the coordinator" in p.stderr,
              "moecapctl in plaintext against TLS: refused")
        env = dict(os.environ, MOECAP_TOKEN=READER_TOKEN)
        p = ctl("agents", *tls, env=env)
        check(p.returncode == 0 and "agent-a" in p.stdout,
              f"moecapctl agents with a read-only $MOECAP_TOKEN: ok ({p.stderr.strip()})")
        p = ctl("status", *tls, env=env)
        check(p.returncode == 0, f"moecapctl status with a read-only token: ok ({p.stderr.strip()})")
        p = ctl("submit", plan, *tls, env=env)
        check(p.returncode != 0 and "this call needs admin" in p.stderr,
              f"moecapctl submit with a read-only token: refused ({p.stderr.strip()})")
        p = ctl("cancel", "job-000001", *tls, env=env)
        check(p.returncode != 0 and "this call needs admin" in p.stderr,
              f"moecapctl cancel with a read-only token: refused ({p.stderr.strip()})")
        token_file = os.path.join(work, "admin.token")
        with open(token_file, "w") as f:
            f.write(ADMIN_TOKEN + "\n")
        p = ctl("submit", plan, "--wait", "--wait-timeout-s", "180", "--agents-grace-s", "60",
                "--token-file", token_file, *tls, timeout=240)
        check(p.returncode == 0 and "S-MBU" in p.stdout,
              f"admin token: a 2-node job ran to completion over TLS (rc {p.returncode}; "
              f"{p.stderr.strip()[-300:]})")
        p = ctl("status", *tls, "-o", "json", env=env)
        check(p.returncode == 0 and "succeeded" in p.stdout.lower(),
              "the job is listed as succeeded")
    finally:
        if cluster is not None:
            cluster.stop(grace_s=15)
        if FAILURES:
            for log in sorted(glob.glob(os.path.join(work, "*.log"))):
                print(f"--- {os.path.basename(log)} (first and last 15 lines)")
                with open(log, errors="replace") as f:
                    lines = f.readlines()
                print("".join(lines[:15] + ["...\n"] + lines[-15:] if len(lines) > 30 else lines))
        shutil.rmtree(work, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all security checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
