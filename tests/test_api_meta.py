"""The descriptive resources of api.md: /v1, version, instances, schema table, tables, effective
layouts; trailing slashes, HEAD, 404 / 405 / 413, CORS, visible instances."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import orjson
import pytest

API_TABLES = ["docs", "fleeting", "hashed", "kinds", "longs", "ordered", "prefixed", "raw", "tokens", "users"]

#: encodings.md §4: the eight primitives, in this order, with their hashes
PRIMITIVES = [
    (0, '"string"', "095d71cf12556b9d5e330ad575b3df5d"),
    (1, '"bytes"', "b462f06cb909be57c85008867784cde6"),
    (2, '"int"', "ef524ea1b91e73173d938ade36c1db32"),
    (3, '"long"', "e1dd9a1ef98b451b53690370b393966b"),
    (4, '"float"', "50a6b9db85da367a6d2df400a41758a6"),
    (5, '"double"', "bfc71a62f38b99d6a93690deeb4b3af6"),
    (6, '"boolean"', "01f692b30d4a1c8a3e600b1440637f8f"),
    (7, '"null"', "9b41ef67651c18488a8b08bb67c75699"),
]


async def test_service_root(api) -> None:
    answer = await api.get("/v1")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.json() == {"service": "KijiREST", "resources": ["version", "instances"]}


async def test_version(api) -> None:
    answer = await api.get("/v1/version")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    body = answer.json()
    assert set(body) == {"kiji-client-data-version", "kiji-software-version", "rest-version"}
    assert body["kiji-client-data-version"] == "system-2.0"
    for key in ("kiji-software-version", "rest-version"):
        assert isinstance(body[key], str) and body[key]


async def test_instances_sorted_with_uris(api) -> None:
    answer = await api.get("/v1/instances")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.json() == [
        {"name": "api", "uri": "/v1/instances/api"},
        {"name": "beta", "uri": "/v1/instances/beta"},
    ]


async def test_instance_metadata_tables_and_primitive_schemas(api) -> None:
    answer = await api.get("/v1/instances/api")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    body = answer.json()
    assert set(body) == {"name", "tables", "schema_table"}
    assert body["name"] == "api"
    assert body["tables"] == [{"name": t, "uri": f"/v1/instances/api/tables/{t}"} for t in API_TABLES]
    entries = body["schema_table"]["entries"]
    assert entries[:8] == [{"id": i, "hash": h, "avro_schema": s} for i, s, h in PRIMITIVES]
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    for entry in entries:
        assert entry["hash"] == hashlib.md5(entry["avro_schema"].encode()).hexdigest()
    if api.kind != "hbase":  # a fresh store: no FINAL column of these layouts needs a user schema
        assert len(entries) == 8


async def test_posted_schema_gets_next_uid_and_is_listed(api, uid) -> None:
    before = await api.entries()
    # a record schema no one registered before (its field name is unique), readable as org.test.Team
    field = "f" + uid
    schema = {
        "type": "record",
        "name": "Team",
        "namespace": "org.test",
        "fields": [
            {"name": "id", "type": ["null", "long"]},
            {"name": "name", "type": ["null", "string"]},
            {"name": field, "type": "int"},
        ],
    }
    canonical = (
        '{"type":"record","name":"Team","namespace":"org.test","fields":'
        '[{"name":"id","type":["null","long"]},{"name":"name","type":["null","string"]},'
        f'{{"name":"{field}","type":"int"}}]}}'
    )
    value = {"id": {"long": 7}, "name": None, field: 3}
    await api.put("kinds", [uid], {"v": {"rec": [{"timestamp": 5, "value": value, "writer_schema": schema}]}})
    after = await api.entries()
    new = [e for e in after if e not in before]
    expected_id = max(e["id"] for e in before) + 1
    assert new == [
        {"id": expected_id, "hash": hashlib.md5(canonical.encode()).hexdigest(), "avro_schema": canonical}
    ]
    if api.kind != "hbase":
        assert expected_id == 8  # "The first user schema gets id 8"
    row = (await api.rows("kinds", {"eid": [uid]})).rows[0]
    assert row["cells"]["v"]["rec"] == [
        {"timestamp": 5, "value": {"id": {"long": 7}, "name": None}, "writer_schema": expected_id}
    ]
    # the same schema again, keys in another order (same canonical text): no new entry
    reordered = {"fields": schema["fields"], "namespace": "org.test", "name": "Team", "type": "record"}
    await api.put(
        "kinds", [uid], {"v": {"rec": [{"timestamp": 6, "value": value, "writer_schema": reordered}]}}
    )
    assert await api.entries() == after


async def test_tables_sorted_with_uris(api) -> None:
    answer = await api.get("/v1/instances/beta/tables")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.json() == [
        {"name": "alpha", "uri": "/v1/instances/beta/tables/alpha"},
        {"name": "zeta", "uri": "/v1/instances/beta/tables/zeta"},
    ]
    answer = await api.get("/v1/instances/api/tables")
    assert [t["name"] for t in answer.json()] == API_TABLES


async def test_effective_layout_defaults_ids_and_tags(api) -> None:
    answer = await api.get("/v1/instances/api/tables/longs")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    layout = answer.json()
    assert layout["name"] == "longs"
    assert layout["description"] == ""
    assert layout["version"] == "layout-1.1.0"
    assert layout["layout_id"] == {"string": "1"}
    assert layout["reference_layout"] is None
    assert layout["max_filesize"] is None and layout["memstore_flushsize"] is None
    assert layout["column_name_translator"] == "SHORT"
    assert layout["keys_format"] == {
        "org.kiji.schema.avro.RowKeyFormat2": {
            "encoding": "FORMATTED",
            "salt": {
                "org.kiji.schema.avro.HashSpec": {
                    "hash_type": "MD5",
                    "hash_size": 2,
                    "suppress_key_materialization": False,
                }
            },
            "range_scan_start_index": 1,
            "nullable_start_index": 1,
            "components": [{"name": "id", "type": "LONG"}],
        }
    }
    (group,) = layout["locality_groups"]
    assert group["id"] == 1 and group["name"] == "default"
    assert group["aliases"] == [] and group["enabled"] is True and group["description"] == ""
    assert group["block_size"] is None and group["bloom_type"] is None
    assert group["delete"] is False and group["renamed_from"] is None
    (family,) = group["families"]
    assert family["id"] == 1 and family["map_schema"] is None and family["aliases"] == []
    name, logins = family["columns"]
    assert (name["id"], name["name"], logins["id"], logins["name"]) == (1, "name", 2, "logins")
    assert name["column_schema"]["value"] == {"string": '"string"'}
    assert name["column_schema"]["storage"] == "UID" and name["column_schema"]["type"] == "INLINE"
    assert name["column_schema"]["avro_validation_policy"] == "SCHEMA_1_0"
    assert name["column_schema"]["default_reader"] is None
    assert logins["column_schema"]["type"] == "COUNTER" and logins["column_schema"]["value"] is None


async def test_effective_layout_avro_descriptors_as_written(api) -> None:
    layout = (await api.get("/v1/instances/api/tables/kinds")).json()
    columns = {c["name"]: c for c in layout["locality_groups"][0]["families"][0]["columns"]}
    strict = columns["strict"]["column_schema"]
    assert strict["avro_validation_policy"] == "STRICT"
    assert strict["default_reader"] == {
        "org.kiji.schema.avro.AvroSchema": {"uid": None, "json": {"string": '"long"'}}
    }
    assert strict["writers"] == {"array": [{"uid": None, "json": {"string": '"long"'}}]}
    assert [c["id"] for c in layout["locality_groups"][0]["families"][0]["columns"]] == list(range(1, 21))
    assert layout["locality_groups"][0]["families"][1]["id"] == 2
    assert layout["locality_groups"][0]["families"][1]["map_schema"] == {
        "org.kiji.schema.avro.CellSchema": {
            "storage": "UID",
            "type": "INLINE",
            "value": {"string": '"string"'},
            "avro_validation_policy": "SCHEMA_1_0",
            "specific_reader_schema_class": None,
            "default_reader": None,
            "readers": None,
            "written": None,
            "writers": None,
            "protobuf_full_name": None,
            "protobuf_class_name": None,
        }
    }


async def test_effective_layouts_are_valid_layout_files(api, make_api, tmp_path: Path) -> None:
    """layouts.md §2: what GET returns reads back as the same layout."""
    root = tmp_path / "layouts"
    (root / "api").mkdir(parents=True)
    shutil.copytree(
        Path(__file__).parent / "data" / "api_layouts" / "api" / "schemas", root / "api" / "schemas"
    )
    first = {}
    for table in API_TABLES:
        answer = await api.get(f"/v1/instances/api/tables/{table}")
        assert answer.status == 200
        first[table] = answer.json()
        (root / "api" / f"{table}.json").write_bytes(answer.body)
    again = await make_api(layouts=root)
    for table in API_TABLES:
        answer = await again.get(f"/v1/instances/api/tables/{table}")
        assert answer.status == 200, answer.body
        assert answer.json() == first[table], table


META_PATHS = [
    "/v1",
    "/v1/version",
    "/v1/instances",
    "/v1/instances/api",
    "/v1/instances/api/tables",
    "/v1/instances/api/tables/longs",
    "/v1/instances/api/tables/longs/rows?eid=%5B1%5D",
]


@pytest.mark.parametrize("path", META_PATHS)
async def test_trailing_slash_is_accepted(api, path: str) -> None:
    plain = await api.get(path)
    base, _, query = path.partition("?")
    slashed = await api.get(base + "/" + ("?" + query if query else ""))
    assert plain.status == slashed.status == 200
    assert slashed.body == plain.body
    assert slashed.content_type == plain.content_type


@pytest.mark.parametrize("path", META_PATHS)
async def test_head_works_wherever_get_does(api, path: str) -> None:
    get = await api.get(path)
    head = await api.request("HEAD", path)
    assert head.status == get.status == 200
    assert head.body == b""
    assert head.content_type == get.content_type


@pytest.mark.parametrize(
    "path",
    [
        "/v1/instances/nope",
        "/v1/instances/nope/tables",
        "/v1/instances/nope/tables/docs",
        "/v1/instances/nope/tables/docs/rows",
        "/v1/instances/api/tables/nope",
        "/v1/instances/api/tables/nope/rows",
        "/v1/instances/beta/tables/docs",
        "/v1/nope",
        "/v2",
        "/",
        "/v1/instances/api/tables/docs/rows/extra",
    ],
)
async def test_unknown_instance_table_or_path_is_404(api, path: str) -> None:
    (await api.get(path)).problem(404)


async def test_unknown_instance_is_404_also_for_post_and_delete(api) -> None:
    path = "/v1/instances/nope/tables/docs/rows"
    (await api.request("POST", path, body={"entityId": ["a"], "cells": {}})).problem(404)
    (await api.request("DELETE", path, {"eid": ["a"]})).problem(404)


@pytest.mark.parametrize(
    "method,path",
    [
        ("PUT", "/v1/instances/api/tables/docs/rows"),
        ("PATCH", "/v1/instances/api/tables/docs/rows"),
        ("POST", "/v1"),
        ("DELETE", "/v1/instances/api"),
        ("POST", "/v1/instances/api/tables/docs"),
        ("PUT", "/v1/instances"),
    ],
)
async def test_method_not_allowed_is_405(api, method: str, path: str) -> None:
    (await api.request(method, path, data=b"{}")).problem(405)


async def test_cors_preflight_when_enabled(make_api) -> None:
    api = await make_api(cors=True)
    path = api.rows_path("docs")
    answer = await api.request(
        "OPTIONS",
        path,
        headers={
            "Origin": "http://example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert answer.status in (200, 204), answer.body
    assert answer.headers.get("Access-Control-Allow-Origin") in ("*", "http://example.com")
    methods = [m.strip() for m in answer.headers.get("Access-Control-Allow-Methods", "").split(",")]
    assert "POST" in methods
    assert "content-type" in answer.headers.get("Access-Control-Allow-Headers", "").lower()
    # ordinary answers (streams and errors too) carry the allow-origin header
    for p in ("/v1", path + "?eid=%5B%22x%22%5D", "/v1/instances/nope"):
        got = await api.get(p, headers={"Origin": "http://example.com"})
        assert got.headers.get("Access-Control-Allow-Origin") in ("*", "http://example.com"), p


async def test_no_cors_headers_when_disabled(api) -> None:
    answer = await api.get("/v1", headers={"Origin": "http://example.com"})
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


async def test_body_over_max_body_size_is_413(make_api, uid) -> None:
    api = await make_api(max_body_size=2048)
    small = {"entityId": [uid], "cells": {"v": {"str": [{"timestamp": 1, "value": "x"}]}}}
    assert (await api.post("kinds", small)).status == 200
    big = {"entityId": [uid], "cells": {"v": {"str": [{"timestamp": 1, "value": "x" * 4096}]}}}
    assert len(orjson.dumps(big)) > 2048
    (await api.post("kinds", big)).problem(413)
    row = (await api.rows("kinds", {"eid": [uid]})).rows[0]
    assert row["cells"]["v"]["str"][0]["value"] == "x"


async def test_visible_instances_setting(make_api) -> None:
    api = await make_api(instances=("beta",))
    assert (await api.get("/v1/instances")).json() == [{"name": "beta", "uri": "/v1/instances/beta"}]
    (await api.get("/v1/instances/api")).problem(404)
    (await api.get("/v1/instances/api/tables/docs/rows")).problem(404)
