"""Byte- and number-level facts shared by every layer, and importing nothing of kijirest.

One home for what several layers need and none owns: the unsigned LEB128 varint (Kiji's schema uid
prefix and schema-id row keys, and protobuf's field varints in HBase filters, are the same
encoding), the smallest key above a prefix (wildcard scans, prefix deletes, store range reads), the
millisecond clock of HBase timestamps, and the Java integer bounds that Avro ints/longs, HBase
counters and timestamps obey. The store imports these from here, so it never reaches up into the
Kiji/Avro layer for them.
"""

from __future__ import annotations

import time

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MASK = (1 << 64) - 1


def now_ms() -> int:
    """Milliseconds since the epoch: the unit of HBase cell timestamps."""
    return time.time_ns() // 1_000_000


def successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`; None when there
    is none (an empty prefix, or only 0xFF bytes)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes((trimmed[-1] + 1,))


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 (not zig-zag) of a non-negative integer below 2^64."""
    if value < 0 or value > UINT64_MASK:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """(value, position after it); ValueError when truncated or longer than 10 bytes."""
    result = 0
    shift = 0
    end = len(data)
    for _ in range(10):
        if pos >= end:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & UINT64_MASK, pos
        shift += 7
    raise ValueError("varint longer than 10 bytes")
