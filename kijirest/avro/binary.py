"""The bytes layer of Avro binary: reading primitives, skipping values, and how bad bytes fail.

Everything above it (`resolve`, `encode`) is built from these pieces. The readers are plain
module-level functions with the `Reader` signature because the resolver hands them out as they are:
a datum of `"long"` is read by `read_long` itself, with no wrapper call per value. Numbers come back
as the JSON values the API shows (float32 with its shortest digits, NaN and infinities as strings),
since the codec goes from bytes straight to JSON.

Bad bytes surface in three ways the readers do not catch one by one (a try per value would cost on
the hot path): `BadData` for what the Avro encoding forbids, and IndexError / struct.error for
datums cut short. `tagged_reader` (in `resolve`) catches them once per datum and turns them into
`DatumDecodeError` with `decode_error`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from kijirest.primitives import INT32_MAX, INT32_MIN, UINT64_MASK

__all__ = [
    "DECODE_FAILURES",
    "FIXED_SKIP",
    "BadData",
    "DatumDecodeError",
    "Reader",
    "Skipper",
    "decode_error",
    "double_json",
    "float32",
    "float_json",
    "pack_double",
    "pack_float",
    "read_boolean",
    "read_bytes",
    "read_double",
    "read_float",
    "read_float_as_double",
    "read_int",
    "read_int_as_double",
    "read_int_as_float",
    "read_long",
    "read_long_as_double",
    "read_long_as_float",
    "read_null",
    "read_string",
    "skip_bytes",
    "skip_long",
]


class DatumDecodeError(Exception):
    """A datum that cannot be decoded: bad or truncated bytes, or a writer schema that does not
    resolve. The Kiji cell layer shows it as "Error loading cell: <reason>" (`cells.CellDecodeError`
    is this class)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: reads one value at `pos`: (JSON value, position after it)
Reader = Callable[[bytes, int], tuple[Any, int]]
#: skips one value at `pos`: position after it
Skipper = Callable[[bytes, int], int]

_unpack_float = struct.Struct("<f").unpack_from
_unpack_double = struct.Struct("<d").unpack_from
pack_float = struct.Struct("<f").pack
pack_double = struct.Struct("<d").pack


class BadData(Exception):
    """Datum bytes that do not decode (turned into DatumDecodeError)."""


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    n = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 63:
            raise BadData("invalid long encoding")
    n &= UINT64_MASK
    return (n >> 1) ^ -(n & 1), pos


def read_int(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:  # one byte: always in range
        return (b >> 1) ^ -(b & 1), pos + 1
    v, pos = read_long(buf, pos)
    if v < INT32_MIN or v > INT32_MAX:
        raise BadData("invalid int encoding")
    return v, pos


def read_null(buf: bytes, pos: int) -> tuple[Any, int]:
    return None, pos


def read_boolean(buf: bytes, pos: int) -> tuple[bool, int]:
    return buf[pos] == 1, pos + 1


def double_json(v: float) -> Any:
    """A double as JSON: NaN and infinities as strings, like Jackson's default."""
    if v - v == 0.0:
        return v
    if v != v:
        return "NaN"
    return "Infinity" if v > 0 else "-Infinity"


def float32(v: float) -> float:
    return _unpack_float(pack_float(v))[0]


def float_json(v: float) -> Any:
    """A float32 value as JSON with its shortest float digits (Java's Float.toString: 0.1f is 0.1)."""
    if v - v != 0.0:
        return double_json(v)
    for digits in range(1, 10):
        shortest = float(f"{v:.{digits}g}")
        if float32(shortest) == v:
            return shortest
    return v


def read_float(buf: bytes, pos: int) -> tuple[Any, int]:
    return float_json(_unpack_float(buf, pos)[0]), pos + 4


def read_double(buf: bytes, pos: int) -> tuple[Any, int]:
    return double_json(_unpack_double(buf, pos)[0]), pos + 8


def read_float_as_double(buf: bytes, pos: int) -> tuple[Any, int]:
    return double_json(_unpack_float(buf, pos)[0]), pos + 4


def read_long_as_float(buf: bytes, pos: int) -> tuple[Any, int]:
    v, pos = read_long(buf, pos)
    return float_json(float32(float(v))), pos


def read_int_as_float(buf: bytes, pos: int) -> tuple[Any, int]:
    v, pos = read_int(buf, pos)
    return float_json(float32(float(v))), pos


def read_long_as_double(buf: bytes, pos: int) -> tuple[Any, int]:
    v, pos = read_long(buf, pos)
    return float(v), pos


def read_int_as_double(buf: bytes, pos: int) -> tuple[Any, int]:
    v, pos = read_int(buf, pos)
    return float(v), pos


def _read_length(buf: bytes, pos: int) -> tuple[int, int]:
    n, pos = read_long(buf, pos)
    if n < 0:
        raise BadData(f"negative length {n}")
    if pos + n > len(buf):
        raise IndexError
    return n, pos


def read_string(buf: bytes, pos: int) -> tuple[str, int]:
    b = buf[pos]
    if b < 0x80 and not b & 1:  # a length < 64 in one byte (the common case, inlined)
        end = pos + 1 + (b >> 1)
        if end > len(buf):
            raise IndexError
        return buf[pos + 1 : end].decode("utf-8", "replace"), end
    n, pos = _read_length(buf, pos)
    end = pos + n
    return buf[pos:end].decode("utf-8", "replace"), end


def read_bytes(buf: bytes, pos: int) -> tuple[str, int]:
    b = buf[pos]
    if b < 0x80 and not b & 1:
        end = pos + 1 + (b >> 1)
        if end > len(buf):
            raise IndexError
        return buf[pos + 1 : end].decode("latin-1"), end
    n, pos = _read_length(buf, pos)
    end = pos + n
    return buf[pos:end].decode("latin-1"), end


def skip_long(buf: bytes, pos: int) -> int:
    while buf[pos] >= 0x80:
        pos += 1
    return pos + 1


def skip_bytes(buf: bytes, pos: int) -> int:
    n, pos = _read_length(buf, pos)
    return pos + n


#: the bytes a value of a fixed-width primitive takes (skipping it is a jump)
FIXED_SKIP = {"null": 0, "boolean": 1, "float": 4, "double": 8}


def decode_error(exc: Exception) -> DatumDecodeError:
    """The DatumDecodeError for one of the DECODE_FAILURES a reader raised."""
    if isinstance(exc, BadData):
        return DatumDecodeError(str(exc))
    if isinstance(exc, RecursionError):
        return DatumDecodeError("datum nested too deeply")
    return DatumDecodeError("truncated datum")  # IndexError, struct.error


#: what reading bad datum bytes raises (deep nesting included)
DECODE_FAILURES = (BadData, IndexError, struct.error, RecursionError)
