"""The composition root: `init_app(settings)` builds the aiohttp application, and `ready_catalog`
readies the store for the settings (layouts, tables, schema tables, the API-key table, demo rows).

With `auth` on (or an `audit_log`), the auth middleware runs inside the error middleware (its 401s
become problem+json) and after CORS (preflights are answered without credentials).

The store, its thread pool and the catalog are opened together when the app starts and closed
together when it stops (after in-flight streams were closed by the runner). The CLI's `--workers`
parent calls `ready_catalog` too, before it forks, so that the workers only read what exists.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from kijirest.auth.audit import AuditLog
from kijirest.auth.config import is_loopback
from kijirest.auth.keys import KeyTable
from kijirest.auth.middleware import AUDIT, AUTHENTICATOR, Authenticator, add_request_id, auth_middleware
from kijirest.auth.tokens import TokenConfigError
from kijirest.catalog import Catalog, StartupError, open_catalog
from kijirest.demo import load_demo_rows
from kijirest.errors import error_middleware
from kijirest.loglimit import LogLimiter
from kijirest.routes import add_cors_headers, cors_middleware, setup_routes
from kijirest.settings import Settings
from kijirest.state import CATALOG, LOG_LIMITER, SETTINGS, STORE, STREAMS
from kijirest.store import open_store
from kijirest.store.base import Store
from kijirest.store.runner import AsyncStore
from kijirest.streams import StreamGate

__all__ = ["StartupError", "init_app", "open_settings_store", "ready_catalog"]

log = logging.getLogger("kijirest")


def open_settings_store(settings: Settings) -> Store:
    """The store of `settings.store`, or a StartupError naming the setting."""
    try:
        return open_store(settings.store, timeout=settings.store_timeout)
    except ValueError as exc:
        raise StartupError(f"--store {settings.store}: {exc}") from exc


def ready_catalog(store: Store, settings: Settings) -> Catalog:
    """The catalog of `settings` on an open store, with the demo rows loaded when asked (blocking)."""
    catalog = open_catalog(store, settings.layouts, settings.instances)
    if settings.auth is not None and settings.auth.keys:
        KeyTable(store, settings.auth.keys_table).install()
    if settings.demo:
        load_demo_rows(store, catalog)
    return catalog


def _recover(catalog: Catalog, store: Store, settings: Settings, table: str | None) -> bool:
    """Re-create what vanished: the catalog's tables, and the API-key table (empty: the keys that
    were in it are gone, and are answered 401 like any unknown key)."""
    done = catalog.recover(store, table)
    auth = settings.auth
    if auth is not None and auth.keys and table in (None, auth.keys_table):
        KeyTable(store, auth.keys_table).install()
        done = True
    return done


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = open_settings_store(settings)
    astore = AsyncStore(store)
    try:
        catalog = await asyncio.get_running_loop().run_in_executor(None, ready_catalog, store, settings)
        # tables that vanish (HBase came back empty) are re-created as at start-up, without a restart
        astore.recover = functools.partial(_recover, catalog, store, settings)
        app[CATALOG] = catalog
        app[STORE] = astore
        authenticator = app.get(AUTHENTICATOR)
        if authenticator is not None:
            auth = settings.auth
            assert auth is not None
            await authenticator.start(KeyTable(store, auth.keys_table) if auth.keys else None)
        yield
    finally:
        authenticator = app.get(AUTHENTICATOR)
        if authenticator is not None:
            await authenticator.close()
        audit = app.get(AUDIT)
        if audit is not None:
            audit.close()
        await astore.close()


async def init_app(settings: Settings) -> web.Application:
    """Build the application; the store opens when the app starts (runner.setup / test client)."""
    middlewares = [error_middleware]
    if settings.cors:
        middlewares.insert(0, cors_middleware)
    auth = settings.auth
    auth_on = auth is not None and auth.enabled
    if auth_on or settings.audit_log:
        middlewares.append(auth_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_size)
    if settings.cors:
        app.on_response_prepare.append(add_cors_headers)
    if auth_on:
        assert auth is not None
        plain_http_on_network = settings.tls_cert is None and not is_loopback(settings.host)
        basic_allowed = not plain_http_on_network or auth.allow_basic_over_http
        try:
            app[AUTHENTICATOR] = Authenticator(auth, basic_allowed=basic_allowed)
        except TokenConfigError as exc:
            raise StartupError(str(exc)) from exc
    if settings.audit_log:
        try:
            app[AUDIT] = AuditLog(settings.audit_log)
        except OSError as exc:
            raise StartupError(f"audit_log {settings.audit_log}: cannot open it: {exc.strerror}") from exc
        app.on_response_prepare.append(add_request_id)
    app[SETTINGS] = settings
    app[LOG_LIMITER] = LogLimiter()
    app[STREAMS] = StreamGate(settings.max_streams, settings.stream_buffer_bytes)
    app.cleanup_ctx.append(_resources)
    setup_routes(app)
    return app
