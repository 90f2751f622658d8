"""Hostile and broken input (issue "Holds under abuse and faults"): every refusal is a precise 4xx
problem naming what was wrong, nothing is written, and anything accepted reads back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

NODE = {
    "type": "record",
    "name": "Node",
    "namespace": "org.test",
    "fields": [{"name": "next", "type": ["null", "Node"]}],
}
JSON_BODY = {"Content-Type": "application/json"}


def chain(depth: int) -> Any:
    """A linked list of `depth` Node records as Avro JSON (a union branch named): 2 levels each."""
    value: Any = {"next": None}
    for _ in range(depth - 1):
        value = {"next": {"org.test.Node": value}}
    return value


def nested_arrays(depth: int) -> tuple[Any, Any]:
    """(schema, value) of arrays nested `depth` deep, holding one long at the bottom."""
    schema: Any = "long"
    value: Any = 7
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
        value = [value]
    return schema, value


async def post_deep(api, table: str, body: Any):
    """POST a body nested deeper than orjson writes (the stdlib's json goes further)."""
    return await api.request("POST", api.rows_path(table), data=json.dumps(body).encode(), headers=JSON_BODY)


async def cells_of(api, table: str, entity: Any) -> dict:
    rows = (await api.rows(table, {"eid": entity})).rows
    assert len(rows) == 1
    return rows[0]["cells"]


# -- anything accepted can be read back --------------------------------------------------------------


async def test_a_value_nested_past_the_limit_is_400_and_nothing_is_written(api, uid) -> None:
    schema, value = nested_arrays(150)  # the value is within its limit, the schema is not
    cell = {"value": value, "writer_schema": schema}
    body = {"entityId": [uid], "cells": {"v": {"free": [cell], "str": [{"value": "x"}]}}}
    problem = (await post_deep(api, "kinds", body)).problem(400, "cells.v.free[0].writer_schema")
    assert "deeper than 100 levels" in problem["detail"]
    assert await cells_of(api, "kinds", [uid]) == {}
    # the same depth through a recursive schema: the value is what nests
    node = {"value": chain(101), "writer_schema": NODE}
    body = {"entityId": [uid], "cells": {"v": {"free": [node]}}}
    problem = (await post_deep(api, "kinds", body)).problem(400, "cells.v.free[0].value")
    assert "deeper than 200 levels" in problem["detail"]
    assert await cells_of(api, "kinds", [uid]) == {}


async def test_the_deepest_accepted_values_read_back(api, uid) -> None:
    schema, value = nested_arrays(100)
    deep_node = chain(100)  # 199 levels of objects
    arrays = {"entityId": [uid], "cells": {"v": {"free": [{"value": value, "writer_schema": schema}]}}}
    nodes = {"entityId": [uid + "n"], "cells": {"v": {"free": [{"value": deep_node, "writer_schema": NODE}]}}}
    for body in (arrays, nodes):
        answer = await post_deep(api, "kinds", body)
        assert answer.status == 200, answer.body[:300]
    assert (await cells_of(api, "kinds", [uid]))["v"]["free"][0]["value"] == value
    assert (await cells_of(api, "kinds", [uid + "n"]))["v"]["free"][0]["value"] == deep_node
    scanned = (await api.rows("kinds", {"eid": orjson.dumps([uid + "n"]).decode() + "", "limit": "1"})).rows
    assert scanned[0]["cells"]["v"]["free"][0]["value"] == deep_node


async def test_a_poison_cell_written_by_another_tool_reads_as_an_error_cell(api, uid) -> None:
    """A cell whose value orjson cannot write (nested past its limit) never aborts a read: the row
    shows it as an "Error loading cell" cell, and a scan goes on past it."""
    ok = {"entityId": [uid + "b"], "cells": {"v": {"str": [{"timestamp": 5, "value": "after"}]}}}
    assert (await api.post("kinds", ok)).status == 200
    shallow = {
        "entityId": [uid],
        "cells": {"v": {"free": [{"timestamp": 1, "value": {"next": None}, "writer_schema": NODE}]}},
    }
    assert (await api.post("kinds", shallow)).status == 200
    uid_of_node = (await cells_of(api, "kinds", [uid]))["v"]["free"][0]["writer_schema"]
    # 300 nested Node records, in Avro binary: each level is union branch 1 (zig-zag 2), then null 0
    datum = b"\x02" * 300 + b"\x00"
    key = api.kinds_key(uid)
    hfamily, hqualifier = await column_of(api, "kinds", "v", "free")
    await asyncio.to_thread(
        api.store.put_row,
        api.hbase_table("kinds"),
        key,
        [(hfamily, hqualifier, 9, api.varint(uid_of_node) + datum)],
    )
    cells = await cells_of(api, "kinds", [uid])
    newest = cells["v"]["free"][0]
    assert newest["timestamp"] == 9
    assert newest["value"].startswith("Error loading cell")
    assert newest["writer_schema"] == -1
    # a scan over both rows ends normally (no error tail), with both rows
    low, high = sorted((key, api.kinds_key(uid + "b")))
    bounds = {"start_eid": "hbase_hex=" + low.hex(), "end_eid": "hbase_hex=" + high.hex() + "00"}
    answer = await api.rows("kinds", {**bounds, "cols": "v:free,v:str", "limit": "-1"})
    entities = [r["entityId"] for r in answer.rows]  # a stream cut by an error tail fails here
    assert [uid] in entities and [uid + "b"] in entities


async def column_of(api, table: str, family: str, qualifier: str) -> tuple[bytes, bytes]:
    """The HBase (family, qualifier) of a Kiji column, from the served table's layout."""
    from kijirest.state import CATALOG

    context = api.client.app[CATALOG].instances["api"].tables[table]
    names = context.column_names
    return names.hbase_column(names.family(family), qualifier)


# -- no 5xx for bad input --------------------------------------------------------------------------


HUGE = "9" * 4301


@pytest.mark.parametrize(
    "params,where",
    [
        ({"eid": '["a"]', "limit": HUGE}, "limit"),
        ({"eid": '["a"]', "versions": HUGE}, "versions"),
        ({"eid": '["a"]', "versions": str(2**31)}, "versions"),
        ({"eid": '["a"]', "timerange": HUGE + ".."}, "timerange"),
        ({"eid": '["a"]', "timerange": ".." + HUGE}, "timerange"),
        ({"eid": '["a"]', "limit": "-" + HUGE}, "limit"),
    ],
)
async def test_huge_numbers_are_400(api, params, where) -> None:
    problem = (await api.rows("docs", params)).problem(400, where)
    assert len(problem["detail"]) < 200  # the answer never echoes a 4,301-digit parameter


async def test_a_delete_timestamp_with_thousands_of_digits_is_400(api, uid) -> None:
    await api.put("kinds", [uid], {"v": {"str": [{"timestamp": 3, "value": "kept"}]}})
    (await api.delete("kinds", {"eid": orjson.dumps([uid]).decode(), "timestamp": HUGE})).problem(
        400, "timestamp"
    )
    assert (await cells_of(api, "kinds", [uid]))["v"]["str"][0]["value"] == "kept"


async def test_a_writer_schema_nesting_500_arrays_is_400(api, uid) -> None:
    schema, _ = nested_arrays(500)
    body = {"entityId": [uid], "cells": {"v": {"free": [{"value": [], "writer_schema": schema}]}}}
    (await post_deep(api, "kinds", body)).problem(400, "cells.v.free[0].writer_schema")
    # and as JSON text inside a string
    body["cells"]["v"]["free"][0]["writer_schema"] = json.dumps(schema)
    (await api.post("kinds", body)).problem(400, "cells.v.free[0].writer_schema")
    assert await cells_of(api, "kinds", [uid]) == {}


# -- no cross-site writes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_post_that_is_not_application_json_is_415_and_writes_nothing(api, uid, content_type) -> None:
    body = orjson.dumps({"entityId": [uid], "cells": {"v": {"str": [{"value": "x"}]}}})
    headers = {"Content-Type": content_type} if content_type else {}
    answer = await api.request("POST", api.rows_path("kinds"), data=body, headers=headers)
    problem = answer.problem(415, "Content-Type")
    assert "application/json" in problem["detail"]
    assert await cells_of(api, "kinds", [uid]) == {}


async def test_application_json_with_a_charset_is_taken(api, uid) -> None:
    body = orjson.dumps({"entityId": [uid], "cells": {"v": {"str": [{"value": "x"}]}}})
    headers = {"Content-Type": "application/json; charset=utf-8"}
    answer = await api.request("POST", api.rows_path("kinds"), data=body, headers=headers)
    assert answer.status == 200, answer.body


def preflight(origin: str, request_headers: str = "Content-Type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": request_headers,
    }


async def test_cors_allows_only_the_listed_origins(make_api) -> None:
    api = await make_api(cors=["https://app.example"])
    path = api.rows_path("docs")
    ok = await api.request("OPTIONS", path, headers=preflight("https://app.example", "Content-Type, X-Evil"))
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert ok.headers["Access-Control-Allow-Headers"] == "Content-Type, Accept, Authorization"
    assert "Access-Control-Allow-Credentials" not in ok.headers
    refused = await api.request("OPTIONS", path, headers=preflight("https://evil.example"))
    assert refused.status == 405  # no preflight answer for other origins: the browser refuses
    assert "Access-Control-Allow-Origin" not in refused.headers
    got = await api.get("/v1", headers={"Origin": "https://evil.example"})
    assert got.status == 200 and "Access-Control-Allow-Origin" not in got.headers
    got = await api.get("/v1", headers={"Origin": "https://app.example"})
    assert got.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Origin" in got.headers.get("Vary", "")


async def test_cors_star_must_be_written(make_api) -> None:
    api = await make_api(cors=["*"])
    answer = await api.request("OPTIONS", api.rows_path("docs"), headers=preflight("https://any.example"))
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in answer.headers


@pytest.mark.parametrize(
    "value", [["*", "https://a.example"], ["app.example"], ["https://a.example/path"], [5]]
)
def test_cors_settings_that_cannot_be_meant_are_refused(value) -> None:
    from kijirest.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="cors"):
        Settings(cors=value)
