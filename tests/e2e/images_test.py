#!/usr/bin/env python3
"""The container images for real: built by scripts/build-images.sh, then a coordinator and two
CPU agents run from them (host network) and a plan submitted by the host's moecapctl succeeds.

Checks, in order:
  1. scripts/build-images.sh builds moecap-coordinator and moecap-agent-cpu (docker, podman or
     buildah; offline, from a debootstrapped Debian 12 base);
  2. the coordinator and two agents start from the images; each image's own HEALTHCHECK command,
     run inside its container, passes; every main process runs as uid 10001;
  3. `moecapctl agents` lists both agents, a two-node CPU plan submitted with the host's
     moecapctl succeeds and its results hold S-MBU and S-MFU in (0, 1];
  4. the coordinator's container is stopped and a new one started on the same volume: the job,
     its state and its results are all still there, and a second job runs.

Engines: docker (with a daemon) or podman run containers as usual; where neither can start one
(no daemon; an OCI runtime refused here), buildah runs them with --isolation chroot, which shares
the host's network and process namespaces. Exit 0 pass, 1 fail, 77 skipped (no engine, or no
base image and no debootstrap, or MOECAP_IMAGES unset: the reason is printed).

It builds both images (7 to 8 min on 2 cores from a cold cache: more than CI's 25-minute budget
allows besides the other tests), so it runs only with MOECAP_IMAGES=1: `MOECAP_IMAGES=1 scripts/test.sh`, or
`MOECAP_IMAGES=1 ctest --test-dir build/release -L images --output-on-failure`.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration",
                                "lib"))
from moecap_testlib import ManagedProcess, free_port, run_ctl, test_dir, wait_until  # noqa: E402

SKIP = 77
UID = "10001"
PLAN = """
name: {name}
model: mixtral-8x7b
hardware: {{backend: cpu}}
parallelism: {{nodes: 2, devices_per_node: 1}}
workload:
  layer: moe
  phases: [prefill, decode]
  batch_sizes: [4]
  prompt_len: 8
  output_len: 4
  layers: 1
  scale: 64
  dtype: fp32
  seed: 7
  warmup: 1
  iterations: 2
  check: true
"""


def works(*argv):
    try:
        return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Engine:
    """Runs, inspects and stops containers with one engine. name: docker, podman or buildah."""

    def __init__(self, name, work):
        self.name, self.work = name, work
        self.procs = {}  # container -> ManagedProcess of its `run` command
        self.containers = []

    def image_config(self, image):
        """The image's Docker config (User, Healthcheck, Entrypoint, ...)."""
        if self.name == "buildah":
            out = subprocess.run(["buildah", "inspect", "--type", "image", image],
                                 capture_output=True, text=True, check=True).stdout
            return json.loads(out)["Docker"]["config"]
        out = subprocess.run([self.name, "image", "inspect", image], capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out)[0]["Config"]

    def start(self, container, image, args, volume=None):
        """Starts `image` (its entrypoint, then args) as `container` on the host network."""
        log = os.path.join(self.work, f"{container}.log")
        mount = [] if volume is None else ["-v", f"{volume[0]}:{volume[1]}"]
        if self.name == "buildah":
            if container not in self.containers:
                subprocess.run(["buildah", "from", "--pull=false", "--name", container, image],
                               capture_output=True, check=True)
            entry = self.image_config(image)["Entrypoint"]
            argv = ["buildah", "run", "--isolation", "chroot", *mount, container, "--", *entry,
                    *args]
        else:
            subprocess.run([self.name, "rm", "-f", container], capture_output=True)
            argv = [self.name, "run", "--rm", "--name", container, "--network", "host", *mount,
                    image, *args]
        if container not in self.containers:
            self.containers.append(container)
        self.procs[container] = ManagedProcess(argv, log, stdout=subprocess.PIPE)
        return self.procs[container]

    def main_pid(self, container, binary):
        """The host pid of the container's `binary` process."""
        if self.name != "buildah":
            out = subprocess.run([self.name, "inspect", "--format", "{{.State.Pid}}", container],
                                 capture_output=True, text=True).stdout.strip()
            return int(out) if out.isdigit() and out != "0" else None
        # chroot isolation: the process is a host process, a descendant of the `buildah run`
        # command (through buildah-chroot-exec), whose root is a per-run mount of the rootfs.
        proc = self.procs.get(container)
        if proc is None:
            return None
        for pid in descendants(proc.pid):
            try:
                if os.path.basename(os.readlink(f"/proc/{pid}/exe")) == binary:
                    return pid
            except OSError:
                continue
        return None

    def exec(self, container, command):
        """Runs a shell command inside the running container; the CompletedProcess."""
        if self.name == "buildah":
            argv = ["buildah", "run", "--isolation", "chroot", container, "--", "sh", "-c",
                    command]
        else:
            argv = [self.name, "exec", container, "sh", "-c", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    def stop(self, container, binary, grace_s=15):
        """SIGTERM to the container's main process (as `docker stop` sends), SIGKILL after
        grace_s; waits for its `run` command to end."""
        pid = self.main_pid(container, binary)
        if self.name != "buildah":
            subprocess.run([self.name, "stop", "-t", str(grace_s), container],
                           capture_output=True)
        elif pid is not None:
            os.kill(pid, signal.SIGTERM)
        proc = self.procs.get(container)
        if proc is not None:
            try:
                proc.wait(timeout=grace_s + 5)
            except subprocess.TimeoutExpired:
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                proc.kill()
                proc.wait(timeout=10)

    def remove_all(self):
        for container, proc in self.procs.items():
            binary = "moecap-coordinator" if "coordinator" in container else "moecap-agent"
            if proc.poll() is None:
                self.stop(container, binary, grace_s=5)
            # Nothing a container started may outlive the test (a chroot-isolated process is
            # not killed with the `buildah run` that started it).
            for pid in descendants(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for container in self.containers:
            force = [] if self.name == "buildah" else ["-f"]
            subprocess.run([self.name, "rm", *force, container], capture_output=True)


def descendants(root_pid):
    """The pids of every process below root_pid (from /proc: children by parent pid)."""
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def choose_engine():
    """docker or podman where they can start a container; else buildah with chroot isolation."""
    if works("docker", "info"):
        return "docker"
    if shutil.which("buildah") and works("buildah", "info"):
        return "buildah"
    if works("podman", "info"):
        return "podman"
    return None


def image_exists(engine_name, image):
    if engine_name == "docker":
        return works("docker", "image", "inspect", image)
    return works(engine_name, "inspect", "--type", "image", image)


def build_images(args, env, engine_name):
    """Builds both images with scripts/build-images.sh; None on success, else the exit code."""
    started = time.time()
    build = subprocess.run(["bash", os.path.join(args.source_dir, "scripts/build-images.sh"),
                            "coordinator", "agent-cpu"], env=env, capture_output=True, text=True)
    print(build.stdout, end="")
    if build.returncode == 3:
        print(f"SKIP: {build.stderr.strip().splitlines()[-1]}")
        return SKIP
    if build.returncode != 0:
        print(f"FAIL: scripts/build-images.sh exited {build.returncode}:\n{build.stderr[-4000:]}")
        return 1
    print(f"ok: images built with {engine_name} in {time.time() - started:.0f} s")
    return None


def healthcheck(engine, container, config):
    """Runs the image's HEALTHCHECK command inside the container; returns the failure or None."""
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if not test:
        return "the image has no HEALTHCHECK (built without --format docker?)"
    if test[0] == "CMD-SHELL":
        command = test[1]
    elif test[0] == "CMD":
        command = " ".join(shlex.quote(t) for t in test[1:])
    else:
        return f"HEALTHCHECK {test} is not a command"
    env = " ".join(shlex.quote(e) for e in config.get("Env") or [])
    result = engine.exec(container, f"env {env} sh -c {shlex.quote(command)}")
    if result.returncode != 0:
        return f"HEALTHCHECK `{command}` exited {result.returncode}: {result.stderr.strip()}"
    return None


def uid_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return line.split()[1]
    return None


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--ctl", required=True, help="the host's moecapctl")
    parser.add_argument("--tag", default="e2e")
    parser.add_argument("--reuse-images", action="store_true",
                        help="skip the build when both images of --tag exist (to rerun the "
                             "container checks; CTest always builds)")
    args = parser.parse_args()

    if os.environ.get("MOECAP_IMAGES") != "1":
        print("SKIP: MOECAP_IMAGES=1 runs this test (it builds the coordinator and CPU agent "
              "images: minutes on 2 cores)")
        return SKIP
    engine_name = choose_engine()
    if engine_name is None:
        print("SKIP: no container engine that works here (docker with a daemon, podman or "
              "buildah; Debian: apt-get install buildah debootstrap)")
        return SKIP
    env = dict(os.environ, MOECAP_IMAGE_ENGINE=engine_name, MOECAP_IMAGE_TAG=args.tag)
    coordinator_image = f"moecap-coordinator:{args.tag}"
    agent_image = f"moecap-agent-cpu:{args.tag}"
    if args.reuse_images and all(image_exists(engine_name, i)
                                 for i in (coordinator_image, agent_image)):
        print(f"ok: reusing {coordinator_image} and {agent_image} (--reuse-images)")
    elif (failed := build_images(args, env, engine_name)) is not None:
        return failed

    with test_dir("moecap-images-") as work:
        engine = Engine(engine_name, work)
        try:
            run(engine, args, work, coordinator_image, agent_image)
        except (AssertionError, subprocess.CalledProcessError) as e:
            print(f"FAIL: {e}")
            for name in engine.containers:
                log = os.path.join(work, f"{name}.log")
                if os.path.exists(log):
                    print(f"--- {name}.log (last lines)")
                    print("".join(open(log, errors="replace").readlines()[-20:]))
            return 1
        finally:
            engine.remove_all()
    print("PASS")
    return 0


def run(engine, args, work, coordinator_image, agent_image):
    configs = {"coordinator": engine.image_config(coordinator_image),
               "agent": engine.image_config(agent_image)}
    for name, config in configs.items():
        check(config.get("User", "").split(":")[0] == UID,
              f"the {name} image's USER is {config.get('User')!r}, not {UID}")

    # The database volume: a host directory the image's user owns, as a named volume would be.
    data = os.path.join(work, "data")
    os.makedirs(data)
    os.chown(data, int(UID), int(UID))
    grpc, metrics = free_port(), free_port()
    address = f"127.0.0.1:{grpc}"
    coordinator_args = [f"--listen={address}", "--db=/var/lib/moecap/moecap.db", "--lease-s=5",
                        f"--metrics-listen=127.0.0.1:{metrics}", "--insecure"]

    def start_coordinator():
        proc = engine.start("moecap-e2e-coordinator", coordinator_image, coordinator_args,
                            volume=(data, "/var/lib/moecap"))
        line = proc.wait_for_line("listening on ", 60)
        check(line is not None, "the coordinator container did not start within 60 s:\n"
                                f"{proc.log_tail()}")

    def ctl(*argv, check_rc=True, timeout=120):
        return run_ctl(args.ctl, *argv, "--coordinator", address, check=check_rc,
                       timeout=timeout)

    start_coordinator()
    agents = ["img-a0", "img-a1"]
    for name in agents:
        # Each agent's image CMD would serve /healthz on 9465; two on one host network need two
        # ports, and MOECAP_METRICS_PORT (the HEALTHCHECK's) is given per container below.
        engine.start(f"moecap-e2e-{name}", agent_image,
                     [f"--coordinator={address}", f"--name={name}", "--backend=cpu",
                      "--devices=1", "--data-address=127.0.0.1", "--threads-per-rank=1",
                      "--peak-bandwidth-gb-s=20", "--peak-gflops=60",
                      f"--metrics-listen=127.0.0.1:{free_port()}", "--insecure",
                      f"--work-dir=/tmp/moecap-agent-{name}"])

    def idle_agents():
        listed = json.loads(ctl("agents", "-o", "json").stdout).get("agents", [])
        return sorted(a["info"]["name"] for a in listed
                      if a["state"] == "AGENT_STATE_IDLE") == agents
    wait_until(idle_agents, 90, 0.5, "the two agent containers did not register as idle in 90 s")
    print("ok: `moecapctl agents` (host) lists both agents of the containers, idle")

    # Health checks, each image's own command inside its container, and uid 10001 everywhere.
    coordinator_config = dict(configs["coordinator"])
    coordinator_config["Env"] = [f"MOECAP_METRICS_PORT={metrics}"]
    failure = healthcheck(engine, "moecap-e2e-coordinator", coordinator_config)
    check(failure is None, f"coordinator: {failure}")
    for name in agents:
        container = f"moecap-e2e-{name}"
        port = flag_value(engine.procs[container].argv, "--metrics-listen").rsplit(":", 1)[1]
        agent_config = dict(configs["agent"], Env=[f"MOECAP_METRICS_PORT={port}"])
        failure = healthcheck(engine, container, agent_config)
        check(failure is None, f"{name}: {failure}")
    print("ok: the images' HEALTHCHECK commands pass inside the running containers")
    for container, binary in [("moecap-e2e-coordinator", "moecap-coordinator")] + \
            [(f"moecap-e2e-{n}", "moecap-agent") for n in agents]:
        pid = engine.main_pid(container, binary)
        check(pid is not None, f"no {binary} process found for {container}")
        check(uid_of(pid) == UID, f"{container}: {binary} (pid {pid}) runs as uid {uid_of(pid)}")
    print(f"ok: the coordinator and both agents run as uid {UID}")

    plan = os.path.join(work, "images.yaml")
    with open(plan, "w") as f:
        f.write(PLAN.format(name="images-e2e"))
    job = ctl("submit", plan).stdout.strip()
    done = ctl("watch", job, timeout=300, check_rc=False)
    status = json.loads(ctl("status", job, "-o", "json").stdout)
    check(status["state"] == "JOB_STATE_SUCCEEDED",
          f"job {job} ended {status['state']}: {status.get('reason', '')}\n{done.stdout[-2000:]}")
    results = json.loads(ctl("results", job, "-o", "json").stdout).get("results", [])
    phases = [phase for point in results for phase in point.get("phases", [])]
    check(len(phases) == 2, f"expected one point with two phases, got {len(phases)} phases")
    for phase in phases:
        for key in ("s_mbu", "s_mfu"):
            check(0 < phase.get(key, 0) <= 1, f"{phase.get('phase')}: {key} {phase.get(key)}")
        check(phase["check"]["passed"], f"{phase.get('phase')}: the numerical check failed")
    print(f"ok: job {job} ran on the agent containers; S-MBU and S-MFU of both phases in (0, 1]")

    # The coordinator's container replaced, the volume kept: the job is still there.
    engine.stop("moecap-e2e-coordinator", "moecap-coordinator")
    check(os.path.exists(os.path.join(data, "moecap.db")), "no moecap.db on the volume")
    start_coordinator()
    again = json.loads(ctl("status", job, "-o", "json").stdout)
    check(again["state"] == "JOB_STATE_SUCCEEDED", f"after the restart the job is {again['state']}")
    kept = json.loads(ctl("results", job, "-o", "json").stdout).get("results", [])
    check(kept == results, "the results read after the restart differ from those before")
    wait_until(idle_agents, 60, 0.5, "the agents did not rejoin the restarted coordinator")
    with open(plan, "w") as f:
        f.write(PLAN.format(name="images-e2e-after-restart"))
    second = ctl("submit", plan).stdout.strip()
    ctl("watch", second, timeout=300, check_rc=False)
    state = json.loads(ctl("status", second, "-o", "json").stdout)["state"]
    check(state == "JOB_STATE_SUCCEEDED", f"the job after the restart ended {state}")
    print("ok: a new coordinator container on the same volume keeps the job and its results, "
          "and the agents rejoin and run the next job")


def flag_value(argv, name):
    for a in argv:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


if __name__ == "__main__":
    sys.exit(main())
