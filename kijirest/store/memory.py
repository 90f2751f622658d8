"""The in-process store: HBase's data model in Python dicts, for tests and demos.

Its answers follow the rules of `kijirest.store.semantics` (shared with the embedded store);
what is its own is where the cells live: per row, versions per column (newest first) and the
row's delete markers. Versions beyond a family's max_versions are pruned on write (the oldest
first). HBase does the same at flush, so reads that differ (a time range reaching below the kept
versions) are undefined on HBase too. Versions a delete marker hides for good are dropped at once.

One lock guards everything; a scan takes it once per batch, so writers interleave with scans.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Iterator, Sequence

from kijirest.primitives import now_ms
from kijirest.store.base import (
    DEFAULT_READ,
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

# -- the store --------------------------------------------------------------------------------------


class _Row:
    """One stored row: versions per column (newest first) and its delete markers."""

    __slots__ = ("col_marks", "columns", "fam_marks")

    def __init__(self) -> None:
        self.columns: dict[bytes, dict[bytes, list[tuple[int, bytes]]]] = {}
        self.fam_marks: dict[bytes, int] = {}
        self.col_marks: dict[tuple[bytes, bytes], int] = {}

    def cells(self) -> Iterator[Cell]:
        for fam in sorted(self.columns):
            quals = self.columns[fam]
            for qual in sorted(quals):
                for ts, value in quals[qual]:
                    yield (fam, qual, ts, value)

    def markers(self) -> Markers | None:
        if self.fam_marks or self.col_marks:
            return self.fam_marks, self.col_marks
        return None

    def put(self, family: bytes, qualifier: bytes, ts: int, value: bytes, max_versions: int) -> None:
        versions = self.columns.setdefault(family, {}).setdefault(qualifier, [])
        for i, (old_ts, _) in enumerate(versions):
            if old_ts == ts:
                versions[i] = (ts, value)
                return
            if old_ts < ts:
                versions.insert(i, (ts, value))
                break
        else:
            versions.append((ts, value))
        del versions[max_versions:]

    def drop_upto(self, family: bytes, qualifier: bytes | None, ts: int) -> None:
        """Physically remove versions a marker hides for good (no compaction to wait for)."""
        quals = self.columns.get(family)
        if not quals:
            return
        for qual in [qualifier] if qualifier is not None else list(quals):
            versions = quals.get(qual)
            if versions is None:
                continue
            kept = [v for v in versions if v[0] > ts]
            if kept:
                quals[qual] = kept
            else:
                del quals[qual]
        if not quals:
            del self.columns[family]


class _Table:
    __slots__ = ("families", "keys", "rows")

    def __init__(self, families: dict[bytes, FamilySpec]) -> None:
        self.families = families
        self.rows: dict[bytes, _Row] = {}
        self.keys: list[bytes] = []  # sorted

    def row_for_write(self, key: bytes) -> _Row:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = _Row()
            bisect.insort(self.keys, key)
        return row


class MemoryStore(Store):
    """A thread-safe in-process store (nothing survives the process)."""

    blocking = False

    def __init__(self, clock: Callable[[], int] = now_ms) -> None:
        self._lock = threading.RLock()
        self._tables: dict[str, _Table] = {}
        self._clock = clock

    def _table(self, table: str) -> _Table:
        t = self._tables.get(table)
        if t is None:
            raise TableNotFound(f"table {table!r} not found", table)
        return t

    # -- tables ---------------------------------------------------------------------------------
    def create_table(self, table: str, families: Sequence[FamilySpec]) -> bool:
        check_table_name(table)
        specs = check_families(families)
        with self._lock:
            if table in self._tables:
                return False
            self._tables[table] = _Table(specs)
            return True

    def list_tables(self) -> list[str]:
        with self._lock:
            return sorted(self._tables)

    def table_families(self, table: str) -> dict[bytes, FamilySpec]:
        with self._lock:
            return dict(self._table(table).families)

    def delete_table(self, table: str) -> None:
        with self._lock:
            self._table(table)
            del self._tables[table]

    # -- writes ---------------------------------------------------------------------------------
    def put_row(self, table: str, key: bytes, cells: Sequence[Cell]) -> None:
        check_key(key)
        with self._lock:
            t = self._table(table)
            check_cells(table, t.families, cells)
            if not cells:
                return
            row = t.row_for_write(key)
            fams = t.families
            for family, qualifier, ts, value in cells:
                row.put(family, qualifier, ts, value, fams[family].max_versions)

    def increment(self, table: str, key: bytes, family: bytes, qualifier: bytes, amount: int) -> int:
        check_key(key)
        if type(qualifier) is not bytes:
            raise TypeError(f"qualifier must be bytes, not {type(qualifier).__name__}")
        with self._lock:
            t = self._table(table)
            if family not in t.families:
                raise StoreError(f"table {table!r} has no column family {family!r}")
            now = self._clock()
            row = t.rows.get(key)
            current = None
            ts = now
            if row is not None:
                read = ReadOptions(columns=(ColumnSelector(family, qualifier),))
                plan = plan_read(table, t.families, read, now)
                latest = visible_cells(plan, row.cells(), row.markers())
                if latest:
                    current = latest[0][3]
                    ts = max(now, latest[0][2] + 1)  # HBase: a new version, never behind the old one
            value, raw = add_counter(table, current, amount)
            t.row_for_write(key).put(family, qualifier, ts, raw, t.families[family].max_versions)
            return value

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
        if columns is not None:
            columns = list(columns)
        with self._lock:
            t = self._table(table)
            if columns is not None:
                check_selectors(table, t.families, columns)
            at = self._clock() if timestamp is None else timestamp
            row = t.row_for_write(key)
            for family, qualifier in delete_targets(t.families, row.columns, columns):
                if qualifier is None:
                    if row.fam_marks.get(family, -1) < at:
                        row.fam_marks[family] = at
                else:
                    if row.col_marks.get((family, qualifier), -1) < at:
                        row.col_marks[(family, qualifier)] = at
                row.drop_upto(family, qualifier, at)

    # -- reads ----------------------------------------------------------------------------------
    def get_rows(self, table: str, keys: Sequence[bytes], read: ReadOptions = DEFAULT_READ) -> list[Row]:
        for key in keys:
            check_key(key)
        with self._lock:
            t = self._table(table)
            plan = plan_read(table, t.families, read, self._clock())
            out: list[Row] = []
            for key in keys:
                row = t.rows.get(key)
                out.append((key, [] if row is None else visible_cells(plan, row.cells(), row.markers())))
            return out

    def scan(self, table: str, scan: Scan) -> RowScanner:
        check_scan(scan)
        regex = compile_row_regex(scan.row_regex)
        with self._lock:
            t = self._table(table)
            plan = plan_read(table, t.families, scan.read, self._clock())
        return _MemoryScanner(self._lock, t, plan, scan, regex)


class _MemoryScanner(RowScanner):
    def __init__(
        self, lock: threading.RLock, table: _Table, plan: ReadPlan, scan: Scan, regex: re.Pattern[str] | None
    ) -> None:
        self._lock = lock
        self._table = table
        self._plan = plan
        self._next = scan.start
        self._stop = scan.stop or None  # b"" is an open end, as in HBase
        self._regex = regex
        self._sizes = scan.batch_sizes()
        self._closed = False

    def __iter__(self) -> Iterator[list[Row]]:
        while not self._closed:
            batch = self._read_batch()
            if batch is None:
                return
            if batch:
                yield batch

    def _read_batch(self) -> list[Row] | None:
        """Up to batch_size rows from self._next on; None at the end."""
        out: list[Row] = []
        regex = self._regex
        stop = self._stop
        self._batch = next(self._sizes)
        with self._lock:
            keys = self._table.keys
            rows = self._table.rows
            i = bisect.bisect_left(keys, self._next)
            scanned = 0
            while i < len(keys) and len(out) < self._batch and scanned < 10 * self._batch:
                key = keys[i]
                if stop is not None and key >= stop:
                    self._closed = True
                    break
                i += 1
                scanned += 1
                if regex is not None and regex.fullmatch(key.decode("latin-1")) is None:
                    continue
                row = rows[key]
                cells = visible_cells(self._plan, row.cells(), row.markers())
                if cells:
                    out.append((key, cells))
            else:
                if i >= len(keys):
                    self._closed = True
            if i < len(keys):
                self._next = keys[i]
        if self._closed and not out:
            return None
        return out

    def close(self) -> None:
        self._closed = True
