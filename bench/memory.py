"""`python -m bench.memory`: the gateway's memory and latency under abuse (issue "Holds under abuse
and faults"), with printed figures and no assertions (bench/README.md, "Memory under abuse").

- `streams`: `--streams` (1,000) streams of the whole `--rows`-row table opened at once by one
  client process, each read only once all are open; the gateway's peak RSS while they run and its
  RSS once they are done, against its idle RSS after one warm-up scan. The gateway runs with
  `max_streams` = `--max-streams` (default: as many as `--streams`, so every stream is in flight
  and what is measured is the per-stream buffer bound; `--max-streams 256` measures the default).
- `post`: one ~`--post-mb` MB POST while another connection asks `/v1/version` every 5 ms: the
  gateway's peak RSS and the probe's p99. Twice: a body of empty rows (the finding: 2.1 million rows;
  refused at `max_rows_per_post`), and one of 10,000 rows of one ~6 KB string each (written).

The data is the bench data set (bench/data.py) in an embedded store (loaded once into `--data-dir`),
or the HBase table of `python -m bench` (`--store hbase`; HBase must be running and loaded).
Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench import data
from bench.procs import BenchError, Gateway, Sampler, memory_mb, run_job

HBASE_URI = "hbase://127.0.0.1:9090?thrift2_port=9091"


def log(msg: str) -> None:
    print(f"[bench.memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def prepare_embedded(data_dir: Path, rows: int) -> Path:
    from kijirest.store.embedded import EmbeddedStore

    path = data_dir / "embedded-memory"
    if data.embedded_loaded_rows(path) >= rows:
        return path
    path.mkdir(parents=True, exist_ok=True)
    store = EmbeddedStore(str(path))
    try:
        catalog = data.open_bench_catalog(store)
        encoder = data.RowEncoder(catalog.instances[data.INSTANCE].tables[data.TABLE])
        log(f"loading {rows} rows into {path}")
        data.load_embedded(store, encoder, path, rows)
    finally:
        store.close()
    return path


def rows_url(gw: Gateway, table: str, query: str = "") -> str:
    return f"{gw.url}/v1/instances/{data.INSTANCE}/tables/{table}/rows" + (f"?{query}" if query else "")


def rss_parts(pid: int) -> dict[str, float]:
    """VmRSS and its parts in MiB: RssAnon (the heap, objects, buffers) and RssFile (mapped files:
    the embedded store's SQLite file, mmapped by each store thread, shows up here; those pages are
    the kernel's page cache, shared and reclaimable, not memory the gateway holds)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            out[name] = round(int(value.split()[0]) / 1024, 1)
    return out


class PartsSampler(Sampler):
    """`Sampler` that also keeps the peak of RssAnon (the gateway's own memory, without mapped
    files) of the first process."""

    def _run(self) -> None:
        self.anon_peak_mb = 0.0
        while not self._stop.is_set():
            parts = rss_parts(self.pids[0])
            self.samples.append((time.perf_counter() - self._t0, parts.get("VmRSS", 0.0)))
            self.anon_peak_mb = max(self.anon_peak_mb, parts.get("RssAnon", 0.0))
            self._stop.wait(self.interval)


def settle(pid: int, seconds: float) -> list[dict[str, float]]:
    """RSS every 0.5 s for `seconds` (after a burst: what the gateway keeps)."""
    out = []
    for _ in range(int(seconds / 0.5)):
        time.sleep(0.5)
        out.append(rss_parts(pid))
    return out


def streams(args: argparse.Namespace, store: str, work: Path) -> dict:
    config = work / "streams.yaml"
    config.write_text(f"max_streams: {args.max_streams}\n" if args.max_streams else "")
    gw = Gateway(store, work, name="gateway-streams", config=config)
    gw.start()
    try:
        url = rows_url(gw, data.TABLE, f"limit={args.rows}")
        warm = run_job("bench.client", {"kind": "stream", "url": url})
        if warm["rows"] != args.rows:
            raise BenchError(f"the table holds {warm['rows']} rows, {args.rows} expected")
        time.sleep(1.0)
        idle_parts = rss_parts(gw.pid)
        idle = idle_parts["VmRSS"]
        job = {"kind": "many_streams", "url": url, "count": args.streams, "rows": args.rows}
        limit = args.max_streams or "default"
        log(f"streams: {args.streams} at once (max_streams {limit}), idle {idle:.1f} MB")
        with Sampler([gw.pid], 0.1) as sampler:
            result = run_job("bench.client", {**job, "concurrency": args.streams})
        after = settle(gw.pid, 5.0)
        target_after = idle * 1.25 + 20
        return {
            **result,
            "idle_mb": round(idle, 1),
            "idle_parts": idle_parts,
            "peak_mb": round(sampler.peak_mb, 1),
            "after_mb": after[-1]["VmRSS"],
            "after_parts": after[-1],
            "after_series_mb": [a["VmRSS"] for a in after],
            "target_after_anon_mb": round(idle_parts.get("RssAnon", 0) * 1.25 + 20, 1),
            "target_peak_mb": 400,
            "target_after_mb": round(target_after, 1),
        }
    finally:
        gw.stop()


def posts(args: argparse.Namespace, store: str, work: Path) -> dict:
    gw = Gateway(store, work, name="gateway-post")
    gw.start()
    out = {}
    try:
        body_bytes = int(args.post_mb * 1e6)
        cases = {
            # {"entityId":["big00000000",0]}, = ~33 bytes a row
            "empty_rows": {"rows": body_bytes // 33, "value_bytes": 0},
            "rows_10000x6KB": {"rows": 10_000, "value_bytes": body_bytes // 10_000 - 90},
        }
        for name, shape in cases.items():
            time.sleep(1.0)
            idle = memory_mb(gw.pid)[0]
            job = {
                "kind": "big_post",
                "url": rows_url(gw, data.WRITE_TABLE),
                "probe_url": f"{gw.url}/v1/version",
                "probe_ms": 5,
                **shape,
            }
            log(f"post {name}: {shape}")
            with PartsSampler([gw.pid], 0.05) as sampler:
                result = run_job("bench.client", job)
            peak = sampler.peak_mb
            out[name] = {
                **result,
                "idle_mb": round(idle, 1),
                "peak_mb": round(peak, 1),
                "peak_over_body": round(peak * 1024 * 1024 / result["body_bytes"], 2),
                "anon_peak_mb": sampler.anon_peak_mb,
                "anon_peak_over_body": round(sampler.anon_peak_mb * 1024 * 1024 / result["body_bytes"], 2),
                "after_mb": settle(gw.pid, 2.0)[-1]["VmRSS"],
            }
    finally:
        gw.stop()
    return out


def table(results: dict) -> str:
    lines = [""]
    s = results.get("streams")
    if s:
        lines += [
            f"{s['count']} streams: statuses {s['statuses']} (Retry-After {s['retry_after']}), "
            f"{s['complete']} complete, {s['seconds']:.1f} s",
            f"  RSS idle {s['idle_mb']} MB, peak {s['peak_mb']} MB (target < 400), after {s['after_mb']} MB "
            f"(target <= {s['target_after_mb']}); settling {s['after_series_mb']}",
            f"  of which anonymous (heap): idle {s['idle_parts'].get('RssAnon')} MB, after "
            f"{s['after_parts'].get('RssAnon')} MB (target <= {s['target_after_anon_mb']}); mapped files: "
            f"idle {s['idle_parts'].get('RssFile')} MB, after {s['after_parts'].get('RssFile')} MB",
        ]
    for name, p in results.get("posts", {}).items():
        lines += [
            f"POST {name}: {p['body_bytes'] / 1e6:.1f} MB -> {p['status']} in {p['seconds']:.2f} s "
            f"({p['answer'][:120]})",
            f"  RSS idle {p['idle_mb']} MB, peak {p['peak_mb']} MB = {p['peak_over_body']}x the body "
            f"(target < 4; anonymous peak {p['anon_peak_mb']} MB = {p['anon_peak_over_body']}x), "
            f"after {p['after_mb']} MB; /v1/version during it: {p['probes']} probes, "
            f"p50 {p['probe_p50_ms']:.1f} ms, p99 {p['probe_p99_ms']:.1f} ms (target < 50), "
            f"max {p['probe_max_ms']:.1f} ms",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", choices=("embedded", "hbase"), default="embedded")
    p.add_argument("--rows", type=int, default=20_000, help="rows of the streamed table (default 20,000)")
    p.add_argument("--streams", type=int, default=1000, help="streams opened at once (default 1,000)")
    p.add_argument(
        "--max-streams",
        type=int,
        default=None,
        help="the gateway's max_streams (default: --streams; 0: not set)",
    )
    p.add_argument("--post-mb", type=float, default=60.0, help="size of the large POST (default 60 MB)")
    p.add_argument("--data-dir", default=None, help="where the embedded store lives (default: a temp dir)")
    p.add_argument("--only", choices=("streams", "post"), default=None)
    args = p.parse_args(argv)
    if args.max_streams is None:
        args.max_streams = args.streams
    # a socket per stream on both sides: the client and the gateway inherit this limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * args.streams + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    work = Path(tempfile.mkdtemp(prefix="kijirest-bench-memory-"))
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.gettempdir()) / "kijirest-bench"
    if args.store == "embedded":
        store = f"embedded:{prepare_embedded(data_dir, args.rows)}"
    else:
        store = HBASE_URI
        if data.hbase_loaded_rows("127.0.0.1", 9090) < args.rows:
            log("HBase does not hold the data set: run `python -m bench --quick` once first")
            return 1
    results: dict = {"store": args.store, "rows": args.rows, "work_dir": str(work)}
    try:
        if args.only in (None, "streams"):
            results["streams"] = {"count": args.streams, **streams(args, store, work)}
        if args.only in (None, "post"):
            results["posts"] = posts(args, store, work)
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    (work / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    log(f"wrote {work / 'results.json'}")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
