"""`python -m bench.outage`: what a client sees while HBase goes away and comes back (run by hand).

Why a script of its own: the main benchmark measures speed on a healthy HBase; this one measures
the outage behaviour of issue "Holds under abuse and faults" item 5, which needs an HBase it may
stop, so it starts one of its own (scripts/hbase with a temp state directory and free ports; the
shared HBase on 9090/9091 is never touched) and a gateway on it, then:

1. the whole HBase stopped: the first answer (it may wait up to `store_timeout`), then the time to
   a 503 while the breaker is open (target < 1 s);
2. HBase started again, empty: the time from "HBase ready" to the first 200 (target < 5 s), the
   gateway re-creating its tables on the way;
3. only the Thrift 2 server stopped and started again: the same two figures.

Prints one JSON document; bench/README.md ("Outages") has the figures of a run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import PYTHON, REPO, free_port

SCRIPT = REPO / "scripts" / "hbase"
LAYOUTS = REPO / "bench" / "layouts"
PATH = "/v1/instances/bench/tables/events/rows?eid=%5B%22u1%22,1%5D"


def hbase(env: dict[str, str], *args: str) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"scripts/hbase {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.monotonic() - t0


def get(port: int, path: str = PATH) -> tuple[int, float, dict[str, str]]:
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.monotonic() - t0, dict(resp.getheaders())
    finally:
        conn.close()


def while_down(port: int, n: int) -> dict[str, Any]:
    """The first answer after the outage began, then `n` more (the breaker is open by then)."""
    status, first, headers = get(port)
    times = []
    statuses = set()
    for _ in range(n):
        s, took, h = get(port)
        statuses.add(s)
        times.append(took)
        assert "Retry-After" in h, h
    return {
        "first_status": status,
        "first_s": round(first, 3),
        "statuses": sorted(statuses),
        "retry_after": headers.get("Retry-After"),
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
    }


def until_ok(port: int, deadline_s: float = 120.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        try:
            if get(port)[0] == 200:
                return round(time.monotonic() - t0, 3)
        except OSError:  # the gateway is not listening yet
            pass
        time.sleep(0.05)
    raise SystemExit(f"no 200 within {deadline_s} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outage", description=__doc__.splitlines()[0])
    parser.add_argument("--store-timeout", type=float, default=10.0, help="the gateway's store_timeout")
    parser.add_argument("--requests", type=int, default=50, help="requests timed while HBase is down")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="kijirest-outage-"))
    thrift, thrift2, rest, zk = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "KIJIREST_HBASE_HOME": str(home),
        "KIJIREST_HBASE_THRIFT_PORT": str(thrift),
        "KIJIREST_HBASE_THRIFT2_PORT": str(thrift2),
        "KIJIREST_HBASE_REST_PORT": str(rest),
        "KIJIREST_HBASE_ZK_PORT": str(zk),
    }
    port = free_port()
    gateway = log = None
    out: dict[str, Any] = {"store_timeout_s": args.store_timeout}
    try:
        out["hbase_start_s"] = round(hbase(env, "start"), 1)
        log = open(home / "gateway.log", "w")  # the gateway's output, for a failed run
        gateway = subprocess.Popen(
            [PYTHON, "-m", "kijirest", "serve", "--layouts", str(LAYOUTS), "--port", str(port),
             "--store", f"hbase://127.0.0.1:{thrift}?thrift2_port={thrift2}",
             "--store-timeout", str(args.store_timeout)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        until_ok(port)
        out["healthy_get_s"] = round(statistics.median(get(port)[1] for _ in range(20)), 4)

        hbase(env, "stop")
        out["hbase_down"] = while_down(port, args.requests)
        hbase(env, "start")
        out["hbase_back_empty_first_200_s"] = until_ok(port)

        hbase(env, "stop-role", "thrift2")
        out["thrift2_down"] = while_down(port, args.requests)
        hbase(env, "start-role", "thrift2")
        out["thrift2_back_first_200_s"] = until_ok(port)
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(30)
        if log is not None:
            log.close()
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, check=False)
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
