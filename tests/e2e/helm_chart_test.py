#!/usr/bin/env python3
"""Tests of the helm chart (helm/moecap) with the real helm binary (tools/bin/helm).

One case per CTest entry (--case):
  lint            helm lint --strict on the default values and every ci/*.yaml
  default         rendered objects with the default values (GPU agents)
  cpu-agents      ci/cpu-agents-values.yaml: no GPU resources or GPU scheduling anywhere
  servicemonitor  ci/servicemonitor-values.yaml: ServiceMonitors and the Grafana dashboard
  tls             ci/tls-values.yaml: TLS flags, secret mounts and the tokens file
  hostnetwork     ci/hostnetwork-existing-claim-values.yaml: host network, existing claim
  schema          values.schema.json rejects wrong types, unknown keys and missing TLS secrets
  notes           NOTES.txt tells how to port-forward and submit a plan
  test-hook       the `helm test` Pod runs `moecapctl agents` against the coordinator Service
  k8s-schemas     every object of every rendering (defaults, each ci/*.yaml, the overrides in
                  RENDERINGS) validates against Kubernetes' schemas, unknown fields refused
                  (tests/e2e/k8s_validate.mjs with the npm package kubernetes-models)
  args            every rendered container's command line is accepted by the binary it runs
                  (--check-args: parse-only), so the chart and the flags cannot drift
  dashboard-copy  helm/moecap/dashboards/moecap.json is a link to deploy/grafana/moecap.json
Rendered YAML is parsed with PyYAML (Debian python3-yaml). Exit 0 pass, 1 fail, 77 skip (helm
or PyYAML missing; node or kubernetes-models missing for k8s-schemas).
"""

import argparse
import filecmp
import json
import os
import re
import subprocess
import sys

SKIP = 77
NAMESPACE = "moecap-e2e"
RELEASE = "bench"


# Every rendering the k8s-schemas and args cases check: the default values, each ci/*.yaml
# (added at run time) and these overrides, each (label, --set assignments).
RENDERINGS = [
    ("TLS on", ["tls.enabled=true", "tls.coordinatorSecret=moecap-coordinator-tls",
                "tls.agentSecret=moecap-agent-tls"]),
    ("CPU agents", ["agent.backend=cpu"]),
    ("ServiceMonitor and dashboard", ["serviceMonitor.enabled=true",
                                      "grafanaDashboard.enabled=true"]),
    ("persistence off", ["coordinator.persistence.enabled=false"]),
    ("tokens", ["auth.tokensSecret=moecap-tokens", "tests.tokenSecret=moecap-test-token"]),
    ("host network, auto backend", ["agent.hostNetwork=true", "agent.backend=auto"]),
    ("helm test off", ["tests.enabled=false"]),
]


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Chart:
    def __init__(self, helm, chart):
        self.helm = helm
        self.chart = chart

    def run(self, *args, timeout=120):
        return subprocess.run([self.helm, *args], capture_output=True, text=True, timeout=timeout)

    def template(self, values_file=None, sets=()):
        """The rendered objects, as dicts (empty documents dropped)."""
        import yaml
        args = ["template", RELEASE, self.chart, "--namespace", NAMESPACE]
        if values_file:
            args += ["-f", os.path.join(self.chart, values_file)]
        for s in sets:
            args += ["--set", s]
        result = self.run(*args)
        check(result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}")
        return [d for d in yaml.safe_load_all(result.stdout) if d]


    def renderings(self):
        """(label, objects) for the defaults, every ci/*.yaml and every RENDERINGS entry."""
        out = [("default values", self.template())]
        for f in sorted(os.listdir(os.path.join(self.chart, "ci"))):
            out.append((f"ci/{f}", self.template(f"ci/{f}")))
        for label, sets in RENDERINGS:
            out.append((f"{label} (--set {' '.join(sets)})", self.template(sets=sets)))
        return out


class Objects:
    """Lookups over a rendered release."""

    def __init__(self, docs):
        self.docs = docs

    def kinds(self):
        return sorted(d["kind"] for d in self.docs)

    def of_kind(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind, component=None):
        found = [d for d in self.of_kind(kind) if component is None or
                 d["metadata"]["labels"].get("app.kubernetes.io/component") == component]
        check(len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}")
        return found[0]

    def service(self, component):
        return self.one("Service", component)

    def coordinator(self):
        return self.one("Deployment", "coordinator")

    def agent(self):
        return self.one("DaemonSet", "agent")

    def test_pod(self):
        return self.one("Pod", "test")


def container(workload):
    containers = workload["spec"]["template"]["spec"]["containers"]
    check(len(containers) == 1, f"{workload['metadata']['name']}: expected one container")
    return containers[0]


def flag(args, name):
    """The value of --name=value in args, or None."""
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def port_of(service, name):
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    check(name in ports, f"service {service['metadata']['name']} has no port {name}")
    return ports[name]


def all_resource_names(workload):
    c = container(workload)
    res = c.get("resources") or {}
    return set((res.get("limits") or {}).keys()) | set((res.get("requests") or {}).keys())


def check_common(objs, tls_on, tokens_on):
    """What must hold for every values file."""
    coord, agent = objs.coordinator(), objs.agent()
    svc = objs.service("coordinator")
    grpc, metrics = port_of(svc, "grpc"), port_of(svc, "metrics")
    cargs = container(coord)["args"]

    # The coordinator listens where its Service points, and exposes metrics there too.
    cports = {p["name"]: p["containerPort"] for p in container(coord)["ports"]}
    check(grpc["targetPort"] == "grpc" and cports["grpc"] == grpc["port"],
          f"grpc port mismatch: service {grpc}, container {cports}")
    check(flag(cargs, "listen") == f"0.0.0.0:{cports['grpc']}", f"--listen: {cargs}")
    check(flag(cargs, "metrics-listen") == f"0.0.0.0:{cports['metrics']}", f"--metrics-listen: {cargs}")
    check(metrics["targetPort"] == "metrics", "metrics targetPort")
    check(flag(cargs, "db") == "/var/lib/moecap/moecap.db", f"--db: {cargs}")
    check(int(flag(cargs, "lease-s")) >= 1, f"--lease-s: {cargs}")
    mounts = {m["name"]: m["mountPath"] for m in container(coord)["volumeMounts"]}
    check(mounts.get("data") == "/var/lib/moecap", "the database volume is mounted at /var/lib/moecap")
    check(coord["spec"]["replicas"] == 1 and coord["spec"]["strategy"]["type"] == "Recreate",
          "exactly one coordinator, replaced with Recreate (one SQLite writer)")

    # Service selectors select the pods they are meant for.
    for component, workload in (("coordinator", coord), ("agent", agent)):
        selector = objs.service(component)["spec"]["selector"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        check(all(labels.get(k) == v for k, v in selector.items()),
              f"{component} Service selector {selector} does not match pod labels {labels}")
        check(workload["spec"]["selector"]["matchLabels"].items() <= labels.items(),
              f"{component} selector does not match its own pods")
        probe = container(workload)["livenessProbe"]["httpGet"]
        check(probe == {"path": "/healthz", "port": "metrics"}, f"{component} liveness: {probe}")
        pod = workload["spec"]["template"]["spec"]
        check(pod["securityContext"].get("runAsNonRoot") is True, f"{component} runs as non-root")
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        ports = {p["name"]: p["containerPort"] for p in container(workload)["ports"]}
        check(annotations.get("prometheus.io/port") == str(ports["metrics"]),
              f"{component} prometheus.io/port annotation {annotations} vs ports {ports}")

    # The agent dials the coordinator Service by its cluster DNS name and gRPC port.
    aargs = container(agent)["args"]
    expected = f"{svc['metadata']['name']}.{NAMESPACE}.svc.cluster.local:{grpc['port']}"
    check(flag(aargs, "coordinator") == expected,
          f"agent --coordinator is {flag(aargs, 'coordinator')}, expected {expected}")
    check(flag(aargs, "name") == "$(NODE_NAME)", f"agent --name: {aargs}")
    env = {e["name"]: e for e in container(agent)["env"]}
    check(env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName",
          "NODE_NAME comes from the downward API")
    aports = {p["name"]: p["containerPort"] for p in container(agent)["ports"]}
    check(flag(aargs, "metrics-listen") == f"0.0.0.0:{aports['metrics']}", f"agent --metrics-listen")
    check(objs.service("agent")["spec"].get("clusterIP") == "None", "agent Service is headless")

    # NCCL's shared memory: /dev/shm is a memory-backed emptyDir.
    volumes = {v["name"]: v for v in agent["spec"]["template"]["spec"]["volumes"]}
    amounts = {m["name"]: m["mountPath"] for m in container(agent)["volumeMounts"]}
    check(amounts.get("dshm") == "/dev/shm" and volumes["dshm"]["emptyDir"]["medium"] == "Memory",
          "agent /dev/shm is an emptyDir with medium Memory")

    # TLS flags and secret mounts appear together, and only when TLS is on.
    for name, workload, args in (("coordinator", coord, cargs), ("agent", agent, aargs)):
        tls_flags = {flag(args, f) for f in ("tls-cert", "tls-key", "tls-ca")}
        wmounts = {m["name"]: m["mountPath"] for m in container(workload)["volumeMounts"]}
        wvolumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        if tls_on:
            check(tls_flags == {"/etc/moecap/tls/tls.crt", "/etc/moecap/tls/tls.key",
                                "/etc/moecap/tls/ca.crt"}, f"{name} TLS flags: {args}")
            check(wmounts.get("tls") == "/etc/moecap/tls" and "secret" in wvolumes.get("tls", {}),
                  f"{name} mounts its TLS secret at /etc/moecap/tls")
            check("--insecure" not in args, f"{name} has --insecure with TLS on: {args}")
        else:
            check(tls_flags == {None}, f"{name} has TLS flags with TLS off: {args}")
            check("--insecure" in args, f"{name} lacks --insecure with TLS off: {args}")
            check("tls" not in wmounts and "tls" not in wvolumes, f"{name} mounts TLS with TLS off")
        check(not any(a.startswith("--tokens-file") for a in args) or name == "coordinator",
              "only the coordinator reads tokens")
    has_tokens = flag(cargs, "tokens-file") is not None
    check(has_tokens == tokens_on, f"--tokens-file present: {has_tokens}, expected {tokens_on}")


def case_lint(chart):
    for values in [None] + sorted(f"ci/{f}" for f in os.listdir(os.path.join(chart.chart, "ci"))):
        args = ["lint", "--strict", chart.chart] + (["-f", os.path.join(chart.chart, values)] if values else [])
        result = chart.run(*args)
        check(result.returncode == 0, f"helm lint --strict ({values or 'defaults'}):\n"
                                      f"{result.stdout}{result.stderr}")
        print(f"ok: helm lint --strict with {values or 'default values'}")


def case_default(chart):
    objs = Objects(chart.template())
    check(objs.kinds() == ["ConfigMap", "DaemonSet", "Deployment", "PersistentVolumeClaim", "Pod",
                           "Service", "Service"], f"kinds: {objs.kinds()}")
    check_common(objs, tls_on=False, tokens_on=False)
    agent = objs.agent()
    c = container(agent)
    check(c["resources"]["limits"].get("nvidia.com/gpu") == 8, f"GPU limit: {c['resources']}")
    check(flag(c["args"], "backend") == "cuda", "backend cuda")
    check(c["image"] == "ghcr.io/moecap/moecap-agent:0.1.0", f"CUDA agent image: {c['image']}")
    pod = agent["spec"]["template"]["spec"]
    check(pod.get("hostIPC") is True, "hostIPC on for NCCL")
    check(pod.get("nodeSelector") == {"nvidia.com/gpu.present": "true"}, f"nodeSelector {pod.get('nodeSelector')}")
    check({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"],
          "tolerates the nvidia.com/gpu taint")
    check("nvidia.com/gpu" not in all_resource_names(objs.coordinator()), "coordinator needs no GPU")
    svc = objs.service("coordinator")
    check(port_of(svc, "grpc")["port"] == 50051 and port_of(svc, "metrics")["port"] == 9464,
          "default ports 50051 (gRPC) and 9464 (metrics)")
    check(port_of(objs.service("agent"), "metrics")["port"] == 9465, "agent metrics port 9465")
    pvc = objs.one("PersistentVolumeClaim")
    claim = [v for v in objs.coordinator()["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"][0]
    check(claim["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"], "claim wired in")
    check(objs.one("ConfigMap")["data"] == {}, "no plans by default")
    print("ok: default values render GPU agents wired to the coordinator Service")


def case_cpu_agents(chart):
    objs = Objects(chart.template("ci/cpu-agents-values.yaml"))
    check_common(objs, tls_on=False, tokens_on=False)
    for workload in (objs.agent(), objs.coordinator()):
        check("nvidia.com/gpu" not in all_resource_names(workload),
              f"{workload['metadata']['name']} requests a GPU with CPU-only agents")
    pod = objs.agent()["spec"]["template"]["spec"]
    agent = container(objs.agent())
    check(flag(agent["args"], "backend") == "cpu", "backend cpu")
    check(agent["image"] == "ghcr.io/moecap/moecap-agent-cpu:0.1.0",
          f"CPU agents run the CPU image (Dockerfile.agent-cpu), not {agent['image']}")
    check("CUDA_CACHE_PATH" not in {e["name"] for e in agent["env"]}, "no CUDA settings on CPU")
    check("nodeSelector" not in pod and "tolerations" not in pod,
          f"CPU agents must not be pinned to GPU nodes: {pod.get('nodeSelector')} {pod.get('tolerations')}")
    check(pod.get("hostIPC") is False, "hostIPC off as the values say")
    plans = objs.one("ConfigMap")["data"]
    check(list(plans) == ["smoke.yaml"] and "name: smoke" in plans["smoke.yaml"], f"plans: {plans}")
    print("ok: CPU-only agents request no GPU and are not pinned to GPU nodes")


def case_servicemonitor(chart, dashboard_path):
    objs = Objects(chart.template("ci/servicemonitor-values.yaml"))
    check_common(objs, tls_on=False, tokens_on=False)
    monitors = objs.of_kind("ServiceMonitor")
    check(len(monitors) == 2, f"expected 2 ServiceMonitors, found {len(monitors)}")
    for sm in monitors:
        component = sm["metadata"]["labels"]["app.kubernetes.io/component"]
        check(sm["metadata"]["labels"].get("release") == "kube-prometheus-stack", "extra labels")
        svc = objs.service(component)
        selector = sm["spec"]["selector"]["matchLabels"]
        check(selector.items() <= svc["metadata"]["labels"].items(),
              f"{sm['metadata']['name']} selects {selector}, not the {component} Service")
        endpoint = sm["spec"]["endpoints"][0]
        port_of(svc, endpoint["port"])
        job = svc["metadata"]["labels"].get(sm["spec"]["jobLabel"])
        check(job == f"moecap-{component}", f"scrape job would be {job}, alerts expect moecap-{component}")
        interval = {"coordinator": "30s", "agent": "10s"}[component]
        check(endpoint["interval"] == interval, f"{component} interval {endpoint['interval']}")
        check(sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE], "namespace")
    dash = [c for c in objs.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    check(len(dash) == 1, "one dashboard ConfigMap")
    check(dash[0]["metadata"]["labels"].get("grafana_dashboard") == "1", "sidecar label")
    check(dash[0]["metadata"]["annotations"].get("grafana_folder") == "Benchmarks", "folder")
    with open(dashboard_path) as f:
        check(json.loads(dash[0]["data"]["moecap.json"]) == json.load(f),
              "the dashboard ConfigMap does not hold deploy/grafana/moecap.json")
    # And neither appears unless asked for.
    defaults = Objects(chart.template())
    check(not defaults.of_kind("ServiceMonitor"), "ServiceMonitor rendered while disabled")
    check(len(defaults.of_kind("ConfigMap")) == 1, "dashboard ConfigMap rendered while disabled")
    print("ok: ServiceMonitors select the Services and name the jobs the alerts expect; "
          "dashboard ConfigMap holds the dashboard")


def case_tls(chart):
    objs = Objects(chart.template("ci/tls-values.yaml"))
    check_common(objs, tls_on=True, tokens_on=True)
    secrets = {}
    for name, workload in (("coordinator", objs.coordinator()), ("agent", objs.agent())):
        vols = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        secrets[name] = vols["tls"]["secret"]["secretName"]
    check(secrets == {"coordinator": "moecap-coordinator-tls", "agent": "moecap-agent-tls"},
          f"TLS secrets: {secrets}")
    coord = objs.coordinator()
    vols = {v["name"]: v for v in coord["spec"]["template"]["spec"]["volumes"]}
    check(vols["tokens"]["secret"]["secretName"] == "moecap-tokens", "tokens secret")
    check(flag(container(coord)["args"], "tokens-file") == "/etc/moecap/tokens/tokens.yaml",
          "tokens file path uses tokensKey")
    print("ok: TLS flags and secret mounts on both components; tokens file on the coordinator")


def case_hostnetwork(chart):
    objs = Objects(chart.template("ci/hostnetwork-existing-claim-values.yaml"))
    check_common(objs, tls_on=False, tokens_on=False)
    check(not objs.of_kind("PersistentVolumeClaim"), "no claim created with existingClaim")
    vols = {v["name"]: v for v in objs.coordinator()["spec"]["template"]["spec"]["volumes"]}
    check(vols["data"]["persistentVolumeClaim"]["claimName"] == "moecap-db", "existing claim used")
    pod = objs.agent()["spec"]["template"]["spec"]
    check(pod.get("hostNetwork") is True and pod.get("dnsPolicy") == "ClusterFirstWithHostNet",
          "host network with cluster DNS")
    check(pod["nodeSelector"] == {"gpu-type": "h100", "pool": "benchmarks"}, f"{pod['nodeSelector']}")
    check(len(pod["tolerations"]) == 2, f"GPU and user tolerations: {pod['tolerations']}")
    check(container(objs.agent())["resources"]["limits"]["nvidia.com/gpu"] == 4, "4 GPUs (auto)")
    check(objs.service("coordinator")["spec"]["type"] == "LoadBalancer", "LoadBalancer")
    check("--log-level=debug" in container(objs.coordinator())["args"], "extraArgs passed")
    print("ok: host network, existing claim, merged node selection")


def case_schema(chart):
    bad = [
        (["agent.gpusPerNode=eight"], "gpusPerNode"),
        (["agent.backend=tpu"], "backend"),
        (["coordinator.grpcPort=70000"], "grpcPort"),
        (["coordinator.leaseSeconds=0"], "leaseSeconds"),
        (["unknownKey=1"], "unknownKey"),
        (["agent.gpuCount=8"], "gpuCount"),
        (["tls.enabled=true"], "coordinatorSecret"),
        (["agent.shmSize=lots"], "shmSize"),
        (["serviceMonitor.enabled=yes"], "enabled"),
    ]
    for sets, field in bad:
        args = ["template", RELEASE, chart.chart]
        for s in sets:
            args += ["--set", s]
        result = chart.run(*args)
        check(result.returncode != 0, f"--set {sets} was accepted; the schema should reject it")
        check(field in result.stderr, f"--set {sets}: error does not name {field}:\n{result.stderr}")
        lint = chart.run("lint", "--strict", chart.chart, *[x for s in sets for x in ("--set", s)])
        check(lint.returncode != 0, f"helm lint accepted --set {sets}")
        print(f"ok: schema rejects --set {' '.join(sets)}")
    good = chart.run("template", RELEASE, chart.chart, "--set", "agent.gpusPerNode=2")
    check(good.returncode == 0, f"a valid --set was rejected:\n{good.stderr}")


def case_notes(chart):
    result = chart.run("install", RELEASE, chart.chart, "--dry-run=client", "--namespace", NAMESPACE,
                       "-f", os.path.join(chart.chart, "ci/cpu-agents-values.yaml"))
    check(result.returncode == 0, f"helm install --dry-run=client failed:\n{result.stderr}")
    notes = result.stdout.split("NOTES:", 1)[-1]
    for needle in (f"kubectl -n {NAMESPACE} port-forward service/{RELEASE}-moecap-coordinator 50051:50051",
                   "moecapctl submit", "MOECAP_COORDINATOR=localhost:50051",
                   "/etc/moecap/plans/smoke.yaml", f"helm test {RELEASE} -n {NAMESPACE} --logs"):
        check(needle in notes, f"NOTES lack {needle!r}:\n{notes}")
    print("ok: NOTES tell how to port-forward and submit a plan")


def case_test_hook(chart):
    for label, sets, tls, token in (
            ("defaults", [], False, None),
            ("TLS and tokens", ["tls.enabled=true", "tls.coordinatorSecret=coord-tls",
                                "tls.agentSecret=agent-tls", "auth.tokensSecret=tokens",
                                "tests.tokenSecret=test-token", "tests.tokenKey=t"], True, "t")):
        objs = Objects(chart.template(sets=sets))
        pod = objs.test_pod()
        check(pod["metadata"]["annotations"].get("helm.sh/hook") == "test",
              f"{label}: the test Pod is not a helm test hook")
        spec = pod["spec"]
        check(spec["restartPolicy"] == "Never", f"{label}: a test Pod must run once")
        c = container({"metadata": pod["metadata"], "spec": {"template": {"spec": spec}}})
        check(c["command"] == ["moecapctl"] and c["args"][0] == "agents",
              f"{label}: the test runs {c['command']} {c['args']}")
        check(c["image"] == container(objs.coordinator())["image"],
              f"{label}: the test uses the coordinator image (it ships moecapctl)")
        svc = objs.service("coordinator")
        address = (f"{svc['metadata']['name']}.{NAMESPACE}.svc.cluster.local:"
                   f"{port_of(svc, 'grpc')['port']}")
        check(flag(c["args"], "coordinator") == address,
              f"{label}: the test dials {flag(c['args'], 'coordinator')}, not {address}")
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        if tls:
            check(flag(c["args"], "tls-ca") == "/etc/moecap/tls/ca.crt" and
                  "--insecure" not in c["args"], f"{label}: TLS args {c['args']}")
            check(volumes["tls"]["secret"]["secretName"] == "coord-tls" and
                  mounts.get("tls") == "/etc/moecap/tls",
                  f"{label}: the coordinator Secret's CA is mounted")
        else:
            check("--insecure" in c["args"] and "tls" not in volumes, f"{label}: {c['args']}")
        if token:
            check(flag(c["args"], "token-file") == f"/etc/moecap/token/{token}" and
                  volumes["token"]["secret"]["secretName"] == "test-token",
                  f"{label}: token file {c['args']} {volumes}")
        else:
            check(flag(c["args"], "token-file") is None, f"{label}: {c['args']}")
        print(f"ok: {label}: the helm test Pod runs moecapctl agents against {address}")
    check(not Objects(chart.template(sets=["tests.enabled=false"])).of_kind("Pod"),
          "tests.enabled=false still renders the test Pod")
    # Tokens on but no token for the test: refused before anything reaches the cluster.
    result = chart.run("template", RELEASE, chart.chart, "--set", "auth.tokensSecret=tokens")
    check(result.returncode != 0 and "tokenSecret" in result.stderr,
          f"tokens required but no tests.tokenSecret was accepted:\n{result.stderr}")
    print("ok: tests.enabled=false drops the Pod; tokens without tests.tokenSecret are refused")


def to_json(objects):
    return json.dumps(objects, default=str)


def validate_k8s(node, validator, modules, objects):
    """(returncode, output) of tests/e2e/k8s_validate.mjs over the objects."""
    result = subprocess.run([node, validator, modules], input=to_json(objects),
                            capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def case_k8s_schemas(chart, node, modules):
    validator = os.path.join(os.path.dirname(os.path.abspath(__file__)), "k8s_validate.mjs")
    for label, objects in chart.renderings():
        rc, out = validate_k8s(node, validator, modules, objects)
        check(rc == 0, f"{label}: objects Kubernetes would refuse:\n{out}")
        print(f"ok: {label}: {len(objects)} objects valid ({', '.join(sorted(set(o['kind'] for o in objects)))})")
    # The validator can fail: a wrong type and an unknown field in an otherwise valid rendering.
    objects = chart.template()
    for o in objects:
        if o["kind"] == "DaemonSet":
            c = o["spec"]["template"]["spec"]["containers"][0]
            c["ports"][0]["containerPort"] = "metrics"
            c["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    rc, out = validate_k8s(node, validator, modules, objects)
    check(rc == 1 and "containerPort must be integer" in out and "httpGet/paht" in out,
          f"a wrong type and an unknown field were not both reported:\n{out}")
    print("ok: a wrong type and an unknown field are refused, each named")


def expand_env(arg, env):
    """Kubernetes' $(VAR) expansion of container args: defined variables are replaced, $$ escapes."""
    def replace(m):
        if m.group(0).startswith("$$"):
            return m.group(0)[1:]
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$?\$\(([A-Za-z_][A-Za-z0-9_]*)\)", replace, arg)


def command_lines(objects):
    """(workload/container, program, args) of every container, $(VAR) expanded from its env."""
    # Values the downward API would give.
    fields = {"spec.nodeName": "node-0", "status.podIP": "10.0.0.7",
              "metadata.name": "pod-0", "metadata.namespace": NAMESPACE}
    for o in objects:
        spec = o["spec"]["template"]["spec"] if o["kind"] in ("Deployment", "DaemonSet") else \
            o["spec"] if o["kind"] == "Pod" else None
        if spec is None:
            continue
        for c in spec["containers"]:
            env = {}
            for e in c.get("env", []):
                if "value" in e:
                    env[e["name"]] = expand_env(e["value"], env)
                elif "fieldRef" in e.get("valueFrom", {}):
                    env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
            program = (c.get("command") or [None])[0]
            yield (f"{o['kind']}/{o['metadata']['name']}/{c['name']}", program, c["name"],
                   [expand_env(a, env) for a in (c.get("command") or [])[1:] + c.get("args", [])])


def check_args(binaries, program, name, args):
    """(returncode, output) of the container's binary run on its args with --check-args."""
    # An image's ENTRYPOINT names its binary when the container gives no command.
    binary = binaries[program or {"coordinator": "moecap-coordinator",
                                  "agent": "moecap-agent"}[name]]
    result = subprocess.run([binary, "--check-args", *args], capture_output=True, text=True,
                            timeout=30)
    return result.returncode, (result.stdout + result.stderr).strip()


def case_args(chart, binaries):
    for label, objects in chart.renderings():
        lines = list(command_lines(objects))
        for where, program, name, args in lines:
            rc, out = check_args(binaries, program, name, args)
            check(rc == 0 and "arguments accepted" in out,
                  f"{label}: {where}: the binary refuses the chart's arguments {args}:\n{out}")
        print(f"ok: {label}: {len(lines)} command lines accepted")
    # And a flag the binary does not know is refused, so the check can fail.
    for sets, where in ((["coordinator.extraArgs={--no-such-flag}"], "coordinator"),
                        (["agent.extraArgs={--backend=tpu}"], "agent")):
        objects = chart.template(sets=sets)
        refused = [w for w, program, name, args in command_lines(objects)
                   if name == where and check_args(binaries, program, name, args)[0] != 0]
        check(refused, f"--set {sets}: the {where} accepted a wrong flag")
        print(f"ok: --set {' '.join(sets)} is refused by the {where} binary")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", required=True)
    parser.add_argument("--helm", required=True)
    parser.add_argument("--chart", required=True)
    parser.add_argument("--dashboard", required=True, help="deploy/grafana/moecap.json")
    parser.add_argument("--node", default="node", help="Node.js, for k8s-schemas")
    parser.add_argument("--k8s-modules", help="node_modules holding kubernetes-models "
                        "(tools/k8s/node_modules, installed by scripts/setup.sh)")
    parser.add_argument("--coordinator-bin", help="moecap-coordinator, for args")
    parser.add_argument("--agent-bin", help="moecap-agent, for args")
    parser.add_argument("--ctl-bin", help="moecapctl, for args")
    args = parser.parse_args()

    if args.case == "dashboard-copy":
        # The dashboard is kept once: the chart's file is a link to it, never a twin.
        copy = os.path.join(args.chart, "dashboards", "moecap.json")
        if not os.path.islink(copy) or \
                os.path.realpath(copy) != os.path.realpath(args.dashboard):
            print(f"FAIL: {copy} is not a link to {args.dashboard}; the chart would serve its own "
                  f"copy. Run: ln -sf {os.path.relpath(args.dashboard, os.path.dirname(copy))} "
                  f"{copy}")
            return 1
        if not filecmp.cmp(copy, args.dashboard, shallow=False):
            print(f"FAIL: {copy} does not read as {args.dashboard}")
            return 1
        print("ok: the chart's dashboard is a link to deploy/grafana/moecap.json")
        return 0

    if not os.access(args.helm, os.X_OK):
        print(f"SKIP: {args.helm} not found; scripts/setup.sh installs helm into tools/bin")
        return SKIP
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("SKIP: PyYAML missing (apt-get install python3-yaml; scripts/setup.sh)")
        return SKIP

    if args.case == "k8s-schemas":
        from shutil import which
        if not which(args.node) or not args.k8s_modules or \
                not os.path.isdir(os.path.join(args.k8s_modules, "kubernetes-models")):
            print(f"SKIP: Node.js ({args.node}) or kubernetes-models under {args.k8s_modules} "
                  "missing; scripts/setup.sh installs them")
            return SKIP
    binaries = {"moecap-coordinator": args.coordinator_bin, "moecap-agent": args.agent_bin,
                "moecapctl": args.ctl_bin}
    if args.case == "args" and not all(b and os.access(b, os.X_OK) for b in binaries.values()):
        print(f"FAIL: args needs --coordinator-bin, --agent-bin and --ctl-bin: {binaries}")
        return 1

    chart = Chart(args.helm, args.chart)
    cases = {
        "lint": lambda: case_lint(chart),
        "default": lambda: case_default(chart),
        "cpu-agents": lambda: case_cpu_agents(chart),
        "servicemonitor": lambda: case_servicemonitor(chart, args.dashboard),
        "tls": lambda: case_tls(chart),
        "hostnetwork": lambda: case_hostnetwork(chart),
        "schema": lambda: case_schema(chart),
        "notes": lambda: case_notes(chart),
        "test-hook": lambda: case_test_hook(chart),
        "k8s-schemas": lambda: case_k8s_schemas(chart, args.node, args.k8s_modules),
        "args": lambda: case_args(chart, binaries),
    }
    if args.case not in cases:
        print(f"unknown case {args.case}; one of {', '.join(sorted(cases))}, dashboard-copy")
        return 2
    try:
        cases[args.case]()
    except (Failure, KeyError) as e:
        print(f"FAIL ({args.case}): {e!r}" if isinstance(e, KeyError) else f"FAIL ({args.case}): {e}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
