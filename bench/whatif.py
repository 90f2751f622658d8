"""Proposed hot-path changes, measurable before anyone makes them.

`python -m bench.whatif VARIANTS serve ...` runs the gateway (`kijirest serve ...`) with the named
changes patched in, in that process only; `python -m bench --whatif VARIANTS` measures such a
gateway side by side with the unchanged one. kijirest's files are never touched: each variant is
the smallest runtime patch that stands for the change proposed in bench/README.md, so it may
stop applying when the code it patches changes (it then fails loudly at start-up).

Variants (comma-separated):
- `eager`: a scan's next batch is requested from the store *before* the current one is turned into
  JSON. `views/rows.py` wraps `scanner.__anext__()` in `asyncio.ensure_future`, which only starts
  the fetch when the event loop next gets control, i.e. after the whole batch was processed and
  written: fetch and processing never overlap. Proposed patch: `AsyncRowScanner.__anext__`
  submits the fetch to the pool synchronously (a plain method returning a coroutine), or
  `scan_rows` awaits `asyncio.sleep(0)` right after creating the task.
- `coalesce`: point GETs that arrive together (same table and read options, same event-loop tick,
  or while the previous batch is in flight) share one store `get_rows` call, i.e. one Thrift 2
  `getMultiple` round trip and one thread hand-off, instead of one each.
- `gc`: the cyclic garbage collector runs less often (`gc.set_threshold(100_000, 50, 100)`):
  a scan allocates ~50 containers per row (Thrift structs, tuples, dicts, lists), so with the
  default threshold of 700 a generation-0 collection runs every ~15 rows.
- `inline` (diagnosis only, not a proposal): the store is called on the event loop thread, no
  thread pool (`blocking = False`), so a scan's fetch, decoding and writing never contend for the
  GIL across threads; it blocks the loop during every HBase round trip.
- `switch`: `sys.setswitchinterval(0.0005)` (GIL hand-off between the loop and the pool threads).
- `flush1m`: stream writes of 1 MiB instead of 64 KiB.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

VARIANTS = ("eager", "coalesce", "gc", "inline", "switch", "flush1m")


def _eager() -> None:
    from kijirest.store import runner

    original = runner.AsyncRowScanner.__anext__

    def __anext__(self: Any) -> Any:
        # submit the fetch now (synchronously), then return the coroutine that awaits it
        if self._closed or not self._runner.store.blocking:
            return original(self)
        if self._inflight is not None and not self._inflight.done():
            return original(self)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._runner._executor, self._next_batch)
        fut.add_done_callback(runner._consume)
        self._inflight = fut

        async def finish() -> Any:
            batch = await asyncio.shield(fut)
            if batch is runner._END:
                await self.aclose()
                raise StopAsyncIteration
            return batch

        return finish()

    runner.AsyncRowScanner.__anext__ = __anext__  # type: ignore[method-assign]


def _coalesce() -> None:
    from kijirest.store import runner

    original = runner.AsyncStore.get_rows
    pending: dict[tuple[int, str, Any], list[tuple[list[bytes], asyncio.Future]]] = {}
    busy: dict[tuple[int, str, Any], bool] = {}
    tasks: set[asyncio.Task] = set()

    def flush(self: Any, key: tuple[int, str, Any]) -> None:
        batch = pending.pop(key, None)
        if not batch:
            busy.pop(key, None)
            return
        busy[key] = True
        keys = [k for ks, _ in batch for k in ks]

        async def run() -> None:
            try:
                rows = await original(self, key[1], keys, key[2])
            except BaseException as exc:  # every waiter of the batch gets the failure
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                start = 0
                for ks, fut in batch:
                    if not fut.done():
                        fut.set_result(rows[start : start + len(ks)])
                    start += len(ks)
            finally:
                flush(self, key)  # what queued meanwhile goes next, in one call

        task = asyncio.ensure_future(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def get_rows(self: Any, table: str, keys: Any, read: Any = runner._DEFAULT_READ) -> Any:
        keys = list(keys)
        if not self.store.blocking or len(keys) > 64:
            return await original(self, table, keys, read)
        key = (id(self), table, read)
        fut = asyncio.get_running_loop().create_future()
        first = key not in pending
        pending.setdefault(key, []).append((keys, fut))
        if first and not busy.get(key):
            asyncio.get_running_loop().call_soon(flush, self, key)
        return await fut

    runner.AsyncStore.get_rows = get_rows  # type: ignore[method-assign]


def _gc() -> None:
    import gc

    gc.set_threshold(100_000, 50, 100)


def _inline() -> None:
    from kijirest.store import hbase

    hbase.HBaseStore.blocking = False


def _switch() -> None:
    sys.setswitchinterval(0.0005)


def _flush1m() -> None:
    from kijirest import streaming

    streaming.stream_rows.__kwdefaults__["flush_bytes"] = 1 << 20


def apply(names: Sequence[str]) -> None:
    table = {
        "eager": _eager,
        "coalesce": _coalesce,
        "gc": _gc,
        "inline": _inline,
        "switch": _switch,
        "flush1m": _flush1m,
    }
    for name in names:
        if name not in table:
            raise SystemExit(f"unknown whatif variant {name!r}; known: {', '.join(VARIANTS)}")
        table[name]()


def main(argv: list[str]) -> int:
    names = [n for n in argv[1].split(",") if n]
    apply(names)
    from kijirest.cli import main as kijirest_main

    return kijirest_main(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
