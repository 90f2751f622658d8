"""HBase-only facts of the HBase store (the shared semantics are in test_store_conformance.py).

Needs a live HBase (`scripts/hbase start`, then `KIJIREST_HBASE=hbase://127.0.0.1:9090`); without
it the tests marked `hbase` are skipped with that reason. The URI parsing tests need nothing.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import happybase
import pytest

from kijirest.store import open_store
from kijirest.store.base import (
    ColumnSelector,
    FamilySpec,
    ReadOptions,
    Scan,
    Store,
    StoreError,
    StoreUnavailable,
)
from kijirest.store.hbase import HBaseStore
from kijirest.store.hbase.thrift import thrift2

REPO = Path(__file__).resolve().parent.parent
HBASE_ENV = "KIJIREST_HBASE"


def unique_name() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def hbase_uri(hbase_store: Store) -> str:
    """The URI of the session's HBase (conftest's `hbase_store` decides skip or, in CI, failure)."""
    return os.environ[HBASE_ENV]


@pytest.fixture
def hbase(hbase_store: Store, table_name) -> Iterator[tuple[HBaseStore, list[str]]]:
    """The session's HBase store and a list of tables to drop afterwards."""
    assert isinstance(hbase_store, HBaseStore)
    made: list[str] = []
    yield hbase_store, made
    for name in made:
        try:
            hbase_store.delete_table(name)
        except StoreError:
            pass


def _table(hbase, table_name, families) -> str:
    store, made = hbase
    name = table_name()
    made.append(name)
    assert store.create_table(name, families) is True
    return name


def _keys(store: Store, table: str, scan: Scan) -> list[bytes]:
    with store.scan(table, scan) as scanner:
        return [key for batch in scanner for key, _ in batch]


# -- URIs (no HBase needed) -------------------------------------------------------------------------


def test_uri_defaults() -> None:
    store = open_store("hbase://example.invalid")
    assert isinstance(store, HBaseStore)
    assert (store.host, store.port, store.thrift2_port) == ("example.invalid", 9090, 9091)
    store.close()


def test_uri_options() -> None:
    store = HBaseStore.from_uri("hbase://10.1.2.3:19090?thrift2_port=19091&pool_size=3&timeout=2500")
    assert (store.host, store.port, store.thrift2_port) == ("10.1.2.3", 19090, 19091)
    store.close()


@pytest.mark.parametrize(
    "uri",
    [
        "hbase://host?color=blue",  # unknown option
        "hbase://host?pool_size=0",
        "hbase://host?timeout=-5",
        "hbase://host?thrift2_port=x",
        "hbase://host:99999",
        "hbase://host/some/path",
    ],
)
def test_uri_errors(uri: str) -> None:
    with pytest.raises(ValueError, match=r"store URI|pool_size|port"):
        HBaseStore.from_uri(uri)


# -- table settings ---------------------------------------------------------------------------------


@pytest.mark.hbase
def test_families_created_with_every_setting(hbase, table_name, hbase_uri) -> None:
    store, _ = hbase
    name = _table(
        hbase,
        table_name,
        [
            FamilySpec(
                b"a",
                max_versions=7,
                ttl_seconds=86400,
                in_memory=True,
                compression="GZ",
                bloom_filter="ROWCOL",
            ),
            FamilySpec(b"b", block_size=16384, bloom_filter="NONE"),
            FamilySpec(b"c"),
        ],
    )
    host, port = _host_port(hbase_uri)
    conn = happybase.Connection(host, port)
    try:
        got = conn.table(name).families()
    finally:
        conn.close()
    assert got[b"a"]["max_versions"] == 7
    assert got[b"a"]["time_to_live"] == 86400
    assert got[b"a"]["in_memory"] is True
    assert got[b"a"]["compression"] == b"GZ"
    assert got[b"a"]["bloom_filter_type"] == b"ROWCOL"
    for family in (b"a", b"b", b"c"):
        assert got[family]["block_cache_enabled"] is True  # Thrift 1's default would be False
    assert got[b"b"]["bloom_filter_type"] == b"NONE"
    # FamilySpec defaults are HBase's, not Thrift 1's (3 versions, bloom NONE)
    assert (got[b"c"]["max_versions"], got[b"c"]["bloom_filter_type"]) == (1, b"ROW")
    assert got[b"c"]["time_to_live"] == 2147483647

    specs = store.table_families(name)
    assert specs[b"a"] == FamilySpec(
        b"a",
        max_versions=7,
        ttl_seconds=86400,
        in_memory=True,
        compression="GZ",
        bloom_filter="ROWCOL",
        block_size=65536,
    )
    assert specs[b"b"].block_size == 16384  # only Thrift 2 can set it
    assert specs[b"c"].block_size == 65536


@pytest.mark.hbase
def test_codec_hbase_lacks_fails_table_creation(hbase, table_name) -> None:
    store, made = hbase
    name = table_name()
    made.append(name)
    with pytest.raises(StoreError, match=r"(?i)lzo"):
        store.create_table(name, [FamilySpec(b"f", compression="LZO")])
    assert name not in store.list_tables()


# -- connections ------------------------------------------------------------------------------------


def _host_port(uri: str) -> tuple[str, int]:
    store = HBaseStore.from_uri(uri)
    store.close()
    return store.host, store.port


def _thrift2(uri: str) -> tuple[str, int]:
    store = HBaseStore.from_uri(uri)
    store.close()
    return store.host, store.thrift2_port


class _Proxy:
    """A TCP proxy in front of a Thrift server that can cut its connections: `cut_idle()` closes
    every connection at once (the client sees EOF while the connection sits in its pool);
    `cut_on_next_request()` closes a connection when its next request arrives, unanswered."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut_next = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.accepted += 1
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, request: bool) -> None:
        try:
            while data := src.recv(65536):
                if request and self._cut_next.is_set():
                    self._cut_next.clear()
                    self._close(src, dst)
                    return
                dst.sendall(data)
        except OSError:
            pass
        self._close(src, dst)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut_idle(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            self._close(*pair)

    def cut_on_next_request(self) -> None:
        self._cut_next.set()

    def close(self) -> None:
        self.listener.close()
        self.cut_idle()


@pytest.fixture
def proxied(hbase, table_name, hbase_uri) -> Iterator[tuple[HBaseStore, _Proxy, str]]:
    """A store whose Thrift 2 traffic goes through a _Proxy, and a table with one row."""
    store, _ = hbase
    name = _table(hbase, table_name, [FamilySpec(b"f")])
    store.put_row(name, b"r", [(b"f", b"q", 1000, b"v")])
    proxy = _Proxy(_thrift2(hbase_uri))
    host, port = _host_port(hbase_uri)
    through = HBaseStore(host, port, thrift2_port=proxy.port, pool_size=2, timeout_ms=10_000)
    yield through, proxy, name
    through.close()
    proxy.close()


@pytest.mark.hbase
def test_read_retried_once_after_a_dropped_connection(proxied) -> None:
    store, proxy, name = proxied
    expected = [(b"r", [(b"f", b"q", 1000, b"v")])]
    assert store.get_rows(name, [b"r"]) == expected
    assert proxy.accepted == 1
    proxy.cut_on_next_request()  # the pooled connection dies under the request: "TSocket read 0 bytes"
    assert store.get_rows(name, [b"r"]) == expected
    assert proxy.accepted == 2  # answered on a fresh connection
    assert store.get_rows(name, [b"r"]) == expected
    assert proxy.accepted == 2  # which went back to the pool


@pytest.mark.hbase
def test_connection_closed_while_pooled_is_replaced(proxied) -> None:
    store, proxy, name = proxied
    assert store.get_rows(name, [b"r"])[0][1]
    proxy.cut_idle()  # e.g. a restarted Thrift server or an idle timeout
    store.put_row(name, b"s", [(b"f", b"q", 2000, b"w")])
    assert store.get_rows(name, [b"s"]) == [(b"s", [(b"f", b"q", 2000, b"w")])]
    assert proxy.accepted == 2


@pytest.mark.hbase
def test_write_on_a_dropped_connection_is_retried_idempotently(proxied) -> None:
    store, proxy, name = proxied
    assert store.get_rows(name, [b"r"])[0][1]
    proxy.cut_on_next_request()
    store.put_row(name, b"r", [(b"f", b"q", 3000, b"x"), (b"f", b"q", 1000, b"v")])
    rows = store.get_rows(name, [b"r"], ReadOptions(max_versions=None))
    assert rows == [(b"r", [(b"f", b"q", 3000, b"x")])]  # family f keeps one version


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_closed_port_is_store_unavailable() -> None:
    store = HBaseStore("127.0.0.1", _closed_port(), thrift2_port=_closed_port(), timeout_ms=2000)
    try:
        with pytest.raises(StoreUnavailable, match="cannot connect"):
            store.get_rows("t", [b"r"])
        with pytest.raises(StoreUnavailable, match="cannot connect"):
            store.list_tables()
        with pytest.raises(StoreUnavailable):
            store.scan("t", Scan())
        with pytest.raises(StoreUnavailable):
            store.increment("t", b"r", b"f", b"q", 1)
    finally:
        store.close()


def test_silent_server_is_store_unavailable_after_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as mute:  # accepts (backlog), never answers
        port = mute.getsockname()[1]
        store = HBaseStore("127.0.0.1", port, thrift2_port=port, timeout_ms=300)
        try:
            with pytest.raises(StoreUnavailable, match="timed out"):
                store.get_rows("t", [b"r"])
        finally:
            store.close()


@pytest.mark.hbase
def test_many_threads_share_a_small_pool(hbase, table_name, hbase_uri) -> None:
    name = _table(hbase, table_name, [FamilySpec(b"f")])
    small = HBaseStore.from_uri(hbase_uri + ("&" if "?" in hbase_uri else "?") + "pool_size=2")
    try:

        def work(i: int) -> bytes:
            key = b"k%03d" % i
            small.put_row(name, key, [(b"f", b"q", 1000, key)])
            return small.get_rows(name, [key])[0][1][0][3]

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(work, range(40))) == [b"k%03d" % i for i in range(40)]
        assert len(_keys(small, name, Scan())) == 40
    finally:
        small.close()


# -- scans ------------------------------------------------------------------------------------------

TRICKY_KEYS = [
    b"a.b",
    b"axb",
    b"a\nb",
    b"a\x00b",
    b"a\rb",
    b"a*b",
    b"ab",
    b"a\\b",
    b"a'b",
    b"a\xffb",
    b"\n",
    b"a.b\n",
    b"(a)",
    b"[x]",
    b"a|b",
    b"$^",
]

# Java patterns as the gateway sends them (whole key, ending in \z); Python checks with fullmatch.
TRICKY_REGEXES = [
    r"a.b\z",
    r"a\.b\z",
    r"a\x00b\z",
    r"a\nb\z",
    r"a[^\n]b\z",
    r"a\*b\z",
    r"a\\b\z",
    r"a'b\z",
    r"a\xffb\z",
    r"\(a\)\z",
    r"\[x\]\z",
    r"a\|b\z",
    r"\$\^\z",
    r"a.*\z",
    r"(.)*\z",
    r"a.b",  # without \z the whole key must match all the same
    r"a",
    r"\n",
]


@pytest.fixture(scope="module")
def tricky_table(hbase_store: Store) -> Iterator[str]:
    """One table holding TRICKY_KEYS, shared by the regex cases (a table costs ~0.5 s)."""
    name = unique_name()
    assert hbase_store.create_table(name, [FamilySpec(b"f")])
    for key in TRICKY_KEYS:
        hbase_store.put_row(name, key, [(b"f", b"q", 1000, key)])
    yield name
    hbase_store.delete_table(name)


@pytest.mark.hbase
@pytest.mark.parametrize("regex", TRICKY_REGEXES)
def test_row_regex_pushdown_matches_python_fullmatch(
    hbase_store: Store, tricky_table: str, regex: str
) -> None:
    python = re.compile(regex[:-2] + r"\Z" if regex.endswith(r"\z") else regex, re.DOTALL)
    expected = sorted(k for k in TRICKY_KEYS if python.fullmatch(k.decode("latin-1")))
    assert _keys(hbase_store, tricky_table, Scan(row_regex=regex)) == expected


@pytest.mark.hbase
def test_invalid_row_regex_is_a_value_error(hbase, table_name) -> None:
    store, _ = hbase
    name = _table(hbase, table_name, [FamilySpec(b"f")])
    with pytest.raises(ValueError):
        store.scan(name, Scan(row_regex="(unclosed"))


def _need_c_reader() -> None:
    """Skip without the C reader; in CI (which installs a compiler's build) fail instead."""
    from kijirest.store.hbase import fastread

    if fastread.c_reader is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("kijirest.store.hbase._thrift2fast was not built")
        pytest.skip("kijirest.store.hbase._thrift2fast is not built (pip install -e . with a C compiler)")


@pytest.fixture(params=["c-reader", "thriftpy2"])
def reader(request) -> Iterator[str]:
    """Scan replies read by the C reader (kijirest/store/hbase/_thrift2fast.c) or by thriftpy2 alone: the
    session's store and every store a test makes here read the same way."""
    if request.param == "c-reader":
        _need_c_reader()
    before = HBaseStore.fast_replies
    HBaseStore.fast_replies = request.param == "c-reader"
    yield request.param
    HBaseStore.fast_replies = before


@pytest.mark.hbase
def test_large_replies_read_whole(hbase, table_name, reader) -> None:
    """Batches of several MB (values of up to 45 kB, every byte value; a row of 30,000 cells)
    arrive in many socket reads; every row comes back intact, in order, in batches of the asked
    size."""
    store, _ = hbase
    name = _table(hbase, table_name, [FamilySpec(b"f", max_versions=3)])
    written = {}
    for i in range(60):
        key = b"r%03d\x00\xff" % i
        cells = [
            (b"f", b"q%d" % j, 1000 + v, bytes(range(256)) * (i * j) + b"%d" % v)
            for j in range(4)
            for v in (2, 1, 0)
        ]
        store.put_row(name, key, cells)
        written[key] = cells
    wide = [(b"f", b"w%06d" % j, 1000, b"%d" % j) for j in range(30_000)]  # one row of 30,000 cells
    store.put_rows(name, [(b"r999", wide[i : i + 5000]) for i in range(0, len(wide), 5000)])
    written[b"r999"] = wide
    read = ReadOptions(max_versions=None)
    for batch_size in (1, 7, 60):
        batches = []
        with store.scan(name, Scan(read=read, batch_size=batch_size, first_batch_size=batch_size)) as scanner:
            batches = list(scanner)
        assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
        assert dict(row for batch in batches for row in batch) == written
        assert [key for batch in batches for key, _ in batch] == sorted(written)


@pytest.mark.hbase
def test_an_error_reply_raises_as_on_the_thriftpy2_path(hbase) -> None:
    """getScannerRows of an unknown scanner id: the C reader's path hands the exception reply to
    thriftpy2, so the same exception comes out, and the connection stays usable."""
    from kijirest.store.hbase import fastread, pool

    _need_c_reader()
    store, _ = hbase
    errors = []
    for _ in range(2):
        with store._thrift2_pool.connection() as (conn, _reused):
            with pytest.raises(pool.SERVER_REPLIES) as fast_error:
                fastread.scanner_rows(conn, 987654321, 10)
            with pytest.raises(pool.SERVER_REPLIES) as thriftpy2_error:
                conn.client.getScannerRows(987654321, 10)
            errors.append((fast_error.value, thriftpy2_error.value))
            assert conn.client.tableExists(thrift2.TTableName(qualifier=b"no_such_table")) is False
    for fast_exc, thriftpy2_exc in errors:
        assert type(fast_exc) is type(thriftpy2_exc)
        assert vars(fast_exc) == vars(thriftpy2_exc)


@pytest.mark.hbase
def test_scan_resumes_when_the_server_loses_the_scanner(hbase, table_name, reader) -> None:
    store, _ = hbase
    name = _table(hbase, table_name, [FamilySpec(b"f")])
    keys = [b"r%02d" % i for i in range(20)]
    for key in keys:
        store.put_row(name, key, [(b"f", b"q", 1000, key)])
    seen: list[bytes] = []
    with store.scan(name, Scan(batch_size=4)) as scanner:
        for batch in scanner:
            seen.extend(key for key, _ in batch)
            if len(seen) == 8:
                # what a scanner lease expiry does: the server forgets the id behind our back
                lost = scanner._scanner_id
                store._thrift2_call(name, lambda c, lost=lost: c.closeScanner(lost))
    assert seen == keys


@pytest.mark.hbase
def test_scan_survives_a_connection_dropped_between_batches(proxied, reader) -> None:
    store, proxy, name = proxied
    keys = [b"r%02d" % i for i in range(20)]
    for key in keys:
        store.put_row(name, key, [(b"f", b"q", 1000, key)])
    seen: list[bytes] = []
    with store.scan(name, Scan(batch_size=4)) as scanner:
        for batch in scanner:
            seen.extend(key for key, _ in batch)
            if len(seen) == 8:
                proxy.cut_on_next_request()
    assert seen == [b"r", *keys]  # the fixture's row b"r" first
    assert proxy.accepted == 2


@pytest.mark.hbase
def test_growing_batches_stop_exactly_at_the_stop_row(hbase, table_name) -> None:
    store, _ = hbase
    name = _table(hbase, table_name, [FamilySpec(b"f")])
    for key in (b"a", b"a\x00", b"a\x00\x00", b"b"):
        store.put_row(name, key, [(b"f", b"q", 1000, key)])
    for first in (1, 2, None):
        scan = Scan(start=b"a", stop=b"a\x00", batch_size=50, first_batch_size=first)
        assert _keys(store, name, scan) == [b"a"]
        scan = Scan(start=b"a", stop=b"a\x00\x00", batch_size=50, first_batch_size=first)
        assert _keys(store, name, scan) == [b"a", b"a\x00"]


@pytest.mark.hbase
def test_prefix_selectors_with_versions_and_time_range(hbase, table_name) -> None:
    store, _ = hbase
    name = _table(hbase, table_name, [FamilySpec(b"f", max_versions=5), FamilySpec(b"g", max_versions=5)])
    cells = [
        (f, q, ts, b"%s:%s@%d" % (f, q, ts))
        for f in (b"f", b"g")
        for q in (b"pa", b"pb", b"x")
        for ts in (1, 2, 3, 4)
    ]
    store.put_row(name, b"r", cells)
    read = ReadOptions(
        columns=(ColumnSelector(b"f", prefix=b"p"), ColumnSelector(b"g", qualifier=b"x")),
        max_versions=2,
        time_range=(2, 4),
    )
    expected = [
        (b"f", b"pa", 3, b"f:pa@3"),
        (b"f", b"pa", 2, b"f:pa@2"),
        (b"f", b"pb", 3, b"f:pb@3"),
        (b"f", b"pb", 2, b"f:pb@2"),
        (b"g", b"x", 3, b"g:x@3"),
        (b"g", b"x", 2, b"g:x@2"),
    ]
    assert store.get_rows(name, [b"r"], read) == [(b"r", expected)]
    with store.scan(name, Scan(read=read)) as scanner:
        assert [row for batch in scanner for row in batch] == [(b"r", expected)]


@pytest.mark.hbase
def test_qualifier_with_a_quote_and_binary_bytes(hbase, table_name) -> None:
    store, _ = hbase
    name = _table(hbase, table_name, [FamilySpec(b"f")])
    odd = [b"it's", b"'", b"''", b"\x00')", b"\xff\xfe", b"a b"]
    store.put_row(name, b"r", [(b"f", q, 1000, q) for q in odd])
    for q in odd:
        for sel in (ColumnSelector(b"f", qualifier=q), ColumnSelector(b"f", prefix=q)):
            got = store.get_rows(name, [b"r"], ReadOptions(columns=(sel,)))[0][1]
            assert [c[1] for c in got] == sorted(x for x in odd if sel.matches(b"f", x)), sel
    store.delete(name, b"r", [ColumnSelector(b"f", prefix=b"'")])
    assert [c[1] for c in store.get_rows(name, [b"r"])[0][1]] == sorted(
        x for x in odd if not x.startswith(b"'")
    )


# -- the IDL subset ---------------------------------------------------------------------------------


@pytest.mark.hbase
def test_idl_subset_agrees_with_the_hbase_jar(tmp_path: Path) -> None:
    """Every struct field, enum value and method argument of kijirest's IDL subset has HBase's id
    and type (the jar scripts/hbase downloaded carries HBase's own IDL)."""
    import thriftpy2

    home = Path(os.environ.get("KIJIREST_HBASE_HOME", REPO / ".hbase"))
    cp = home / "classpath.txt"
    if not cp.exists():
        pytest.skip(f"no {cp} (scripts/hbase start writes it)")
    [jar] = [p for p in cp.read_text().strip().split(":") if Path(p).name.startswith("hbase-thrift-")]
    with zipfile.ZipFile(jar) as z:
        text = z.read("org/apache/hadoop/hbase/thrift2/hbase.thrift")
    ref_path = tmp_path / "hbase.thrift"
    ref_path.write_bytes(text)
    ref = thriftpy2.load(str(ref_path), module_name="kijirest_ref_hbase_thrift")
    from kijirest.store.hbase.thrift import thrift2

    def same(a: dict, b: dict, what: str) -> None:
        for fid, spec in a.items():
            assert fid in b, f"{what}: field {fid} not in HBase's IDL"
            assert (b[fid][0], b[fid][1]) == (spec[0], spec[1]), f"{what}: field {fid}"

    for attr in dir(thrift2):
        mine = getattr(thrift2, attr)
        if attr == "THBaseService":
            for method in mine.thrift_services:
                for part in ("_args", "_result"):
                    same(
                        getattr(mine, method + part).thrift_spec,
                        getattr(ref.THBaseService, method + part).thrift_spec,
                        method + part,
                    )
        elif hasattr(mine, "thrift_spec"):
            same(mine.thrift_spec, getattr(ref, attr).thrift_spec, attr)
        elif hasattr(mine, "_VALUES_TO_NAMES"):
            for value, label in mine._VALUES_TO_NAMES.items():
                assert getattr(ref, attr)._VALUES_TO_NAMES[value] == label, attr
