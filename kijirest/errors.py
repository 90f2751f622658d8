"""Failures as HTTP answers: the problem object and the one middleware that answers with it.

The model raises `problems.Problem`s (where + what, no HTTP); this module alone turns them, store
outages (503 with `Retry-After`) and aiohttp's own HTTP errors into RFC 9457 problem+json plus
KijiREST's `exceptionName` / `exception` members, so that old clients keep working. A failure that
is none of these is a bug: it is logged with its trace and answered 500 without details. The row
stream's error tail (`streaming.py`) uses the same `problem_for`.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from kijirest.loglimit import left_out_note
from kijirest.problems import Problem
from kijirest.state import LOG_LIMITER
from kijirest.store.base import StoreUnavailable
from kijirest.store.breaker import StoreDown

log = logging.getLogger("kijirest")

PROBLEM_JSON = "application/problem+json"
#: Retry-After of a store 503 that did not come from the breaker (whole seconds)
RETRY_AFTER_S = 1


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
    if isinstance(exc, Problem):
        return problem(exc.status, exc.detail, exc.exception_name)
    if isinstance(exc, StoreUnavailable):
        return problem(503, f"store unavailable: {exc}", "IOException")
    return problem(500, "internal server error (logged on the server)", "InternalServerError")


def retry_after(exc: StoreUnavailable) -> int:
    """Seconds a client should wait before retrying after a store 503 (the breaker's probe
    interval while it is open; 1 otherwise)."""
    return getattr(exc, "retry_after", None) or RETRY_AFTER_S


def problem_response(body: dict[str, Any], headers: Any = None) -> web.Response:
    return web.Response(
        status=body["status"],
        body=orjson.dumps(body),
        content_type=PROBLEM_JSON,
        headers=headers,
    )




def _http_detail(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"path: no resource at {request.path}"
    if exc.status == 405:
        return f"method: {request.method} is not allowed on {request.path}"
    return exc.reason or HTTPStatus(exc.status).phrase


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error before a stream starts leaves here as problem+json."""
    try:
        return await handler(request)
    except Problem as exc:
        return problem_response(problem_for(exc), exc.headers)
    except StoreUnavailable as exc:
        if not isinstance(exc, StoreDown):  # the breaker's refusals: logged once, when it opened
            log.warning("store unavailable on %s %s: %s", request.method, request.path_qs, exc)
        return problem_response(problem_for(exc), {"Retry-After": str(retry_after(exc))})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        detail = _http_detail(request, exc)
        return problem_response(problem(exc.status, detail, "WebApplicationException"), headers)
    except ConnectionError as exc:  # the client left while its request was read: nobody to answer
        left_out = request.app[LOG_LIMITER].allow("client went away")
        if left_out is not None:
            note = left_out_note(left_out)
            log.info("client went away during %s %s: %s%s", request.method, request.path_qs, exc, note)
        request.protocol.force_close()
        return problem_response(problem(400, "client went away", "IOException"))
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path_qs)
        return problem_response(problem_for(RuntimeError()))
