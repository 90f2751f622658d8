"""Error types of the HTTP API and the one middleware that turns every failure into problem+json.

An `ApiError` names *where* the problem is (a parameter or a body path such as
`[0].cells.info.name[1].value`) and *what* was wrong; the answer body is RFC 9457 problem+json plus
KijiREST's `exceptionName` / `exception` members so that old clients keep working. A failure that is
not an `ApiError` is a bug: it is logged with its trace and answered 500 without details.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from kijirest.store.base import StoreUnavailable

log = logging.getLogger("kijirest")

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """A client-visible error: status, where it happened, what was wrong."""

    status = 400
    exception_name = "KijiRESTException"

    def __init__(self, where: str | None, what: str, *, status: int | None = None) -> None:
        self.where = where
        self.what = what
        if status is not None:
            self.status = status
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class BadRequest(ApiError):
    status = 400
    exception_name = "IllegalArgumentException"


class NotFound(ApiError):
    status = 404
    exception_name = "WebApplicationException"


def problem(status: int, detail: str, exception_name: str) -> dict[str, Any]:
    """The problem object of api.md, built in this one place."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "exceptionName": exception_name,
        "exception": detail,
    }


def problem_for(exc: BaseException) -> dict[str, Any]:
    """The problem object for any exception (a bug becomes a detail-free 500)."""
    if isinstance(exc, ApiError):
        return problem(exc.status, exc.detail, exc.exception_name)
    if isinstance(exc, StoreUnavailable):
        return problem(503, f"store unavailable: {exc}", "IOException")
    return problem(500, "internal server error (logged on the server)", "InternalServerError")


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=body["status"],
        body=orjson.dumps(body),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


_HTTP_NAMES = {404: "WebApplicationException", 405: "WebApplicationException", 413: "WebApplicationException"}


def _http_detail(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"path: no resource at {request.path}"
    if exc.status == 405:
        return f"method: {request.method} is not allowed on {request.path}"
    if exc.status == 413:
        return "body: request body is larger than the configured max_body_size"
    return exc.reason or HTTPStatus(exc.status).phrase


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error before a stream starts leaves here as problem+json."""
    try:
        return await handler(request)
    except ApiError as exc:
        return problem_response(problem_for(exc))
    except StoreUnavailable as exc:
        log.warning("store unavailable on %s %s: %s", request.method, request.path_qs, exc)
        return problem_response(problem_for(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        name = _HTTP_NAMES.get(exc.status, "WebApplicationException")
        return problem_response(problem(exc.status, _http_detail(request, exc), name), headers)
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path_qs)
        return problem_response(problem_for(RuntimeError()))
