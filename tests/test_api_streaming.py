"""The row stream (api.md "GET rows" response): `\\r\\n`-separated compact JSON lines, content types
and the Accept rule, chunked transfer, rows sent as they are read, the store scanner closed when the
client goes away, and the error tail with an aborted body when the store fails mid-scan."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson
import pytest

from kijirest.store.base import StoreUnavailable


def pad(*components: object) -> list:
    return list(components) + [None] * (5 - len(components))


def assert_compact(line: bytes) -> None:
    """No whitespace outside strings, no raw line break anywhere."""
    assert b"\r" not in line and b"\n" not in line, line
    in_string = escaped = False
    for ch in line.decode("utf-8"):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        else:
            assert ch not in " \t", line


async def test_lines_are_compact_json_separated_by_crlf(api, uid) -> None:
    values = ["a\r\nb", "line1\nline2", "tab\there", 'quote " and \\ backslash', "ünï ☃", "sp a ce"]
    await api.post(
        "docs",
        [
            {"entityId": [uid, f"r{i}"], "cells": {"info": {"label": [{"value": v}]}}}
            for i, v in enumerate(values)
        ],
    )
    answer = await api.rows("docs", {"eid": [uid, []]})
    assert answer.status == 200
    assert answer.body.endswith(b"\r\n")
    lines = answer.body[:-2].split(b"\r\n")
    assert len(lines) == len(values)
    for line in lines:
        assert_compact(line)
    rows = [orjson.loads(line) for line in lines]
    assert [r["cells"]["info"]["label"][0]["value"] for r in rows] == values
    assert [r["entityId"] for r in rows] == [pad(uid, f"r{i}") for i in range(len(values))]


async def test_empty_result_is_an_empty_body(api, uid) -> None:
    for params in (
        {"eid": [uid, []]},
        {"start_eid": [uid], "end_eid": [uid, "z"]},
        {"eid": [uid, []], "limit": 0},
    ):
        answer = await api.rows("docs", params)
        assert answer.status == 200
        assert answer.content_type == "application/json"
        assert answer.body == b""


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, "application/json"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("text/html", "application/json"),
        ("application/x-ndjson", "application/x-ndjson"),
        ("application/x-ndjson, application/json", "application/x-ndjson"),
        ("application/json;q=0.5, application/x-ndjson;q=0.5", "application/x-ndjson"),
        ("application/x-ndjson;q=0.9, application/json;q=0.8", "application/x-ndjson"),
        ("application/x-ndjson;q=0.1, */*", "application/x-ndjson"),
        ("application/json, application/x-ndjson;q=0.5", "application/json"),
        ("application/x-ndjson;q=0", "application/json"),
        ("application/x-ndjson; q=0.0, application/json; q=0.1", "application/json"),
    ],
)
async def test_content_type_follows_the_accept_rule(api, uid, accept, expected) -> None:
    await api.put("docs", [uid, "a"], {"info": {"label": [{"timestamp": 1, "value": "x"}]}})
    headers = {"Accept": accept} if accept is not None else None
    plain = await api.rows("docs", {"eid": [uid, []]})
    answer = await api.rows("docs", {"eid": [uid, []]}, headers=headers)
    assert answer.status == 200
    assert answer.content_type == expected
    assert answer.body == plain.body
    point = await api.rows("docs", {"eid": [uid, "a"]}, headers=headers)
    assert point.content_type == expected


# -- the raw HTTP exchange ----------------------------------------------------------------------------------


def decode_chunked(data: bytes) -> tuple[bytes, bool]:
    """The payload of a chunked body, and whether it ended with the terminating zero-size chunk."""
    body = b""
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return body, False
        size = int(data[pos:end].split(b";")[0], 16)
        start = end + 2
        if size == 0:
            return body, data[start : start + 2] == b"\r\n"
        if len(data) < start + size + 2:
            return body + data[start : start + size], False
        body += data[start : start + size]
        pos = start + size + 2


async def raw_get(api, path: str) -> tuple[int, dict[str, str], bytes, bool]:
    """GET over a bare socket: status, headers (lower-case names), payload, cleanly terminated?"""
    server = api.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers.get("transfer-encoding", "").lower() == "chunked", headers
    body, terminated = decode_chunked(rest)
    return int(status_line.split()[1]), headers, body, terminated


async def test_rows_are_sent_chunked_and_cleanly_terminated(api, uid) -> None:
    await api.post(
        "docs", [{"entityId": [uid, c], "cells": {"info": {"label": [{"value": c}]}}} for c in "ab"]
    )
    path = api.rows_path("docs") + "?eid=" + api.compact([uid, []]).replace('"', "%22")
    status, headers, body, terminated = await raw_get(api, path)
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert terminated
    assert body == (await api.get(path)).body
    assert len(body.split(b"\r\n")) == 3


# -- rows as they are read: a store whose scans we script --------------------------------------------------


class ScriptedScanner:
    """Hands out the real rows one per batch; `mode` decides what happens after the first batch:
    "gate" waits for `release`, "endless" repeats the first row until closed, "fail" raises
    StoreUnavailable (after `release`)."""

    def __init__(self, inner: Any, mode: str) -> None:
        self.inner = inner
        self.mode = mode
        self.release = threading.Event()
        self.closed = threading.Event()
        self.sent = 0

    def __iter__(self):
        rows = [row for batch in self.inner for row in batch]
        for i, row in enumerate(rows):
            if i == 1:
                if self.mode in ("gate", "fail"):
                    self.release.wait(10)
                if self.mode == "fail":
                    raise StoreUnavailable("lost the region server")
            self.sent += 1
            yield [row]
        if self.mode == "endless" and rows:
            for _ in range(200_000):
                if self.closed.is_set():
                    return
                time.sleep(0.001)
                self.sent += 1
                yield [rows[0]]

    def close(self) -> None:
        self.closed.set()
        self.release.set()
        self.inner.close()


class ScriptedStore:
    """Wraps the app's store; scans of Kiji tables (not schema tables) get a ScriptedScanner."""

    blocking = True

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.mode = "plain"
        self.scanners: list[ScriptedScanner] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def scan(self, table: str, scan: Any) -> Any:
        inner = self._inner.scan(table, scan)
        if self.mode == "plain" or ".table." not in table:
            return inner
        scanner = ScriptedScanner(inner, self.mode)
        self.scanners.append(scanner)
        return scanner


async def scripted_api(make_api, uid: str, rows: int = 3) -> tuple[Any, ScriptedStore, str]:
    holder: list[ScriptedStore] = []

    def wrap(store: Any) -> ScriptedStore:
        holder.append(ScriptedStore(store))
        return holder[0]

    api = await make_api(wrap=wrap)
    await api.post(
        "docs",
        [
            {"entityId": [uid, f"r{i}"], "cells": {"info": {"label": [{"value": f"v{i}"}]}}}
            for i in range(rows)
        ],
    )
    path = api.rows_path("docs") + "?eid=" + api.compact([uid, []]).replace('"', "%22")
    return api, holder[0], path


async def _wait(event: threading.Event, seconds: float) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, event.wait, seconds)


async def test_first_row_arrives_before_the_scan_ends(make_api, uid) -> None:
    api, store, path = await scripted_api(make_api, uid)
    store.mode = "gate"
    try:
        async with api.client.get(path) as resp:
            assert resp.status == 200
            first = await asyncio.wait_for(resp.content.readuntil(b"\r\n"), timeout=5)
            (scanner,) = store.scanners
            assert not scanner.release.is_set()  # the scan is still waiting for its second batch
            assert orjson.loads(first)["entityId"] == pad(uid, "r0")
            scanner.release.set()
            rest = await asyncio.wait_for(resp.content.read(), timeout=10)
        assert [orjson.loads(line)["entityId"] for line in rest[:-2].split(b"\r\n")] == [
            pad(uid, "r1"),
            pad(uid, "r2"),
        ]
        assert await _wait(scanner.closed, 5)
    finally:
        for s in store.scanners:
            s.release.set()


async def test_client_going_away_closes_the_store_scanner(make_api, uid) -> None:
    api, store, path = await scripted_api(make_api, uid, rows=1)
    store.mode = "endless"
    resp = await api.client.get(path)
    try:
        assert resp.status == 200
        first = await asyncio.wait_for(resp.content.readuntil(b"\r\n"), timeout=5)
        assert orjson.loads(first)["entityId"] == pad(uid, "r0")
    finally:
        resp.close()  # drop the connection mid-stream
    (scanner,) = store.scanners
    assert await _wait(scanner.closed, 10), f"scanner still open after {scanner.sent} batches"
    sent = scanner.sent
    await asyncio.sleep(0.2)
    assert scanner.sent == sent  # and nothing is read any more


async def test_a_client_that_stops_reading_stops_the_scan(make_api, uid) -> None:
    """Backpressure: rows of 256 KiB repeated without end; the client reads one and then nothing.
    Once the socket buffers are full the server stops pulling batches from the store, instead of
    buffering the result in memory."""
    holder: list[ScriptedStore] = []

    def wrap(store: Any) -> ScriptedStore:
        holder.append(ScriptedStore(store))
        return holder[0]

    api = await make_api(wrap=wrap)
    big = "x" * (256 * 1024)
    await api.post("docs", {"entityId": [uid, "big"], "cells": {"info": {"label": [{"value": big}]}}})
    store = holder[0]
    store.mode = "endless"
    path = api.rows_path("docs") + "?eid=" + api.compact([uid, []]).replace('"', "%22")
    resp = await api.client.get(path)
    try:
        first = await asyncio.wait_for(resp.content.readuntil(b"\r\n"), timeout=5)
        assert len(first) > 256 * 1024
        (scanner,) = store.scanners
        await asyncio.sleep(1.5)  # long enough to fill every buffer between server and client
        stalled_at = scanner.sent
        await asyncio.sleep(1.0)
        assert scanner.sent == stalled_at, "the scan kept reading while nobody read the stream"
        # what was read but not delivered is bounded by socket buffers, not by the result size
        assert stalled_at * 256 * 1024 < 64 * 1024 * 1024
    finally:
        resp.close()
    assert await _wait(scanner.closed, 10)


async def test_store_failure_mid_scan_ends_with_an_error_line_and_an_aborted_body(make_api, uid) -> None:
    api, store, path = await scripted_api(make_api, uid)
    store.mode = "fail"
    task = asyncio.ensure_future(raw_get(api, path))
    for _ in range(500):
        if store.scanners and store.scanners[0].sent:
            break
        await asyncio.sleep(0.01)
    store.scanners[0].release.set()
    status, _headers, body, terminated = await task
    assert status == 200
    assert not terminated, "a truncated stream must not look complete"
    assert body.endswith(b"\r\n")
    lines = body[:-2].split(b"\r\n")
    assert orjson.loads(lines[0])["entityId"] == pad(uid, "r0")
    tail = orjson.loads(lines[-1])
    assert list(tail) == ["error"]
    problem = tail["error"]
    assert set(problem) == {"type", "title", "status", "detail", "exceptionName", "exception"}
    assert problem["status"] == 503 and problem["type"] == "about:blank"
    assert problem["exception"] == problem["detail"]
    assert b"Traceback" not in body
    assert await _wait(store.scanners[0].closed, 5)


async def test_store_failure_before_the_first_row_is_a_clean_problem(make_api, uid) -> None:
    api, store, path = await scripted_api(make_api, uid)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("region server gone")

    store.scan = down  # type: ignore[method-assign]
    answer = await api.get(path)
    answer.problem(503)
