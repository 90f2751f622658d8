"""The outage breaker: while the store is known to be down, calls fail at once instead of waiting.

Without it, every request during an HBase outage waits the full store timeout before its 503 (and
holds a worker thread meanwhile). A call that fails as unavailable opens the breaker; while it is
open, `check()` raises `StoreDown` (a StoreUnavailable carrying `retry_after`) without touching the
store. One background probe per outage (`probe`, a cheap blocking store call such as `Store.ping`,
bounded by the store's own timeout) runs at once and then every `interval` seconds; the first probe
that succeeds closes the breaker. The probe runs on a thread of its own, so it never queues behind
calls stuck on the dead store in the shared pool.

The breaker belongs to the event loop (`trip`, `check` and the probe task run on it); it knows
nothing of HTTP: `errors.py` turns `StoreDown` into 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from kijirest.store.base import StoreUnavailable

log = logging.getLogger("kijirest.store")

DEFAULT_PROBE_INTERVAL = 1.0


class StoreDown(StoreUnavailable):
    """Refused without calling the store: the breaker is open (the store failed and has not
    answered a probe since). `retry_after` = whole seconds until the next probe is due."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Breaker:
    """Closed (calls go through) or open (calls refused) after a StoreUnavailable; `probe` is an
    awaitable factory that raises while the store is down."""

    def __init__(
        self, probe: Callable[[], Awaitable[object]], interval: float = DEFAULT_PROBE_INTERVAL
    ) -> None:
        if not interval > 0:
            raise ValueError(f"probe interval must be positive, not {interval!r}")
        self._probe = probe
        self.interval = interval
        self.opened_at: float | None = None
        self.last_error = ""
        self.probes = 0  # probes run since the breaker opened (tests, logs)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    @property
    def closing(self) -> bool:
        """`close()` was called: the store is being closed, its failures are no outage."""
        return self._closing

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.interval))

    def check(self) -> None:
        """Raise StoreDown while the breaker is open."""
        if self.opened_at is not None:
            down = time.monotonic() - self.opened_at
            raise StoreDown(
                f"{self.last_error} (the store has been failing for {down:.0f} s; it is probed every "
                f"{self.interval:g} s)",
                self.retry_after,
            )

    def trip(self, exc: BaseException) -> None:
        """A call failed with `exc`: open the breaker on an unavailable store (a StoreDown is the
        breaker's own refusal and changes nothing)."""
        if not isinstance(exc, StoreUnavailable) or isinstance(exc, StoreDown) or self._closing:
            return
        self.last_error = str(exc)
        if self.opened_at is not None:
            return
        self.opened_at = time.monotonic()
        self.probes = 0
        log.warning("store unavailable, answering 503 until a probe succeeds: %s", exc)
        self._task = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        while self.opened_at is not None:
            self.probes += 1
            try:
                await self._probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = str(exc) if isinstance(exc, StoreUnavailable) else repr(exc)
                log.debug("store probe %d failed: %s", self.probes, exc)
                await asyncio.sleep(self.interval)
                continue
            down = time.monotonic() - self.opened_at
            log.warning("store answers again after %.1f s (%d probes): breaker closed", down, self.probes)
            self.opened_at = None
        self._task = None

    async def close(self) -> None:
        """Stop probing (the store is being closed)."""
        self._closing = True
        self.opened_at = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
