"""JSON text as Avro-Java 1.7.6 reads and writes it through Jackson 1.x, and Java's number texts.

Schema texts must come out byte for byte as Avro-Java prints them (their MD5 identifies a writer
schema in Kiji's schema table), so the JSON writing is Jackson 1.x's, not orjson's or the stdlib's:
only `"`, `\\` and control characters escaped (uppercase hex), doubles as Java's
`Double.toString`, NaN and infinities as strings. Reading a float default given as a string follows
Java's `Double.valueOf`. Nothing here knows Avro schemas: `schema.py` builds on it.
"""

from __future__ import annotations

import math
import re
from typing import Any

_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)}
_ESCAPES.update({0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"})


def quote(text: str) -> str:
    """A JSON string as Jackson 1.x writes it (only `"`, `\\` and controls escaped; uppercase hex)."""
    return '"' + text.translate(_ESCAPES) + '"'


def java_double_text(value: float) -> str:
    """Java's Double.toString for a finite double, with the shortest round-trip digits."""
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    stripped = digits.lstrip("0")
    # value = 0.<digits> x 10^dec_exp
    dec_exp = len(int_part) + (int(exp_text) if exp_text else 0) - (len(digits) - len(stripped))
    digits = stripped.rstrip("0") or "0"
    if -3 < dec_exp <= 7:
        if dec_exp > 0:
            whole = digits[:dec_exp].ljust(dec_exp, "0")
            return f"{sign}{whole}.{digits[dec_exp:] or '0'}"
        return f"{sign}0.{'0' * -dec_exp}{digits}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{dec_exp - 1}"


def write_json(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(quote(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        if math.isnan(value):
            out.append('"NaN"')
        elif math.isinf(value):
            out.append('"Infinity"' if value > 0 else '"-Infinity"')
        else:
            out.append(java_double_text(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"JSON object key is not a string: {key!r}")
            if not first:
                out.append(",")
            first = False
            out.append(quote(key))
            out.append(":")
            write_json(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            write_json(item, out)
        out.append("]")
    else:
        raise ValueError(f"not a JSON value: {value!r}")


def json_text(value: Any) -> str:
    """Compact JSON text of a JSON value as Jackson 1.x prints a tree (Avro's defaults and properties)."""
    out: list[str] = []
    write_json(value, out)
    return "".join(out)


_JAVA_TRIM = "".join(chr(i) for i in range(0x21))
_JAVA_DEC = re.compile(
    r"([+-]?)(?:(NaN)|(Infinity)|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?)"
)
_JAVA_HEX = re.compile(r"([+-]?)(0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?")


def java_parse_double(text: str) -> float:
    """Java's Double.valueOf(String): the grammar Avro uses for string defaults of float/double fields."""
    s = text.strip(_JAVA_TRIM)
    m = _JAVA_DEC.fullmatch(s)
    if m:
        sign, nan, inf, number = m.groups()
        if nan:
            return math.nan
        value = math.inf if inf else float(number)
        return -value if sign == "-" else value
    m = _JAVA_HEX.fullmatch(s)
    if m:
        value = float.fromhex(m.group(2))
        return -value if m.group(1) == "-" else value
    raise ValueError(text)
