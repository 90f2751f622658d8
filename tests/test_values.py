"""Datum ⇄ JSON values: GET rendering, schema resolution, POST values (api.md, encodings.md §3.3-§3.6)."""

from __future__ import annotations

import io
import math
from typing import Any

import fastavro
import orjson
import pytest

from kijirest.avro.codecs import decode_datum, encode_datum, resolution_problem
from kijirest.avro.schema import Schema, canonical_text, parse_schema, parse_schema_text
from kijirest.cells import CellDecodeError, CellEncodeError


def S(value: object) -> Schema:
    """A schema from JSON text ('"long"', '[...]', '{...}'), a bare type name, or decoded JSON."""
    if isinstance(value, str) and value[:1] in ('"', "[", "{"):
        return parse_schema_text(value)
    return parse_schema(value)


def fast_bytes(schema: Schema, datum: Any) -> bytes:
    """The datum as fastavro writes it: an independent encoder of standard Avro binary."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(orjson.loads(canonical_text(schema))), datum)
    return out.getvalue()


def fast_read(schema: Schema, data: bytes) -> Any:
    return fastavro.schemaless_reader(
        io.BytesIO(data), fastavro.parse_schema(orjson.loads(canonical_text(schema)))
    )


TEAM = S(
    {
        "type": "record",
        "name": "Team",
        "namespace": "org.kiji",
        "fields": [{"name": "id", "type": ["null", "long"]}, {"name": "name", "type": ["null", "string"]}],
    }
)


# -- rendering (api.md "Value rendering") ------------------------------------------------------------


def test_top_level_union_is_unwrapped() -> None:
    schema = S(["null", "string"])
    assert decode_datum(fast_bytes(schema, "helloworld"), schema) == "helloworld"
    assert decode_datum(b"\x00", schema) is None


def test_nested_unions_are_wrapped() -> None:
    data = fast_bytes(TEAM, {"id": 1, "name": "Team Name"})
    assert decode_datum(data, TEAM) == {"id": {"long": 1}, "name": {"string": "Team Name"}}
    assert decode_datum(fast_bytes(TEAM, {"id": None, "name": None}), TEAM) == {"id": None, "name": None}


def test_named_branches_use_full_names() -> None:
    schema = S(
        {
            "type": "record",
            "name": "a.Outer",
            "fields": [
                {"name": "inner", "type": ["null", {"type": "record", "name": "Inner", "fields": []}]},
                {"name": "color", "type": ["null", {"type": "enum", "name": "b.Color", "symbols": ["RED"]}]},
            ],
        }
    )
    data = fast_bytes(schema, {"inner": {}, "color": "RED"})
    assert decode_datum(data, schema) == {"inner": {"a.Inner": {}}, "color": {"b.Color": "RED"}}


def test_enums_bytes_fixed_maps_arrays() -> None:
    schema = S(
        {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
                {"name": "b", "type": "bytes"},
                {"name": "f", "type": {"type": "fixed", "name": "F", "size": 3}},
                {"name": "m", "type": {"type": "map", "values": ["null", "int"]}},
                {"name": "a", "type": {"type": "array", "items": "string"}},
            ],
        }
    )
    datum = {"e": "B", "b": b"\x00\xff\xe9", "f": b"ab\x80", "m": {"x": 1, "y": None}, "a": ["p", "q"]}
    assert decode_datum(fast_bytes(schema, datum), schema) == {
        "e": "B",
        "b": "\x00\xff\xe9",
        "f": "ab\x80",
        "m": {"x": {"int": 1}, "y": None},
        "a": ["p", "q"],
    }
    assert decode_datum(fast_bytes(S("bytes"), b"\x01\xfe"), S("bytes")) == "\x01\xfe"


def test_floats_and_doubles() -> None:
    assert decode_datum(fast_bytes(S("float"), 0.1), S("float")) == 0.1
    assert decode_datum(fast_bytes(S("float"), 1.5e10), S("float")) == 1.5e10
    assert decode_datum(fast_bytes(S("double"), 0.1), S("double")) == 0.1
    assert decode_datum(fast_bytes(S("double"), math.nan), S("double")) == "NaN"
    assert decode_datum(fast_bytes(S("double"), -math.inf), S("double")) == "-Infinity"
    assert decode_datum(fast_bytes(S("float"), math.inf), S("float")) == "Infinity"


def test_unicode_strings() -> None:
    assert decode_datum(fast_bytes(S("string"), "héllo 日本"), S("string")) == "héllo 日本"
    # malformed UTF-8 in a stored string is replaced, as Java's decoder does
    assert decode_datum(b"\x04\xff\x41", S("string")) == "\ufffdA"


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 200, 70_000])
@pytest.mark.parametrize("kind", ["string", "bytes"])
def test_lengths_of_one_and_more_varint_bytes(kind: str, length: int) -> None:
    # lengths below 64 take one zig-zag byte (read on a short path), longer ones several
    value = "ab" * (length // 2) + "c" * (length % 2)
    datum = fast_bytes(S(kind), value if kind == "string" else value.encode())
    assert decode_datum(datum + b"\x00", S(kind)) == value
    with pytest.raises(CellDecodeError, match="truncated"):
        decode_datum(datum[:-1], S(kind)) if length else decode_datum(b"", S(kind))


@pytest.mark.parametrize("kind", ["string", "bytes"])
def test_negative_lengths_are_bad_data(kind: str) -> None:
    for prefix in (b"\x01", b"\x05", b"\x81\x01"):  # -1, -3, -65
        with pytest.raises(CellDecodeError, match="negative length"):
            decode_datum(prefix + b"abcdefgh", S(kind))


@pytest.mark.parametrize("fields", [0, 1, 2, 9])
def test_records_of_any_width_match_fastavro(fields: int) -> None:
    schema = S(
        {
            "type": "record",
            "name": f"W{fields}",
            "fields": [{"name": f"f{i}", "type": ["null", "string", "long"]} for i in range(fields)],
        }
    )
    value = {f"f{i}": (None, f"s{i}", i * 1000)[i % 3] for i in range(fields)}
    data = fast_bytes(schema, value)
    assert fast_read(schema, data) == value
    assert decode_datum(data, schema) == {
        k: v if v is None else {"string" if isinstance(v, str) else "long": v} for k, v in value.items()
    }


def test_negative_block_counts_from_other_writers() -> None:
    # [1, 2] written as one block of count -2 with its byte size (2)
    assert decode_datum(bytes.fromhex("03040204" + "00"), S({"type": "array", "items": "long"})) == [1, 2]
    data = bytes.fromhex("01" + "06" + "02" + "61" + "54" + "00")  # {"a": 42} as a block of -1, size 3
    assert decode_datum(data, S({"type": "map", "values": "long"})) == {"a": 42}


def test_recursive_record() -> None:
    node = S(
        '{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}'
    )
    value = {"v": 1, "next": {"Node": {"v": 2, "next": None}}}
    data = encode_datum(value, node)
    assert data == fast_bytes(node, {"v": 1, "next": {"v": 2, "next": None}})
    assert decode_datum(data, node) == value


# -- resolution (§3.6) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "writer,value,reader,shown",
    [
        ("int", 7, "long", 7),
        ("int", 7, "float", 7.0),
        ("int", 16777217, "float", 16777216.0),
        ("int", 7, "double", 7.0),
        ("long", 2**53 + 1, "double", float(2**53)),
        ("float", 0.1, "double", 0.10000000149011612),
        ("int", 7, '["null","long","int"]', 7),
    ],
)
def test_promotions(writer: str, value: Any, reader: str, shown: Any) -> None:
    w, r = S(f'"{writer}"'), S(reader)
    result = decode_datum(fast_bytes(w, value), w, r)
    assert result == shown and type(result) is type(shown)


def field_record(field_type: object) -> Schema:
    return S({"type": "record", "name": "R", "fields": [{"name": "f", "type": field_type}]})


@pytest.mark.parametrize(
    "writer,reader,shown",
    [
        # exact type first (Avro 1.7.6 bestBranch), then promotion int -> long/double, long/float -> double
        ("int", ["null", "long", "int"], {"int": 5}),
        ("int", ["null", "double", "long"], {"double": 5.0}),
        ("int", ["float", "long"], {"long": 5}),
        ("long", ["float", "double"], {"double": 5.0}),
        ("float", ["null", "double"], {"double": 5.0}),
        (["null", "int"], ["null", "long"], {"long": 5}),
    ],
)
def test_union_branch_selection(writer: object, reader: object, shown: Any) -> None:
    w, r = field_record(writer), field_record(reader)
    datum = {"f": 5 if "int" in str(writer) or "long" in str(writer) else 5.0}
    assert decode_datum(fast_bytes(w, datum), w, r) == {"f": shown}


def test_no_union_branch_for_writer() -> None:
    w, r = S("string"), S(["null", "long"])
    with pytest.raises(CellDecodeError, match="does not resolve"):
        decode_datum(b"\x02x", w, r)
    # 1.7.6 has no int -> float promotion inside unions
    assert resolution_problem(S("int"), S(["null", "float"])) is not None


def test_reader_defaults_and_skipped_writer_fields() -> None:
    writer = S(
        {
            "type": "record",
            "name": "V1",
            "fields": [
                {"name": "id", "type": "long"},
                {
                    "name": "tags",
                    "type": {"type": "array", "items": {"type": "map", "values": ["null", "string"]}},
                },
                {"name": "blob", "type": ["null", "bytes", {"type": "fixed", "name": "F", "size": 2}]},
                {
                    "name": "nested",
                    "type": {"type": "record", "name": "N", "fields": [{"name": "x", "type": "double"}]},
                },
                {"name": "name", "type": "string"},
            ],
        }
    )
    reader = S(
        {
            "type": "record",
            "name": "V2",
            "fields": [
                {"name": "name", "type": "string"},
                {"name": "id", "type": "long"},
                {"name": "email", "type": ["null", "string"], "default": None},
                {"name": "score", "type": "double", "default": "NaN"},
                {"name": "ratio", "type": ["double", "null"], "default": 1},
                {
                    "name": "kind",
                    "type": {"type": "enum", "name": "K", "symbols": ["X", "Y"]},
                    "default": "Y",
                },
                {
                    "name": "point",
                    "type": {
                        "type": "record",
                        "name": "P",
                        "fields": [
                            {"name": "a", "type": "int", "default": 4},
                            {"name": "b", "type": ["long", "null"]},
                        ],
                    },
                    "default": {"b": 9},
                },
            ],
        }
    )
    datum = {
        "id": 12,
        "tags": [{"k": "v", "n": None}, {}],
        "blob": b"\x01\x02",
        "nested": {"x": 1.5},
        "name": "Ann",
    }
    assert decode_datum(fast_bytes(writer, datum), writer, reader) == {
        "name": "Ann",
        "id": 12,
        "email": None,
        "score": "NaN",
        "ratio": {"double": 1.0},
        "kind": "Y",
        "point": {"a": 4, "b": {"long": 9}},
    }


def test_missing_field_without_default_does_not_resolve() -> None:
    w = S('{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}')
    r = S('{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}')
    assert "missing required field b" in (resolution_problem(w, r) or "")
    with pytest.raises(CellDecodeError, match="missing required field b"):
        decode_datum(b"\x02", w, r)


def test_field_aliases() -> None:
    w = S('{"type":"record","name":"R","fields":[{"name":"old","type":"int"}]}')
    r = S('{"type":"record","name":"R","fields":[{"name":"new","type":"long","aliases":["old"]}]}')
    assert resolution_problem(w, r) is None
    assert decode_datum(b"\x06", w, r) == {"new": 3}


@pytest.mark.parametrize(
    "writer,reader,ok",
    [
        ('"int"', '"long"', True),
        ('"long"', '"int"', False),
        ('"string"', '"bytes"', False),
        ('"bytes"', '"string"', False),
        ('"float"', '"long"', False),
        ('["null","string"]', '"string"', False),
        ('"string"', '["null","string"]', True),
        ('["int","long"]', '["null","double"]', True),
        ('{"type":"array","items":"int"}', '{"type":"array","items":"long"}', True),
        ('{"type":"map","values":"long"}', '{"type":"map","values":"int"}', False),
        (
            '{"type":"record","name":"a.User","fields":[]}',
            '{"type":"record","name":"b.User","fields":[]}',
            True,
        ),
        (
            '{"type":"record","name":"User","fields":[]}',
            '{"type":"record","name":"Person","fields":[]}',
            False,
        ),
        (
            '{"type":"record","name":"User","fields":[]}',
            '{"type":"record","name":"Person","aliases":["User"],"fields":[]}',
            True,
        ),
        (
            '{"type":"enum","name":"E","symbols":["A","B"]}',
            '{"type":"enum","name":"E","symbols":["B"]}',
            True,
        ),
        ('{"type":"enum","name":"E","symbols":["A"]}', '{"type":"enum","name":"G","symbols":["A"]}', False),
        ('{"type":"fixed","name":"F","size":2}', '{"type":"fixed","name":"x.F","size":2}', True),
        ('{"type":"fixed","name":"F","size":2}', '{"type":"fixed","name":"F","size":3}', False),
        (
            '{"type":"record","name":"a.R","fields":[]}',
            '["null",{"type":"record","name":"b.R","fields":[]}]',
            True,
        ),
    ],
)
def test_writer_reader_compatibility(writer: str, reader: str, ok: bool) -> None:
    problem = resolution_problem(S(writer), S(reader))
    assert (problem is None) == ok, problem


# -- POST values (api.md "POST rows") -------------------------------------------------------------------

CROSS_CHECK = [
    ("null", None, None),
    ("boolean", True, True),
    ("int", -(2**31), -(2**31)),
    ("long", 2**63 - 1, 2**63 - 1),
    ("long", -3181, -3181),
    ("float", 1.5, 1.5),
    ("double", 2, 2.0),
    ("string", "héllo", "héllo"),
    ("bytes", "\x00\xff", b"\x00\xff"),
    ({"type": "array", "items": "int"}, [], []),
    ({"type": "array", "items": "int"}, [1, -1, 300], [1, -1, 300]),
    ({"type": "map", "values": "string"}, {"b": "x", "a": "y"}, {"b": "x", "a": "y"}),
    (["null", "string"], "x", "x"),
    (["null", "string"], None, None),
    ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, "B", "B"),
    ({"type": "fixed", "name": "F", "size": 2}, "\x01\xfe", b"\x01\xfe"),
]


@pytest.mark.parametrize("schema,value,datum", CROSS_CHECK)
def test_encoding_matches_fastavro(schema: object, value: Any, datum: Any) -> None:
    s = S(schema)
    data = encode_datum(value, s)
    assert data == fast_bytes(s, datum)
    assert fast_read(s, data) == datum


def test_record_encoding_matches_fastavro_and_round_trips() -> None:
    value = {"id": {"long": 1}, "name": {"string": "Team Name"}}
    data = encode_datum(value, TEAM)
    assert data == fast_bytes(TEAM, {"id": 1, "name": "Team Name"})
    # what GET shows can be posted back: same bytes
    assert encode_datum(decode_datum(data, TEAM), TEAM) == data


def test_map_entries_keep_the_given_order() -> None:
    schema = S({"type": "map", "values": "int"})
    assert encode_datum({"z": 1, "a": 2}, schema) == bytes.fromhex("04" + "027a02" + "026104" + "00")


@pytest.mark.parametrize(
    "schema,value,message",
    [
        ("string", 5, "expected a string, got an integer"),
        ("string", None, "expected a string, got null"),
        ("int", 1.0, "expected an int, got a number"),
        ("int", True, "expected an int, got a boolean"),
        ("int", 2**31, "int out of range"),
        ("int", "12x", "expected an int, got a string"),
        ("long", 2**63, "long out of range"),
        ("long", -(2**63) - 1, "long out of range"),
        ("boolean", 1, "expected a boolean"),
        ("null", 0, "expected null"),
        ("float", 1e39, "float out of range"),
        ("double", "x", "expected a double, got a string"),
        ("double", [1], "expected a double, got an array"),
        ("string", "\ud800", "lone surrogate"),
        ("bytes", "\u0100", "above U\\+00FF"),
        ({"type": "fixed", "name": "F", "size": 2}, "abc", "expected 2 bytes, got 3"),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, "B", '"B" is not a symbol of enum E'),
        ({"type": "array", "items": "int"}, {"a": 1}, "expected an array, got an object"),
        ({"type": "map", "values": "int"}, [1], "expected an object, got an array"),
    ],
)
def test_value_errors(schema: object, value: Any, message: str) -> None:
    with pytest.raises(CellEncodeError, match=message):
        encode_datum(value, S(schema))


def test_numbers_for_floating_types_and_special_values() -> None:
    assert encode_datum(3, S("float")) == fast_bytes(S("float"), 3.0)
    assert encode_datum("NaN", S("double")) == fast_bytes(S("double"), math.nan)
    assert encode_datum("-Infinity", S("float")) == fast_bytes(S("float"), -math.inf)


PERSON = S(
    {
        "type": "record",
        "name": "Person",
        "fields": [
            {"name": "name", "type": "string"},
            {"name": "age", "type": ["null", "int"], "default": None},
            {
                "name": "address",
                "type": {"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]},
            },
            {"name": "phones", "type": {"type": "array", "items": "string"}, "default": []},
            {"name": "attrs", "type": {"type": "map", "values": "long"}, "default": {}},
        ],
    }
)


def test_record_fields_defaults_and_unknown_members() -> None:
    value = {"name": "Ann", "address": {"city": "Paris"}}
    assert decode_datum(encode_datum(value, PERSON), PERSON) == {
        "name": "Ann",
        "age": None,
        "address": {"city": "Paris"},
        "phones": [],
        "attrs": {},
    }
    with pytest.raises(CellEncodeError, match="unknown field\\(s\\) of record Person: nmae") as info:
        encode_datum({"nmae": "Ann", "name": "Ann", "address": {"city": "P"}}, PERSON)
    assert info.value.path == ""
    with pytest.raises(CellEncodeError, match="missing field city of record Address") as info:
        encode_datum({"name": "Ann", "address": {}}, PERSON)
    assert info.value.path == ".address.city"


@pytest.mark.parametrize(
    "value,path,message",
    [
        ({"name": "A", "address": {"city": 5}}, ".address.city", "expected a string"),
        ({"name": "A", "address": {"city": "P"}, "phones": ["1", 2]}, ".phones[1]", "expected a string"),
        ({"name": "A", "address": {"city": "P"}, "attrs": {'k"': "x"}}, '.attrs["k\\""]', "expected a long"),
        ({"name": "A", "address": {"city": "P"}, "age": 5}, ".age", "expected a union value"),
        ({"name": "A", "address": {"city": "P"}, "age": {"long": 5}}, ".age", "expected a union value"),
        ({"name": "A", "address": {"city": "P"}, "age": {"int": "5"}}, ".age.int", "expected an int"),
        ({"name": "A", "address": "Paris"}, ".address", "expected an object for record Address"),
    ],
)
def test_error_paths(value: Any, path: str, message: str) -> None:
    with pytest.raises(CellEncodeError, match=message) as info:
        encode_datum(value, PERSON)
    assert info.value.path == path
    assert str(info.value) == f"{path}: {info.value.reason}"


def test_top_level_union_bare_value_matching_one_branch() -> None:
    schema = S(["null", "long", "string"])
    assert encode_datum(5, schema) == b"\x02\x0a"
    assert encode_datum("x", schema) == b"\x04\x02x"
    assert encode_datum({"long": 5}, schema) == b"\x02\x0a"
    assert encode_datum(None, schema) == b"\x00"
    # an integer for a double branch is accepted when nothing else takes it
    assert encode_datum(2, S(["null", "double"])) == b"\x02" + fast_bytes(S("double"), 2.0)
    # a float goes to the double branch rather than to long
    assert encode_datum(2.5, S(["long", "double"])) == b"\x02" + fast_bytes(S("double"), 2.5)


def test_top_level_union_ambiguous_or_unmatched() -> None:
    with pytest.raises(CellEncodeError, match="ambiguous"):
        encode_datum("x", S(["string", "bytes"]))
    with pytest.raises(CellEncodeError, match="fits no branch"):
        encode_datum(True, S(["null", "long"]))
    with pytest.raises(CellEncodeError, match="fits no branch"):
        encode_datum(None, S(["long", "string"]))


def test_record_branch_of_top_level_union() -> None:
    schema = S(["null", orjson.loads(canonical_text(TEAM))])
    value = {"id": None, "name": {"string": "x"}}
    assert decode_datum(encode_datum(value, schema), schema) == value
    assert encode_datum({"org.kiji.Team": value}, schema) == encode_datum(value, schema)


def test_json_text_in_a_string_leniency() -> None:
    assert encode_datum("123", S("long")) == encode_datum(123, S("long"))
    assert encode_datum("123", S(["null", "long"])) == encode_datum(123, S(["null", "long"]))
    color = S({"type": "enum", "name": "Color", "symbols": ["RED"]})
    assert encode_datum('"RED"', color) == b"\x00"
    assert encode_datum("RED", color) == b"\x00"
    assert encode_datum('{"name": "A", "address": {"city": "P"}}', PERSON) == encode_datum(
        {"name": "A", "address": {"city": "P"}}, PERSON
    )
    # never for a string schema: the text is the value
    assert encode_datum("123", S("string")) == b"\x06123"
    # when the text is not JSON, or its JSON does not fit either, the first error is reported
    with pytest.raises(CellEncodeError, match="expected a long, got a string"):
        encode_datum("12x", S("long"))
    with pytest.raises(CellEncodeError, match="expected a long, got a string"):
        encode_datum("1.5", S("long"))


def test_encoded_bytes_read_back_with_fastavro_for_a_complex_record() -> None:
    value = {
        "name": "Ann",
        "age": {"int": 41},
        "address": {"city": "Zürich"},
        "phones": ["1", "2"],
        "attrs": {"a": -1},
    }
    data = encode_datum(value, PERSON)
    assert fast_read(PERSON, data) == {
        "name": "Ann",
        "age": 41,
        "address": {"city": "Zürich"},
        "phones": ["1", "2"],
        "attrs": {"a": -1},
    }
    assert decode_datum(data, PERSON) == value
