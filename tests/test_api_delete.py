"""DELETE rows (api.md "DELETE rows", encodings.md §5): eid xor eids, whole rows, families, columns,
versions up to a timestamp, delete markers."""

from __future__ import annotations

import asyncio

import pytest


def pad(*components: object) -> list:
    return list(components) + [None] * (5 - len(components))


async def _row(api, entity: list) -> None:
    await api.put(
        "docs",
        entity,
        {
            "info": {
                "label": [{"timestamp": t, "value": f"l{t}"} for t in (10, 20, 30)],
                "count": [{"timestamp": 10, "value": 1}],
            },
            "extra": {"note": [{"timestamp": 10, "value": "n"}]},
            "tags": {"x": [{"timestamp": 10, "value": "X"}], "y": [{"timestamp": 20, "value": "Y"}]},
        },
    )


async def columns(api, entity: list) -> dict[str, list[int]]:
    rows = (await api.rows("docs", {"eid": entity, "versions": "all"})).rows
    assert len(rows) == 1
    return {
        f"{f}:{q}": [c["timestamp"] for c in cs] for f, qs in rows[0]["cells"].items() for q, cs in qs.items()
    }


FULL = {"info:label": [30, 20, 10], "info:count": [10], "extra:note": [10], "tags:x": [10], "tags:y": [20]}


async def _deleted(api, params: dict) -> None:
    answer = await api.delete("docs", params)
    assert answer.status == 200, answer.body
    assert answer.content_type == "application/json"
    assert answer.json() is True


async def test_delete_whole_row(api, uid) -> None:
    await _row(api, [uid, "a"])
    await _row(api, [uid, "b"])
    await _deleted(api, {"eid": [uid, "a"]})
    assert await columns(api, [uid, "a"]) == {}
    assert await columns(api, [uid, "b"]) == FULL
    rows = (await api.rows("docs", {"eid": [uid, []]})).rows
    assert [r["entityId"] for r in rows] == [pad(uid, "b")]


async def test_delete_several_rows_with_eids(api, uid) -> None:
    for c in "abc":
        await _row(api, [uid, c])
    await _deleted(api, {"eids": [[uid, "a"], api.hbase_eid(api.docs_key(uid, "c")), [uid, "zz"]]})
    assert await columns(api, [uid, "a"]) == {}
    assert await columns(api, [uid, "b"]) == FULL
    assert await columns(api, [uid, "c"]) == {}


@pytest.mark.parametrize(
    "cols,gone",
    [
        ("*", list(FULL)),
        ("info", ["info:label", "info:count"]),
        ("i", ["info:label", "info:count"]),
        ("info:label", ["info:label"]),
        ("i:lbl", ["info:label"]),
        ("info:label,extra", ["info:label", "extra:note"]),
        ("tags", ["tags:x", "tags:y"]),
        ("tags:y", ["tags:y"]),
        ("tags:nothing", []),
    ],
)
async def test_delete_columns(api, uid, cols, gone) -> None:
    await _row(api, [uid, "a"])
    await _deleted(api, {"eid": [uid, "a"], "cols": cols})
    assert await columns(api, [uid, "a"]) == {c: ts for c, ts in FULL.items() if c not in gone}


@pytest.mark.parametrize(
    "params,left",
    [
        ({"timestamp": "20"}, {"info:label": [30]}),
        ({"timestamp": "19"}, {"info:label": [30, 20], "tags:y": [20]}),
        ({"timestamp": "20", "cols": "info:label"}, {**FULL, "info:label": [30]}),
        ({"timestamp": "10", "cols": "tags"}, {**{c: t for c, t in FULL.items() if c != "tags:x"}}),
        ({"timestamp": "9"}, FULL),
    ],
)
async def test_delete_versions_up_to_a_timestamp(api, uid, params, left) -> None:
    await _row(api, [uid, "a"])
    await _deleted(api, {"eid": [uid, "a"], **params})
    assert await columns(api, [uid, "a"]) == left


async def test_delete_of_a_missing_row_answers_true(api, uid) -> None:
    await _deleted(api, {"eid": [uid, "never"]})
    await _deleted(api, {"eid": [uid, "never"], "cols": "info:label", "timestamp": "5"})
    await _deleted(api, {"eid": "hbase_hex=00ff"})  # any raw key, even one that does not decode


async def test_delete_markers_hide_later_writes_with_older_timestamps(api, uid) -> None:
    await _row(api, [uid, "a"])
    await _deleted(api, {"eid": [uid, "a"]})  # at the server's clock
    await api.put("docs", [uid, "a"], {"info": {"label": [{"timestamp": 40, "value": "old"}]}})
    assert await columns(api, [uid, "a"]) == {}
    await asyncio.sleep(0.01)  # a later clock than the delete's
    await api.put("docs", [uid, "a"], {"info": {"label": [{"value": "now"}]}})
    assert (await columns(api, [uid, "a"]))["info:label"][0] >= api.now_ms() - 60_000


async def test_delete_with_a_timestamp_marks_only_up_to_it(api, uid) -> None:
    await _row(api, [uid, "a"])
    await _deleted(api, {"eid": [uid, "a"], "cols": "info:label", "timestamp": "25"})
    await api.put("docs", [uid, "a"], {"info": {"label": [{"timestamp": 24, "value": "hidden"}]}})
    await api.put("docs", [uid, "a"], {"info": {"label": [{"timestamp": 26, "value": "shown"}]}})
    assert (await columns(api, [uid, "a"]))["info:label"] == [30, 26]


async def test_delete_counter(api, uid) -> None:
    await api.put("kinds", [uid], {"v": {"hits": [{"value": {"incr": 3}}], "str": [{"value": "s"}]}})
    answer = await api.delete("kinds", {"eid": [uid], "cols": "v:hits"})
    assert answer.status == 200 and answer.json() is True
    rows = (await api.rows("kinds", {"eid": [uid]})).rows
    assert list(rows[0]["cells"]["v"]) == ["str"]


@pytest.mark.parametrize(
    "params,where",
    [
        ({}, None),
        ({"eid": "", "eids": ""}, None),
        ({"eid": '["x", "a"]', "eids": '[["x", "b"]]'}, None),
        ({"start_eid": '["x"]'}, None),
        ({"eid": '["x"'}, "eid"),
        ({"eid": '["x", "a", "b", "c", 1, 2]'}, "eid"),
        ({"eids": '["x"'}, "eids"),
        ({"eids": "5"}, "eids"),
        ({"eid": '["x", "a"]', "cols": "nope"}, "cols"),
        ({"eid": '["x", "a"]', "cols": "info:nope"}, "cols"),
        ({"eid": '["x", "a"]', "timestamp": "-1"}, "timestamp"),
        ({"eid": '["x", "a"]', "timestamp": "abc"}, "timestamp"),
        ({"eid": '["x", "a"]', "timestamp": "1.5"}, "timestamp"),
        ({"eid": '["x", "a"]', "timestamp": str(2**63 - 1)}, "timestamp"),
    ],
)
async def test_bad_deletes_are_400_and_delete_nothing(api, uid, params, where) -> None:
    params = {k: v.replace('"x"', f'"{uid}"') for k, v in params.items()}
    await _row(api, [uid, "a"])
    await _row(api, [uid, "b"])
    (await api.delete("docs", params)).problem(400, where)
    assert await columns(api, [uid, "a"]) == FULL
    assert await columns(api, [uid, "b"]) == FULL
