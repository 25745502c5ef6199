#!/usr/bin/env python3
"""End-to-end: a real Prometheus scrapes moecap /metrics endpoints on loopback.

Starts the targets (by default two moecap_metrics_fixture processes playing the coordinator and
an agent; or any already running endpoints given with --target JOB=HOST:PORT), starts
/usr/bin/prometheus with a generated config (scrape_interval 1s, temporary TSDB, free loopback
port), and checks through its HTTP API (/api/v1/query), each wait bounded by --timeout:
  1. every target is up;
  2. the S-MBU series of the example job has the exact value served (0.4375);
  3. every sample each target serves is in Prometheus with exactly the served value;
  4. every PromQL expression of the Grafana dashboard is valid and returns data.
Then stops everything. Exit status 0 on success, 1 on failure, 77 when prometheus is missing.
Python 3 standard library only.
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promtest  # noqa: E402
from promtest import TestFailure  # noqa: E402

SKIP = 77


def start_fixtures(fixture, jobs, workdir, deadline):
    """{job: (process, address)}: one fixture process per scrape job, each on a free port."""
    started = {}
    for job in jobs:
        port_file = os.path.join(workdir, f"{job}.addr")
        process = promtest.ManagedProcess(
            [fixture, "--listen", "127.0.0.1:0", "--port-file", port_file, "--exit-after-s", "120"],
            os.path.join(workdir, f"{job}.log"))
        started[job] = (process, None)
        address = promtest.wait_for_file(port_file, deadline, process)
        started[job] = (process, address)
    return started


def check_every_sample(prom, job, address, deadline):
    """Each sample the target serves is in Prometheus with the same value (NaN matches NaN)."""
    status, body = promtest.http_get(f"http://{address}/metrics")
    if status != 200:
        raise TestFailure(f"GET http://{address}/metrics answered {status}")
    samples = promtest.parse_exposition(body)
    if not samples:
        raise TestFailure(f"{address} served no samples")
    mismatches = []
    for name, labels, value in samples:
        expr = promtest.selector(name, dict(labels, job=job))
        result = prom.wait_for(expr, lambda r: len(r) == 1, deadline)
        got = promtest.parse_float(result[0]["value"][1])
        if not (got == value or (math.isnan(got) and math.isnan(value))):
            mismatches.append(f"{expr}: served {value!r}, Prometheus has {got!r}")
    if mismatches:
        raise TestFailure("values differ:\n  " + "\n  ".join(mismatches))
    return len(samples)


def check_dashboard(prom, dashboard_path, deadline, may_be_empty=()):
    """Every dashboard expression is accepted by Prometheus and returns at least one series; the
    panels in `may_be_empty` (figures the devices may not expose, such as measured energy) need
    only be accepted."""
    with open(dashboard_path) as f:
        dashboard = json.load(f)
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    exprs = promtest.dashboard_expressions(dashboard)
    for title, ref, expr in exprs:
        concrete = promtest.substitute_variables(expr, variables)
        if title in may_be_empty:
            prom.wait_for(concrete, lambda r: True, deadline,
                          what=f"panel {title!r} {ref} accepted: {concrete}")
            continue
        # rate() needs two scrapes inside its window, so the first answers may be empty.
        prom.wait_for(concrete, lambda r: len(r) > 0, deadline,
                      what=f"panel {title!r} {ref} returning data: {concrete}")
    return len(exprs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="/usr/bin/prometheus")
    parser.add_argument("--fixture", help="moecap_metrics_fixture binary to start as targets")
    parser.add_argument("--fixture-jobs", default="moecap-coordinator,moecap-agent",
                        help="scrape jobs to start one fixture process for")
    parser.add_argument("--target", action="append", default=[], metavar="JOB=HOST:PORT",
                        help="an already running endpoint to scrape (repeatable)")
    parser.add_argument("--dashboard", help="Grafana dashboard whose expressions must return data")
    parser.add_argument("--may-be-empty", action="append", default=[], metavar="PANEL",
                        help="a dashboard panel whose expressions need only be accepted")
    parser.add_argument("--expect", action="append", default=[], metavar="EXPR=VALUE",
                        help="an instant query that must return one series of exactly VALUE")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds allowed for each phase of the test")
    parser.add_argument("--keep-workdir", action="store_true")
    # Live targets change between a scrape and the check (counters grow): only static ones can
    # be compared sample by sample.
    parser.add_argument("--no-every-sample", dest="every_sample", action="store_false",
                        help="skip the sample-by-sample comparison (for live targets)")
    args = parser.parse_args()

    if not os.access(args.prometheus, os.X_OK):
        print(f"SKIP: {args.prometheus} not found (Debian package prometheus, scripts/setup.sh)")
        return SKIP

    workdir = tempfile.mkdtemp(prefix="moecap-prom-e2e-")
    fixtures = {}
    prom = None
    try:
        deadline = time.monotonic() + args.timeout
        targets = {}
        if args.fixture:
            fixtures = start_fixtures(args.fixture, args.fixture_jobs.split(","), workdir, deadline)
            for job, (_, address) in fixtures.items():
                targets.setdefault(job, []).append(address)
        for spec in args.target:
            job, _, address = spec.partition("=")
            targets.setdefault(job, []).append(address)
        if not targets:
            raise TestFailure("no targets: give --fixture or --target")

        prom = promtest.Prometheus(args.prometheus, targets, workdir)
        prom.start(deadline=time.monotonic() + args.timeout)
        print(f"prometheus on {prom.url}, scraping {targets}")

        prom.wait_until_up(time.monotonic() + args.timeout)
        print("ok: every target up")

        expectations = list(args.expect)
        if args.fixture:
            # The example values of tests/e2e/example_metrics.cc, served by both fixtures.
            base = ('moecap_result_sparse_mbu{job_id="e2e-job",point="0",model="mixtral-8x7b",'
                    'hardware="h100-sxm",phase="decode",batch="8",job="moecap-coordinator"}')
            expectations.append(f"{base}=0.4375")
            expectations.append(base.replace("sparse_mbu", "sparse_mfu") + "=0.0625")
        for spec in expectations:
            expr, _, value = spec.rpartition("=")
            prom.wait_for_value(expr, promtest.parse_float(value), time.monotonic() + args.timeout)
            print(f"ok: {expr} == {value}")

        for job, addresses in targets.items():
            for address in addresses if args.every_sample else []:
                n = check_every_sample(prom, job, address, time.monotonic() + args.timeout)
                print(f"ok: all {n} samples of {job} {address} match in Prometheus")

        if args.dashboard:
            n = check_dashboard(prom, args.dashboard, time.monotonic() + args.timeout,
                                args.may_be_empty)
            print(f"ok: all {n} dashboard expressions return data")
        print("PASS")
        return 0
    except TestFailure as e:
        return promtest.report_failure(e, prom)
    finally:
        if prom is not None:
            prom.stop()
        for process, _ in fixtures.values():
            code = process.stop()
            if code not in (0, None):
                print(f"warning: {process.argv[0]} exited with {code}:\n{process.log_tail()}")
        if args.keep_workdir:
            print(f"workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
