"""The benchmark data set: what every row holds, its exact bytes, and the loaders.

Row `i` (0 <= i < N) of `bench/events` has entity ID `["user%08d" % (i // 4), i]` and five cells, each
in three versions (timestamps `VERSION_TS`):

| column | schema | value of version v |
|---|---|---|
| `info:name` | `"string"` | `"Name <i> v<v>"` |
| `info:email` | `"string"` | `"user<i>.<v>@example.com"` |
| `info:score` | `"long"` | `i * 10 + v` |
| `info:profile` | record `bench.Profile` | `{"id": i, "city": .., "nickname": .., "level": v}` |
| `tags:t<i % 16>` | map family, `"string"` | `"tag <i> <v>"` |

`bench.Profile`'s `nickname` is a nested union `["null", "string"]` (null for every third row).

All cells use UID storage. The bytes come from the gateway's own encoders (`kijirest.cells`,
`kijirest.entity_id`, the schema table), so what the loaders write is what a POST would write.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kijirest.catalog import Catalog, TableContext, open_catalog
from kijirest.primitives import encode_varint
from kijirest.store.base import Store

LAYOUTS = Path(__file__).resolve().parent / "layouts"
INSTANCE = "bench"
TABLE = "events"
WRITE_TABLE = "writes"
T0 = 1_600_000_000_000  # ms; fixed, so reloads are idempotent
VERSION_TS = (T0, T0 + 1_000, T0 + 2_000)
ROWS_PER_USER = 4
TAGS = 16
CITIES = ("Alexandria", "Antioch", "Seleucia", "Pergamon", "Rhodes", "Babylon", "Susa", "Ecbatana")
#: bumped whenever the rows change, so a marker of an older load is not trusted
DATASET_VERSION = 1
#: the HBase table that records completed loads (not a Kiji table)
META_TABLE = "kijirest_bench_meta"


def entity_id(i: int) -> list:
    return [f"user{i // ROWS_PER_USER:08d}", i]


def row_values(i: int, v: int) -> list[tuple[str, str, Any]]:
    """The (family, qualifier, Avro JSON value) of row i's version v (0 = oldest)."""
    nickname = None if i % 3 == 0 else {"string": f"nick{i}"}
    return [
        ("info", "name", f"Name {i} v{v}"),
        ("info", "email", f"user{i}.{v}@example.com"),
        ("info", "score", i * 10 + v),
        ("info", "profile", {"id": i, "city": CITIES[i % len(CITIES)], "nickname": nickname, "level": v}),
        ("tags", f"t{i % TAGS}", f"tag {i} {v}"),
    ]


def open_bench_catalog(store: Store) -> Catalog:
    """The gateway's catalog of bench/layouts on `store`: creates the tables and schema table
    exactly as `kijirest serve` does (blocking)."""
    return open_catalog(store, str(LAYOUTS), (INSTANCE,))


@dataclass
class _ColumnEncoder:
    family: bytes
    qualifier: bytes
    prefix: bytes  # varint(uid) of the writer schema
    encode: Callable[[Any], bytes]


class RowEncoder:
    """Row index -> (row key, cells) with the gateway's encoders; per-column work precomputed."""

    def __init__(self, table: TableContext) -> None:
        self.table = table
        self._keys = table.key_codec
        self._columns: dict[tuple[str, str], _ColumnEncoder] = {}
        self._map_family: dict[str, Any] = {}

    def _column(self, family: str, qualifier: str) -> _ColumnEncoder:
        enc = self._columns.get((family, qualifier))
        if enc is None:
            column_names = self.table.column_names
            spec = column_names.cell_spec(family, qualifier)
            codec = self.table.codec(spec)
            writer = codec.default_writer
            uid = self.table.schemas.get_or_create(writer)  # registers the record schema once
            hf, hq = column_names.hbase_column(family, qualifier)
            enc = _ColumnEncoder(
                hf, hq, encode_varint(uid), lambda value, w=writer, c=codec: c.encode_datum(value, w)
            )
            self._columns[(family, qualifier)] = enc
        return enc

    def key(self, i: int) -> bytes:
        return self._keys.encode(entity_id(i))

    def cells(self, i: int, versions: tuple[int, ...] = (0, 1, 2)) -> list[tuple[bytes, bytes, int, bytes]]:
        """Every cell of row i (store Cell tuples), newest version first per column."""
        out = []
        for v in sorted(versions, reverse=True):
            ts = VERSION_TS[v]
            for family, qualifier, value in row_values(i, v):
                enc = self._column(family, qualifier)
                out.append((enc.family, enc.qualifier, ts, enc.prefix + enc.encode(value)))
        out.sort(key=lambda c: (c[0], c[1], -c[2]))
        return out

    def version_mutations(self, i: int, v: int) -> dict[bytes, bytes]:
        """happybase `put` data of row i's version v: {b"family:qualifier": cell bytes}."""
        out = {}
        for family, qualifier, value in row_values(i, v):
            enc = self._column(family, qualifier)
            out[enc.family + b":" + enc.qualifier] = enc.prefix + enc.encode(value)
        return out


def post_row(i: int, v: int = 2, ts: int | None = None) -> dict:
    """Row i as a POST body row (the API shape), all cells at one timestamp."""
    cells: dict[str, dict[str, list]] = {}
    for family, qualifier, value in row_values(i, v):
        cell = {"value": value, "timestamp": VERSION_TS[v] if ts is None else ts}
        cells.setdefault(family, {})[qualifier] = [cell]
    return {"entityId": entity_id(i), "cells": cells}


def marker_key(store_kind: str, rows: int) -> str:
    return f"{store_kind}:{INSTANCE}.{TABLE}:v{DATASET_VERSION}:{rows}"


# -- HBase ------------------------------------------------------------------------------------------


def hbase_loaded_rows(host: str, port: int) -> int:
    """Rows of the last completed HBase load of this data set version (0 when none)."""
    import happybase

    conn = happybase.Connection(host, port, timeout=60_000)
    try:
        if META_TABLE.encode() not in conn.tables():
            return 0
        row = conn.table(META_TABLE).row(f"{INSTANCE}.{TABLE}".encode())
        info = orjson.loads(row[b"m:load"]) if b"m:load" in row else {}
        return int(info.get("rows", 0)) if info.get("version") == DATASET_VERSION else 0
    finally:
        conn.close()


def _hbase_mark(host: str, port: int, rows: int, seconds: float) -> None:
    import happybase

    conn = happybase.Connection(host, port, timeout=60_000)
    try:
        if META_TABLE.encode() not in conn.tables():
            conn.create_table(META_TABLE, {"m": {"max_versions": 1}})
        info = {"rows": rows, "version": DATASET_VERSION, "seconds": round(seconds, 1), "at": time.time()}
        conn.table(META_TABLE).put(f"{INSTANCE}.{TABLE}".encode(), {b"m:load": orjson.dumps(info)})
    finally:
        conn.close()


def hbase_clear_mark(host: str, port: int) -> None:
    import happybase

    conn = happybase.Connection(host, port, timeout=60_000)
    try:
        if META_TABLE.encode() in conn.tables():
            conn.table(META_TABLE).delete(f"{INSTANCE}.{TABLE}".encode())
    finally:
        conn.close()


def load_hbase(
    encoder: RowEncoder,
    host: str,
    port: int,
    rows: int,
    *,
    start: int = 0,
    chunk: int = 1000,
    senders: int = 2,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Write rows [start, rows) with raw happybase batches (one mutateRowsTs per version per chunk,
    since Thrift 1 takes one timestamp per call); `senders` threads, each with its own connection,
    send while the main thread encodes. Returns the seconds it took."""
    import happybase

    table_name = encoder.table.hbase_name
    work: queue.Queue = queue.Queue(maxsize=senders * 2)
    errors: list[BaseException] = []

    def send() -> None:
        conn = happybase.Connection(host, port, timeout=120_000)
        try:
            table = conn.table(table_name)
            while True:
                item = work.get()
                if item is None:
                    return
                if errors:
                    continue
                try:
                    for ts, puts in item:
                        with table.batch(timestamp=ts) as batch:
                            for key, data in puts:
                                batch.put(key, data)
                except BaseException as exc:  # reported by the main thread
                    errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=send, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    done = 0
    try:
        for first in range(start, rows, chunk):
            if errors:
                break
            ids = range(first, min(rows, first + chunk))
            keys = [encoder.key(i) for i in ids]
            item = [
                (
                    VERSION_TS[v],
                    [(k, encoder.version_mutations(i, v)) for k, i in zip(keys, ids, strict=True)],
                )
                for v in range(len(VERSION_TS))
            ]
            work.put(item)
            done += len(ids)
            if progress is not None:
                progress(done)
    finally:
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    seconds = time.perf_counter() - t0
    _hbase_mark(host, port, rows, seconds)
    return seconds


# -- embedded ---------------------------------------------------------------------------------------


def embedded_loaded_rows(path: Path) -> int:
    marker = path / "bench-load.json"
    try:
        info = orjson.loads(marker.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return 0
    return int(info.get("rows", 0)) if info.get("version") == DATASET_VERSION else 0


def load_embedded(
    store: Store,
    encoder: RowEncoder,
    path: Path,
    rows: int,
    *,
    chunk: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Write rows [0, rows) into the embedded store, one transaction per chunk."""
    table = encoder.table.hbase_name
    t0 = time.perf_counter()
    for start in range(0, rows, chunk):
        ids = range(start, min(rows, start + chunk))
        store.put_rows(table, [(encoder.key(i), encoder.cells(i)) for i in ids])
        if progress is not None:
            progress(ids[-1] + 1)
    seconds = time.perf_counter() - t0
    info = {"rows": rows, "version": DATASET_VERSION, "seconds": round(seconds, 1), "at": time.time()}
    (path / "bench-load.json").write_bytes(orjson.dumps(info))
    return seconds


# -- row choice -------------------------------------------------------------------------------------


def key_order_pick(encoder: RowEncoder, rows: int, fraction: float) -> int:
    """The row index whose key sits at `fraction` of the table's key order (for a wildcard scan
    whose only match lies far into the table)."""
    keys = sorted((encoder.key(i), i) for i in range(rows))
    return keys[min(rows - 1, int(rows * fraction))][1]


def sample_ids(rows: int, count: int, seed: int = 7) -> list[int]:
    """Deterministic pseudo-random row indexes (point gets)."""
    out = []
    for n in range(count):
        h = hashlib.blake2b(f"{seed}:{n}".encode(), digest_size=8).digest()
        out.append(int.from_bytes(h, "big") % rows)
    return out


def iter_chunks(seq: list, size: int) -> Iterator[list]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
