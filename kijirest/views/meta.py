"""The descriptive resources: service, version, instances, tables, layouts."""

from __future__ import annotations

from aiohttp import web

import kijirest
from kijirest.state import CATALOG, STORE, instance_of, table_of
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
    return json_response(
        [{"name": name, "uri": inst.uri} for name, inst in sorted(catalog.instances.items())]
    )


async def instance(request: web.Request) -> web.Response:
    inst = instance_of(request)
    entries = await request.app[STORE].run(inst.schemas.listing)  # re-reads the schema table
    return json_response(
        {
            "name": inst.name,
            "tables": [{"name": t.name, "uri": t.uri} for _, t in sorted(inst.tables.items())],
            "schema_table": {"entries": entries},
        }
    )


async def tables(request: web.Request) -> web.Response:
    inst = instance_of(request)
    return json_response([{"name": t.name, "uri": t.uri} for _, t in sorted(inst.tables.items())])


async def table(request: web.Request) -> web.Response:
    return json_response(table_of(request).layout.effective)
