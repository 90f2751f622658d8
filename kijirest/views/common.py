"""What every view reads and answers with: JSON bodies in, JSON bodies out, and the content type a
row stream is sent as."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http import HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from kijirest.errors import problem_for, problem_response
from kijirest.problems import (
    BadInput,
    ExpectationFailed,
    Problem,
    RequestTimeout,
    TooLarge,
    UnsupportedMediaType,
)
from kijirest.server import close_after_answer
from kijirest.state import SETTINGS

NDJSON = "application/x-ndjson"
#: bodies above this are parsed in a worker thread: orjson holds the event loop ~1 ms per 100 KB of
#: rows, so a 60 MB body parsed inline stalled every other request for most of a second
PARSE_OFF_LOOP_BYTES = 256 * 1024


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


async def read_json_body(request: web.Request) -> Any:
    """The request's JSON body. Only `application/json` is taken (415 otherwise): a cross-site
    "simple" request (text/plain, forms, none) can then never write, since a browser preflights a
    JSON POST. A body that cannot be read (a Content-Encoding that does not decode) is a 400, one
    that stops arriving for `body_timeout` seconds a 408; after either the connection is closed."""
    refused = json_body_problem(request)
    if refused is not None:
        raise refused
    body = await read_body(request)
    try:
        if len(body) > PARSE_OFF_LOOP_BYTES:
            return await asyncio.get_running_loop().run_in_executor(None, orjson.loads, body)
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput("body", f"malformed JSON: {exc}") from None


async def read_body(request: web.Request) -> bytes:
    """The whole body (decoded), at most max_body_size bytes (413), each part within body_timeout
    seconds of the previous one (408)."""
    settings = request.app[SETTINGS]
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            async with asyncio.timeout(settings.body_timeout):
                chunk = await request.content.readany()
        except TimeoutError:
            close_after_answer(request)
            raise RequestTimeout(
                "body",
                f"no bytes for {settings.body_timeout:g} s (body_timeout) after {size} bytes of the "
                "body; the connection is closed",
            ) from None
        except RequestPayloadError as exc:
            close_after_answer(request)  # the rest of the body cannot be read either
            raise BadInput("body", f"cannot read the body: {_payload_reason(exc)}") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > settings.max_body_size:
            raise TooLarge("body", f"the body is larger than max_body_size ({settings.max_body_size} bytes)")
        chunks.append(chunk)


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
    if refused is not None:
        close_after_answer(request)
        return problem_response(problem_for(refused))
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the answer proper has not started (as aiohttp's own handler)
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
