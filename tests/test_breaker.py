"""The outage breaker and the recovery of lost tables (issue "Holds under abuse and faults", item 5),
on the memory and embedded stores behind a wrapper that fails on demand and counts every call: while
the store is down, 503 with Retry-After and no call reaches the store until a probe succeeds.

The same behaviour against a real HBase that is stopped and started is in tests/test_outages.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from kijirest.settings import Settings, SettingsError, load_config, validate
from kijirest.store.base import StoreUnavailable

PROBE_WAIT_S = 10.0  # generous: a probe runs every second; the machine is shared


class Flaky:
    """The wrapped store until `down` is set; then every call raises StoreUnavailable. `calls`
    counts the calls that reached the store (probes, `ping`, counted apart in `pings`)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.blocking = inner.blocking
        self.down = False
        self.calls = 0
        self.pings = 0

    def ping(self) -> None:
        self.pings += 1
        if self.down:
            raise StoreUnavailable("probe: connection refused by the fake store")
        self._inner.ping()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name == "close":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.down:
                raise StoreUnavailable("connection refused by the fake store")
            return attr(*args, **kwargs)

        return call


@pytest.fixture(params=["memory", "embedded"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory:" if request.param == "memory" else f"embedded:{tmp_path / 'kiji'}"


async def flaky_api(make_api, store_uri: str) -> tuple[Any, Flaky]:
    holder: list[Flaky] = []

    def wrap(store: Any) -> Flaky:
        holder.append(Flaky(store))
        return holder[0]

    api = await make_api(store=store_uri, wrap=wrap)
    return api, holder[0]


def assert_store_503(answer: Any) -> dict[str, Any]:
    body = answer.problem(503)
    assert body["detail"].startswith("store unavailable: "), body
    assert int(answer.headers["Retry-After"]) >= 1
    return body


async def until_ok(api: Any, path: str, params: Any = None) -> float:
    """Seconds until `GET path` answers 200 (fails after PROBE_WAIT_S)."""
    t0 = time.monotonic()
    while True:
        answer = await api.get(path, params)
        if answer.status == 200:
            return time.monotonic() - t0
        assert_store_503(answer)
        assert time.monotonic() - t0 < PROBE_WAIT_S, "the breaker did not close after the store came back"
        await asyncio.sleep(0.05)


async def test_while_down_the_store_is_not_called_until_a_probe_succeeds(make_api, store_uri, uid) -> None:
    api, store = await flaky_api(make_api, store_uri)
    await api.put("docs", [uid], {"info": {"label": [{"value": "before"}]}})
    store.down = True
    first = await api.rows("docs", {"eid": [uid]})
    assert_store_503(first)  # this one reached the store and opened the breaker
    reached = store.calls
    assert reached >= 1
    for method, params, body in (
        ("GET", {"eid": [uid]}, None),
        ("GET", {}, None),
        ("POST", None, {"entityId": [uid], "cells": {"info": {"label": [{"value": "x"}]}}}),
        ("DELETE", {"eid": [uid]}, None),
    ):
        answer = await api.request(method, api.rows_path("docs"), params, body=body)
        body503 = assert_store_503(answer)
        assert "connection refused by the fake store" in body503["detail"]
    assert_store_503(await api.get("/v1/instances/api"))  # the instance route reads the schema table
    assert store.calls == reached, "a call reached the store while the breaker was open"
    # the probe keeps trying while the store is down
    pings = store.pings
    await asyncio.sleep(1.5)
    assert store.pings > pings
    assert store.calls == reached
    store.down = False
    await until_ok(api, api.rows_path("docs"), {"eid": [uid]})
    assert store.calls > reached
    rows = (await api.rows("docs", {"eid": [uid]})).rows
    assert rows[0]["cells"]["info"]["label"][0]["value"] == "before"


async def test_the_breaker_stays_closed_while_the_store_answers(make_api, store_uri, uid) -> None:
    api, store = await flaky_api(make_api, store_uri)
    for _ in range(3):
        await api.put("docs", [uid], {"info": {"label": [{"value": "v"}]}})
        assert len((await api.rows("docs", {"eid": [uid]})).rows) == 1
    assert store.pings == 0  # no outage, no probe
    assert not api.client.app[_store_key()].breaker.is_open


async def test_a_bug_does_not_open_the_breaker(make_api, store_uri) -> None:
    api, store = await flaky_api(make_api, store_uri)
    real = store._inner.get_rows

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug, not an outage")

    store._inner.get_rows = broken
    (await api.rows("docs", {"eid": ["a"]})).problem(500)
    assert "Retry-After" not in (await api.rows("docs", {"eid": ["a"]})).headers
    store._inner.get_rows = real
    assert (await api.rows("docs", {"eid": ["a"]})).status == 200
    assert store.pings == 0


def _store_key() -> Any:
    from kijirest.state import STORE

    return STORE


# -- tables that vanish are re-created --------------------------------------------------------------


async def test_a_dropped_table_is_recreated_without_a_restart(make_api, store_uri, uid) -> None:
    api = await make_api(store=store_uri)
    await api.put("docs", [uid], {"info": {"label": [{"value": "gone soon"}]}})
    api.store.delete_table(api.hbase_table("docs"))
    assert (await api.rows("docs", {"eid": [uid]})).rows[0]["cells"] == {}  # empty, not 500
    await api.put("docs", [uid], {"info": {"label": [{"value": "again"}]}})
    rows = (await api.rows("docs", {"eid": [uid]})).rows
    assert rows[0]["cells"]["info"]["label"][0]["value"] == "again"


async def test_a_store_that_lost_every_table_is_readied_as_at_start_up(make_api, store_uri, uid) -> None:
    api = await make_api(store=store_uri)
    before = await api.entries()
    await api.put("docs", [uid], {"info": {"label": [{"value": "gone soon"}]}})
    for name in api.store.list_tables():
        api.store.delete_table(name)
    assert (await api.rows("docs", {"eid": [uid]})).rows[0]["cells"] == {}
    assert sorted(api.store.list_tables()) == sorted(
        ["kiji.api.schema_id", "kiji.api.schema_hash"] + [api.hbase_table(t) for t in TABLES]
    )
    # the primitives and the layouts' FINAL schemas, registered in start-up order: the same uids
    assert await api.entries() == before
    await api.put("docs", [uid], {"info": {"label": [{"value": "again"}]}})
    assert (await api.rows("docs", {"eid": [uid]})).rows[0]["cells"]["info"]["label"][0]["value"] == "again"


TABLES = ["docs", "fleeting", "hashed", "kinds", "longs", "ordered", "prefixed", "raw", "tokens", "users"]
SCHEMA = {"type": "record", "name": "P", "namespace": "org.test", "fields": [{"name": "x", "type": "long"}]}
OTHER = {"type": "enum", "name": "E", "namespace": "org.test", "symbols": ["A", "B"]}


async def test_a_recreated_schema_table_never_gets_a_stale_uid(make_api, store_uri, uid) -> None:
    """The store lost every table, and another process re-created the schema table and registered
    another schema first: the uid this process cached for SCHEMA now names OTHER. The next write
    must use the store's uid of SCHEMA, and everything must read back."""
    api = await make_api(store=store_uri)
    cell = {"value": {"x": 5}, "writer_schema": SCHEMA}
    await api.put("kinds", [uid], {"v": {"free": [cell]}})
    canonical = '{"type":"record","name":"P","namespace":"org.test","fields":[{"name":"x","type":"long"}]}'
    cached_uid = await api.uid_of(canonical)
    store = api.store
    for name in store.list_tables():
        store.delete_table(name)
    # another gateway re-creates the schema table and registers OTHER first
    from kijirest.avro.schema import parse_schema_text
    from kijirest.schema_table import SchemaTable

    other = SchemaTable(store, "api")
    other.install()
    n = 0
    while other.counter() < cached_uid:
        other.get_or_create(parse_schema_text(f'{{"type":"fixed","name":"F{n}","size":1}}'))
        n += 1
    assert other.get_or_create(parse_schema_text(json.dumps(OTHER))) == cached_uid

    await api.put("kinds", [uid], {"v": {"free": [{"value": {"x": 6}, "writer_schema": SCHEMA}]}})
    new_uid = await api.uid_of(canonical)
    assert new_uid != cached_uid
    ((_, cells),) = store.get_rows(api.hbase_table("kinds"), [api.kinds_key(uid)])
    assert cells and all(value[0] == new_uid for _, _, _, value in cells), cells
    got = (await api.rows("kinds", {"eid": [uid], "cols": "v:free"})).rows
    assert got[0]["cells"]["v"]["free"][0]["value"] == {"x": 6}


# -- settings -----------------------------------------------------------------------------------------


def test_store_timeout_setting(tmp_path: Path) -> None:
    assert Settings().store_timeout == 10.0
    conf = tmp_path / "k.yaml"
    conf.write_text("store_timeout: 2.5\n")
    assert load_config(conf).store_timeout == 2.5
    for bad in ("true", "'10'", "0", "-1"):
        conf.write_text(f"store_timeout: {bad}\n")
        with pytest.raises(SettingsError, match="store_timeout"):
            load_config(conf)
    with pytest.raises(SettingsError, match="store_timeout"):
        validate(Settings(store_timeout=0))


def test_store_timeout_flag() -> None:
    from kijirest.cli import build_parser, settings_from_args

    args = build_parser().parse_args(["serve", "--store", "memory:", "--store-timeout", "3"])
    assert settings_from_args(args).store_timeout == 3.0


def test_store_timeout_reaches_the_hbase_store_and_the_uri_wins() -> None:
    from kijirest.store import open_store

    store = open_store("hbase://127.0.0.1:1?thrift2_port=2", timeout=2.5)
    try:
        assert store._thrift2_pool._wait_s == 2.5 and store._thrift1_pool._wait_s == 2.5
    finally:
        store.close()
    store = open_store("hbase://127.0.0.1:1?thrift2_port=2&timeout=700", timeout=2.5)
    try:
        assert store._thrift2_pool._wait_s == 0.7
    finally:
        store.close()


async def test_an_unreachable_hbase_answers_503_at_once_after_the_first(make_api) -> None:
    """A real HBase store pointed at closed ports: connection refused is an outage (503 with
    Retry-After), and once the breaker is open the answers come without any connection attempt."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api, store = await flaky_api(make_api, "memory:")
    from kijirest.store import open_store

    hbase = open_store(f"hbase://127.0.0.1:{port}?thrift2_port={port}", timeout=2)
    try:
        store._inner = hbase  # the app's catalog is ready; from now on the calls go to "HBase"
        store.blocking = True
        assert_store_503(await api.rows("docs", {"eid": ["a"]}))
        reached = store.calls
        t0 = time.monotonic()
        for _ in range(20):
            assert_store_503(await api.rows("docs", {"eid": ["a"]}))
        assert time.monotonic() - t0 < 5.0  # 20 answers, none waiting for a connection
        assert store.calls == reached
    finally:
        hbase.close()


# -- HBase's error replies as outages ----------------------------------------------------------------


@pytest.mark.parametrize(
    "exc_type,message",
    [
        # observed on HBase 2.6 with the master JVM (master, RegionServer, ZooKeeper) stopped
        ("TIOError", "Zookeeper LIST could not be completed in 10000 ms"),
        ("TIOError", "Zookeeper GET could not be completed in 10000 ms"),
        (
            "IOError",
            "org.apache.hadoop.hbase.DoNotRetryIOException: Zookeeper GET could not be completed in "
            "10000 ms\n\tat org.apache.hadoop.hbase.zookeeper.ReadOnlyZKClient.lambda$getTimerTask$0(...)",
        ),
        # observed on a disabled table
        ("TIOError", "t is disabled."),
        ("IOError", "org.apache.hadoop.hbase.TableNotEnabledException: t is disabled.\n\tat ..."),
        # HBase's client exceptions for a master or RegionServer not (yet) serving
        ("TIOError", "org.apache.hadoop.hbase.MasterNotRunningException: the master is down"),
        ("TIOError", "org.apache.hadoop.hbase.PleaseHoldException: Master is initializing"),
        ("TIOError", "org.apache.hadoop.hbase.NotServingRegionException: t,,1.abc is not online"),
        ("TApplicationException", "Internal error processing getMultiple"),
    ],
)
def test_unavailability_replies_are_store_unavailable(exc_type: str, message: str) -> None:
    from thriftpy2.thrift import TApplicationException

    from kijirest.store.hbase.pool import server_error
    from kijirest.store.hbase.thrift import thrift1, thrift2

    if exc_type == "TIOError":
        exc: Exception = thrift2.TIOError(message=message)
    elif exc_type == "IOError":
        exc = thrift1.IOError(message=message.encode())
    else:
        exc = TApplicationException(TApplicationException.INTERNAL_ERROR, message)
    assert isinstance(server_error(exc, "t"), StoreUnavailable)


def test_other_replies_stay_what_they_are() -> None:
    from kijirest.store.base import TableNotFound
    from kijirest.store.hbase.pool import server_error
    from kijirest.store.hbase.thrift import thrift2

    missing = server_error(thrift2.TIOError(message="t"), "t")
    assert isinstance(missing, TableNotFound) and missing.table == "t"
    reply = thrift2.TIOError(message="org.apache.hadoop.hbase.DoNotRetryIOException: bad filter")
    other = server_error(reply, "t")
    assert not isinstance(other, StoreUnavailable | TableNotFound)
