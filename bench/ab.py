"""`python -m bench.ab --before REV`: one revision of the gateway against the working tree, side by
side, for a change that must not cost speed (a refactor, a new check on the hot path).

Both gateways serve the same data from the same store at the same time; the measurements alternate
between them (before, after, before, after, ...) so that the noise of a shared machine falls on
both alike, and every figure is printed as the ratio after / before per pair and its median.

- scans: `GET rows?limit=N` of `bench/events` streamed and parsed by `bench.client` (HBase when
  `--store hbase://...` is given, else an embedded store loaded once into `--data-dir`);
- versions: the same scan with `versions=all` (3x the cells);
- posts: 100-row POST bodies of the bench row shape into a `memory:` gateway each (the cost of
  validation and encoding, which is what a refactor can change; HBase's own write time is the
  same for both sides).

REV is checked out with `git worktree add --detach` into a temp directory (removed at the end),
its C reader built in place, and its gateway started from there with `python -m kijirest`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import data
from bench.procs import PYTHON, REPO, Gateway, run_job


def log(msg: str) -> None:
    print(f"[ab] {msg}", file=sys.stderr, flush=True)


def checkout(rev: str, where: Path) -> Path:
    tree = where / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), rev], cwd=REPO, check=True, capture_output=True
    )
    subprocess.run(
        [PYTHON, "setup.py", "build_ext", "--inplace", "-q"], cwd=tree, check=True, capture_output=True
    )
    return tree


def remove(tree: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)


def ensure_embedded(path: Path, rows: int) -> None:
    if data.embedded_loaded_rows(path) >= rows:
        return
    from kijirest.store.embedded import EmbeddedStore

    store = EmbeddedStore(path)
    try:
        table = data.open_bench_catalog(store).instances[data.INSTANCE].tables[data.TABLE]
        log(f"loading {rows} rows into {path}")
        data.load_embedded(store, data.RowEncoder(table), path, rows)
    finally:
        store.close()


def ensure_hbase(uri: str, rows: int) -> None:
    from kijirest.store import open_store

    host, port = "127.0.0.1", 9090
    if data.hbase_loaded_rows(host, port) >= rows:
        return
    store = open_store(uri)  # open while loading: the encoder reads the schema table through it
    try:
        table = data.open_bench_catalog(store).instances[data.INSTANCE].tables[data.TABLE]
        log(f"loading {rows} rows into HBase")
        data.load_hbase(data.RowEncoder(table), host, port, rows)
    finally:
        store.close()


def loaded_store(store: str | None, data_dir: str, rows: int) -> str:
    """The store URI to serve: `store` (HBase, loaded if needed) or an embedded store in
    `data_dir`, loaded once and reused."""
    if store:
        ensure_hbase(store, rows)
        return store
    path = Path(data_dir) / "embedded"
    ensure_embedded(path, rows)
    return f"embedded:{path}"


def rows_url(gw: Gateway, query: str) -> str:
    return f"{gw.url}/v1/instances/{data.INSTANCE}/tables/{data.TABLE}/rows?{query}"


def post_job(gw: Gateway, bodies: int, first: int) -> dict:
    import orjson

    rows = [data.post_row(i) for i in range(first, first + bodies * 100)]
    return {
        "kind": "posts",
        "url": f"{gw.url}/v1/instances/{data.INSTANCE}/tables/{data.WRITE_TABLE}/rows",
        "bodies": [orjson.dumps(rows[k : k + 100]).decode() for k in range(0, len(rows), 100)],
        "concurrency": 1,
        "rows_per_body": 100,
    }


def ratios(pairs: list[tuple[float, float]]) -> str:
    r = [after / before for before, after in pairs]
    shown = ", ".join(f"{x:.3f}" for x in r)
    return f"median {statistics.median(r):.3f}  ({shown})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True, help="the git revision to compare the working tree with")
    p.add_argument("--store", default=None, help="hbase://... (default: an embedded store in --data-dir)")
    p.add_argument("--rows", type=int, default=100_000, help="rows of bench/events to scan")
    p.add_argument("--pairs", type=int, default=5, help="measurement pairs per figure")
    p.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "kijirest-ab"))
    args = p.parse_args(argv)

    store = loaded_store(args.store, args.data_dir, args.rows)  # before the checkout: may fail
    work = Path(tempfile.mkdtemp(prefix="kijirest-ab-"))
    tree = checkout(args.before, work)
    sides = {
        "before": Gateway(store, work, name="before", repo=tree),
        "after": Gateway(store, work, name="after"),
    }
    writers = {
        "before": Gateway("memory:", work, name="before-w", repo=tree),
        "after": Gateway("memory:", work, name="after-w"),
    }
    results: dict[str, list[tuple[float, float]]] = {"scan": [], "versions": [], "posts": []}
    try:
        for gw in (*sides.values(), *writers.values()):
            gw.start()
        queries = {
            "scan": f"limit={args.rows}",
            "versions": f"limit={args.rows // 3}&versions=all",
        }
        for name, query in queries.items():
            for side in sides.values():  # warm-up: caches, the OS page cache
                run_job("bench.client", {"kind": "stream", "url": rows_url(side, query)})
            for i in range(args.pairs):
                got = {}
                for label in ("before", "after") if i % 2 == 0 else ("after", "before"):
                    out = run_job("bench.client", {"kind": "stream", "url": rows_url(sides[label], query)})
                    got[label] = out["rows"] / out["seconds"]
                results[name].append((got["before"], got["after"]))
                log(f"{name} pair {i}: before {got['before']:,.0f} rows/s, after {got['after']:,.0f} rows/s")
        first = 0
        for i in range(args.pairs + 1):
            got = {}
            for label in ("before", "after") if i % 2 == 0 else ("after", "before"):
                out = run_job("bench.client", post_job(writers[label], 200, first))
                if out["errors"]:
                    raise SystemExit(f"POSTs to the {label} gateway failed: {out['first_error']}")
                got[label] = out["rows_per_s"]
            first += 20_000
            if i == 0:
                continue  # warm-up
            results["posts"].append((got["before"], got["after"]))
            log(f"posts pair {i}: before {got['before']:,.0f} rows/s, after {got['after']:,.0f} rows/s")
    finally:
        for gw in (*sides.values(), *writers.values()):
            gw.stop()
        remove(tree)
        shutil.rmtree(work, ignore_errors=True)

    print(f"A/B: {args.before} (before) vs the working tree (after), store {store}, {args.rows} rows")
    for name, pairs in results.items():
        before = statistics.median(b for b, _ in pairs)
        after = statistics.median(a for _, a in pairs)
        print(
            f"  {name:9s} before {before:10,.0f} rows/s   after {after:10,.0f} rows/s"
            f"   after/before {ratios(pairs)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
