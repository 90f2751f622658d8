"""Errors (api.md "Errors"): the problem+json shape, the 400s of parameters and entity IDs with the
messages of encodings.md, 503 when the store is unreachable, 500 without details for bugs."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from kijirest.store.base import StoreUnavailable


class Faulty:
    """A store that behaves like the wrapped one until `failure` is set: then every call raises it."""

    blocking = True

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.failure: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name == "close":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.failure is not None:
                raise self.failure
            return attr(*args, **kwargs)

        return call


async def faulty_api(make_api) -> tuple[Any, Faulty]:
    holder: list[Faulty] = []

    def wrap(store: Any) -> Faulty:
        holder.append(Faulty(store))
        return holder[0]

    api = await make_api(wrap=wrap)
    return api, holder[0]


# -- the shape --------------------------------------------------------------------------------------------


async def test_problem_json_shape(api) -> None:
    answer = await api.rows("docs", {"eid": "[", "versions": "1"})
    body = answer.problem(400, "eid")
    assert body["title"] == "Bad Request"
    answer = await api.rows("docs", {"eid": '["a"]', "versions": "0"})
    body = answer.problem(400)
    assert body["detail"].startswith("versions: ")
    assert len(body["detail"]) > len("versions: ")


async def test_404_title(api) -> None:
    body = (await api.get("/v1/instances/nope")).problem(404)
    assert body["title"] == "Not Found"


ENTITY_ERRORS = [
    ("docs", "eid", "[", None),
    ("docs", "eid", "nonsense", None),
    ("docs", "eid", '{"a": 1}', None),
    ("docs", "eid", '["a","b","c",1,2,3]', "Too many components in kiji Row Key"),
    ("docs", "eid", "[]", "Too few components in kiji Row key"),
    ("users", "eid", '["acme"]', "Too few components in kiji Row key"),
    ("docs", "eid", '["a",null,"c"]', "Non null component follows null component"),
    ("docs", "eid", "[1]", "Invalid type for component a at index 0"),
    ("docs", "eid", '["a",true]', "Invalid type for component b at index 1"),
    ("docs", "eid", '["a",{"x":1}]', "Invalid type for component b at index 1"),
    ("docs", "eid", '["a","b","c",2147483648]', "Invalid type for component n at index 3"),
    ("docs", "eid", '["a","b","c",-2147483649]', "Invalid type for component n at index 3"),
    ("docs", "eid", '["a","b","c",1.0]', "Invalid type for component n at index 3"),
    ("docs", "eid", '["a","b","c",1,9223372036854775808]', "Invalid type for component l at index 4"),
    ("docs", "eid", '["a","b","c",1,"2"]', "Invalid type for component l at index 4"),
    ("docs", "eid", '["a\\u0000b"]', "String component cannot contain"),
    ("raw", "eid", '["a","b"]', None),
    ("raw", "eid", "[1]", None),
    ("hashed", "eid", '["a","b"]', None),
    ("prefixed", "eid", "[5]", None),
    ("tokens", "eid", '["a","b"]', "Too many components in kiji Row Key"),
    ("docs", "eid", "hbase_hex=abc", None),
    ("docs", "eid", "hbase_hex=zz", None),
    ("docs", "eid", "hbase_hex=", None),
    ("docs", "eid", "hbase=ab\\x4", None),
    ("docs", "eid", "hbase=ab\\x", None),
    ("docs", "eid", "hbase=\u0101", None),
    ("docs", "eid", "hbase=", None),
    ("docs", "eids", "[", None),
    ("docs", "eids", "5", None),
    ("docs", "eids", "{}", None),
    ("docs", "eids", "[[1]]", "Invalid type for component a at index 0"),
    ("docs", "eids", '[["a"],["a","b","c",1,2,3]]', "Too many components in kiji Row Key"),
    ("docs", "start_eid", "[", None),
    ("docs", "start_eid", "[]", None),
    ("docs", "start_eid", "[1]", "Invalid type for component a at index 0"),
    ("docs", "end_eid", '["a",null,"c"]', "Non null component follows null component"),
    ("docs", "end_eid", "hbase_hex=0", None),
]


@pytest.mark.parametrize("table,param,value,message", ENTITY_ERRORS)
async def test_malformed_entity_ids_are_400(api, table, param, value, message) -> None:
    body = (await api.rows(table, {param: value})).problem(400, param)
    if message is not None:
        assert message in body["detail"], body["detail"]


@pytest.mark.parametrize(
    "params,where",
    [
        ({"eid": '["a"]', "limit": "-5"}, "limit"),
        ({"eid": '["a"]', "versions": "none"}, "versions"),
        ({"eid": '["a"]', "timerange": "9..3"}, "timerange"),
        ({"eid": '["a"]', "cols": "nothing"}, "cols"),
        ({"start_eid": '["a"]', "cols": "info:zzz"}, "cols"),
        ({"eid": '["a"]', "eids": '[["a"]]'}, None),
        ({"eids": '[["a"]]', "start_eid": '["a"]'}, None),
    ],
)
async def test_bad_parameters_are_400(api, params, where) -> None:
    (await api.rows("docs", params)).problem(400, where)


# -- 503 and 500 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,params,body",
    [
        ("GET", {"eid": '["a"]'}, None),
        ("GET", {"eids": '[["a"],["b"]]'}, None),
        ("GET", {"eid": '["a",[]]'}, None),
        ("GET", {"start_eid": '["a"]', "end_eid": '["b"]'}, None),
        ("GET", {}, None),
        ("POST", None, {"entityId": ["a"], "cells": {"info": {"label": [{"value": "x"}]}}}),
        ("POST", None, {"entityId": ["a"], "cells": {"info": {"count": [{"value": 1}]}}}),
        ("DELETE", {"eid": '["a"]'}, None),
    ],
)
async def test_unreachable_store_is_503(make_api, method, params, body) -> None:
    api, store = await faulty_api(make_api)
    store.failure = StoreUnavailable("connection refused by 10.0.0.9:9090")
    answer = await api.request(method, api.rows_path("docs"), params, body=body)
    answer.problem(503)


async def test_a_bug_is_a_500_without_details(make_api) -> None:
    api, store = await faulty_api(make_api)
    store.failure = RuntimeError("secret-internal-detail")
    for method, params, body in (
        ("GET", {"eid": '["a"]'}, None),
        ("GET", {}, None),
        ("POST", None, {"entityId": ["a"], "cells": {"info": {"label": [{"value": "x"}]}}}),
        ("DELETE", {"eid": '["a"]'}, None),
    ):
        answer = await api.request(method, api.rows_path("docs"), params, body=body)
        answer.problem(500)
        assert b"secret-internal-detail" not in answer.body
        assert b"RuntimeError" not in answer.body


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_hbase_uri_to_a_closed_port_fails_cleanly() -> None:
    """Either a clean start-up failure (naming the store) or 503 answers; never a hang or a trace."""
    from aiohttp.test_utils import TestClient, TestServer

    from kijirest.app import StartupError, init_app
    from kijirest.settings import Settings

    port = closed_port()
    uri = f"hbase://127.0.0.1:{port}?thrift2_port={port}"
    layouts = Path(__file__).parent / "data" / "api_layouts"
    client = TestClient(TestServer(await init_app(Settings(layouts=str(layouts), store=uri))))
    try:
        try:
            await asyncio.wait_for(client.start_server(), timeout=20)
        except (StartupError, StoreUnavailable) as exc:
            assert str(port) in str(exc) or "hbase" in str(exc).lower(), str(exc)
            return
        async with client.get("/v1/instances/api/tables/docs/rows?eid=%5B%22a%22%5D") as resp:
            assert resp.status == 503
            assert resp.headers["Content-Type"].startswith("application/problem+json")
    finally:
        await client.close()
