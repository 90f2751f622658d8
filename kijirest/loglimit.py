"""At most one log line per kind of event per second.

A hostile or broken client can cause the same event thousands of times a second (malformed
requests, disconnects, and asyncio's "accept() out of system resource" when descriptors run out):
one line each once wrote 301 MB of log in 80 s. The first event of a kind is logged at once; later
ones within the interval are only counted, and the next line logged for that kind says how many were
left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: kinds remembered at most; past it the memory is reset (a flood of ever-new kinds stays bounded)
MAX_KINDS = 1024


class LogLimiter:
    """`allow(kind)`: None = do not log now; else the number of events of that kind left out since
    its last logged line (0 = none)."""

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._kinds: dict[str, tuple[float, int]] = {}  # kind -> (time last logged, left out since)

    def allow(self, kind: str) -> int | None:
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.interval:
            self._kinds[kind] = (seen[0], seen[1] + 1)
            return None
        if seen is None and len(self._kinds) >= MAX_KINDS:
            self._kinds.clear()
        self._kinds[kind] = (now, 0)
        return 0 if seen is None else seen[1]


def left_out_note(count: int) -> str:
    """The suffix of a line that follows `count` unlogged events of its kind ("" for none)."""
    return f" ({count} more like it since the last such line were not logged)" if count else ""
