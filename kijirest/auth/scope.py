"""Row scopes: the rows of one table that a principal's row-prefix grants allow, as row-key facts.

A grant such as `demo/users:read@["acme"]` allows the rows whose entity ID starts with the
component "acme". In the store that is a set of row keys, and how it maps to keys depends on the
table's key format (encodings.md §1):

- FORMATTED, with the prefix covering every hashed component (`range_scan_start`): every such key
  starts with `hash ‖ components`, so the rows are one key range `[start, successor(start))` and a
  scan is narrowed to it (pushed down: the store never reads another row);
- FORMATTED with fewer components (the hash is unknown): the rows are scattered over the table; a
  scan reads its range and keeps the keys whose decoded leading components are those given (the
  key codec's `split_raw`, exact byte comparison of strings);
- RAW, HASH, HASH_PREFIX (one component) and suppressed FORMATTED keys (only a hash is stored): the
  prefix must give every component; it then names exactly one key. A shorter prefix cannot be
  checked against a hash-only key: it allows nothing (fail closed), and so does a prefix whose
  components do not fit the table's key (too many, wrong types).

Every scan row is checked with `contains` as well, also when the range is pushed down: the check
is a byte comparison, and a scan can then never stream a row outside the grant, whatever range,
wildcard or raw `hbase=` bound the request asked for. Point reads, deletes and POSTs check each key
and refuse the request (403) if one is outside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kijirest.auth.grants import Prefix
from kijirest.entity_id import EntityIdError, KeyCodec
from kijirest.primitives import successor

log = logging.getLogger("kijirest.auth")

__all__ = ["RowScope", "row_scope"]


@dataclass(frozen=True, slots=True)
class _Part:
    """The keys of one prefix: the range [start, stop) (stop None = to the end), and when the
    range alone does not decide, `check(key)`."""

    start: bytes
    stop: bytes | None
    check: Callable[[bytes], bool] | None = None

    def contains(self, key: bytes) -> bool:
        if key < self.start or (self.stop is not None and key >= self.stop):
            return False
        return self.check is None or self.check(key)


class RowScope:
    """The row keys of one table allowed by a set of entity-ID prefixes."""

    __slots__ = ("_parts", "contains")

    def __init__(self, parts: list[_Part]) -> None:
        self._parts = tuple(parts)
        if len(parts) == 1:
            self.contains: Callable[[bytes], bool] = parts[0].contains
        else:
            self.contains = self._any

    def _any(self, key: bytes) -> bool:
        return any(part.contains(key) for part in self._parts)

    @property
    def empty(self) -> bool:
        return not self._parts

    def clip(self, start: bytes, stop: bytes | None) -> tuple[bytes, bytes | None] | None:
        """The smallest key range holding every allowed key of `[start, stop)`; None when the
        allowed keys and the range do not meet."""
        low: bytes | None = None
        high: bytes | None = None
        unbounded = False
        for part in self._parts:
            s = max(start, part.start)
            e = _min_stop(stop, part.stop)
            if e is not None and e <= s:
                continue
            low = s if low is None else min(low, s)
            if e is None:
                unbounded = True
            else:
                high = e if high is None else max(high, e)
        if low is None:
            return None
        return low, None if unbounded else high


def _min_stop(a: bytes | None, b: bytes | None) -> bytes | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def row_scope(codec: KeyCodec, prefixes: tuple[Prefix, ...], where: str = "") -> RowScope:
    """The scope of `prefixes` on a table whose keys `codec` encodes. A prefix that cannot apply
    to this key format allows no row (logged once per scope built)."""
    parts: list[_Part] = []
    for prefix in prefixes:
        try:
            part = _part(codec, list(prefix))
        except EntityIdError as exc:
            part = None
            log.warning("grant prefix %s on %s allows no row: %s", list(prefix), where or "a table", exc)
        if part is not None:
            parts.append(part)
    return RowScope(parts)


def _part(codec: KeyCodec, prefix: list) -> _Part | None:
    if codec.encoding != "FORMATTED":
        # RAW / HASH / HASH_PREFIX: one string component, so a prefix names one key
        checked = codec.check_components(prefix)
        key = codec.encode_checked(checked)
        return _exact(key)
    if len(prefix) > codec.n:
        raise EntityIdError("Too many components in kiji Row Key")
    checked = codec.check_components(prefix, bound=True)
    if codec.suppressed:
        if len(prefix) < codec.n:
            raise EntityIdError(
                "the key is only a hash (materialization suppressed): a prefix must give every component"
            )
        return _exact(codec.encode_checked(checked))
    if len(prefix) >= codec.range_scan_start:
        start = codec.encode_checked(checked)  # hash ‖ the given components
        return _Part(start, successor(start))
    return _Part(b"", None, _leading_components(codec, prefix))


def _exact(key: bytes) -> _Part:
    return _Part(key, key + b"\x00")


def _leading_components(codec: KeyCodec, prefix: list) -> Callable[[bytes], bool]:
    """A check that a FORMATTED key decodes and starts with `prefix` (strings as UTF-8 bytes)."""
    want = [c.encode("utf-8") if isinstance(c, str) else c for c in prefix]
    n = len(want)

    def check(key: bytes) -> bool:
        raw = codec.split_raw(key)
        return raw is not None and raw[:n] == want

    return check
