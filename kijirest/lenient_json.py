"""The lenient JSON dialect that KijiSchema's Jackson 1.x parser accepts (layouts.md §2).

Layout files, `.avsc` schema files and entity IDs in URL parameters (`['a', 'b']`) are read with it, so
a file kijirest accepts is one KijiSchema accepts too. Standard JSON plus:

- `//` line comments and `/* */` block comments wherever whitespace may stand;
- single-quoted strings (same escapes as double-quoted ones; `\\'` is accepted in both);
- unquoted object keys matching `[A-Za-z_$][A-Za-z0-9_$]*`.

Everything else that strict JSON rejects stays an error: trailing commas, NaN / Infinity, hex numbers,
leading zeros, unescaped control characters in strings, content after the top-level value.

Integers become Python ints (any size), numbers with a fraction or exponent floats. Repeated object keys
keep the position of the first occurrence and the value of the last (as a Python dict does).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["LenientJSONError", "loads"]

_MAX_DEPTH = 200


class LenientJSONError(ValueError):
    """A syntax error; `line` and `column` are 1-based (a column counts characters)."""

    def __init__(self, what: str, line: int, column: int, pos: int) -> None:
        super().__init__(f"line {line}, column {column}: {what}")
        self.what = what
        self.line = line
        self.column = column
        self.pos = pos


# Whitespace is exactly space, tab, LF and CR (as in Jackson); comments count as whitespace.
_WS = re.compile(r"(?:[ \t\n\r]+|//[^\n\r]*|/\*.*?\*/)*", re.S)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_WORD = re.compile(r"[A-Za-z0-9_$+\-.]+")
_PLAIN = {'"': re.compile(r'[^"\\\x00-\x1f]*'), "'": re.compile(r"[^'\\\x00-\x1f]*")}
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _position(text: str, pos: int) -> tuple[int, int]:
    line = 1
    start = 0
    for m in _LINE_BREAK.finditer(text, 0, pos):
        line += 1
        start = m.end()
    return line, pos - start + 1


def _fail(text: str, pos: int, what: str) -> LenientJSONError:
    line, column = _position(text, pos)
    return LenientJSONError(what, line, column, pos)


def _describe(text: str, pos: int) -> str:
    if pos >= len(text):
        return "end of input"
    ch = text[pos]
    if ch < " " or ch == "\x7f":
        return f"character U+{ord(ch):04X}"
    return f"character {ch!r}"


def _skip(text: str, pos: int) -> int:
    """Skip whitespace and comments; a '/' that starts no complete comment is an error."""
    pos = _WS.match(text, pos).end()
    if pos < len(text) and text[pos] == "/":
        if text.startswith("/*", pos):
            raise _fail(text, pos, "unterminated /* comment")
        raise _fail(text, pos, "unexpected character '/' (comments start with // or /*)")
    return pos


def _string(text: str, pos: int) -> tuple[str, int]:
    """Read the string whose opening quote is at `pos`; returns (value, index after closing quote)."""
    quote = text[pos]
    plain = _PLAIN[quote]
    pos += 1
    end = plain.match(text, pos).end()
    if end < len(text) and text[end] == quote:  # fast path: no escapes
        return text[pos:end], end + 1
    parts = [text[pos:end]]
    pos = end
    n = len(text)
    while True:
        if pos >= n:
            raise _fail(text, pos, "unterminated string")
        ch = text[pos]
        if ch == quote:
            return "".join(parts), pos + 1
        if ch == "\\":
            if pos + 1 >= n:
                raise _fail(text, pos, "unterminated string")
            esc = text[pos + 1]
            if esc == "u":
                code, pos = _unicode_escape(text, pos)
                parts.append(code)
            else:
                rep = _ESCAPES.get(esc)
                if rep is None:
                    raise _fail(text, pos, f"invalid escape {_describe(text, pos + 1)} in string")
                parts.append(rep)
                pos += 2
        else:  # a control character
            raise _fail(text, pos, f"unescaped control character U+{ord(ch):04X} in string")
        end = plain.match(text, pos).end()
        parts.append(text[pos:end])
        pos = end


def _unicode_escape(text: str, pos: int) -> tuple[str, int]:
    """Decode `\\uXXXX` at `pos` (a surrogate pair takes two escapes)."""
    if not _HEX4.match(text, pos + 2):
        raise _fail(text, pos, "\\u must be followed by 4 hex digits")
    code = int(text[pos + 2 : pos + 6], 16)
    pos += 6
    if 0xD800 <= code <= 0xDBFF:
        if text.startswith("\\u", pos) and _HEX4.match(text, pos + 2):
            low = int(text[pos + 2 : pos + 6], 16)
            if 0xDC00 <= low <= 0xDFFF:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), pos + 6
        raise _fail(text, pos - 6, "unpaired surrogate in \\u escape")
    if 0xDC00 <= code <= 0xDFFF:
        raise _fail(text, pos - 6, "unpaired surrogate in \\u escape")
    return chr(code), pos


def _number(text: str, pos: int) -> tuple[int | float, int]:
    m = _NUMBER.match(text, pos)
    if m is None:
        if text.startswith("-", pos):
            word = _WORD.match(text, pos + 1)
            if word and word.group() in ("Infinity", "NaN"):
                raise _fail(text, pos, f"'-{word.group()}' is not allowed (not a JSON number)")
            raise _fail(text, pos, "'-' must be followed by a digit")
        raise _fail(text, pos, f"unexpected {_describe(text, pos)}")
    end = m.end()
    if end < len(text):
        nxt = text[end]
        if nxt in "xX" and m.group() in ("0", "-0"):
            raise _fail(text, pos, "hex numbers are not allowed")
        if nxt.isdigit() and m.group().lstrip("-") == "0":
            raise _fail(text, pos, "leading zeros are not allowed")
        if nxt == ".":
            raise _fail(text, end, "a decimal point must be followed by a digit")
        if nxt in "eE":
            raise _fail(text, end, "an exponent must have digits")
        if nxt.isalnum() or nxt in "_$":
            raise _fail(text, end, f"unexpected {_describe(text, end)} in number")
    s = m.group()
    if m.group(1) is None and m.group(2) is None:
        try:
            return int(s), end
        except ValueError:  # beyond Python's int string-conversion limit
            raise _fail(text, pos, "integer too long") from None
    return float(s), end  # beyond the double range: ±inf, as Java's Double.parseDouble


_LITERALS = {"true": True, "false": False, "null": None}


def _value(text: str, pos: int, depth: int, lenient: bool) -> tuple[Any, int]:
    """Read one value starting at `pos` (already past whitespace)."""
    if pos >= len(text):
        raise _fail(text, pos, "unexpected end of input, expected a value")
    ch = text[pos]
    if ch == '"' or (ch == "'" and lenient):
        return _string(text, pos)
    if ch == "{":
        return _object(text, pos, depth + 1, lenient)
    if ch == "[":
        return _array(text, pos, depth + 1, lenient)
    if ch == "-" or "0" <= ch <= "9":
        return _number(text, pos)
    word = _WORD.match(text, pos)
    if word is not None:
        w = word.group()
        if w in _LITERALS:
            return _LITERALS[w], word.end()
        if w in ("NaN", "Infinity", "+Infinity"):
            raise _fail(text, pos, f"'{w}' is not allowed (not a JSON number)")
        if w.startswith(("+", ".")):
            raise _fail(text, pos, f"invalid number {w!r}")
        if _NAME.fullmatch(w):
            raise _fail(text, pos, f"unexpected word {w!r}, expected a value (strings need quotes)")
    raise _fail(text, pos, f"unexpected {_describe(text, pos)}, expected a value")


def _array(text: str, pos: int, depth: int, lenient: bool) -> tuple[list[Any], int]:
    if depth > _MAX_DEPTH:
        raise _fail(text, pos, "nesting too deep")
    out: list[Any] = []
    pos = _skip(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return out, pos + 1
    while True:
        value, pos = _value(text, pos, depth, lenient)
        out.append(value)
        pos = _skip(text, pos)
        ch = text[pos] if pos < len(text) else ""
        if ch == ",":
            pos = _skip(text, pos + 1)
            if pos < len(text) and text[pos] == "]":
                raise _fail(text, pos, "trailing comma before ']'")
        elif ch == "]":
            return out, pos + 1
        else:
            raise _fail(text, pos, f"unexpected {_describe(text, pos)}, expected ',' or ']'")


def _object(text: str, pos: int, depth: int, lenient: bool) -> tuple[dict[str, Any], int]:
    if depth > _MAX_DEPTH:
        raise _fail(text, pos, "nesting too deep")
    out: dict[str, Any] = {}
    pos = _skip(text, pos + 1)
    if pos < len(text) and text[pos] == "}":
        return out, pos + 1
    while True:
        ch = text[pos] if pos < len(text) else ""
        if ch == '"' or (ch == "'" and lenient):
            key, pos = _string(text, pos)
        else:
            m = _NAME.match(text, pos) if lenient else None
            if m is None:
                raise _fail(text, pos, f"unexpected {_describe(text, pos)}, expected a field name")
            key, pos = m.group(), m.end()
        pos = _skip(text, pos)
        if pos >= len(text) or text[pos] != ":":
            raise _fail(text, pos, f"unexpected {_describe(text, pos)}, expected ':' after field name")
        pos = _skip(text, pos + 1)
        value, pos = _value(text, pos, depth, lenient)
        out[key] = value
        pos = _skip(text, pos)
        ch = text[pos] if pos < len(text) else ""
        if ch == ",":
            pos = _skip(text, pos + 1)
            if pos < len(text) and text[pos] == "}":
                raise _fail(text, pos, "trailing comma before '}'")
        elif ch == "}":
            return out, pos + 1
        else:
            raise _fail(text, pos, f"unexpected {_describe(text, pos)}, expected ',' or '}}'")


def loads(text: str, *, lenient: bool = True) -> Any:
    """Parse one lenient-JSON value; raises `LenientJSONError` with line and column on any error.

    `lenient=False` reads the dialect of Avro's schema parser instead: standard JSON plus comments
    (no single quotes, no unquoted names).
    """
    pos = _skip(text, 0)
    value, pos = _value(text, pos, 0, lenient)
    pos = _skip(text, pos)
    if pos < len(text):
        raise _fail(text, pos, f"unexpected {_describe(text, pos)} after the top-level value")
    return value
