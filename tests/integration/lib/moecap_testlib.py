"""Shared pieces of moecap's Python integration and e2e tests (Python 3 standard library only).

    free_port()            a loopback TCP port the kernel picked a moment ago
    generate_stubs()       Python gRPC stubs from proto/moecap/v1 (protoc + grpc_python_plugin)
    ManagedProcess         a child with its output in a log file, waited for and stopped with bounds
    stop_all()             SIGTERM to every process at once, then SIGKILL after a bound
    run_ctl()              moecapctl, its output captured
    wait_until()           polls a check with a bounded timeout
    test_dir()             a temporary work directory, removed at the end
    Cluster                a moecap-coordinator and N moecap-agents on loopback, driven by moecapctl

Import it from a test script with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import moecap_testlib  # noqa: E402

Every wait here is bounded; every process started is stopped by stop() / stop_all().
"""

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# Terminal job states as `moecapctl status -o json` spells them (lower case, no JOB_STATE_).
TERMINAL = {"succeeded", "failed", "cancelled"}

# An agent's CPU backend on loopback: one device, its data plane on 127.0.0.1.
AGENT_CPU_FLAGS = ["--backend", "cpu", "--data-address", "127.0.0.1", "--devices", "1"]
# The cluster tests' agents: plaintext, small peaks, one thread a rank, reconnect within 1 s.
DEFAULT_AGENT_FLAGS = ["--insecure", *AGENT_CPU_FLAGS, "--peak-bandwidth-gb-s", "20",
                       "--peak-gflops", "60", "--threads-per-rank", "1", "--reconnect-max-s", "1"]


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_address(host="127.0.0.1"):
    """host:port with a free port."""
    return f"{host}:{free_port(host)}"


def generate_stubs(proto_dir, out_dir):
    """Generates the Python stubs of proto_dir/moecap/v1 into out_dir and puts it on sys.path.

    protoc's --python_out and grpc_python_plugin (Debian's grpc_tools.protoc is too old for proto3
    `optional`). Exits 77 (skipped) when grpc_python_plugin is missing."""
    plugin = shutil.which("grpc_python_plugin")
    if plugin is None:
        print("SKIP: grpc_python_plugin not found (apt-get install protobuf-compiler-grpc)")
        sys.exit(77)
    protos = sorted(glob.glob(os.path.join(proto_dir, "moecap", "v1", "*.proto")))
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out_dir}",
                    f"--grpc_out={out_dir}", f"--plugin=protoc-gen-grpc={plugin}", *protos],
                   check=True)
    for sub in ("moecap", os.path.join("moecap", "v1")):
        open(os.path.join(out_dir, sub, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)


@contextlib.contextmanager
def test_dir(prefix):
    """A new temporary directory, removed with everything in it at the end unless the environment
    sets MOECAP_KEEP_TEST_DIRS=1 (then its path is printed)."""
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        yield work
    finally:
        if os.environ.get("MOECAP_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"test directory kept: {work}")


def wait_until(check, timeout, interval=0.1, failure="condition not met"):
    """check()'s first truthy value, polled every `interval` s for at most `timeout` s; then
    AssertionError with `failure` (a string, or a callable giving one when it is needed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(failure() if callable(failure) else failure)


class ManagedProcess:
    """A child process whose output goes to a log file, stopped with SIGTERM then SIGKILL.

    stdout: None (default): stdout and stderr both into the log; subprocess.DEVNULL: stdout
    dropped, stderr into the log; subprocess.PIPE: stderr into the log, stdout read line by line
    by a thread so that wait_for_line() can find a line such as the coordinator's "listening on".
    log_mode "a" appends (a restarted process keeps its log), "w" truncates.
    new_session: the child leads its own process group and every signal goes to the group.
    It has the Popen calls tests use on a child: poll, wait, send_signal, kill, pid, returncode."""

    def __init__(self, argv, log_path, stdout=None, log_mode="a", new_session=False, env=None):
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.lines = []  # stdout lines read so far (stdout=PIPE only)
        self._group = new_session
        self._cond = threading.Condition()
        self._eof = stdout != subprocess.PIPE
        with open(log_path, log_mode.replace("b", "") + "b") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log if stdout is None else stdout,
                stderr=subprocess.STDOUT if stdout is None else log,
                start_new_session=new_session, env=env)
        if stdout == subprocess.PIPE:
            threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self):
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for_line(self, prefix, timeout):
        """The first stdout line starting with `prefix`, waiting at most `timeout` s; None when
        the process closed its stdout (exited) or the time ran out first."""
        deadline = time.time() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                left = deadline - time.time()
                if self._eof or left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))

    @property
    def pid(self):
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.returncode

    def poll(self):
        return self.proc.poll()

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=None):
        return self.proc.wait(timeout=timeout)

    def send_signal(self, sig):
        """`sig` to the process (to its group with new_session); nothing when it is gone."""
        try:
            if self._group:
                os.killpg(self.proc.pid, sig)
            elif self.proc.poll() is None:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        """SIGCONT (in case it was stopped with SIGSTOP), then SIGTERM, if it is still running."""
        if self.alive():
            self.send_signal(signal.SIGCONT)
            self.send_signal(signal.SIGTERM)

    def reap(self, grace_s=10.0):
        """Waits up to grace_s for it to exit, then SIGKILLs it. Returns the exit code."""
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(timeout=5)
        return self.proc.returncode

    def stop(self, grace_s=10.0):
        """SIGCONT + SIGTERM, wait up to grace_s, then SIGKILL. Returns the exit code."""
        self.terminate()
        return self.reap(grace_s)

    def log_tail(self, lines=30):
        """The last `lines` lines of the log ("" when it cannot be read)."""
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def stop_all(procs, grace_s=10.0):
    """Stops every process: all are sent SIGTERM first (SIGCONT before, for a stopped one), then
    each is waited for up to grace_s and SIGKILLed if still running."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        p.terminate()
    for p in procs:
        p.reap(grace_s)


def run_ctl(ctl, *argv, check=True, timeout=120, env=None):
    """Runs `ctl argv...` with its output captured (text); AssertionError when check is set and
    it exits non-zero."""
    p = subprocess.run([ctl, *argv], capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"moecapctl {' '.join(argv)} exited {p.returncode}: {p.stderr}")
    return p


class Cluster:
    """A real moecap-coordinator and moecap-agent processes on loopback, driven by moecapctl.

    args: .coordinator, .agent and (for ctl()) .ctl, the binaries. work: a directory for the
    database, the logs (coordinator.log, NAME.log) and the agents' work dirs (work/NAME).
    listen: the coordinator's address (default a free loopback port; with port 0 the address is
    read from its "listening on" line). db: a file name in work, or "" for an in-memory database.
    lease_s: its --lease-s (None: the default). coordinator_flags: the rest of its flags (the
    transport). agent_flags: every agent's flags besides --coordinator, --name and --work-dir.
    agent_name: the format of start_agents' names.
    As a context manager it stops every process it started at the end."""

    def __init__(self, args, work, *, listen=None, db="moecap.db", lease_s=5,
                 coordinator_flags=("--insecure",), agent_flags=DEFAULT_AGENT_FLAGS,
                 agent_name="agent-{}"):
        self.args, self.work = args, work
        self.address = listen or free_address()
        self.db = os.path.join(work, db) if db else ""
        self.lease_s = lease_s
        self.coordinator_flags = list(coordinator_flags)
        self.agent_flags = list(agent_flags)
        self.agent_name = agent_name
        self.coordinator = None
        self.agents = []  # ManagedProcess, in start order
        self.agent_names = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- processes ----

    def start_coordinator(self, timeout=30):
        """Starts the coordinator (again, on the same database and address after a kill) and
        waits up to `timeout` s for its "listening on" line."""
        lease = ["--lease-s", str(self.lease_s)] if self.lease_s is not None else []
        self.coordinator = ManagedProcess(
            [self.args.coordinator, "--listen", self.address, "--db", self.db, *lease,
             *self.coordinator_flags],
            os.path.join(self.work, "coordinator.log"), stdout=subprocess.PIPE)
        line = self.coordinator.wait_for_line("listening on ", timeout)
        if line is None:
            raise AssertionError(f"the coordinator did not start within {timeout} s; "
                                 f"coordinator.log:\n{self.coordinator.log_tail()}")
        if self.address.endswith(":0"):
            self.address = "127.0.0.1:" + line.strip().rsplit(":", 1)[1]
        return self.coordinator

    def _agent_process(self, name, extra):
        return ManagedProcess(
            [self.args.agent, "--coordinator", self.address, "--name", name, *self.agent_flags,
             *extra, "--work-dir", os.path.join(self.work, name)],
            os.path.join(self.work, f"{name}.log"), stdout=subprocess.DEVNULL)

    def start_agent(self, name, extra=()):
        """Starts one agent named `name` with `extra` flags besides agent_flags."""
        proc = self._agent_process(name, extra)
        self.agents.append(proc)
        self.agent_names.append(name)
        return proc

    def start_agents(self, n):
        for i in range(n):
            self.start_agent(self.agent_name.format(len(self.agents)))

    def restart_agent(self, name, extra=()):
        """Starts a new process for agent `name` (after its old one was killed) in its place."""
        i = self.agent_names.index(name)
        self.agents[i] = self._agent_process(name, extra)
        return self.agents[i]

    def agent_process(self, name):
        return self.agents[self.agent_names.index(name)]

    def stop(self, grace_s=10.0):
        """Every agent and the coordinator: SIGCONT + SIGTERM, then SIGKILL after grace_s."""
        stop_all(self.agents + [self.coordinator], grace_s)

    # ---- moecapctl ----

    def ctl(self, *argv, check=True, timeout=120, env=None):
        return run_ctl(self.args.ctl, *argv, "--coordinator", self.address, check=check,
                       timeout=timeout, env=env)

    def write_plan(self, name, text):
        path = os.path.join(self.work, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def submit_text(self, name, text):
        """Writes plan `text` as work/NAME.yaml and submits it; returns the job id."""
        return self.ctl("submit", self.write_plan(name, text)).stdout.strip()

    def job(self, job_id):
        return json.loads(self.ctl("status", job_id, "-o", "json").stdout)

    def state(self, job_id):
        return self.job(job_id)["state"].replace("JOB_STATE_", "").lower()

    def wait_state(self, job_id, states, timeout):
        """The job's state once it is one of `states`, polled for at most `timeout` s."""
        def reached():
            s = self.state(job_id)
            return s if s in states else None
        return wait_until(reached, timeout, 0.1,
                          lambda: f"{job_id} still {self.state(job_id)} after {timeout}s")

    def results(self, job_id):
        return json.loads(self.ctl("results", job_id, "-o", "json").stdout).get("results", [])

    def agents_list(self):
        return json.loads(self.ctl("agents", "-o", "json").stdout).get("agents", [])

    def wait_idle_agents(self, n, timeout=60):
        wait_until(lambda: sum(a["state"] == "AGENT_STATE_IDLE" for a in self.agents_list()) >= n,
                   timeout, 0.2, f"fewer than {n} idle agents after {timeout}s")
