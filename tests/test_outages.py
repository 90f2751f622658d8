"""HBase going away (issue "Holds under abuse and faults", item 5), against a real HBase of its own.

The session starts its own standalone HBase with `scripts/hbase` (a temp state directory, free ports:
never the shared one on 9090/9091, which these tests must not stop) and stops it at the end. The
tests then take parts of it down: the Thrift 2 server under a running stream, only the master JVM
(master, RegionServer and ZooKeeper: the gateways stay up and answer with ZooKeeper errors), all of
it (it comes back empty). What a client must see: 503 problem+json with Retry-After, at once while
the outage breaker is open (the first answer may take up to `store_timeout`); a stream that ends
with its error tail; 200 again within seconds when HBase is back, with no gateway restart.

The bounds are generous on purpose (a shared 2-core machine): they check "at once" against
"waits a timeout", not speed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import API_LAYOUTS, HBASE_ENV, HBASE_SKIP_REASON, ApiClient
from test_api_streaming import decode_chunked

pytestmark = [pytest.mark.hbase, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "hbase"
AT_ONCE_S = 1.0  # an answer while the breaker is open (the target)
MARGIN_S = 10.0  # on top of a timeout, for a loaded machine


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class OwnHBase:
    """A standalone HBase of this test session, driven through scripts/hbase."""

    home: Path
    env: dict[str, str]
    thrift_port: int
    thrift2_port: int

    @property
    def uri(self) -> str:
        return f"hbase://127.0.0.1:{self.thrift_port}?thrift2_port={self.thrift2_port}"

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=400, check=False
        )
        if proc.returncode != 0:
            pytest.fail(f"scripts/hbase {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return proc.stderr

    async def arun(self, *args: str) -> None:
        """`run` off the event loop: the gateway under test keeps serving meanwhile."""
        await asyncio.get_running_loop().run_in_executor(None, self.run, *args)


@pytest.fixture(scope="session")
def own_hbase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnHBase]:
    if not os.environ.get(HBASE_ENV) and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip(HBASE_SKIP_REASON + "; the outage tests start an HBase of their own")
    thrift, thrift2, rest, zk = _free_ports(4)
    home = tmp_path_factory.mktemp("hbase-outages")
    env = {
        **os.environ,
        "KIJIREST_HBASE_HOME": str(home),
        "KIJIREST_HBASE_THRIFT_PORT": str(thrift),
        "KIJIREST_HBASE_THRIFT2_PORT": str(thrift2),
        "KIJIREST_HBASE_REST_PORT": str(rest),
        "KIJIREST_HBASE_ZK_PORT": str(zk),
        "KIJIREST_HBASE_STOP_TIMEOUT": "30",
    }
    hbase = OwnHBase(home, env, thrift, thrift2)
    try:
        hbase.run("start")
        yield hbase
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=400, check=False)


STORE_TIMEOUT_S = 3.0


@pytest.fixture
async def gateway(own_hbase: OwnHBase, aiohttp_client: Any) -> ApiClient:
    """A gateway on the session's HBase, every part of which is running at the start."""
    from kijirest.app import init_app
    from kijirest.settings import Settings

    own_hbase.run("start")  # a no-op when everything runs; restarts what an earlier test left down
    settings = Settings(layouts=str(API_LAYOUTS), store=own_hbase.uri, store_timeout=STORE_TIMEOUT_S)
    return ApiClient(await aiohttp_client(await init_app(settings)), "hbase")


def assert_store_503(answer: Any) -> dict[str, Any]:
    body = answer.problem(503)
    assert body["detail"].startswith("store unavailable: "), body
    assert int(answer.headers["Retry-After"]) >= 1, answer.headers
    return body


async def timed(coro: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    result = await coro
    return result, time.monotonic() - t0


async def seconds_until_ok(api: ApiClient, request: Any, deadline_s: float) -> float:
    """Poll `request()` until it answers 200; 503s meanwhile must be proper store 503s."""
    t0 = time.monotonic()
    while True:
        answer = await request()
        if answer.status == 200:
            return time.monotonic() - t0
        assert_store_503(answer)
        assert time.monotonic() - t0 < deadline_s, f"no 200 within {deadline_s} s: {answer.body[:300]!r}"
        await asyncio.sleep(0.1)


async def assert_answers_at_once(api: ApiClient, uid: str) -> None:
    """While the breaker is open: data requests and the instance route, 503 each in < AT_ONCE_S."""
    for request in (
        lambda: api.rows("docs", {"eid": [uid]}),
        lambda: api.rows("docs", {}),
        lambda: api.post("docs", {"entityId": [uid], "cells": {"info": {"label": [{"value": "x"}]}}}),
        lambda: api.get("/v1/instances/api"),
    ):
        answer, took = await timed(request())
        assert_store_503(answer)
        assert took < AT_ONCE_S, f"{answer.method} {answer.url}: 503 after {took:.2f} s"


# -- a stream whose Thrift 2 server dies -------------------------------------------------------------


async def test_a_stream_ends_with_its_error_tail_when_thrift2_dies(gateway, own_hbase, uid) -> None:
    api = gateway
    value = "v" * 1000
    for batch in range(40):  # ~20 MB of rows: far more than the socket buffers and one scan batch
        rows = [
            {"entityId": [uid, f"{batch:03}{i:04}"], "cells": {"info": {"label": [{"value": value}]}}}
            for i in range(500)
        ]
        assert (await api.post("docs", rows)).status == 200
    path = api.rows_path("docs") + "?eid=" + api.compact([uid, []]).replace('"', "%22")  # our rows only
    server = api.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(65536), timeout=30)  # the stream is under way
        await own_hbase.arun("stop-role", "thrift2")
        killed = time.monotonic()
        data += await asyncio.wait_for(reader.read(), timeout=STORE_TIMEOUT_S + 2 * MARGIN_S)
        ended = time.monotonic() - killed
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    body, terminated = decode_chunked(rest)
    aborted = not terminated  # no chunked terminator: a client cannot take it for a complete answer
    received = body
    assert aborted, "the stream ended cleanly after its store died"
    lines = bytes(received).split(b"\r\n")
    assert lines[-1] == b"", lines[-1][:200]
    tail = orjson.loads(lines[-2])
    assert set(tail) == {"error"}, lines[-2][:300]
    assert tail["error"]["status"] == 503, tail
    sent = len(lines) - 2
    assert 0 < sent < 20_000, sent  # it died mid-stream
    assert ended < STORE_TIMEOUT_S + MARGIN_S, f"the stream ended {ended:.1f} s after Thrift 2 stopped"


async def test_a_thrift2_restart_recovers_within_about_a_second(gateway, own_hbase, uid) -> None:
    api = gateway
    await api.put("docs", [uid], {"info": {"label": [{"value": "kept"}]}})
    await own_hbase.arun("stop-role", "thrift2")
    answer, took = await timed(api.rows("docs", {"eid": [uid]}))
    assert_store_503(answer)
    assert took < STORE_TIMEOUT_S + MARGIN_S
    await assert_answers_at_once(api, uid)
    await own_hbase.arun("start-role", "thrift2")  # returns once Thrift 2 answers again
    took = await seconds_until_ok(api, lambda: api.rows("docs", {"eid": [uid]}), 5.0)
    assert took < 3.0, f"{took:.1f} s to the first 200 after Thrift 2 came back"
    rows = (await api.rows("docs", {"eid": [uid]})).rows
    assert rows[0]["cells"]["info"]["label"][0]["value"] == "kept"


# -- HBase itself down behind live gateways: ZooKeeper errors ----------------------------------------


async def test_zookeeper_down_behind_live_gateways_is_503(gateway, own_hbase, uid) -> None:
    api = gateway
    await api.put("docs", [uid], {"info": {"label": [{"value": "before"}]}})
    await own_hbase.arun("stop-role", "master")  # master + RegionServer + ZooKeeper
    answer, took = await timed(api.rows("docs", {"eid": [uid]}))
    assert_store_503(answer)  # HBase's ZooKeeper error or our timeout, never a 500
    assert took < STORE_TIMEOUT_S + MARGIN_S
    await assert_answers_at_once(api, uid)
    await own_hbase.arun("start-role", "master")  # its data was kept
    await seconds_until_ok(api, lambda: api.rows("docs", {"eid": [uid]}), 30.0)
    rows = (await api.rows("docs", {"eid": [uid]})).rows
    assert rows[0]["cells"]["info"]["label"][0]["value"] == "before"


async def test_zookeeper_error_replies_are_503_not_500(own_hbase, aiohttp_client, uid) -> None:
    """With a store timeout longer than HBase's ZooKeeper wait (10 s), the answer is HBase's own
    error reply ("Zookeeper ... could not be completed"), which must be a 503 as well."""
    from kijirest.app import init_app
    from kijirest.settings import Settings

    own_hbase.run("start")
    settings = Settings(layouts=str(API_LAYOUTS), store=own_hbase.uri, store_timeout=25.0)
    api = ApiClient(await aiohttp_client(await init_app(settings)), "hbase")
    await own_hbase.arun("stop-role", "master")
    try:
        answer, took = await timed(api.rows("docs", {"eid": [uid]}))
        body = assert_store_503(answer)
        assert "zookeeper" in body["detail"].lower(), body["detail"]
        assert took < 25.0 + MARGIN_S
        await assert_answers_at_once(api, uid)
    finally:
        await own_hbase.arun("start-role", "master")


# -- all of HBase down, and back empty ---------------------------------------------------------------


async def test_hbase_down_then_back_empty_recovers_without_a_restart(gateway, own_hbase, uid) -> None:
    api = gateway
    await api.put("docs", [uid], {"info": {"label": [{"value": "lost with HBase"}]}})
    await own_hbase.arun("stop")  # every process; the data is wiped
    answer, took = await timed(api.rows("docs", {"eid": [uid]}))
    assert_store_503(answer)
    assert took < STORE_TIMEOUT_S + MARGIN_S
    await assert_answers_at_once(api, uid)
    await asyncio.sleep(2.5)  # the probe keeps failing meanwhile: still at once
    await assert_answers_at_once(api, uid)

    await own_hbase.arun("start")  # an empty HBase: no table of the layouts exists
    took = await seconds_until_ok(api, lambda: api.rows("docs", {"eid": [uid]}), 15.0)
    assert took < 5.0 + MARGIN_S, f"{took:.1f} s to the first 200 after HBase came back"
    assert (await api.rows("docs", {"eid": [uid]})).rows[0]["cells"] == {}  # the row went with HBase
    await api.put("docs", [uid], {"info": {"label": [{"value": "after"}]}})
    rows = (await api.rows("docs", {"eid": [uid]})).rows
    assert rows[0]["cells"]["info"]["label"][0]["value"] == "after"
    # the schema table is back, with the primitives and the layouts' FINAL schemas
    entries = await api.entries()
    assert [e["id"] for e in entries[:8]] == list(range(8)), entries
    cell = {"value": {"k": "v"}, "writer_schema": {"type": "map", "values": "string"}}
    await api.put("kinds", [uid], {"v": {"free": [cell]}})
    got = (await api.rows("kinds", {"eid": [uid], "cols": "v:free"})).rows
    assert got[0]["cells"]["v"]["free"][0]["value"] == {"k": "v"}
