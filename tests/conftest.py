"""Shared fixtures: a `store` of every kind, unique table names, an `embedded` store in a temp dir.

`store` runs a test once per store: "memory", "embedded" and "hbase". The HBase run needs a live
HBase (`scripts/hbase start`, then `KIJIREST_HBASE=hbase://127.0.0.1:9090`); without it that run is
skipped with the reason shown. Tables a test names through `table_name()` are dropped at teardown.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from kijirest.store.base import Store, TableNotFound

HBASE_ENV = "KIJIREST_HBASE"
HBASE_SKIP_REASON = f"{HBASE_ENV} not set (scripts/hbase start, then {HBASE_ENV}=hbase://127.0.0.1:9090)"

STORE_KINDS = ["memory", "embedded", "hbase"]


def hbase_uri() -> str:
    """The HBase store URI; without one, HBase tests are skipped with the reason — except in CI,
    where HBase is always started and a missing HBase must fail the run, never skip it."""
    uri = os.environ.get(HBASE_ENV)
    if not uri:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI runs every HBase test, but {HBASE_ENV} is not set (scripts/hbase start failed?)")
        pytest.skip(HBASE_SKIP_REASON)
    return uri


def unique_name(prefix: str = "t_") -> str:
    """A name no other test (or earlier run against the same HBase) uses."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def hbase_store() -> Iterator[Store]:
    """One HBase connection for the whole session (connecting costs more than a test)."""
    uri = hbase_uri()
    from kijirest.store import open_store

    store = open_store(uri)
    yield store
    store.close()


@pytest.fixture
def created_tables() -> list[str]:
    """Names handed out by `table_name()` in this test."""
    return []


@pytest.fixture
def table_name(created_tables: list[str]) -> Callable[[], str]:
    """Call it for a fresh table name (`t_<hex>`); the `store` fixture drops such tables afterwards."""

    def make() -> str:
        name = unique_name()
        created_tables.append(name)
        return name

    return make


def _drop(store: Store, names: list[str]) -> None:
    for name in names:
        try:
            store.delete_table(name)
        except TableNotFound:
            pass


@pytest.fixture
def embedded(tmp_path) -> Iterator[Store]:
    """An embedded store in a fresh temp directory."""
    from kijirest.store.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "embedded")
    yield store
    store.close()


@pytest.fixture(
    params=[
        pytest.param(kind, id=kind, marks=[pytest.mark.hbase] if kind == "hbase" else [])
        for kind in STORE_KINDS
    ]
)
def store(request: pytest.FixtureRequest, created_tables: list[str]) -> Iterator[Store]:
    """Every store kind in turn; tables named with `table_name()` are dropped at teardown."""
    kind = request.param
    if kind == "memory":
        from kijirest.store.memory import MemoryStore

        s: Store = MemoryStore()
        yield s
        s.close()
    elif kind == "embedded":
        s = request.getfixturevalue("embedded")
        yield s
    else:
        s = request.getfixturevalue("hbase_store")
        try:
            yield s
        finally:
            _drop(s, created_tables)


# ---------------------------------------------------------------------------------------------
# The HTTP API (tests/test_api_*.py): an app on the layouts of tests/data/api_layouts, through the
# real aiohttp stack, once per store kind. Byte helpers follow encodings.md, not the implementation.
# ---------------------------------------------------------------------------------------------

API_LAYOUTS = Path(__file__).parent / "data" / "api_layouts"
API_INSTANCE = "api"
PROBLEM_KEYS = {"type", "title", "status", "detail", "exceptionName", "exception"}


@dataclass
class Answer:
    """One HTTP answer, fully read."""

    status: int
    headers: Any  # CIMultiDictProxy
    body: bytes
    method: str = "GET"
    url: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def rows(self) -> list[Any]:
        """The row stream of a 200 answer: `\\r\\n`-terminated JSON lines, empty body = no rows."""
        assert self.status == 200, f"{self.method} {self.url}: {self.status} {self.body[:500]!r}"
        if not self.body:
            return []
        assert self.body.endswith(b"\r\n"), self.body[-200:]
        return [orjson.loads(line) for line in self.body[:-2].split(b"\r\n")]

    def problem(self, status: int, where: str | None = None) -> dict[str, Any]:
        """Assert an api.md error answer; `where` = the expected start of the detail."""
        assert self.status == status, f"{self.method} {self.url}: {self.status} {self.body[:500]!r}"
        assert self.content_type == "application/problem+json", self.headers.get("Content-Type")
        body = self.json()
        assert set(body) == PROBLEM_KEYS, body
        assert body["type"] == "about:blank"
        assert body["status"] == status
        assert isinstance(body["title"], str) and body["title"]
        assert isinstance(body["exceptionName"], str) and body["exceptionName"]
        assert isinstance(body["detail"], str) and body["detail"], body
        if status < 500:
            assert ": " in body["detail"], body  # "<where>: <what was wrong>"
        assert body["exception"] == body["detail"]
        assert b"Traceback" not in self.body and b'File "' not in self.body
        if where is not None:
            assert body["detail"].split(": ", 1)[0].startswith(where), body["detail"]
        return body


def compact(value: Any) -> str:
    """Compact JSON text, non-ASCII kept (what a client puts in eid=...)."""
    return orjson.dumps(value).decode()


def query_string(params: Any) -> str:
    """`name=value&...`, every value percent-encoded (no `+`); non-str values as compact JSON."""
    items = params.items() if isinstance(params, dict) else params
    parts = []
    for name, value in items:
        text = value if isinstance(value, str) else compact(value)
        parts.append(f"{quote(name, safe='.')}={quote(text, safe='')}")
    return "&".join(parts)


class ApiClient:
    """The aiohttp test client plus the requests and Kiji byte rules the API tests need."""

    def __init__(self, client: Any, kind: str) -> None:
        self.client = client
        self.kind = kind

    @property
    def store(self) -> Store:
        """The app's own (blocking) store, for raw-byte setups (foreign keys, undecodable cells)."""
        from kijirest.state import STORE

        return self.client.app[STORE].store

    async def request(
        self,
        method: str,
        path: str,
        params: Any = None,
        *,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        url = path + ("?" + query_string(params) if params else "")
        if body is not None:
            data = orjson.dumps(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        async with self.client.request(method, url, data=data, headers=headers) as resp:
            raw = await resp.read()
            return Answer(resp.status, resp.headers, raw, method, url)

    async def get(self, path: str, params: Any = None, **kw: Any) -> Answer:
        return await self.request("GET", path, params, **kw)

    @staticmethod
    def rows_path(table: str, instance: str = API_INSTANCE) -> str:
        return f"/v1/instances/{instance}/tables/{table}/rows"

    async def rows(self, table: str, params: Any = None, **kw: Any) -> Answer:
        return await self.request("GET", self.rows_path(table), params, **kw)

    async def post(self, table: str, body: Any, params: Any = None, **kw: Any) -> Answer:
        return await self.request("POST", self.rows_path(table), params, body=body, **kw)

    async def delete(self, table: str, params: Any = None, **kw: Any) -> Answer:
        return await self.request("DELETE", self.rows_path(table), params, **kw)

    async def put(self, table: str, entity: Any, cells: dict[str, dict[str, list[dict]]]) -> None:
        """POST one row and require success."""
        answer = await self.post(table, {"entityId": entity, "cells": cells})
        assert answer.status == 200, f"POST {entity}: {answer.status} {answer.body[:500]!r}"

    async def entries(self, instance: str = API_INSTANCE) -> list[dict[str, Any]]:
        answer = await self.get(f"/v1/instances/{instance}")
        assert answer.status == 200, answer.body
        return answer.json()["schema_table"]["entries"]

    async def uid_of(self, schema_text: str, instance: str = API_INSTANCE) -> int:
        """The UID of a canonical schema text in the instance's schema table."""
        found = [e["id"] for e in await self.entries(instance) if e["avro_schema"] == schema_text]
        assert found, f"{schema_text} is not in the schema table"
        return found[0]

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    @staticmethod
    def compact(value: Any) -> str:
        return compact(value)

    # -- encodings.md byte rules ------------------------------------------------------------------
    @staticmethod
    def md5(data: bytes) -> bytes:
        return hashlib.md5(data).digest()

    @staticmethod
    def formatted_key(types: str, values: list[Any], hash_size: int = 2, range_scan_start: int = 1) -> bytes:
        """§1.4: `types` one letter per component (S string, I int, L long); None = null."""
        hashed = b""
        body = b""
        for i, (kind, value) in enumerate(zip(types, values, strict=False)):
            if value is None:
                continue
            if kind == "S":
                raw = value.encode("utf-8")
                part = raw + b"\x00"
            else:
                packed = struct.pack(">i" if kind == "I" else ">q", value)
                raw = part = bytes([packed[0] ^ 0x80]) + packed[1:]  # sign bit flipped
            if i < range_scan_start:
                hashed += raw
            body += part
        return hashlib.md5(hashed).digest()[:hash_size] + body

    @classmethod
    def docs_key(cls, *values: Any) -> bytes:
        """Row key of the `docs` table (STRING, STRING, STRING, INTEGER, LONG; hash 2; range_scan_start 1)."""
        return cls.formatted_key("SSSIL", list(values))

    @classmethod
    def kinds_key(cls, k: str) -> bytes:
        return cls.formatted_key("S", [k])

    @staticmethod
    def to_string_binary(key: bytes) -> str:
        """§1.8 writing rule: printable ASCII except backslash as is, every other byte `\\xHH`."""
        return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x5C else f"\\x{b:02X}" for b in key)

    @classmethod
    def hbase_eid(cls, key: bytes) -> str:
        return "hbase=" + cls.to_string_binary(key)

    @staticmethod
    def java_urlencode(text: str) -> str:
        """Java's URLEncoder (UTF-8): space → +, A-Za-z0-9 . - * _ kept, other bytes %XX."""
        keep = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_"
        out = []
        for b in text.encode("utf-8"):
            if b == 0x20:
                out.append("+")
            elif b in keep:
                out.append(chr(b))
            else:
                out.append(f"%{b:02X}")
        return "".join(out)

    @staticmethod
    def varint(n: int) -> bytes:
        """§3.2: unsigned LEB128 (not zig-zag)."""
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            if n:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                return bytes(out)

    @staticmethod
    def avro(schema: Any, datum: Any) -> bytes:
        """Avro binary of one datum (§3.3)."""
        import fastavro

        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), datum)
        return buf.getvalue()

    @classmethod
    def uid_cell(cls, uid: int, schema: Any, datum: Any) -> bytes:
        """A UID-storage cell: varint(uid) ‖ Avro binary."""
        return cls.varint(uid) + cls.avro(schema, datum)

    @staticmethod
    def hbase_table(table: str, instance: str = API_INSTANCE) -> str:
        return f"kiji.{instance}.table.{table}"


def _api_store_uri(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "embedded":
        return f"embedded:{tmp_path / 'kiji-data'}"
    return hbase_uri()


@pytest.fixture(
    params=[
        pytest.param(kind, id=kind, marks=[pytest.mark.hbase] if kind == "hbase" else [])
        for kind in STORE_KINDS
    ]
)
def api_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, store URI) for every store kind; the HBase one is skipped without KIJIREST_HBASE."""
    return request.param, _api_store_uri(request.param, tmp_path)


def served(app: Any) -> Any:
    """An aiohttp test server serving `app` as `kijirest serve` does (kijirest.server.EdgeRunner:
    its timeouts, max_connections, problem+json parse errors), handlers not cancelled when their
    client leaves (as in production)."""
    from aiohttp.test_utils import TestServer

    from kijirest.server import EdgeRunner

    class EdgeTestServer(TestServer):
        async def _make_runner(self, **kwargs: Any) -> Any:
            kwargs.pop("handler_cancellation", None)
            return EdgeRunner(self.app, **kwargs)

    return EdgeTestServer(app)


@pytest.fixture
async def api(aiohttp_client: Any, api_store: tuple[str, str]) -> ApiClient:
    """A served app on tests/data/api_layouts, once per store kind.

    On HBase the tables are shared by every test of the session (and by earlier runs): tests use
    their own entity IDs (`uid`) and scan only inside ranges or wildcards of their own.
    """
    from kijirest.app import init_app
    from kijirest.settings import Settings

    kind, uri = api_store
    app = await init_app(Settings(layouts=str(API_LAYOUTS), store=uri))
    return ApiClient(await aiohttp_client(served(app)), kind)


@pytest.fixture
def make_api(aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`await make_api(store=..., layouts=..., wrap=fn, **settings)`: an app with other settings.

    `wrap(store) -> store` replaces the store the app opens (failure injection, scan recording).
    """
    from kijirest.settings import Settings

    async def make(
        *, store: str = "memory:", layouts: Path | str = API_LAYOUTS, wrap: Any = None, **settings: Any
    ) -> ApiClient:
        import kijirest.app as app_module

        if wrap is not None:
            real_open = app_module.open_store
            monkeypatch.setattr(app_module, "open_store", lambda uri, **kw: wrap(real_open(uri, **kw)))
        app = await app_module.init_app(Settings(layouts=str(layouts), store=store, **settings))
        return ApiClient(await aiohttp_client(served(app)), store.split(":")[0])

    return make


@pytest.fixture
def uid() -> str:
    """A string no other test (or earlier run on the same HBase) uses: the test's own entity IDs."""
    return unique_name("u")
