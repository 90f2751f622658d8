"""GET / POST / DELETE `/v1/instances/<i>/tables/<t>/rows` (api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiohttp import web

from kijirest.app import STORE
from kijirest.catalog import TableContext
from kijirest.entity_id import (
    EntityIdError,
    RowKey,
    Wildcard,
    is_empty_range,
    parse_bound,
    parse_entity_id,
    parse_entity_id_list,
)
from kijirest.errors import BadRequest
from kijirest.params import (
    DEFAULT_SCAN_LIMIT,
    parse_limit,
    parse_timerange,
    parse_timestamp,
    parse_versions,
    single,
)
from kijirest.reader import RowReader, parse_columns, read_options
from kijirest.store.base import ReadOptions, Scan, Store
from kijirest.store.runner import AsyncStore
from kijirest.streaming import FLUSH_BYTES, ROW_SEPARATOR, encode_lines, stream_rows
from kijirest.views.meta import json_response, table_of
from kijirest.writer import apply_writes, plan_writes

NDJSON = "application/x-ndjson"
SCAN_BATCH_ROWS = 1000
FIRST_BATCH_ROWS = 1  # the first row of a scan goes out as soon as the store finds it


def _entity_error(where: str, exc: EntityIdError) -> BadRequest:
    return BadRequest(f"{where}{exc.path}", str(exc))


def stream_content_type(accept: str | None) -> str:
    """application/x-ndjson when Accept lists it with q > 0 and application/json no higher."""
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


def reader_of(table: TableContext) -> RowReader:
    reader = table.cache.get("reader")
    if reader is None:
        reader = RowReader(
            table.names, table.keys, lambda spec: table.codec(spec).decode_cell, table.hbase_name
        )
        table.cache["reader"] = reader
    return reader


async def get_rows(request: web.Request) -> web.StreamResponse:
    table = table_of(request)
    query = request.query
    eid = single(query, "eid")
    eids = single(query, "eids")
    start = single(query, "start_eid")
    end = single(query, "end_eid")
    given = [
        name
        for name, present in (("eid", eid), ("eids", eids), ("start_eid/end_eid", start or end))
        if present
    ]
    if len(given) > 1:
        raise BadRequest(", ".join(given), "give only one of eid, eids and start_eid/end_eid")
    versions = parse_versions(single(query, "versions"))
    time_range = parse_timerange(single(query, "timerange"))
    columns = parse_columns(table.names, single(query, "cols"))
    read = read_options(table.names, columns, versions, time_range)
    keys = table.layout.keys
    limit_text = single(query, "limit")
    store = request.app[STORE]
    reader = reader_of(table)

    rows: AsyncIterator[bytes]
    if eid is not None:
        try:
            parsed = parse_entity_id(eid, keys, wildcard=True)
        except EntityIdError as exc:
            raise _entity_error("eid", exc) from None
        limit = parse_limit(limit_text, DEFAULT_SCAN_LIMIT)
        if isinstance(parsed, Wildcard):
            scan = Scan(
                start=parsed.start,
                stop=parsed.stop,
                read=read,
                row_regex=parsed.regex,
                first_batch_size=FIRST_BATCH_ROWS,
                batch_size=SCAN_BATCH_ROWS,
            )
            rows = scan_rows(store, table, scan, reader, limit, matcher=parsed.matches)
        else:
            rows = get_point_rows(store, table, [parsed], read, reader, limit)
    elif eids is not None:
        try:
            ids = parse_entity_id_list(eids, keys)
        except EntityIdError as exc:
            raise _entity_error("eids", exc) from None
        limit = parse_limit(limit_text, None)
        rows = get_point_rows(store, table, ids, read, reader, limit)
    else:
        limit = parse_limit(limit_text, DEFAULT_SCAN_LIMIT)
        lo = _bound("start_eid", start, keys)
        hi = _bound("end_eid", end, keys)
        if (lo is not None or hi is not None) and is_empty_range(lo, hi):
            rows = _nothing()
        else:
            scan = Scan(
                start=lo or b"",
                stop=hi,
                read=read,
                batch_size=SCAN_BATCH_ROWS,
                first_batch_size=FIRST_BATCH_ROWS,
            )
            rows = scan_rows(store, table, scan, reader, limit)
    content_type = stream_content_type(request.headers.get("Accept"))
    if request.method == "HEAD":
        await rows.aclose()
        return web.Response(status=200, content_type=content_type)
    return await stream_rows(request, rows, content_type=content_type)


def _bound(where: str, text: str | None, keys: Any) -> bytes | None:
    if text is None:
        return None
    try:
        return parse_bound(text, keys)
    except EntityIdError as exc:
        raise _entity_error(where, exc) from None


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover  (makes this an async generator)


async def get_point_rows(
    store: AsyncStore,
    table: TableContext,
    ids: list[RowKey],
    read: ReadOptions,
    reader: RowReader,
    limit: int | None,
) -> AsyncIterator[bytes]:
    """One row per requested id, in order, duplicates included; `"cells": {}` when nothing matches."""
    if limit is not None:
        ids = ids[:limit]
    for start in range(0, len(ids), SCAN_BATCH_ROWS):
        chunk = ids[start : start + SCAN_BATCH_ROWS]
        stored = await store.get_rows(table.hbase_name, [i.key for i in chunk], read)
        yield encode_lines(reader.row(r) or reader.empty_row(r[0]) for r in stored)


async def scan_rows(
    store: AsyncStore,
    table: TableContext,
    scan: Scan,
    reader: RowReader,
    limit: int | None,
    matcher: Callable[[bytes], bool] | None = None,
) -> AsyncIterator[bytes]:
    """The JSON lines of a scan's rows as they are read, in chunks of ~FLUSH_BYTES and one chunk
    at the end of every store batch. Rows without any cell to show are left out and `limit` counts
    only rows sent. The next batch is fetched while the current one is encoded and sent."""
    if limit == 0:
        return
    scanner = await store.scan(table.hbase_name, scan)
    sent = 0
    to_row = reader.row
    dumps = orjson.dumps
    sep = ROW_SEPARATOR
    try:
        async for batch in scanner:
            scanner.prefetch()  # the store reads the next batch while this one is encoded and sent
            parts: list[bytes] = []
            size = 0
            for stored in batch:
                if matcher is not None and not matcher(stored[0]):
                    continue
                row = to_row(stored)
                if row is None:
                    continue
                line = dumps(row)
                parts.append(line)
                parts.append(sep)
                sent += 1
                if limit is not None and sent >= limit:
                    break
                size += len(line)
                if size >= FLUSH_BYTES:
                    yield b"".join(parts)
                    parts = []
                    size = 0
            if parts:
                yield b"".join(parts)
            if limit is not None and sent >= limit:
                return
    finally:
        await scanner.aclose()


async def post_rows(request: web.Request) -> web.Response:
    table = table_of(request)
    body = await request.read()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("body", f"malformed JSON: {exc}") from None
    store = request.app[STORE]
    # validation may read the schema table and writing is blocking: both run in the store's pool,
    # in one hand-off (the whole body is validated before anything is written)
    targets = await store.run(_write_document, store.store, table, document)
    return json_response({"targets": targets})


def _write_document(store: Store, table: TableContext, document: Any) -> list[str]:
    return apply_writes(store, table, plan_writes(table, document))


async def delete_rows(request: web.Request) -> web.Response:
    table = table_of(request)
    query = request.query
    eid = single(query, "eid")
    eids = single(query, "eids")
    if (eid is None) == (eids is None):
        raise BadRequest("eid, eids", "give exactly one of eid and eids")
    keys = table.layout.keys
    try:
        if eid is not None:
            ids = [parse_entity_id(eid, keys)]
        else:
            ids = parse_entity_id_list(eids, keys)
    except EntityIdError as exc:
        raise _entity_error("eid" if eid is not None else "eids", exc) from None
    columns = parse_columns(table.names, single(query, "cols"))
    timestamp = parse_timestamp("timestamp", single(query, "timestamp"))
    selectors = None if columns is None else read_options(table.names, columns, 1).columns
    store = request.app[STORE]
    for row_key in ids:
        await store.delete(table.hbase_name, row_key.key, selectors, timestamp)  # type: ignore[union-attr]
    return json_response(True)
