"""API keys in the store, on every store: creation, checking, revocation, rotation, expiry, and that
only a digest of the secret is ever stored."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import pytest

from kijirest.auth.keys import KeyProblem, KeyTable, parse_duration, split_key
from kijirest.primitives import now_ms
from kijirest.store.base import Scan


@pytest.fixture
def keys(store, table_name) -> KeyTable:
    table = KeyTable(store, table_name())
    assert table.install() is True
    assert table.install() is False  # like the schema tables: created once, never altered
    return table


def raw_bytes(table: KeyTable) -> bytes:
    """Every stored byte of the key table (row keys, qualifiers, values)."""
    out = []
    with table.store.scan(table.table, Scan()) as scanner:
        for batch in scanner:
            for key, cells in batch:
                out.append(key)
                for family, qualifier, _ts, value in cells:
                    out += [family, qualifier, value]
    return b"|".join(out)


def test_a_created_key_checks_and_only_its_digest_is_stored(keys) -> None:
    record, secret = keys.create("alice", ["demo/users:read@['acme']", "demo/sensors:write"])
    key_id, secret_part = split_key(secret)
    assert key_id == record.id and len(secret_part) == 43  # 256 bits, base64url
    check = keys.check(secret)
    assert check.failure is None
    assert check.principal.name == "key:alice"
    assert [str(g) for g in check.principal.grants] == ['demo/users:read@["acme"]', "demo/sensors:write"]
    stored = raw_bytes(keys)
    assert secret.encode() not in stored and secret_part.encode() not in stored
    expected = hmac.new(key_id.encode(), secret_part.encode(), hashlib.sha256).hexdigest()
    assert expected.encode() in stored  # HMAC-SHA256 keyed with the id
    assert "digest" not in record.listing() and secret not in str(record.listing())


def test_unknown_and_tampered_keys_fail_alike(keys) -> None:
    _record, secret = keys.create("bob", ["demo:read"])
    key_id, secret_part = split_key(secret)
    other = "A" if secret_part[0] != "A" else "B"
    for token in (
        f"kr1_{key_id}_{other}{secret_part[1:]}",  # right id, wrong secret
        f"kr1_{'0' * 16}_{secret_part}",  # right secret, unknown id
        "kr1_short",
        secret + "x",
    ):
        assert keys.check(token).principal is None
        assert keys.check(token).failure == "unknown"


def test_revoked_rotated_and_expired_keys_stop(keys) -> None:
    _, secret = keys.create("carol", ["demo:read"])
    assert keys.revoke("carol").revoked_ms is not None
    assert keys.check(secret).failure == "revoked"
    assert keys.by_name("carol").state() == "revoked"
    with pytest.raises(KeyProblem, match="revoked"):
        keys.rotate("carol")

    _, old = keys.create("dave", ["demo:read"])
    record, new = keys.rotate("dave")
    assert new != old and record.rotated_ms is not None
    assert keys.check(old).failure == "unknown"
    assert keys.check(new).principal.name == "key:dave"

    record, secret = keys.create("erin", ["demo:read"], expires_seconds=3600)
    assert keys.check(secret).principal.expires_at == pytest.approx(record.expires_ms / 1000)
    keys._put(replace(record, expires_ms=now_ms() - 1))
    assert keys.check(secret).failure == "expired"
    assert {k.name: k.state() for k in keys.all()} == {
        "carol": "revoked",
        "dave": "active",
        "erin": "expired",
    }


def test_key_names_and_grants_are_checked(keys) -> None:
    keys.create("frank", ["demo:read"])
    with pytest.raises(KeyProblem, match="exists"):
        keys.create("frank", ["demo:read"])
    with pytest.raises(KeyProblem, match="--grant"):
        keys.create("gina", ["demo:root"])
    with pytest.raises(KeyProblem, match="at least one grant"):
        keys.create("gina", [])
    with pytest.raises(KeyProblem, match="--name"):
        keys.create("a b", ["demo:read"])
    with pytest.raises(KeyProblem, match="no key named"):
        keys.revoke("nobody")
    assert [k.name for k in keys.all()] == ["frank"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("2w", 1209600), ("1d12h", 129600)],
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "5y", "-1d", "0s", "1d 2h", "h"])
def test_bad_durations(text) -> None:
    with pytest.raises(KeyProblem, match="--expires"):
        parse_duration(text)
