"""GET / POST / DELETE `/v1/instances/<i>/tables/<t>/rows` (api.md).

Thin on purpose: the query string becomes a `RowQuery` / `DeleteQuery` (`query.py`), a POST body a
`WritePlan` (`writer.py`), rows become JSON lines in `streaming.py`. The caller's grants come in
through `state.table_of` (404 / 403) and `state.rows_of` (the rows of a row-prefix grant, which the
request model confines the request to).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from kijirest.auth.grants import Level
from kijirest.auth.scope import RowScope
from kijirest.catalog import TableContext
from kijirest.query import SCAN_BATCH_ROWS, parse_delete_query, parse_row_query
from kijirest.state import AUDIT_ROWS, SETTINGS, STORE, STREAMS, rows_of, table_of
from kijirest.store.base import Store
from kijirest.streaming import no_lines, point_lines, scan_lines, stream_rows
from kijirest.views.common import json_response, read_rows_body, stream_content_type
from kijirest.writer import WritePlan, apply_writes, plan_writes


async def get_rows(request: web.Request) -> web.StreamResponse:
    table = table_of(request)
    query = parse_row_query(table, request.query, rows_of(request, table, Level.READ))
    store = request.app[STORE]
    rows: AsyncIterator[bytes]
    if query.scan is not None:
        gate = request.app[STREAMS]
        rows = scan_lines(store, table.hbase_name, query.scan, table.reader, query.limit, query.matcher, gate)
    elif query.point_keys is not None:
        rows = point_lines(
            store, table.hbase_name, query.point_keys, query.read, table.reader, query.limit, SCAN_BATCH_ROWS
        )
    else:
        rows = no_lines()
    content_type = stream_content_type(request.headers.get("Accept"))
    if request.method == "HEAD":
        await rows.aclose()
        return web.Response(status=200, content_type=content_type)
    return await stream_rows(request, rows, content_type=content_type)


async def post_rows(request: web.Request) -> web.Response:
    table = table_of(request, Level.WRITE)
    scope = rows_of(request, table, Level.WRITE)
    settings = request.app[SETTINGS]
    max_rows = settings.max_rows_per_post
    document, plan = await read_rows_body(request, table, max_rows, settings.max_body_size, scope)
    store = request.app[STORE]
    # validation may read the schema table and writing is blocking: both run in the store's pool,
    # in one hand-off (the whole body is validated before anything is written); a large body was
    # validated and planned while it was read
    if plan is None:
        plan = await store.run_on_store(_write_document, table, document, max_rows, scope)
    else:
        await store.run_on_store(apply_writes, table, plan)
    request[AUDIT_ROWS] = [row.entity for row in plan.rows]
    return json_response({"targets": [row.target for row in plan.rows]})


def _write_document(
    store: Store, table: TableContext, document: Any, max_rows: int, scope: RowScope | None
) -> WritePlan:
    plan = plan_writes(table, document, max_rows, scope)
    apply_writes(store, table, plan)
    return plan


async def delete_rows(request: web.Request) -> web.Response:
    table = table_of(request, Level.WRITE)
    query = parse_delete_query(table, request.query, rows_of(request, table, Level.WRITE))
    store = request.app[STORE]
    deleted: list[Any] = []
    request[AUDIT_ROWS] = deleted
    for key in query.keys:
        await store.delete(table.hbase_name, key, query.columns, query.timestamp)
        deleted.append(table.key_codec.entity_id_json(key))
    return json_response(True)
