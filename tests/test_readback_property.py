"""Property: anything the gateway accepts can be read back (issue "Holds under abuse and faults").

Generated POST bodies go to a real gateway (`kijirest.server.EdgeRunner` on a loopback port, in a
thread of its own) through a plain HTTP client. For every body:
- the answer is a 200 or a 4xx problem, never a 5xx;
- refused: the row holds nothing afterwards;
- accepted: a GET of the row and a scan over it answer 200 with a well-formed stream (no error tail),
  every posted column is there with its timestamps, and posting the values as they were read
  (`api.md`: "a value read can be posted back") to a second row reads back identical cells.

Values are drawn per column kind of `tests/data/api_layouts/api/kinds.json`, mostly well-typed (so
that most bodies are accepted) and sometimes not, with deep nesting near the limits, long strings,
numbers at and past the Avro bounds, and any writer schema in the schema-free column `v:free`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_LAYOUTS, hbase_uri, unique_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATH = "/v1/instances/api/tables/kinds/rows"
INT32 = 2**31
INT64 = 2**63
MAX_EXAMPLES = 200


class Served:
    """A gateway on 127.0.0.1, served from its own event-loop thread, and a blocking client."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.base = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: Any = None

    def start(self) -> None:
        from aiohttp import web

        from kijirest.app import init_app
        from kijirest.server import EdgeRunner
        from kijirest.settings import Settings

        async def up() -> str:
            app = await init_app(Settings(layouts=str(API_LAYOUTS), store=self.store))
            self._runner = EdgeRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return f"http://127.0.0.1:{port}"

        self._thread.start()
        self.base = asyncio.run_coroutine_threadsafe(up(), self._loop).result(120)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def request(self, method: str, query: dict[str, str] | None = None, body: bytes | None = None) -> tuple:
        url = self.base + PATH + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(kind, id=kind, marks=[pytest.mark.hbase] if kind == "hbase" else [])
        for kind in ("memory", "embedded", "hbase")
    ],
)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if request.param == "memory":
        uri = "memory:"
    elif request.param == "embedded":
        uri = f"embedded:{Path(tmp_path_factory.mktemp('readback')) / 'store'}"
    else:
        uri = hbase_uri()
    gateway = Served(uri)
    gateway.start()
    yield gateway
    gateway.stop()


# -- values -------------------------------------------------------------------------------------------

texts = st.text(max_size=40) | st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=10)
longs = st.integers(min_value=-INT64, max_value=INT64 - 1)
ints = st.integers(min_value=-INT32, max_value=INT32 - 1)
odd_numbers = st.sampled_from([INT32, -INT32 - 1, INT64, -INT64 - 1, 10**30, 1.5, -0.0, 1e308])
floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | longs | floats | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
latin1 = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=12)


def nested(depth: int) -> tuple[Any, Any]:
    schema: Any = "long"
    value: Any = depth
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
        value = [value]
    return schema, value


@st.composite
def free_cells(draw: st.DrawFn) -> dict[str, Any]:
    """A cell of `v:free` (validation NONE): any writer schema with a value meant for it."""
    kind = draw(st.sampled_from(["primitive", "nested", "map", "record", "wrong"]))
    if kind == "primitive":
        schema, value = draw(
            st.sampled_from(
                [
                    ("string", texts),
                    ("long", longs),
                    ("double", floats),
                    ("boolean", st.booleans()),
                    ("bytes", latin1),
                ]
            )
        )
        return {"value": draw(value), "writer_schema": schema}
    if kind == "nested":
        schema, value = nested(draw(st.integers(min_value=1, max_value=100)))  # the schema limit
        return {"value": value, "writer_schema": schema}
    if kind == "map":
        return {
            "value": draw(st.dictionaries(texts, st.lists(longs, max_size=3), max_size=4)),
            "writer_schema": {"type": "map", "values": {"type": "array", "items": "long"}},
        }
    if kind == "record":
        return {
            "value": {"a": draw(texts), "b": draw(st.none() | st.builds(lambda n: {"long": n}, longs))},
            "writer_schema": {
                "type": "record",
                "name": "R",
                "namespace": "prop",
                "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": ["null", "long"]}],
            },
        }
    return {"value": draw(json_values), "writer_schema": draw(st.sampled_from(["long", "string", "boolean"]))}


COLUMNS: dict[str, st.SearchStrategy[Any]] = {
    "str": texts,
    "long": longs | odd_numbers,
    "int": ints | odd_numbers,
    "dbl": floats | longs,
    "flt": floats,
    "bool": st.booleans(),
    "opt": st.none() | texts,
    "rec": st.fixed_dictionaries(
        {
            "id": st.none() | st.builds(lambda n: {"long": n}, longs),
            "name": st.none() | st.builds(lambda s: {"string": s}, texts),
        }
    ),
    "color": st.sampled_from(["RED", "GREEN", "BLUE"]),
    "bytes": latin1,
    "fixed": st.text(alphabet=st.characters(max_codepoint=0xFF), min_size=4, max_size=4),
    "map": st.dictionaries(texts, longs, max_size=4),
    "arr": st.lists(texts, max_size=4),
    "final": texts,
    "raw": latin1,
}


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The `cells` of one POSTed row: a few columns, one to three versions each."""
    families: dict[str, dict[str, list[dict[str, Any]]]] = {}
    names = draw(st.lists(st.sampled_from([*COLUMNS, "free", "m"]), min_size=1, max_size=4, unique=True))
    for name in names:
        versions = []
        for ts in draw(
            st.lists(st.integers(min_value=1, max_value=10**13), min_size=1, max_size=3, unique=True)
        ):
            if name == "free":
                cell = draw(free_cells())
            elif name == "m":
                cell = {"value": draw(texts)}
            else:
                strategy = COLUMNS[name]
                cell = {"value": draw(strategy | json_values if draw(st.integers(0, 9)) == 0 else strategy)}
            versions.append({**cell, "timestamp": ts})
        if name == "m":
            families.setdefault("m", {})[draw(texts.filter(bool))] = versions
        else:
            families.setdefault("v", {})[name] = versions
    return families


# -- the property ---------------------------------------------------------------------------------------


def rows_of(body: bytes) -> list[dict[str, Any]]:
    """A row stream, checked: `\\r\\n`-terminated JSON lines and no error tail."""
    if not body:
        return []
    assert body.endswith(b"\r\n"), body[-200:]
    rows = [json.loads(line) for line in body[:-2].split(b"\r\n")]
    assert all("error" not in row for row in rows), rows
    return rows


def read_row(served: Served, entity: list[str]) -> dict[str, Any]:
    status, _, body = served.request("GET", {"eid": json.dumps(entity), "versions": "all"})
    assert status == 200, body[:300]
    (row,) = rows_of(body)
    return row["cells"]


def scan_row(served: Served, key_hex: str) -> list[dict[str, Any]]:
    query = {"start_eid": "hbase_hex=" + key_hex, "end_eid": "hbase_hex=" + key_hex + "00", "versions": "all"}
    status, _, body = served.request("GET", query)
    assert status == 200, body[:300]
    return rows_of(body)


def post(served: Served, entity: list[str], cells: Any) -> tuple[int, str, bytes]:
    # the stdlib's json writes what orjson refuses (deeper than 254 levels)
    return served.request("POST", body=json.dumps({"entityId": entity, "cells": cells}).encode())


def posted_back(cells: dict[str, Any]) -> dict[str, Any]:
    """The cells as read, in the POST shape (value, timestamp and the writer uid read)."""
    return {
        family: {
            qualifier: [
                {"value": c["value"], "timestamp": c["timestamp"], "writer_schema": c["writer_schema"]}
                for c in versions
            ]
            for qualifier, versions in qualifiers.items()
        }
        for family, qualifiers in cells.items()
    }


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(cells=bodies())
def test_every_accepted_post_reads_back(served: Served, cells: dict[str, Any]) -> None:
    entity = [unique_name("rb")]
    status, content_type, answer = post(served, entity, cells)
    assert status < 500, answer[:500]
    if status != 200:
        assert content_type.startswith("application/problem+json"), content_type
        assert read_row(served, entity) == {}
        return
    got = read_row(served, entity)
    for family, qualifiers in cells.items():
        for qualifier, versions in qualifiers.items():
            read = got[family][qualifier]
            assert [c["timestamp"] for c in read] == sorted({v["timestamp"] for v in versions}, reverse=True)
            assert all(not str(c["value"]).startswith("Error loading cell") for c in read), read
    key = hashlib.md5(entity[0].encode()).digest()[:2] + entity[0].encode() + b"\x00"  # kinds: hash 2
    assert [r["cells"] for r in scan_row(served, key.hex())] == [got]
    # posting back what was read reads back the same cells
    twin = [entity[0] + "-twin"]
    status, _, answer = post(served, twin, posted_back(got))
    assert status == 200, answer[:500]
    assert read_row(served, twin) == got
