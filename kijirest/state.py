"""What a request finds on the application: the app keys and the instance / table lookups.

A module of its own so that the views import it without importing `app.py` (which imports the
routes, which import the views): the HTTP layer has no import cycle.
"""

from __future__ import annotations

from aiohttp import web

from kijirest.catalog import Catalog, InstanceContext, TableContext
from kijirest.loglimit import LogLimiter
from kijirest.problems import NotFound
from kijirest.settings import Settings
from kijirest.store.runner import AsyncStore
from kijirest.streams import StreamGate

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", AsyncStore)
CATALOG = web.AppKey("catalog", Catalog)
#: the app's limit on repeated log lines caused by clients (malformed requests, disconnects)
LOG_LIMITER = web.AppKey("log_limiter", LogLimiter)
STREAMS = web.AppKey("streams", StreamGate)


def instance_of(request: web.Request) -> InstanceContext:
    """The instance named in the path, or 404."""
    name = request.match_info["instance"]
    inst = request.app[CATALOG].instance(name)
    if inst is None:
        raise NotFound("instance", f"unknown instance '{name}'")
    return inst


def table_of(request: web.Request) -> TableContext:
    """The table named in the path (of the instance named in the path), or 404."""
    inst = instance_of(request)
    name = request.match_info["table"]
    table = inst.tables.get(name)
    if table is None:
        raise NotFound("table", f"unknown table '{name}' in instance '{inst.name}'")
    return table
