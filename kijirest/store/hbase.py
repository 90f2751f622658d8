"""The HBase store: a real HBase through its two Thrift gateways.

- Thrift 2 (`THBaseService`, IDL subset in `hbase_thrift2.thrift`, loaded with thriftpy2, buffered
  transport + binary protocol) carries every row read and write: gets and scans with max-versions,
  time ranges and filters computed by HBase (filters as serialized protobuf, `hbase_filters.py`), a
  row put as ONE `TPut` whose cells carry their own timestamps (atomic), deletes as `TDelete`s
  (several in one atomic `mutateRow`), and table creation (the only route that can set every family
  option, block size included).
- Thrift 1 through happybase (the port in the URI) lists and drops tables and increments counters.

Why not happybase for latest-version reads too: Thrift 2 gives the same cells already in HBase order
(family, qualifier, newest first) for every read, one code path instead of two that must agree.

Connections: one small pool per gateway; a call checks a connection out for its duration only, so
a thread pool of N workers needs N connections, and an open scan holds none between batches (the
Thrift 2 server keeps scanners by id for all its connections). A pooled connection that the server
closed is noticed before use; a read or idempotent write that still fails on a reused connection
("TSocket read 0 bytes", broken pipe) is retried once on a fresh one. Unreachable HBase or a timeout
raises StoreUnavailable.
"""

from __future__ import annotations

import functools
import importlib
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlsplit

import happybase
import thriftpy2
from thriftpy2.protocol import TCyBinaryProtocol
from thriftpy2.thrift import TApplicationException, TClient
from thriftpy2.transport import TCyBufferedTransport, TSocket, TTransportException
from thriftpy2.transport.memory import TCyMemoryBuffer

from kijirest.store import hbase_filters as filters
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
    StoreUnavailable,
    TableNotFound,
)
from kijirest.store.memory import (
    DEFAULT_READ,
    check_families,
    check_key,
    check_scan,
    check_table_name,
    check_timestamp,
    compile_row_regex,
)

#: happybase's Thrift 1 module (loaded by `import happybase`): its error replies
T1 = importlib.import_module("Hbase_thrift")
T2 = thriftpy2.load(
    str(Path(__file__).with_name("hbase_thrift2.thrift")), module_name="kijirest_hbase_thrift2_thrift"
)


class _ReadCell:
    """A `TColumnValue` as scans and gets decode it: slots and no Python `__init__`. thriftpy2's
    generated structs run a Python `__init__` that sets every field before decoding; with a few
    million cells a second that was a third of the Thrift decoding time."""

    __slots__ = ("family", "qualifier", "tags", "timestamp", "type", "value")
    thrift_spec = T2.TColumnValue.thrift_spec


class _ReadResult:
    """A `TResult` as decoded (see `_ReadCell`)."""

    __slots__ = ("columnValues", "partial", "row", "stale")
    thrift_spec: ClassVar[dict[int, tuple]] = {
        fid: (spec[0], spec[1], (spec[2][0], _ReadCell), *spec[3:]) if spec[1] == "columnValues" else spec
        for fid, spec in T2.TResult.thrift_spec.items()
    }


def _decode_results_lean() -> None:
    """Every reply holding `TResult`s decodes into the slot classes above (only replies: requests
    never carry a TResult, and puts keep building real `TColumnValue`s)."""
    for name in ("getScannerRows_result", "getMultiple_result"):
        spec = getattr(T2.THBaseService, name).thrift_spec
        ttype, field, inner, *rest = spec[0]
        if isinstance(inner, tuple):  # list<TResult>
            assert inner[1] is T2.TResult
            spec[0] = (ttype, field, (inner[0], _ReadResult), *rest)
        else:
            assert inner is T2.TResult
            spec[0] = (ttype, field, _ReadResult, *rest)


_decode_results_lean()


def _cells(result: _ReadResult) -> list[Cell]:
    """A decoded `TResult`'s cells as store tuples."""
    return [(cv.family, cv.qualifier, cv.timestamp, cv.value) for cv in result.columnValues]


def _row_tuples(results: list[_ReadResult]) -> list[Row]:
    return [(r.row, _cells(r)) for r in results]


try:  # the C reader of scan replies (setup.py builds it when a C compiler is there)
    from kijirest.store import _thrift2fast as _fast
except ImportError:  # pragma: no cover - depends on the install
    _fast = None

_T_LIST, _T_STRUCT = 15, 12
_REPLY = 0x80010002  # strict binary protocol version 1, message type REPLY
_RECV_BYTES = 256 * 1024


def _scanner_rows_request(scanner_id: int, size: int) -> bytes:
    """A `getScannerRows(scannerId, numRows)` call in the strict binary protocol, as thriftpy2
    writes it (version|CALL, name, seqid 0, the args struct)."""
    name = b"getScannerRows"
    return b"".join(
        (
            struct.pack(">Ii", 0x80010001, len(name)),
            name,
            struct.pack(">ibhibhib", 0, 8, 1, scanner_id, 8, 2, size, 0),
        )
    )


def _scanner_rows_fast(conn: _Conn, scanner_id: int, size: int) -> list[Row]:
    """`getScannerRows` with the reply read by the C reader straight into row tuples, as it
    arrives. Anything but a plain list of rows (an exception, an unexpected shape) is read whole
    and handed to thriftpy2, so errors are raised exactly as on the thriftpy2 path."""
    sock = conn.sock
    assert sock is not None and _fast is not None
    sock.sendall(_scanner_rows_request(scanner_id, size))
    buf = bytearray()

    def more() -> None:
        chunk = sock.recv(_RECV_BYTES)
        if not chunk:
            raise TTransportException(
                type=TTransportException.END_OF_FILE, message="HBase closed the connection"
            )
        buf.extend(chunk)

    # header: version|type, name, seqid, then the result struct's first field (+ the list header)
    while len(buf) < 8:
        more()
    version, name_len = struct.unpack_from(">Ii", buf)
    head = 8 + name_len + 4
    if version != _REPLY or not 0 <= name_len <= 256:
        return _scanner_rows_general(buf, more)
    while len(buf) < head + 1:
        more()
    if buf[head] != _T_LIST:  # not the success field: an exception of the method
        return _scanner_rows_general(buf, more)
    while len(buf) < head + 8:
        more()
    if buf[head + 1 : head + 3] != b"\0\0" or buf[head + 3] != _T_STRUCT:
        return _scanner_rows_general(buf, more)
    (count,) = struct.unpack_from(">i", buf, head + 4)
    if count < 0:
        return _scanner_rows_general(buf, more)  # thriftpy2 reports it
    pos = head + 8
    rows: list[Row] = []
    while True:
        part, pos = _fast.parse_results(buf, pos, count - len(rows))
        rows += part
        if len(rows) == count:
            break
        del buf[:pos]  # keep only the incomplete rest
        pos = 0
        # parse again once the incomplete rest has doubled, or nothing more is there yet: a row of
        # many MB is then parsed a few times, not once per socket read (the rest of the reply may
        # be shorter than that: never wait for bytes the server has not sent)
        want = 2 * len(buf)
        more()
        while len(buf) < want and _readable(sock):
            more()
    # after the list: more fields of the result struct (none expected), then its stop byte
    while True:
        while len(buf) <= pos:
            more()
        ttype = buf[pos]
        if ttype == 0:
            return rows
        while len(buf) < pos + 3:
            more()
        while (end := _fast.skip_value(buf, pos + 3, ttype)) < 0:
            more()
        pos = end


def _readable(sock: socket.socket) -> bool:
    """Bytes (or EOF) are waiting on the socket now."""
    poller = select.poll()  # not select(): no limit on the fd number
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _scanner_rows_general(buf: bytearray, more: Callable[[], None]) -> list[Row]:
    assert _fast is not None
    while _fast.message_end(buf) < 0:
        more()
    reply = TClient(T2.THBaseService, TCyBinaryProtocol(TCyMemoryBuffer(bytes(buf))))
    return _row_tuples(reply._recv("getScannerRows"))  # raises the reply's exception


DEFAULT_THRIFT_PORT = 9090
DEFAULT_THRIFT2_PORT = 9091
DEFAULT_POOL_SIZE = 8
DEFAULT_TIMEOUT_MS = 60_000
_CONNECT_TIMEOUT_MS = 10_000
_GET_CHUNK = 1000  # keys per getMultiple round trip
#: read/write buffer of a Thrift 2 connection: a scan batch is ~0.5-2 MB, and with thriftpy2's
#: default (4 KiB) it arrived in hundreds of Python-level socket reads
_BUFFER_BYTES = 256 * 1024
_ALL_VERSIONS = 2**31 - 1  # Integer.MAX_VALUE: HBase then caps at the family's VERSIONS

_R = TypeVar("_R")

# Errors that mean "the connection is gone" (retry once on a fresh one if it was a pooled one).
_DROPPED = (TTransportException, BrokenPipeError, ConnectionResetError, ConnectionAbortedError, EOFError)
# Server replies: the connection is still in a clean state after them.
_T1_REPLIES = (T1.IOError, T1.IllegalArgument, T1.AlreadyExists)
_REPLIES = (T2.TIOError, T2.TIllegalArgument, TApplicationException, *_T1_REPLIES)
# HBase-side conditions behind a live Thrift server that still mean "HBase is not available".
_UNAVAILABLE_MARKERS = (
    "RetriesExhaustedException",
    "PleaseHoldException",
    "ServerNotRunningYetException",
    "CallTimeoutException",
    "SocketTimeoutException",
    "ConnectException",
    "NotServingRegionException",
    "RegionOfflineException",
)


class _Dropped(StoreUnavailable):
    """The connection broke under a call (as opposed to a timeout or a refused connection)."""


# -- connections ------------------------------------------------------------------------------------


class _Conn:
    """One open Thrift connection: the client object and its socket (for the staleness check)."""

    __slots__ = ("_close", "client", "sock")

    def __init__(self, client: Any, sock: socket.socket | None, close: Callable[[], None]) -> None:
        self.client = client
        self.sock = sock
        self._close = close

    def stale(self) -> bool:
        """True when the server closed the connection while it sat in the pool: a Thrift server
        never sends anything unasked, so a readable idle socket means EOF (or garbage)."""
        if self.sock is None:
            return False
        try:
            return _readable(self.sock)  # readable: EOF or unasked bytes, unusable either way
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        try:
            self._close()
        except Exception:
            pass


class _Pool:
    """At most `size` connections to one gateway, each used by one thread at a time."""

    def __init__(self, name: str, factory: Callable[[], _Conn], size: int, wait_s: float) -> None:
        self.name = name
        self._factory = factory
        self._wait_s = wait_s
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self.closed = False

    @contextmanager
    def connection(self) -> Iterator[tuple[_Conn, bool]]:
        """Yields (connection, reused); a connection that failed other than by a server reply is
        closed instead of going back to the pool."""
        if self.closed:
            raise StoreError("the HBase store is closed")
        if not self._slots.acquire(timeout=self._wait_s):
            raise StoreUnavailable(f"no free connection to {self.name} within {self._wait_s:g} s")
        try:
            conn = None
            with self._lock:
                while self._idle:
                    candidate = self._idle.pop()
                    if candidate.stale():
                        candidate.close()
                    else:
                        conn = candidate
                        break
            reused = conn is not None
            if conn is None:
                try:
                    conn = self._factory()
                except (TTransportException, OSError) as exc:
                    raise StoreUnavailable(f"cannot connect to {self.name}: {exc}") from None
            try:
                yield conn, reused
            except _REPLIES:
                self._put_back(conn)
                raise
            except BaseException:
                conn.close()
                raise
            else:
                self._put_back(conn)
        finally:
            self._slots.release()

    def _put_back(self, conn: _Conn) -> None:
        with self._lock:
            if self.closed:
                conn.close()
            else:
                self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _thrift2_factory(host: str, port: int, timeout_ms: int) -> Callable[[], _Conn]:
    def make() -> _Conn:
        sock = TSocket(
            host, port, socket_timeout=timeout_ms, connect_timeout=min(timeout_ms, _CONNECT_TIMEOUT_MS)
        )
        trans = TCyBufferedTransport(sock, _BUFFER_BYTES)
        trans.open()
        client = TClient(T2.THBaseService, TCyBinaryProtocol(trans))
        return _Conn(client, sock.sock, trans.close)

    return make


def _thrift1_factory(host: str, port: int, timeout_ms: int) -> Callable[[], _Conn]:
    def make() -> _Conn:
        conn = happybase.Connection(host, port, timeout=timeout_ms, autoconnect=False)
        conn.open()
        raw = getattr(getattr(conn.transport, "sock", None), "sock", None)
        return _Conn(conn, raw, conn.close)

    return make


# -- filters --------------------------------------------------------------------------------------


def _row_filter(pattern: str) -> bytes:
    """The row regex as HBase must get it: anchored to the whole key (HBase uses `find()`)."""
    compile_row_regex(pattern)  # same acceptance as the other stores: ValueError when invalid
    return filters.row_regex("^(?:" + pattern + ")\\z")


@functools.lru_cache(maxsize=512)
def _read_parts(read: ReadOptions) -> tuple[list[Any] | None, bytes | None, int, Any]:
    """ReadOptions as Thrift 2 wants them: (columns, filter bytes, maxVersions, timeRange).
    Cached: the gateway reads with the same few ReadOptions again and again."""
    if not isinstance(read, ReadOptions):
        raise TypeError(f"read must be ReadOptions, not {type(read).__name__}")
    tmin, tmax = read.time_range
    if type(tmin) is not int or type(tmax) is not int:
        raise TypeError("time_range bounds must be int")
    if tmin < 0 or tmax < tmin or tmax > LATEST:
        raise ValueError(f"invalid time_range [{tmin}, {tmax}): need 0 <= min <= max")
    requested = read.max_versions
    if requested is not None and (type(requested) is not int or requested < 1):
        raise ValueError(f"max_versions must be None or a positive int, not {requested!r}")
    max_versions = _ALL_VERSIONS if requested is None else min(requested, _ALL_VERSIONS)
    time_range = None if (tmin, tmax) == (0, LATEST) else T2.TTimeRange(tmin, tmax)
    if read.columns is None:
        return None, None, max_versions, time_range
    if not read.columns:
        raise ValueError("columns must hold at least one ColumnSelector (None means the whole row)")

    # family -> None (all of it) or its exact qualifiers and prefixes, in first-seen order
    wanted: dict[bytes, tuple[list[bytes], list[bytes]] | None] = {}
    for sel in read.columns:
        if not isinstance(sel, ColumnSelector):
            raise TypeError(f"columns must be ColumnSelector, not {type(sel).__name__}")
        if sel.qualifier is None and not sel.prefix:  # a b"" prefix is the whole family
            wanted[sel.family] = None
            continue
        if sel.family not in wanted:
            wanted[sel.family] = ([], [])
        parts = wanted[sel.family]
        if parts is not None:
            if sel.qualifier is not None:
                parts[0].append(sel.qualifier)
            else:
                parts[1].append(sel.prefix)  # type: ignore[arg-type]

    if not any(parts is not None and parts[1] for parts in wanted.values()):
        columns: list[Any] = []
        for family, parts in wanted.items():
            if parts is None:
                columns.append(T2.TColumn(family))
            else:
                columns.extend(T2.TColumn(family, q) for q in dict.fromkeys(parts[0]))
        return columns, None, max_versions, time_range

    # Prefixes exist: HBase has no prefix column, so read whole families and filter the cells.
    columns = [T2.TColumn(family) for family in wanted]
    clauses = []
    for family, parts in wanted.items():
        clause = None  # the whole family
        if parts is not None:
            tests = [filters.qualifier_is(q) for q in dict.fromkeys(parts[0])]
            tests += [filters.column_prefix(p) for p in dict.fromkeys(parts[1])]
            clause = filters.any_of(*tests)
        if len(wanted) > 1:  # with one family (never whole here) the columns already restrict to it
            clause = filters.all_of(filters.family_is(family), clause)
        clauses.append(clause)
    filt = filters.any_of(*clauses)
    return columns, filt, max_versions, time_range


# -- errors -----------------------------------------------------------------------------------------


def _message(exc: BaseException) -> str:
    msg = getattr(exc, "message", None)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return (msg or type(exc).__name__).strip()


def _server_error(exc: BaseException, table: str | None) -> StoreError:
    """A Thrift server's error reply as a StoreError subclass (first line of HBase's message)."""
    msg = _message(exc)
    first = msg.splitlines()[0] if msg else type(exc).__name__
    if table is not None and ("TableNotFoundException" in first or first in (table, f"default:{table}")):
        return TableNotFound(f"table {table!r} does not exist")
    if any(marker in msg for marker in _UNAVAILABLE_MARKERS):
        return StoreUnavailable(f"HBase is not available: {first}")
    where = f"table {table!r}: " if table is not None else ""
    return StoreError(f"{where}HBase: {first}")


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
        wait_s = timeout_ms / 1000
        self._t1 = _Pool(
            f"HBase Thrift at {host}:{port}", _thrift1_factory(host, port, timeout_ms), pool_size, wait_s
        )
        self._t2 = _Pool(
            f"HBase Thrift 2 at {host}:{thrift2_port}",
            _thrift2_factory(host, thrift2_port, timeout_ms),
            pool_size,
            wait_s,
        )

    @classmethod
    def from_uri(cls, uri: str) -> HBaseStore:
        """`hbase://HOST[:PORT][?thrift2_port=N&pool_size=N&timeout=MS]` (ports 9090 / 9091)."""
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
        return cls(parts.hostname, port, **options)

    def __repr__(self) -> str:
        return f"HBaseStore({self.host}:{self.port}, thrift2 {self.thrift2_port})"

    # -- plumbing -------------------------------------------------------------------------------
    def _call(
        self,
        pool: _Pool,
        table: str | None,
        fn: Callable[[Any], _R],
        *,
        retry: bool = True,
        raw: bool = False,
    ) -> _R:
        """fn(client) (fn(connection) when `raw`) on a pooled connection; server errors mapped, a
        dropped pooled connection retried once (when `retry`), transport failures ->
        StoreUnavailable."""
        for attempt in (1, 2):
            try:
                with pool.connection() as (conn, reused):
                    return fn(conn if raw else conn.client)
            except _REPLIES as exc:
                raise _server_error(exc, table) from None
            except TimeoutError as exc:
                raise StoreUnavailable(f"{pool.name}: timed out ({exc})") from None
            except _DROPPED as exc:
                if isinstance(exc, TTransportException) and exc.type == TTransportException.TIMED_OUT:
                    raise StoreUnavailable(f"{pool.name}: timed out ({exc})") from None
                if attempt == 1 and retry and reused:
                    continue
                raise _Dropped(f"{pool.name}: connection failed: {exc}") from None
            except OSError as exc:
                raise StoreUnavailable(f"{pool.name}: connection failed: {exc}") from None
        raise AssertionError("unreachable")

    def _t2_call(self, table: str | None, fn: Callable[[Any], _R], *, retry: bool = True) -> _R:
        return self._call(self._t2, table, fn, retry=retry)

    def _t2_conn_call(self, table: str | None, fn: Callable[[_Conn], _R], *, retry: bool = True) -> _R:
        return self._call(self._t2, table, fn, retry=retry, raw=True)

    @staticmethod
    def _tname(table: str) -> Any:
        check_table_name(table)
        ns, sep, name = table.partition(":")
        if not sep:
            ns, name = "default", table
        return T2.TTableName(ns.encode(), name.encode())

    # -- tables ---------------------------------------------------------------------------------
    def create_table(self, table: str, families: Sequence[FamilySpec]) -> bool:
        """One region, every family option explicit (Thrift 1's column defaults are not HBase's);
        False when the table exists."""
        tname = self._tname(table)
        specs = check_families(families)
        columns = [_family_descriptor(spec) for spec in specs.values()]
        desc = T2.TTableDescriptor(tableName=tname, columns=columns)
        try:
            self._t2_call(table, lambda c: c.createTable(desc, None), retry=False)
        except StoreError as exc:
            if "TableExistsException" in str(exc):
                return False
            raise
        return True

    def list_tables(self) -> list[str]:
        names = self._call(self._t1, None, lambda c: c.tables())
        return sorted(n.decode() if isinstance(n, bytes) else n for n in names)

    def table_families(self, table: str) -> dict[bytes, FamilySpec]:
        tname = self._tname(table)
        desc = self._t2_call(table, lambda c: c.getTableDescriptor(tname))
        out: dict[bytes, FamilySpec] = {}
        for col in desc.columns or ():
            out[col.name] = FamilySpec(
                name=col.name,
                max_versions=col.maxVersions if col.maxVersions is not None else 1,
                ttl_seconds=col.timeToLive if col.timeToLive is not None else FOREVER,
                in_memory=bool(col.inMemory),
                compression=_enum_name(T2.TCompressionAlgorithm, col.compressionType, "NONE"),
                bloom_filter=_enum_name(T2.TBloomFilterType, col.bloomnFilterType, "NONE"),
                block_size=col.blockSize,
            )
        return out

    def delete_table(self, table: str) -> None:
        check_table_name(table)

        def drop(conn: happybase.Connection) -> None:
            try:
                conn.disable_table(table)
            except T1.IOError as exc:
                if b"TableNotEnabledException" not in (exc.message or b""):
                    raise
            conn.delete_table(table)

        self._call(self._t1, table, drop, retry=False)

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
            self._t2_call(table, lambda c: c.put(name, puts[0]))
        else:
            self._t2_call(table, lambda c: c.putMultiple(name, puts))

    @staticmethod
    def _tput(key: bytes, cells: Sequence[Cell]) -> T2.TPut | None:
        check_key(key)
        values = []
        column_value = T2.TColumnValue
        for cell in cells:
            if type(cell) is not tuple or len(cell) != 4:
                raise TypeError(f"a cell is a (family, qualifier, timestamp, value) tuple, not {cell!r}")
            family, qualifier, ts, value = cell
            if type(family) is not bytes or type(qualifier) is not bytes or type(value) is not bytes:
                raise TypeError("cell family, qualifier and value must be bytes")
            check_timestamp(ts)
            values.append(column_value(family, qualifier, value, ts))
        return T2.TPut(row=key, columnValues=values) if values else None

    def increment(self, table: str, key: bytes, family: bytes, qualifier: bytes, amount: int) -> int:
        """HBase's atomic increment through happybase's counter_inc; not retried (not idempotent)."""
        check_key(key)
        if type(family) is not bytes or type(qualifier) is not bytes:
            raise TypeError("family and qualifier must be bytes")
        if type(amount) is not int:
            raise TypeError(f"increment amount must be int, not {type(amount).__name__}")
        if not -(2**63) <= amount < 2**63:
            raise ValueError(f"increment amount {amount} does not fit in a signed 64-bit long")
        check_table_name(table)
        column = family + b":" + qualifier
        return self._call(
            self._t1, table, lambda c: c.table(table).counter_inc(key, column, amount), retry=False
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
            tdel = T2.TDelete(row=key, timestamp=timestamp)
            self._t2_call(table, lambda c: c.deleteSingle(name, tdel))
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
                T2.TDelete(
                    row=key,
                    columns=[T2.TColumn(f, None, timestamp) for f in whole],
                    timestamp=timestamp,
                    deleteType=T2.TDeleteType.DELETE_FAMILY,
                )
            )
        cols = [T2.TColumn(f, q, timestamp) for f, q in exact if f not in whole]
        if cols:
            deletes.append(
                T2.TDelete(
                    row=key, columns=cols, timestamp=timestamp, deleteType=T2.TDeleteType.DELETE_COLUMNS
                )
            )
        if not deletes:
            return
        if len(deletes) == 1:
            self._t2_call(table, lambda c: c.deleteSingle(name, deletes[0]))
        else:
            mutations = T2.TRowMutations(row=key, mutations=[T2.TMutation(deleteSingle=d) for d in deletes])
            self._t2_call(table, lambda c: c.mutateRow(name, mutations))

    def _qualifiers_under(
        self, table: str, key: bytes, prefixes: list[ColumnSelector]
    ) -> list[tuple[bytes, bytes]]:
        """The row's (family, qualifier)s under the prefixes: keys only, newest version only (a
        column with any visible version shows up)."""
        read = ReadOptions(columns=tuple(prefixes), max_versions=1)
        cols, filt, _, _ = _read_parts(read)
        tget = T2.TGet(
            row=key, columns=cols, maxVersions=1, filterBytes=filters.all_of(filt, filters.key_only())
        )
        name = table.encode()
        [result] = self._t2_call(table, lambda c: c.getMultiple(name, [tget]))
        return [(cv.family, cv.qualifier) for cv in result.columnValues]

    # -- reads ----------------------------------------------------------------------------------
    def get_rows(self, table: str, keys: Sequence[bytes], read: ReadOptions = DEFAULT_READ) -> list[Row]:
        """getMultiple: versions, time range and filters applied by HBase; missing rows as (key, [])."""
        keys = list(keys)
        for key in keys:
            check_key(key)
        columns, filt, max_versions, time_range = _read_parts(read)
        check_table_name(table)
        if not keys:
            return []
        name = table.encode()
        make_get = T2.TGet
        out: list[Row] = []
        for i in range(0, len(keys), _GET_CHUNK):
            chunk = keys[i : i + _GET_CHUNK]
            tgets = [
                make_get(
                    row=k, columns=columns, timeRange=time_range, maxVersions=max_versions, filterBytes=filt
                )
                for k in chunk
            ]
            results = self._t2_call(table, lambda c, tgets=tgets: c.getMultiple(name, tgets))
            for k, r in zip(chunk, results, strict=True):
                out.append((k, _cells(r)))
        return out

    def scan(self, table: str, scan: Scan) -> RowScanner:
        """Opens an HBase scanner and reads the first batch (so a missing table fails here)."""
        check_scan(scan)
        columns, filt, max_versions, time_range = _read_parts(scan.read)
        if scan.row_regex is not None:
            filt = filters.all_of(_row_filter(scan.row_regex), filt)
        check_table_name(table)
        scanner = _HBaseScanner(self, table, scan, columns, filt, max_versions, time_range)
        if scan.stop and scan.stop <= scan.start:
            # HBase would read start == stop as a get of that row (and refuse start > stop)
            tname = self._tname(table)
            if not self._t2_call(table, lambda c: c.tableExists(tname)):
                raise TableNotFound(f"table {table!r} does not exist")
            scanner.close()
            return scanner
        try:
            scanner.prefetch()
        except BaseException:
            scanner.close()
            raise
        return scanner

    def close(self) -> None:
        self._t1.close()
        self._t2.close()


def _family_descriptor(spec: FamilySpec) -> Any:
    compression = T2.TCompressionAlgorithm._NAMES_TO_VALUES.get(spec.compression.upper())
    if compression is None:
        raise ValueError(f"family {spec.name!r}: unknown compression {spec.compression!r}")
    bloom = T2.TBloomFilterType._NAMES_TO_VALUES.get(spec.bloom_filter.upper())
    if bloom is None:
        raise ValueError(f"family {spec.name!r}: unknown bloom filter type {spec.bloom_filter!r}")
    return T2.TColumnFamilyDescriptor(
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
        tscan = T2.TScan(
            startRow=self._next_start or None,
            stopRow=self._stop,
            columns=self._columns,
            caching=caching,
            maxVersions=self._max_versions,
            timeRange=self._time_range,
            filterBytes=self._filter,
        )
        self._scanner_id = self._store._t2_call(self._table, lambda c: c.openScanner(self._name, tscan))
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
            if isinstance(exc, StoreUnavailable) and not isinstance(exc, _Dropped):
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
        if _fast is not None and self._store.fast_replies:
            return self._store._t2_conn_call(
                self._table, lambda conn: _scanner_rows_fast(conn, scanner_id, size), retry=False
            )
        return _row_tuples(
            self._store._t2_call(self._table, lambda c: c.getScannerRows(scanner_id, size), retry=False)
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
                self._store._t2_call(self._table, lambda c: c.closeScanner(scanner_id))
            except StoreError:
                pass  # already gone on the server: nothing to release

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._first = None
        self._close_scanner()
