"""`python -m bench [--rows N] [--quick] [--skip-load] ...`: the gateway measured side by side with
raw happybase, HBase's REST server and the embedded store (bench/README.md).

Starts what it needs (HBase only when it is not running, its own REST server, the gateways), loads
the data set when the store does not hold it yet, runs every measurement with a warm-up and
interleaved repetitions, prints a table and writes bench/results.json. Stops what it started.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from bench import data
from bench.procs import (
    BenchError,
    Gateway,
    RestServer,
    Sampler,
    cpu_of,
    finish_job,
    hbase_pids,
    hbase_running,
    hbase_start,
    hbase_stop,
    memory_mb,
    profile_start,
    profile_summary,
    py_spy,
    run_job,
    start_job,
)
from kijirest.layouts.columns import hbase_table_name

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
HOST, THRIFT_PORT, THRIFT2_PORT = "127.0.0.1", 9090, 9091
SHARED_REST_PORT = 8081  # scripts/hbase's REST server (hbase.rest.scan.fetchsize left at 10)
PROFILE_RATE = 250  # py-spy samples per second
FETCH_SIZE = 1000  # rows per store round trip of a gateway scan (views/rows.py SCAN_BATCH_ROWS)
TARGETS = {
    "R_scan": (">=", 0.8),
    "R_stargate": (">=", 2.0),
    "R_embedded": (">=", 0.8),
    "R_versions": (">=", 0.5),
    "R_point": (">=", 1.5),
    "R_write": (">=", 0.7),
    "rss_mb_fast": ("<", 150.0),
    "rss_mb_slow": ("<", 150.0),
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: int = args.rows
        self.quick: bool = args.quick
        self.scan_reps = args.reps or (2 if self.quick else 3)
        self.short_reps = args.reps or (3 if self.quick else 5)
        self.work = Path(tempfile.mkdtemp(prefix="kijirest-bench-"))
        self.data_dir = (
            Path(args.data_dir) if args.data_dir else Path(tempfile.gettempdir()) / "kijirest-bench"
        )
        self.started_hbase = False
        self.gateways: list[Gateway] = []
        self.rest: RestServer | None = None
        self.results: dict[str, Any] = {}
        self.raw: dict[str, Any] = {}
        self.notes: list[str] = []
        self.loaded = 0  # rows in the HBase table
        self.hpids: dict[str, int] = {}
        self.hbase_addr = {"host": HOST, "port": THRIFT_PORT, "thrift2_port": THRIFT2_PORT}
        self.hbase_uri = f"hbase://{HOST}:{THRIFT_PORT}?thrift2_port={THRIFT2_PORT}"
        self.whatif_gw: Gateway | None = None

    # -- set-up ---------------------------------------------------------------------------------
    def machine(self) -> dict:
        mem_kb = 0
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
        cpu = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        return {
            "cores": os.cpu_count(),
            "cpu": cpu,
            "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "loadavg_start": os.getloadavg(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        }

    def ensure_hbase(self) -> None:
        if hbase_running():
            log("HBase is running (left running at the end)")
        else:
            log("starting HBase (scripts/hbase start)")
            hbase_start()
            self.started_hbase = True
        self.hpids = hbase_pids()

    def prepare_hbase(self) -> None:
        from kijirest.store.hbase import HBaseStore

        store = HBaseStore(HOST, THRIFT_PORT, THRIFT2_PORT)
        try:
            # the write target starts empty every run (the gateway re-creates it at start-up)
            write_table = hbase_table_name(data.INSTANCE, data.WRITE_TABLE)
            if write_table in store.list_tables():
                store.delete_table(write_table)
            catalog = data.open_bench_catalog(store)
            self.encoder = data.RowEncoder(catalog.instances[data.INSTANCE].tables[data.TABLE])
            loaded = data.hbase_loaded_rows(HOST, THRIFT_PORT)
            if self.args.reload:
                loaded = 0
            if self.args.skip_load and loaded < self.rows:
                raise BenchError(
                    f"--skip-load: HBase holds {loaded} rows of the data set, {self.rows} needed"
                )
            if loaded >= self.rows:
                log(f"HBase already holds {loaded} rows of the data set: no load")
                self.loaded = loaded
            else:
                log(f"loading rows {loaded}..{self.rows} into HBase (happybase batches)")
                t0 = time.perf_counter()
                data.hbase_clear_mark(HOST, THRIFT_PORT)
                seconds = data.load_hbase(
                    self.encoder, HOST, THRIFT_PORT, self.rows, start=loaded, progress=self._progress("hbase")
                )
                self.raw["load_hbase"] = {"rows": self.rows - loaded, "seconds": round(seconds, 1)}
                log(f"HBase load: {self.rows - loaded} rows in {time.perf_counter() - t0:.0f} s")
                self.loaded = self.rows
        finally:
            store.close()

    def prepare_embedded(self) -> Path:
        from kijirest.store.embedded import EmbeddedStore

        path = self.data_dir / "embedded"
        loaded = data.embedded_loaded_rows(path)
        if self.args.reload or loaded < self.rows:
            if self.args.skip_load and not self.args.reload:
                raise BenchError(f"--skip-load: the embedded store holds {loaded} rows, {self.rows} needed")
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            store = EmbeddedStore(str(path))
            try:
                catalog = data.open_bench_catalog(store)
                encoder = data.RowEncoder(catalog.instances[data.INSTANCE].tables[data.TABLE])
                log(f"loading {self.rows} rows into the embedded store at {path}")
                seconds = data.load_embedded(
                    store, encoder, path, self.rows, progress=self._progress("embedded")
                )
                self.raw["load_embedded"] = {"rows": self.rows, "seconds": round(seconds, 1)}
                log(f"embedded load: {seconds:.0f} s")
            finally:
                store.close()
        else:
            log(f"the embedded store already holds {loaded} rows: no load")
        return path

    def _progress(self, what: str) -> Callable[[int], None]:
        state = {"next": time.monotonic() + 30}

        def report(done: int) -> None:
            if time.monotonic() >= state["next"]:
                state["next"] = time.monotonic() + 30
                log(f"  {what}: {done} rows")

        return report

    # -- helpers --------------------------------------------------------------------------------
    def rows_url(self, gw: Gateway, table: str = data.TABLE, query: str = "") -> str:
        return f"{gw.url}/v1/instances/{data.INSTANCE}/tables/{table}/rows" + (f"?{query}" if query else "")

    def watch(self, gw: Gateway | None) -> dict[str, int]:
        pids = dict(self.hpids)
        if self.rest is not None and self.rest.proc is not None:
            pids["rest_ours"] = self.rest.proc.pid
        if gw is not None:
            for n, pid in enumerate(gw.server_pids()):
                pids[f"gateway{n or ''}"] = pid
        return pids

    def measure(self, gw: Gateway | None, fn: Callable[[], dict], interval: float = 0.25) -> dict:
        """Run one side of a measurement; add the gateway's peak RSS and every process's CPU."""
        pids = self.watch(gw)
        server = gw.server_pids() if gw is not None else []
        cpu0 = cpu_of(pids)
        t0 = time.perf_counter()
        with Sampler(server, interval) as sampler:
            out = fn()
        wall = time.perf_counter() - t0
        cpu1 = cpu_of(pids)
        out["wall_s"] = wall
        out["cpu_pct"] = {k: round(100 * (cpu1[k] - cpu0[k]) / wall, 1) for k in pids}
        if "client_cpu_s" in out:
            out["cpu_pct"]["client"] = round(100 * out["client_cpu_s"] / wall, 1)
        if server:
            out["rss_peak_mb"] = round(sampler.peak_mb, 1)
            out["rss_series"] = [
                (round(t, 1), round(mb, 1))
                for t, mb in sampler.samples[:: max(1, len(sampler.samples) // 40)]
            ]
        return out

    def stream(self, url: str, **extra: Any) -> dict:
        return run_job("bench.client", {"kind": "stream", "url": url, "count_cells": True, **extra})

    def rest_scan(self, limit: int) -> dict:
        assert self.rest is not None
        url = f"{self.rest.url}/{quote(self.encoder.table.hbase_name)}/*?limit={limit}"
        return run_job("bench.client", {"kind": "rest_scan", "url": url})

    def interleave(self, reps: int, sides: dict[str, Callable[[], dict]]) -> dict[str, list[dict]]:
        """Run every side once per repetition, rotating the order each time."""
        names = list(sides)
        out: dict[str, list[dict]] = {n: [] for n in names}
        for rep in range(reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                result = sides[name]()
                out[name].append(result)
                rate = result.get("rows_per_s") or result.get("per_s")
                log(f"  rep {rep + 1}/{reps} {name}: {rate:,.0f}/s" if rate else f"  rep {rep + 1} {name}")
        return out

    # -- measurements ---------------------------------------------------------------------------
    def calibrate(self, gw: Gateway) -> None:
        """The client's ceiling: a recorded gateway stream replayed by a trivial server."""
        sample_rows = min(self.rows, 20_000)
        url = self.rows_url(gw, query=f"limit={sample_rows}")
        import urllib.request

        with urllib.request.urlopen(url) as resp:
            payload = resp.read()
        recorded = self.work / "recorded-stream.json"
        recorded.write_bytes(payload)
        repeat = max(1, self.rows // sample_rows)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.trivial", str(recorded), str(repeat)],
            stdout=subprocess.PIPE,
            cwd=HERE.parent,
        )
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            runs = [self.stream(f"http://127.0.0.1:{port}/") for _ in range(2)]
        finally:
            proc.terminate()
            proc.wait()
        best = max(runs, key=lambda r: r["rows_per_s"])
        self.raw["client_ceiling"] = {
            "rows": best["rows"],
            "rows_per_s": round(best["rows_per_s"]),
            "bytes_per_row": round(len(payload) / sample_rows),
            "client_cpu_pct": round(100 * best["client_cpu_s"] / best["seconds"]),
        }
        log(f"client ceiling: {best['rows_per_s']:,.0f} rows/s on a replayed stream")

    def scans(self, gw: Gateway) -> None:
        n = self.rows
        tmin, tmax = data.VERSION_TS[0], data.VERSION_TS[-1] + 1
        vquery = f"versions=all&timerange={tmin}..{tmax}"
        direct_job = {"kind": "hbase_scan", **self.hbase_addr, "limit": n}
        sides = {
            "gateway": lambda: self.measure(gw, lambda: self.stream(self.rows_url(gw, query=f"limit={n}"))),
            "happybase": lambda: self.measure(gw, lambda: run_job("bench.direct", direct_job)),
            "stargate": lambda: self.measure(gw, lambda: self.rest_scan(n)),
            "gateway_versions": lambda: self.measure(
                gw, lambda: self.stream(self.rows_url(gw, query=f"limit={n}&{vquery}"))
            ),
        }
        wgw = self.whatif_gw
        if wgw is not None:
            sides["gateway_whatif"] = lambda: self.measure(
                wgw, lambda: self.stream(self.rows_url(wgw, query=f"limit={n}"))
            )
        warm = min(n, 50_000)
        log(f"scans: warm-up ({warm} rows each)")
        self.stream(self.rows_url(gw, query=f"limit={warm}"))
        run_job("bench.direct", {**direct_job, "limit": warm})
        self.rest_scan(warm)
        self.stream(self.rows_url(gw, query=f"limit={warm}&{vquery}"))
        if wgw is not None:
            self.stream(self.rows_url(wgw, query=f"limit={warm}"))
        log(f"scans: {self.scan_reps} interleaved repetitions of {n} rows")
        runs = self.interleave(self.scan_reps, sides)
        cells_per_row = {"gateway": 5, "gateway_whatif": 5, "gateway_versions": 15}
        for name, results in runs.items():
            for r in results:
                if r["rows"] != n:
                    raise BenchError(f"scan {name} returned {r['rows']} rows, expected {n}")
                if name in cells_per_row and r["cells"] != cells_per_row[name] * n:
                    raise BenchError(
                        f"scan {name} returned {r['cells']} cells, expected {cells_per_row[name] * n}"
                    )
        self.raw["scan"] = runs
        rate = {k: median([r["rows_per_s"] for r in v]) for k, v in runs.items()}
        self.results["R_scan"] = rate["gateway"] / rate["happybase"]
        self.results["R_stargate"] = rate["gateway"] / rate["stargate"]
        self.results["R_versions"] = rate["gateway_versions"] / rate["gateway"]
        self.results["scan_rows_per_s"] = {k: round(v) for k, v in rate.items()}
        self.results["scan_cpu_pct"] = {
            k: {p: median([r["cpu_pct"].get(p, 0.0) for r in v]) for p in v[0]["cpu_pct"]}
            for k, v in runs.items()
        }
        peaks = [r["rss_peak_mb"] for k in ("gateway", "gateway_versions") for r in runs[k]]
        self.results["rss_mb_fast"] = max(peaks)
        firsts = [r["first_row_s"] for r in runs["gateway"]]
        self.results["first_row_ms_full_scan"] = round(1000 * median(firsts), 1)
        if wgw is not None:
            self.results["whatif_scan_gain"] = round(rate["gateway_whatif"] / rate["gateway"], 3)

    def decomposition(self, gw: Gateway) -> None:
        """The gateway's per-row work without HTTP, in one process (bench.direct store_scan), and
        HBase REST with its default fetch size: where the scan's time goes."""
        rows = min(self.rows, 200_000)
        out: dict[str, Any] = {"limit": rows}
        tmin, tmax = data.VERSION_TS[0], data.VERSION_TS[-1] + 1
        for stage in ("fetch", "decode", "rows"):
            job = {"kind": "store_scan", **self.hbase_addr, "stage": stage, "limit": rows}
            out[stage] = self.measure(None, lambda job=job: run_job("bench.direct", job))
            job_v = {**job, "time_range": [tmin, tmax]}
            out[f"{stage}_versions"] = self.measure(None, lambda job=job_v: run_job("bench.direct", job))
        shared_rest = (
            f"http://{HOST}:{SHARED_REST_PORT}/{quote(self.encoder.table.hbase_name)}/*?limit={rows}"
        )
        out["stargate_default_fetch"] = self.measure(
            None, lambda: run_job("bench.client", {"kind": "rest_scan", "url": shared_rest})
        )
        self.raw["decomposition"] = out
        self.results["decomposition_rows_per_s"] = {
            k: round(v["rows_per_s"]) for k, v in out.items() if isinstance(v, dict)
        }
        log(f"decomposition: {self.results['decomposition_rows_per_s']}")

    def profile(self, gw: Gateway, name: str, seconds: float, job: dict, gil: bool = False) -> None:
        """py-spy on the gateway while a client job runs: the job starts first, py-spy attaches
        0.3 s later for `seconds` (shorter than the job), so every sample falls inside the work.
        `gil`: a CPU profile (only the thread holding the GIL is sampled)."""
        if py_spy() is None:
            self.notes.append("py-spy not installed: no profile (pip install py-spy)")
            return
        out = self.work / f"profile-{name}.txt"
        client = start_job("bench.client", job)
        time.sleep(0.3)
        spy = profile_start(gw.pid, seconds, out, rate=PROFILE_RATE, gil=gil)
        try:
            if spy is not None:
                try:
                    spy.wait(seconds + 60)
                except subprocess.TimeoutExpired:
                    spy.kill()
        finally:
            finish_job(client)
        summary = profile_summary(out, possible=int(PROFILE_RATE * max(1, int(seconds))) if gil else None)
        summary["seconds"] = max(1, int(seconds))
        summary["file"] = str(out)
        summary["mode"] = "gil" if gil else "non-idle threads"
        self.results.setdefault("profiles", {})[name] = summary
        log(f"profile {name}: {summary.get('samples', 0)} samples, raw stacks in {out}")

    @staticmethod
    def profiled(table_rows: int, rate: float) -> tuple[int, float]:
        """(rows, seconds) of a profiled scan: ~25 s of streaming at `rate` (fewer when the table
        is smaller), sampled for 80 % of it so that every sample falls inside the scan."""
        rows = min(table_rows, int(rate * 25))
        return rows, max(1.0, rows / rate * 0.8)

    def profile_scan(self, gw: Gateway) -> None:
        rows, seconds = self.profiled(self.loaded, self.results["scan_rows_per_s"]["gateway"])
        url = self.rows_url(gw, query=f"limit={rows}")
        self.profile(gw, "scan", seconds, {"kind": "stream", "url": url}, gil=True)
        vrows, vseconds = self.profiled(self.loaded, self.results["scan_rows_per_s"]["gateway_versions"])
        tmin, tmax = data.VERSION_TS[0], data.VERSION_TS[-1] + 1
        vurl = self.rows_url(gw, query=f"limit={vrows}&versions=all&timerange={tmin}..{tmax}")
        self.profile(gw, "scan_versions", vseconds, {"kind": "stream", "url": vurl}, gil=True)

    def first_row(self, gw: Gateway) -> None:
        target = data.key_order_pick(self.encoder, self.loaded, 0.95)
        eid = orjson.dumps([[], target]).decode()
        url = self.rows_url(gw, query=f"eid={quote(eid)}")
        self.stream(url)  # warm-up
        runs = [self.measure(gw, lambda: self.stream(url)) for _ in range(self.short_reps)]
        for r in runs:
            if r["rows"] != 1:
                raise BenchError(f"wildcard scan {eid} returned {r['rows']} rows, expected 1")
        self.raw["first_row"] = {"eid": eid, "table_rows": self.loaded, "runs": runs}
        self.results["first_row_ms"] = round(1000 * median([r["first_row_s"] for r in runs]), 1)
        self.results["wildcard_scan_total_ms"] = round(1000 * median([r["seconds"] for r in runs]), 1)
        log(f"first row of a selective wildcard scan: {self.results['first_row_ms']} ms")

    def point_urls(self, gw: Gateway, count: int, seed: int) -> tuple[list[str], list[str]]:
        import base64

        assert self.rest is not None
        ids = data.sample_ids(min(self.rows, self.loaded), count, seed)
        table = quote(self.encoder.table.hbase_name)
        kiji = [
            self.rows_url(gw, query="eid=" + quote(orjson.dumps(data.entity_id(i)).decode())) for i in ids
        ]
        rest = [
            f"{self.rest.url}/{table}/{base64.urlsafe_b64encode(self.encoder.key(i)).decode()}?e=b64"
            for i in ids
        ]
        return kiji, rest

    def gets(self, urls: list[str], concurrency: int, fmt: str) -> dict:
        return run_job(
            "bench.client", {"kind": "gets", "urls": urls, "concurrency": concurrency, "format": fmt}
        )

    def points(self, gw: Gateway) -> None:
        n32 = 2000 if self.quick else 10000
        n1 = 300 if self.quick else 1000
        k32, r32 = self.point_urls(gw, n32, seed=2)
        k1, r1 = self.point_urls(gw, n1, seed=3)
        # warm-up on the very rows measured, through both sides: every repetition then reads
        # rows from HBase's block cache (before, the first repetitions of whichever side ran
        # first paid the cold reads: REST's c=32 figure rose from 1,682 to 4,207/s over 5 reps)
        self.gets(k32 + k1, 32, "kiji")
        self.gets(r32 + r1, 32, "rest")
        sides = {
            "gateway_c32": lambda: self.measure(gw, lambda: self.gets(k32, 32, "kiji")),
            "rest_c32": lambda: self.measure(gw, lambda: self.gets(r32, 32, "rest")),
            "gateway_c1": lambda: self.measure(gw, lambda: self.gets(k1, 1, "kiji")),
            "rest_c1": lambda: self.measure(gw, lambda: self.gets(r1, 1, "rest")),
        }
        wgw = self.whatif_gw
        if wgw is not None:
            w32 = [u.replace(gw.url, wgw.url, 1) for u in k32]
            self.gets(w32[:1000], 32, "kiji")
            sides["gateway_whatif_c32"] = lambda: self.measure(wgw, lambda: self.gets(w32, 32, "kiji"))
        log(f"point gets: {self.short_reps} interleaved repetitions ({n32} at c=32, {n1} at c=1)")
        runs = self.interleave(self.short_reps, sides)
        for name, results in runs.items():
            for r in results:
                if r["errors"]:
                    raise BenchError(f"point gets {name}: {r['errors']} errors, first: {r['first_error']}")
        self.raw["point"] = runs
        summary = {}
        for name, results in runs.items():
            summary[name] = {
                "per_s": round(median([r["per_s"] for r in results])),
                "p50_ms": round(median([r["p50_ms"] for r in results]), 2),
                "p99_ms": round(median([r["p99_ms"] for r in results]), 2),
            }
        self.results["point"] = summary
        self.results["point_cpu_pct"] = {
            k: {p: median([r["cpu_pct"].get(p, 0.0) for r in v]) for p in v[0]["cpu_pct"]}
            for k, v in runs.items()
        }
        self.results["R_point"] = summary["gateway_c32"]["per_s"] / summary["rest_c32"]["per_s"]
        if wgw is not None:
            self.results["whatif_point_gain"] = round(
                summary["gateway_whatif_c32"]["per_s"] / summary["gateway_c32"]["per_s"], 3
            )

    def writes(self, gw: Gateway) -> None:
        per_rep = 2000 if self.quick else 10_000
        ts = data.VERSION_TS[2] + 10_000
        next_first = [10_000_000]  # row indexes of the write table: distinct per side and repetition

        def bodies(first: int, count: int) -> list[str]:
            return [
                orjson.dumps(
                    [data.post_row(i, 2, ts) for i in range(s, min(first + count, s + 100))]
                ).decode()
                for s in range(first, first + count, 100)
            ]

        def post_job(count: int, target: Gateway = gw) -> dict:
            first = next_first[0]
            next_first[0] += count
            return {
                "kind": "posts",
                "url": self.rows_url(target, data.WRITE_TABLE),
                "bodies": bodies(first, count),
                "rows_per_body": 100,
            }

        def post_side(count: int, target: Gateway = gw) -> dict:
            return run_job("bench.client", post_job(count, target))

        def batch_side(count: int) -> dict:
            first = next_first[0]
            next_first[0] += count
            job = {
                "kind": "hbase_write",
                **self.hbase_addr,
                "first": first,
                "rows": count,
                "rows_per_batch": 100,
                "timestamp": ts,
            }
            return run_job("bench.direct", job)

        post_side(500)
        batch_side(500)
        sides = {
            "gateway_post": lambda: self.measure(gw, lambda: post_side(per_rep)),
            "happybase_batch": lambda: self.measure(gw, lambda: batch_side(per_rep)),
        }
        wgw = self.whatif_gw
        if wgw is not None:
            post_side(500, wgw)
            sides["gateway_post_whatif"] = lambda: self.measure(wgw, lambda: post_side(per_rep, wgw))
        log(f"writes: {self.short_reps} interleaved repetitions of {per_rep} rows (100 per request)")
        runs = self.interleave(self.short_reps, sides)
        for r in runs["gateway_post"] + runs.get("gateway_post_whatif", []):
            if r["errors"]:
                raise BenchError(f"POST: {r['errors']} errors, first: {r['first_error']}")
        self.raw["write"] = runs
        rate = {k: median([r["rows_per_s"] for r in v]) for k, v in runs.items()}
        self.results["write_rows_per_s"] = {k: round(v) for k, v in rate.items()}
        self.results["R_write"] = rate["gateway_post"] / rate["happybase_batch"]
        if wgw is not None:
            self.results["whatif_write_gain"] = round(rate["gateway_post_whatif"] / rate["gateway_post"], 3)
        count = min(self.rows, int(rate["gateway_post"] * 10)) // 100 * 100 or 100
        self.profile(gw, "write", max(1.0, count / rate["gateway_post"] * 0.8), post_job(count))

    def slow_client(self, gw: Gateway) -> None:
        seconds = 20.0 if self.quick else 60.0
        url = self.rows_url(gw, query="limit=-1")
        log(f"slow client: 1 MB/s for up to {seconds:g} s")
        rss_before = memory_mb(gw.pid)[0]
        r = self.measure(
            gw, lambda: self.stream(url, read_rate=1_000_000, max_seconds=seconds, series=True), interval=1.0
        )
        time.sleep(2.0)
        rss_after = memory_mb(gw.pid)[0]
        self.raw["slow_client"] = {
            **r,
            "rss_before_mb": round(rss_before, 1),
            "rss_after_close_mb": round(rss_after, 1),
        }
        self.results["rss_mb_slow"] = r["rss_peak_mb"]
        self.results["slow_client_read_mb"] = round(r["bytes"] / 1e6, 1)

    def embedded(self, path: Path) -> None:
        gw = Gateway(f"embedded:{path}", self.work, name="gateway-embedded")
        self.gateways.append(gw)
        gw.start()
        n = self.rows
        url = self.rows_url(gw, query=f"limit={n}")
        job = {"kind": "embedded_scan", "path": str(path), "limit": n}
        warm = min(n, 50_000)
        self.stream(self.rows_url(gw, query=f"limit={warm}"))
        run_job("bench.direct", {**job, "limit": warm})
        sides = {
            "gateway_embedded": lambda: self.measure(gw, lambda: self.stream(url)),
            "direct_embedded": lambda: self.measure(gw, lambda: run_job("bench.direct", job)),
        }
        log(f"embedded: {self.scan_reps} interleaved repetitions of {n} rows")
        runs = self.interleave(self.scan_reps, sides)
        for name, results in runs.items():
            for r in results:
                if r["rows"] != n:
                    raise BenchError(f"embedded {name} returned {r['rows']} rows, expected {n}")
        self.raw["embedded"] = runs
        rate = {k: median([r["rows_per_s"] for r in v]) for k, v in runs.items()}
        self.results["embedded_rows_per_s"] = {k: round(v) for k, v in rate.items()}
        self.results["R_embedded"] = rate["gateway_embedded"] / rate["direct_embedded"]
        rows, seconds = self.profiled(data.embedded_loaded_rows(path), rate["gateway_embedded"])
        url = self.rows_url(gw, query=f"limit={rows}")
        self.profile(gw, "scan_embedded", seconds, {"kind": "stream", "url": url}, gil=True)
        gw.stop()

    def scaling(self, gw1: Gateway) -> None:
        """1 vs 2 worker processes: two concurrent scans, and point gets at c=32."""
        gw2 = Gateway(self.hbase_uri, self.work, workers=2, name="gateway-w2")
        self.gateways.append(gw2)
        gw2.start()
        rows = min(self.rows, 20_000 if self.quick else 200_000)

        def two_scans(gw: Gateway) -> dict:
            url = self.rows_url(gw, query=f"limit={rows}")
            procs = [start_job("bench.client", {"kind": "stream", "url": url}) for _ in range(2)]
            t0 = time.perf_counter()
            results = [finish_job(p) for p in procs]
            wall = time.perf_counter() - t0
            total = sum(r["rows"] for r in results)
            return {"rows": total, "seconds": wall, "rows_per_s": total / wall}

        n32 = 1500 if self.quick else 5000
        k1, _ = self.point_urls(gw1, n32, seed=4)
        k2 = [u.replace(gw1.url, gw2.url) for u in k1]
        self.gets(k2[:300], 32, "kiji")
        two_scans(gw2)
        sides = {
            "w1_two_scans": lambda: self.measure(gw1, lambda: two_scans(gw1)),
            "w2_two_scans": lambda: self.measure(gw2, lambda: two_scans(gw2)),
            "w1_gets_c32": lambda: self.measure(gw1, lambda: self.gets(k1, 32, "kiji")),
            "w2_gets_c32": lambda: self.measure(gw2, lambda: self.gets(k2, 32, "kiji")),
        }
        log(f"workers 1 vs 2: {self.scan_reps} repetitions")
        runs = self.interleave(self.scan_reps, sides)
        self.raw["scaling"] = runs
        rate = {k: median([r.get("rows_per_s") or r.get("per_s") for r in v]) for k, v in runs.items()}
        self.results["scaling"] = {
            **{k: round(v) for k, v in rate.items()},
            "scan_1_to_2": round(rate["w2_two_scans"] / rate["w1_two_scans"], 2),
            "gets_1_to_2": round(rate["w2_gets_c32"] / rate["w1_gets_c32"], 2),
        }
        gw2.stop()

    def profile_points(self, gw: Gateway) -> None:
        k32, _ = self.point_urls(gw, 3000 if self.quick else 6000, seed=5)
        per_s = self.results["point"]["gateway_c32"]["per_s"]
        job = {"kind": "gets", "urls": k32, "concurrency": 32, "format": "kiji"}
        self.profile(gw, "point_c32", max(1.0, len(k32) / per_s * 0.8), job)

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> None:
        t_start = time.perf_counter()
        self.results["machine"] = self.machine()
        self.ensure_hbase()
        self.prepare_hbase()
        emb_path = self.prepare_embedded()
        self.rest = RestServer(self.work, fetch_size=FETCH_SIZE)
        log(f"starting our HBase REST server (fetchsize {FETCH_SIZE}) on port {self.rest.port}")
        self.rest.start()
        gw = Gateway(self.hbase_uri, self.work, name="gateway-hbase")
        self.gateways.append(gw)
        gw.start()
        if self.args.whatif:
            self.whatif_gw = Gateway(
                self.hbase_uri, self.work, name="gateway-whatif", whatif=self.args.whatif
            )
            self.gateways.append(self.whatif_gw)
            self.whatif_gw.start()
            log(f"gateway with whatif variants {self.args.whatif} at {self.whatif_gw.url}")
        self.results["gateway_idle_rss_mb"] = round(memory_mb(gw.pid)[0], 1)
        log(f"gateway on HBase at {gw.url} (pid {gw.pid})")
        self.calibrate(gw)
        self.scans(gw)
        self.decomposition(gw)
        self.profile_scan(gw)
        self.first_row(gw)
        self.points(gw)
        self.profile_points(gw)
        self.writes(gw)
        self.slow_client(gw)
        if not self.args.no_embedded:
            self.embedded(emb_path)
        if not self.args.no_scaling:
            self.scaling(gw)
        for g in self.gateways:
            g.stop()
        self.results["machine"]["loadavg_end"] = os.getloadavg()
        self.results["config"] = {
            "rows": self.rows,
            "hbase_table_rows": self.loaded,
            "quick": self.quick,
            "scan_reps": self.scan_reps,
            "short_reps": self.short_reps,
            "fetch_size": FETCH_SIZE,
            "whatif": self.args.whatif,
            "hbase_started_by_bench": self.started_hbase,
            "seconds": round(time.perf_counter() - t_start),
            "work_dir": str(self.work),
        }
        self.results["notes"] = self.notes

    def cleanup(self) -> None:
        for gw in self.gateways:
            gw.stop()
        if self.rest is not None:
            self.rest.stop()
        if self.started_hbase:
            log("stopping the HBase this run started")
            hbase_stop()

    # -- output ---------------------------------------------------------------------------------
    def write(self) -> None:
        out = {**self.results, "raw": self.raw}
        RESULTS.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
        log(f"wrote {RESULTS.relative_to(HERE.parent)}")

    def table(self) -> str:
        r = self.results
        cfg = r["config"]
        out = [
            "",
            f"kijirest bench: {cfg['rows']:,} rows x 5 cells x 3 versions "
            f"(HBase table: {cfg['hbase_table_rows']:,} rows)",
        ]
        out += [
            "",
            f"{'figure':<13} {'value':>8}  {'target':<7} {'':4}  basis (medians of interleaved repetitions)",
        ]
        out.append("-" * 110)

        def row(name: str, basis: str) -> None:
            value = r.get(name)
            op, goal = TARGETS.get(name, ("", None))
            target = f"{op} {goal:g}" if goal is not None else ""
            if value is None:
                out.append(f"{name:<13} {'-':>8}  {target:<7} {'':4}  {basis}")
                return
            ok = "" if goal is None else ("ok" if (value >= goal if op == ">=" else value < goal) else "MISS")
            out.append(f"{name:<13} {value:>8.2f}  {target:<7} {ok:4}  {basis}")

        s = r.get("scan_rows_per_s", {})
        e = r.get("embedded_rows_per_s", {})
        p = r.get("point", {})
        w = r.get("write_rows_per_s", {})
        row(
            "R_scan",
            f"gateway {s.get('gateway', 0):,} rows/s / happybase scan+decode {s.get('happybase', 0):,}",
        )
        row(
            "R_stargate", f"gateway {s.get('gateway', 0):,} rows/s / HBase REST scan {s.get('stargate', 0):,}"
        )
        row(
            "R_embedded",
            f"gateway {e.get('gateway_embedded', 0):,} rows/s / in-process {e.get('direct_embedded', 0):,}",
        )
        row(
            "R_versions",
            f"all versions {s.get('gateway_versions', 0):,} rows/s / latest {s.get('gateway', 0):,}",
        )
        if p:
            row(
                "R_point",
                f"GETs at c=32: gateway {p['gateway_c32']['per_s']:,}/s / REST {p['rest_c32']['per_s']:,}/s",
            )
        row(
            "R_write",
            f"POSTs of 100: {w.get('gateway_post', 0):,} rows/s / happybase {w.get('happybase_batch', 0):,}",
        )
        row("rss_mb_fast", f"peak gateway RSS, full scans (idle: {r.get('gateway_idle_rss_mb')} MB)")
        row("rss_mb_slow", f"peak gateway RSS, client at 1 MB/s ({r.get('slow_client_read_mb')} MB read)")
        row(
            "first_row_ms",
            f"wildcard scan, 1 match at 95% of the table (end: {r.get('wildcard_scan_total_ms')} ms)",
        )
        if p:
            out += ["", "point GETs          p50 ms   p99 ms      /s"]
            for name in p:
                q = p[name]
                out.append(f"  {name:<16} {q['p50_ms']:>7.2f} {q['p99_ms']:>8.2f} {q['per_s']:>7,}")
        cpu = {**r.get("scan_cpu_pct", {}), **r.get("point_cpu_pct", {})}
        if cpu:
            out += ["", "CPU while measuring (% of one core; 2 cores in all)"]
            for side, pcts in cpu.items():
                parts = ", ".join(f"{k} {v:.0f}" for k, v in pcts.items() if v >= 1)
                out.append(f"  {side:<17} {parts}")
        d = r.get("decomposition_rows_per_s")
        if d:
            out += [
                "",
                f"in one process, no HTTP (rows/s, {self.raw['decomposition']['limit']:,} rows): "
                + ", ".join(f"{k} {v:,}" for k, v in d.items()),
            ]
        sc = r.get("scaling")
        if sc:
            out.append("")
            out.append(
                f"workers 1 -> 2: two concurrent scans {sc['w1_two_scans']:,} -> {sc['w2_two_scans']:,} "
                f"rows/s (x{sc['scan_1_to_2']}); GETs c=32 {sc['w1_gets_c32']:,} -> {sc['w2_gets_c32']:,}/s "
                f"(x{sc['gets_1_to_2']})"
            )
        if cfg.get("whatif"):
            out.append(
                f"whatif {cfg['whatif']}: scan x{r.get('whatif_scan_gain')}, "
                f"GETs c=32 x{r.get('whatif_point_gain')}, POST x{r.get('whatif_write_gain')} "
                "(same run, interleaved with the unchanged gateway)"
            )
        c = self.raw.get("client_ceiling")
        if c:
            out.append(
                f"client ceiling (a replayed stream): {c['rows_per_s']:,} rows/s "
                f"at {c['bytes_per_row']} bytes/row"
            )
        for name, prof in r.get("profiles", {}).items():
            if not prof.get("samples"):
                continue
            busy = f", GIL held {prof['busy_pct']}% of the time" if "busy_pct" in prof else ""
            out += [
                "",
                f"profile {name} ({prof['mode']}): {prof['samples']} samples{busy}, {prof['threads']}",
            ]
            for frame, pct in prof["self"][:8]:
                out.append(f"  self {pct:5.1f}%  {frame}")
        m = r["machine"]
        out += [
            "",
            f"machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; load "
            f"{m['loadavg_start'][0]:.2f} -> {m.get('loadavg_end', (0,))[0]:.2f}; "
            f"run took {cfg['seconds']} s",
        ]
        return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--rows", type=int, default=None, help="rows in the data set (default 1,000,000; --quick 20,000)"
    )
    p.add_argument("--quick", action="store_true", help="20,000 rows and fewer repetitions: a few minutes")
    p.add_argument(
        "--skip-load", action="store_true", help="fail instead of loading when the data is missing"
    )
    p.add_argument("--reload", action="store_true", help="load the data again even when it is there")
    p.add_argument("--reps", type=int, default=None, help="repetitions of every measurement")
    p.add_argument("--data-dir", default=None, help="where the embedded store lives (default: a temp dir)")
    p.add_argument("--no-embedded", action="store_true", help="skip R_embedded")
    p.add_argument("--no-scaling", action="store_true", help="skip the 1 -> 2 workers measurement")
    p.add_argument(
        "--whatif",
        default="",
        help="bench/whatif.py variants (e.g. thriftpy2): a second gateway with them is measured "
        "beside the unchanged one in the scan and write measurements",
    )
    args = p.parse_args(argv)
    if args.rows is None:
        args.rows = 20_000 if args.quick else 1_000_000
    if args.rows < 1000:
        p.error("--rows must be at least 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    try:
        bench.run()
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        bench.cleanup()
    bench.write()
    print(bench.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
