"""What every view reads and answers with: JSON bodies in, JSON bodies out, and the content type a
row stream is sent as.

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
from aiohttp.web_protocol import RequestPayloadError

from kijirest.catalog import TableContext
from kijirest.json_rows import IntegerOverflow, MalformedJson, RowSplitter
from kijirest.problems import BadInput, UnsupportedMediaType
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


def require_json(request: web.Request) -> None:
    """Only `application/json` is taken (415 otherwise): a cross-site "simple" request
    (text/plain, forms, none) can then never write, since a browser preflights a JSON POST."""
    if request.content_type != "application/json":
        given = request.headers.get("Content-Type")
        what = f"a body must be sent as application/json, got {given!r}" if given else "missing"
        raise UnsupportedMediaType("Content-Type", what + " (send application/json)" if not given else what)


def _unreadable(request: web.Request, exc: RequestPayloadError) -> BadInput:
    """A body that cannot be read (a Content-Encoding that does not decode) is a 400."""
    request.protocol.force_close()  # the rest of the body cannot be read either: no keep-alive
    reason = " ".join(str(exc).split())
    return BadInput("body", f"cannot read the body: {reason}")


async def read_json_body(request: web.Request) -> Any:
    """The request's JSON body (application/json only, see `require_json`)."""
    require_json(request)
    try:
        body = await request.read()
    except RequestPayloadError as exc:
        raise _unreadable(request, exc) from None
    return await parse_json(body)


async def parse_json(body: bytes) -> Any:
    """orjson's value of `body`, parsed in a worker thread when it is large; 400 when malformed."""
    try:
        if len(body) > PARSE_OFF_LOOP_BYTES:
            return await asyncio.get_running_loop().run_in_executor(None, orjson.loads, body)
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput("body", f"malformed JSON: {exc}") from None


async def read_rows_body(
    request: web.Request, table: TableContext, max_rows: int, max_body: int
) -> tuple[Any, WritePlan | None]:
    """A POST body of rows: `(document, None)` for a small body (planned by the caller with
    `plan_writes`), or `(None, plan)` for a large one, validated and planned as it was read (see
    the module docstring). 413 past `max_body` bytes or `max_rows` rows."""
    require_json(request)
    content = request.content
    head: list[bytes] = []
    size = 0
    try:
        while size <= SMALL_BODY_BYTES:
            chunk = await content.readany()
            if not chunk:
                return await parse_json(b"".join(head)), None
            head.append(chunk)
            size += len(chunk)
            if size > max_body:
                raise web.HTTPRequestEntityTooLarge(max_size=max_body, actual_size=size)
        loop = asyncio.get_running_loop()
        splitter = RowSplitter()
        planner = RowPlanner(table, max_rows)
        # the bytes are kept for a second parse in the rare case of an integer yajl refuses, in a
        # temporary file: in memory they were one more copy of the body (4.5x its size at the peak)
        with tempfile.TemporaryFile() as received:
            pending = b"".join(head)
            head = []
            overflow = False
            while True:
                if not overflow:
                    overflow = await loop.run_in_executor(
                        None, _plan_step, splitter, planner, pending, received
                    )
                else:
                    await loop.run_in_executor(None, received.write, pending)
                pending = await content.read(STEP_BYTES)
                size += len(pending)
                if size > max_body:
                    raise web.HTTPRequestEntityTooLarge(max_size=max_body, actual_size=size)
                if not pending:
                    break
            if not overflow:
                overflow = await loop.run_in_executor(None, _plan_step, splitter, planner, None)
            if overflow:
                planner = await loop.run_in_executor(None, _plan_exactly, received, table, max_rows)
    except RequestPayloadError as exc:
        raise _unreadable(request, exc) from None
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


def _plan_exactly(kept: BinaryIO, table: TableContext, max_rows: int) -> RowPlanner:
    """The whole body parsed and planned again by ijson's Python backend, which reads integers of
    any size (as orjson does, which reads those past 64 bits as floats)."""
    splitter = RowSplitter(exact_numbers=True)
    planner = RowPlanner(table, max_rows)
    kept.seek(0)
    while chunk := kept.read(STEP_BYTES):
        _plan_step(splitter, planner, chunk)
    _plan_step(splitter, planner, None)
    return planner


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
