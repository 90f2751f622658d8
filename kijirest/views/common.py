"""What every view answers with: JSON bodies, and the content type a row stream is sent as."""

from __future__ import annotations

import orjson
from aiohttp import web

NDJSON = "application/x-ndjson"


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
