"""What every view reads and answers with: JSON bodies in, JSON bodies out, and the content type a
row stream is sent as.

Every body is read within bounds (`_next_part`): at most `max_body_size` bytes (413), each part
within `body_timeout` seconds of the previous one (408, and the connection is closed), a body that
cannot be decoded (a bad Content-Encoding) a 400. Only `application/json` is taken (415): a
cross-site "simple" request (text/plain, forms, none) can then never write, since a browser
preflights a JSON POST. `Expect: 100-continue` is answered before the body is sent (`expect_*`).

A POST of rows is read in one of two ways (`read_rows_body`), decided by the bytes that arrive,
not by what Content-Length claims (a gzip body's header says nothing of its decoded size):

- up to `SMALL_BODY_BYTES`: the whole body, parsed by orjson on the event loop, then planned. The
  fast path: for the usual POST of tens or hundreds of rows orjson is ~2x faster than the events
  of the incremental parser turned into objects in Python (measured on bench rows: 100 rows,
  34 KB: orjson 0.10 ms, incremental 0.23 ms), and a body this small costs little memory either way.
- anything larger: incrementally (`json_rows.RowSplitter`, yajl2_c), `STEP_BYTES` at a time in a
  worker thread, each completed row validated and planned at once (`writer.RowPlanner`). Memory is
  one step's bytes and rows plus the plan, never the body's objects at once: a body of more than
  `max_rows_per_post` rows is refused at the row after the limit, however long it is. The bytes
  also go to a temporary file (page cache, not the gateway's memory) for the rare second parse of
  `_plan_exactly`.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any, BinaryIO

import orjson
from aiohttp import web
from aiohttp.http import HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from kijirest.auth.middleware import AUDIT, AUTHENTICATOR, audit_request
from kijirest.auth.scope import RowScope
from kijirest.catalog import TableContext
from kijirest.errors import problem_for, problem_response
from kijirest.json_rows import IntegerOverflow, MalformedJson, RowSplitter
from kijirest.problems import (
    BadInput,
    ExpectationFailed,
    Problem,
    RequestTimeout,
    TooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from kijirest.server import close_after_answer
from kijirest.state import SETTINGS
from kijirest.writer import RowPlanner, WritePlan

NDJSON = "application/x-ndjson"
#: bodies above this are parsed in a worker thread: orjson holds the event loop ~1 ms per 100 KB of
#: rows, so a 60 MB body parsed inline stalled every other request for most of a second
PARSE_OFF_LOOP_BYTES = 256 * 1024
#: bodies up to this size are parsed whole by orjson (`read_rows_body`); larger ones incrementally
SMALL_BODY_BYTES = PARSE_OFF_LOOP_BYTES
#: bytes handed to the incremental parser per worker-thread call: at most one event object per
#: byte exists at once (64 KiB of `[[[[...` are 64 Ki events, ~4 MB, before they are built)
STEP_BYTES = 64 * 1024


def json_body_problem(request: web.Request) -> Problem | None:
    """Why a JSON body would be refused before it is read: its declared size (413) or its type
    (415), or None."""
    declared = request.content_length
    max_size = request.app[SETTINGS].max_body_size
    if declared is not None and declared > max_size:
        return TooLarge("body", f"Content-Length {declared} is larger than max_body_size ({max_size} bytes)")
    if request.content_type != "application/json":
        given = request.headers.get("Content-Type")
        what = f"a body must be sent as application/json, got {given!r}" if given else "missing"
        return UnsupportedMediaType("Content-Type", what + " (send application/json)" if not given else what)
    return None


async def parse_json(body: bytes) -> Any:
    """orjson's value of `body`, parsed in a worker thread when it is large; 400 when malformed."""
    try:
        if len(body) > PARSE_OFF_LOOP_BYTES:
            return await asyncio.get_running_loop().run_in_executor(None, orjson.loads, body)
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput("body", f"malformed JSON: {exc}") from None


async def _next_part(request: web.Request, size: int, limit: int, at_most: int = -1) -> bytes:
    """The next bytes of the body (b"" at its end; `at_most` -1 = what has arrived), `size` bytes
    having come before: 408 when nothing comes for `body_timeout` seconds, 400 when the body cannot
    be decoded, 413 past `limit` bytes."""
    timeout = request.app[SETTINGS].body_timeout
    try:
        async with asyncio.timeout(timeout):
            part = await (request.content.readany() if at_most < 0 else request.content.read(at_most))
    except TimeoutError:
        close_after_answer(request)
        raise RequestTimeout(
            "body",
            f"no bytes for {timeout:g} s (body_timeout) after {size} bytes of the body; "
            "the connection is closed",
        ) from None
    except RequestPayloadError as exc:
        close_after_answer(request)  # the rest of the body cannot be read either
        raise BadInput("body", f"cannot read the body: {_payload_reason(exc)}") from None
    if size + len(part) > limit:
        close_after_answer(request)
        raise TooLarge("body", f"the body is larger than max_body_size ({limit} bytes)")
    return part


async def read_rows_body(
    request: web.Request, table: TableContext, max_rows: int, max_body: int, scope: RowScope | None = None
) -> tuple[Any, WritePlan | None]:
    """A POST body of rows: `(document, None)` for a small body (planned by the caller with
    `plan_writes`), or `(None, plan)` for a large one, validated and planned as it was read (see
    the module docstring). 413 past `max_body` bytes or `max_rows` rows; 403 for a row outside
    `scope` (the rows of the caller's row-prefix grant; None = every row)."""
    refused = json_body_problem(request)
    if refused is not None:
        raise refused
    head: list[bytes] = []
    size = 0
    while size <= SMALL_BODY_BYTES:
        chunk = await _next_part(request, size, max_body)
        if not chunk:
            return await parse_json(b"".join(head)), None
        head.append(chunk)
        size += len(chunk)
    loop = asyncio.get_running_loop()
    splitter = RowSplitter()
    planner = RowPlanner(table, max_rows, scope)
    # the bytes are kept for a second parse in the rare case of an integer yajl refuses, in a
    # temporary file: in memory they were one more copy of the body (4.5x its size at the peak)
    with tempfile.TemporaryFile() as received:
        pending = b"".join(head)
        head = []
        overflow = False
        while True:
            if not overflow:
                overflow = await loop.run_in_executor(None, _plan_step, splitter, planner, pending, received)
            else:
                await loop.run_in_executor(None, received.write, pending)
            pending = await _next_part(request, size, max_body, STEP_BYTES)
            size += len(pending)
            if not pending:
                break
        if not overflow:
            overflow = await loop.run_in_executor(None, _plan_step, splitter, planner, None)
        if overflow:
            planner = await loop.run_in_executor(None, _plan_exactly, received, table, max_rows, scope)
    return None, planner.plan


def _plan_step(
    splitter: RowSplitter, planner: RowPlanner, data: bytes | None, keep: BinaryIO | None = None
) -> bool:
    """Parse the next bytes (None: the end of the body) and plan every row they complete; True
    when yajl met an integer beyond 64 bits (the body is then parsed again by `_plan_exactly`).
    `keep`: where the bytes are also written."""
    if keep is not None and data:
        keep.write(data)
    try:
        rows = splitter.feed(data) if data is not None else splitter.close()
    except IntegerOverflow:
        return True
    except MalformedJson as exc:
        for row in exc.rows:  # rows before the broken part are checked first: a row limit or a
            planner.add(row, splitter.in_array)  # bad row there is what a client hears about
        raise BadInput("body", f"malformed JSON: {exc}") from None
    for row in rows:
        planner.add(row, splitter.in_array)
    return False


def _plan_exactly(
    kept: BinaryIO, table: TableContext, max_rows: int, scope: RowScope | None = None
) -> RowPlanner:
    """The whole body parsed and planned again by ijson's Python backend, which reads integers of
    any size (as orjson does, which reads those past 64 bits as floats)."""
    splitter = RowSplitter(exact_numbers=True)
    planner = RowPlanner(table, max_rows, scope)
    kept.seek(0)
    while chunk := kept.read(STEP_BYTES):
        _plan_step(splitter, planner, chunk)
    _plan_step(splitter, planner, None)
    return planner


def _payload_reason(exc: RequestPayloadError) -> str:
    """What the body's decoder said ("Can not decode content-encoding: gzip"), without the status
    that aiohttp's wrapping puts in front."""
    cause = exc.__cause__
    text = cause.message if isinstance(cause, HttpProcessingError) and cause.message else str(exc)
    return " ".join(text.split())


async def expect_json_body(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` on a route that reads a JSON body: a body that would be refused (too
    large, not application/json) is refused before the client sends it."""
    return await _expect(request, json_body_problem(request))


async def expect_no_body(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` on a route that reads no body: only its declared size is checked."""
    refused = json_body_problem(request)
    return await _expect(request, refused if isinstance(refused, TooLarge) else None)


async def _expect(request: web.Request, refused: Problem | None) -> web.StreamResponse | None:
    """aiohttp's expect_handler: an answer instead of `100 Continue`, or None after sending it.
    After a refusal the connection closes (the client may send the body anyway)."""
    if request.version < HttpVersion11:
        return None  # HTTP/1.0 knows no 100 Continue (RFC 9110 §10.1.1: ignore the expectation)
    expect = request.headers.get("Expect", "")
    if expect.lower() != "100-continue":
        refused = ExpectationFailed("Expect", f"only 100-continue is supported, got {expect!r}")
    if refused is None:
        refused = await _credentials_problem(request)
    if refused is not None:
        close_after_answer(request)
        return problem_response(problem_for(refused), refused.headers or None)
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the answer proper has not started (as aiohttp's own handler)
    return None


async def _credentials_problem(request: web.Request) -> Problem | None:
    """With auth on, a request whose credentials would get a 401 gets it before its body is sent
    (the expect handler runs before the middlewares, which authenticate everything else); the
    refusal is audited like any other."""
    authenticator = request.app.get(AUTHENTICATOR)
    if authenticator is None:
        return None
    try:
        await authenticator.principal(request)
    except Unauthorized as exc:
        audit = request.app.get(AUDIT)
        if audit is not None:
            audit_request(audit, request, exc.status, exc.detail)
        return exc
    return None


def json_response(value: object) -> web.Response:
    return web.Response(body=orjson.dumps(value), content_type="application/json")


def stream_content_type(accept: str | None) -> str:
    """application/x-ndjson when Accept lists it with q > 0 and application/json no higher; else
    application/json (KijiREST's type for row streams)."""
    if not accept:
        return "application/json"
    best: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        best[media] = max(q, best.get(media, 0.0))
    nd = best.get(NDJSON, 0.0)
    js = max(best.get("application/json", 0.0), 0.0)
    return NDJSON if nd > 0 and nd >= js else "application/json"
