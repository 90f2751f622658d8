"""Hot-path changes, measured side by side before (or after) anyone makes them.

`python -m bench.whatif VARIANTS serve ...` runs the gateway (`kijirest serve ...`) with the named
changes patched in, in that process only; `python -m bench --whatif VARIANTS` measures such a
gateway side by side with the unchanged one (scans, point GETs at c=32, POSTs). kijirest's files
are never touched: each variant is the smallest runtime patch that stands for the change, so it
may stop applying when the code it patches changes (it then fails loudly at start-up).

Variants (comma-separated; `eager`, `putmulti`, `coalesce` and `gc` were measured here and are now
in kijirest itself, see bench/README.md):
- `thriftpy2` (an adopted change, undone): scan replies read by thriftpy2 instead of the C reader
  (`HBaseStore.fast_replies = False`): what the C reader brings.
- `waves1` (an adopted change, undone): one coalesced point-get call of a group in flight at a
  time instead of two (`COALESCE_WAVES = 1`).
- `inline` (diagnosis only, not a proposal): the store is called on the event loop thread, no
  thread pool (`blocking = False`), so a scan's fetch, decoding and writing never contend for the
  GIL across threads; it blocks the loop during every HBase round trip.
- `switch`: `sys.setswitchinterval(0.0005)` (GIL hand-off between the loop and the pool threads).
- `flush1m`: stream chunks of 1 MiB instead of 64 KiB.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

VARIANTS = ("thriftpy2", "waves1", "inline", "switch", "flush1m")


def _thriftpy2() -> None:
    from kijirest.store import hbase

    hbase.HBaseStore.fast_replies = False


def _waves1() -> None:
    from kijirest.store import runner

    runner.COALESCE_WAVES = 1


def _inline() -> None:
    from kijirest.store import hbase

    hbase.HBaseStore.blocking = False


def _switch() -> None:
    sys.setswitchinterval(0.0005)


def _flush1m() -> None:
    from kijirest import streaming

    streaming.FLUSH_BYTES = 1 << 20


def apply(names: Sequence[str]) -> None:
    table = {
        "thriftpy2": _thriftpy2,
        "waves1": _waves1,
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
