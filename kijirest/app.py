"""`init_app(settings)`: the aiohttp application, its state, and its one cleanup context.

The store, its thread pool and the catalog are opened together when the app starts and closed
together when it stops (after in-flight streams were closed by the runner).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from kijirest.catalog import Catalog, StartupError, ready_catalog
from kijirest.errors import error_middleware
from kijirest.settings import Settings
from kijirest.store import open_store
from kijirest.store.runner import AsyncStore

__all__ = ["CATALOG", "SETTINGS", "STORE", "StartupError", "init_app"]

log = logging.getLogger("kijirest")

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", AsyncStore)
CATALOG = web.AppKey("catalog", Catalog)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    try:
        store = open_store(settings.store)
    except ValueError as exc:
        raise StartupError(f"--store {settings.store}: {exc}") from exc
    astore = AsyncStore(store)
    try:
        app[CATALOG] = await asyncio.get_running_loop().run_in_executor(None, ready_catalog, store, settings)
        app[STORE] = astore
        yield
    finally:
        await astore.close()


async def init_app(settings: Settings) -> web.Application:
    """Build the application; the store opens when the app starts (runner.setup / test client)."""
    from kijirest.routes import setup_routes

    middlewares = [error_middleware]
    if settings.cors:
        from kijirest.routes import cors_middleware

        middlewares.insert(0, cors_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_size)
    if settings.cors:
        from kijirest.routes import add_cors_headers

        app.on_response_prepare.append(add_cors_headers)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    setup_routes(app)
    return app
