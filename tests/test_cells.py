"""Cell bytes (encodings.md §3.1-§3.2): varints, prefixes, cell kinds, decode errors, POST checks."""

from __future__ import annotations

import hashlib

import pytest

from kijirest.avro.codecs import encode_datum
from kijirest.avro.schema import PRIMITIVE_TYPES, Schema, canonical_text, parse_schema, parse_schema_text
from kijirest.cells import (
    CellDecodeError,
    CellEncodeError,
    ColumnCodec,
    cell_bytes,
    decode_counter,
    encode_counter,
    encode_raw_bytes,
)
from kijirest.layouts.model import AvroSchemaRef, CellSpec
from kijirest.primitives import decode_varint, encode_varint
from kijirest.schema_table import SchemaEntry


class Lookup:
    """An in-memory schema table: the 8 primitives as uids 0..7, then whatever a test adds."""

    def __init__(self) -> None:
        self.by_id: dict[int, SchemaEntry] = {}
        self.by_md5: dict[bytes, SchemaEntry] = {}
        self.calls = 0
        for name in PRIMITIVE_TYPES:
            self.add(name)

    def add(self, schema: object) -> int:
        text = canonical_text(schema if isinstance(schema, Schema) else parse_schema(schema))
        digest = hashlib.md5(text.encode()).digest()
        if digest in self.by_md5:
            return self.by_md5[digest].uid
        entry = SchemaEntry(len(self.by_id), digest, text)
        self.by_id[entry.uid] = entry
        self.by_md5[digest] = entry
        return entry.uid

    def by_uid(self, uid: int) -> SchemaEntry | None:
        self.calls += 1
        return self.by_id.get(uid)

    def by_hash(self, schema_hash: bytes) -> SchemaEntry | None:
        self.calls += 1
        return self.by_md5.get(schema_hash)


def md5(text: str) -> bytes:
    return hashlib.md5(text.encode()).digest()


def inline(value: str, storage: str = "UID") -> CellSpec:
    return CellSpec(
        type="INLINE", storage=storage, value=value, schema=canonical_text(parse_schema_text(value))
    )


# -- varints (§3.2) ----------------------------------------------------------------------------------

VARINTS = [
    (0, "00"),
    (3, "03"),
    (8, "08"),
    (127, "7f"),
    (128, "8001"),
    (300, "ac02"),
    (16383, "ff7f"),
    (16384, "808001"),
    (2**31, "8080808008"),
    (2**63 - 1, "ffffffffffffffff7f"),
]


@pytest.mark.parametrize("value,hex_bytes", VARINTS)
def test_varint_vectors(value: int, hex_bytes: str) -> None:
    assert encode_varint(value).hex() == hex_bytes
    data = bytes.fromhex(hex_bytes)
    assert decode_varint(data + b"\xff") == (value, len(data))


def test_varint_is_not_zigzag_and_rejects_negatives() -> None:
    assert encode_varint(1) == b"\x01"
    with pytest.raises(ValueError):
        encode_varint(-1)


def test_varint_rejects_an_eleventh_byte_and_truncation() -> None:
    assert decode_varint(b"\x80" * 9 + b"\x01") == (2**63, 10)
    with pytest.raises(ValueError, match="10 bytes"):
        decode_varint(b"\x80" * 10 + b"\x01")
    with pytest.raises(ValueError, match="truncated"):
        decode_varint(b"\x80\x80")
    with pytest.raises(ValueError, match="truncated"):
        decode_varint(b"")


# -- cell kinds (§3.1) ---------------------------------------------------------------------------------


def test_long_under_uid_storage_is_03da31() -> None:
    lookup = Lookup()
    codec = ColumnCodec(inline('"long"'), lookup)
    assert encode_datum(3181, parse_schema("long")).hex() == "da31"
    assert codec.decode(bytes.fromhex("03da31")) == (3181, 3)
    assert codec.cell_bytes(bytes.fromhex("da31"), None, 3).hex() == "03da31"


def test_hash_storage() -> None:
    lookup = Lookup()
    codec = ColumnCodec(inline('"long"', "HASH"), lookup)
    cell = md5('"long"') + bytes.fromhex("da31")
    assert codec.decode(cell) == (3181, 3)
    assert cell_bytes("HASH", bytes.fromhex("da31"), md5('"long"')) == cell


def test_final_storage_has_no_prefix() -> None:
    lookup = Lookup()
    codec = ColumnCodec(inline('"long"', "FINAL"), lookup)
    assert codec.decode(bytes.fromhex("da31")) == (3181, 3)
    assert cell_bytes("FINAL", b"\xda\x31") == b"\xda\x31"


def test_final_column_schema_must_be_registered() -> None:
    with pytest.raises(ValueError, match="not in the schema table"):
        ColumnCodec(inline('{"type":"fixed","name":"F","size":2}', "FINAL"), Lookup())


def test_bytes_after_the_datum_are_ignored() -> None:
    codec = ColumnCodec(inline('"string"'), Lookup())
    assert codec.decode(b"\x00\x06abc" + b"\x99garbage") == ("abc", 0)


@pytest.mark.parametrize("method", ["decode", "decode_cell"])
def test_uid_above_127_and_union_column(method: str) -> None:
    lookup = Lookup()
    for i in range(200):
        lookup.add({"type": "fixed", "name": f"F{i}", "size": 1})
    uid = lookup.add(["null", "string"])
    assert uid == 208
    codec = ColumnCodec(inline('["null", "string"]'), lookup)
    assert getattr(codec, method)(encode_varint(uid) + b"\x02\x0aa@b.c") == ("a@b.c", 208)
    assert getattr(codec, method)(encode_varint(uid) + b"\x00") == (None, 208)
    # a cell written with the plain "string" schema reads through the union reader too
    assert getattr(codec, method)(b"\x00\x0aa@b.c") == ("a@b.c", 0)


def test_counter_cells() -> None:
    codec = ColumnCodec(CellSpec(type="COUNTER", storage="FINAL"), Lookup())
    assert codec.decode(bytes.fromhex("000000000000002a")) == (42, 3)
    assert codec.decode(b"\xff" * 8) == (-1, 3)
    assert decode_counter(bytes.fromhex("8000000000000000")) == -(2**63)
    with pytest.raises(CellDecodeError, match="counter cell has 5 bytes, expected 8"):
        codec.decode(b"\x00" * 5)
    with pytest.raises(CellDecodeError, match="expected 8"):
        codec.decode(b"\x00" * 9)
    # a counter is FINAL whatever storage the spec carries (CellSpec defaults to HASH)
    default_storage = ColumnCodec(CellSpec(type="COUNTER"), Lookup())
    assert default_storage.decode(bytes.fromhex("000000000000002a")) == (42, 3)


def test_counter_set_values() -> None:
    assert encode_counter(5).hex() == "0000000000000005"
    assert encode_counter(-1) == b"\xff" * 8
    assert encode_counter(2**63 - 1).hex() == "7fffffffffffffff"
    for bad in ("5", 1.5, True, None, 2**63):
        with pytest.raises(CellEncodeError):
            encode_counter(bad)


@pytest.mark.parametrize("kind", ["RAW_BYTES", "PROTOBUF"])
def test_raw_bytes_cells(kind: str) -> None:
    codec = ColumnCodec(CellSpec(type=kind, storage="HASH"), Lookup())
    assert codec.decode(b"\x00\xff\x80a") == ("\x00\xff\x80a", 1)
    assert encode_raw_bytes("\x00\xff\x80a") == b"\x00\xff\x80a"
    with pytest.raises(CellEncodeError, match="U\\+0100"):
        encode_raw_bytes("\u0100")
    with pytest.raises(CellEncodeError):
        encode_raw_bytes(5)


# -- decode errors (the "Error loading cell: <reason>" cells) ----------------------------------------------


@pytest.mark.parametrize("method", ["decode", "decode_cell"])
def test_unknown_uid_and_hash(method: str) -> None:
    lookup = Lookup()
    codec = ColumnCodec(inline('"string"'), lookup)
    with pytest.raises(CellDecodeError, match="unknown schema uid 42"):
        getattr(codec, method)(b"\x2a\x00")
    hashed = ColumnCodec(inline('"string"', "HASH"), lookup)
    unknown = md5('"nope"')
    with pytest.raises(CellDecodeError, match=f"unknown schema hash {unknown.hex()}"):
        getattr(hashed, method)(unknown + b"\x00")
    with pytest.raises(CellDecodeError, match="shorter than a schema hash"):
        getattr(hashed, method)(b"\x01\x02")
    with pytest.raises(CellDecodeError, match="empty"):
        getattr(codec, method)(b"")


@pytest.mark.parametrize("method", ["decode", "decode_cell"])
def test_uid_registered_after_a_miss_is_found(method: str) -> None:
    lookup = Lookup()
    codec = ColumnCodec(inline('["null","string"]'), lookup)
    with pytest.raises(CellDecodeError, match="unknown schema uid 8"):
        getattr(codec, method)(b"\x08\x02\x02x")
    assert lookup.add(["null", "string"]) == 8
    assert getattr(codec, method)(b"\x08\x02\x02x") == ("x", 8)


@pytest.mark.parametrize("method", ["decode", "decode_cell"])
def test_writer_lookup_is_cached_per_uid(method: str) -> None:
    lookup = Lookup()
    codec = ColumnCodec(inline('"string"'), lookup)
    before = lookup.calls
    for _ in range(5):
        assert getattr(codec, method)(b"\x00\x02x") == ("x", 0)
    assert lookup.calls == before + 1


@pytest.mark.parametrize("method", ["decode", "decode_cell"])
@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ('"string"', ""),
        ('"string"', "é" * 31),  # 62 bytes: a one-byte length
        ('"string"', "x" * 63),
        ('"string"', "x" * 64),  # the first two-byte length
        ('"string"', "日本" * 300),
        ('"long"', 0),
        ('"long"', -64),  # the last one-byte value
        ('"long"', 63),
        ('"long"', 64),  # the first two-byte value
        ('"long"', -(2**63)),
        ('"int"', -1),
        ('"int"', 2**31 - 1),
    ],
)
def test_primitive_cells_of_every_varint_width(method: str, schema: str, value: object) -> None:
    """One-byte and longer lengths and varints (short strings take a shorter path in the reader);
    uids 0..7 are the primitive schemas."""
    codec = ColumnCodec(inline(schema), Lookup())
    uid = {'"string"': 0, '"long"': 3, '"int"': 2}[schema]
    datum = encode_datum(value, parse_schema_text(schema))
    assert getattr(codec, method)(encode_varint(uid) + datum) == (value, uid)
    assert getattr(codec, method)(encode_varint(uid) + datum + b"\x00trailing") == (value, uid)
    if len(datum) > 1:
        with pytest.raises(CellDecodeError, match="truncated"):
            getattr(codec, method)(encode_varint(uid) + datum[:-1])
    with pytest.raises(CellDecodeError, match="truncated"):
        getattr(codec, method)(encode_varint(uid))


@pytest.mark.parametrize("method", ["decode", "decode_cell"])
def test_negative_string_length_in_a_cell(method: str) -> None:
    codec = ColumnCodec(inline('"string"'), Lookup())
    with pytest.raises(CellDecodeError, match="negative length"):
        getattr(codec, method)(b"\x00\x03abc")


@pytest.mark.parametrize("method", ["decode", "decode_cell"])
def test_truncated_datum(method: str) -> None:
    codec = ColumnCodec(inline('"string"'), Lookup())
    with pytest.raises(CellDecodeError, match="truncated"):
        getattr(codec, method)(b"\x00\x0aab")
    codec = ColumnCodec(inline('"double"'), Lookup())
    with pytest.raises(CellDecodeError, match="truncated"):
        getattr(codec, method)(b"\x05\x00\x00")
    codec = ColumnCodec(inline('"long"'), Lookup())
    with pytest.raises(CellDecodeError, match="truncated"):
        getattr(codec, method)(b"\x03\x80")
    record = '{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}'
    lookup = Lookup()
    uid = lookup.add(parse_schema_text(record))
    codec = ColumnCodec(inline(record), lookup)
    with pytest.raises(CellDecodeError, match="truncated"):
        getattr(codec, method)(encode_varint(uid) + b"\x02")


def test_writer_that_does_not_resolve() -> None:
    lookup = Lookup()
    codec = ColumnCodec(inline('"int"'), lookup)
    with pytest.raises(CellDecodeError, match=r"does not resolve.*Found string, expecting int"):
        codec.decode(b"\x00\x02x")
    record = '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}'
    uid = lookup.add(parse_schema_text('{"type":"record","name":"R","fields":[{"name":"b","type":"int"}]}'))
    codec = ColumnCodec(inline(record), lookup)
    with pytest.raises(CellDecodeError, match="missing required field a"):
        codec.decode(encode_varint(uid) + b"\x02")


def test_writer_union_branch_fails_only_when_read() -> None:
    lookup = Lookup()
    uid = lookup.add(["null", "long"])
    codec = ColumnCodec(inline('"long"'), lookup)
    assert codec.decode(encode_varint(uid) + b"\x02\xda\x31") == (3181, uid)
    with pytest.raises(CellDecodeError, match="Found null, expecting long"):
        codec.decode(encode_varint(uid) + b"\x00")


def test_enum_symbol_missing_in_reader_fails_only_when_read() -> None:
    lookup = Lookup()
    uid = lookup.add({"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]})
    codec = ColumnCodec(inline('{"type":"enum","name":"Color","symbols":["BLUE","RED"]}'), lookup)
    assert codec.decode(encode_varint(uid) + b"\x00") == ("RED", uid)
    assert codec.decode(encode_varint(uid) + b"\x04") == ("BLUE", uid)
    with pytest.raises(CellDecodeError, match="No match for GREEN"):
        codec.decode(encode_varint(uid) + b"\x02")
    with pytest.raises(CellDecodeError, match="out of range"):
        codec.decode(encode_varint(uid) + b"\x06")


@pytest.mark.parametrize("method", ["decode", "decode_cell"])
def test_bad_union_index(method: str) -> None:
    lookup = Lookup()
    uid = lookup.add(["null", "string"])
    codec = ColumnCodec(inline('["null","string"]'), lookup)
    with pytest.raises(CellDecodeError, match="union index 2 out of range"):
        getattr(codec, method)(encode_varint(uid) + b"\x04")


# -- AVRO columns: reader schemas and POST writer checks (§3.5, §3.6) ------------------------------------


def test_avro_column_without_reader_reads_with_the_writer() -> None:
    lookup = Lookup()
    uid = lookup.add(["null", "int"])
    codec = ColumnCodec(CellSpec(type="AVRO", storage="UID"), lookup)
    assert codec.reader is None and codec.default_writer is None
    assert codec.decode(encode_varint(uid) + b"\x02\x04") == (2, uid)
    assert codec.decode(b"\x00\x02x") == ("x", 0)
    assert codec.writer_problem(parse_schema("boolean")) is None


def test_avro_column_default_reader_by_uid() -> None:
    lookup = Lookup()
    uid = lookup.add(["null", "long"])
    spec = CellSpec(type="AVRO", storage="UID", default_reader=AvroSchemaRef(uid=uid))
    codec = ColumnCodec(spec, lookup)
    assert canonical_text(codec.default_writer) == '["null","long"]'  # type: ignore[arg-type]
    # an int written under uid 2 is promoted to the reader's long branch, shown unwrapped
    assert codec.decode(b"\x02\x06") == (3, 2)
    with pytest.raises(ValueError, match="unknown schema uid 99"):
        ColumnCodec(CellSpec(type="AVRO", default_reader=AvroSchemaRef(uid=99)), lookup)


def test_writer_problem_resolution() -> None:
    codec = ColumnCodec(inline('["null","long"]'), Lookup())
    assert codec.writer_problem(parse_schema("int")) is None
    assert codec.writer_problem(parse_schema(["null", "int"])) is None
    problem = codec.writer_problem(parse_schema("string"))
    assert problem is not None and "Found string" in problem
    problem = codec.writer_problem(parse_schema(["string", "long"]))
    assert problem is not None and "Found string" in problem


def test_final_writer_must_be_the_column_schema() -> None:
    codec = ColumnCodec(inline('"long"', "FINAL"), Lookup())
    assert codec.writer_problem(parse_schema({"type": "long"})) is None
    problem = codec.writer_problem(parse_schema("int"))
    assert problem is not None and "FINAL" in problem


def test_strict_policy_needs_a_listed_writer() -> None:
    lookup = Lookup()
    spec = CellSpec(
        type="AVRO",
        storage="UID",
        avro_validation_policy="STRICT",
        default_reader=AvroSchemaRef(json='["null","long"]'),
        writers=(AvroSchemaRef(json='["null", "int"]'), AvroSchemaRef(uid=3)),
    )
    codec = ColumnCodec(spec, lookup)
    assert codec.writer_problem(parse_schema(["null", "int"])) is None
    assert codec.writer_problem(parse_schema("int")) is None  # a branch of a listed union
    assert codec.writer_problem(parse_schema("long")) is None  # uid 3
    problem = codec.writer_problem(parse_schema(["null", "long"]))
    assert problem is not None and "STRICT" in problem
    developer = ColumnCodec(
        CellSpec(
            type="AVRO",
            storage="UID",
            avro_validation_policy="DEVELOPER",
            default_reader=AvroSchemaRef(json='["null","long"]'),
        ),
        lookup,
    )
    assert developer.writer_problem(parse_schema(["null", "long"])) is None
    assert developer.writer_problem(parse_schema("string")) is not None


def test_non_avro_columns_take_any_writer() -> None:
    codec = ColumnCodec(CellSpec(type="COUNTER", storage="FINAL"), Lookup())
    assert codec.writer_problem(parse_schema("string")) is None
    assert codec.default_writer is None


def test_encode_datum_then_prefix_round_trip() -> None:
    lookup = Lookup()
    record = '{"type":"record","name":"org.User","fields":[{"name":"id","type":["null","long"]}]}'
    uid = lookup.add(parse_schema_text(record))
    writer = parse_schema_text(record)
    codec = ColumnCodec(inline(record), lookup)
    datum = codec.encode_datum({"id": {"long": 1}}, writer)
    assert datum == b"\x02\x02"
    assert codec.decode(codec.cell_bytes(datum, None, uid)) == ({"id": {"long": 1}}, uid)
    hashed = ColumnCodec(inline(record, "HASH"), lookup)
    cell = hashed.cell_bytes(datum, md5(canonical_text(writer)), None)
    assert hashed.decode(cell) == ({"id": {"long": 1}}, uid)


def test_cell_bytes_needs_its_prefix() -> None:
    with pytest.raises(ValueError):
        cell_bytes("HASH", b"", None)
    with pytest.raises(ValueError):
        cell_bytes("UID", b"", None, None)
