#!/usr/bin/env python3
"""Static checks of deploy/docker/Dockerfile.{coordinator,agent,agent-cpu} (images_test.py builds
and runs them where an engine is present; these checks need none).

- every package the build stage installs is in scripts/setup.sh's PACKAGES (one list to keep);
- multi-stage: a build stage and a final stage FROM another image; the agent's final image is an
  NVIDIA CUDA runtime image (it carries NCCL) and its build image the matching devel image;
- the final stage runs as a non-root numeric user, has a HEALTHCHECK on /healthz, its
  ENTRYPOINT is the right binary, and it EXPOSEs the ports the helm chart uses by default;
- the CPU agent's image is Debian's, as the coordinator's, and its build stage is the
  coordinator's, instruction for instruction (a layer cache then compiles once for both);
- instructions are ones Dockerfiles know, and line continuations do not end the file.
Python 3 standard library only; exit 0 pass, 1 fail.
"""

import argparse
import os
import re
import shlex
import sys

KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
         "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def setup_packages(path):
    text = open(path).read()
    m = re.search(r"^PACKAGES=\((.*?)^\)", text, re.S | re.M)
    if not m:
        raise SystemExit(f"no PACKAGES=( ... ) in {path}")
    words = []
    for line in m.group(1).splitlines():
        words += line.split("#", 1)[0].split()
    return set(words)


def instructions(path):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, current = [], ""
    for raw in open(path).read().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    if current:
        raise ValueError(f"{path}: the last instruction ends in a line continuation")
    return out


def apt_packages(run_args):
    """Packages named by `apt-get install ... --no-install-recommends PKG...` in a RUN."""
    pkgs = []
    for command in run_args.split("&&"):
        if not re.search(r"apt-get\s.*\binstall\b", command):
            continue  # other commands may hold quotes shlex need not understand
        tokens = shlex.split(command)
        if "apt-get" in tokens and "install" in tokens:
            after = tokens[tokens.index("install") + 1:]
            pkgs += [t for t in after if not t.startswith("-")]
    return pkgs


def stages(instrs):
    result = []
    for word, args in instrs:
        if word == "FROM":
            result.append({"from": args, "instrs": []})
        elif result:
            result[-1]["instrs"].append((word, args))
    return result


def chart_ports(values_path):
    """Default ports from the chart's values.yaml (coordinator grpc/metrics, agent metrics)."""
    text = open(values_path).read()
    grpc = int(re.search(r"^  grpcPort: (\d+)", text, re.M).group(1))
    metrics = [int(p) for p in re.findall(r"^  metricsPort: (\d+)", text, re.M)]
    return {"coordinator": {grpc, metrics[0]}, "agent": {metrics[1]}}


def check(path, component, packages, ports, errors):
    instrs = instructions(path)
    unknown = [w for w, _ in instrs if w not in KNOWN]
    if unknown:
        errors.append(f"{path}: unknown instructions {unknown}")
    st = stages(instrs)
    if len(st) < 2:
        errors.append(f"{path}: not multi-stage ({len(st)} FROM)")
        return
    build, final = st[0], st[-1]
    installed = [p for w, a in build["instrs"] if w == "RUN" for p in apt_packages(a)]
    if not installed:
        errors.append(f"{path}: the build stage installs no apt packages")
    missing = sorted(set(installed) - packages)
    if missing:
        errors.append(f"{path}: build packages not in scripts/setup.sh PACKAGES: {missing}")
    if " AS " not in build["from"].upper():
        errors.append(f"{path}: the build stage is not named (FROM ... AS build)")
    fin = dict((w, a) for w, a in final["instrs"])  # last of each kind
    user = fin.get("USER", "")
    if not user or user.split(":")[0] in ("0", "root") or not user.split(":")[0].isdigit():
        errors.append(f"{path}: final stage must run as a numeric non-root USER, got {user!r}")
    if "/healthz" not in fin.get("HEALTHCHECK", ""):
        errors.append(f"{path}: final stage has no HEALTHCHECK on /healthz")
    binary = {"coordinator": "moecap-coordinator", "agent": "moecap-agent",
              "agent-cpu": "moecap-agent"}[component]
    if fin.get("ENTRYPOINT") != f'["{binary}"]':
        errors.append(f"{path}: ENTRYPOINT should be [\"{binary}\"], got {fin.get('ENTRYPOINT')}")
    exposed = {int(p.split("/")[0]) for w, a in final["instrs"] if w == "EXPOSE" for p in a.split()}
    if exposed != ports[component.replace("-cpu", "")]:
        errors.append(f"{path}: EXPOSE {sorted(exposed)} differs from the chart's ports "
                      f"{sorted(ports[component.replace('-cpu', '')])}")
    if not any(w == "COPY" and "--from=build" in a for w, a in final["instrs"]):
        errors.append(f"{path}: final stage copies nothing from the build stage")
    if component == "agent":
        if "nvidia/cuda:" not in final["from"] or "-runtime-" not in final["from"]:
            errors.append(f"{path}: final image should be an nvidia/cuda runtime image (NCCL), "
                          f"got {final['from']}")
        if "nvidia/cuda:" not in build["from"] or "-devel-" not in build["from"]:
            errors.append(f"{path}: build image should be an nvidia/cuda devel image")
    if component == "agent-cpu":
        if not final["from"].startswith("debian:"):
            errors.append(f"{path}: the CPU agent's final image should be Debian's, got "
                          f"{final['from']}")
        if "--backend=cpu" not in fin.get("CMD", ""):
            errors.append(f"{path}: the CPU agent's CMD should pass --backend=cpu")
    print(f"{path}: {len(st)} stages, {len(installed)} build packages, USER {user}, "
          f"EXPOSE {sorted(exposed)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", required=True)
    args = parser.parse_args()
    src = args.source_dir
    packages = setup_packages(os.path.join(src, "scripts/setup.sh"))
    ports = chart_ports(os.path.join(src, "helm/moecap/values.yaml"))
    errors = []
    build_stages = {}
    for component in ("coordinator", "agent", "agent-cpu"):
        path = os.path.join(src, f"deploy/docker/Dockerfile.{component}")
        try:
            check(path, component, packages, ports, errors)
            build_stages[component] = stages(instructions(path))[0]
        except ValueError as e:
            errors.append(str(e))
        if not os.path.exists(path + ".dockerignore"):
            errors.append(f"{path}.dockerignore is missing: the whole checkout (build trees "
                          f"included) would be the build context")
    if "coordinator" in build_stages and "agent-cpu" in build_stages and \
            build_stages["coordinator"] != build_stages["agent-cpu"]:
        errors.append("the build stages of Dockerfile.coordinator and Dockerfile.agent-cpu "
                      "differ: keep them identical so that one cached build serves both")
    for e in errors:
        print("FAIL:", e)
    if not errors:
        print("PASS")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
