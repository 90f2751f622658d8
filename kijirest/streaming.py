"""The row stream: JSON rows separated by `\\r\\n`, written as they are read, in ~64 KiB writes.

- Encoding is orjson, compact. orjson escapes control characters inside strings, so a row's JSON text
  never holds a raw `\\r\\n`: the separator is unambiguous without any rewriting.
- Rows of one source batch (one store round trip) are encoded together and written once the buffer
  holds `flush_bytes`, and at the end of every source batch, so the first row of a slow, selective
  scan goes out as soon as its batch arrives instead of waiting for 64 KiB.
- `await response.write()` waits while the socket's buffer is full: a slow client slows the scan
  instead of filling server memory.
- The source is closed in every case: end of data, client gone, error, cancellation.
- Headers go out with the first data: an error before any row is still a clean problem+json answer.
  An error after that becomes one last line `{"error": {...}}` and the connection is aborted without
  the chunked terminator, so a client cannot take a truncated stream for a complete one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from aiohttp import web

from kijirest.errors import ApiError, problem_for
from kijirest.store.base import StoreUnavailable

log = logging.getLogger("kijirest.streaming")

ROW_SEPARATOR = b"\r\n"
FLUSH_BYTES = 64 * 1024


async def _close(source: AsyncIterator[Any]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # closing must never mask the real outcome
            log.exception("closing a row source failed")


async def stream_rows(
    request: web.Request,
    batches: AsyncIterator[Iterable[Any]],
    *,
    content_type: str = "application/json",
    flush_bytes: int = FLUSH_BYTES,
) -> web.StreamResponse:
    """Send every row of every batch (JSON-able objects) as `\\r\\n`-terminated lines."""
    response = web.StreamResponse(status=200)
    response.content_type = content_type
    response.enable_chunked_encoding()
    dumps = orjson.dumps
    buffer = bytearray()
    try:
        async for batch in batches:
            for row in batch:
                buffer += dumps(row)
                buffer += ROW_SEPARATOR
                if len(buffer) >= flush_bytes:
                    await _write(request, response, buffer)
            if buffer:
                await _write(request, response, buffer)
    except ConnectionError:
        log.info("client went away during %s", request.path_qs)
        return response
    except Exception as exc:
        if not response.prepared:
            raise  # nothing sent yet: the middleware answers with problem+json
        await _abort_with_error(request, response, exc)
        return response
    finally:
        await _close(batches)
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof()
    return response


async def _write(request: web.Request, response: web.StreamResponse, buffer: bytearray) -> None:
    if not response.prepared:
        await response.prepare(request)
    data = bytes(buffer)
    buffer.clear()
    await response.write(data)


async def _abort_with_error(request: web.Request, response: web.StreamResponse, exc: BaseException) -> None:
    if not isinstance(exc, ApiError | StoreUnavailable):
        log.error("row stream failed after it started: %s", request.path_qs, exc_info=exc)
    else:
        log.warning("row stream failed after it started: %s: %s", request.path_qs, exc)
    tail = orjson.dumps({"error": problem_for(exc)}) + ROW_SEPARATOR
    try:
        await response.write(tail)
    except (ConnectionResetError, ConnectionError):
        pass
    transport = request.transport
    if transport is not None:
        transport.close()
