"""The descriptive resources: service, version, instances, tables, layouts."""

from __future__ import annotations

import orjson
from aiohttp import web

import kijirest
from kijirest.app import CATALOG, STORE
from kijirest.catalog import InstanceContext, TableContext
from kijirest.errors import NotFound


def json_response(value: object) -> web.Response:
    return web.Response(body=orjson.dumps(value), content_type="application/json")


def instance_of(request: web.Request) -> InstanceContext:
    name = request.match_info["instance"]
    inst = request.app[CATALOG].instance(name)
    if inst is None:
        raise NotFound("instance", f"unknown instance '{name}'")
    return inst


def table_of(request: web.Request) -> TableContext:
    inst = instance_of(request)
    name = request.match_info["table"]
    table = inst.tables.get(name)
    if table is None:
        raise NotFound("table", f"unknown table '{name}' in instance '{inst.name}'")
    return table


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
