"""`HBaseStore`: the Store interface on HBase's two Thrift gateways, and its scanner.

Thrift 2 carries every row read and write: gets (`getMultiple`) and scans with max-versions, time
ranges and filters computed by HBase (`reads.py`), a row put as ONE `TPut` whose cells carry their
own timestamps (atomic), deletes as `TDelete`s (several in one atomic `mutateRow`), and table
creation (the only route that can set every family option, block size included). Thrift 1
(happybase) lists and drops tables and increments counters. Scan replies go through the C reader
when it is built (`fastread.py`), else through thriftpy2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import happybase

from kijirest.primitives import INT64_MAX, INT64_MIN
from kijirest.store.base import (
    DEFAULT_READ,
    FOREVER,
    Cell,
    ColumnSelector,
    FamilySpec,
    ReadOptions,
    Row,
    RowScanner,
    Scan,
    Store,
    StoreError,
    StoreUnavailable,
    TableNotFound,
    check_families,
    check_key,
    check_scan,
    check_table_name,
    check_timestamp,
)
from kijirest.store.hbase import fastread, filters
from kijirest.store.hbase.pool import (
    Connection,
    ConnectionDropped,
    Pool,
    Result,
    thrift1_factory,
    thrift2_factory,
)
from kijirest.store.hbase.reads import read_parts, row_filter
from kijirest.store.hbase.thrift import result_cells, row_tuples, thrift1, thrift2

DEFAULT_THRIFT_PORT = 9090
DEFAULT_THRIFT2_PORT = 9091
DEFAULT_POOL_SIZE = 8
#: Thrift socket timeouts and the pool wait of a store opened without one (tools, tests); the
#: gateway passes its `store_timeout` setting (10 s by default) instead
DEFAULT_TIMEOUT_MS = 60_000
_GET_CHUNK = 1000  # keys per getMultiple round trip
DDL_TIMEOUT_S = 60.0  # the least a table creation may take (see `create_table`)


# -- the store --------------------------------------------------------------------------------------


class HBaseStore(Store):
    """A Store on a running HBase: Thrift 1 at `host:port` (happybase), Thrift 2 at
    `host:thrift2_port`. Safe to share between threads; `close()` drops the connections."""

    blocking = True
    #: scan replies read by the C reader when it is built (False: thriftpy2 reads them)
    fast_replies = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_THRIFT_PORT,
        thrift2_port: int = DEFAULT_THRIFT2_PORT,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
    ) -> None:
        for name, value in (("port", port), ("thrift2_port", thrift2_port)):
            if type(value) is not int or not 0 < value < 65536:
                raise ValueError(f"{name} must be a TCP port, not {value!r}")
        if type(pool_size) is not int or pool_size < 1:
            raise ValueError(f"pool_size must be a positive int, not {pool_size!r}")
        if type(timeout_ms) is not int or timeout_ms < 1:
            raise ValueError(f"timeout must be a positive number of milliseconds, not {timeout_ms!r}")
        self.host = host
        self.port = port
        self.thrift2_port = thrift2_port
        self.timeout_s = wait_s = timeout_ms / 1000
        self._thrift1_pool = Pool(
            f"HBase Thrift at {host}:{port}", thrift1_factory(host, port, timeout_ms), pool_size, wait_s
        )
        self._thrift2_pool = Pool(
            f"HBase Thrift 2 at {host}:{thrift2_port}",
            thrift2_factory(host, thrift2_port, timeout_ms),
            pool_size,
            wait_s,
        )

    @classmethod
    def from_uri(cls, uri: str, *, timeout_ms: int | None = None) -> HBaseStore:
        """`hbase://HOST[:PORT][?thrift2_port=N&pool_size=N&timeout=MS]` (ports 9090 / 9091);
        `timeout_ms` applies unless the URI gives `timeout`."""
        parts = urlsplit(uri)
        if parts.scheme.lower() != "hbase" or not parts.hostname:
            raise ValueError(f"store URI {uri!r}: expected hbase://HOST[:PORT][?options]")
        if parts.path not in ("", "/") or parts.fragment or parts.username or parts.password:
            raise ValueError(f"store URI {uri!r}: expected hbase://HOST[:PORT][?options], nothing else")
        try:
            port = parts.port or DEFAULT_THRIFT_PORT
        except ValueError:
            raise ValueError(f"store URI {uri!r}: invalid port") from None
        options: dict[str, int] = {}
        known = {"thrift2_port": "thrift2_port", "pool_size": "pool_size", "timeout": "timeout_ms"}
        for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)):
            if name not in known:
                raise ValueError(f"store URI {uri!r}: unknown option {name!r} (known: {', '.join(known)})")
            if not value.isdigit():
                raise ValueError(
                    f"store URI {uri!r}: option {name} must be a positive integer, not {value!r}"
                )
            options[known[name]] = int(value)
        if timeout_ms is not None:
            options.setdefault("timeout_ms", timeout_ms)
        return cls(parts.hostname, port, **options)

    def __repr__(self) -> str:
        return f"HBaseStore({self.host}:{self.port}, thrift2 {self.thrift2_port})"

    # -- plumbing -------------------------------------------------------------------------------
    def _thrift2_call(self, table: str | None, fn: Callable[[Any], Result], *, retry: bool = True) -> Result:
        return self._thrift2_pool.call(table, fn, retry=retry)

    def _thrift2_conn_call(
        self, table: str | None, fn: Callable[[Connection], Result], *, retry: bool = True
    ) -> Result:
        return self._thrift2_pool.call(table, fn, retry=retry, raw=True)

    @staticmethod
    def _thrift_table_name(table: str) -> Any:
        check_table_name(table)
        ns, sep, name = table.partition(":")
        if not sep:
            ns, name = "default", table
        return thrift2.TTableName(ns.encode(), name.encode())

    # -- tables ---------------------------------------------------------------------------------
    def create_table(self, table: str, families: Sequence[FamilySpec]) -> bool:
        """One region, every family option explicit (Thrift 1's column defaults are not HBase's);
        False when the table exists."""
        tname = self._thrift_table_name(table)
        specs = check_families(families)
        columns = [_family_descriptor(spec) for spec in specs.values()]
        desc = thrift2.TTableDescriptor(tableName=tname, columns=columns)

        def create(conn: Connection) -> None:
            # HBase answers once the table's region is assigned: on a busy or just-started HBase
            # that can take longer than a data call may, so DDL gets at least DDL_TIMEOUT_S
            if conn.sock is not None and self.timeout_s < DDL_TIMEOUT_S:
                conn.sock.settimeout(DDL_TIMEOUT_S)
            try:
                conn.client.createTable(desc, None)
            finally:
                if conn.sock is not None and self.timeout_s < DDL_TIMEOUT_S:
                    conn.sock.settimeout(self.timeout_s)

        try:
            self._thrift2_conn_call(table, create, retry=False)
        except StoreError as exc:
            if "TableExistsException" in str(exc):
                return False
            raise
        return True

    def list_tables(self) -> list[str]:
        names = self._thrift1_pool.call(None, lambda c: c.tables())
        return sorted(n.decode() if isinstance(n, bytes) else n for n in names)

    def ping(self) -> None:
        """One cheap call to each gateway (Thrift 1 lists tables through the master, Thrift 2 asks
        whether hbase:meta exists): both must answer for the store to serve."""
        self.list_tables()
        meta = thrift2.TTableName(b"hbase", b"meta")
        self._thrift2_call(None, lambda c: c.tableExists(meta))

    def table_families(self, table: str) -> dict[bytes, FamilySpec]:
        tname = self._thrift_table_name(table)
        desc = self._thrift2_call(table, lambda c: c.getTableDescriptor(tname))
        out: dict[bytes, FamilySpec] = {}
        for col in desc.columns or ():
            out[col.name] = FamilySpec(
                name=col.name,
                max_versions=col.maxVersions if col.maxVersions is not None else 1,
                ttl_seconds=col.timeToLive if col.timeToLive is not None else FOREVER,
                in_memory=bool(col.inMemory),
                compression=_enum_name(thrift2.TCompressionAlgorithm, col.compressionType, "NONE"),
                bloom_filter=_enum_name(thrift2.TBloomFilterType, col.bloomnFilterType, "NONE"),
                block_size=col.blockSize,
            )
        return out

    def delete_table(self, table: str) -> None:
        check_table_name(table)

        def drop(conn: happybase.Connection) -> None:
            try:
                conn.disable_table(table)
            except thrift1.IOError as exc:
                if b"TableNotEnabledException" not in (exc.message or b""):
                    raise
            conn.delete_table(table)

        self._thrift1_pool.call(table, drop, retry=False)

    # -- writes ---------------------------------------------------------------------------------
    def put_row(self, table: str, key: bytes, cells: Sequence[Cell]) -> None:
        """One TPut, each cell with its own timestamp: HBase applies the row atomically (and
        refuses all of it when a family does not exist)."""
        self.put_rows(table, [(key, cells)])

    def put_rows(self, table: str, rows: Sequence[tuple[bytes, Sequence[Cell]]]) -> None:
        """One putMultiple round trip: a TPut per row, each applied atomically by HBase."""
        puts = [tput for key, cells in rows if (tput := self._tput(key, cells)) is not None]
        if not puts:
            return
        name = table.encode()
        if len(puts) == 1:
            self._thrift2_call(table, lambda c: c.put(name, puts[0]))
        else:
            self._thrift2_call(table, lambda c: c.putMultiple(name, puts))

    @staticmethod
    def _tput(key: bytes, cells: Sequence[Cell]) -> thrift2.TPut | None:
        check_key(key)
        values = []
        column_value = thrift2.TColumnValue
        for cell in cells:
            if type(cell) is not tuple or len(cell) != 4:
                raise TypeError(f"a cell is a (family, qualifier, timestamp, value) tuple, not {cell!r}")
            family, qualifier, ts, value = cell
            if type(family) is not bytes or type(qualifier) is not bytes or type(value) is not bytes:
                raise TypeError("cell family, qualifier and value must be bytes")
            check_timestamp(ts)
            values.append(column_value(family, qualifier, value, ts))
        return thrift2.TPut(row=key, columnValues=values) if values else None

    def increment(self, table: str, key: bytes, family: bytes, qualifier: bytes, amount: int) -> int:
        """HBase's atomic increment through happybase's counter_inc; not retried (not idempotent)."""
        check_key(key)
        if type(family) is not bytes or type(qualifier) is not bytes:
            raise TypeError("family and qualifier must be bytes")
        if type(amount) is not int:
            raise TypeError(f"increment amount must be int, not {type(amount).__name__}")
        if not INT64_MIN <= amount <= INT64_MAX:
            raise ValueError(f"increment amount {amount} does not fit in a signed 64-bit long")
        check_table_name(table)
        column = family + b":" + qualifier
        return self._thrift1_pool.call(
            table, lambda c: c.table(table).counter_inc(key, column, amount), retry=False
        )

    def delete(
        self,
        table: str,
        key: bytes,
        columns: Sequence[ColumnSelector] | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Delete markers at `timestamp` (None: the server's clock). Families and columns go in one
        atomic mutateRow; a prefix is read first (HBase has no prefix delete), then each qualifier
        under it is deleted as a column."""
        check_key(key)
        if timestamp is not None:
            check_timestamp(timestamp)
        name = table.encode()
        check_table_name(table)
        if columns is None:
            tdel = thrift2.TDelete(row=key, timestamp=timestamp)
            self._thrift2_call(table, lambda c: c.deleteSingle(name, tdel))
            return
        columns = list(columns)
        if not columns:
            raise ValueError("columns must hold at least one ColumnSelector (None means the whole row)")
        whole: dict[bytes, None] = {}
        exact: dict[tuple[bytes, bytes], None] = {}
        prefixes: list[ColumnSelector] = []
        for sel in columns:
            if not isinstance(sel, ColumnSelector):
                raise TypeError(f"columns must be ColumnSelector, not {type(sel).__name__}")
            if sel.qualifier is not None:
                exact[(sel.family, sel.qualifier)] = None
            elif sel.prefix:
                prefixes.append(sel)
            else:
                whole[sel.family] = None
        prefixes = [p for p in prefixes if p.family not in whole]
        if prefixes:
            for family, qualifier in self._qualifiers_under(table, key, prefixes):
                exact[(family, qualifier)] = None
        deletes = []
        if whole:
            deletes.append(
                thrift2.TDelete(
                    row=key,
                    columns=[thrift2.TColumn(f, None, timestamp) for f in whole],
                    timestamp=timestamp,
                    deleteType=thrift2.TDeleteType.DELETE_FAMILY,
                )
            )
        cols = [thrift2.TColumn(f, q, timestamp) for f, q in exact if f not in whole]
        if cols:
            deletes.append(
                thrift2.TDelete(
                    row=key, columns=cols, timestamp=timestamp, deleteType=thrift2.TDeleteType.DELETE_COLUMNS
                )
            )
        if not deletes:
            return
        if len(deletes) == 1:
            self._thrift2_call(table, lambda c: c.deleteSingle(name, deletes[0]))
        else:
            mutations = thrift2.TRowMutations(
                row=key, mutations=[thrift2.TMutation(deleteSingle=d) for d in deletes]
            )
            self._thrift2_call(table, lambda c: c.mutateRow(name, mutations))

    def _qualifiers_under(
        self, table: str, key: bytes, prefixes: list[ColumnSelector]
    ) -> list[tuple[bytes, bytes]]:
        """The row's (family, qualifier)s under the prefixes: keys only, newest version only (a
        column with any visible version shows up)."""
        read = ReadOptions(columns=tuple(prefixes), max_versions=1)
        cols, filt, _, _ = read_parts(read)
        tget = thrift2.TGet(
            row=key, columns=cols, maxVersions=1, filterBytes=filters.all_of(filt, filters.key_only())
        )
        name = table.encode()
        [result] = self._thrift2_call(table, lambda c: c.getMultiple(name, [tget]))
        return [(cv.family, cv.qualifier) for cv in result.columnValues]

    # -- reads ----------------------------------------------------------------------------------
    def get_rows(self, table: str, keys: Sequence[bytes], read: ReadOptions = DEFAULT_READ) -> list[Row]:
        """getMultiple: versions, time range and filters applied by HBase; missing rows as (key, [])."""
        keys = list(keys)
        for key in keys:
            check_key(key)
        columns, filt, max_versions, time_range = read_parts(read)
        check_table_name(table)
        if not keys:
            return []
        name = table.encode()
        make_get = thrift2.TGet
        out: list[Row] = []
        for i in range(0, len(keys), _GET_CHUNK):
            chunk = keys[i : i + _GET_CHUNK]
            tgets = [
                make_get(
                    row=k, columns=columns, timeRange=time_range, maxVersions=max_versions, filterBytes=filt
                )
                for k in chunk
            ]
            results = self._thrift2_call(table, lambda c, tgets=tgets: c.getMultiple(name, tgets))
            for k, r in zip(chunk, results, strict=True):
                out.append((k, result_cells(r)))
        return out

    def scan(self, table: str, scan: Scan) -> RowScanner:
        """Opens an HBase scanner and reads the first batch (so a missing table fails here)."""
        check_scan(scan)
        columns, filt, max_versions, time_range = read_parts(scan.read)
        if scan.row_regex is not None:
            filt = filters.all_of(row_filter(scan.row_regex), filt)
        check_table_name(table)
        scanner = _HBaseScanner(self, table, scan, columns, filt, max_versions, time_range)
        if scan.stop and scan.stop <= scan.start:
            # HBase would read start == stop as a get of that row (and refuse start > stop)
            tname = self._thrift_table_name(table)
            if not self._thrift2_call(table, lambda c: c.tableExists(tname)):
                raise TableNotFound(f"table {table!r} does not exist", table)
            scanner.close()
            return scanner
        try:
            scanner.prefetch()
        except BaseException:
            scanner.close()
            raise
        return scanner

    def close(self) -> None:
        self._thrift1_pool.close()
        self._thrift2_pool.close()


def _family_descriptor(spec: FamilySpec) -> Any:
    compression = thrift2.TCompressionAlgorithm._NAMES_TO_VALUES.get(spec.compression.upper())
    if compression is None:
        raise ValueError(f"family {spec.name!r}: unknown compression {spec.compression!r}")
    bloom = thrift2.TBloomFilterType._NAMES_TO_VALUES.get(spec.bloom_filter.upper())
    if bloom is None:
        raise ValueError(f"family {spec.name!r}: unknown bloom filter type {spec.bloom_filter!r}")
    return thrift2.TColumnFamilyDescriptor(
        name=spec.name,
        maxVersions=spec.max_versions,
        timeToLive=spec.ttl_seconds,
        inMemory=spec.in_memory,
        compressionType=compression,
        bloomnFilterType=bloom,
        blockCacheEnabled=True,
        blockSize=spec.block_size,
    )


def _enum_name(enum: Any, value: int | None, default: str) -> str:
    if value is None:
        return default
    return enum._VALUES_TO_NAMES.get(value, str(value))


class _HBaseScanner(RowScanner):
    """Batches straight from an HBase scanner. Each batch size gets a scanner whose RegionServer
    caching equals it (so a first batch of 1 row really comes back after 1 row); when the size
    changes, or the server lost the scanner (closed, lease expired), the scan reopens just after
    the last row handed out."""

    def __init__(
        self,
        store: HBaseStore,
        table: str,
        scan: Scan,
        columns: list[Any] | None,
        filt: bytes | None,
        max_versions: int,
        time_range: Any,
    ) -> None:
        self._store = store
        self._table = table
        self._name = table.encode()
        self._stop = scan.stop or None
        self._columns = columns
        self._filter = filt
        self._max_versions = max_versions
        self._time_range = time_range
        self._sizes = scan.batch_sizes()
        self._next_start: bytes = scan.start
        self._scanner_id: int | None = None
        self._caching = 0
        self._first: list[Row] | None = None
        self._done = False
        self._closed = False

    def _open(self, caching: int) -> None:
        self._close_scanner()
        tscan = thrift2.TScan(
            startRow=self._next_start or None,
            stopRow=self._stop,
            columns=self._columns,
            caching=caching,
            maxVersions=self._max_versions,
            timeRange=self._time_range,
            filterBytes=self._filter,
        )
        self._scanner_id = self._store._thrift2_call(self._table, lambda c: c.openScanner(self._name, tscan))
        self._caching = caching

    def _fetch(self, size: int) -> list[Row]:
        if self._stop is not None and self._next_start >= self._stop:
            self._done = True  # reopening at start >= stop would read the start row (a get)
            self._close_scanner()
            return []
        if self._scanner_id is None or self._caching != size:
            self._open(size)
        try:
            results = self._rows(size)
        except TableNotFound:
            raise
        except StoreError as exc:
            if isinstance(exc, StoreUnavailable) and not isinstance(exc, ConnectionDropped):
                raise  # a timeout: do not wait twice
            # The scanner is lost (lease expired, server evicted it) or the connection dropped
            # under the call, which may have advanced it: resume exactly after the last row.
            self._scanner_id = None
            self._open(size)
            results = self._rows(size)
        rows = results
        if rows:
            self._next_start = rows[-1][0] + b"\x00"
        if len(results) < size:
            self._done = True
            self._close_scanner()
        return rows

    def _rows(self, size: int) -> list[Row]:
        scanner_id = self._scanner_id
        assert scanner_id is not None
        if fastread.c_reader is not None and self._store.fast_replies:
            return self._store._thrift2_conn_call(
                self._table, lambda conn: fastread.scanner_rows(conn, scanner_id, size), retry=False
            )
        return row_tuples(
            self._store._thrift2_call(self._table, lambda c: c.getScannerRows(scanner_id, size), retry=False)
        )

    def prefetch(self) -> None:
        self._first = self._fetch(next(self._sizes))

    def __iter__(self) -> Iterator[list[Row]]:
        if self._first is not None:
            first, self._first = self._first, None
            if first:
                yield first
        while not self._done and not self._closed:
            rows = self._fetch(next(self._sizes))
            if rows:
                yield rows
        self.close()

    def _close_scanner(self) -> None:
        scanner_id, self._scanner_id = self._scanner_id, None
        if scanner_id is not None:
            try:
                self._store._thrift2_call(self._table, lambda c: c.closeScanner(scanner_id))
            except StoreError:
                pass  # already gone on the server: nothing to release

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._first = None
        self._close_scanner()
