"""Connections to HBase's Thrift gateways: one small pool per gateway, and the error mapping.

A call checks a connection out for its duration only, so a thread pool of N workers needs N
connections, and an open scan holds none between batches (the Thrift 2 server keeps scanners by id
for all its connections). A pooled connection that the server closed is noticed before use; a read
or idempotent write that still fails on a reused connection ("TSocket read 0 bytes", broken pipe)
is retried once on a fresh one. Unreachable HBase or a timeout raises StoreUnavailable; a server's
error reply becomes a StoreError (TableNotFound, StoreUnavailable when HBase behind a live Thrift
server cannot serve: ZooKeeper, master or RegionServer down or starting, a table or region not
serving), so that the API answers 503 for every outage and 500 only for what is a bug.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import happybase
from thriftpy2.protocol import TCyBinaryProtocol
from thriftpy2.thrift import TApplicationException, TClient
from thriftpy2.transport import TCyBufferedTransport, TSocket, TTransportException

from kijirest.store.base import StoreError, StoreUnavailable, TableNotFound
from kijirest.store.hbase.thrift import thrift1, thrift2

_CONNECT_TIMEOUT_MS = 10_000
#: read/write buffer of a Thrift 2 connection: a scan batch is ~0.5-2 MB, and with thriftpy2's
#: default (4 KiB) it arrived in hundreds of Python-level socket reads
_BUFFER_BYTES = 256 * 1024

Result = TypeVar("Result")

# Errors that mean "the connection is gone" (retry once on a fresh one if it was a pooled one).
_CONNECTION_GONE = (
    TTransportException,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    EOFError,
)
# Server replies: the connection is still in a clean state after them.
_THRIFT1_REPLIES = (thrift1.IOError, thrift1.IllegalArgument, thrift1.AlreadyExists)
SERVER_REPLIES = (thrift2.TIOError, thrift2.TIllegalArgument, TApplicationException, *_THRIFT1_REPLIES)
# HBase-side conditions behind a live Thrift server that still mean "HBase is not available": the
# Thrift server answers, but the cluster behind it does not (master, RegionServer or ZooKeeper down,
# starting, or a region / table not serving). Found by provoking them on a standalone HBase 2.6:
# with the master JVM (master + RegionServer + ZooKeeper) stopped and the gateways up, Thrift 2
# answers TIOError "Zookeeper LIST could not be completed in 10000 ms" (also GET), Thrift 1 IOError
# "org.apache.hadoop.hbase.DoNotRetryIOException: Zookeeper GET could not be completed in 10000 ms";
# on a disabled table Thrift 2 answers "<table> is disabled." and Thrift 1
# "org.apache.hadoop.hbase.TableNotEnabledException: <table> is disabled.". The others are the
# exceptions of HBase's client for the same conditions (master starting, servers going away).
_UNAVAILABLE_MARKERS = (
    "could not be completed in",  # ReadOnlyZKClient: "Zookeeper GET|LIST|EXISTS could not be ..."
    "ConnectionLossException",
    "SessionExpiredException",
    "KeeperException",
    "MasterNotRunningException",
    "PleaseHoldException",
    "ServerNotRunningYetException",
    "RegionServerStoppedException",
    "RegionServerAbortedException",
    "RetriesExhaustedException",
    "CallTimeoutException",
    "SocketTimeoutException",
    "TimeoutIOException",
    "ConnectException",
    "ConnectionClosedException",
    "ConnectionClosingException",
    "CallQueueTooBigException",
    "CallDroppedException",
    "ServerTooBusyException",
    "RegionTooBusyException",
    "NotServingRegionException",
    "RegionOfflineException",
    "RegionMovedException",
    "NoServerForRegionException",
    "TableNotEnabledException",
    "TableNotDisabledException",
)
_ZOOKEEPER = "zookeeper"


class ConnectionDropped(StoreUnavailable):
    """The connection broke under a call (as opposed to a timeout or a refused connection)."""


def socket_readable(sock: socket.socket) -> bool:
    """Bytes (or EOF) are waiting on the socket now."""
    poller = select.poll()  # not select(): no limit on the fd number
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class Connection:
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
            return socket_readable(self.sock)  # readable: EOF or unasked bytes, unusable either way
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        try:
            self._close()
        except Exception:
            pass


class Pool:
    """At most `size` connections to one gateway, each used by one thread at a time."""

    def __init__(self, name: str, factory: Callable[[], Connection], size: int, wait_s: float) -> None:
        self.name = name
        self._factory = factory
        self._wait_s = wait_s
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self.closed = False

    @contextmanager
    def connection(self) -> Iterator[tuple[Connection, bool]]:
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
            except SERVER_REPLIES:
                self._put_back(conn)
                raise
            except BaseException:
                conn.close()
                raise
            else:
                self._put_back(conn)
        finally:
            self._slots.release()

    def call(
        self,
        table: str | None,
        fn: Callable[[Any], Result],
        *,
        retry: bool = True,
        raw: bool = False,
    ) -> Result:
        """fn(client) (fn(connection) when `raw`) on a connection of this pool; server errors
        mapped, a dropped pooled connection retried once (when `retry`), transport failures ->
        StoreUnavailable."""
        for attempt in (1, 2):
            try:
                with self.connection() as (conn, reused):
                    return fn(conn if raw else conn.client)
            except SERVER_REPLIES as exc:
                raise server_error(exc, table) from None
            except TimeoutError as exc:
                raise StoreUnavailable(f"{self.name}: timed out ({exc})") from None
            except _CONNECTION_GONE as exc:
                if isinstance(exc, TTransportException) and exc.type == TTransportException.TIMED_OUT:
                    raise StoreUnavailable(f"{self.name}: timed out ({exc})") from None
                if attempt == 1 and retry and reused:
                    continue
                raise ConnectionDropped(f"{self.name}: connection failed: {exc}") from None
            except OSError as exc:
                raise StoreUnavailable(f"{self.name}: connection failed: {exc}") from None
        raise AssertionError("unreachable")

    def _put_back(self, conn: Connection) -> None:
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


def thrift2_factory(host: str, port: int, timeout_ms: int) -> Callable[[], Connection]:
    def make() -> Connection:
        sock = TSocket(
            host, port, socket_timeout=timeout_ms, connect_timeout=min(timeout_ms, _CONNECT_TIMEOUT_MS)
        )
        trans = TCyBufferedTransport(sock, _BUFFER_BYTES)
        trans.open()
        client = TClient(thrift2.THBaseService, TCyBinaryProtocol(trans))
        return Connection(client, sock.sock, trans.close)

    return make


def thrift1_factory(host: str, port: int, timeout_ms: int) -> Callable[[], Connection]:
    def make() -> Connection:
        conn = happybase.Connection(host, port, timeout=timeout_ms, autoconnect=False)
        conn.open()
        raw = getattr(getattr(conn.transport, "sock", None), "sock", None)
        return Connection(conn, raw, conn.close)

    return make


# -- errors -----------------------------------------------------------------------------------------


def _message(exc: BaseException) -> str:
    msg = getattr(exc, "message", None)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return (msg or type(exc).__name__).strip()


def server_error(exc: BaseException, table: str | None) -> StoreError:
    """A Thrift server's error reply as a StoreError subclass (first line of HBase's message)."""
    msg = _message(exc)
    first = msg.splitlines()[0] if msg else type(exc).__name__
    if table is not None and ("TableNotFoundException" in first or first in (table, f"default:{table}")):
        return TableNotFound(f"table {table!r} does not exist", table)
    if (
        # an exception the Thrift server's handler did not expect (HBase's client failing under
        # it, e.g. its connection to the cluster closed): the server cannot serve, not our bug
        (isinstance(exc, TApplicationException) and exc.type == TApplicationException.INTERNAL_ERROR)
        or any(marker in msg for marker in _UNAVAILABLE_MARKERS)
        or _ZOOKEEPER in first.lower()
        or (table is not None and first in (f"{table} is disabled.", f"default:{table} is disabled."))
    ):
        return StoreUnavailable(f"HBase is not available: {first}")
    where = f"table {table!r}: " if table is not None else ""
    return StoreError(f"{where}HBase: {first}")
