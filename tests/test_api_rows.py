"""Row shape and value rendering (api.md "Row shape", "Value rendering"; encodings.md §1.7, §3):
entityId forms per key format, sorting, versions, writer_schema, counters, raw bytes, cells and keys
written by other tools (through the store, with KijiSchema's bytes), undecodable cells and keys."""

from __future__ import annotations

import hashlib
import logging
import struct

import pytest

#: kinds: one locality group = HBase family B; qualifiers: family id (v = B, m = C) ":" column id
KINDS_COLUMNS = (
    "str long int dbl flt bool opt rec color bytes fixed map arr final hits raw avro free strict player"
)
V = {name: b"B:" + bytes([ord("A") + i]) for i, name in enumerate(KINDS_COLUMNS.split(), start=1)}
#: docs (HBase family B): info = B (label B:B, count B:C), extra = C (note C:B), tags = D
LABEL, COUNT, NOTE = b"B:B", b"B:C", b"C:B"

TEAM = (
    '{"type":"record","name":"Team","namespace":"org.test","fields":'
    '[{"name":"id","type":["null","long"]},{"name":"name","type":["null","string"]}]}'
)
COLOR = '{"type":"enum","name":"Color","namespace":"org.test","symbols":["RED","GREEN","BLUE"]}'
QUAD = '{"type":"fixed","name":"Quad","namespace":"org.test","size":4}'
PLAYER = (
    '{"type":"record","name":"Player","namespace":"org.test","fields":'
    '[{"name":"name","type":"string"},{"name":"score","type":"long","default":0}]}'
)


def pad(*components: object) -> list:
    return list(components) + [None] * (5 - len(components))


def one_row(answer) -> dict:
    rows = answer.rows
    assert len(rows) == 1, rows
    return rows[0]


# -- entityId forms -----------------------------------------------------------------------------------


async def test_entity_id_forms_per_key_format(api, uid) -> None:
    number = int(uid[1:13], 16)
    md5 = hashlib.md5(uid.encode()).digest()
    cases = [
        ("docs", [uid, "b"], pad(uid, "b"), {"info": {"label": [{"value": "v"}]}}),
        ("users", [uid, "jdoe"], [uid, "jdoe"], {"profile": {"full_name": [{"value": "v"}]}}),
        ("longs", [number], [number], {"info": {"name": [{"value": "v"}]}}),
        ("prefixed", [uid], [uid], {"info": {"name": [{"value": "v"}]}}),
        ("raw", [uid + "\\é"], "hbase=" + uid + "\\x5C\\xC3\\xA9", {"info": {"name": [{"value": "v"}]}}),
        ("hashed", [uid], api.hbase_eid(md5), {"info": {"name": [{"value": "v"}]}}),
        ("tokens", [uid], api.hbase_eid(md5), {"info": {"name": [{"value": "v"}]}}),
    ]
    for table, entity, shown, cells in cases:
        answer = await api.post(table, {"entityId": entity, "cells": cells})
        assert answer.status == 200, (table, answer.body)
        row = one_row(await api.rows(table, {"eid": entity}))
        assert row["entityId"] == shown, table
        assert [c["value"] for f in row["cells"].values() for q in f.values() for c in q] == ["v"], table
        missing = [*entity[:-1], entity[-1] + (1 if table == "longs" else "-no")]
        row = one_row(await api.rows(table, {"eid": missing}))
        assert row["cells"] == {}, table


async def test_hash_prefix_rows_are_addressed_by_their_raw_key_too(api, uid) -> None:
    await api.put("prefixed", [uid], {"info": {"name": [{"value": "p"}]}})
    key = hashlib.md5(uid.encode()).digest()[:2] + uid.encode()
    row = one_row(await api.rows("prefixed", {"eid": "hbase_hex=" + key.hex()}))
    assert row["entityId"] == [uid]
    assert row["cells"]["info"]["name"][0]["value"] == "p"


async def test_families_and_qualifiers_are_sorted(api, uid) -> None:
    await api.put(
        "docs",
        [uid],
        {
            "tags": {q: [{"value": q}] for q in ("b", "é", "a:z", "B")},
            "info": {"label": [{"value": "L"}], "count": [{"value": 1}]},
            "extra": {"note": [{"value": "N"}]},
        },
    )
    row = one_row(await api.rows("docs", {"eid": [uid]}))
    assert list(row["cells"]) == ["extra", "info", "tags"]
    assert list(row["cells"]["info"]) == ["count", "label"]
    assert list(row["cells"]["tags"]) == ["B", "a:z", "b", "é"]


async def test_cells_newest_first_with_writer_schema(api, uid) -> None:
    await api.put("kinds", [uid], {"v": {"str": [{"timestamp": t, "value": f"s{t}"} for t in (20, 30, 10)]}})
    row = one_row(await api.rows("kinds", {"eid": [uid], "versions": "all"}))
    assert row == {
        "entityId": [uid],
        "cells": {
            "v": {
                "str": [
                    {"timestamp": 30, "value": "s30", "writer_schema": 0},
                    {"timestamp": 20, "value": "s20", "writer_schema": 0},
                    {"timestamp": 10, "value": "s10", "writer_schema": 0},
                ]
            }
        },
    }


async def test_counter_shows_the_latest_value_only(api, uid) -> None:
    before = api.now_ms()
    await api.put("kinds", [uid], {"v": {"hits": [{"timestamp": 100, "value": 5}]}})
    await api.put("kinds", [uid], {"v": {"hits": [{"value": {"incr": 2}}]}})
    for params in ({}, {"versions": "all"}, {"versions": "5"}):
        row = one_row(await api.rows("kinds", {"eid": [uid], **params}))
        (cell,) = row["cells"]["v"]["hits"]
        assert cell["value"] == 7 and cell["writer_schema"] == 3
        assert cell["timestamp"] >= before


async def test_raw_bytes_are_iso_8859_1_strings_with_writer_schema_1(api, uid) -> None:
    text = "\u00ff\u0000ab\u0080é"
    await api.put("kinds", [uid], {"v": {"raw": [{"timestamp": 7, "value": text, "writer_schema": 0}]}})
    row = one_row(await api.rows("kinds", {"eid": [uid]}))
    assert row["cells"]["v"]["raw"] == [{"timestamp": 7, "value": text, "writer_schema": 1}]
    ((_, cells),) = api.store.get_rows(api.hbase_table("kinds"), [api.kinds_key(uid)])
    assert [(q, v) for _, q, _, v in cells if q == V["raw"]] == [(V["raw"], text.encode("latin-1"))]


async def test_raw_bytes_outside_latin_1_are_400(api, uid) -> None:
    answer = await api.post("kinds", [{"entityId": [uid], "cells": {"v": {"raw": [{"value": "snow ☃"}]}}}])
    answer.problem(400, "[0].cells.v.raw[0].value")


# -- cells written by other tools (KijiSchema bytes through the store) ----------------------------------


async def test_stored_cells_render_with_their_writer_schema(api, uid) -> None:
    ts = 1000
    cells = [
        (b"B", V["str"], ts, api.uid_cell(0, "string", "héllo")),
        (b"B", V["long"], ts, api.uid_cell(3, "long", 2**40)),
        (b"B", V["long"], ts - 1, api.uid_cell(2, "int", 9)),  # int resolves to the long reader
        (b"B", V["int"], ts, hashlib.md5(b'"int"').digest() + api.avro("int", -5)),
        (b"B", V["dbl"], ts, api.uid_cell(5, "double", 1.25)),
        (b"B", V["flt"], ts, api.uid_cell(4, "float", 0.5)),
        (b"B", V["bool"], ts, api.uid_cell(6, "boolean", True)),
        (b"B", V["opt"], ts, api.uid_cell(0, "string", "helloworld")),
        (b"B", V["bytes"], ts, api.uid_cell(1, "bytes", b"\x00\xff")),
        (b"B", V["final"], ts, api.avro("string", "fin")),
        (b"B", V["hits"], ts, struct.pack(">q", 42)),
        (b"B", V["hits"], ts - 1, struct.pack(">q", 41)),
        (b"B", V["raw"], ts, b"\x00\xffz\x80"),
        (b"B", V["avro"], ts, api.uid_cell(2, "int", 7)),
        (b"B", V["free"], ts, api.uid_cell(0, "string", "free")),
        (b"B", b"C:a:b", ts, api.uid_cell(0, "string", "in map")),
    ]
    api.store.put_row(api.hbase_table("kinds"), api.kinds_key(uid), cells)
    row = one_row(await api.rows("kinds", {"eid": [uid], "versions": "all"}))

    def cell(value, writer, t=ts):
        return {"timestamp": t, "value": value, "writer_schema": writer}

    assert row["cells"] == {
        "m": {"a:b": [cell("in map", 0)]},
        "v": {
            "avro": [cell(7, 2)],
            "bool": [cell(True, 6)],
            "bytes": [cell("\u0000\u00ff", 1)],
            "dbl": [cell(1.25, 5)],
            "final": [cell("fin", 0)],
            "flt": [cell(0.5, 4)],
            "free": [cell("free", 0)],
            "hits": [cell(42, 3)],
            "int": [cell(-5, 2)],
            "long": [cell(2**40, 3), cell(9, 2, ts - 1)],
            "opt": [cell("helloworld", 0)],
            "raw": [cell("\u0000\u00ffz\u0080", 1)],
            "str": [cell("héllo", 0)],
        },
    }


def _is_error_cell(cell: dict, ts: int) -> bool:
    return (
        set(cell) == {"timestamp", "value", "writer_schema"}
        and cell["timestamp"] == ts
        and cell["writer_schema"] == -1
        and isinstance(cell["value"], str)
        and cell["value"].startswith("Error loading cell: ")
        and len(cell["value"]) > len("Error loading cell: ")
    )


async def test_undecodable_cells_are_shown_and_the_stream_goes_on(api, uid) -> None:
    table = api.hbase_table("docs")
    api.store.put_row(
        table,
        api.docs_key(uid, "a"),
        [
            (b"B", LABEL, 11, b"\x00\x0a"),  # "string" (uid 0) of length 5 with no bytes: truncated
            (b"B", LABEL, 10, api.uid_cell(0, "string", "older and fine")),
            (b"B", COUNT, 12, api.varint(987654) + api.avro("long", 1)),  # unknown writer uid
            (b"B", NOTE, 13, api.uid_cell(3, "long", 5)),  # a long does not resolve to the string reader
        ],
    )
    await api.put("docs", [uid, "b"], {"info": {"label": [{"timestamp": 14, "value": "good"}]}})
    rows = (await api.rows("docs", {"eid": [uid, []], "versions": "all"})).rows
    assert [r["entityId"] for r in rows] == [pad(uid, "a"), pad(uid, "b")]
    cells = rows[0]["cells"]
    assert _is_error_cell(cells["info"]["label"][0], 11)
    assert cells["info"]["label"][1] == {"timestamp": 10, "value": "older and fine", "writer_schema": 0}
    assert _is_error_cell(cells["info"]["count"][0], 12)
    assert _is_error_cell(cells["extra"]["note"][0], 13)
    assert rows[1]["cells"] == {"info": {"label": [{"timestamp": 14, "value": "good", "writer_schema": 0}]}}
    point = one_row(await api.rows("docs", {"eid": [uid, "a"]}))
    assert _is_error_cell(point["cells"]["info"]["label"][0], 11)


async def test_undecodable_cells_of_every_storage(api, uid) -> None:
    api.store.put_row(
        api.hbase_table("kinds"),
        api.kinds_key(uid),
        [
            (b"B", V["hits"], 21, b"\x00\x00\x07"),  # a counter must be 8 bytes
            (b"B", V["int"], 22, b"\x01" * 16 + api.avro("int", 1)),  # unknown schema hash
            (b"B", V["final"], 23, b"\xff"),  # FINAL string, length varint cut short
            (b"B", V["rec"], 24, api.uid_cell(0, "string", "not a Team")),
            (b"B", V["str"], 25, api.uid_cell(0, "string", "fine")),
        ],
    )
    row = one_row(await api.rows("kinds", {"eid": [uid]}))
    v = row["cells"]["v"]
    assert _is_error_cell(v["hits"][0], 21)
    assert _is_error_cell(v["int"][0], 22)
    assert _is_error_cell(v["final"][0], 23)
    assert _is_error_cell(v["rec"][0], 24)
    assert v["str"] == [{"timestamp": 25, "value": "fine", "writer_schema": 0}]


async def test_keys_that_do_not_decode_are_shown_as_hbase_text(api, uid) -> None:
    await api.put("docs", [uid, "b"], {"info": {"label": [{"timestamp": 5, "value": "ok"}]}})
    bad = api.docs_key(uid, "b", "c") + b"\x80\x00"  # INTEGER component cut short
    api.store.put_row(api.hbase_table("docs"), bad, [(b"B", LABEL, 6, api.uid_cell(0, "string", "odd"))])
    shown = api.hbase_eid(bad)
    rows = (await api.rows("docs", {"start_eid": [uid, "b"], "end_eid": [uid, "c"]})).rows
    assert rows == [
        {
            "entityId": pad(uid, "b"),
            "cells": {"info": {"label": [{"timestamp": 5, "value": "ok", "writer_schema": 0}]}},
        },
        {
            "entityId": shown,
            "cells": {"info": {"label": [{"timestamp": 6, "value": "odd", "writer_schema": 0}]}},
        },
    ]
    point = one_row(await api.rows("docs", {"eid": shown}))
    assert point["entityId"] == shown
    assert point["cells"]["info"]["label"][0]["value"] == "odd"
    missing = api.hbase_eid(bad + b"\x01")
    assert (await api.rows("docs", {"eids": [shown, missing]})).rows[1] == {"entityId": missing, "cells": {}}


async def test_cells_of_no_layout_column_are_skipped(api, uid) -> None:
    table = api.hbase_table("docs")
    await api.put("docs", [uid, "a"], {"info": {"label": [{"timestamp": 3, "value": "known"}]}})
    foreign = [(b"B", b"Z:B", 4, b"\x00\x02hi"), (b"B", b"B:Y", 4, b"\x00\x02hi")]
    api.store.put_row(table, api.docs_key(uid, "a"), foreign)
    api.store.put_row(table, api.docs_key(uid, "b"), foreign)
    rows = (await api.rows("docs", {"eid": [uid, []]})).rows
    assert rows == [
        {
            "entityId": pad(uid, "a"),
            "cells": {"info": {"label": [{"timestamp": 3, "value": "known", "writer_schema": 0}]}},
        }
    ]
    assert one_row(await api.rows("docs", {"eid": [uid, "b"]})) == {"entityId": pad(uid, "b"), "cells": {}}


# -- value rendering (POST, then GET) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "column,posted,shown,schema",
    [
        ("opt", "helloworld", "helloworld", '["null","string"]'),
        ("opt", {"string": "tagged"}, "tagged", '["null","string"]'),
        ("opt", None, None, '["null","string"]'),
        ("rec", {"id": {"long": 1}, "name": {"string": "Team Name"}}, None, TEAM),
        ("rec", {"id": None, "name": {"string": "x"}}, None, TEAM),
        ("color", "GREEN", "GREEN", COLOR),
        ("bytes", "\u00ff\u0000a", "\u00ff\u0000a", '"bytes"'),
        ("fixed", "ab\u00ffc", "ab\u00ffc", QUAD),
        ("map", {"b": 2, "a": 1}, {"b": 2, "a": 1}, '{"type":"map","values":"long"}'),
        ("map", {}, {}, '{"type":"map","values":"long"}'),
        ("arr", ["x", "y"], ["x", "y"], '{"type":"array","items":"string"}'),
        ("dbl", 1.5, 1.5, '"double"'),
        ("flt", 0.5, 0.5, '"float"'),
        ("bool", False, False, '"boolean"'),
        ("long", 2**62, 2**62, '"long"'),
        ("int", -(2**31), -(2**31), '"int"'),
        ("str", 'héllo ☃ \r\n"', 'héllo ☃ \r\n"', '"string"'),
        ("str", "", "", '"string"'),
        ("final", "fin", "fin", '"string"'),
        ("player", {"name": "p", "score": 3}, None, PLAYER),
    ],
)
async def test_values_render_as_api_md_says(api, uid, column, posted, shown, schema) -> None:
    expected = posted if shown is None else shown
    await api.put("kinds", [uid], {"v": {column: [{"timestamp": 9, "value": posted}]}})
    row = one_row(await api.rows("kinds", {"eid": [uid]}))
    (cell,) = row["cells"]["v"][column]
    assert cell["value"] == expected
    assert type(cell["value"]) is type(expected)
    assert cell["writer_schema"] == await api.uid_of(schema)


async def test_undecodable_cells_are_logged(api, uid, caplog) -> None:
    """encodings.md §3.1: logged with table, row (hbase= text) and column."""
    key = api.docs_key(uid, "a")
    api.store.put_row(api.hbase_table("docs"), key, [(b"B", LABEL, 11, b"\x00\x0a")])
    with caplog.at_level(logging.WARNING):
        rows = (await api.rows("docs", {"eid": [uid, "a"]})).rows
    assert _is_error_cell(rows[0]["cells"]["info"]["label"][0], 11)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("docs" in m and api.to_string_binary(key) in m and "info:label" in m for m in lines), lines


async def test_keys_that_do_not_decode_are_logged(api, uid, caplog) -> None:
    """encodings.md §1.6: never fatal, shown as hbase=..., and a warning is logged."""
    key = api.docs_key(uid, "a", "c") + b"\x80\x00"
    api.store.put_row(api.hbase_table("docs"), key, [(b"B", COUNT, 11, api.uid_cell(3, "long", 1))])
    with caplog.at_level(logging.WARNING):
        rows = (await api.rows("docs", {"start_eid": [uid, "a"], "end_eid": [uid, "b"]})).rows
    assert [r["entityId"] for r in rows] == [api.hbase_eid(key)]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(api.to_string_binary(key) in m for m in lines), lines


async def test_decoded_keys_replace_malformed_utf8(api, uid) -> None:
    """§1.3 / §1.6: malformed UTF-8 in a key component decodes to U+FFFD."""
    formatted = hashlib.md5(uid.encode()).digest()[:2] + uid.encode() + b"\x00\xffab\x00"
    api.store.put_row(api.hbase_table("docs"), formatted, [(b"B", LABEL, 1, api.uid_cell(0, "string", "f"))])
    row = one_row(await api.rows("docs", {"eid": api.hbase_eid(formatted)}))
    assert row["entityId"] == pad(uid, "\ufffdab")
    prefixed = hashlib.md5(b"x").digest()[:2] + uid.encode() + b"\xff"
    api.store.put_row(
        api.hbase_table("prefixed"), prefixed, [(b"B", b"B:B", 1, api.uid_cell(0, "string", "p"))]
    )
    row = one_row(await api.rows("prefixed", {"eid": api.hbase_eid(prefixed)}))
    assert row["entityId"] == [uid + "\ufffd"]
    assert row["cells"]["info"]["name"][0]["value"] == "p"


async def test_hash_prefix_key_shorter_than_the_hash_is_shown_as_hbase_text(api) -> None:
    row = one_row(await api.rows("prefixed", {"eid": "hbase=\\x01"}))
    assert row == {"entityId": "hbase=\\x01", "cells": {}}
