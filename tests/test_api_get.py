"""GET rows (api.md "GET rows"): entity-ID encodings, eids, ranges, whole table, limit, cols,
versions, timerange, empty and ambiguous parameters. Every test writes its own rows (`uid`)."""

from __future__ import annotations

import pytest

#: encodings.md §1.11, verbatim
VECTOR_EID = ["component1", "component2", "component3", 123, 321]
VECTOR_HEX = "3f0b636f6d706f6e656e743100636f6d706f6e656e743200636f6d706f6e656e7433008000007b8000000000000141"
VECTOR_TEXT = (
    r"hbase=?\x0Bcomponent1\x00component2\x00component3\x00"
    r"\x80\x00\x00{\x80\x00\x00\x00\x00\x00\x01A"
)


def label(value: str, ts: int | None = None) -> dict:
    cell: dict = {"value": value}
    if ts is not None:
        cell["timestamp"] = ts
    return {"info": {"label": [cell]}}


def entity_ids(rows: list[dict]) -> list:
    return [r["entityId"] for r in rows]


def pad(*components: object) -> list:
    """A docs entity ID as the API shows it: five components, trailing nulls."""
    return list(components) + [None] * (5 - len(components))


# -- entity IDs -------------------------------------------------------------------------------------


async def test_eid_in_all_three_encodings(api, uid) -> None:
    assert api.docs_key(*VECTOR_EID).hex() == VECTOR_HEX  # the helper agrees with the spec vector
    await api.put("docs", VECTOR_EID, label(uid))
    by_array = await api.rows("docs", {"eid": VECTOR_EID})
    rows = by_array.rows
    assert len(rows) == 1
    assert rows[0]["entityId"] == VECTOR_EID
    assert rows[0]["cells"]["info"]["label"][0]["value"] == uid
    by_text = await api.rows("docs", {"eid": VECTOR_TEXT})
    by_hex = await api.rows("docs", {"eid": "hbase_hex=" + VECTOR_HEX})
    by_upper_hex = await api.rows("docs", {"eid": "hbase_hex=" + VECTOR_HEX.upper()})
    assert by_text.rows == by_hex.rows == by_upper_hex.rows == rows


async def test_eid_single_quoted_strings_are_accepted(api, uid) -> None:
    await api.put("docs", [uid, "makedonia"], label("Seleukos"))
    strict = (await api.rows("docs", {"eid": f'["{uid}","makedonia"]'})).rows
    lenient = (await api.rows("docs", {"eid": f"['{uid}','makedonia']"})).rows
    assert lenient == strict
    assert strict[0]["entityId"] == pad(uid, "makedonia")
    assert strict[0]["cells"]["info"]["label"][0]["value"] == "Seleukos"


async def test_eid_of_a_missing_row_answers_empty_cells(api, uid) -> None:
    answer = await api.rows("docs", {"eid": [uid, "nobody"]})
    assert answer.rows == [{"entityId": pad(uid, "nobody"), "cells": {}}]


async def test_short_eid_is_a_point_get_with_trailing_nulls(api, uid) -> None:
    await api.put("docs", [uid], label("one"))
    await api.put("docs", [uid, "b"], label("two"))
    for eid in ([uid], [uid, None], [uid, None, None, None, None]):
        rows = (await api.rows("docs", {"eid": eid})).rows
        assert len(rows) == 1
        assert rows[0]["entityId"] == pad(uid)
        assert rows[0]["cells"]["info"]["label"][0]["value"] == "one"


async def test_hbase_text_and_hex_address_any_raw_key(api, uid) -> None:
    await api.put("raw", [uid + "\\x41 é"], {"info": {"name": [{"value": "n"}]}})
    key = (uid + "\\x41 é").encode()
    expected_entity = "hbase=" + uid + "\\x5Cx41 \\xC3\\xA9"
    for eid in (
        api.hbase_eid(key),
        "hbase_hex=" + key.hex(),
        "hbase=" + uid + "\\x5Cx41 \xc3\xa9",  # characters up to U+00FF stand for one byte each
        [uid + "\\x41 é"],
    ):
        rows = (await api.rows("raw", {"eid": eid})).rows
        assert len(rows) == 1, eid
        assert rows[0]["entityId"] == expected_entity, eid
        assert rows[0]["cells"]["info"]["name"][0]["value"] == "n", eid


async def test_hbase_text_lowercase_hex_escape_is_not_an_escape(api, uid) -> None:
    """§1.8: `\\x0b` is not uppercase hex, so it reads as the three bytes `x0b`."""
    await api.put("raw", [uid + "x0b"], {"info": {"name": [{"value": "lower"}]}})
    rows = (await api.rows("raw", {"eid": "hbase=" + uid + "\\x0b"})).rows
    assert rows[0]["entityId"] == "hbase=" + uid + "x0b"
    assert rows[0]["cells"]["info"]["name"][0]["value"] == "lower"


# -- eids -----------------------------------------------------------------------------------------


async def test_eids_order_duplicates_and_missing_rows(api, uid) -> None:
    await api.put("docs", [uid, "a"], label("A"))
    await api.put("docs", [uid, "b"], label("B"))
    eids = [[uid, "b"], [uid, "a"], [uid, "zz"], [uid, "b"], api.hbase_eid(api.docs_key(uid, "a"))]
    rows = (await api.rows("docs", {"eids": eids})).rows
    assert entity_ids(rows) == [pad(uid, "b"), pad(uid, "a"), pad(uid, "zz"), pad(uid, "b"), pad(uid, "a")]
    labels = [r["cells"].get("info", {}).get("label", [{}])[0].get("value") for r in rows]
    assert labels == ["B", "A", None, "B", "A"]
    assert rows[2]["cells"] == {}


async def test_eids_limit(api, uid) -> None:
    eids = [[uid, c] for c in "abc"]
    assert entity_ids((await api.rows("docs", {"eids": eids, "limit": 2})).rows) == [
        pad(uid, "a"),
        pad(uid, "b"),
    ]
    assert (await api.rows("docs", {"eids": eids, "limit": 0})).body == b""
    assert len((await api.rows("docs", {"eids": eids, "limit": -1})).rows) == 3


async def test_eids_default_limit_is_all_requested_ids(api, uid) -> None:
    eids = [[uid, f"r{i:03d}"] for i in range(130)]
    rows = (await api.rows("docs", {"eids": eids})).rows
    assert entity_ids(rows) == [pad(*e) for e in eids]


# -- ranges ---------------------------------------------------------------------------------------


async def _abcd(api, uid: str) -> None:
    await api.post("docs", [{"entityId": [uid, c], "cells": label(c.upper())} for c in "abcd"])


async def test_range_scan_is_start_inclusive_end_exclusive(api, uid) -> None:
    await _abcd(api, uid)
    rows = (await api.rows("docs", {"start_eid": [uid, "b"], "end_eid": [uid, "d"]})).rows
    assert entity_ids(rows) == [pad(uid, "b"), pad(uid, "c")]
    assert [r["cells"]["info"]["label"][0]["value"] for r in rows] == ["B", "C"]


async def test_range_with_one_bound_missing(api, uid) -> None:
    await _abcd(api, uid)
    rows = (await api.rows("docs", {"start_eid": [uid, "c"], "limit": -1})).rows
    assert rows[0]["entityId"] == pad(uid, "c")
    assert [r["entityId"] for r in rows if r["entityId"][0] == uid] == [pad(uid, "c"), pad(uid, "d")]
    rows = (await api.rows("docs", {"start_eid": [uid, "c"], "limit": 2})).rows
    assert entity_ids(rows) == [pad(uid, "c"), pad(uid, "d")]
    rows = (await api.rows("docs", {"end_eid": [uid, "b"], "limit": -1})).rows
    assert rows[-1]["entityId"] == pad(uid, "a")
    assert [r["entityId"] for r in rows if r["entityId"][0] == uid] == [pad(uid, "a")]


async def test_range_with_partial_bounds(api, uid) -> None:
    for entity in ([uid], [uid, "a"], [uid, "a", "x"], [uid, "a", "x", 5], [uid, "b"]):
        await api.put("docs", entity, label(str(entity)))
    rows = (await api.rows("docs", {"start_eid": [uid], "end_eid": [uid, "a"]})).rows
    assert entity_ids(rows) == [pad(uid)]  # a key with trailing nulls sorts before its extensions
    rows = (await api.rows("docs", {"start_eid": [uid, "a"], "end_eid": [uid, "b"]})).rows
    assert entity_ids(rows) == [pad(uid, "a"), pad(uid, "a", "x"), pad(uid, "a", "x", 5)]
    # a partial end bound excludes every row that extends it
    rows = (await api.rows("docs", {"start_eid": [uid], "end_eid": [uid, "a", "x"]})).rows
    assert entity_ids(rows) == [pad(uid), pad(uid, "a")]


async def test_partial_bound_relaxes_the_nullable_index(api, uid) -> None:
    """users: login is required in an entity ID (nsi 2), but a bound may leave it out."""
    for login in ("ann", "bob"):
        await api.put("users", [uid, login], {"profile": {"full_name": [{"value": login.title()}]}})
    rows = (await api.rows("users", {"start_eid": [uid], "end_eid": [uid, "bob"]})).rows
    assert entity_ids(rows) == [[uid, "ann"]]
    (await api.rows("users", {"eid": [uid]})).problem(400, "eid")


@pytest.mark.parametrize("bounds", [("c", "b"), ("c", "c"), ("d", "a")])
async def test_range_with_stop_not_after_start_is_empty(api, uid, bounds) -> None:
    await _abcd(api, uid)
    answer = await api.rows("docs", {"start_eid": [uid, bounds[0]], "end_eid": [uid, bounds[1]]})
    assert answer.status == 200
    assert answer.body == b""


async def test_range_with_raw_bounds(api, uid) -> None:
    await _abcd(api, uid)
    start = "hbase_hex=" + api.docs_key(uid, "b").hex()
    end = api.hbase_eid(api.docs_key(uid, "c") + b"\x00")
    rows = (await api.rows("docs", {"start_eid": start, "end_eid": end})).rows
    assert entity_ids(rows) == [pad(uid, "b"), pad(uid, "c")]


async def test_whole_table_in_hbase_key_order(api) -> None:
    """`ordered` (RAW keys) is written by this test only, always with these rows."""
    keys = ["b", "a", "ab", "B", "é", "a b"]
    await api.post("ordered", [{"entityId": [k], "cells": {"info": {"name": [{"value": k}]}}} for k in keys])
    rows = (await api.rows("ordered")).rows
    ordered = sorted(keys, key=lambda k: k.encode())
    assert entity_ids(rows) == [api.hbase_eid(k.encode()) for k in ordered]
    assert [r["cells"]["info"]["name"][0]["value"] for r in rows] == ordered


# -- limit ----------------------------------------------------------------------------------------


async def test_scan_limit_default_and_explicit(api, uid) -> None:
    names = [f"r{i:03d}" for i in range(105)]
    await api.post("docs", [{"entityId": [uid, n], "cells": label(n)} for n in names])
    wildcard = [uid, []]
    assert entity_ids((await api.rows("docs", {"eid": wildcard})).rows) == [pad(uid, n) for n in names[:100]]
    assert entity_ids((await api.rows("docs", {"eid": wildcard, "limit": -1})).rows) == [
        pad(uid, n) for n in names
    ]
    assert entity_ids((await api.rows("docs", {"eid": wildcard, "limit": 3})).rows) == [
        pad(uid, n) for n in names[:3]
    ]
    zero = await api.rows("docs", {"eid": wildcard, "limit": 0})
    assert zero.status == 200 and zero.body == b""
    ranged = (await api.rows("docs", {"start_eid": [uid], "end_eid": [uid, "s"]})).rows
    assert entity_ids(ranged) == [pad(uid, n) for n in names[:100]]


async def test_limit_counts_only_rows_sent(api, uid) -> None:
    await api.put("docs", [uid, "a"], {"info": {"count": [{"value": 1}]}})
    await api.put("docs", [uid, "b"], {"info": {"count": [{"value": 2}]}})
    for c in "cde":
        await api.put("docs", [uid, c], label(c))
    rows = (await api.rows("docs", {"eid": [uid, []], "cols": "info:label", "limit": 2})).rows
    assert entity_ids(rows) == [pad(uid, "c"), pad(uid, "d")]
    rows = (
        await api.rows("docs", {"start_eid": [uid], "end_eid": [uid, "z"], "cols": "info:label", "limit": 2})
    ).rows
    assert entity_ids(rows) == [pad(uid, "c"), pad(uid, "d")]


@pytest.mark.parametrize("limit", ["-2", "-100", "abc", "1.5", "1e3"])
async def test_bad_limit_is_400(api, uid, limit) -> None:
    (await api.rows("docs", {"eid": [uid, []], "limit": limit})).problem(400, "limit")
    (await api.rows("docs", {"start_eid": [uid], "limit": limit})).problem(400, "limit")


# -- cols -----------------------------------------------------------------------------------------


async def _columns_row(api, uid: str) -> None:
    await api.put(
        "docs",
        [uid, "r"],
        {
            "info": {"label": [{"value": "L"}], "count": [{"value": 9}]},
            "extra": {"note": [{"value": "N"}]},
            "tags": {"x": [{"value": "X"}], "a:b": [{"value": "AB"}]},
        },
    )


def shown(row: dict) -> dict[str, list]:
    """`family:qualifier` → values, for every column of a row."""
    return {
        f"{f}:{q}": [c["value"] for c in cells]
        for f, qualifiers in row["cells"].items()
        for q, cells in qualifiers.items()
    }


ALL_COLUMNS = {
    "info:label": ["L"],
    "info:count": [9],
    "extra:note": ["N"],
    "tags:x": ["X"],
    "tags:a:b": ["AB"],
}


@pytest.mark.parametrize(
    "cols,expected",
    [
        ("*", list(ALL_COLUMNS)),
        ("", list(ALL_COLUMNS)),
        ("info", ["info:label", "info:count"]),
        ("info:label", ["info:label"]),
        ("i", ["info:label", "info:count"]),
        ("i:lbl", ["info:label"]),
        ("info:lbl", ["info:label"]),
        ("info,info:label", ["info:label", "info:count"]),
        ("info:label,info:label", ["info:label"]),
        ("info:label,extra", ["info:label", "extra:note"]),
        ("tags", ["tags:x", "tags:a:b"]),
        ("tags:a:b", ["tags:a:b"]),
        ("tags:nothing", []),
    ],
)
async def test_cols_selects_columns(api, uid, cols, expected) -> None:
    await _columns_row(api, uid)
    rows = (await api.rows("docs", {"eid": [uid, "r"], "cols": cols})).rows
    assert shown(rows[0]) == {c: ALL_COLUMNS[c] for c in expected}


async def test_cols_with_a_percent_encoded_comma_still_splits(api, uid) -> None:
    """`cols` is split on `,` after the query string is decoded once."""
    await _columns_row(api, uid)
    path = (
        api.rows_path("docs")
        + "?eid="
        + api.compact([uid, "r"]).replace('"', "%22")
        + "&cols=info%3Alabel%2Cextra"
    )
    answer = await api.get(path)
    assert shown(answer.rows[0]) == {"info:label": ["L"], "extra:note": ["N"]}


@pytest.mark.parametrize(
    "cols", ["nope", "info:nope", "nope:x", "info:label,bogus", "extra:label", "i:count,x:y"]
)
async def test_cols_unknown_is_400(api, uid, cols) -> None:
    (await api.rows("docs", {"eid": [uid, "r"], "cols": cols})).problem(400, "cols")
    (await api.rows("docs", {"eid": [uid, []], "cols": cols})).problem(400, "cols")


# -- versions and timerange -------------------------------------------------------------------------


async def _three_versions(api, uid: str) -> None:
    await api.put(
        "docs", [uid, "v"], {"info": {"label": [{"timestamp": t, "value": f"v{t}"} for t in (1, 3, 2)]}}
    )


def stamps(answer) -> list[int]:
    rows = answer.rows
    assert len(rows) == 1
    return [c["timestamp"] for c in rows[0]["cells"].get("info", {}).get("label", [])]


@pytest.mark.parametrize(
    "versions,expected",
    [
        (None, [3]),
        ("1", [3]),
        ("2", [3, 2]),
        ("3", [3, 2, 1]),
        ("9", [3, 2, 1]),
        ("all", [3, 2, 1]),
        ("ALL", [3, 2, 1]),
        ("All", [3, 2, 1]),
    ],
)
async def test_versions(api, uid, versions, expected) -> None:
    await _three_versions(api, uid)
    params = {"eid": [uid, "v"]}
    if versions is not None:
        params["versions"] = versions
    answer = await api.rows("docs", params)
    assert stamps(answer) == expected
    assert [c["value"] for c in answer.rows[0]["cells"]["info"]["label"]] == [f"v{t}" for t in expected]


@pytest.mark.parametrize("versions", ["0", "-1", "x", "1.5", "alll"])
async def test_bad_versions_is_400(api, uid, versions) -> None:
    (await api.rows("docs", {"eid": [uid, "v"], "versions": versions})).problem(400, "versions")


@pytest.mark.parametrize(
    "timerange,versions,expected",
    [
        ("2..3", "all", [2]),
        ("..3", "all", [2, 1]),
        ("2..", "all", [3, 2]),
        ("..", "all", [3, 2, 1]),
        ("1..4", "all", [3, 2, 1]),
        ("..3", "1", [2]),  # versions are counted after the time filter
        ("..3", None, [2]),
        ("1..3", "1", [2]),
        ("4..", "all", []),
    ],
)
async def test_timerange(api, uid, timerange, versions, expected) -> None:
    await _three_versions(api, uid)
    params = {"eid": [uid, "v"], "timerange": timerange}
    if versions is not None:
        params["versions"] = versions
    assert stamps(await api.rows("docs", params)) == expected


async def test_scans_leave_out_rows_with_nothing_in_the_time_range(api, uid) -> None:
    await _three_versions(api, uid)
    await api.put("docs", [uid, "w"], {"info": {"label": [{"timestamp": 10, "value": "late"}]}})
    rows = (await api.rows("docs", {"eid": [uid, []], "timerange": "5..", "versions": "all"})).rows
    assert entity_ids(rows) == [pad(uid, "w")]
    rows = (await api.rows("docs", {"start_eid": [uid], "end_eid": [uid, "z"], "timerange": "..2"})).rows
    assert entity_ids(rows) == [pad(uid, "v")]
    assert rows[0]["cells"]["info"]["label"] == [{"timestamp": 1, "value": "v1", "writer_schema": 0}]


@pytest.mark.parametrize("timerange", ["3..3", "3..2", "abc", "1..x", "-1..5", "5", "1...3", "..-4"])
async def test_bad_timerange_is_400(api, uid, timerange) -> None:
    (await api.rows("docs", {"eid": [uid, "v"], "timerange": timerange})).problem(400, "timerange")


# -- parameters ---------------------------------------------------------------------------------------


async def test_empty_parameters_count_as_absent(api, uid) -> None:
    await _three_versions(api, uid)
    plain = await api.rows("docs", {"eid": [uid, "v"]})
    padded = await api.rows(
        "docs",
        [
            ("eid", [uid, "v"]),
            ("eids", ""),
            ("start_eid", ""),
            ("end_eid", ""),
            ("limit", ""),
            ("versions", ""),
            ("cols", ""),
            ("timerange", ""),
        ],
    )
    assert padded.rows == plain.rows
    assert stamps(padded) == [3]


@pytest.mark.parametrize(
    "extra",
    [
        {"eids": '[["x"]]'},
        {"start_eid": '["x"]'},
        {"end_eid": '["x"]'},
        {"start_eid": '["x"]', "end_eid": '["y"]'},
    ],
)
async def test_more_than_one_group_is_400(api, uid, extra) -> None:
    (await api.rows("docs", {"eid": [uid, "v"], **extra})).problem(400)


async def test_eids_with_a_range_is_400(api, uid) -> None:
    (await api.rows("docs", {"eids": [[uid, "v"]], "start_eid": [uid]})).problem(400)
    (await api.rows("docs", {"eids": [[uid, "v"]], "end_eid": [uid, "z"]})).problem(400)


async def test_freshening_parameters_are_ignored(api, uid) -> None:
    await _three_versions(api, uid)
    plain = await api.rows("docs", {"eid": [uid, "v"]})
    fresh = await api.rows(
        "docs",
        {"eid": [uid, "v"], "freshen": "true", "timeout": "10", "fresh.info:label": "x", "fresh.a": "b"},
    )
    assert fresh.rows == plain.rows


@pytest.mark.parametrize("name", ["eid", "versions", "cols", "limit"])
async def test_a_parameter_repeated_with_different_values_is_ambiguous(api, uid, name) -> None:
    first = {"eid": api.compact([uid, "v"]), "versions": "1", "cols": "info", "limit": "1"}
    second = {"eid": api.compact([uid, "w"]), "versions": "2", "cols": "extra", "limit": "2"}
    params = [(k, v) for k, v in first.items()] + [(name, second[name])]
    (await api.rows("docs", params)).problem(400, name)


# -- retention (encodings.md §5) ------------------------------------------------------------------------


async def test_family_max_versions_caps_what_is_returned(api, uid) -> None:
    """`raw` keeps 3 versions per column (its locality group's max_versions)."""
    await api.put("raw", [uid], {"info": {"name": [{"timestamp": t, "value": f"n{t}"} for t in range(1, 6)]}})
    rows = (await api.rows("raw", {"eid": [uid], "versions": "all"})).rows
    assert [c["timestamp"] for c in rows[0]["cells"]["info"]["name"]] == [5, 4, 3]


async def test_same_timestamp_keeps_the_later_value(api, uid) -> None:
    await api.put("docs", [uid, "s"], {"info": {"label": [{"timestamp": 5, "value": "first"}]}})
    await api.put("docs", [uid, "s"], {"info": {"label": [{"timestamp": 5, "value": "second"}]}})
    rows = (await api.rows("docs", {"eid": [uid, "s"], "versions": "all"})).rows
    assert rows[0]["cells"]["info"]["label"] == [{"timestamp": 5, "value": "second", "writer_schema": 0}]


async def test_family_ttl_hides_old_cells(api, uid) -> None:
    """`fleeting` has a one-hour TTL: a cell an hour and more old is invisible at once."""
    now = api.now_ms()
    old = now - 2 * 3600 * 1000
    await api.put(
        "fleeting",
        [uid],
        {"info": {"name": [{"timestamp": old, "value": "old"}, {"timestamp": now, "value": "new"}]}},
    )
    await api.put("fleeting", [uid + "x"], {"info": {"name": [{"timestamp": old, "value": "old"}]}})
    rows = (await api.rows("fleeting", {"eid": [uid], "versions": "all"})).rows
    assert [c["value"] for c in rows[0]["cells"]["info"]["name"]] == ["new"]
    rows = (await api.rows("fleeting", {"eid": [uid + "x"]})).rows
    assert rows == [{"entityId": [uid + "x"], "cells": {}}]


async def test_single_quoted_strings_take_escapes(api, uid) -> None:
    await api.put("docs", [uid, "o'neil"], label("quoted"))
    rows = (await api.rows("docs", {"eid": f"['{uid}','o\\'neil']"})).rows
    assert rows[0]["entityId"] == pad(uid, "o'neil")
    assert rows[0]["cells"]["info"]["label"][0]["value"] == "quoted"


async def test_plus_in_a_query_string_is_a_space(api, uid) -> None:
    """§1.8: the hbase= text is what remains after URL decoding; `+` is already a space."""
    await api.put("raw", [uid + " b"], {"info": {"name": [{"value": "spaced"}]}})
    answer = await api.get(api.rows_path("raw") + "?eid=hbase%3D" + uid + "+b")
    assert answer.rows[0]["entityId"] == "hbase=" + uid + " b"
    assert answer.rows[0]["cells"]["info"]["name"][0]["value"] == "spaced"


async def test_empty_eids_is_an_empty_body(api) -> None:
    answer = await api.rows("docs", {"eids": []})
    assert answer.status == 200
    assert answer.body == b""
