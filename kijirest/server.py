"""The HTTP edge: how connections are taken, timed and refused, and how aiohttp's own refusals read.

aiohttp's defaults suit a server behind a proxy: an idle keep-alive connection lives an hour,
nothing times out a request head sent a byte at a time, and every connection is accepted until the
process runs out of descriptors. Facing clients itself, one client holding ~20,000 idle connections
exhausted RLIMIT_NOFILE: new clients timed out and asyncio logged 678,156 "accept() out of system
resource" tracebacks in 80 s. This module bounds each of those:

- `keepalive_timeout`: an idle keep-alive connection is closed (aiohttp's own timer, shortened);
- `header_timeout`: a connection whose request head is not complete that long after it connected,
  or after the first byte of its next request, is closed (a "slowloris" holds no descriptor long);
- `max_connections`: a connection over it is answered `503` problem+json with `Retry-After` and
  closed. Answering, not just closing, tells an HTTP client that the server is busy (a bare close
  reads as a network fault, and some clients retry it at once); the answer is written without
  reading the request, and the process stays below its descriptor limit, where accept() itself
  fails and nobody can be answered. The refusals lingering (to let the client read the answer)
  are capped too: past `MAX_REFUSING` the connection is closed right after the answer is written;
- aiohttp's parse errors (a bad request line, an oversized header, ...) are answered problem+json
  like every other refusal, and logged at INFO (a client's mistake), at most one line a second;
- `close_after_answer(request)`: the connection closes right after this answer, without aiohttp's
  lingering read of an unread body (a body that stalled, or that the client was told not to send);
- `install_loop_error_limiter`: asyncio's own error reports (the accept() flood) at most once a
  second per kind.

`body_timeout` applies where a body is read (views/common.py, `_next_part`). `EdgeRunner` is
the `web.AppRunner` that the CLI and the test fixtures serve with.

Written against aiohttp 3.14.5: `RequestHandler`'s connection_made / data_received /
finish_response / handle_error, its `_request_count` (requests parsed on the connection) and
`_loop`, and `web.Server`'s `_kwargs` (the handler's keyword arguments).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)
from aiohttp.web_protocol import RequestHandler

from kijirest.errors import problem, problem_response
from kijirest.loglimit import LogLimiter, left_out_note
from kijirest.state import LOG_LIMITER, SETTINGS

log = logging.getLogger("kijirest")

#: seconds a refused connection stays open so that its client reads the 503 before the close
REFUSAL_LINGER = 1.0
#: refused connections lingering at once; past it a refused connection closes once answered
MAX_REFUSING = 64
#: Retry-After of the 503 answer to a connection over max_connections (seconds)
RETRY_AFTER = 1


@dataclass(frozen=True)
class EdgeLimits:
    """What the connections of one server are held to (from the settings)."""

    header_timeout: float
    max_connections: int
    log: LogLimiter

    @classmethod
    def of(cls, app: web.Application) -> EdgeLimits:
        settings = app[SETTINGS]
        return cls(settings.header_timeout, settings.max_connections, app[LOG_LIMITER])


def close_after_answer(request: web.BaseRequest) -> None:
    """The connection closes once this request's answer is written (`Connection: close`), without
    reading what is left of its body: the body stalled, cannot be decoded, or was refused before
    the client sent it."""
    protocol = request.protocol
    if isinstance(protocol, EdgeHandler):
        protocol.close_after_answer = True


def _busy_answer(max_connections: int) -> bytes:
    body = orjson.dumps(
        problem(
            503,
            f"connections: the server has {max_connections} connections open, its max_connections; "
            f"retry in {RETRY_AFTER} s",
            "WebApplicationException",
        )
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {RETRY_AFTER}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class EdgeServer(web.Server):
    """aiohttp's low-level server with `EdgeHandler` connections, counted against max_connections."""

    def __init__(self, handler: Any, *, limits: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.open_connections = 0  # served connections (refused ones are not counted)
        self.refusing = 0  # refused connections still lingering
        self.busy_answer = _busy_answer(limits.max_connections)

    def __call__(self) -> EdgeHandler:
        return EdgeHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.open_connections += 1

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self.open_connections -= 1
        super().connection_lost(handler, exc)

    def is_full(self) -> bool:
        return self.open_connections >= self.limits.max_connections

    def log_once_a_second(self, kind: str, level: int, message: str, *args: Any) -> None:
        left_out = self.limits.log.allow(kind)
        if left_out is not None:
            log.log(level, message + left_out_note(left_out), *args)


class EdgeHandler(RequestHandler):
    """One connection: refused when the server is full, closed when its request head is late, and
    aiohttp's parse errors answered as problem+json."""

    __slots__ = (
        "_edge",
        "_head_bytes",
        "_head_first_line",
        "_head_line_ended",
        "_head_timer",
        "_lingers",
        "_refused",
        "close_after_answer",
        "waiting_for_head",
    )

    def __init__(self, manager: EdgeServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._edge = manager
        self._refused: asyncio.Transport | None = None  # set: refused (max_connections)
        self._lingers = False  # refused and counted in the server's `refusing`
        self._head_timer: asyncio.TimerHandle | None = None
        #: True from the connection's start or an answer until a request head is complete
        self.waiting_for_head = True
        self._head_bytes = 0  # bytes of the awaited request head received so far
        self._head_first_line = 0  # bytes of its first line (the request line) so far
        self._head_line_ended = False  # its request line is complete
        self.close_after_answer = False

    # -- connections over max_connections -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._edge.is_full():
            self._refuse(transport)  # type: ignore[arg-type]
            return
        super().connection_made(transport)
        self._start_head_timer()

    def _refuse(self, transport: asyncio.Transport) -> None:
        edge = self._edge
        self._refused = transport
        edge.log_once_a_second(
            "refused",
            logging.WARNING,
            "refused a connection with 503: %s connections are open (max_connections)",
            edge.open_connections,
        )
        transport.write(edge.busy_answer)
        if edge.refusing >= MAX_REFUSING or not transport.can_write_eof():
            transport.close()  # still writes the answer; the client may see a reset instead
            return
        edge.refusing += 1
        self._lingers = True
        transport.write_eof()  # the answer, then end of stream; what the client sends is dropped
        self._head_timer = self._loop.call_later(REFUSAL_LINGER, transport.close)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        if self._refused is not None:
            self._refused = None
            if self._lingers:
                self._edge.refusing -= 1
            return
        super().connection_lost(exc)

    # -- the request head's deadline --------------------------------------------------------------

    def _start_head_timer(self) -> None:
        self._head_timer = self._loop.call_later(self._edge.limits.header_timeout, self._head_too_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_late(self) -> None:
        self._head_timer = None
        if not self.waiting_for_head or self.transport is None:
            return
        if self._head_bytes:  # a partial head (a connection that never sent a byte is just closed)
            self._edge.log_once_a_second(
                "head timeout",
                logging.INFO,
                "closed a connection from %s: its request head was not complete within %s s "
                "(header_timeout; %s bytes received)",
                self.transport.get_extra_info("peername"),
                self._edge.limits.header_timeout,
                self._head_bytes,
            )
        self.force_close()

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return  # read and dropped: the answer is the 503 already written
        if self.waiting_for_head and data:
            if self._head_timer is None:  # the first byte of a request after an answer
                self._start_head_timer()
            self._head_bytes += len(data)
            if not self._head_line_ended:
                end = data.find(b"\n")
                self._head_first_line += len(data) if end < 0 else end
                self._head_line_ended = end >= 0
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a complete head (or a parse error) is being answered
            self.waiting_for_head = False
            self._cancel_head_timer()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        close = self.close_after_answer
        if close:
            resp.force_close()
        answered = await super().finish_response(request, resp, start_time)
        if close:
            self.close_after_answer = False
            self.force_close()  # no lingering read of the rest of the body
        else:
            self.waiting_for_head = True
            self._head_bytes = self._head_first_line = 0
            self._head_line_ended = False
        return answered

    # -- aiohttp's own refusals -------------------------------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's parser refused the request (or, for 5xx, a failure escaped the app's
        middleware): the problem object instead of text/plain; the connection closes after it."""
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            what = HTTPStatus(status).phrase.lower()
            body = problem(status, f"{what} (logged on the server)", "InternalServerError")
        else:
            detail = self.parse_error_detail(exc, message)
            self._edge.log_once_a_second(
                "bad request",
                logging.INFO,
                "refused a request from %s: %s %s",
                request.remote,
                status,
                detail,
            )
            body = problem(status, detail, "WebApplicationException")
        if request.writer.output_size > 0:  # an answer was started already: the connection is broken
            raise ConnectionError("Response is sent already, cannot send another response")
        resp = problem_response(body)
        resp.force_close()
        return resp

    def parse_error_detail(self, exc: BaseException | None, message: str | None) -> str:
        """`<where>: <what was wrong>` for an error of aiohttp's HTTP parser."""
        if isinstance(exc, LineTooLong):
            limit = exc.args[1] if len(exc.args) > 1 else "the allowed number of"
            if not self._head_line_ended or self._head_first_line > self.max_line_size:
                return f"request: the request line is longer than {limit} bytes"
            return f"headers: a header line is longer than {limit} bytes"
        if not isinstance(exc, HttpProcessingError):
            return f"request: {message or 'malformed request'}"
        reason = _reason(exc.message)
        if isinstance(exc, BadHttpMethod) and "HTTPS" in exc.message:
            return "request: HTTPS sent to an HTTP port"
        if isinstance(exc, BadStatusLine | InvalidURLError):
            return f"request: invalid request line ({reason})"
        if isinstance(exc, InvalidHeader):
            return f"headers: invalid header {exc.hdr[:100]!r}"
        if isinstance(exc, PayloadEncodingError):
            return f"body: cannot read the body: {reason}"
        lowered = reason.lower()
        if "chunk" in lowered:
            return f"body: {reason}"
        if any(word in lowered for word in ("header", "content-length", "transfer-encoding")):
            return f"headers: {reason}"
        return f"request: {reason}"


def _reason(message: str) -> str:
    """The parser's reason without the echoed request bytes (llhttp's message is reason, bytes,
    a caret line; "Bad status line:" only heads another such message)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    lines = [line for line in lines if line != "Bad status line:"] or ["malformed request"]
    return lines[0].rstrip(":")


class EdgeRunner(web.AppRunner):
    """`web.AppRunner` serving through `EdgeServer`, with the app's settings: the CLI's and the
    test fixtures' runner. Keyword arguments go to aiohttp (access_log, shutdown_timeout, ...)."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", app[SETTINGS].keepalive_timeout)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's start-up, builds aiohttp's Server
        return EdgeServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            limits=EdgeLimits.of(self.app),
            **plain._kwargs,
        )


def install_loop_error_limiter(loop: asyncio.AbstractEventLoop, limiter: LogLimiter | None = None) -> None:
    """asyncio's error reports (such as "socket.accept() out of system resource", reported for
    every failed accept while descriptors are out) at most once a second per message."""
    limiter = limiter or LogLimiter()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "Unhandled exception in event loop")
        left_out = limiter.allow(message)
        if left_out is None:
            return
        loop.default_exception_handler({**context, "message": message + left_out_note(left_out)})

    loop.set_exception_handler(handle)
