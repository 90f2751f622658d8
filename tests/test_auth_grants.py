"""Grants, principals and row scopes without HTTP: the grammar, the level order, and which row keys
a row-prefix grant allows on every key format (pushed-down ranges and key-by-key checks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import ApiClient

from kijirest.auth.grants import EVERY_ROW, NO_ROW, GrantError, Level, Principal, parse_grant, parse_grants
from kijirest.auth.scope import row_scope
from kijirest.entity_id import codec_for
from kijirest.layouts.loader import load_layout_dir
from kijirest.primitives import successor

LAYOUTS = load_layout_dir(Path(__file__).parent / "data" / "auth_layouts")


def codec(table: str):
    return codec_for(LAYOUTS["main"].tables[table].row_key)


# -- the grammar ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instance", "table", "level", "prefix"),
    [
        ("demo:read", "demo", None, Level.READ, None),
        ("demo/users:write", "demo", "users", Level.WRITE, None),
        ("*:admin", "*", None, Level.ADMIN, None),
        ('demo/users:read@["acme"]', "demo", "users", Level.READ, ("acme",)),
        ("demo/users:read@['acme', 'jdoe']", "demo", "users", Level.READ, ("acme", "jdoe")),
        ('main/deep:write@["north", "s1", -5]', "main", "deep", Level.WRITE, ("north", "s1", -5)),
        ("  demo:read  ", "demo", None, Level.READ, None),
    ],
)
def test_grants_parse(text, instance, table, level, prefix) -> None:
    grant = parse_grant(text)
    assert (grant.instance, grant.table, grant.level, grant.prefix) == (instance, table, level, prefix)
    assert parse_grant(str(grant)) == grant  # the canonical text reads back


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("demo", "expected <instance>"),
        ("demo:delete", "the level must be read, write or admin"),
        ("demo:READ", "expected <instance>"),
        ("*/users:read", "a table needs its instance named"),
        ('demo:read@["acme"]', "a row prefix needs a table"),
        ("demo/users:read@acme", "not a JSON array"),
        ("demo/users:read@[]", "non-empty JSON array"),
        ("demo/users:read@[null]", "strings or integers"),
        ("demo/users:read@[true]", "strings or integers"),
        ("demo/users:read@[[]]", "strings or integers"),
        ("demo/users:read@[99999999999999999999]", "strings or integers"),  # orjson: a float
        ("demo/users:read@['a', 99999999999999999999]", "64-bit"),
        ("de mo:read", "the instance must be a name"),
        ("demo/:read", "the table must be a name"),
        ("demo/u$ers:read", "the table must be a name"),
    ],
)
def test_bad_grants_are_refused_naming_why(text, why) -> None:
    with pytest.raises(GrantError) as info:
        parse_grant(text)
    assert why in str(info.value)


def test_grants_from_a_claim_list_or_a_scope_string() -> None:
    assert parse_grants("demo:read other/t:write") == (parse_grant("demo:read"), parse_grant("other/t:write"))
    assert parse_grants(["demo:read"]) == (parse_grant("demo:read"),)
    with pytest.raises(GrantError):
        parse_grants({"demo": "read"})
    with pytest.raises(GrantError):
        parse_grants(["demo:read", 7])


# -- levels and scopes ------------------------------------------------------------------------------


def principal(*grants: str) -> Principal:
    return Principal("key:test", parse_grants(list(grants)))


def test_write_implies_read_and_admin_implies_both_on_the_same_scope_only() -> None:
    p = principal("demo/users:write", "other:admin")
    assert p.rights("demo", "users", Level.READ) is EVERY_ROW
    assert p.rights("demo", "users", Level.WRITE) is EVERY_ROW
    assert p.rights("demo", "users", Level.ADMIN) is NO_ROW
    assert p.rights("demo", "sensors", Level.READ) is NO_ROW
    assert p.rights("other", "t", Level.WRITE) is EVERY_ROW
    assert not p.is_admin  # admin of one instance is not key management
    assert principal("*:admin").is_admin
    assert not principal("*:read", "demo/users:admin@['a']").is_admin


def test_read_grants_do_not_write() -> None:
    p = principal("demo:read", "*:read")
    assert p.rights("demo", "users", Level.READ).every_row
    assert p.rights("x", "y", Level.READ).every_row
    assert not p.rights("demo", "users", Level.WRITE).allowed


def test_instances_are_seen_through_any_grant_on_them() -> None:
    p = principal("demo/users:read@['acme']")
    assert p.sees_instance("demo")
    assert not p.sees_instance("other")
    assert principal("*:read").sees_instance("anything")


def test_prefixes_collect_and_a_whole_table_grant_wins() -> None:
    p = principal("demo/users:read@['a']", "demo/users:write@['b']", "demo/users:read@['a']")
    assert p.rights("demo", "users", Level.READ).prefixes == (("a",), ("b",))
    assert p.rights("demo", "users", Level.WRITE).prefixes == (("b",),)
    assert principal("demo/users:read@['a']", "demo:read").rights("demo", "users", Level.READ) is EVERY_ROW


# -- row scopes on every key format -----------------------------------------------------------------


def docs_key(*values) -> bytes:
    return ApiClient.docs_key(*values)


def deep_key(region: str, site: str, n: int) -> bytes:
    return ApiClient.formatted_key("SSI", [region, site, n], range_scan_start=2)


def test_formatted_prefix_over_the_hashed_components_is_one_key_range() -> None:
    scope = row_scope(codec("docs"), (("p1",),))
    start = docs_key("p1")
    assert scope.clip(b"", None) == (start, successor(start))
    assert scope.contains(docs_key("p1", "a", "x", 1, 1))
    assert scope.contains(docs_key("p1"))  # the row with only the first component
    assert not scope.contains(docs_key("p2", "a", "x", 1, 1))
    assert not scope.contains(docs_key("p10", "a"))  # "p1" is a component, not a string prefix
    # a requested range is intersected with it
    assert scope.clip(b"", docs_key("p1", "m")) == (start, docs_key("p1", "m"))
    assert scope.clip(docs_key("p2"), docs_key("p2", "z")) is None  # another hash: disjoint


def test_a_longer_prefix_narrows_the_range() -> None:
    scope = row_scope(codec("docs"), (("p1", "a", "x", 1),))
    assert scope.contains(docs_key("p1", "a", "x", 1, 7))
    assert not scope.contains(docs_key("p1", "a", "x", 2, 7))
    assert not scope.contains(docs_key("p1", "a", "y", 1, 7))
    low, high = scope.clip(b"", None)
    assert low == docs_key("p1", "a", "x", 1) and high == successor(low)


def test_formatted_prefix_short_of_the_hash_is_checked_key_by_key() -> None:
    scope = row_scope(codec("deep"), (("north",),))
    assert scope.clip(b"", None) == (b"", None)  # the hash is unknown: no range to push down
    assert scope.contains(deep_key("north", "s1", 1))
    assert scope.contains(deep_key("north", "s2", 2))
    assert not scope.contains(deep_key("south", "s1", 1))
    assert not scope.contains(deep_key("northern", "s1", 1))
    assert not scope.contains(b"\x00\x01garbage")  # undecodable keys are outside
    full = row_scope(codec("deep"), (("north", "s1"),))
    low, high = full.clip(b"", None)
    assert low == deep_key("north", "s1", 0)[:-4] and high == successor(low)  # pushed down


def test_single_component_formats_allow_exactly_one_key() -> None:
    raw = row_scope(codec("raw"), (("r1",),))
    assert raw.contains(b"r1")
    assert not raw.contains(b"r10") and not raw.contains(b"r")
    assert raw.clip(b"", None) == (b"r1", b"r1\x00")
    hashed = row_scope(codec("hashed"), (("h1",),))
    assert hashed.contains(hashlib.md5(b"h1").digest())
    assert not hashed.contains(hashlib.md5(b"h2").digest())
    prefixed = row_scope(codec("prefixed"), (("x1",),))
    assert prefixed.contains(hashlib.md5(b"x1").digest()[:2] + b"x1")
    assert not prefixed.contains(hashlib.md5(b"x1").digest()[:2] + b"x10")


def test_prefixes_that_cannot_apply_allow_nothing() -> None:
    sealed_key = hashlib.md5(b"ab").digest()
    assert row_scope(codec("sealed"), (("a", "b"),)).contains(sealed_key)
    partial = row_scope(codec("sealed"), (("a",),))  # a hash-only key cannot be matched by part
    assert partial.empty and partial.clip(b"", None) is None
    assert not partial.contains(sealed_key)
    assert row_scope(codec("docs"), ((1,),)).empty  # wrong component type
    assert row_scope(codec("raw"), (("a", "b"),)).empty  # too many components
    assert row_scope(codec("deep"), (("a", "b", 1, 2),)).empty


def test_several_prefixes_take_the_union() -> None:
    scope = row_scope(codec("docs"), (("p1",), ("p3",)))
    for good in (docs_key("p1", "a"), docs_key("p3", "z")):
        assert scope.contains(good)
    assert not scope.contains(docs_key("p2", "a"))
    low, high = scope.clip(b"", None)
    starts = sorted([docs_key("p1"), docs_key("p3")])
    assert low == starts[0] and high == max(successor(s) for s in starts)
    mixed = row_scope(codec("deep"), (("north",), ("south", "s1")))
    assert mixed.clip(b"", None) == (b"", None)
    assert mixed.contains(deep_key("south", "s1", 4)) and not mixed.contains(deep_key("south", "s2", 4))
