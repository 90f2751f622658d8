"""The row stream: JSON rows separated by `\\r\\n`, written as they are read, in chunks of ~64 KiB.

`scan_lines` / `point_lines` turn store rows into chunks of JSON lines; `stream_rows` sends chunks.

- Encoding is orjson, compact. orjson escapes control characters inside strings, so a row's JSON text
  never holds a raw `\\r\\n`: the separator is unambiguous without any rewriting.
- `scan_lines` turns each row into its JSON line right after building it (the row's
  objects are still in the CPU cache and are freed at once) and hands over `bytes` chunks: one when
  ~`FLUSH_BYTES` are ready, and one at the end of every source batch, so the first row of a slow,
  selective scan goes out as soon as its batch arrives instead of waiting for 64 KiB.
- `await response.write()` waits while the socket's buffer is full: a slow client slows the scan
  instead of filling server memory.
- The source is closed in every case: end of data, client gone, error, cancellation.
- Headers go out with the first data: an error before any row is still a clean problem+json answer.
  An error after that becomes one last line `{"error": {...}}` and the connection is aborted without
  the chunked terminator, so a client cannot take a truncated stream for a complete one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from kijirest.errors import problem_for
from kijirest.problems import Problem
from kijirest.reader import RowReader
from kijirest.store.base import ReadOptions, Scan, StoreUnavailable
from kijirest.store.runner import AsyncStore
from kijirest.streams import RowSizes, StreamGate

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


def encode_lines(rows: Iterable[Any], reader: RowReader) -> bytes:
    """Rows as one chunk of `\\r\\n`-terminated JSON lines."""
    parts = []
    for row in rows:
        try:
            parts.append(orjson.dumps(row))
        except orjson.JSONEncodeError as exc:
            parts.append(orjson.dumps(reader.renderable(row, str(exc))))
        parts.append(ROW_SEPARATOR)
    return b"".join(parts)


async def no_lines() -> AsyncIterator[bytes]:
    """The chunks of a request that matches no row (an empty key range): none."""
    return
    yield  # pragma: no cover  (makes this an async generator)


async def point_lines(
    store: AsyncStore,
    table: str,
    keys: Sequence[bytes],
    read: ReadOptions,
    reader: RowReader,
    limit: int | None,
    batch_keys: int,
) -> AsyncIterator[bytes]:
    """One row per requested key, in order, duplicates included (`"cells": {}` when nothing
    matches); one chunk per store call of `batch_keys` keys."""
    if limit is not None:
        keys = keys[:limit]
    for start in range(0, len(keys), batch_keys):
        stored = await store.get_rows(table, keys[start : start + batch_keys], read)
        yield encode_lines((reader.row(r) or reader.empty_row(r[0]) for r in stored), reader)


async def scan_lines(
    store: AsyncStore,
    table: str,
    scan: Scan,
    reader: RowReader,
    limit: int | None,
    matcher: Callable[[bytes], bool] | None = None,
    gate: StreamGate | None = None,
) -> AsyncIterator[bytes]:
    """The JSON lines of a scan's rows as they are read, in chunks of ~FLUSH_BYTES and one chunk
    at the end of every store batch. Rows without any cell to show are left out and `limit` counts
    only rows sent. The next batch is fetched while the current one is encoded and sent.

    With a `gate` (`streams.py`) the scan counts as a stream in flight (503 before anything is
    read when too many are) and its batches, prefetch and chunks follow the shared budget."""
    if limit == 0:
        return
    sizes = RowSizes()
    full_batch = scan.batch_size
    if gate is not None:
        gate.enter()
        scan = replace(scan, batch_cap=lambda: gate.batch_rows(sizes.per_row, full_batch))
    try:
        scanner = await store.scan(table, scan)
    except BaseException:
        if gate is not None:
            gate.leave()
        raise
    sent = 0
    to_row = reader.row
    dumps = orjson.dumps
    sep = ROW_SEPARATOR
    try:
        async for batch in scanner:
            if gate is None or gate.may_prefetch(sizes.per_row, full_batch):
                scanner.prefetch()  # the store reads the next batch while this one is encoded and sent
            flush_bytes = FLUSH_BYTES if gate is None else gate.flush_bytes()
            parts: list[bytes] = []
            size = 0  # bytes since the last chunk went out
            flushed = 0  # bytes of this batch already sent
            sent_before = sent
            for stored in batch:
                if matcher is not None and not matcher(stored[0]):
                    continue
                row = to_row(stored)
                if row is None:
                    continue
                try:
                    line = dumps(row)
                except orjson.JSONEncodeError as exc:  # a cell nested past orjson's limit
                    line = dumps(reader.renderable(row, str(exc)))
                parts.append(line)
                parts.append(sep)
                sent += 1
                size += len(line)
                if limit is not None and sent >= limit:
                    break
                if size >= flush_bytes:
                    yield b"".join(parts)
                    parts = []
                    flushed += size
                    size = 0
            sizes.add(flushed + size, sent - sent_before)
            if parts:
                yield b"".join(parts)
            del batch, parts  # not held while the next batch is awaited
            if limit is not None and sent >= limit:
                return
    finally:
        try:
            await scanner.aclose()
        finally:
            if gate is not None:
                gate.leave()


async def stream_rows(
    request: web.Request,
    chunks: AsyncIterator[bytes],
    *,
    content_type: str = "application/json",
) -> web.StreamResponse:
    """Send every chunk of encoded rows (see `encode_lines`) as it comes."""
    response = web.StreamResponse(status=200)
    response.content_type = content_type
    response.enable_chunked_encoding()
    try:
        async for chunk in chunks:
            if chunk:
                if not response.prepared:
                    await response.prepare(request)
                await response.write(chunk)
    except ConnectionError:
        log.info("client went away during %s", request.path_qs)
        return response
    except Exception as exc:
        if not response.prepared:
            raise  # nothing sent yet: the middleware answers with problem+json
        await _abort_with_error(request, response, exc)
        return response
    finally:
        await _close(chunks)
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof()
    return response


async def _abort_with_error(request: web.Request, response: web.StreamResponse, exc: BaseException) -> None:
    if not isinstance(exc, Problem | StoreUnavailable):
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
