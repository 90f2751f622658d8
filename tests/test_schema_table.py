"""The instance schema table (encodings.md §4) on every store."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest

from kijirest.avro.schema import PRIMITIVE_TYPES, Schema, canonical_text, parse_schema
from kijirest.cells import ColumnCodec
from kijirest.layouts.model import CellSpec
from kijirest.primitives import encode_varint
from kijirest.schema_table import (
    SCHEMA_FAMILY,
    SchemaEntry,
    SchemaTable,
    SchemaTableError,
    decode_entry,
    encode_entry,
)
from kijirest.store.base import FOREVER, Store

PRIMITIVE_HASHES = [
    "095d71cf12556b9d5e330ad575b3df5d",
    "b462f06cb909be57c85008867784cde6",
    "ef524ea1b91e73173d938ade36c1db32",
    "e1dd9a1ef98b451b53690370b393966b",
    "50a6b9db85da367a6d2df400a41758a6",
    "bfc71a62f38b99d6a93690deeb4b3af6",
    "01f692b30d4a1c8a3e600b1440637f8f",
    "9b41ef67651c18488a8b08bb67c75699",
]


@pytest.fixture
def instance(created_tables: list[str]) -> str:
    """A fresh instance name; its two schema tables are dropped after the test (HBase)."""
    name = f"i_{uuid.uuid4().hex[:16]}"
    created_tables += [f"kiji.{name}.schema_id", f"kiji.{name}.schema_hash"]
    return name


@pytest.fixture
def new_table(store: Store, instance: str) -> Callable[[], SchemaTable]:
    """Another SchemaTable on the same store and instance: what a second process would hold."""

    def make() -> SchemaTable:
        return SchemaTable(store, instance, install_timeout=10, miss_interval=0)

    return make


def latest(store: Store, table: str, key: bytes) -> bytes:
    ((_, cells),) = store.get_rows(table, [key])
    assert cells, f"no row {key!r} in {table}"
    return cells[0][3]


def user_schema(i: int) -> Schema:
    return parse_schema({"type": "record", "name": f"Rec{i}", "fields": [{"name": "f", "type": "long"}]})


def test_entry_bytes_for_string() -> None:
    entry = SchemaEntry(0, bytes.fromhex(PRIMITIVE_HASHES[0]), '"string"')
    data = encode_entry(entry)
    assert data.hex() == "00" + PRIMITIVE_HASHES[0] + "10" + b'"string"'.hex()
    assert decode_entry(data) == entry
    big = SchemaEntry(300, b"\x01" * 16, "é")
    assert encode_entry(big) == bytes.fromhex("d804") + b"\x01" * 16 + b"\x04" + "é".encode()


def test_installation(store: Store, instance: str, new_table: Callable[[], SchemaTable]) -> None:
    table = new_table()
    assert table.install() is True
    assert latest(store, table.id_table, b"counter") == (8).to_bytes(8, "big")
    for uid, (name, hash_hex) in enumerate(zip(PRIMITIVE_TYPES, PRIMITIVE_HASHES, strict=True)):
        expected = encode_entry(SchemaEntry(uid, bytes.fromhex(hash_hex), f'"{name}"'))
        assert latest(store, table.id_table, encode_varint(uid)) == expected
        assert latest(store, table.hash_table, bytes.fromhex(hash_hex)) == expected
    assert latest(store, table.id_table, b"\x00") == bytes.fromhex(
        "00" + PRIMITIVE_HASHES[0] + "10" + b'"string"'.hex()
    )
    for name in (table.id_table, table.hash_table):
        (family,) = store.table_families(name).values()
        assert family.name == b"schema"
        assert family.max_versions == 2147483647
        assert family.ttl_seconds == FOREVER
        assert family.compression == "NONE"
        assert family.bloom_filter == "NONE"
    assert [(e.uid, e.hash.hex(), e.text) for e in table.entries()] == [
        (i, h, f'"{n}"') for i, (n, h) in enumerate(zip(PRIMITIVE_TYPES, PRIMITIVE_HASHES, strict=True))
    ]
    assert table.listing()[3] == {"id": 3, "hash": PRIMITIVE_HASHES[3], "avro_schema": '"long"'}
    assert (table.entries()[3].id, table.entries()[3].schema) == (3, '"long"')
    # a second start finds the tables and installs nothing
    again = new_table()
    assert again.install() is False
    assert again.counter() == 8
    assert again.by_uid(7) == SchemaEntry(7, bytes.fromhex(PRIMITIVE_HASHES[7]), '"null"')


def test_first_user_schema_gets_8_and_reregistering_returns_it(
    store: Store, new_table: Callable[[], SchemaTable]
) -> None:
    table = new_table()
    table.install()
    union = parse_schema(["null", "string"])
    assert table.get_or_create(union) == 8
    assert table.get_or_create(parse_schema(["null", {"type": "string"}])) == 8
    assert table.get_or_create(parse_schema("long")) == 3
    assert table.counter() == 9
    assert table.get_or_create(user_schema(1)) == 9
    entry = table.by_uid(8)
    assert entry is not None and entry.text == '["null","string"]'
    assert latest(store, table.id_table, b"\x08") == latest(store, table.hash_table, entry.hash)
    assert table.lookup(union) == entry
    assert table.lookup(user_schema(2)) is None


def test_unknown_uid_and_hash(new_table: Callable[[], SchemaTable]) -> None:
    table = new_table()
    table.install()
    assert table.by_uid(8) is None
    assert table.has_uid(7) and not table.has_uid(8)
    assert table.by_uid(-1) is None
    assert table.by_hash(b"\x00" * 16) is None
    assert table.by_hash(b"short") is None


def test_two_threads_racing_on_50_new_schemas(new_table: Callable[[], SchemaTable]) -> None:
    table = new_table()
    table.install()
    schemas = [user_schema(i) for i in range(50)]
    results: list[dict[str, int]] = [{}, {}]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(slot: int) -> None:
        try:
            barrier.wait()
            order = schemas if slot == 0 else list(reversed(schemas))
            for s in order:
                results[slot][canonical_text(s)] = table.get_or_create(s)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results[0] == results[1]
    assert sorted(results[0].values()) == list(range(8, 58))
    assert table.counter() == 58
    fresh = new_table()
    fresh.load()
    for text, uid in results[0].items():
        entry = fresh.by_uid(uid)
        assert entry is not None and entry.text == text


def test_second_process_sees_schemas_after_a_miss(new_table: Callable[[], SchemaTable]) -> None:
    first, second = new_table(), new_table()
    first.install()
    second.install()
    schema = user_schema(7)
    uid = first.get_or_create(schema)
    assert uid == 8
    entry = second.by_uid(uid)
    assert entry is not None and entry.text == canonical_text(schema)
    assert second.lookup(schema) == entry
    # registering it again from the other process reuses the id
    assert second.get_or_create(schema) == 8
    assert second.counter() == 9
    # a cell written by the first process decodes in the second
    spec = CellSpec(type="AVRO", storage="UID")
    assert ColumnCodec(spec, second).decode(encode_varint(uid) + b"\x06") == ({"f": 3}, 8)


def test_two_processes_racing_keep_every_id_readable(new_table: Callable[[], SchemaTable]) -> None:
    first, second = new_table(), new_table()
    first.install()
    second.install()
    schemas = [user_schema(i) for i in range(20)]
    answers: list[dict[str, int]] = [{}, {}]
    barrier = threading.Barrier(2)

    def work(slot: int, table: SchemaTable) -> None:
        barrier.wait()
        for s in schemas:
            answers[slot][canonical_text(s)] = table.get_or_create(s)

    threads = [threading.Thread(target=work, args=(i, t)) for i, t in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = new_table()
    reader.load()
    handed_out = set(answers[0].values()) | set(answers[1].values())
    for slot in (0, 1):
        for text, uid in answers[slot].items():
            entry = reader.by_uid(uid)
            assert entry is not None and entry.text == text
    assert reader.counter() == 8 + len(handed_out)
    for s in schemas:
        found = reader.lookup(s)
        assert found is not None and found.uid in (
            answers[0][canonical_text(s)],
            answers[1][canonical_text(s)],
        )


def test_concurrent_installs_install_once(store: Store, new_table: Callable[[], SchemaTable]) -> None:
    tables = [new_table() for _ in range(3)]
    installed: list[bool] = []
    barrier = threading.Barrier(3)

    def work(t: SchemaTable) -> None:
        barrier.wait()
        installed.append(t.install())

    threads = [threading.Thread(target=work, args=(t,)) for t in tables]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(installed) == [False, False, True]
    assert tables[0].counter() == 8
    for t in tables:
        assert [e.text for e in t.entries()] == [f'"{n}"' for n in PRIMITIVE_TYPES]


def test_waiting_for_an_unfinished_install_is_bounded(store: Store, instance: str) -> None:
    table = SchemaTable(store, instance, install_timeout=0.2, poll_interval=0.02)
    store.create_table(table.id_table, [SCHEMA_FAMILY])
    store.put_row(table.id_table, b"counter", [(b"schema", b"", 1, (3).to_bytes(8, "big"))])
    with pytest.raises(SchemaTableError, match="not installed \\(counter 3"):
        table.install()
