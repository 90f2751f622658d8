"""API keys: a system table in the store, holding a digest of each secret, never the secret.

Why in the store: every worker of `--workers N` and every gateway on the same HBase reads the same
table, so a key created, rotated or revoked by `kijirest keys ...` (or `DELETE /v1/keys/<name>`)
is seen by all of them; each caches what it read for at most `auth.cache_seconds` (5 s), so a
revoked key stops working everywhere within that.

A key is `kr1_<id>_<secret>`: `id` 16 hex digits (the row key of its record), `secret` 256 random
bits from `secrets` (43 base64url characters). The prefix makes a leaked key easy to spot (secret
scanners, logs). Only `HMAC-SHA256(key=id, msg=secret)` is stored. A fast digest is the right
one here: a slow password hash (bcrypt, scrypt) exists to make guessing low-entropy passwords
expensive, and a 256-bit random secret cannot be guessed at any speed; keying the digest with the
id binds it to its row (a digest copied to another record matches nothing). Digests are compared
with `hmac.compare_digest` (constant time).

Records are JSON cells (`k:record`, one version): name, digest, grants, created, expires,
revoked, rotated. The store layer sees bytes only; this module speaks the `Store` interface.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

import orjson

from kijirest.auth.grants import Grant, GrantError, Principal, parse_grants
from kijirest.primitives import now_ms
from kijirest.store.base import FamilySpec, ReadOptions, Scan, Store

__all__ = [
    "ApiKey",
    "KeyCheck",
    "KeyProblem",
    "KeyTable",
    "looks_like_key",
    "parse_duration",
    "split_key",
]

log = logging.getLogger("kijirest.auth")

_FAMILY = b"k"
_QUALIFIER = b"record"
KEYS_FAMILY = FamilySpec(name=_FAMILY, max_versions=1, compression="NONE", bloom_filter="ROW")
_READ = ReadOptions(columns=None, max_versions=1)

KEY_PREFIX = "kr1_"
_KEY = re.compile(r"kr1_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,127}")
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class KeyProblem(ValueError):
    """A key operation that cannot be done (unknown name, name taken, bad grant); the message
    never holds a secret."""


def looks_like_key(token: str) -> bool:
    """Whether a bearer token has the API-key form (else it may be a JWT)."""
    return token.startswith(KEY_PREFIX)


def split_key(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key; None otherwise."""
    found = _KEY.fullmatch(token)
    return (found.group(1), found.group(2)) if found else None


def digest(key_id: str, secret: str) -> str:
    return hmac.new(key_id.encode("ascii"), secret.encode("ascii"), hashlib.sha256).hexdigest()


def parse_duration(text: str) -> int:
    """`90s`, `15m`, `12h`, `30d`, `2w` → seconds (also combined: `1d12h`)."""
    pos = 0
    total = 0
    for found in _DURATION.finditer(text):
        if found.start() != pos:
            break
        total += int(found.group(1)) * _UNITS[found.group(2)]
        pos = found.end()
    if pos != len(text) or not text or total <= 0:
        raise KeyProblem(f"--expires {text!r}: expected a duration such as 90m, 12h, 30d or 2w")
    return total


@dataclass(frozen=True)
class ApiKey:
    """A key's record as stored (no secret)."""

    id: str
    name: str
    digest: str
    grants: tuple[str, ...]
    created_ms: int
    expires_ms: int | None = None
    revoked_ms: int | None = None
    rotated_ms: int | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "name": self.name,
                "digest": self.digest,
                "grants": list(self.grants),
                "created": self.created_ms,
                "expires": self.expires_ms,
                "revoked": self.revoked_ms,
                "rotated": self.rotated_ms,
            }
        )

    @classmethod
    def from_json(cls, key_id: str, data: bytes) -> ApiKey:
        d = orjson.loads(data)
        return cls(
            key_id,
            d["name"],
            d["digest"],
            tuple(d["grants"]),
            d["created"],
            d.get("expires"),
            d.get("revoked"),
            d.get("rotated"),
        )

    def state(self, now: int | None = None) -> str:
        now = now_ms() if now is None else now
        if self.revoked_ms is not None:
            return "revoked"
        if self.expires_ms is not None and self.expires_ms <= now:
            return "expired"
        return "active"

    def listing(self) -> dict[str, Any]:
        """What `keys list` and `GET /v1/keys` show: everything but the digest."""
        return {
            "name": self.name,
            "id": self.id,
            "grants": list(self.grants),
            "state": self.state(),
            "created": _iso(self.created_ms),
            "expires": _iso(self.expires_ms),
            "revoked": _iso(self.revoked_ms),
            "rotated": _iso(self.rotated_ms),
        }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


@dataclass(frozen=True)
class KeyCheck:
    """The outcome of looking a key up: a principal, or why not (`unknown`, `revoked`, `expired`)."""

    principal: Principal | None
    failure: str | None = None


class KeyTable:
    """The API keys of one store table (blocking: the gateway runs it in the store's pool)."""

    def __init__(self, store: Store, table: str) -> None:
        self.store = store
        self.table = table

    def install(self) -> bool:
        """Create the table when missing (like the schema tables); True when this call created it."""
        return self.store.create_table(self.table, [KEYS_FAMILY])

    # -- reading --------------------------------------------------------------------------------
    def get(self, key_id: str) -> ApiKey | None:
        ((_, cells),) = self.store.get_rows(self.table, [key_id.encode("ascii")], _READ)
        for family, qualifier, _ts, value in cells:
            if family == _FAMILY and qualifier == _QUALIFIER:
                return ApiKey.from_json(key_id, value)
        return None

    def all(self) -> list[ApiKey]:
        out = []
        with self.store.scan(self.table, Scan(read=_READ)) as scanner:
            for batch in scanner:
                for row_key, cells in batch:
                    for family, qualifier, _ts, value in cells:
                        if family == _FAMILY and qualifier == _QUALIFIER:
                            out.append(ApiKey.from_json(row_key.decode("ascii"), value))
        return sorted(out, key=lambda k: (k.name, k.created_ms))

    def by_name(self, name: str) -> ApiKey:
        for key in self.all():
            if key.name == name:
                return key
        raise KeyProblem(f"no key named {name!r}")

    def check(self, token: str) -> KeyCheck:
        """Verify a presented key against its record. Only a matching digest tells revoked or
        expired apart from unknown, so a caller without the secret learns nothing of a record."""
        parts = split_key(token)
        if parts is None:
            return KeyCheck(None, "unknown")
        key_id, secret = parts
        record = self.get(key_id)
        presented = digest(key_id, secret)
        stored = record.digest if record is not None else "0" * len(presented)
        if not hmac.compare_digest(presented, stored) or record is None:
            return KeyCheck(None, "unknown")
        state = record.state()
        if state != "active":
            return KeyCheck(None, state)
        try:
            grants = parse_grants(list(record.grants))
        except GrantError as exc:  # a record written by hand or by a newer version
            log.warning("key %s: its grants cannot be read (%s): refused", record.name, exc)
            return KeyCheck(None, "unknown")
        expires = record.expires_ms / 1000 if record.expires_ms is not None else None
        return KeyCheck(Principal(f"key:{record.name}", grants, expires))

    # -- changing -------------------------------------------------------------------------------
    def _put(self, key: ApiKey) -> None:
        self.store.put_row(
            self.table, key.id.encode("ascii"), [(_FAMILY, _QUALIFIER, now_ms(), key.to_json())]
        )

    def create(self, name: str, grants: list[str], expires_seconds: int | None = None) -> tuple[ApiKey, str]:
        """A new key; returns its record and the key text (shown once, never stored)."""
        if not _NAME.fullmatch(name):
            raise KeyProblem(
                f"--name {name!r}: 1-128 letters, digits, '_', '.', '@', '-' (first a letter or digit)"
            )
        if not grants:
            raise KeyProblem("--grant: a key needs at least one grant (e.g. demo/users:read)")
        try:
            parsed: tuple[Grant, ...] = parse_grants(grants)
        except GrantError as exc:
            raise KeyProblem(f"--grant {exc}") from None
        if any(k.name == name for k in self.all()):
            raise KeyProblem(
                f"--name {name!r}: a key of that name exists (revoke it, or choose another name)"
            )
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = now_ms()
        record = ApiKey(
            key_id,
            name,
            digest(key_id, secret),
            tuple(str(g) for g in parsed),
            now,
            now + expires_seconds * 1000 if expires_seconds is not None else None,
        )
        self._put(record)
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def revoke(self, name: str) -> ApiKey:
        record = self.by_name(name)
        if record.revoked_ms is not None:
            return record
        record = replace(record, revoked_ms=now_ms())
        self._put(record)
        return record

    def rotate(self, name: str) -> tuple[ApiKey, str]:
        """A new secret for the key (same name, id and grants); the old secret stops working."""
        record = self.by_name(name)
        if record.revoked_ms is not None:
            raise KeyProblem(f"key {name!r} is revoked: create a new one")
        secret = secrets.token_urlsafe(32)
        record = replace(record, digest=digest(record.id, secret), rotated_ms=now_ms())
        self._put(record)
        return record, f"{KEY_PREFIX}{record.id}_{secret}"
