#!/usr/bin/env python3
"""Checks deploy/prometheus/prometheus-kubernetes.yml with a real Prometheus.

Debian's Prometheus is built without Kubernetes service discovery, so the test replaces the
`kubernetes_sd_configs` of the moecap scrape job by static targets that carry the same __meta_*
labels Kubernetes SD would attach to pods, keeps every relabel rule as written, and checks that:
  - `promtool check config` accepts the result (regexes, actions, rule files);
  - an annotated moecap coordinator pod is scraped on its annotated port, as job
    moecap-coordinator, with namespace/pod/node labels; a moecap pod without the scrape
    annotation and a pod of another app are not scraped;
  - Prometheus loads alerts.yml with every rule healthy.
Needs PyYAML (Debian python3-yaml); exit 77 (skip) without it or without prometheus.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promtest  # noqa: E402
from promtest import TestFailure  # noqa: E402

SKIP = 77


def pod(address, app, scrape, port, component, name):
    return {"targets": [address], "labels": {
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": app,
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": scrape,
        "__meta_kubernetes_pod_annotation_prometheus_io_port": str(port),
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": component,
        "__meta_kubernetes_namespace": "moecap-test",
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_pod_node_name": "node-" + name,
    }}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="deploy/prometheus/prometheus-kubernetes.yml")
    parser.add_argument("--prometheus", default="/usr/bin/prometheus")
    parser.add_argument("--promtool", default="/usr/bin/promtool")
    parser.add_argument("--fixture", required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    try:
        import yaml
    except ImportError:
        print("SKIP: PyYAML missing (apt-get install python3-yaml; scripts/setup.sh)")
        return SKIP
    for tool in (args.prometheus, args.promtool):
        if not os.access(tool, os.X_OK):
            print(f"SKIP: {tool} not found (Debian package prometheus)")
            return SKIP

    with open(args.config) as f:
        config = yaml.safe_load(f)
    jobs = [c for c in config["scrape_configs"] if "kubernetes_sd_configs" in c]
    if len(jobs) != 1:
        print(f"FAIL: expected one scrape job with kubernetes_sd_configs, found {len(jobs)}")
        return 1

    workdir = tempfile.mkdtemp(prefix="moecap-k8s-sd-")
    fixture = prom = None
    try:
        deadline = time.monotonic() + args.timeout
        port_file = os.path.join(workdir, "fixture.addr")
        fixture = promtest.ManagedProcess(
            [args.fixture, "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--exit-after-s", "120"], os.path.join(workdir, "fixture.log"))
        port = int(promtest.wait_for_file(port_file, deadline, fixture).rsplit(":", 1)[1])
        dead_port = promtest.free_port()

        job = jobs[0]
        del job["kubernetes_sd_configs"]
        # Kubernetes SD gives __address__ as podIP:containerPort; the wrong port here proves the
        # annotation's port is the one scraped.
        job["static_configs"] = [
            pod(f"127.0.0.1:{dead_port}", "moecap", "true", port, "coordinator", "coord-0"),
            pod(f"127.0.0.1:{dead_port}", "moecap", "false", dead_port, "agent", "quiet-0"),
            pod(f"127.0.0.1:{dead_port}", "other-app", "true", dead_port, "coordinator", "other-0"),
        ]
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        job["scrape_interval"] = "1s"
        rule_files = []
        for rule_file in config.get("rule_files", []):
            source = os.path.join(os.path.dirname(os.path.abspath(args.config)), rule_file)
            shutil.copy(source, os.path.join(workdir, os.path.basename(rule_file)))
            rule_files.append(os.path.basename(rule_file))
        config["rule_files"] = rule_files

        prom = promtest.Prometheus(args.prometheus, {}, workdir, config=config)
        check = subprocess.run([args.promtool, "check", "config", prom.config_path],
                               capture_output=True, text=True, timeout=60)
        if check.returncode != 0:
            raise TestFailure("promtool check config:\n" + check.stdout + check.stderr)
        print("ok: promtool check config accepts the relabelling with static targets")

        prom.start(deadline=time.monotonic() + args.timeout)
        wait = time.monotonic() + args.timeout
        prom.wait_for_value('up{job="moecap-coordinator",namespace="moecap-test",pod="coord-0",'
                            f'node="node-coord-0",instance="127.0.0.1:{port}"}}', 1.0, wait)
        print("ok: annotated coordinator pod scraped on its annotated port as moecap-coordinator")
        prom.wait_for_value('moecap_result_sparse_mbu{job="moecap-coordinator",phase="decode"}',
                            0.4375, wait)
        # Only the annotated moecap pod became a target.
        targets = json.loads(promtest.http_get(prom.url + "/api/v1/targets")[1])["data"]
        active = [t["labels"].get("pod") for t in targets["activeTargets"]]
        if active != ["coord-0"]:
            raise TestFailure(f"active targets should be only coord-0, got {active}")
        print("ok: unannotated and foreign pods are dropped")

        rules = json.loads(promtest.http_get(prom.url + "/api/v1/rules")[1])["data"]["groups"]
        loaded = [r for g in rules for r in g["rules"]]
        unhealthy = [r["name"] for r in loaded if r.get("health") not in ("ok", "unknown")]
        if not loaded or unhealthy:
            raise TestFailure(f"rules loaded: {len(loaded)}, unhealthy: {unhealthy}")
        print(f"ok: {len(loaded)} alert rules loaded")
        print("PASS")
        return 0
    except TestFailure as e:
        return promtest.report_failure(e, prom)
    finally:
        if prom is not None:
            prom.stop()
        if fixture is not None:
            fixture.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
