"""Interop with KijiSchema's bytes on a real HBase (encodings.md): what the API writes is read raw
with happybase, and what is written raw with happybase in Kiji's encoding is read through the API.

Expected bytes come from the specification (its vectors and rules), never from kijirest's encoders.
Each test run uses a fresh instance name, so the HBase tables are its own.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import happybase
import orjson
import pytest
from conftest import hbase_uri

pytestmark = pytest.mark.hbase

DOC_LAYOUT = """{
  name: 'doc', version: 'layout-1.5.0',
  keys_format: {encoding: 'FORMATTED', salt: {hash_size: 2}, range_scan_start_index: 1,
    components: [{name: 'a', type: 'STRING'}, {name: 'b', type: 'STRING'}, {name: 'c', type: 'STRING'},
                 {name: 'n', type: 'INTEGER'}, {name: 'l', type: 'LONG'}]},
  locality_groups: [
    {name: 'first', in_memory: false, max_versions: 3, ttl_seconds: 2147483647, compression_type: 'NONE',
     families: [{name: 'unused', columns: [
       {name: 'x', column_schema: {type: 'INLINE', storage: 'UID', value: '"string"'}}]}]},
    {name: 'main', in_memory: false, max_versions: 3, ttl_seconds: 2147483647, compression_type: 'NONE',
     families: [
       {name: 'pad', columns: [
         {name: 'p', column_schema: {type: 'INLINE', storage: 'UID', value: '"string"'}}]},
       {name: 'info', columns: [
         {name: 'skip', column_schema: {type: 'INLINE', storage: 'UID', value: '"string"'}},
         {name: 'skip2', column_schema: {type: 'INLINE', storage: 'UID', value: '"string"'}},
         {name: 'count', column_schema: {type: 'INLINE', storage: 'UID', value: '"long"'}},
         {name: 'name', column_schema: {type: 'INLINE', storage: 'HASH', value: '"string"'}},
         {name: 'fixed', column_schema: {type: 'INLINE', storage: 'FINAL', value: '"int"'}},
         {name: 'hits', column_schema: {type: 'COUNTER', storage: 'FINAL'}}]},
       {name: 'tags', map_schema: {type: 'INLINE', storage: 'UID', value: '"string"'}}]}]
}"""

IDENTITY_LAYOUT = """{
  name: 'ident', version: 'layout-1.5.0', column_name_translator: 'IDENTITY',
  keys_format: {encoding: 'RAW'},
  locality_groups: [{name: 'lg', in_memory: false, max_versions: 1, ttl_seconds: 2147483647,
    compression_type: 'NONE', families: [
      {name: 'info', columns: [
        {name: 'name', column_schema: {type: 'INLINE', storage: 'UID', value: '"string"'}}]},
      {name: 'tags', map_schema: {type: 'INLINE', storage: 'UID', value: '"long"'}}]}]
}"""

NATIVE_LAYOUT = """{
  name: 'native', version: 'layout-1.5.0', column_name_translator: 'HBASE_NATIVE',
  keys_format: {encoding: 'HASH_PREFIX', hash_type: 'MD5', hash_size: 4},
  locality_groups: [{name: 'cf', in_memory: false, max_versions: 1, ttl_seconds: 2147483647,
    compression_type: 'NONE', families: [
      {name: 'cf', columns: [
        {name: 'name', column_schema: {type: 'INLINE', storage: 'UID', value: '"string"'}}]}]}]
}"""

STRING_HASH = bytes.fromhex("095d71cf12556b9d5e330ad575b3df5d")  # encodings.md §4


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name = f"interop_{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("layouts")
    (root / name).mkdir()
    (root / name / "doc.json").write_text(DOC_LAYOUT)
    (root / name / "ident.json").write_text(IDENTITY_LAYOUT)
    (root / name / "native.json").write_text(NATIVE_LAYOUT)
    return name, root


@pytest.fixture(scope="module")
def raw(instance: tuple[str, Path]) -> Iterator[happybase.Connection]:
    parts = urlsplit(hbase_uri())
    conn = happybase.Connection(parts.hostname or "127.0.0.1", parts.port or 9090)
    yield conn
    name = instance[0]
    for table in conn.tables():
        if table.decode().startswith(f"kiji.{name}."):
            conn.delete_table(table, disable=True)
    conn.close()


@pytest.fixture
async def client(aiohttp_client: Any, instance: tuple[str, Path], raw: happybase.Connection) -> Any:
    from kijirest.app import init_app
    from kijirest.settings import Settings

    root = instance[1]
    app = await init_app(Settings(layouts=str(root), store=hbase_uri()))
    return await aiohttp_client(app)


async def post(client: Any, path: str, body: Any) -> Any:
    resp = await client.post(path, data=orjson.dumps(body), headers={"Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def get_rows(client: Any, path: str) -> list[Any]:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return [orjson.loads(line) for line in (await resp.read()).split(b"\r\n") if line]


async def test_api_writes_kijischema_bytes(client: Any, instance: tuple[str, Path], raw: Any) -> None:
    name, _ = instance
    eid = ["component1", "component2", "component3", 123, 321]
    rows = f"/v1/instances/{name}/tables/doc/rows"
    await post(
        client,
        rows,
        {
            "entityId": eid,
            "cells": {
                "info": {
                    "count": [{"timestamp": 5, "value": 3181}],
                    "name": [{"timestamp": 6, "value": "hi"}],
                    "fixed": [{"timestamp": 7, "value": 1}],
                    "hits": [{"timestamp": 8, "value": 258}],
                },
                "tags": {"a:b": [{"timestamp": 9, "value": "x"}]},
            },
        },
    )
    tables = {t.decode() for t in raw.tables()}
    assert {f"kiji.{name}.table.doc", f"kiji.{name}.schema_id", f"kiji.{name}.schema_hash"} <= tables

    # encodings.md §1.11: the KijiREST documentation vector
    key = bytes.fromhex(
        "3f0b636f6d706f6e656e743100636f6d706f6e656e743200636f6d706f6e656e7433008000007b8000000000000141"
    )
    table = raw.table(f"kiji.{name}.table.doc")
    stored = table.row(key, include_timestamp=True)
    # SHORT names: locality group 'main' = id 2 → family C; info = family id 2 → B... prefix 'C';
    # columns count=3 → D, name=4 → E, fixed=5 → F, hits=6 → G; map family tags = id 3 → 'D'
    assert stored == {
        b"C:C:D": (b"\x03\xda\x31", 5),  # varint(uid "long" = 3) ‖ zig-zag 3181 (§3.2)
        b"C:C:E": (STRING_HASH + b"\x04hi", 6),  # MD5 of "string" ‖ Avro "hi"
        b"C:C:F": (b"\x02", 7),  # FINAL: the bare Avro int 1
        b"C:C:G": (struct.pack(">q", 258), 8),  # 8-byte big-endian counter
        b"C:D:a:b": (b"\x00\x02x", 9),  # map qualifier after the family prefix, ':' kept
    }
    # the schema table: counter row, id rows keyed by varint, hash rows by MD5 (§4)
    ids = raw.table(f"kiji.{name}.schema_id")
    assert struct.unpack(">q", ids.row(b"counter")[b"schema:"])[0] >= 8
    entry = ids.row(b"\x00")[b"schema:"]
    assert entry == b"\x00" + STRING_HASH + b"\x10" + b'"string"'
    hashes = raw.table(f"kiji.{name}.schema_hash")
    assert hashes.row(STRING_HASH)[b"schema:"] == entry


async def test_identity_and_native_translators_on_the_wire(
    client: Any, instance: tuple[str, Path], raw: Any
) -> None:
    name, _ = instance
    await post(
        client,
        f"/v1/instances/{name}/tables/ident/rows",
        {
            "entityId": "hbase=k\\x00ey",
            "cells": {
                "info": {"name": [{"timestamp": 2, "value": "n"}]},
                "tags": {"t:1": [{"timestamp": 3, "value": 7}]},
            },
        },
    )
    ident = raw.table(f"kiji.{name}.table.ident")
    assert ident.row(b"k\x00ey", include_timestamp=True) == {
        b"lg:info:name": (b"\x00\x02n", 2),
        b"lg:tags:t:1": (b"\x03\x0e", 3),
    }
    await post(
        client,
        f"/v1/instances/{name}/tables/native/rows",
        {"entityId": ["someone"], "cells": {"cf": {"name": [{"timestamp": 4, "value": "v"}]}}},
    )
    native = raw.table(f"kiji.{name}.table.native")
    key = md5(b"someone")[:4] + b"someone"  # HASH_PREFIX, hash_size 4 (§1.3)
    assert native.row(key, include_timestamp=True) == {b"cf:name": (b"\x00\x02v", 4)}


async def test_cells_written_raw_read_back_through_the_api(
    client: Any, instance: tuple[str, Path], raw: Any
) -> None:
    name, _ = instance
    # a row keyed and encoded by hand, as KijiSchema would have written it
    component = f"raw-{uuid.uuid4().hex[:8]}"
    key = md5(component.encode())[:2] + component.encode() + b"\x00b\x00c\x00" + bytes.fromhex("80000001")
    key += bytes.fromhex("7fffffffffffffff")
    table = raw.table(f"kiji.{name}.table.doc")
    table.put(key, {b"C:C:D": b"\x03\xda\x31"}, timestamp=100)  # long 3181 under UID 3
    table.put(key, {b"C:C:D": b"\x03\x02"}, timestamp=50)  # long 1, an older version
    table.put(key, {b"C:C:E": STRING_HASH + b"\x06abc"}, timestamp=100)  # HASH storage
    table.put(key, {b"C:C:G": struct.pack(">q", -5)}, timestamp=100)
    table.put(key, {b"C:D:k": b"\x00\x04zz"}, timestamp=100)
    table.put(key, {b"C:C:F": b"\x09\x09"}, timestamp=100)  # FINAL int: -5, trailing byte ignored
    table.put(key, {b"C:Z:zz": b"junk"}, timestamp=100)  # family id 25: no layout column, skipped
    eid = [component, "b", "c", 1, -1]
    rows = await get_rows(
        client, f"/v1/instances/{name}/tables/doc/rows?eid={orjson.dumps(eid).decode()}&versions=all"
    )
    assert rows == [
        {
            "entityId": eid,
            "cells": {
                "info": {
                    "count": [
                        {"timestamp": 100, "value": 3181, "writer_schema": 3},
                        {"timestamp": 50, "value": 1, "writer_schema": 3},
                    ],
                    "fixed": [{"timestamp": 100, "value": -5, "writer_schema": 2}],
                    "hits": [{"timestamp": 100, "value": -5, "writer_schema": 3}],
                    "name": [{"timestamp": 100, "value": "abc", "writer_schema": 0}],
                },
                "tags": {"k": [{"timestamp": 100, "value": "zz", "writer_schema": 0}]},
            },
        }
    ]
