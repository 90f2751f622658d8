"""Query-parameter parsing for GET/DELETE rows: each parser names its parameter in its errors.

These take plain strings (already URL-decoded once) and know nothing of aiohttp.
"""

from __future__ import annotations

from multidict import MultiMapping

from kijirest.primitives import INT32_MAX
from kijirest.problems import BadInput
from kijirest.store.base import LATEST

DEFAULT_SCAN_LIMIT = 100


def single(params: MultiMapping[str], name: str) -> str | None:
    """The value of a query parameter; an empty value counts as absent; a parameter repeated with
    different values is ambiguous (400)."""
    values = [v for v in params.getall(name, ()) if v != ""]
    if not values:
        return None
    if len(values) > 1 and len(set(values)) > 1:
        raise BadInput(name, f"given {len(values)} times with different values")
    return values[0]


def parse_limit(text: str | None, default: int | None) -> int | None:
    """`limit`: -1 = no limit (None), 0 = no rows, N > 0; other negatives are errors."""
    if text is None:
        return default
    value = _integer("limit", text)
    if value == -1:
        return None
    if value < -1:
        raise BadInput("limit", f"must be -1 (no limit), 0 or a positive number of rows, got {text}")
    return value


def parse_versions(text: str | None) -> int | None:
    """`versions`: a positive integer, or `all` (any case) = None (no limit). Default 1."""
    if text is None:
        return 1
    if text.lower() == "all":
        return None
    value = _integer("versions", text)
    if value < 1:
        raise BadInput("versions", f"must be a positive integer or 'all', got {text}")
    if value > INT32_MAX:  # HBase counts versions in a Java int
        raise BadInput("versions", f"must be at most {INT32_MAX} (or 'all'), got {text}")
    return value


def parse_timerange(text: str | None) -> tuple[int, int]:
    """`timerange=min..max` in ms since the epoch, `[min, max)`; either side may be empty."""
    if text is None:
        return (0, LATEST)
    lo, sep, hi = text.partition("..")
    if not sep:
        raise BadInput("timerange", f"expected 'min..max' (milliseconds since the epoch), got {text!r}")
    low = _timestamp("timerange", lo) if lo else 0
    high = _timestamp("timerange", hi) if hi else LATEST
    if high <= low:
        raise BadInput("timerange", f"max ({high}) must be greater than min ({low})")
    return (low, high)


def parse_timestamp(where: str, text: str | None) -> int | None:
    """An explicit timestamp in ms: in [0, 2^63-1) (2^63-1 is HBase's 'latest' marker)."""
    if text is None:
        return None
    value = _timestamp(where, text)
    if value >= LATEST:
        raise BadInput(where, f"must be less than {LATEST} (HBase's 'latest' marker), got {text}")
    return value


#: more digits than any accepted value has (2^63 has 19): refused before int() is asked to convert
#: them (Python refuses over 4,300 digits with a ValueError, and converting is quadratic before that)
_MAX_DIGITS = 20


def _integer(where: str, text: str) -> int:
    stripped = text.strip()
    body = stripped[1:] if stripped[:1] in "+-" else stripped
    if not body.isdigit() or not body.isascii():
        raise BadInput(where, f"expected an integer, got {_preview(text)}")
    if len(body.lstrip("0")) > _MAX_DIGITS:
        raise BadInput(where, f"number out of range ({len(body)} digits), got {_preview(text)}")
    return int(stripped)


def _preview(text: str, width: int = 40) -> str:
    """The value as a 400 shows it: quoted, and cut to `width` characters (an answer never
    echoes a whole multi-kilobyte parameter)."""
    if len(text) <= width:
        return repr(text)
    return repr(text[:width]) + f"... ({len(text)} characters)"


def _timestamp(where: str, text: str) -> int:
    value = _integer(where, text)
    if value < 0:
        raise BadInput(where, f"timestamps must not be negative, got {text}")
    if value > LATEST:
        raise BadInput(where, f"timestamps must be at most {LATEST}, got {text}")
    return value
