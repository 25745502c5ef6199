#!/usr/bin/env python3
"""Static checks of the Grafana dashboard and the alert rules (no Prometheus server needed).

- the dashboard is valid JSON, its data source is the template variable ${datasource}, panel ids
  are unique and every panel (rows aside) has at least one target with a PromQL expression;
- every variable an expression uses is defined, every metric it names is declared in
  common/telemetry/metric_names.h (listed by `moecap_metrics_fixture --list-metrics`), and so is
  every metric alerts.yml names;
- every expression parses: they become one recording rule each in a generated rule file that
  `promtool check rules` must accept.
Exit status 0 on success, 1 with the reasons on failure. Python 3 standard library only.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promtest  # noqa: E402

PROMETHEUS_BUILTIN_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def declared_metrics(fixture):
    """{name: type} from the fixture binary, i.e. from metric_names.h."""
    out = subprocess.run([fixture, "--list-metrics"], check=True, capture_output=True, text=True,
                         timeout=30).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def referenced_metrics(text, declared):
    """moecap metric names used in `text`, with _bucket/_sum/_count mapped to their family."""
    names = set()
    for token in re.findall(r"\bmoecap_[a-zA-Z0-9_]+", text):
        base = token
        for suffix in ("_bucket", "_sum", "_count"):
            if token.endswith(suffix) and token[: -len(suffix)] in declared:
                base = token[: -len(suffix)]
        names.add(base)
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--alerts", required=True)
    parser.add_argument("--promtool", default="/usr/bin/promtool")
    parser.add_argument("--fixture", required=True, help="moecap_metrics_fixture binary")
    args = parser.parse_args()

    errors = []
    with open(args.dashboard) as f:
        try:
            dashboard = json.load(f)
        except ValueError as e:
            print(f"FAIL: {args.dashboard} is not valid JSON: {e}")
            return 1

    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append("no template variable `datasource` of type datasource (query prometheus)")

    ids = set()
    for panel in promtest.dashboard_panels(dashboard) + [
            p for p in dashboard.get("panels", []) if p.get("type") == "row"]:
        if panel.get("id") in ids:
            errors.append(f"panel id {panel.get('id')} is used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if grid.get("x", 0) + grid.get("w", 0) > 24:
            errors.append(f"panel {panel.get('title')!r} is wider than the 24-column grid")

    for panel in promtest.dashboard_panels(dashboard):
        title = panel.get("title", "?")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"panel {title!r}: data source is not ${{datasource}}")
        targets = [t for t in panel.get("targets", []) if t.get("expr", "").strip()]
        if not targets:
            errors.append(f"panel {title!r} has no target with an expr")
        for t in panel.get("targets", []):
            if "datasource" in t and t["datasource"].get("uid") != "${datasource}":
                errors.append(f"panel {title!r} target {t.get('refId')}: data source is not "
                              "${datasource}")

    declared = declared_metrics(args.fixture)
    exprs = promtest.dashboard_expressions(dashboard)
    rules = []
    for i, (title, ref, expr) in enumerate(exprs):
        try:
            concrete = promtest.substitute_variables(expr, variables)
        except promtest.TestFailure as e:
            errors.append(f"panel {title!r} {ref}: {e}")
            continue
        rules.append({"record": f"moecap_dashboard:expr_{i}", "expr": concrete})
        for name in referenced_metrics(expr, declared):
            if name not in declared:
                errors.append(f"panel {title!r} {ref}: metric {name} is not declared in "
                              "metric_names.h")
    for name, var in variables.items():
        definition = var.get("definition", "")
        for metric in referenced_metrics(definition, declared):
            if metric not in declared:
                errors.append(f"variable {name}: metric {metric} is not declared")

    with open(args.alerts) as f:
        alerts_text = f.read()
    for name in referenced_metrics(alerts_text, declared):
        if name not in declared:
            errors.append(f"{args.alerts}: metric {name} is not declared in metric_names.h")

    # JSON is YAML: promtool reads the generated rule file as is.
    with tempfile.NamedTemporaryFile("w", suffix=".rules.yml", delete=False) as f:
        json.dump({"groups": [{"name": "moecap_dashboard", "rules": rules}]}, f, indent=1)
        rules_path = f.name
    try:
        check = subprocess.run([args.promtool, "check", "rules", rules_path],
                               capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(rules_path)
    if check.returncode != 0:
        errors.append("promtool check rules rejected dashboard expressions:\n"
                      + check.stdout + check.stderr)

    print(f"{len(exprs)} expressions in {len(promtest.dashboard_panels(dashboard))} panels; "
          f"{len(declared)} declared metrics")
    if errors:
        for e in errors:
            print("FAIL:", e)
        return 1
    print("OK: dashboard and alert rules are consistent and every expression parses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
