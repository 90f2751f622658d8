"""Grants and principals: what a caller may do, as data, with no HTTP, store or Kiji model in it.

A grant is written `<instance>[/<table>]:<read|write|admin>[@<entity-ID prefix>]`:

- `demo:read` reads every table of instance `demo`; `demo/users:write` reads and writes `users`;
- `*:read` reads every instance; `*:admin` is the operator (every level everywhere, key management);
- `demo/users:read@["acme"]` reads only the rows of `users` whose entity ID starts with the
  component `"acme"` (JSON; single quotes are accepted, as in the `eid` parameter, so that a shell
  argument needs no escaped double quotes: `--grant "demo/users:read@['acme']"`).

Levels are ordered: `write` implies `read` on the same scope, `admin` implies both. A prefix names
entity-ID components, which only make sense for one table's key format: it needs a table, and it
is checked against that table's row key when a request uses it (`scope.py`).

A `Principal` is who a verified credential stands for (an API key, a JWT's subject) with its
grants. Its answers (`rights`, `sees_instance`) are cached on it: a principal is itself cached by
the authenticator for a few seconds, so a request pays one dict lookup per question.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kijirest.lenient_json import LenientJSONError
from kijirest.lenient_json import loads as lenient_loads

__all__ = [
    "EVERY_ROW",
    "NO_ROW",
    "Grant",
    "GrantError",
    "Level",
    "Principal",
    "Rights",
    "parse_grant",
    "parse_grants",
]

#: instance and table names in grants: what layouts may name (letters, digits, `_`, `.`, `-`)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_GRANT = re.compile(r"(?P<scope>[^:@]+):(?P<level>[a-z]+)(?:@(?P<prefix>.*))?", re.S)
#: a prefix component: a string or a 64-bit integer (the FORMATTED component types)
_INT_RANGE = (-(2**63), 2**63 - 1)


class GrantError(ValueError):
    """A grant that cannot be used; the message says why (and never holds a credential)."""


class Level(enum.IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3


Prefix = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Grant:
    instance: str  # "*" = every instance
    table: str | None  # None = every table of the instance
    level: Level
    prefix: Prefix | None = None  # leading entity-ID components; None = every row

    def covers(self, instance: str, table: str | None) -> bool:
        """Whether this grant reaches `instance` (and `table`, when one is given)."""
        if self.instance != "*" and self.instance != instance:
            return False
        return table is None or self.table is None or self.table == table

    def __str__(self) -> str:
        scope = self.instance if self.table is None else f"{self.instance}/{self.table}"
        text = f"{scope}:{self.level.name.lower()}"
        if self.prefix is not None:
            text += "@" + orjson.dumps(list(self.prefix)).decode()
        return text


def parse_grant(text: str) -> Grant:
    """One grant from its text; GrantError naming what is wrong."""
    if not isinstance(text, str):
        raise GrantError(f"a grant is a string such as 'demo/users:read', got {type(text).__name__}")
    found = _GRANT.fullmatch(text.strip())
    if found is None:
        raise GrantError(f"{text!r}: expected <instance>[/<table>]:<read|write|admin>[@<prefix>]")
    scope, level_text, prefix_text = found.group("scope"), found.group("level"), found.group("prefix")
    instance, _, table = scope.partition("/")
    if instance != "*" and not _NAME.fullmatch(instance):
        raise GrantError(f"{text!r}: the instance must be a name or '*', got {instance!r}")
    if "/" in scope and not _NAME.fullmatch(table):
        raise GrantError(f"{text!r}: the table must be a name, got {table!r}")
    if instance == "*" and table:
        raise GrantError(f"{text!r}: '*' covers every instance; a table needs its instance named")
    try:
        level = Level[level_text.upper()]
    except KeyError:
        raise GrantError(f"{text!r}: the level must be read, write or admin, got {level_text!r}") from None
    prefix = None
    if prefix_text is not None:
        if not table:
            raise GrantError(f"{text!r}: a row prefix needs a table (<instance>/<table>:<level>@[...])")
        prefix = _parse_prefix(text, prefix_text)
    return Grant(instance, table or None, level, prefix)


def _parse_prefix(text: str, prefix_text: str) -> Prefix:
    try:
        value = orjson.loads(prefix_text)
    except orjson.JSONDecodeError:
        try:
            value = lenient_loads(prefix_text)
        except LenientJSONError as exc:
            raise GrantError(f"{text!r}: the row prefix is not a JSON array: {exc}") from None
    if not isinstance(value, list) or not value:
        raise GrantError(f"{text!r}: the row prefix must be a non-empty JSON array of components")
    for component in value:
        if isinstance(component, bool) or not isinstance(component, str | int):
            raise GrantError(f"{text!r}: prefix components are strings or integers, got {component!r}")
        if isinstance(component, int) and not _INT_RANGE[0] <= component <= _INT_RANGE[1]:
            raise GrantError(f"{text!r}: prefix component {component} is outside the 64-bit range")
    return tuple(value)


def parse_grants(texts: Any) -> tuple[Grant, ...]:
    """A list of grant texts (or one space-separated string, as an OAuth `scope` claim)."""
    if isinstance(texts, str):
        texts = texts.split()
    if not isinstance(texts, list | tuple):
        raise GrantError(f"grants must be a list of strings, got {type(texts).__name__}")
    return tuple(parse_grant(t) for t in texts)


@dataclass(frozen=True, slots=True)
class Rights:
    """What a principal may do to the rows of one table at one level: nothing, every row, or the
    rows under any of `prefixes`."""

    allowed: bool
    prefixes: tuple[Prefix, ...] | None  # None = every row (when allowed)

    @property
    def every_row(self) -> bool:
        return self.allowed and self.prefixes is None


EVERY_ROW = Rights(True, None)
NO_ROW = Rights(False, ())


class Principal:
    """Who a verified credential stands for: `name` (`key:<name>`, `jwt:<sub>`), its grants, and
    when the credential stops being valid (seconds since the epoch; None = no expiry)."""

    __slots__ = ("_cache", "expires_at", "grants", "name")

    def __init__(self, name: str, grants: tuple[Grant, ...], expires_at: float | None = None) -> None:
        self.name = name
        self.grants = grants
        self.expires_at = expires_at
        self._cache: dict[tuple, Any] = {}

    def __repr__(self) -> str:
        return f"Principal({self.name!r}, {[str(g) for g in self.grants]})"

    def rights(self, instance: str, table: str, level: Level) -> Rights:
        """The rows of `instance/table` this principal may act on at `level` (or above)."""
        key = (instance, table, level)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._rights(instance, table, level)
        return found

    def _rights(self, instance: str, table: str, level: Level) -> Rights:
        prefixes: list[Prefix] = []
        for grant in self.grants:
            if grant.level >= level and grant.covers(instance, table):
                if grant.prefix is None:
                    return EVERY_ROW
                if grant.prefix not in prefixes:
                    prefixes.append(grant.prefix)
        return Rights(True, tuple(prefixes)) if prefixes else NO_ROW

    def sees_instance(self, instance: str) -> bool:
        """Whether any grant lets this principal read something of `instance` (else it is 404)."""
        key = ("instance", instance)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = any(g.covers(instance, None) for g in self.grants)
        return found

    def memo(self, key: tuple, make: Callable[[], Any]) -> Any:
        """A value derived from the grants (a table's row scope), made once per principal."""
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = make()
        return found

    @property
    def is_admin(self) -> bool:
        """`*:admin`: key management and every row of every table."""
        return any(
            g.level is Level.ADMIN and g.instance == "*" and g.table is None and g.prefix is None
            for g in self.grants
        )
