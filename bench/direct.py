"""In-process baselines, each in its own process: `python -m bench.direct '<json job>'`.

- `hbase_scan`: happybase `table.scan()` (Thrift 1, batch_size 1000, timestamps included) with every
  cell decoded by the gateway's own `ColumnCodec.decode_cell` — the floor a Python gateway could reach;
- `hbase_write`: happybase `Batch` writing the same cells the POST measurement writes;
- `embedded_scan`: the embedded store's own scan + the same decoding, in one process.

Prints one JSON object on stdout.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

from bench import data
from kijirest.store.base import Scan


def _decoders(table: Any) -> dict[tuple[bytes, bytes], Any]:
    """(HBase family, qualifier) -> ColumnCodec.decode_cell (as the gateway), for every column written."""
    out = {}
    for i in range(data.TAGS):
        for family, qualifier, _ in data.row_values(i, 0):
            hf, hq = table.column_names.hbase_column(family, qualifier)
            out[(hf, hq)] = table.codec(table.column_names.cell_spec(family, qualifier)).decode_cell
    return out


def hbase_scan(job: dict) -> dict:
    import happybase

    from kijirest.store.hbase import HBaseStore

    store = HBaseStore(job["host"], job["port"], job["thrift2_port"])
    table = data.open_bench_catalog(store).instances[data.INSTANCE].tables[data.TABLE]
    by_column = {hf + b":" + hq: fn for (hf, hq), fn in _decoders(table).items()}
    conn = happybase.Connection(job["host"], job["port"], timeout=300_000)
    htable = conn.table(table.hbase_name)
    rows = cells = 0
    t0 = time.perf_counter()
    for _key, columns in htable.scan(batch_size=1000, include_timestamp=True, limit=job.get("limit")):
        for column, (value, _ts) in columns.items():
            by_column[column](value)
            cells += 1
        rows += 1
    seconds = time.perf_counter() - t0
    conn.close()
    store.close()
    return {"rows": rows, "cells": cells, "seconds": seconds, "rows_per_s": rows / seconds}


def hbase_write(job: dict) -> dict:
    import happybase

    from kijirest.store.hbase import HBaseStore

    store = HBaseStore(job["host"], job["port"], job["thrift2_port"])
    catalog = data.open_bench_catalog(store)
    table = catalog.instances[data.INSTANCE].tables[data.WRITE_TABLE]
    encoder = data.RowEncoder(table)
    first, count, per_batch, ts = job["first"], job["rows"], job["rows_per_batch"], job["timestamp"]
    # the cells are encoded before the clock starts: the POST side's client sends ready bodies too
    puts = [(encoder.key(i), encoder.version_mutations(i, 2)) for i in range(first, first + count)]
    conn = happybase.Connection(job["host"], job["port"], timeout=300_000)
    htable = conn.table(table.hbase_name)
    t0 = time.perf_counter()
    for start in range(0, count, per_batch):
        with htable.batch(timestamp=ts) as batch:
            for key, cells in puts[start : start + per_batch]:
                batch.put(key, cells)
    seconds = time.perf_counter() - t0
    conn.close()
    store.close()
    return {"rows": count, "seconds": seconds, "rows_per_s": count / seconds}


def _scanned(store: Any, table: str, scan: Scan, limit: int | None) -> Iterator[Any]:
    """The stored rows of a scan, at most `limit`, batch by batch as the store hands them over."""
    rows = 0
    with store.scan(table, scan) as scanner:
        for batch in scanner:
            for stored in batch:
                yield stored
                rows += 1
                if limit is not None and rows >= limit:
                    return


def embedded_scan(job: dict) -> dict:
    from kijirest.store.embedded import EmbeddedStore

    store = EmbeddedStore(job["path"])
    table = data.open_bench_catalog(store).instances[data.INSTANCE].tables[data.TABLE]
    decoders = _decoders(table)
    rows = cells = 0
    limit = job.get("limit")
    t0 = time.perf_counter()
    for _key, row_cells in _scanned(store, table.hbase_name, Scan(batch_size=1000), limit):
        for family, qualifier, _ts, value in row_cells:
            decoders[(family, qualifier)](value)
            cells += 1
        rows += 1
    seconds = time.perf_counter() - t0
    store.close()
    return {"rows": rows, "cells": cells, "seconds": seconds, "rows_per_s": rows / seconds}


def store_scan(job: dict) -> dict:
    """The gateway's own store scan in one process, no HTTP: `stage` "fetch" (HBaseStore.scan
    only: Thrift 2 + tuples), "decode" (+ ColumnCodec.decode_cell of every cell) or "rows" (+ the
    gateway's RowReader and orjson, i.e. everything a row costs except the event loop and the
    socket). Splits the gateway's per-row cost into its parts."""
    from kijirest.store.base import ReadOptions

    if job.get("store") == "embedded":
        from kijirest.store.embedded import EmbeddedStore

        store: Any = EmbeddedStore(job["path"])
    else:
        from kijirest.store.hbase import HBaseStore

        store = HBaseStore(job["host"], job["port"], job["thrift2_port"])
    table = data.open_bench_catalog(store).instances[data.INSTANCE].tables[data.TABLE]
    stage = job["stage"]
    limit = job.get("limit")
    decoders = _decoders(table)
    reader = table.reader
    dumps = orjson.dumps
    if "time_range" in job:  # versions=all inside a time range
        read = ReadOptions(max_versions=None, time_range=tuple(job["time_range"]))  # type: ignore[arg-type]
    else:
        read = ReadOptions(max_versions=1)
    scan = Scan(read=read, batch_size=1000, first_batch_size=1)
    rows = cells = 0
    nbytes = 0
    t0 = time.perf_counter()
    for stored in _scanned(store, table.hbase_name, scan, limit):
        if stage == "decode":
            for family, qualifier, _ts, value in stored[1]:
                decoders[(family, qualifier)](value)
        elif stage == "rows":
            nbytes += len(dumps(reader.row(stored))) + 2
        cells += len(stored[1])
        rows += 1
    seconds = time.perf_counter() - t0
    store.close()
    return {"rows": rows, "cells": cells, "bytes": nbytes, "seconds": seconds, "rows_per_s": rows / seconds}


JOBS = {
    "hbase_scan": hbase_scan,
    "hbase_write": hbase_write,
    "embedded_scan": embedded_scan,
    "store_scan": store_scan,
}


def main(argv: list[str]) -> int:
    job = orjson.loads(argv[1] if len(argv) > 1 and argv[1] != "-" else sys.stdin.buffer.read())
    try:
        result = JOBS[job["kind"]](job)
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
