"""What a request finds on the application: the app keys, the caller, and the instance / table
lookups that check the caller's grants.

A module of its own so that the views import it without importing `app.py` (which imports the
routes, which import the views): the HTTP layer has no import cycle.

With auth on, `auth.middleware` puts the caller's `Principal` on the request (`PRINCIPAL`); with it
off there is none and every lookup allows everything. An instance or table the caller may not read
is answered exactly like a missing one (404, same detail), so grants do not reveal what exists;
the request is marked (`REFUSED`) for the audit log.
"""

from __future__ import annotations

from aiohttp import web

from kijirest.auth.grants import Level, Principal
from kijirest.auth.scope import RowScope, row_scope
from kijirest.catalog import Catalog, InstanceContext, TableContext
from kijirest.loglimit import LogLimiter
from kijirest.problems import Forbidden, NotFound
from kijirest.settings import Settings
from kijirest.store.runner import AsyncStore
from kijirest.streams import StreamGate

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", AsyncStore)
CATALOG = web.AppKey("catalog", Catalog)
#: the app's limit on repeated log lines caused by clients (malformed requests, disconnects)
LOG_LIMITER = web.AppKey("log_limiter", LogLimiter)
STREAMS = web.AppKey("streams", StreamGate)
#: the verified caller (auth on); absent = auth off
PRINCIPAL = web.RequestKey("principal", Principal)
#: why a request was refused for want of a grant (answered 404 like a missing resource): for the audit
REFUSED = web.RequestKey("refused", str)
#: the entity IDs a write or delete touched, and an audit event other than the method's: for the audit
AUDIT_ROWS = web.RequestKey("audit_rows", list)
AUDIT_EVENT = web.RequestKey("audit_event", str)


def instance_of(request: web.Request) -> InstanceContext:
    """The instance named in the path, or 404 (also when the caller may read nothing of it)."""
    name = request.match_info["instance"]
    inst = request.app[CATALOG].instance(name)
    principal = request.get(PRINCIPAL)
    if inst is not None and principal is not None and not principal.sees_instance(name):
        request[REFUSED] = f"{principal.name} has no grant on instance {name}"
        inst = None
    if inst is None:
        raise NotFound("instance", f"unknown instance '{name}'")
    return inst


def table_of(request: web.Request, level: Level = Level.READ) -> TableContext:
    """The table named in the path (of the instance named in the path), or 404 (also when the
    caller may not read it); 403 when the caller may read it but `level` asks for more."""
    inst = instance_of(request)
    name = request.match_info["table"]
    table = inst.tables.get(name)
    principal = request.get(PRINCIPAL)
    if table is not None and principal is not None:
        if not principal.rights(inst.name, name, Level.READ).allowed:
            request[REFUSED] = f"{principal.name} has no grant on table {inst.name}/{name}"
            table = None
        elif level > Level.READ and not principal.rights(inst.name, name, level).allowed:
            raise Forbidden(
                "authorization",
                f"{principal.name} may not {level.name.lower()} table {inst.name}/{name} (no such grant)",
            )
    if table is None:
        raise NotFound("table", f"unknown table '{name}' in instance '{inst.name}'")
    return table


def visible_tables(request: web.Request, inst: InstanceContext) -> list[TableContext]:
    """The tables of `inst` the caller may read, by name."""
    principal = request.get(PRINCIPAL)
    return [
        t
        for _, t in sorted(inst.tables.items())
        if principal is None or principal.rights(inst.name, t.name, Level.READ).allowed
    ]


def rows_of(request: web.Request, table: TableContext, level: Level) -> RowScope | None:
    """The rows of `table` the caller may act on at `level`: None = every row (no row-prefix
    grant narrows it). Call after `table_of(request, level)`."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        return None
    rights = principal.rights(table.instance, table.name, level)
    if rights.every_row:
        return None
    return principal.memo(
        ("scope", table.instance, table.name, level),
        lambda: row_scope(table.key_codec, rights.prefixes or (), f"{table.instance}/{table.name}"),
    )
