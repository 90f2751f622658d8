"""The embedded store: durable tables in one SQLite database under a local directory.

Why SQLite (the stdlib `sqlite3` module) and not an LSM engine or files of our own:
- it ships with Python, so the gateway's default store needs no native dependency;
- BLOBs compare with memcmp, shorter first on a tie: exactly HBase's unsigned byte order, so row
  keys, families and qualifiers sort as in HBase without any key encoding;
- a WITHOUT ROWID table clustered on (table, row, family, qualifier, ts DESC) is HBase's own cell
  order: a scan is one B-tree range walk that hands back cells already sorted, newest first;
- WAL mode lets readers (one connection per thread) run beside the single writer, and a reader
  never blocks a writer; scans read a bounded batch per statement (keyset pagination from the next
  row key), so no read transaction stays open between batches;
- transactions give atomic rows: `put_row` is all cells or none, also across a crash.

Durability: `synchronous=FULL`, so a write is on disk (WAL fsynced) before `put_row` returns and
survives power loss, not only a killed process. Its cost, one fsync per commit, is shared by
concurrent writers through group commit: writes queue, one thread commits everything queued in
one transaction with a savepoint per write (a failed write rolls back alone and raises in its
caller; if the commit fails, every write of the group raises and none is acknowledged).

Semantics are those of `kijirest.store.semantics` (shared with the memory store: read plan,
visibility filter, delete targets, counters):
delete markers are kept as rows of `marks` and applied on read; cells they hide for good are
removed at once; versions beyond a family's max_versions are pruned on write.

The catalog (table names, ids, families) is cached in the process: one process writes a store at
a time (others may read tables that existed when they opened it).
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from kijirest.primitives import INT32_MAX, now_ms, successor
from kijirest.store.base import (
    DEFAULT_READ,
    LATEST,
    Cell,
    ColumnSelector,
    FamilySpec,
    ReadOptions,
    Row,
    RowScanner,
    Scan,
    Store,
    StoreError,
    TableNotFound,
    check_cells,
    check_families,
    check_key,
    check_scan,
    check_selectors,
    check_table_name,
    check_timestamp,
)
from kijirest.store.semantics import (
    Markers,
    ReadPlan,
    add_counter,
    compile_row_regex,
    delete_targets,
    plan_read,
    visible_cells,
)

DB_FILE = "store.sqlite3"
_SCHEMA_VERSION = 1
_NO_PRUNE = INT32_MAX  # a family keeping "all" versions (Kiji's INT_MAX) is never pruned

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tables (
    name TEXT PRIMARY KEY,
    id INTEGER NOT NULL UNIQUE,
    families BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    t INTEGER NOT NULL,
    row BLOB NOT NULL,
    fam BLOB NOT NULL,
    qual BLOB NOT NULL,
    ts INTEGER NOT NULL,
    val BLOB NOT NULL,
    PRIMARY KEY (t, row, fam, qual, ts DESC)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS marks (
    t INTEGER NOT NULL,
    row BLOB NOT NULL,
    fam BLOB NOT NULL,
    kind INTEGER NOT NULL,  -- 0: whole family, 1: one column (qual)
    qual BLOB NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (t, row, fam, kind, qual)
) WITHOUT ROWID;
"""

_PUT = "INSERT OR REPLACE INTO cells (t, row, fam, qual, ts, val) VALUES (?, ?, ?, ?, ?, ?)"
_PRUNE = (
    "DELETE FROM cells WHERE t = ?1 AND row = ?2 AND fam = ?3 AND qual = ?4 AND ts <= "
    "(SELECT ts FROM cells WHERE t = ?1 AND row = ?2 AND fam = ?3 AND qual = ?4 "
    "ORDER BY ts DESC LIMIT 1 OFFSET ?5)"
)
_MARK = (
    "INSERT INTO marks (t, row, fam, kind, qual, ts) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (t, row, fam, kind, qual) DO UPDATE SET ts = max(ts, excluded.ts)"
)
_DROP_FAMILY = "DELETE FROM cells WHERE t = ? AND row = ? AND fam = ? AND ts <= ?"
_DROP_COLUMN = "DELETE FROM cells WHERE t = ? AND row = ? AND fam = ? AND qual = ? AND ts <= ?"
_ROW_MARKS = "SELECT fam, kind, qual, ts FROM marks WHERE t = ? AND row = ?"
_RANGE_MARKS = "SELECT row, fam, kind, qual, ts FROM marks WHERE t = ? AND row >= ? AND row <= ?"


def _family_to_json(spec: FamilySpec) -> dict[str, Any]:
    return {
        "name": spec.name.hex(),
        "max_versions": spec.max_versions,
        "ttl_seconds": spec.ttl_seconds,
        "in_memory": spec.in_memory,
        "compression": spec.compression,
        "bloom_filter": spec.bloom_filter,
        "block_size": spec.block_size,
    }


def _family_from_json(d: dict[str, Any]) -> FamilySpec:
    return FamilySpec(
        name=bytes.fromhex(d["name"]),
        max_versions=d["max_versions"],
        ttl_seconds=d["ttl_seconds"],
        in_memory=d["in_memory"],
        compression=d["compression"],
        bloom_filter=d["bloom_filter"],
        block_size=d["block_size"],
    )


class _TableInfo:
    __slots__ = ("families", "id", "name")

    def __init__(self, name: str, table_id: int, families: dict[bytes, FamilySpec]) -> None:
        self.name = name
        self.id = table_id
        self.families = families


class _Job:
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


def _markers(rows: Sequence[tuple[bytes, int, bytes, int]]) -> Markers | None:
    if not rows:
        return None
    fam_marks: dict[bytes, int] = {}
    col_marks: dict[tuple[bytes, bytes], int] = {}
    for fam, kind, qual, ts in rows:
        if kind == 0:
            fam_marks[fam] = ts
        else:
            col_marks[(fam, qual)] = ts
    return fam_marks, col_marks


class _Query:
    """A read resolved to SQL once per get or scan: WHERE clause, parameters, and whether the
    visibility filter must look at every row (else only at rows holding delete markers)."""

    __slots__ = ("filter_all", "newest_only", "params", "plan", "where")

    def __init__(self, info: _TableInfo, plan: ReadPlan, read: ReadOptions) -> None:
        self.plan = plan
        where: list[str] = []
        params: list[Any] = []
        lows = {f.low for f in plan.families.values()}
        low = min(lows, default=0)
        if low > 0:
            where.append("ts >= ?")
            params.append(low)
        if plan.high < LATEST:
            where.append("ts < ?")
            params.append(plan.high)
        if read.columns is not None:
            ors: list[str] = []
            for name, fread in plan.families.items():
                if fread.whole:
                    ors.append("fam = ?")
                    params.append(name)
                    continue
                for qual in sorted(fread.qualifiers):
                    ors.append("(fam = ? AND qual = ?)")
                    params.extend((name, qual))
                for prefix in fread.prefixes:
                    end = successor(prefix)
                    if end is None:
                        ors.append("(fam = ? AND qual >= ?)")
                        params.extend((name, prefix))
                    else:
                        ors.append("(fam = ? AND qual >= ? AND qual < ?)")
                        params.extend((name, prefix, end))
            where.append("(" + " OR ".join(ors) + ")")
        self.where = "".join(" AND " + w for w in where)
        self.params = params
        # Stored versions never exceed a family's max_versions (pruned on write), so the version
        # cap only needs Python when fewer versions than the family keeps are requested.
        # A latest-only read with one time range for every family (the usual GET) lets SQLite pick
        # each column's newest version: Python then sees one cell per column instead of every
        # stored version. Markers still apply to what it picks, and that is enough: a marker hides
        # every version at or before its timestamp, so if it hides the newest version in the range
        # it hides all the older ones too.
        self.newest_only = len(lows) <= 1 and all(f.cap == 1 for f in plan.families.values())
        self.filter_all = not self.newest_only and (
            len(lows) > 1
            or any(f.cap < info.families[name].max_versions for name, f in plan.families.items())
        )

    def cells_sql(self, rows: str, scan: bool) -> str:
        """The cells of the rows matching `rows` (a condition on `row`; its parameters come after
        `t` and before `params`), in HBase order; a scan's also name their row, last."""
        row = ", row" if scan else ""
        by = "row, fam, qual" if scan else "fam, qual"
        ts, tail = (
            ("max(ts)", f" GROUP BY {by} ORDER BY {by}")
            if self.newest_only
            else ("ts", f" ORDER BY {by}, ts DESC")
        )
        return f"SELECT fam, qual, {ts}, val{row} FROM cells WHERE t = ? AND {rows}{self.where}{tail}"


class EmbeddedStore(Store):
    """A durable store in the directory `path` (created if missing), file `store.sqlite3`."""

    blocking = True

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], int] = now_ms) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._db = str(self.path / DB_FILE)
        self._clock = clock
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self._cond = threading.Condition()
        self._pending: list[_Job] = []
        self._writing = False
        self._wconn = self._connect()
        try:
            self._wconn.executescript(_SCHEMA)
            row = self._wconn.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()
            if row is None:
                self._wconn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (_SCHEMA_VERSION,))
                self._wconn.execute("INSERT INTO meta VALUES ('next_table_id', 1)")
            elif row[0] != _SCHEMA_VERSION:
                raise StoreError(f"{self._db}: store format {row[0]}, this kijirest reads {_SCHEMA_VERSION}")
        except sqlite3.Error as e:
            self.close()
            raise StoreError(f"cannot open embedded store {self._db}: {e}") from e
        self._tables: dict[str, _TableInfo] = {}
        self._load_catalog()

    # -- connections --------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._db, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA cache_size = -32768")  # 32 MiB of page cache per connection
        conn.execute("PRAGMA mmap_size = 268435456")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (sqlite connections are not shared between threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the embedded store is closed")
            try:
                conn = self._local.conn = self._connect()
            except sqlite3.Error as e:
                raise StoreError(f"embedded store {self._db}: {e}") from e
        return conn

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _load_catalog(self) -> None:
        tables = {}
        for name, table_id, fams in self._wconn.execute("SELECT name, id, families FROM tables"):
            specs = [_family_from_json(d) for d in orjson.loads(fams)]
            tables[name] = _TableInfo(name, table_id, {s.name: s for s in specs})
        self._tables = tables

    def _table(self, table: str) -> _TableInfo:
        info = self._tables.get(table)
        if info is None:
            raise TableNotFound(f"table {table!r} not found", table)
        return info

    # -- the writer: group commit -----------------------------------------------------------------
    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `fn(conn)` in a write transaction, shared with whatever other writes are queued."""
        if self._closed:
            raise StoreError("the embedded store is closed")
        job = _Job(fn)
        with self._cond:
            self._pending.append(job)
            while not job.done and self._writing:
                self._cond.wait()
            leader = not job.done
            if leader:
                self._writing = True
                jobs, self._pending = self._pending, []
        if leader:
            try:
                self._commit_group(jobs)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        return job.result

    def _commit_group(self, jobs: list[_Job]) -> None:
        conn = self._wconn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for job in jobs:
                    conn.execute("SAVEPOINT w")
                    try:
                        job.result = job.fn(conn)
                    except BaseException as e:
                        conn.execute("ROLLBACK TO w")
                        job.error = e if not isinstance(e, sqlite3.Error) else StoreError(str(e))
                    conn.execute("RELEASE w")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException as e:
            err = StoreError(f"embedded store write failed, nothing written: {e}")
            for job in jobs:
                job.result = None
                job.error = err
            try:
                self._load_catalog()  # table creates/deletes of the group did not happen
            except sqlite3.Error:
                pass
        finally:
            for job in jobs:
                job.done = True

    # -- tables ---------------------------------------------------------------------------------
    def create_table(self, table: str, families: Sequence[FamilySpec]) -> bool:
        check_table_name(table)
        specs = check_families(families)
        blob = orjson.dumps([_family_to_json(s) for s in specs.values()])

        def run(conn: sqlite3.Connection) -> bool:
            if table in self._tables:
                return False
            (table_id,) = conn.execute("SELECT v FROM meta WHERE k = 'next_table_id'").fetchone()
            conn.execute("UPDATE meta SET v = v + 1 WHERE k = 'next_table_id'")
            conn.execute("INSERT INTO tables (name, id, families) VALUES (?, ?, ?)", (table, table_id, blob))
            self._tables = {**self._tables, table: _TableInfo(table, table_id, specs)}  # copy on write
            return True

        return self._write(run)

    def list_tables(self) -> list[str]:
        return sorted(self._tables)

    def table_families(self, table: str) -> dict[bytes, FamilySpec]:
        return dict(self._table(table).families)

    def delete_table(self, table: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            info = self._table(table)
            conn.execute("DELETE FROM tables WHERE id = ?", (info.id,))
            conn.execute("DELETE FROM cells WHERE t = ?", (info.id,))
            conn.execute("DELETE FROM marks WHERE t = ?", (info.id,))
            self._tables = {k: v for k, v in self._tables.items() if k != table}

        self._write(run)

    # -- writes ---------------------------------------------------------------------------------
    def put_row(self, table: str, key: bytes, cells: Sequence[Cell]) -> None:
        self.put_rows(table, [(key, cells)])

    def put_rows(self, table: str, rows: Sequence[tuple[bytes, Sequence[Cell]]]) -> None:
        """All the rows in one transaction (one fsync): all of them are written or none."""
        info = self._table(table)
        t = info.id
        values = []
        prune = []
        for key, cells in rows:
            check_key(key)
            check_cells(table, info.families, cells)
            values.extend((t, key, f, q, ts, v) for f, q, ts, v in cells)
            seen = set()
            for f, q, _, _ in cells:
                keep = info.families[f].max_versions
                if keep < _NO_PRUNE and (f, q) not in seen:
                    seen.add((f, q))
                    prune.append((t, key, f, q, keep))
        if not values:
            return

        def run(conn: sqlite3.Connection) -> None:
            if self._tables.get(table) is not info:
                raise TableNotFound(f"table {table!r} not found", table)
            conn.executemany(_PUT, values)
            if prune:
                conn.executemany(_PRUNE, prune)

        self._write(run)

    def increment(self, table: str, key: bytes, family: bytes, qualifier: bytes, amount: int) -> int:
        check_key(key)
        if type(qualifier) is not bytes:
            raise TypeError(f"qualifier must be bytes, not {type(qualifier).__name__}")
        info = self._table(table)
        if family not in info.families:
            raise StoreError(f"table {table!r} has no column family {family!r}")
        add_counter(table, None, amount)  # checks the amount before queueing
        keep = info.families[family].max_versions
        read = ReadOptions(columns=(ColumnSelector(family, qualifier),))

        def run(conn: sqlite3.Connection) -> int:
            if self._tables.get(table) is not info:
                raise TableNotFound(f"table {table!r} not found", table)
            now = self._clock()
            plan = plan_read(table, info.families, read, now)
            cells = conn.execute(
                "SELECT fam, qual, ts, val FROM cells WHERE t = ? AND row = ? AND fam = ? AND qual = ?",
                (info.id, key, family, qualifier),
            ).fetchall()
            latest = visible_cells(plan, cells, _markers(conn.execute(_ROW_MARKS, (info.id, key)).fetchall()))
            current, ts = None, now
            if latest:
                current = latest[0][3]
                ts = max(now, latest[0][2] + 1)  # HBase: a new version, never behind the old one
            value, raw = add_counter(table, current, amount)
            conn.execute(_PUT, (info.id, key, family, qualifier, ts, raw))
            if keep < _NO_PRUNE:
                conn.execute(_PRUNE, (info.id, key, family, qualifier, keep))
            return value

        return self._write(run)

    def delete(
        self,
        table: str,
        key: bytes,
        columns: Sequence[ColumnSelector] | None = None,
        timestamp: int | None = None,
    ) -> None:
        check_key(key)
        if timestamp is not None:
            check_timestamp(timestamp)
        info = self._table(table)
        if columns is not None:
            columns = list(columns)
            check_selectors(table, info.families, columns)

        def run(conn: sqlite3.Connection) -> None:
            if self._tables.get(table) is not info:
                raise TableNotFound(f"table {table!r} not found", table)
            t = info.id
            at = self._clock() if timestamp is None else timestamp
            stored: dict[bytes, list[bytes]] = {}
            for sel in columns or ():
                if sel.qualifier is None and sel.prefix:
                    end = successor(sel.prefix)
                    sql = "SELECT DISTINCT qual FROM cells WHERE t = ? AND row = ? AND fam = ? AND qual >= ?"
                    args: tuple[Any, ...] = (t, key, sel.family, sel.prefix)
                    if end is not None:
                        sql += " AND qual < ?"
                        args += (end,)
                    stored.setdefault(sel.family, []).extend(q for (q,) in conn.execute(sql, args))
            for family, qualifier in delete_targets(info.families, stored, columns):
                if qualifier is None:
                    conn.execute(_MARK, (t, key, family, 0, b"", at))
                    conn.execute(_DROP_FAMILY, (t, key, family, at))
                else:
                    conn.execute(_MARK, (t, key, family, 1, qualifier, at))
                    conn.execute(_DROP_COLUMN, (t, key, family, qualifier, at))

        self._write(run)

    # -- reads ----------------------------------------------------------------------------------
    def get_rows(self, table: str, keys: Sequence[bytes], read: ReadOptions = DEFAULT_READ) -> list[Row]:
        for key in keys:
            check_key(key)
        info = self._table(table)
        query = _Query(info, plan_read(table, info.families, read, self._clock()), read)
        sql = query.cells_sql("row = ?", scan=False)
        conn = self._reader()
        out: list[Row] = []
        cache: dict[bytes, list[Cell]] = {}
        try:
            for key in keys:
                cells = cache.get(key)
                if cells is None:
                    markers = _markers(conn.execute(_ROW_MARKS, (info.id, key)).fetchall())
                    cells = conn.execute(sql, (info.id, key, *query.params)).fetchall()
                    if markers is not None or query.filter_all:
                        cells = visible_cells(query.plan, cells, markers)
                    cache[key] = cells
                out.append((key, list(cells)))
        except sqlite3.Error as e:
            raise StoreError(f"embedded store read failed: {e}") from e
        return out

    def scan(self, table: str, scan: Scan) -> RowScanner:
        check_scan(scan)
        regex = compile_row_regex(scan.row_regex)
        info = self._table(table)
        query = _Query(info, plan_read(table, info.families, scan.read, self._clock()), scan.read)
        return _EmbeddedScanner(self, info, query, scan, regex)


_ROW_OF_CELL = itemgetter(4)
_CELL = itemgetter(0, 1, 2, 3)


class _EmbeddedScanner(RowScanner):
    """Reads one batch per SQL statement, resuming at the next row key (no open transaction
    between batches, so a slow client holds nothing in the database)."""

    def __init__(
        self, store: EmbeddedStore, info: _TableInfo, query: _Query, scan: Scan, regex: re.Pattern[str] | None
    ) -> None:
        self._store = store
        self._info = info
        self._query = query
        self._next: bytes | None = scan.start
        self._stop = scan.stop or None  # b"" is an open end, as in HBase
        self._regex = regex
        self._sizes = scan.batch_sizes()
        self._sql = query.cells_sql("row >= ?" if self._stop is None else "row >= ? AND row < ?", scan=True)

    def __iter__(self) -> Iterator[list[Row]]:
        while self._next is not None:
            batch = self._read_batch()
            if batch:
                yield batch

    def _read_batch(self) -> list[Row]:
        start = self._next
        assert start is not None
        params: list[Any] = [self._info.id, start]
        if self._stop is not None:
            params.append(self._stop)
        params.extend(self._query.params)
        regex = self._regex
        limit = next(self._sizes)
        max_examined = 10 * limit + 1000
        rows: list[Row] = []
        examined = 0
        conn = self._store._reader()
        try:
            cur = conn.execute(self._sql, params)
            try:
                self._next = None
                for key, group in itertools.groupby(cur, _ROW_OF_CELL):
                    if len(rows) >= limit or examined >= max_examined:
                        self._next = key
                        break
                    examined += 1
                    if regex is not None and regex.fullmatch(key.decode("latin-1")) is None:
                        continue
                    rows.append((key, list(map(_CELL, group))))
            finally:
                cur.close()
            if rows:
                rows = self._apply_markers(conn, rows)
        except sqlite3.Error as e:
            self._next = None
            raise StoreError(f"embedded store scan failed: {e}") from e
        return rows

    def _apply_markers(self, conn: sqlite3.Connection, rows: list[Row]) -> list[Row]:
        marks: dict[bytes, list[tuple[bytes, int, bytes, int]]] = {}
        for row, fam, kind, qual, ts in conn.execute(_RANGE_MARKS, (self._info.id, rows[0][0], rows[-1][0])):
            marks.setdefault(row, []).append((fam, kind, qual, ts))
        filter_all = self._query.filter_all
        if not marks and not filter_all:
            return rows
        plan = self._query.plan
        out: list[Row] = []
        for key, cells in rows:
            m = marks.get(key)
            if m is not None or filter_all:
                cells = visible_cells(plan, cells, _markers(m) if m else None)
                if not cells:
                    continue
            out.append((key, cells))
        return out

    def close(self) -> None:
        self._next = None
