"""Bounded memory for row streams: how many scans may be in flight, and how much each may buffer.

Why: every open scan holds its store batch as Python objects, and the next one while it is being
prefetched: 1,000 rows of the bench table are 1.17 MB of objects (2.3x their 509 KB of JSON), so
1,000 concurrent streams of a 20,000-row table took the gateway from 71 MB to 1.31 GB (3.2 GB on
the embedded store), and a burst can always be larger than the machine. Two bounds:

- `max_streams`: a scan beyond it is refused at once with 503 and `Retry-After` (before anything
  is read), so the streams in flight finish instead of all slowing down together. Point reads
  (`eid` / `eids` without a wildcard) are not counted: they are bounded by the URL already.
- `stream_buffer_bytes`: one budget shared by the store batches of all open scans. Each scan's
  share is the budget divided by the open scans; a batch is at most as many rows as its share
  holds (`BATCH_OBJECT_FACTOR` x the scan's own JSON bytes per row, measured as it goes, rounded
  down to a power of two so that HBase's scanners, re-opened when the batch size changes, keep
  theirs while the number of streams is steady) and at least `MIN_BATCH_ROWS`; a scan prefetches
  its next batch only while its share holds two full batches. With few streams nothing changes
  (1,000-row batches, prefetch). The chunks written to the client shrink with the share too
  (`flush_bytes`), since a slow reader's socket keeps one chunk in the transport's buffer.

After a burst (`TRIM_AFTER_STREAMS` or more at once) the last stream to end returns glibc's free
heap memory to the system (`malloc_trim`, in a worker thread): without it the gateway stayed at
268.7 MB after 1,000 streams had ended (89.8 MB idle) on the embedded store, as the finding saw
(0.8-1.07 GB after, on HBase) - freed batches leave the heaps of the pool threads in pieces glibc
keeps.

A budget of bytes rather than a fixed smaller batch: large batches are what makes a single scan
fast (one store round trip per 1,000 rows), so they are kept whenever memory allows it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

from kijirest.problems import Busy

#: Python objects of a stored row / its JSON line: 2.3 on the bench rows (1,000 rows of 5 cells:
#: 1,170,758 bytes of objects, 508,974 of JSON, tracemalloc); rounded up
BATCH_OBJECT_FACTOR = 2.5
MIN_BATCH_ROWS = 8
MAX_FLUSH_BYTES = 64 * 1024
MIN_FLUSH_BYTES = 4 * 1024
RETRY_AFTER_SECONDS = 1
#: JSON bytes per row assumed before a scan has seen any row
DEFAULT_ROW_BYTES = 1024
TRIM_AFTER_STREAMS = 32


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (another C library: nothing to do)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


class StreamGate:
    """Counts the row streams in flight and shares their buffer budget (one per app)."""

    def __init__(self, max_streams: int, buffer_bytes: int) -> None:
        self.max_streams = max_streams
        self.buffer_bytes = buffer_bytes
        self.open = 0
        self.burst = 0  # most streams open at once since the last trim
        self.trims = 0

    def enter(self) -> None:
        """Count one more stream, or raise Busy (503 + Retry-After) at `max_streams`."""
        if self.open >= self.max_streams:
            raise Busy(
                "streams",
                f"{self.max_streams} row streams are in flight (max_streams): try again shortly",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.open += 1
        self.burst = max(self.burst, self.open)

    def leave(self) -> None:
        self.open -= 1
        if self.open == 0 and self.burst >= TRIM_AFTER_STREAMS:
            self.burst = 0
            self.trims += 1
            if MALLOC_TRIM is not None:
                asyncio.get_running_loop().run_in_executor(None, MALLOC_TRIM, 0)

    def share(self) -> float:
        """Bytes of batch objects one open stream may hold now."""
        return self.buffer_bytes / max(1, self.open)

    def batch_rows(self, row_bytes: float, batch_size: int) -> int:
        """Rows of a stream's next store batch, for rows of `row_bytes` JSON bytes."""
        fits = int(self.share() / (BATCH_OBJECT_FACTOR * max(row_bytes, 1.0)))
        if fits >= batch_size:
            return batch_size
        if fits <= MIN_BATCH_ROWS:
            return MIN_BATCH_ROWS
        return 1 << (fits.bit_length() - 1)  # a power of two: steady while the open count is

    def may_prefetch(self, row_bytes: float, batch_size: int) -> bool:
        """Whether a stream may hold a second full batch (the prefetched one) now."""
        return self.share() >= 2 * BATCH_OBJECT_FACTOR * max(row_bytes, 1.0) * batch_size

    def flush_bytes(self) -> int:
        """JSON bytes gathered before a chunk goes to the client."""
        return int(max(MIN_FLUSH_BYTES, min(MAX_FLUSH_BYTES, self.share() / BATCH_OBJECT_FACTOR)))


class RowSizes:
    """A scan's running average of JSON bytes per row (what its batches are sized by)."""

    __slots__ = ("bytes", "rows")

    def __init__(self) -> None:
        self.bytes = 0
        self.rows = 0

    def add(self, nbytes: int, rows: int) -> None:
        self.bytes += nbytes
        self.rows += rows

    @property
    def per_row(self) -> float:
        return self.bytes / self.rows if self.rows else DEFAULT_ROW_BYTES
