"""What every view reads and answers with: JSON bodies in, JSON bodies out, and the content type a
row stream is sent as."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from kijirest.problems import BadInput, UnsupportedMediaType

NDJSON = "application/x-ndjson"
#: bodies above this are parsed in a worker thread: orjson holds the event loop ~1 ms per 100 KB of
#: rows, so a 60 MB body parsed inline stalled every other request for most of a second
PARSE_OFF_LOOP_BYTES = 256 * 1024


async def read_json_body(request: web.Request) -> Any:
    """The request's JSON body. Only `application/json` is taken (415 otherwise): a cross-site
    "simple" request (text/plain, forms, none) can then never write, since a browser preflights a
    JSON POST. A body that cannot be read (a Content-Encoding that does not decode) is a 400."""
    if request.content_type != "application/json":
        given = request.headers.get("Content-Type")
        what = f"a body must be sent as application/json, got {given!r}" if given else "missing"
        raise UnsupportedMediaType("Content-Type", what + " (send application/json)" if not given else what)
    try:
        body = await request.read()
    except RequestPayloadError as exc:
        request.protocol.force_close()  # the rest of the body cannot be read either: no keep-alive
        reason = " ".join(str(exc).split())
        raise BadInput("body", f"cannot read the body: {reason}") from None
    try:
        if len(body) > PARSE_OFF_LOOP_BYTES:
            return await asyncio.get_running_loop().run_in_executor(None, orjson.loads, body)
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput("body", f"malformed JSON: {exc}") from None


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
