"""The store interface: the slice of HBase's data model that the gateway needs.

A store holds HBase tables of rows (byte keys, sorted as unsigned bytes); a row holds cells addressed
by (family, qualifier, timestamp) with byte values. A store knows nothing of Kiji, Avro or JSON.

Every store gives exactly the answers HBase gives (encodings.md §5):
- `max_versions` / `time_range` on reads: versions are counted *after* the time filter; at most
  min(requested, family VERSIONS) cells per column are returned, newest first;
- a family TTL other than FOREVER hides cells with ts < now - ttl*1000;
- deletes are markers: a delete "at T" hides every version with ts <= T, including versions written
  later with an older timestamp;
- two puts at the same (row, family, qualifier, ts) keep the later value.

The methods are blocking; `kijirest.store.runner.AsyncStore` runs them off the event loop.
Scans are iterators of batches (lists of rows), never materialized; callers must `close()` them.

The argument checks live here too, beside the types they check: every store refuses the same
arguments with the same error (a name that works on one store works on HBase).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from kijirest.primitives import INT32_MAX, INT64_MAX

FOREVER = INT32_MAX  # HBase's TTL of "never expires" (Integer.MAX_VALUE seconds)
LATEST = INT64_MAX  # HBase's "latest timestamp" marker; exclusive end of every time range

#: One cell: (family, qualifier, timestamp in ms, value)
Cell = tuple[bytes, bytes, int, bytes]
#: One row: (row key, cells sorted by family, qualifier, then timestamp newest first)
Row = tuple[bytes, list[Cell]]


class StoreError(Exception):
    """Base class of store failures."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or timed out (the API answers 503)."""


class TableNotFound(StoreError):
    """The table does not exist; `table` names it when the store knows (the gateway re-creates the
    tables it serves when they vanish, e.g. after HBase came back empty)."""

    def __init__(self, message: str, table: str | None = None) -> None:
        super().__init__(message)
        self.table = table


class TableExists(StoreError):
    pass


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """An HBase column family's settings (layouts.md §7)."""

    name: bytes
    max_versions: int = 1
    ttl_seconds: int = FOREVER
    in_memory: bool = False
    compression: str = "NONE"
    bloom_filter: str = "ROW"
    block_size: int | None = None


@dataclass(frozen=True, slots=True)
class ColumnSelector:
    """Selects cells of one family: all of it, one qualifier, or the qualifiers with a prefix."""

    family: bytes
    qualifier: bytes | None = None
    prefix: bytes | None = None

    def __post_init__(self) -> None:
        if self.qualifier is not None and self.prefix is not None:
            raise ValueError("a ColumnSelector takes a qualifier or a prefix, not both")

    def matches(self, family: bytes, qualifier: bytes) -> bool:
        if family != self.family:
            return False
        if self.qualifier is not None:
            return qualifier == self.qualifier
        if self.prefix is not None:
            return qualifier.startswith(self.prefix)
        return True


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What a get or scan returns of each row.

    columns: None = every family; else the union of the selectors.
    max_versions: None = all (still capped by the family's VERSIONS); default 1 = latest only.
    time_range: [min, max) in ms.
    """

    columns: tuple[ColumnSelector, ...] | None = None
    max_versions: int | None = 1
    time_range: tuple[int, int] = (0, LATEST)


#: the default of get_rows (ReadOptions is frozen, so one shared instance is safe)
DEFAULT_READ = ReadOptions()


@dataclass(frozen=True, slots=True)
class Scan:
    """A scan of `[start, stop)` in key order.

    stop None = to the end of the table. `row_regex` is an ASCII Java/Python-compatible pattern that
    must match the whole key read as ISO-8859-1 (HBase: `RowFilter(=, 'regexstring:...')` whose
    pattern ends in `\\z`; Python: `re.fullmatch` on `key.decode("latin-1")`).
    `batch_size` rows per batch handed back (and per store round trip); a low batch size results in
    added round trips, a high one in more memory per batch. Rows without any selected cell are
    never returned.
    """

    start: bytes = b""
    stop: bytes | None = None
    read: ReadOptions = ReadOptions()
    row_regex: str | None = None
    batch_size: int = 1000
    #: rows of the first batch; later batches grow x8 up to batch_size. A small first batch lets the
    #: first rows of a slow or selective scan go out at once instead of after a full batch.
    first_batch_size: int | None = None
    #: asked before every batch: at most this many rows now (the gateway's memory budget for row
    #: streams shrinks batches while many streams are open; `streams.StreamGate`)
    batch_cap: Callable[[], int] | None = field(default=None, compare=False)

    def batch_sizes(self) -> Iterator[int]:
        """The size of each successive batch."""
        size = min(self.first_batch_size or self.batch_size, self.batch_size)
        cap = self.batch_cap
        while True:
            yield size if cap is None else max(1, min(size, cap()))
            size = min(size * 8, self.batch_size)


class RowScanner(abc.ABC):
    """An open scan: iterate for batches; close when done (also on early exit)."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[list[Row]]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> RowScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Store(abc.ABC):
    """A blocking store. Implementations must be safe to call from several threads at once."""

    #: False when calls are cheap and never block (the memory store): no thread hand-off needed.
    blocking: bool = True

    # -- tables ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_table(self, table: str, families: Sequence[FamilySpec]) -> bool:
        """Create a table; False (and nothing changed) when it already exists."""

    @abc.abstractmethod
    def list_tables(self) -> list[str]: ...

    def ping(self) -> None:
        """A cheap call that fails (StoreUnavailable) while the store cannot serve: the outage
        breaker's probe. Stores with several servers behind them check each one."""
        self.list_tables()

    @abc.abstractmethod
    def table_families(self, table: str) -> dict[bytes, FamilySpec]:
        """The families of an existing table (raises TableNotFound)."""

    @abc.abstractmethod
    def delete_table(self, table: str) -> None:
        """Drop a table and its data (tests and tools only; the gateway never drops)."""

    # -- writes ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_row(self, table: str, key: bytes, cells: Sequence[Cell]) -> None:
        """Write the cells of one row as one atomic mutation (cells may carry different timestamps)."""

    def put_rows(self, table: str, rows: Sequence[tuple[bytes, Sequence[Cell]]]) -> None:
        """Write several rows, each atomically (stores may write them in one round trip or
        transaction; this default writes them one by one, in order)."""
        for key, cells in rows:
            self.put_row(table, key, cells)

    @abc.abstractmethod
    def increment(self, table: str, key: bytes, family: bytes, qualifier: bytes, amount: int) -> int:
        """Atomically add `amount` to an 8-byte big-endian counter cell (absent = 0); returns the new
        value. The new version is written at the store's clock."""

    @abc.abstractmethod
    def delete(
        self,
        table: str,
        key: bytes,
        columns: Sequence[ColumnSelector] | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Place delete markers: the whole row (columns None), whole families, single columns, or
        every qualifier under a prefix; hiding versions with ts <= timestamp (None = store clock)."""

    # -- reads ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_rows(self, table: str, keys: Sequence[bytes], read: ReadOptions = ReadOptions()) -> list[Row]:
        """Rows for the given keys, in the same order (duplicates included); a missing row is
        `(key, [])`."""

    @abc.abstractmethod
    def scan(self, table: str, scan: Scan) -> RowScanner:
        """Open a scan; batches arrive as the store reads them."""

    def close(self) -> None:  # noqa: B027 - optional hook: stores without resources keep it
        """Release connections and files."""


# -- argument checks (the same for every store) ---------------------------------------------------

_MAX_KEY_LENGTH = 32767  # HBase's Short.MAX_VALUE row length limit
_TABLE_NAME = re.compile(r"(?:[A-Za-z0-9_]+:)?[A-Za-z0-9_][A-Za-z0-9_.\-]*")


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
