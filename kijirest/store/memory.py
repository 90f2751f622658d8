"""The in-process store: HBase's data model in Python dicts, for tests and demos.

It is also the reference model of the store semantics: the helpers here (argument checks, the
read plan and the per-row visibility filter) are shared with the embedded store, so both answer
exactly alike. The rules (base.py, encodings.md §5):

- a read keeps, per column, the newest versions *inside* the time range and the family TTL that no
  delete marker hides, at most min(requested, family max_versions) of them;
- delete markers are data: a marker "at T" on a family (a row delete places one on every family) or
  on a column hides every version with ts <= T, also versions written later with an older ts; a
  prefix delete places a column marker on every qualifier under the prefix that the row holds, as
  HBase clients (Kiji included) do it: read the qualifiers, delete each column;
- versions beyond a family's max_versions are pruned on write (the oldest first). HBase does the
  same at flush, so reads that differ (a time range reaching below the kept versions) are
  undefined on HBase too.

One lock guards everything; a scan takes it once per batch, so writers interleave with scans.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from kijirest.store.base import (
    FOREVER,
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
)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_MAX_KEY_LENGTH = 32767  # HBase's Short.MAX_VALUE row length limit
_TABLE_NAME = re.compile(r"(?:[A-Za-z0-9_]+:)?[A-Za-z0-9_][A-Za-z0-9_.\-]*")


#: the default of get_rows (ReadOptions is frozen, so one shared instance is safe)
DEFAULT_READ = ReadOptions()


def now_ms() -> int:
    """The store clock: milliseconds since the epoch (the HBase server clock's unit)."""
    return time.time_ns() // 1_000_000


# -- argument checks (shared with the embedded store) ---------------------------------------------


def check_table_name(table: str) -> None:
    """HBase's table-name rule, so a name that works here also works on HBase."""
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table) or table.startswith("."):
        raise ValueError(f"invalid table name {table!r}: use letters, digits, '_', '-', '.' (not first)")


def check_families(families: Sequence[FamilySpec]) -> dict[bytes, FamilySpec]:
    """Validate the families of a new table; returns them by name."""
    if not families:
        raise ValueError("a table needs at least one column family")
    out: dict[bytes, FamilySpec] = {}
    for spec in families:
        if not isinstance(spec, FamilySpec):
            raise TypeError(f"families must be FamilySpec, not {type(spec).__name__}")
        if not isinstance(spec.name, bytes) or not spec.name:
            raise ValueError(f"invalid family name {spec.name!r}: non-empty bytes required")
        if b":" in spec.name:
            raise ValueError(f"invalid family name {spec.name!r}: ':' is not allowed")
        if spec.name in out:
            raise ValueError(f"duplicate family {spec.name!r}")
        if spec.max_versions < 1:
            raise ValueError(f"family {spec.name!r}: max_versions must be >= 1, not {spec.max_versions}")
        if spec.ttl_seconds < 1:
            raise ValueError(f"family {spec.name!r}: ttl_seconds must be >= 1, not {spec.ttl_seconds}")
        out[spec.name] = spec
    return out


def check_key(key: bytes) -> None:
    if type(key) is not bytes:
        raise TypeError(f"row key must be bytes, not {type(key).__name__}")
    if not key:
        raise ValueError("row key must not be empty")
    if len(key) > _MAX_KEY_LENGTH:
        raise ValueError(f"row key is {len(key)} bytes long, the limit is {_MAX_KEY_LENGTH}")


def check_timestamp(ts: int) -> None:
    if type(ts) is not int:
        raise TypeError(f"timestamp must be int, not {type(ts).__name__}")
    if not 0 <= ts < LATEST:
        raise ValueError(f"timestamp {ts} out of range [0, 2^63-1)")


def check_cells(table: str, families: dict[bytes, FamilySpec], cells: Sequence[Cell]) -> None:
    """Check every cell before anything is written, so a bad cell writes nothing of the row."""
    for cell in cells:
        if type(cell) is not tuple or len(cell) != 4:
            raise TypeError(f"a cell is a (family, qualifier, timestamp, value) tuple, not {cell!r}")
        family, qualifier, ts, value = cell
        if type(family) is not bytes or family not in families:
            raise StoreError(f"table {table!r} has no column family {family!r}")
        if type(qualifier) is not bytes:
            raise TypeError(f"qualifier must be bytes, not {type(qualifier).__name__}")
        check_timestamp(ts)
        if type(value) is not bytes:
            raise TypeError(f"cell value must be bytes, not {type(value).__name__}")


def check_selectors(table: str, families: dict[bytes, FamilySpec], columns: Sequence[ColumnSelector]) -> None:
    """Selectors of existing families; an empty list is refused (HBase would read or delete the
    whole row for it, a caller meaning "nothing" would get everything)."""
    if not columns:
        raise ValueError("columns must hold at least one ColumnSelector (None means the whole row)")
    for sel in columns:
        if not isinstance(sel, ColumnSelector):
            raise TypeError(f"columns must be ColumnSelector, not {type(sel).__name__}")
        if sel.family not in families:
            raise StoreError(f"table {table!r} has no column family {sel.family!r}")


def check_scan(scan: Scan) -> None:
    if type(scan.start) is not bytes or (scan.stop is not None and type(scan.stop) is not bytes):
        raise TypeError("scan start and stop must be bytes")
    if type(scan.batch_size) is not int or scan.batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, not {scan.batch_size!r}")
    first = scan.first_batch_size
    if first is not None and (type(first) is not int or first < 1):
        raise ValueError(f"first_batch_size must be a positive int or None, not {first!r}")


def compile_row_regex(pattern: str | None) -> re.Pattern[str] | None:
    """The row regex, DOTALL like HBase's RegexStringComparator; matched with fullmatch on latin-1."""
    if pattern is None:
        return None
    if pattern.endswith("\\z") and not pattern.endswith("\\\\z"):
        # Java's end-of-input `\z` (what HBase is sent) is spelled `\Z` in Python before 3.14
        pattern = pattern[:-2] + "\\Z"
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as e:
        raise ValueError(f"invalid row_regex {pattern!r}: {e}") from None


def counter_bytes(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


def add_counter(table: str, current: bytes | None, amount: int) -> tuple[int, bytes]:
    """The incremented counter (wrapping like Java's long) and its 8-byte big-endian cell value."""
    if type(amount) is not int:
        raise TypeError(f"increment amount must be int, not {type(amount).__name__}")
    if not _INT64_MIN <= amount <= _INT64_MAX:
        raise ValueError(f"increment amount {amount} does not fit in a signed 64-bit long")
    old = 0
    if current is not None:
        if len(current) != 8:
            raise StoreError(f"table {table!r}: counter cell is {len(current)} bytes wide, not 8")
        old = int.from_bytes(current, "big", signed=True)
    new = (old + amount + 2**63) % 2**64 - 2**63
    return new, counter_bytes(new)


# -- reads ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FamilyRead:
    """How one selected family is read: its qualifiers, oldest visible ts and version cap."""

    whole: bool  # every qualifier
    qualifiers: frozenset[bytes]
    prefixes: tuple[bytes, ...]
    low: int  # max(time range min, TTL cutoff)
    cap: int  # min(requested versions, family max_versions)

    def wants(self, qualifier: bytes) -> bool:
        if self.whole or qualifier in self.qualifiers:
            return True
        return any(qualifier.startswith(p) for p in self.prefixes)


@dataclass(slots=True)
class ReadPlan:
    """ReadOptions resolved against a table's families once per get or scan, not per row."""

    families: dict[bytes, FamilyRead]
    high: int  # time range max (exclusive)

    @property
    def low(self) -> int:
        """The smallest ts any selected family can show (for pushing into a query)."""
        return min((f.low for f in self.families.values()), default=0)


def plan_read(table: str, families: dict[bytes, FamilySpec], read: ReadOptions, now: int) -> ReadPlan:
    """Resolve ReadOptions against the table's families at time `now` (for TTLs)."""
    if not isinstance(read, ReadOptions):
        raise TypeError(f"read must be ReadOptions, not {type(read).__name__}")
    tmin, tmax = read.time_range
    if type(tmin) is not int or type(tmax) is not int:
        raise TypeError("time_range bounds must be int")
    if tmin < 0 or tmax < tmin:
        raise ValueError(f"invalid time_range [{tmin}, {tmax}): need 0 <= min <= max")
    requested = read.max_versions
    if requested is not None and (type(requested) is not int or requested < 1):
        raise ValueError(f"max_versions must be None or a positive int, not {requested!r}")

    if read.columns is None:
        wanted: dict[bytes, list[ColumnSelector] | None] = dict.fromkeys(families)
    else:
        check_selectors(table, families, read.columns)
        wanted = {}
        for sel in read.columns:
            if sel.qualifier is None and sel.prefix is None:
                wanted[sel.family] = None
            elif sel.family not in wanted:
                wanted[sel.family] = [sel]
            elif wanted[sel.family] is not None:
                wanted[sel.family].append(sel)  # type: ignore[union-attr]

    plans: dict[bytes, FamilyRead] = {}
    for name, sels in wanted.items():
        spec = families[name]
        low = tmin
        if spec.ttl_seconds != FOREVER:
            low = max(low, now - spec.ttl_seconds * 1000)
        cap = spec.max_versions if requested is None else min(requested, spec.max_versions)
        if sels is None:
            plans[name] = FamilyRead(True, frozenset(), (), low, cap)
        else:
            quals = frozenset(s.qualifier for s in sels if s.qualifier is not None)
            prefixes = tuple(s.prefix for s in sels if s.prefix is not None)
            if b"" in prefixes:
                plans[name] = FamilyRead(True, frozenset(), (), low, cap)
            else:
                plans[name] = FamilyRead(False, quals, prefixes, low, cap)
    return ReadPlan(plans, tmax)


#: delete markers of one row: family -> T, (family, qualifier) -> T
Markers = tuple[dict[bytes, int], dict[tuple[bytes, bytes], int]]


def visible_cells(plan: ReadPlan, cells: Iterable[Cell], markers: Markers | None) -> list[Cell]:
    """The cells of one row a read returns; `cells` sorted by family, qualifier, ts newest first."""
    out: list[Cell] = []
    families = plan.families
    high = plan.high
    fam_marks, col_marks = markers if markers is not None else ({}, {})
    cur_fam = None
    fread: FamilyRead | None = None
    cur_qual = None
    wanted = False
    count = 0
    fam_mark = -1
    col_mark = -1
    for cell in cells:
        fam, qual, ts, _ = cell
        if fam != cur_fam:
            cur_fam = fam
            fread = families.get(fam)
            fam_mark = fam_marks.get(fam, -1)
            cur_qual = None
        if fread is None:
            continue
        if qual != cur_qual:
            cur_qual = qual
            wanted = fread.wants(qual)
            count = 0
            col_mark = max(fam_mark, col_marks.get((fam, qual), -1)) if col_marks else fam_mark
        if not wanted or count >= fread.cap or ts >= high or ts < fread.low or ts <= col_mark:
            continue
        count += 1
        out.append(cell)
    return out


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
            raise TableNotFound(f"table {table!r} not found")
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


def delete_targets(
    families: dict[bytes, FamilySpec],
    stored: Iterable[bytes] | dict[bytes, Iterable[bytes]],
    columns: Sequence[ColumnSelector] | None,
) -> list[tuple[bytes, bytes | None]]:
    """Where a delete puts markers: (family, None) for a whole family, (family, qualifier) for a
    column. A prefix becomes one column marker per stored qualifier under it; `stored` maps
    family -> the row's stored qualifiers."""
    if columns is None:
        return [(f, None) for f in families]
    out: list[tuple[bytes, bytes | None]] = []
    for sel in columns:
        if sel.qualifier is not None:
            out.append((sel.family, sel.qualifier))
        elif sel.prefix is not None and sel.prefix:
            quals = stored.get(sel.family, ())  # type: ignore[union-attr]
            out.extend((sel.family, q) for q in list(quals) if q.startswith(sel.prefix))
        else:
            out.append((sel.family, None))
    return out


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
