"""The descriptive resources: service, version, instances, tables, layouts.

Listings show only what the caller may read (`state.visible_tables`, `Principal.sees_instance`);
an instance or table it may not read is a 404 like a missing one (`state.instance_of` / `table_of`).
"""

from __future__ import annotations

from aiohttp import web

import kijirest
from kijirest.state import CATALOG, PRINCIPAL, STORE, instance_of, table_of, visible_tables
from kijirest.views.common import json_response


async def service(request: web.Request) -> web.Response:
    return json_response({"service": "KijiREST", "resources": ["version", "instances"]})


async def version(request: web.Request) -> web.Response:
    return json_response(
        {
            "kiji-client-data-version": "system-2.0",
            "kiji-software-version": kijirest.__version__,
            "rest-version": kijirest.__version__,
        }
    )


async def instances(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    principal = request.get(PRINCIPAL)
    return json_response(
        [
            {"name": name, "uri": inst.uri}
            for name, inst in sorted(catalog.instances.items())
            if principal is None or principal.sees_instance(name)
        ]
    )


async def instance(request: web.Request) -> web.Response:
    inst = instance_of(request)
    entries = await request.app[STORE].run(inst.schemas.listing)  # re-reads the schema table
    return json_response(
        {
            "name": inst.name,
            "tables": [{"name": t.name, "uri": t.uri} for t in visible_tables(request, inst)],
            "schema_table": {"entries": entries},
        }
    )


async def tables(request: web.Request) -> web.Response:
    inst = instance_of(request)
    return json_response([{"name": t.name, "uri": t.uri} for t in visible_tables(request, inst)])


async def table(request: web.Request) -> web.Response:
    return json_response(table_of(request).layout.effective)
