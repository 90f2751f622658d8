"""Wildcard entity IDs (api.md `eid`, encodings.md §1.9): `[]` and missing trailing components,
regex metacharacters taken literally, empty strings and nulls matched, where wildcards are refused."""

from __future__ import annotations

import pytest

ROWS = [
    ["a", "x", 1, 10],
    ["a", "y", 2, 20],
    ["b", "x", 1, 20],
    ["a"],
    [""],
    ["", "x"],
    ["a.c"],
    ["abc"],
    ["a*"],
    ["aaa"],
    ["a+b", "x"],
    ["(a)"],
]


async def _load(api, uid: str) -> list[list]:
    """Every ROWS entry under the test's own first component; returns them in HBase key order."""
    entities = [[uid, *rest] for rest in ROWS]
    await api.post(
        "docs", [{"entityId": e, "cells": {"info": {"label": [{"value": repr(e[1:])}]}}} for e in entities]
    )
    return sorted(entities, key=lambda e: api.docs_key(*e))


def pad(entity: list) -> list:
    return list(entity) + [None] * (5 - len(entity))


def matching(entities: list[list], pattern: list) -> list[list]:
    """The rows a pattern (None = wildcard) matches, in the given order, padded."""
    out = []
    for e in entities:
        full = pad(e)
        if all(p is None or p == full[i] for i, p in enumerate(pattern)):
            out.append(full)
    return out


@pytest.mark.parametrize(
    "eid_tail,pattern_tail",
    [
        ([[]], []),  # everything under uid
        (["a", []], ["a"]),  # b == "a", the rest anything (nulls included)
        (["a", [], [], []], ["a"]),
        ([[], "x"], [None, "x"]),
        ([[], "x", [], 20], [None, "x", None, 20]),
        ([[], [], 1], [None, None, 1]),
        ([[], [], [], 20], [None, None, None, 20]),
        (["a", "x", 1, []], ["a", "x", 1]),
        (["a", "x", [], 10], ["a", "x", None, 10]),
    ],
)
async def test_wildcards_match_rows_in_key_order(api, uid, eid_tail, pattern_tail) -> None:
    entities = await _load(api, uid)
    rows = (await api.rows("docs", {"eid": [uid, *eid_tail]})).rows
    expected = matching(entities, [uid, *pattern_tail])
    assert expected  # the case is not vacuous
    assert [r["entityId"] for r in rows] == expected
    for row in rows:
        assert row["cells"]["info"]["label"][0]["value"] == repr(
            [c for c in row["entityId"][1:] if c is not None]
        )


async def test_string_wildcard_matches_the_empty_string(api, uid) -> None:
    """Improves on Kiji, whose pattern skipped empty strings."""
    entities = await _load(api, uid)
    rows = (await api.rows("docs", {"eid": [uid, []]})).rows
    assert pad([uid, ""]) in [r["entityId"] for r in rows]
    rows = (await api.rows("docs", {"eid": [uid, [], "x"]})).rows
    assert [r["entityId"] for r in rows] == matching(entities, [uid, None, "x"])
    assert pad([uid, "", "x"]) in [r["entityId"] for r in rows]


@pytest.mark.parametrize("component", ["a.c", "a*", "a+b", "(a)"])
async def test_regex_metacharacters_do_not_act_as_regex(api, uid, component) -> None:
    entities = await _load(api, uid)
    rows = (await api.rows("docs", {"eid": [uid, component, []]})).rows
    assert [r["entityId"] for r in rows] == matching(entities, [uid, component])
    assert all(r["entityId"][1] == component for r in rows) and rows


async def test_short_array_without_wildcard_is_a_point_get(api, uid) -> None:
    await _load(api, uid)
    rows = (await api.rows("docs", {"eid": [uid, "a"]})).rows
    assert [r["entityId"] for r in rows] == [pad([uid, "a"])]
    rows = (await api.rows("docs", {"eid": [uid, "zzz"]})).rows
    assert rows == [{"entityId": pad([uid, "zzz"]), "cells": {}}]


async def test_wildcard_with_no_match_is_an_empty_body(api, uid) -> None:
    await _load(api, uid)
    answer = await api.rows("docs", {"eid": [uid, "nothing", []]})
    assert answer.status == 200
    assert answer.body == b""


async def test_wildcard_in_the_hashed_component(api, uid) -> None:
    """Component 0 is hashed: a wildcard there scans the whole table and filters."""
    firsts = [uid + "p", uid + "q", uid + "r"]
    marker = "m" + uid
    await api.post(
        "docs",
        [{"entityId": [f, marker], "cells": {"info": {"label": [{"value": f}]}}} for f in firsts]
        + [{"entityId": [firsts[0], "other"], "cells": {"info": {"label": [{"value": "no"}]}}}],
    )
    rows = (await api.rows("docs", {"eid": [[], marker], "limit": -1})).rows
    expected = sorted(([f, marker] for f in firsts), key=lambda e: api.docs_key(*e))
    assert [r["entityId"] for r in rows] == [pad(e) for e in expected]


async def test_wildcard_limit_counts_matching_rows(api, uid) -> None:
    entities = await _load(api, uid)
    expected = matching(entities, [uid, "a"])
    rows = (await api.rows("docs", {"eid": [uid, "a", []], "limit": 2})).rows
    assert [r["entityId"] for r in rows] == expected[:2]


async def test_wildcard_scan_leaves_out_rows_without_requested_columns(api, uid) -> None:
    await api.put("docs", [uid, "a"], {"info": {"label": [{"value": "L"}]}})
    await api.put("docs", [uid, "b"], {"extra": {"note": [{"value": "N"}]}})
    rows = (await api.rows("docs", {"eid": [uid, []], "cols": "extra"})).rows
    assert [r["entityId"] for r in rows] == [pad([uid, "b"])]
    assert list(rows[0]["cells"]) == ["extra"]
    assert [c["value"] for c in rows[0]["cells"]["extra"]["note"]] == ["N"]


async def test_wildcard_skips_keys_that_do_not_decode(api, uid) -> None:
    """A raw key under the same prefix that is not a valid docs key never matches a wildcard."""
    await api.put("docs", [uid, "a"], {"info": {"label": [{"value": "good"}]}})
    bad = api.docs_key(uid, "a", "c") + b"\x80\x00"  # INTEGER component cut short
    api.store.put_row(api.hbase_table("docs"), bad, [(b"B", b"B:B", 5, api.uid_cell(0, "string", "bad"))])
    rows = (await api.rows("docs", {"eid": [uid, []]})).rows
    assert [r["entityId"] for r in rows] == [pad([uid, "a"])]


@pytest.mark.parametrize(
    "table,params",
    [
        ("docs", {"eids": '[["x", []]]'}),
        ("docs", {"start_eid": '["x", []]'}),
        ("docs", {"end_eid": '["x", []]'}),
        ("raw", {"eid": "[[]]"}),
        ("hashed", {"eid": "[[]]"}),
        ("prefixed", {"eid": "[[]]"}),
        ("tokens", {"eid": "[[]]"}),
        ("ordered", {"eid": "[[]]"}),
        ("docs", {"eid": '["x", [1]]'}),  # only the empty array is a wildcard
    ],
)
async def test_wildcard_where_it_is_not_allowed_is_400(api, table, params) -> None:
    (await api.rows(table, params)).problem(400)


async def test_wildcard_in_delete_and_post_is_400(api, uid) -> None:
    await api.put("docs", [uid, "a"], {"info": {"label": [{"value": "kept"}]}})
    (await api.delete("docs", {"eid": [uid, []]})).problem(400, "eid")
    (await api.delete("docs", {"eids": [[uid, []]]})).problem(400, "eids")
    answer = await api.post("docs", [{"entityId": [uid, []], "cells": {"info": {"label": [{"value": "x"}]}}}])
    answer.problem(400, "[0].entityId")
    rows = (await api.rows("docs", {"eid": [uid, "a"]})).rows
    assert rows[0]["cells"]["info"]["label"][0]["value"] == "kept"
