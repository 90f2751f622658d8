"""The URL table (api.md "Resources"), and CORS for the origins of the `cors` setting."""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web

from kijirest.state import SETTINGS
from kijirest.views import keys, meta, rows
from kijirest.views.common import expect_json_body, expect_no_body

#: the request headers the API reads: a preflight allows these and no others
ALLOWED_HEADERS = "Content-Type, Accept, Authorization"


def setup_routes(app: web.Application) -> None:
    """Every resource answers with and without a trailing slash; GET routes answer HEAD too.
    `Expect: 100-continue` is answered 413 / 415 before the body is sent when it would be refused."""

    def add(path: str, get: Any, **others: Any) -> None:
        for p in (path, path + "/"):
            app.router.add_get(p, get, expect_handler=expect_no_body)
            for method, handler in others.items():
                expect = expect_json_body if method == "post" else expect_no_body
                app.router.add_route(method.upper(), p, handler, expect_handler=expect)

    add("/v1", meta.service)
    add("/v1/version", meta.version)
    add("/v1/instances", meta.instances)
    add("/v1/instances/{instance}", meta.instance)
    add("/v1/instances/{instance}/tables", meta.tables)
    add("/v1/instances/{instance}/tables/{table}", meta.table)
    add(
        "/v1/instances/{instance}/tables/{table}/rows",
        rows.get_rows,
        post=rows.post_rows,
        delete=rows.delete_rows,
    )
    auth = app[SETTINGS].auth
    if auth is not None and auth.keys:
        add("/v1/keys", keys.list_keys)
        add("/v1/keys/{name}", keys.get_key, delete=keys.revoke_key)


def _allowed_origin(request: web.Request) -> str | None:
    """The Access-Control-Allow-Origin value for this request's Origin, or None (no CORS)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return None
    allowed = request.app[SETTINGS].cors
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


@web.middleware
async def cors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """`cors` set: answer preflights from allowed origins on every known path. Credentials are
    never allowed; the allowed headers are the ones the API reads, not whatever was asked."""
    if request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
        allow_origin = _allowed_origin(request)
        exc = request.match_info.http_exception
        if allow_origin is not None and (exc is None or exc.status == 405):
            allowed = sorted(exc.allowed_methods) if exc is not None else [request.method]
            return web.Response(
                status=204,
                headers={
                    hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: allow_origin,
                    hdrs.ACCESS_CONTROL_ALLOW_METHODS: ", ".join(allowed),
                    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOWED_HEADERS,
                    hdrs.ACCESS_CONTROL_MAX_AGE: "86400",
                    hdrs.VARY: "Origin",
                },
            )
    return await handler(request)


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer (streams and errors included) to an allowed origin says so."""
    allow_origin = _allowed_origin(request)
    if allow_origin is not None:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allow_origin
        if allow_origin != "*":
            response.headers.add(hdrs.VARY, "Origin")
