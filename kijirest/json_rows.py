"""A large POST body's rows one at a time, parsed as its bytes arrive (ijson's C backend, yajl2_c).

Why: a body parsed whole becomes all of its Python objects at once before the first row is even
checked. One 60 MB POST of 2.1 million empty rows took the gateway to 1.7-1.9 GB RSS that way, to be
refused or written afterwards. `RowSplitter` instead turns the bytes handed to `feed` into the rows
of the top-level array that are complete so far; the caller validates and plans each row and stops
at the first bad one or at `max_rows_per_post` + 1, so the objects alive at any time are one chunk's
rows plus the plan.

How: yajl's *events* (`basic_parse`, in C) are turned into values here, not ijson's `items`, whose
C code keeps a prefix string per nesting level ("item.item.item...", O(depth²) bytes): 200 KB of
`[[[[...` made it allocate 18 GB. Building from events also lets nesting stop at `MAX_DEPTH`, as
orjson does (its limit is 1024). Numbers: integers are `int`, others `float` (`use_float`), as from
orjson. yajl refuses integers outside -2**63+1 .. 2**63-1, Long.MIN_VALUE included: on that error
(`IntegerOverflow`) the caller parses the body again with ijson's pure-Python backend
(`exact_numbers`), which reads any integer; it is slower, and only that rare body pays for it. yajl
would also turn a `\\u` escape of a lone UTF-16 surrogate into "?" without a word, so those are
found in the bytes first (`SurrogateCheck`) and refused as orjson refuses them.
"""

from __future__ import annotations

import re
from typing import Any

import ijson

MAX_DEPTH = 1024  # orjson's limit: a body nested deeper is malformed on either path
_SURROGATE = re.compile(rb"(\\+)u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}(\\u[dD][c-fC-F][0-9a-fA-F]{2})?")
_PAIR = 12  # bytes of an escaped surrogate pair

LONE_SURROGATE = "a \\u escape of a lone UTF-16 surrogate (not valid Unicode)"
_VALUE_EVENTS = frozenset(("null", "boolean", "integer", "double", "number", "string"))


class MalformedJson(ValueError):
    """The bytes are not one JSON value (the message says why, on one line). `rows`: the values
    completed before the error, which a caller may still check first (a row limit reached before
    the broken part is what the client should hear about)."""

    def __init__(self, reason: str, rows: list[Any] | None = None) -> None:
        super().__init__(reason)
        self.rows = rows or []


class IntegerOverflow(MalformedJson):
    """yajl met an integer outside the 64-bit range (it refuses even -2**63, Long.MIN_VALUE):
    the body must be parsed again by `RowSplitter(exact_numbers=True)`."""


def _yajl() -> Any:
    try:
        return ijson.get_backend("yajl2_c")
    except ImportError:  # a platform without the compiled backend: same events, slower
        return ijson


_BACKEND = _yajl()


class SurrogateCheck:
    """Finds a `\\uD800`-`\\uDFFF` escape that is not half of a pair in bytes fed in order (an
    escape cut between two chunks included; an escaped backslash before `u` does not count).
    `feed` hands back the bytes judged so far, the only ones the parser may see: up to ~12 bytes
    wait for the next call (or `final`)."""

    def __init__(self) -> None:
        self._carry = b""  # the end of the bytes so far, not judged yet

    def feed(self, data: bytes, final: bool = False) -> bytes | None:
        """The bytes now judged free of lone surrogates, or None as soon as one is seen."""
        buf = self._carry + data
        # judge escapes that start before `limit`: each has the 12 bytes of a pair after it
        limit = len(buf) if final else max(0, len(buf) - _PAIR)
        while limit > 0 and not final and buf[limit - 1] == 0x5C:
            limit -= 1  # a run of backslashes stays whole: its length decides what it escapes
        carry_from = limit
        if b"\\u" not in buf and b"\\U" not in buf:
            self._carry = buf[limit:]
            return buf[:limit]
        for m in _SURROGATE.finditer(buf):
            if m.start() >= limit:
                break
            if len(m.group(1)) % 2 == 0:  # "\\\\ud800": a backslash, then the text "ud800"
                if m.group(3) is not None:
                    return None  # "\\\\ud800\\udc00": the second is a real escape, a low half alone
                carry_from = max(limit, m.end())
                continue
            if m.group(2) not in b"89abAB":
                return None  # a low half alone
            if m.group(3) is None:
                if not final and len(buf) - m.end() < 6:
                    carry_from = m.start()  # its low half may come with the next bytes
                    break
                return None
            carry_from = max(limit, m.end())
        self._carry = buf[carry_from:]
        return buf[:carry_from]


class RowSplitter:
    """Feed body bytes in order; get back the values completed so far: each element of a
    top-level array (`in_array` then True), or the one top-level value of any other body."""

    def __init__(self, exact_numbers: bool = False) -> None:
        backend = ijson.get_backend("python") if exact_numbers else _BACKEND
        self._events = ijson.utils.sendable_list()
        self._parser = backend.basic_parse_coro(self._events, use_float=True)
        self._stack: list[list[Any]] = []  # [container, pending key] of the values being built
        self._surrogates = SurrogateCheck()
        self.in_array = False  # the body is an array: its elements are handed out one by one
        self.started = False
        self.ended = False

    def feed(self, data: bytes) -> list[Any]:
        judged = self._surrogates.feed(data)
        if judged is None:
            raise MalformedJson(LONE_SURROGATE)
        try:
            if judged:  # an empty chunk would tell the parser that the body ended
                self._parser.send(judged)
        except (ijson.JSONError, UnicodeDecodeError) as exc:  # yajl2_c decodes its UTF-8
            raise _error(exc, self._build()) from None
        return self._build()

    def close(self) -> list[Any]:
        """The values completed by the end of the body; MalformedJson when it ends too early."""
        judged = self._surrogates.feed(b"", final=True)
        if judged is None:
            raise MalformedJson(LONE_SURROGATE)
        try:
            if judged:
                self._parser.send(judged)
            self._parser.close()
        except (ijson.JSONError, UnicodeDecodeError) as exc:  # yajl2_c decodes its UTF-8
            raise _error(exc, self._build()) from None
        done = self._build()
        if not self.ended:
            raise MalformedJson("the body ends before its JSON value does" if self.started else "empty body")
        return done

    def _build(self) -> list[Any]:
        done: list[Any] = []
        stack = self._stack
        for event, value in self._events:
            if event in _VALUE_EVENTS:
                pass
            elif event == "map_key":
                stack[-1][1] = value
                continue
            elif event == "start_map" or event == "start_array":
                if not self.started:
                    self.started = True
                    if event == "start_array":
                        self.in_array = True
                        continue
                if len(stack) + self.in_array >= MAX_DEPTH:
                    del self._events[:]
                    raise MalformedJson(f"nested deeper than {MAX_DEPTH} levels of arrays and objects", done)
                stack.append([{} if event == "start_map" else [], None])
                continue
            elif not stack:  # the end of the top-level array
                self.ended = True
                continue
            else:  # end_map, end_array
                value = stack.pop()[0]
            if not stack:
                if not self.in_array:
                    self.ended = True
                self.started = True
                done.append(value)
                continue
            container, key = stack[-1]
            if type(container) is list:
                container.append(value)
            else:
                container[key] = value
        del self._events[:]
        return done


def _error(exc: Exception, rows: list[Any]) -> MalformedJson:
    reason = _reason(exc)
    if reason.endswith("integer overflow"):
        return IntegerOverflow(reason, rows)
    return MalformedJson(reason, rows)


def _reason(exc: Exception) -> str:
    """yajl's message without its multi-line excerpt of the body."""
    if isinstance(exc, UnicodeDecodeError):
        return "a string that is not valid UTF-8"
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    first = str(text).strip().splitlines()
    return " ".join(first[0].split()) if first else type(exc).__name__
