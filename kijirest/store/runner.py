"""`AsyncStore`: the Store interface for the event loop.

Blocking stores (embedded, HBase) run every call in one bounded thread pool, so a slow disk or
RegionServer never stalls the loop; a non-blocking store (memory: `blocking = False`) is called
directly, since handing a microsecond call to a thread would cost more than the call.

It wraps what the gateway calls: gets, scans, deletes, and `run` / `run_on_store` for blocking
work that uses the store (a document's write plan, the schema table).

Outages: every call passes the outage breaker (`breaker.py`): a call that fails as unavailable
opens it, and until a probe succeeds calls are refused at once (StoreDown) instead of each waiting
the store timeout. A call that finds a table missing asks `recover(table)` (set by the gateway: the
catalog re-creates the tables it serves, as at start-up) and, when that re-created something, is
retried once; the probe also runs `recover(None)` before it closes the breaker, so the tables of a
store that came back empty exist again before the first request goes through.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kijirest.store.base import (
    DEFAULT_READ,
    ColumnSelector,
    ReadOptions,
    Row,
    RowScanner,
    Scan,
    Store,
    StoreUnavailable,
    TableNotFound,
)
from kijirest.store.breaker import DEFAULT_PROBE_INTERVAL, Breaker

T = TypeVar("T")

DEFAULT_WORKERS = 8
COALESCE_MAX_KEYS = 64  # larger gets (a long `eids`) go to the store on their own
COALESCE_WAVES = 2  # store calls of one group in flight at once (HBase serves them side by side)
_END = object()

log = logging.getLogger("kijirest.store")

#: `recover(table)`: make the store ready again after `table` (None: any) was found missing;
#: True when something was re-created (the failed call is then retried once). Blocking.
Recover = Callable[[str | None], bool]


class AsyncStore:
    """Async wrappers of a Store's methods; `executor` None = an own pool of DEFAULT_WORKERS
    threads, shut down by `close()` (a given executor is left to its owner). `probe_interval`:
    seconds between the breaker's probes while the store is down; `recover`: see `Recover`."""

    def __init__(
        self,
        store: Store,
        executor: ThreadPoolExecutor | None = None,
        *,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        recover: Recover | None = None,
    ) -> None:
        self.store = store
        self._own_executor = executor is None and store.blocking
        if executor is None and store.blocking:
            executor = ThreadPoolExecutor(max_workers=DEFAULT_WORKERS, thread_name_prefix="kijirest-store")
        self._executor = executor
        self.recover = recover
        self.breaker = Breaker(self._probe, probe_interval)
        #: the probe's own thread: never queued behind calls stuck on a dead store
        self._probe_executor: ThreadPoolExecutor | None = None
        #: point gets waiting for the next store call, and the groups with a call in flight
        self._waiting: dict[tuple[str, ReadOptions], list[tuple[list[bytes], asyncio.Future]]] = {}
        self._fetching: dict[tuple[str, ReadOptions], int] = {}

    async def _raw_call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self.store.blocking:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` through the breaker, with the missing-table recovery."""
        self.breaker.check()
        try:
            return await self._raw_call(self._recovering, fn, *args)
        except StoreUnavailable as exc:
            self.breaker.trip(exc)
            raise

    def _recovering(self, fn: Callable[..., T], *args: Any) -> T:
        """(In the pool) `fn(*args)`; on a missing table, `recover` and one retry."""
        try:
            return fn(*args)
        except TableNotFound as exc:
            recover = self.recover
            if recover is None or not recover(exc.table):
                raise
            log.warning("%s: re-created the missing tables, retrying once", exc)
        return fn(*args)

    async def _probe(self) -> None:
        """The breaker's probe: the store answers `ping`, then `recover(None)` readies it."""
        if not self.store.blocking:
            self._probe_sync()
            return
        if self._probe_executor is None:
            self._probe_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kijirest-probe")
        await asyncio.get_running_loop().run_in_executor(self._probe_executor, self._probe_sync)

    def _probe_sync(self) -> None:
        self.store.ping()
        if self.recover is not None:
            try:
                self.recover(None)
            except StoreUnavailable:
                raise
            except Exception as exc:  # the store answers: a table it cannot re-create is not an outage
                if not self.breaker.closing:
                    log.error("the store answers again, but readying its tables failed: %s", exc)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run any blocking work that uses this store (schema table, write plans) where its calls run."""
        return await self._call(fn, *args)

    async def run_on_store(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(store, *args)` where the store's calls run (blocking work that uses the store)."""
        return await self._call(fn, self.store, *args)

    # -- writes ---------------------------------------------------------------------------------
    async def delete(
        self,
        table: str,
        key: bytes,
        columns: Sequence[ColumnSelector] | None = None,
        timestamp: int | None = None,
    ) -> None:
        await self._call(self.store.delete, table, key, columns, timestamp)

    # -- reads ----------------------------------------------------------------------------------
    async def get_rows(
        self, table: str, keys: Sequence[bytes], read: ReadOptions = DEFAULT_READ
    ) -> list[Row]:
        """Rows by key. Small gets of the same table and read options that arrive together share
        one store call (one thread hand-off, one HBase round trip): a get joins the next call
        while one is in flight, so concurrent point GETs cost one round trip per wave, not each."""
        keys = list(keys)
        if not self.store.blocking or len(keys) > COALESCE_MAX_KEYS:
            return await self._call(self.store.get_rows, table, keys, read)
        self.breaker.check()
        group = (table, read)
        fut: asyncio.Future[list[Row]] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(group, [])
        waiting.append((keys, fut))
        if len(waiting) == 1 and self._fetching.get(group, 0) < COALESCE_WAVES:
            self._start_get(group)
        return await fut

    def _start_get(self, group: tuple[str, ReadOptions]) -> None:
        batch = self._waiting.pop(group, None)
        if not batch:
            return
        self._fetching[group] = self._fetching.get(group, 0) + 1
        table, read = group
        keys = [k for ks, _ in batch for k in ks]
        fetch = asyncio.get_running_loop().run_in_executor(
            self._executor, self._recovering, self.store.get_rows, table, keys, read
        )

        def done(f: asyncio.Future[list[Row]]) -> None:
            exc = f.exception() if not f.cancelled() else asyncio.CancelledError()
            if exc is not None:
                self.breaker.trip(exc)
            start = 0
            for ks, waiter in batch:
                if not waiter.done():
                    if exc is not None:
                        waiter.set_exception(exc)
                    else:
                        waiter.set_result(f.result()[start : start + len(ks)])
                start += len(ks)
            left = self._fetching[group] - 1
            if left:
                self._fetching[group] = left
            else:
                del self._fetching[group]
            self._start_get(group)  # the gets that queued meanwhile go next, in one call

        fetch.add_done_callback(done)

    async def scan(self, table: str, scan: Scan) -> AsyncRowScanner:
        """Open a scan; iterate it with `async for batch in scanner`, and `aclose()` it (or use
        `async with`) also when stopping early, so the store's scanner is released."""
        scanner = await self._call(self.store.scan, table, scan)
        return AsyncRowScanner(self, scanner)

    async def close(self) -> None:
        """Stop probing, close the store (in the pool) and shut down an own pool."""
        await self.breaker.close()
        try:
            await self._raw_call(self.store.close)
        finally:
            if self._own_executor and self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            if self._probe_executor is not None:
                self._probe_executor.shutdown(wait=False, cancel_futures=True)


class AsyncRowScanner:
    """An open scan as an async iterator of batches.

    A fetch runs in the pool; if the task awaiting it is cancelled, the fetch still finishes in
    its thread, and `aclose()` waits for it before closing the scanner, so a store scanner is
    never used from two threads at once.
    """

    def __init__(self, runner: AsyncStore, scanner: RowScanner) -> None:
        self._runner = runner
        self._scanner = scanner
        self._batches = iter(scanner)
        self._closed = False
        self._inflight: asyncio.Future[Any] | None = None

    def __aiter__(self) -> AsyncRowScanner:
        return self

    def _next_batch(self) -> Any:
        return next(self._batches, _END)

    def prefetch(self) -> None:
        """Start fetching the next batch now, in the pool, so that it is read from the store while
        the caller turns the current batch into its answer (a no-op for non-blocking stores, and
        while the breaker is open: the next `__anext__` then fails at once)."""
        if self._closed or not self._runner.store.blocking or self._inflight is not None:
            return
        if self._runner.breaker.is_open:
            return
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._runner._executor, self._next_batch)
        fut.add_done_callback(_consume)
        self._inflight = fut

    async def __anext__(self) -> list[Row]:
        if self._closed:
            raise StopAsyncIteration
        breaker = self._runner.breaker
        try:
            if not self._runner.store.blocking:
                breaker.check()
                batch = self._next_batch()
            else:
                if self._inflight is None:
                    breaker.check()
                self.prefetch()  # unless a prefetch is already under way
                fut = self._inflight
                assert fut is not None
                try:
                    batch = await asyncio.shield(fut)
                finally:
                    if fut.done():
                        self._inflight = None
        except StoreUnavailable as exc:
            breaker.trip(exc)
            raise
        if batch is _END:
            await self.aclose()
            raise StopAsyncIteration
        return batch

    async def aclose(self) -> None:
        """Release the store's scanner (also after an early stop or a cancelled fetch)."""
        if self._closed:
            return
        self._closed = True
        if self._inflight is not None and not self._inflight.done():
            await asyncio.wait([self._inflight])
        await self._runner._raw_call(self._scanner.close)  # also while the breaker is open

    async def __aenter__(self) -> AsyncRowScanner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark a fetch's exception as seen: its awaiter may have been cancelled and gone."""
    if not fut.cancelled():
        fut.exception()
