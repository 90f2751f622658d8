"""Proposed hot-path changes, measurable before anyone makes them.

`python -m bench.whatif VARIANTS serve ...` runs the gateway (`kijirest serve ...`) with the named
changes patched in, in that process only; `python -m bench --whatif VARIANTS` measures such a
gateway side by side with the unchanged one. kijirest's files are never touched: each variant is
the smallest runtime patch that stands for the change proposed in bench/README.md, so it may
stop applying when the code it patches changes (it then fails loudly at start-up).

Variants (comma-separated; `eager`, `putmulti` and `coalesce` were measured here and are now in
kijirest itself, see bench/README.md):
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

import sys
from collections.abc import Sequence

VARIANTS = ("gc", "inline", "switch", "flush1m")


def _gc() -> None:
    import gc

    gc.set_threshold(100_000, 50, 100)


def _inline() -> None:
    from kijirest.store import hbase

    hbase.HBaseStore.blocking = False


def _switch() -> None:
    sys.setswitchinterval(0.0005)


def _flush1m() -> None:
    from kijirest.views import rows

    rows.FLUSH_BYTES = 1 << 20


def apply(names: Sequence[str]) -> None:
    table = {
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
