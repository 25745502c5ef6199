"""Pieces for end-to-end tests against a real Prometheus (Debian's /usr/bin/prometheus).

Python 3 standard library only. Used by prometheus_scrape_test.py and meant to be reused by
tests that scrape a real coordinator and agents: start the targets, then

    with Prometheus(binary, {"moecap-coordinator": ["127.0.0.1:9464"],
                             "moecap-agent": ["127.0.0.1:9465", "127.0.0.1:9466"]},
                    workdir) as prom:
        prom.wait_until_up(deadline)
        prom.wait_for_value('moecap_result_sparse_mbu{job_id="j1",phase="decode"}', 0.4375, deadline)

Every wait is bounded by an absolute deadline (time.monotonic()); nothing sleeps and hopes.
"""

import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration",
                                "lib"))
import moecap_testlib  # noqa: E402
from moecap_testlib import free_port  # noqa: E402,F401  (re-exported: promtest.free_port)


class TestFailure(Exception):
    """A check failed; the message says which and why."""


def remaining(deadline):
    return max(0.0, deadline - time.monotonic())


def http_get(url, timeout=2.0):
    """(status, body) of a GET; status 0 when the connection failed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
        return 0, ""


class ManagedProcess(moecap_testlib.ManagedProcess):
    """A child process in its own process group, its stdout and stderr in log_path (truncated),
    stopped with SIGTERM then SIGKILL (bounded): stop(grace_s) returns the exit code."""

    def __init__(self, argv, log_path):
        super().__init__(argv, log_path, log_mode="w", new_session=True)


def wait_for_file(path, deadline, process=None):
    """The stripped contents of `path` once it exists; fails if `process` exits first."""
    while True:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        if process is not None and not process.alive():
            raise TestFailure(f"{process.argv[0]} exited before writing {path}:\n"
                              + process.log_tail())
        if remaining(deadline) == 0:
            raise TestFailure(f"timed out waiting for {path}")
        time.sleep(0.05)


def report_failure(error, prom):
    """Prints a failed check and the tail of Prometheus's log (when it ran); returns 1, the exit
    status of a failed test."""
    print(f"FAIL: {error}")
    if prom is not None and prom.process is not None:
        print("--- prometheus log ---\n" + prom.process.log_tail())
    return 1


# ---- The text exposition format (enough to read what moecap serves) ----

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_float(text):
    """A sample value as Prometheus writes it ("+Inf", "NaN" and "1e+20" included)."""
    return float(text)


def parse_exposition(text):
    """[(name, {label: value}, float)] for every sample line of a text-format exposition."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise TestFailure(f"unparsable exposition line: {line!r}")
        labels = {}
        body = m.group(3) or ""
        pos = 0
        while pos < len(body):
            lm = _LABEL.match(body, pos)
            if not lm:
                raise TestFailure(f"unparsable labels in: {line!r}")
            labels[lm.group(1)] = _unescape(lm.group(2))
            pos = lm.end()
        samples.append((m.group(1), labels, parse_float(m.group(4))))
    return samples


def selector(name, labels):
    """A PromQL selector matching exactly these label values."""
    def quote(v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    inner = ",".join(f"{k}={quote(v)}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


# ---- Grafana dashboards ----

GRAFANA_BUILTINS = {"__rate_interval": "30s", "__interval": "15s", "__range": "5m"}


def dashboard_panels(dashboard):
    """Every non-row panel, including those nested in collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def dashboard_expressions(dashboard):
    """[(panel title, refId, expr)] of every Prometheus target."""
    exprs = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                exprs.append((panel.get("title", "?"), target.get("refId", "?"), target["expr"]))
    return exprs


def substitute_variables(expr, variables, regex_value=".*"):
    """Replaces Grafana variables ($x, ${x}, [[x]]): builtins by a duration, template variables by
    a regex matching every value. Raises TestFailure on a variable the dashboard does not define."""
    def replace(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        if name in variables:
            return regex_value
        raise TestFailure(f"expression uses undefined variable ${name}: {expr}")
    return re.sub(r'\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]', replace, expr)


# ---- Prometheus ----

class Prometheus:
    """A Prometheus server on a free loopback port with a generated config and a temporary TSDB.

    targets: {scrape job name: ["host:port", ...]}. extra_scrape_configs: further scrape_configs
    entries (dicts). config: a whole configuration (dict) instead of the generated one, e.g. to
    test relabelling. The config is written as JSON (valid YAML) into workdir."""

    def __init__(self, binary, targets, workdir, scrape_interval="1s", extra_scrape_configs=(),
                 config=None):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        scrape_configs = [
            {"job_name": job, "scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
             "static_configs": [{"targets": list(addresses)}]}
            for job, addresses in targets.items()
        ]
        scrape_configs.extend(extra_scrape_configs)
        self.config = config or {"global": {"scrape_interval": scrape_interval,
                                            "evaluation_interval": scrape_interval},
                                 "scrape_configs": scrape_configs}
        self.config_path = os.path.join(workdir, "prometheus.yml")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, deadline=None):
        deadline = deadline or time.monotonic() + 20
        argv = [self.binary, f"--config.file={self.config_path}",
                f"--storage.tsdb.path={os.path.join(self.workdir, 'tsdb')}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h", "--log.level=warn"]
        self.process = ManagedProcess(argv, os.path.join(self.workdir, "prometheus.log"))
        while http_get(self.url + "/-/ready")[0] != 200:
            if not self.process.alive():
                raise TestFailure("prometheus exited at start:\n" + self.process.log_tail())
            if remaining(deadline) == 0:
                raise TestFailure("prometheus not ready in time:\n" + self.process.log_tail())
            time.sleep(0.1)

    def stop(self):
        if self.process is not None:
            self.process.stop()
            self.process = None

    def query(self, expr):
        """The instant-query result list; TestFailure when Prometheus rejects the expression."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_get(url, timeout=5)
        try:
            reply = json.loads(body) if body else {}
        except ValueError:
            reply = {}
        if status != 200 or reply.get("status") != "success":
            raise TestFailure(f"query failed (HTTP {status}): {expr}\n  "
                              f"{reply.get('errorType', '')}: {reply.get('error', body[:300])}")
        data = reply["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def wait_for(self, expr, predicate, deadline, what=None):
        """Polls `expr` until predicate(result) holds; the last result is in the failure."""
        result = None
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if remaining(deadline) == 0:
                raise TestFailure(f"timed out waiting for {what or expr}; last result: {result}")
            time.sleep(0.25)

    def wait_until_up(self, deadline, jobs=None):
        """Every target of `jobs` (default: all configured static jobs) has up == 1."""
        for job in jobs or [c["job_name"] for c in self.config["scrape_configs"]]:
            self.wait_for(f'min(up{{job="{job}"}})',
                          lambda r: len(r) == 1 and float(r[0]["value"][1]) == 1.0,
                          deadline, what=f"every target of {job} up")

    def wait_for_value(self, expr, expected, deadline):
        """`expr` returns exactly one series whose value is exactly `expected`."""
        return self.wait_for(
            expr, lambda r: len(r) == 1 and parse_float(r[0]["value"][1]) == expected, deadline,
            what=f"{expr} == {expected!r}")
