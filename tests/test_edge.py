"""The HTTP edge under abuse (issue "Holds under abuse and faults", items 2-3 and 7): idle, slow and
half-sent connections are closed after their timeouts, connections over max_connections are
answered 503, `Expect: 100-continue` is refused early, aiohttp's own parse errors answer
problem+json, and clients that leave or flood cost one log line, not one each.

Raw sockets (`asyncio.open_connection`) against the app served as `kijirest serve` serves it
(`kijirest.server.EdgeRunner`, through the `make_api` / `api` fixtures), on loopback only, with
timeouts of fractions of a second: every wait is bounded.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import resource
import signal
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import API_LAYOUTS, Answer
from multidict import CIMultiDict
from test_api_cli import Server

from kijirest.loglimit import LogLimiter
from kijirest.server import install_loop_error_limiter
from kijirest.settings import SettingsError, load_config

ROWS = "/v1/instances/api/tables/kinds/rows"
JSON_BODY = {"Content-Type": "application/json"}
#: long enough for anything the test does not wait for; every wait below is bounded by WAIT
LONG = 30.0
WAIT = 5.0


class Conn:
    """One raw client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def to(cls, api: Any) -> Conn:
        server = api.client.server
        return cls(*await asyncio.open_connection(server.host, server.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> Answer:
        """The next answer (a 100 Continue has no body)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
        status = int(status_line.split()[1])
        length = int(headers.get("Content-Length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), WAIT) if length else b""
        return Answer(status, headers, body)

    async def rest(self, within: float = WAIT) -> tuple[bytes, bool]:
        """(bytes read, closed): what comes until the server closes, or until `within` seconds pass."""
        got = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        try:
            while (left := deadline - loop.time()) > 0:
                chunk = await asyncio.wait_for(self.reader.read(65536), left)
                if not chunk:
                    return got, True
                got += chunk
        except TimeoutError:
            return got, False
        except ConnectionError:
            return got, True
        return got, False

    def close(self) -> None:
        self.writer.transport.abort()


def post_head(length: int, *, content_type: str = "application/json", extra: str = "") -> bytes:
    return (
        f"POST {ROWS} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def row_body(entity: str) -> bytes:
    return orjson.dumps({"entityId": [entity], "cells": {"v": {"str": [{"value": "x"}]}}})


async def cells_of(api: Any, entity: str) -> dict:
    rows = (await api.rows("kinds", {"eid": [entity]})).rows
    assert len(rows) == 1
    return rows[0]["cells"]


@pytest.fixture
def edge(make_api: Any, api_store: tuple[str, str]) -> Any:
    """`await edge(**settings)`: an app with these settings on every store kind."""

    async def make(**settings: Any) -> Any:
        return await make_api(store=api_store[1], **settings)

    return make


def errors_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- idle and slow connections ---------------------------------------------------------------------


async def test_an_idle_keep_alive_connection_is_closed_after_keepalive_timeout(make_api) -> None:
    api = await make_api(keepalive_timeout=0.5, header_timeout=LONG)
    conn = await Conn.to(api)
    await conn.send(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await conn.answer()).status == 200
    got, closed = await conn.rest()
    assert (got, closed) == (b"", True)


async def test_keep_alive_idles_up_to_keepalive_timeout_not_header_timeout(make_api) -> None:
    api = await make_api(keepalive_timeout=LONG, header_timeout=0.2)
    conn = await Conn.to(api)
    try:
        await conn.send(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await conn.answer()).status == 200
        assert await conn.rest(1.0) == (b"", False)  # idle five header_timeouts: still open
        await conn.send(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await conn.answer()).status == 200
    finally:
        conn.close()


@pytest.mark.parametrize("answered_before", [False, True], ids=["fresh", "after-an-answer"])
async def test_half_a_request_head_is_closed_after_header_timeout(make_api, caplog, answered_before) -> None:
    caplog.set_level(logging.INFO)
    api = await make_api(keepalive_timeout=LONG, header_timeout=0.5)
    conn = await Conn.to(api)
    if answered_before:
        await conn.send(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await conn.answer()).status == 200
    await conn.send(b"GET /v1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    got, closed = await conn.rest()
    assert (got, closed) == (b"", True)
    assert any("header_timeout" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert errors_in(caplog) == []


async def test_a_connection_that_sends_nothing_is_closed_after_header_timeout(make_api) -> None:
    api = await make_api(keepalive_timeout=LONG, header_timeout=0.5)
    conn = await Conn.to(api)
    assert await conn.rest() == (b"", True)


async def test_a_half_sent_body_is_408_then_closed_and_nothing_is_written(edge, uid, caplog) -> None:
    api = await edge(body_timeout=0.5, header_timeout=LONG, keepalive_timeout=LONG)
    body = row_body(uid)
    conn = await Conn.to(api)
    await conn.send(post_head(len(body)) + body[: len(body) // 2])
    answer = await conn.answer()
    problem = answer.problem(408, "body")
    assert "body_timeout" in problem["detail"]
    assert answer.headers.get("Connection", "").lower() == "close"
    assert await conn.rest() == (b"", True)
    assert await cells_of(api, uid) == {}
    assert errors_in(caplog) == []


async def test_a_body_sent_slowly_but_steadily_is_taken(edge, uid) -> None:
    api = await edge(body_timeout=0.5)
    body = row_body(uid)
    conn = await Conn.to(api)
    try:
        await conn.send(post_head(len(body)))
        for i in range(0, len(body), 16):  # every part well within body_timeout of the last
            await conn.send(body[i : i + 16])
            await asyncio.sleep(0.05)
        answer = await conn.answer()
        assert answer.status == 200, answer.body
    finally:
        conn.close()
    assert (await cells_of(api, uid))["v"]["str"][0]["value"] == "x"


# -- max_connections --------------------------------------------------------------------------------


async def test_connections_over_max_connections_are_answered_503_and_those_within_are_served(
    make_api, caplog
) -> None:
    caplog.set_level(logging.INFO)
    api = await make_api(max_connections=3, keepalive_timeout=LONG, header_timeout=LONG)
    held = [await Conn.to(api) for _ in range(3)]
    try:
        for conn in held:  # each of the three is served (and so counted) before the next opens
            await conn.send(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await conn.answer()).status == 200
        for _ in range(10):
            extra = await Conn.to(api)
            await extra.send(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await extra.answer()
            problem = answer.problem(503, "connections")
            assert "max_connections" in problem["detail"]
            assert answer.headers["Retry-After"] == "1"
            assert answer.headers["Connection"].lower() == "close"
            assert await extra.rest() == (b"", True)
        for conn in held:  # the connections within the limit are still served
            await conn.send(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await conn.answer()).status == 200
        held.pop().close()
        for _ in range(50):  # the freed place is taken by a new connection once the server saw the close
            extra = await Conn.to(api)
            await extra.send(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
            status = (await extra.answer()).status
            extra.close()
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200
    finally:
        for conn in held:
            conn.close()
    refusals = [r for r in caplog.records if "refused a connection" in r.getMessage()]
    assert 1 <= len(refusals) <= 3, [r.getMessage() for r in refusals]  # 10+ refusals, one line a second
    assert errors_in(caplog) == []


# -- Expect: 100-continue ---------------------------------------------------------------------------


async def test_expect_100_continue_with_an_oversize_content_length_is_413_without_100(make_api) -> None:
    api = await make_api(max_body_size=1000)
    conn = await Conn.to(api)
    await conn.send(post_head(5000, extra="Expect: 100-continue\r\n"))
    answer = await conn.answer()
    problem = answer.problem(413, "body")
    assert "Content-Length 5000" in problem["detail"] and "max_body_size" in problem["detail"]
    assert await conn.rest() == (b"", True)  # closed: no 100 Continue came before or after


async def test_expect_100_continue_with_a_body_that_is_not_json_is_415_without_100(make_api) -> None:
    api = await make_api()
    conn = await Conn.to(api)
    await conn.send(post_head(10, content_type="text/plain", extra="Expect: 100-continue\r\n"))
    answer = await conn.answer()
    answer.problem(415, "Content-Type")
    assert await conn.rest() == (b"", True)


async def test_expect_100_continue_within_the_limits_continues_and_writes(edge, uid) -> None:
    api = await edge(max_body_size=1000)
    body = row_body(uid)
    conn = await Conn.to(api)
    try:
        await conn.send(post_head(len(body), extra="Expect: 100-continue\r\n"))
        assert (await conn.answer()).status == 100
        await conn.send(body)
        answer = await conn.answer()
        assert answer.status == 200, answer.body
    finally:
        conn.close()
    assert (await cells_of(api, uid))["v"]["str"][0]["value"] == "x"


async def test_an_expectation_other_than_100_continue_is_417(make_api) -> None:
    api = await make_api()
    conn = await Conn.to(api)
    await conn.send(post_head(10, extra="Expect: something-else\r\n"))
    (await conn.answer()).problem(417, "Expect")
    assert await conn.rest() == (b"", True)


# -- aiohttp's own parse errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status", "detail"),
    [
        (b"GARBAGE\r\n\r\n", 400, "request: invalid request line"),
        (b"GET /v1 HTTP/1.1 and more\r\nHost: x\r\n\r\n", 400, "request: invalid request line"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "request: HTTPS sent to an HTTP port"),
        (
            b"GET /v1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            400,
            "headers: a header line is longer than 8190 bytes",
        ),
        (
            b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "request: the request line is longer than 8190 bytes",
        ),
        (b"GET /v1 HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400, "headers: Invalid header token"),
        (b"GET /v1 HTTP/1.1\r\n\r\n", 400, "headers: Missing 'Host' header"),
        (
            f"POST {ROWS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\nzz\r\n".encode(),
            400,
            "body: Invalid character in chunk size",
        ),
    ],
    ids=[
        "garbage",
        "bad-version",
        "tls-hello",
        "long-header",
        "long-request-line",
        "bad-header-name",
        "no-host",
        "bad-chunk",
    ],
)
async def test_a_request_aiohttp_cannot_parse_is_a_problem(make_api, caplog, request_bytes, status, detail):
    caplog.set_level(logging.INFO)
    api = await make_api()
    conn = await Conn.to(api)
    await conn.send(request_bytes)
    answer = await conn.answer()
    problem = answer.problem(status)
    assert problem["detail"].startswith(detail), problem["detail"]
    assert await conn.rest() == (b"", True)
    assert errors_in(caplog) == []
    logged = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.INFO]
    assert logged[0].exc_info is None


async def test_parse_errors_are_logged_once_a_second_not_once_each(make_api, caplog) -> None:
    caplog.set_level(logging.INFO)
    api = await make_api()
    for _ in range(20):
        conn = await Conn.to(api)
        await conn.send(b"GARBAGE\r\n\r\n")
        (await conn.answer()).problem(400, "request")
        conn.close()
    logged = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert 1 <= len(logged) < 20


async def test_a_gzip_body_that_is_not_gzip_is_400(api, uid) -> None:
    body = orjson.dumps({"entityId": [uid], "cells": {"v": {"str": [{"value": "x"}]}}})
    headers = {**JSON_BODY, "Content-Encoding": "gzip"}
    answer = await api.request("POST", api.rows_path("kinds"), data=body, headers=headers)
    answer.problem(400, "body")
    assert await cells_of(api, uid) == {}
    # a real gzip body is read as usual
    answer = await api.request("POST", api.rows_path("kinds"), data=gzip.compress(body), headers=headers)
    assert answer.status == 200, answer.body
    assert (await cells_of(api, uid))["v"]["str"][0]["value"] == "x"


@pytest.mark.parametrize("split", [False, True], ids=["one-packet", "head-then-body"])
async def test_a_bad_gzip_body_is_400_on_either_path_and_the_connection_closes(edge, uid, caplog, split):
    api = await edge(header_timeout=LONG, keepalive_timeout=LONG)
    body = row_body(uid)
    head = post_head(len(body), extra="Content-Encoding: gzip\r\n")
    conn = await Conn.to(api)
    if split:
        await conn.send(head)
        await asyncio.sleep(0.1)
        await conn.send(body)
    else:
        await conn.send(head + body)
    answer = await conn.answer()
    problem = answer.problem(400, "body")
    assert problem["detail"] == "body: cannot read the body: Can not decode content-encoding: gzip"
    assert await conn.rest() == (b"", True)
    assert await cells_of(api, uid) == {}
    assert errors_in(caplog) == []


# -- clients that leave -----------------------------------------------------------------------------


async def test_a_client_leaving_during_an_upload_is_one_info_line(api, caplog) -> None:
    caplog.set_level(logging.INFO)
    host, port = api.client.server.host, api.client.server.port
    _reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"POST {api.rows_path('kinds')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n"
        ).encode()
        + b'[{"entityId": ["gone"], "cells": {'
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()
    for _ in range(50):  # until the server noticed (bounded)
        if any("client went away" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    gone = [r for r in caplog.records if "client went away" in r.getMessage()]
    assert [r.levelno for r in gone] == [logging.INFO]
    assert all(r.exc_info is None for r in caplog.records if r.name.startswith(("kijirest", "aiohttp")))
    assert await cells_of(api, "gone") == {}


# -- log floods -------------------------------------------------------------------------------------


def test_the_log_limiter_lets_one_line_a_second_through_per_kind() -> None:
    now = [100.0]
    limiter = LogLimiter(clock=lambda: now[0])
    assert limiter.allow("a") == 0
    assert [limiter.allow("a") for _ in range(5)] == [None] * 5
    assert limiter.allow("b") == 0  # another kind is not held back
    now[0] += 1.0
    assert limiter.allow("a") == 5  # the five left out are counted in the next line
    assert limiter.allow("a") is None


async def test_asyncio_error_floods_are_logged_once_a_second(caplog) -> None:
    now = [0.0]
    loop = asyncio.get_running_loop()
    old = loop.get_exception_handler()
    install_loop_error_limiter(loop, LogLimiter(clock=lambda: now[0]))
    try:
        context = {"message": "socket.accept() out of system resource", "exception": OSError(24, "EMFILE")}
        for _ in range(1000):
            loop.call_exception_handler(context)
        now[0] += 1.5
        loop.call_exception_handler(context)
    finally:
        loop.set_exception_handler(old)
    lines = [r.getMessage() for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "999 more like it" in lines[1]


# -- the command line -------------------------------------------------------------------------------


def _raw_get(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=WAIT)
    sock.sendall(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


def _read_until_close(sock: socket.socket) -> bytes:
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except ConnectionError:
        pass
    return got


def test_serve_applies_the_connection_settings_of_its_config(tmp_path: Path) -> None:
    config = tmp_path / "kijirest.yaml"
    config.write_text(
        f"layouts: {orjson.dumps(str(API_LAYOUTS)).decode()}\n"
        "store: 'memory:'\nport: 0\n"
        "keepalive_timeout: 2\nheader_timeout: 2\nbody_timeout: 0.5\nmax_connections: 2\n"
    )
    server = Server("serve", "--config", str(config), cwd=tmp_path)
    socks: list[socket.socket] = []
    try:
        host, port = server.address()
        # max_connections 2: two are served, a third is answered 503 and closed
        first, second, third = (_raw_get(host, port) for _ in range(3))
        socks += [first, second, third]
        assert first.recv(12) == b"HTTP/1.1 200"
        assert second.recv(12) == b"HTTP/1.1 200"
        assert _read_until_close(third).startswith(b"HTTP/1.1 503")
        # keepalive_timeout 2: the idle ones are closed by the server (the rest of the answer, then EOF)
        assert b'"service":"KijiREST"' in _read_until_close(first)
        assert b'"service":"KijiREST"' in _read_until_close(second)
        # body_timeout 0.5: a body that stalls is a 408, then the connection is closed
        stalled = socket.create_connection((host, port), timeout=WAIT)
        socks.append(stalled)
        stalled.sendall(post_head(100) + b"[{")
        assert _read_until_close(stalled).startswith(b"HTTP/1.1 408")
        # header_timeout 2: half a head is closed without an answer
        slow = socket.create_connection((host, port), timeout=WAIT)
        socks.append(slow)
        slow.sendall(b"GET /v1 HTTP/1.1\r\n")
        assert _read_until_close(slow) == b""
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait() == 0, server.output
        assert "max_connections 2, keepalive_timeout 2 s, header_timeout 2 s, body_timeout 0.5 s" in (
            server.output
        )
        assert "Traceback" not in server.output
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_running_out_of_descriptors_logs_a_line_a_second_not_one_per_accept(tmp_path: Path) -> None:
    """max_connections set above what `ulimit -n` allows: accept() fails (EMFILE), and asyncio's
    report of it is limited to one line a second."""
    config = tmp_path / "kijirest.yaml"
    config.write_text(
        f"layouts: {orjson.dumps(str(API_LAYOUTS)).decode()}\n"
        "store: 'memory:'\nport: 0\nmax_connections: 1000\n"
    )
    server = Server("serve", "--config", str(config), cwd=tmp_path, preexec_fn=_limit_descriptors)
    socks: list[socket.socket] = []
    try:
        host, port = server.address()
        assert "leaves fewer than 256" in server.output  # the start-up warning
        for _ in range(120):  # more than the 64 descriptors the server may open
            socks.append(socket.create_connection((host, port), timeout=WAIT))
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # accept() keeps failing meanwhile
            time.sleep(0.1)
        reports = server.output.count("out of system resource")
        assert 1 <= reports <= 4, reports  # 2.5 s of EMFILE: at most one line a second (+ the first)
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def test_connection_settings_in_a_config_file_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "kijirest.yaml"
    for text, message in [
        ("header_timeout: fast\n", "header_timeout: expected a number of seconds"),
        ("body_timeout: true\n", "body_timeout: expected a number of seconds"),
        ("keepalive_timeout: 0\n", "keepalive_timeout: must be a positive number of seconds"),
        ("max_connections: 0\n", "max_connections: must be at least 1"),
        ("max_connections: 1.5\n", "max_connections: expected an integer"),
    ]:
        config.write_text(text)
        with pytest.raises(SettingsError, match=message):
            load_config(config)
    config.write_text("keepalive_timeout: 2\nheader_timeout: 0.25\nmax_connections: 7\n")
    settings = load_config(config)
    assert (settings.keepalive_timeout, settings.header_timeout, settings.max_connections) == (2, 0.25, 7)


def test_max_connections_defaults_below_the_descriptor_limit() -> None:
    from kijirest.settings import Settings

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    default = Settings().max_connections
    assert 1 <= default <= 4096
    if soft != resource.RLIM_INFINITY:
        assert default <= soft - 256 or default <= soft // 2
