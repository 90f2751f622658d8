"""POST rows (api.md "POST rows", encodings.md §3.5): targets, writer schemas, value leniencies and
errors, unknown members, timestamps, counters, all-or-nothing validation, round trips."""

from __future__ import annotations

import asyncio

import pytest

TEAM = (
    '{"type":"record","name":"Team","namespace":"org.test","fields":'
    '[{"name":"id","type":["null","long"]},{"name":"name","type":["null","string"]}]}'
)
PLAYER = (
    '{"type":"record","name":"Player","namespace":"org.test","fields":'
    '[{"name":"name","type":"string"},{"name":"score","type":"long","default":0}]}'
)
PREFIX = "/v1/instances/api/tables"

JSON_BODY = {"Content-Type": "application/json"}


def row(entity, column: str, *cells: dict, family: str = "v") -> dict:
    return {"entityId": entity, "cells": {family: {column: list(cells)}}}


async def cells_of(api, table: str, entity, **params) -> dict:
    rows = (await api.rows(table, {"eid": entity, **params})).rows
    assert len(rows) == 1
    return rows[0]["cells"]


async def only_cell(api, entity, column: str) -> dict:
    cells = await cells_of(api, "kinds", entity)
    (cell,) = cells["v"][column]
    return cell


# -- the answer -----------------------------------------------------------------------------------------


async def test_single_object_and_array_bodies(api, uid) -> None:
    answer = await api.post("kinds", row([uid + "1"], "str", {"value": "one"}))
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.json() == {"targets": [f"{PREFIX}/kinds/rows?eid=%5B%22{uid}1%22%5D"]}
    answer = await api.post(
        "kinds", [row([uid + "3"], "str", {"value": "3"}), row([uid + "2"], "str", {"value": "2"})]
    )
    assert answer.json() == {
        "targets": [
            f"{PREFIX}/kinds/rows?eid=%5B%22{uid}3%22%5D",
            f"{PREFIX}/kinds/rows?eid=%5B%22{uid}2%22%5D",
        ]
    }
    for suffix in "123":
        assert (await only_cell(api, [uid + suffix], "str"))["value"] in ("one", "2", "3")


async def test_targets_are_java_url_encoded(api, uid) -> None:
    number = int(uid[1:13], 16)
    cases = [
        ("longs", [54321], f"{PREFIX}/longs/rows?eid=%5B54321%5D"),
        ("docs", ["a b", "é/+*~.-_"], f"{PREFIX}/docs/rows?eid=%5B%22a+b%22%2C%22%C3%A9%2F%2B*%7E.-_%22%5D"),
        ("docs", [uid, "x y", "", -1, 2**40], None),
        ("longs", [number], f"{PREFIX}/longs/rows?eid=%5B{number}%5D"),
        ("raw", "hbase=" + uid + "\\x41b", f"{PREFIX}/raw/rows?eid=hbase%3D{uid}%5Cx41b"),
        (
            "raw",
            "hbase_hex=" + (uid + "h").encode().hex(),
            f"{PREFIX}/raw/rows?eid=hbase_hex%3D{(uid + 'h').encode().hex()}",
        ),
        ("prefixed", [uid + "ünï"], None),
    ]
    for table, entity, expected in cases:
        family = "info"
        column = {"docs": "label"}.get(table, "name")
        answer = await api.post(table, row(entity, column, {"value": "t"}, family=family))
        assert answer.status == 200, (entity, answer.body)
        if expected is None:
            expected = f"{PREFIX}/{table}/rows?eid=" + api.java_urlencode(api.compact(entity))
        assert answer.json() == {"targets": [expected]}
        # a target leads to the row
        got = await api.get(expected)
        rows = got.rows
        assert len(rows) == 1 and rows[0]["cells"]["info"][column][0]["value"] == "t", expected


async def test_hbase_entity_id_on_a_raw_table_is_the_decoded_key(api, uid) -> None:
    await api.put("raw", "hbase=" + uid + "\\x41\\x00", {"info": {"name": [{"value": "esc"}]}})
    rows = (await api.rows("raw", {"eid": [uid + "A\u0000"]})).rows
    assert rows[0]["entityId"] == "hbase=" + uid + "A\\x00"
    assert rows[0]["cells"]["info"]["name"][0]["value"] == "esc"


async def test_hbase_key_that_does_not_decode_on_a_formatted_table_is_400(api, uid) -> None:
    bad = api.docs_key(uid, "b", "c") + b"\x80\x00"
    for entity in (api.hbase_eid(bad), "hbase_hex=" + bad.hex(), "hbase=\\x01", "hbase_hex=00"):
        answer = await api.post("docs", [row(entity, "label", {"value": "x"}, family="info")])
        answer.problem(400, "[0].entityId")
    (await api.post("docs", row("hbase=", "label", {"value": "x"}, family="info"))).problem(400)
    rows = (await api.rows("docs", {"eid": api.hbase_eid(bad)})).rows
    assert rows[0]["cells"] == {}
    good = api.docs_key(uid, "b")
    await api.put("docs", api.hbase_eid(good), {"info": {"label": [{"value": "via hbase="}]}})
    cells = await cells_of(api, "docs", [uid, "b"])
    assert cells["info"]["label"][0]["value"] == "via hbase="


async def test_query_parameters_on_post_are_ignored(api, uid) -> None:
    answer = await api.post(
        "kinds", row([uid], "str", {"value": "q"}), params={"eid": ["other"], "cols": "nope", "versions": "0"}
    )
    assert answer.status == 200, answer.body
    assert (await only_cell(api, [uid], "str"))["value"] == "q"


# -- writer schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [0, "string", {"type": "string"}, None])
async def test_writer_schema_as_uid_as_schema_or_missing(api, uid, writer) -> None:
    cell = {"timestamp": 3, "value": "w"}
    if writer is not None:
        cell["writer_schema"] = writer
    await api.put("kinds", [uid], {"v": {"str": [cell]}})
    assert await only_cell(api, [uid], "str") == {"timestamp": 3, "value": "w", "writer_schema": 0}


async def test_writer_schema_promoted_to_the_reader(api, uid) -> None:
    await api.put(
        "kinds",
        [uid],
        {
            "v": {
                "long": [{"timestamp": 1, "value": 5, "writer_schema": "int"}],
                "dbl": [{"timestamp": 1, "value": 6, "writer_schema": 3}],
                "opt": [{"timestamp": 1, "value": "s", "writer_schema": "string"}],
            }
        },
    )
    v = (await cells_of(api, "kinds", [uid]))["v"]
    assert v["long"] == [{"timestamp": 1, "value": 5, "writer_schema": 2}]
    assert v["dbl"] == [{"timestamp": 1, "value": 6.0, "writer_schema": 3}]
    assert isinstance(v["dbl"][0]["value"], float)
    assert v["opt"] == [{"timestamp": 1, "value": "s", "writer_schema": 0}]


async def test_missing_writer_schema_takes_the_column_schema(api, uid) -> None:
    await api.put(
        "kinds",
        [uid],
        {
            "v": {
                "avro": [{"timestamp": 1, "value": 11}],  # AVRO: its default reader, "long"
                "strict": [{"timestamp": 1, "value": 12}],
                "player": [{"timestamp": 1, "value": {"name": "p", "score": 1}}],  # CLASS
                "rec": [{"timestamp": 1, "value": {"id": {"long": 2}, "name": None}}],
            }
        },
    )
    v = (await cells_of(api, "kinds", [uid]))["v"]
    assert v["avro"] == [{"timestamp": 1, "value": 11, "writer_schema": 3}]
    assert v["strict"] == [{"timestamp": 1, "value": 12, "writer_schema": 3}]
    assert v["player"] == [
        {"timestamp": 1, "value": {"name": "p", "score": 1}, "writer_schema": await api.uid_of(PLAYER)}
    ]
    assert v["rec"] == [
        {"timestamp": 1, "value": {"id": {"long": 2}, "name": None}, "writer_schema": await api.uid_of(TEAM)}
    ]


async def test_avro_column_without_default_reader_needs_a_writer_schema(api, uid) -> None:
    (await api.post("kinds", [row([uid], "free", {"value": "x"})])).problem(400, "[0].cells.v.free[0]")
    await api.put(
        "kinds", [uid], {"v": {"free": [{"timestamp": 2, "value": "x", "writer_schema": "string"}]}}
    )
    await api.put(
        "kinds",
        [uid],
        {
            "v": {
                "free": [
                    {"timestamp": 3, "value": [1, 2], "writer_schema": {"type": "array", "items": "int"}}
                ]
            }
        },
    )
    v = (await cells_of(api, "kinds", [uid], versions="all"))["v"]
    arrays = await api.uid_of('{"type":"array","items":"int"}')
    assert v["free"] == [
        {"timestamp": 3, "value": [1, 2], "writer_schema": arrays},
        {"timestamp": 2, "value": "x", "writer_schema": 0},
    ]


@pytest.mark.parametrize(
    "column,writer,value",
    [
        ("str", 987654321, "x"),  # an unknown UID
        ("str", -1, "x"),
        ("str", {"type": "nope"}, "x"),  # not a schema
        ("str", "Nonexistent", "x"),
        ("str", '{"type": "string"', "x"),
        ("long", "string", "x"),  # does not resolve to the reader
        ("long", 0, "x"),  # the same, given as a UID
        ("str", "long", 5),
        ("rec", "string", "x"),
        (
            "color",
            {"type": "enum", "name": "Color", "namespace": "org.test", "symbols": ["RED", "PINK"]},
            "PINK",
        ),
        ("strict", "int", 5),  # STRICT: resolvable but not among the column's writers
        ("strict", "string", "x"),
        ("final", "bytes", "x"),  # INLINE FINAL: only the column schema
        ("final", "int", 5),
    ],
)
async def test_writer_schema_errors_are_400(api, uid, column, writer, value) -> None:
    before = await api.entries()
    answer = await api.post(
        "kinds", [row([uid], column, {"timestamp": 1, "value": value, "writer_schema": writer})]
    )
    answer.problem(400, f"[0].cells.v.{column}[0]")
    assert (await cells_of(api, "kinds", [uid])) == {}
    assert await api.entries() == before


async def test_developer_policy_admits_any_readable_writer(api, uid) -> None:
    await api.put("kinds", [uid], {"v": {"avro": [{"timestamp": 4, "value": 5, "writer_schema": "int"}]}})
    assert await only_cell(api, [uid], "avro") == {"timestamp": 4, "value": 5, "writer_schema": 2}


async def test_strict_policy_admits_listed_writers(api, uid) -> None:
    await api.put("kinds", [uid], {"v": {"strict": [{"timestamp": 4, "value": 5, "writer_schema": "long"}]}})
    assert await only_cell(api, [uid], "strict") == {"timestamp": 4, "value": 5, "writer_schema": 3}


# -- values ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column,posted,shown",
    [
        ("opt", "bare", "bare"),  # a bare value for a top-level union
        ("opt", {"string": "tagged"}, "tagged"),
        ("long", "123", 123),  # JSON text in a string where the schema is not a string
        ("long", 123, 123),
        ("dbl", "1.5", 1.5),
        ("color", '"RED"', "RED"),
        ("color", "RED", "RED"),
        ("rec", '{"id": {"long": 1}, "name": null}', {"id": {"long": 1}, "name": None}),
        ("map", '{"a": 1}', {"a": 1}),
        ("str", '"quoted"', '"quoted"'),  # a string schema takes the text as it is
        ("str", "123", "123"),
    ],
)
async def test_value_leniencies(api, uid, column, posted, shown) -> None:
    await api.put("kinds", [uid], {"v": {column: [{"timestamp": 2, "value": posted}]}})
    cell = await only_cell(api, [uid], column)
    assert cell["value"] == shown
    assert type(cell["value"]) is type(shown)


@pytest.mark.parametrize(
    "column,value",
    [
        ("str", 5),  # a number for a string schema
        ("str", None),
        ("str", ["x"]),
        ("long", "abc"),
        ("long", 1.5),
        ("long", 2**63),
        ("long", True),
        ("int", 2**31),
        ("int", "12x"),
        ("color", "PURPLE"),
        ("bool", "yes"),
        ("rec", {"id": {"long": 1}}),  # a field without default missing
        ("rec", {"id": 1, "name": None}),  # nested unions are wrapped in Avro JSON
        ("fixed", "abc"),  # 3 bytes for a fixed of 4
        ("bytes", "snow ☃"),  # not ISO-8859-1
        ("map", {"a": "x"}),
        ("arr", "x"),
        ("opt", 5),  # no branch of the union matches
        ("dbl", "x"),
        ("player", {"name": 5}),
        ("final", 5),
    ],
)
async def test_value_not_valid_for_its_schema_is_400(api, uid, column, value) -> None:
    answer = await api.post("kinds", [row([uid], column, {"timestamp": 1, "value": value})])
    answer.problem(400, f"[0].cells.v.{column}[0].value")
    assert (await cells_of(api, "kinds", [uid])) == {}


async def test_string_with_a_lone_surrogate_is_400(api, uid) -> None:
    body = ('[{"entityId": ["' + uid + '"], "cells": {"v": {"str": [{"value": "a\\ud800b"}]}}}]').encode()
    (await api.request("POST", api.rows_path("kinds"), data=body, headers=JSON_BODY)).problem(400)
    body = b'{"entityId": ["\\ud800"], "cells": {"v": {"str": [{"value": "x"}]}}}'
    (await api.request("POST", api.rows_path("kinds"), data=body, headers=JSON_BODY)).problem(400)
    assert (await cells_of(api, "kinds", [uid])) == {}


# -- structure errors -----------------------------------------------------------------------------------


async def test_unknown_members_are_400_naming_them(api, uid) -> None:
    typo = [row([uid], "str", {"timestmp": 5, "value": "x"})]
    body = (await api.post("kinds", typo)).problem(400, "[0].cells.v.str[0]")
    assert "timestmp" in body["detail"]
    extra = [{"entityId": [uid], "cells": {"v": {"str": [{"value": "x"}]}}, "entity_id": [uid]}]
    body = (await api.post("kinds", extra)).problem(400, "[0]")
    assert "entity_id" in body["detail"]
    assert (await cells_of(api, "kinds", [uid])) == {}


@pytest.mark.parametrize(
    "cells,where",
    [
        ({"nope": {"x": [{"value": "x"}]}}, "[0].cells.nope"),
        ({"v": {"nope": [{"value": "x"}]}}, "[0].cells.v.nope"),
        ({"v": {"str": {"value": "x"}}}, "[0].cells.v.str"),
        ({"v": {"str": ["x"]}}, "[0].cells.v.str[0]"),
        ({"v": {"str": [{"timestamp": 1}]}}, "[0].cells.v.str[0]"),  # no value
        ({"v": ["str"]}, "[0].cells.v"),
        ([], "[0].cells"),
    ],
)
async def test_bad_cells_are_400(api, uid, cells, where) -> None:
    (await api.post("kinds", [{"entityId": [uid], "cells": cells}])).problem(400, where)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"5",
        b'"x"',
        b"[5]",
        b"null",
        b'{"cells": {}}',
        b'{"entityId": [1], "cells": {}}',
        b'{"entityId": ["a", "b"], "cells": {}}',
        b'{"entityId": "nonsense", "cells": {}}',
        b'{"entityId": [], "cells": {}}',
        b'{"entityId": ["a\\u0000"], "cells": {}}',
    ],
)
async def test_malformed_bodies_are_400(api, body) -> None:
    (await api.request("POST", api.rows_path("kinds"), data=body, headers=JSON_BODY)).problem(400)


async def test_entity_id_errors_use_the_encodings_messages(api, uid) -> None:
    body = (
        await api.post("docs", [row([uid, "a", "b", "c", 1, 2], "label", {"value": "x"}, family="info")])
    ).problem(400, "[0].entityId")
    assert "Too many components in kiji Row Key" in body["detail"]
    body = (await api.post("docs", [row([uid, None, "c"], "label", {"value": "x"}, family="info")])).problem(
        400, "[0].entityId"
    )
    assert "Non null component follows null component" in body["detail"]
    body = (await api.post("users", [row([uid], "full_name", {"value": "x"}, family="profile")])).problem(
        400, "[0].entityId"
    )
    assert "Too few components in kiji Row key" in body["detail"]
    body = (
        await api.post("docs", [row([uid, "a", "b", "nope"], "label", {"value": "x"}, family="info")])
    ).problem(400, "[0].entityId")
    assert "Invalid type for component n at index 3" in body["detail"]


# -- timestamps -----------------------------------------------------------------------------------------


async def test_missing_or_null_timestamps_take_one_server_time_per_row(api, uid) -> None:
    before = api.now_ms()
    await api.put(
        "kinds",
        [uid],
        {
            "v": {
                "str": [{"value": "a"}],
                "long": [{"value": 1, "timestamp": None}],
                "int": [{"value": 2}],
                "dbl": [{"value": 3.0, "timestamp": 77}],
            },
            "m": {"q": [{"value": "b"}]},
        },
    )
    after = api.now_ms()
    cells = await cells_of(api, "kinds", [uid])
    stamps = {cells["v"][c][0]["timestamp"] for c in ("str", "long", "int")} | {
        cells["m"]["q"][0]["timestamp"]
    }
    assert len(stamps) == 1
    assert before <= stamps.pop() <= after
    assert cells["v"]["dbl"][0]["timestamp"] == 77


@pytest.mark.parametrize("ts", [-1, -(2**63), 2**63 - 1, 2**63, "5", 1.5, True, [1]])
async def test_bad_timestamps_are_400(api, uid, ts) -> None:
    answer = await api.post("kinds", [row([uid], "str", {"timestamp": ts, "value": "x"})])
    answer.problem(400, "[0].cells.v.str[0].timestamp")
    assert (await cells_of(api, "kinds", [uid])) == {}


async def test_largest_timestamps_below_latest_are_kept(api, uid) -> None:
    await api.put(
        "kinds",
        [uid],
        {"v": {"str": [{"timestamp": 2**63 - 2, "value": "far"}, {"timestamp": 0, "value": "zero"}]}},
    )
    v = (await cells_of(api, "kinds", [uid], versions="all"))["v"]
    assert v["str"] == [
        {"timestamp": 2**63 - 2, "value": "far", "writer_schema": 0},
        {"timestamp": 0, "value": "zero", "writer_schema": 0},
    ]


# -- counters -------------------------------------------------------------------------------------------


async def test_counter_set_and_increment(api, uid) -> None:
    await api.put(
        "kinds", [uid], {"v": {"hits": [{"timestamp": 100, "value": 5, "writer_schema": "string"}]}}
    )
    assert await only_cell(api, [uid], "hits") == {"timestamp": 100, "value": 5, "writer_schema": 3}
    await api.put("kinds", [uid], {"v": {"hits": [{"value": {"incr": 3}}]}})
    assert (await only_cell(api, [uid], "hits"))["value"] == 8
    await api.put("kinds", [uid], {"v": {"hits": [{"value": {"incr": -10}, "timestamp": None}]}})
    assert (await only_cell(api, [uid], "hits"))["value"] == -2
    await api.put("longs", [int(uid[1:13], 16)], {"info": {"logins": [{"value": {"incr": 4}}]}})
    cells = await cells_of(api, "longs", [int(uid[1:13], 16)])
    assert cells["info"]["logins"][0]["value"] == 4  # a counter never set counts from 0
    assert cells["info"]["logins"][0]["writer_schema"] == 3


async def test_counter_increments_are_atomic(api, uid) -> None:
    body = row([uid], "hits", {"value": {"incr": 1}})
    answers = await asyncio.gather(*(api.post("kinds", body) for _ in range(20)))
    assert [a.status for a in answers] == [200] * 20
    assert (await only_cell(api, [uid], "hits"))["value"] == 20


@pytest.mark.parametrize(
    "cell",
    [
        {"value": {"incr": 1}, "timestamp": 5},
        {"value": "5"},
        {"value": 1.5},
        {"value": True},
        {"value": None},
        {"value": {"incr": "1"}},
        {"value": {"incr": 1.5}},
        {"value": {"incr": 1, "by": 2}},
        {"value": {"inc": 1}},
        {"value": 2**63},
    ],
)
async def test_bad_counter_cells_are_400(api, uid, cell) -> None:
    await api.put("kinds", [uid], {"v": {"hits": [{"timestamp": 1, "value": 7}]}})
    answer = await api.post("kinds", [row([uid], "hits", cell)])
    answer.problem(400, "[0].cells.v.hits[0]")
    assert (await only_cell(api, [uid], "hits"))["value"] == 7


# -- all or nothing -------------------------------------------------------------------------------------


async def test_one_bad_cell_in_the_last_row_writes_nothing(api, uid) -> None:
    before = await api.entries()
    field = "f" + uid
    fresh_schema = {
        "type": "record",
        "name": "Team",
        "namespace": "org.test",
        "fields": [
            {"name": "id", "type": ["null", "long"]},
            {"name": "name", "type": ["null", "string"]},
            {"name": field, "type": "int", "default": 0},
        ],
    }
    body = [
        {
            "entityId": [uid + "0"],
            "cells": {
                "v": {
                    "rec": [{"value": {"id": None, "name": None, field: 1}, "writer_schema": fresh_schema}],
                    "hits": [{"value": {"incr": 5}}],
                    "str": [{"value": "zero"}],
                }
            },
        },
        {"entityId": [uid + "1"], "cells": {"v": {"str": [{"value": "one"}]}}},
        {
            "entityId": [uid + "2"],
            "cells": {"v": {"long": [{"timestamp": 1, "value": 1}, {"timestamp": 2, "value": "two"}]}},
        },
    ]
    answer = await api.post("kinds", body)
    answer.problem(400, "[2].cells.v.long[1].value")
    for suffix in "012":
        assert await cells_of(api, "kinds", [uid + suffix]) == {}, suffix
    assert await api.entries() == before


async def test_every_row_is_validated_before_any_write(api, uid) -> None:
    body = [
        {"entityId": [uid + "0"], "cells": {"v": {"str": [{"value": "zero"}]}}},
        {"entityId": [uid + "1"], "cells": {"v": {"str": [{"value": "one", "timestamp": -5}]}}},
    ]
    (await api.post("kinds", body)).problem(400, "[1].cells.v.str[0].timestamp")
    body[1] = {"entityId": [uid, "extra"], "cells": {"v": {"str": [{"value": "one"}]}}}
    (await api.post("kinds", body)).problem(400, "[1].entityId")
    assert await cells_of(api, "kinds", [uid + "0"]) == {}


# -- round trip -----------------------------------------------------------------------------------------

EVERY_KIND = {
    "v": {
        "str": [{"timestamp": 2, "value": "zwei"}, {"timestamp": 1, "value": "eins ☃"}],
        "long": [{"timestamp": 1, "value": -(2**63)}],
        "int": [{"timestamp": 1, "value": 2**31 - 1}],
        "dbl": [{"timestamp": 1, "value": -0.25}],
        "flt": [{"timestamp": 1, "value": 8.5}],
        "bool": [{"timestamp": 1, "value": True}],
        "opt": [{"timestamp": 2, "value": None}, {"timestamp": 1, "value": "x"}],
        "rec": [{"timestamp": 1, "value": {"id": {"long": 3}, "name": {"string": "Team Name"}}}],
        "color": [{"timestamp": 1, "value": "BLUE"}],
        "bytes": [{"timestamp": 1, "value": "\u0000\u0001\u00ff"}],
        "fixed": [{"timestamp": 1, "value": "\u00fe\u0000ab"}],
        "map": [{"timestamp": 1, "value": {"x": 1, "y": -2}}],
        "arr": [{"timestamp": 1, "value": ["p", "q", ""]}],
        "final": [{"timestamp": 1, "value": "final"}],
        "hits": [{"timestamp": 1, "value": 41}],
        "raw": [{"timestamp": 1, "value": "\u0080raw\u0000"}],
        "avro": [{"timestamp": 1, "value": 17}],
        "free": [{"timestamp": 1, "value": {"k": "v"}, "writer_schema": {"type": "map", "values": "string"}}],
        "strict": [{"timestamp": 1, "value": 18}],
        "player": [{"timestamp": 1, "value": {"name": "pl", "score": 9}}],
    },
    "m": {"a:b": [{"timestamp": 1, "value": "colon"}], "é": [{"timestamp": 1, "value": "accent"}]},
}


def _without_writer(cells: dict) -> dict:
    return {
        f: {q: [{"timestamp": c["timestamp"], "value": c["value"]} for c in cs] for q, cs in qs.items()}
        for f, qs in cells.items()
    }


async def test_round_trip_of_every_cell_kind(api, uid) -> None:
    await api.put("kinds", [uid + "a"], EVERY_KIND)
    got = await cells_of(api, "kinds", [uid + "a"], versions="all")
    assert _without_writer(got) == _without_writer(EVERY_KIND)
    # what GET returned posts back unchanged (writer_schema UIDs included)
    await api.put("kinds", [uid + "b"], got)
    assert await cells_of(api, "kinds", [uid + "b"], versions="all") == got
