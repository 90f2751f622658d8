"""Avro 1.7.6 schema reading and the canonical text (encodings.md §3.4, §4)."""

from __future__ import annotations

import hashlib

import pytest

from kijirest.avro.jackson import java_double_text
from kijirest.avro.schema import (
    AvroSchemaError,
    Names,
    UndefinedNameError,
    canonical_text,
    parse_schema,
    parse_schema_text,
    schema_hash,
)


def canon(text: str, names: Names | None = None) -> str:
    return canonical_text(parse_schema_text(text, names))


# -- primitives and the schema-table hashes (§4) -----------------------------------------------------

PRIMITIVE_HASHES = [
    ("string", "095d71cf12556b9d5e330ad575b3df5d"),
    ("bytes", "b462f06cb909be57c85008867784cde6"),
    ("int", "ef524ea1b91e73173d938ade36c1db32"),
    ("long", "e1dd9a1ef98b451b53690370b393966b"),
    ("float", "50a6b9db85da367a6d2df400a41758a6"),
    ("double", "bfc71a62f38b99d6a93690deeb4b3af6"),
    ("boolean", "01f692b30d4a1c8a3e600b1440637f8f"),
    ("null", "9b41ef67651c18488a8b08bb67c75699"),
]


@pytest.mark.parametrize("name,hash_hex", PRIMITIVE_HASHES)
def test_primitive_hashes(name: str, hash_hex: str) -> None:
    schema = parse_schema(name)
    assert schema.type == name
    assert schema.fullname is None
    assert canonical_text(schema) == f'"{name}"'
    assert schema_hash(schema).hex() == hash_hex
    # the object form without properties is the same schema
    assert schema_hash(parse_schema({"type": name})).hex() == hash_hex


def test_primitive_with_properties_keeps_them() -> None:
    text = '{"type": "string", "avro.java.string": "String"}'
    assert canon(text) == '{"type":"string","avro.java.string":"String"}'
    assert (
        schema_hash(parse_schema_text(text))
        == hashlib.md5(b'{"type":"string","avro.java.string":"String"}').digest()
    )
    assert schema_hash(parse_schema_text(text)) != schema_hash(parse_schema("string"))


def test_reserved_keys_that_mean_nothing_are_dropped() -> None:
    assert canon('{"type":"array","items":"int","doc":"d","name":"n","x":1}') == (
        '{"type":"array","items":"int","x":1}'
    )
    assert canon('{"type":"long","size":3,"symbols":[],"fields":[]}') == '"long"'


def test_array_map_union() -> None:
    assert canon('{"type":"map","values":{"type":"array","items":["null","string"]}}') == (
        '{"type":"map","values":{"type":"array","items":["null","string"]}}'
    )
    union = parse_schema(["null", "long"])
    assert union.type == "union"
    assert canonical_text(union) == '["null","long"]'


# -- whitespace, key order, doc, properties -----------------------------------------------------------

RECORD_A = """{"type": "record", "name": "User", "namespace": "org.example",
  "fields": [ {"name": "id", "type": "long"},
              {"name": "name", "type": ["null", "string"], "default": null} ]}"""
RECORD_B = """{"fields":[{"type":"long","name":"id"},{"default":null,"type":["null","string"],"name":"name"}],
"namespace":"org.example","name":"User","type":"record"}"""


def test_whitespace_and_key_order_do_not_matter() -> None:
    expected = (
        '{"type":"record","name":"User","namespace":"org.example","fields":[{"name":"id","type":"long"},'
        '{"name":"name","type":["null","string"],"default":null}]}'
    )
    assert canon(RECORD_A) == expected
    assert canon(RECORD_B) == expected
    assert schema_hash(parse_schema_text(RECORD_A)) == hashlib.md5(expected.encode()).digest()


def test_doc_and_properties_change_the_hash() -> None:
    base = schema_hash(parse_schema_text(RECORD_A))
    with_doc = RECORD_A.replace('"name": "User",', '"name": "User", "doc": "a user",')
    with_prop = RECORD_A.replace('"name": "User",', '"name": "User", "owner": "me",')
    field_doc = RECORD_A.replace('"type": "long"}', '"type": "long", "doc": "id"}')
    assert len({base, *(schema_hash(parse_schema_text(t)) for t in (with_doc, with_prop, field_doc))}) == 4


def test_record_key_order() -> None:
    text = """{"aliases": ["Old"], "zz": true, "fields": [], "doc": "D", "aa": [1, {"k": null}],
               "namespace": "n", "name": "R", "type": "record"}"""
    assert canon(text) == (
        '{"type":"record","name":"R","namespace":"n","doc":"D","fields":[],"zz":true,"aa":[1,{"k":null}],'
        '"aliases":["Old"]}'
    )


def test_field_key_order_and_field_properties() -> None:
    text = """{"type": "record", "name": "R", "fields": [
        {"p2": "x", "aliases": ["f0", "f00"], "order": "descending", "default": 5, "doc": "fd",
         "type": "int", "name": "f", "p1": {"b": 1, "a": 2}}]}"""
    assert canon(text) == (
        '{"type":"record","name":"R","fields":[{"name":"f","type":"int","doc":"fd","default":5,'
        '"order":"descending","aliases":["f0","f00"],"p2":"x","p1":{"b":1,"a":2}}]}'
    )


@pytest.mark.parametrize(
    "order,written",
    [
        ("ascending", None),
        ("ASCENDING", None),
        ("Descending", "descending"),
        ("IGNORE", "ignore"),
        ("ignore", "ignore"),
    ],
)
def test_field_order_is_case_insensitive_and_ascending_never_written(order: str, written: str | None) -> None:
    text = f'{{"type":"record","name":"R","fields":[{{"name":"f","type":"int","order":"{order}"}}]}}'
    expected_field = '{"name":"f","type":"int"' + (f',"order":"{written}"' if written else "") + "}"
    assert canon(text) == f'{{"type":"record","name":"R","fields":[{expected_field}]}}'


def test_bad_field_order() -> None:
    with pytest.raises(AvroSchemaError, match="order"):
        canon('{"type":"record","name":"R","fields":[{"name":"f","type":"int","order":"up"}]}')
    with pytest.raises(AvroSchemaError, match="order"):
        canon('{"type":"record","name":"R","fields":[{"name":"f","type":"int","order":1}]}')


def test_enum_and_fixed_key_order() -> None:
    assert (
        canon(
            '{"aliases":["E0"],"p":1,"symbols":["A","B"],"doc":"d","namespace":"n","name":"E","type":"enum"}'
        )
        == '{"type":"enum","name":"E","namespace":"n","doc":"d","symbols":["A","B"],"p":1,"aliases":["E0"]}'
    )
    assert canon('{"size":16,"p":"v","name":"MD5","type":"fixed","doc":"x","aliases":["m.H"]}') == (
        '{"type":"fixed","name":"MD5","doc":"x","size":16,"p":"v","aliases":["m.H"]}'
    )


def test_error_type() -> None:
    schema = parse_schema_text('{"type":"error","name":"Oops","fields":[{"name":"m","type":"string"}]}')
    assert schema.type == "record"
    assert canonical_text(schema) == '{"type":"error","name":"Oops","fields":[{"name":"m","type":"string"}]}'


def test_repeated_key_keeps_first_position_and_last_value() -> None:
    text = '{"type":"record","name":"R","fields":[],"x":1,"y":2,"x":3}'
    assert canon(text) == '{"type":"record","name":"R","fields":[],"x":3,"y":2}'
    text = '{"type":"record","name":"R","fields":[{"name":"f","type":"int","q":"a","r":"b","q":"c"}]}'
    assert canon(text) == '{"type":"record","name":"R","fields":[{"name":"f","type":"int","q":"c","r":"b"}]}'


# -- namespaces -----------------------------------------------------------------------------------


def test_dotted_name_carries_its_namespace() -> None:
    schema = parse_schema_text('{"type":"record","name":"a.b.R","namespace":"ignored","fields":[]}')
    assert schema.fullname == "a.b.R"
    assert schema.namespace == "a.b"
    assert schema.name == "R"
    assert canonical_text(schema) == '{"type":"record","name":"R","namespace":"a.b","fields":[]}'


def test_empty_namespace_at_top_level_is_none() -> None:
    schema = parse_schema_text('{"type":"record","name":"R","namespace":"","fields":[]}')
    assert schema.fullname == "R"
    assert canonical_text(schema) == '{"type":"record","name":"R","fields":[]}'


def test_nested_type_inherits_namespace_and_repeats_are_short() -> None:
    text = """{"type":"record","name":"R","namespace":"a","fields":[
        {"name":"e","type":{"type":"enum","name":"E","symbols":["X"]}},
        {"name":"e2","type":"E"},
        {"name":"e3","type":"a.E"},
        {"name":"self","type":["null","R"]}]}"""
    schema = parse_schema_text(text)
    assert schema.fields[0].schema.fullname == "a.E"
    assert canonical_text(schema) == (
        '{"type":"record","name":"R","namespace":"a","fields":[{"name":"e","type":{"type":"enum","name":"E",'
        '"symbols":["X"]}},{"name":"e2","type":"E"},{"name":"e3","type":"E"},{"name":"self","type":["null","R"]}]}'
    )


def test_nested_type_in_other_namespace_and_full_name_references() -> None:
    text = """{"type":"record","name":"x.R","fields":[
        {"name":"a","type":{"type":"record","name":"y.S","fields":[{"name":"b","type":"x.R"},{"name":"c","type":"S"}]}},
        {"name":"d","type":"y.S"}]}"""
    assert canon(text) == (
        '{"type":"record","name":"R","namespace":"x","fields":[{"name":"a","type":{"type":"record","name":"S",'
        '"namespace":"y","fields":[{"name":"b","type":"x.R"},{"name":"c","type":"S"}]}},{"name":"d","type":"y.S"}]}'
    )


def test_namespaceless_type_inside_namespaced_record_writes_empty_namespace() -> None:
    text = """{"type":"record","name":"R","namespace":"a","fields":[
        {"name":"f","type":{"type":"fixed","name":"F","namespace":"","size":2}},
        {"name":"g","type":"F"}]}"""
    with pytest.raises(UndefinedNameError) as info:
        # Avro 1.7.6 looks an undotted name up in the current namespace only: "F" means a.F here
        canon(text)
    assert info.value.name == "a.F"
    text = text.replace('"type":"F"', '"type":{"type":"array","items":"int"}')
    assert canon(text) == (
        '{"type":"record","name":"R","namespace":"a","fields":[{"name":"f","type":{"type":"fixed","name":"F",'
        '"namespace":"","size":2}},{"name":"g","type":{"type":"array","items":"int"}}]}'
    )


def test_namespaced_enum_inside_namespaceless_record() -> None:
    text = """{"type":"record","name":"R","fields":[
        {"name":"e","type":{"type":"enum","name":"E","namespace":"n","symbols":["A"]}},
        {"name":"e2","type":"n.E"}]}"""
    assert canon(text) == (
        '{"type":"record","name":"R","fields":[{"name":"e","type":{"type":"enum","name":"E","namespace":"n",'
        '"symbols":["A"]}},{"name":"e2","type":"n.E"}]}'
    )


def test_namespaceless_record_inside_namespaced_record_keeps_outer_default() -> None:
    # Avro 1.7.6 only changes the default namespace for a type that has one: C, inside the
    # namespace-less B inside a.A, is a.C, and is printed with its namespace since B resets the
    # printer's current namespace to none.
    text = """{"type":"record","name":"A","namespace":"a","fields":[
        {"name":"b","type":{"type":"record","name":"B","namespace":"","fields":[
            {"name":"c","type":{"type":"enum","name":"C","symbols":["S"]}}]}},
        {"name":"c2","type":"C"}]}"""
    schema = parse_schema_text(text)
    assert schema.fields[0].schema.fullname == "B"
    assert schema.fields[0].schema.fields[0].schema.fullname == "a.C"
    assert canonical_text(schema) == (
        '{"type":"record","name":"A","namespace":"a","fields":[{"name":"b","type":{"type":"record","name":"B",'
        '"namespace":"","fields":[{"name":"c","type":{"type":"enum","name":"C","namespace":"a","symbols":["S"]}}]}},'
        '{"name":"c2","type":"C"}]}'
    )
    # the canonical text reads back as the same schema
    assert canon(canonical_text(schema)) == canonical_text(schema)


def test_canonical_text_reparses_to_itself() -> None:
    for text in (RECORD_A, '{"type":"record","name":"x.R","fields":[{"name":"r","type":["null","x.R"]}]}'):
        first = canon(text)
        assert canon(first) == first


# -- aliases ----------------------------------------------------------------------------------------


def test_named_aliases_short_in_own_namespace_else_full() -> None:
    text = '{"type":"fixed","name":"a.b.F","size":1,"aliases":["G","c.H","a.b.F","G","a.b.c.K"]}'
    assert canon(text) == (
        '{"type":"fixed","name":"F","namespace":"a.b","size":1,"aliases":["G","c.H","F","a.b.c.K"]}'
    )
    schema = parse_schema_text(text)
    assert schema.aliases == ("a.b.G", "c.H", "a.b.F", "a.b.c.K")


def test_empty_aliases_are_not_written() -> None:
    assert canon(
        '{"type":"record","name":"R","aliases":[],"fields":[{"name":"f","type":"int","aliases":[]}]}'
    ) == ('{"type":"record","name":"R","fields":[{"name":"f","type":"int"}]}')


def test_bad_aliases() -> None:
    with pytest.raises(AvroSchemaError, match="aliases not an array"):
        canon('{"type":"enum","name":"E","symbols":[],"aliases":"x"}')
    with pytest.raises(AvroSchemaError, match="alias not a string"):
        canon('{"type":"enum","name":"E","symbols":[],"aliases":[1]}')
    with pytest.raises(AvroSchemaError, match="Illegal"):
        canon('{"type":"enum","name":"E","symbols":[],"aliases":["1x"]}')


# -- JSON values as Jackson 1.x writes them ------------------------------------------------------------


def test_string_escaping() -> None:
    doc = 'q" b\\ \b\t\n\f\r \x01\x1f / \x7f é 日'
    schema = parse_schema({"type": "record", "name": "R", "doc": doc, "fields": []})
    assert canonical_text(schema) == (
        '{"type":"record","name":"R",'
        '"doc":"q\\" b\\\\ \\b\\t\\n\\f\\r \\u0001\\u001F / \x7f é 日","fields":[]}'
    )
    assert schema_hash(schema) == hashlib.md5(canonical_text(schema).encode("utf-8")).digest()


def test_property_keys_are_escaped_too() -> None:
    assert canon('{"type":"int","a\\"\\n":"\\u0000"}') == '{"type":"int","a\\"\\n":"\\u0000"}'


@pytest.mark.parametrize(
    "literal,written",
    [
        ("1", "1"),
        ("-0", "0"),
        ("-12", "-12"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("1.0", "1.0"),
        ("1e2", "100.0"),
        ("0.001", "0.001"),
        ("1234567.5", "1234567.5"),
        ("1e7", "1.0E7"),
        ("1E-4", "1.0E-4"),
        ("1.2345e10", "1.2345E10"),
        ("0.0", "0.0"),
        ("-0.0", "-0.0"),
        ("-2.5e-7", "-2.5E-7"),
        ("0.1", "0.1"),
        ("9999999.0", "9999999.0"),
        ("123e-5", "0.00123"),
        ("1.7976931348623157e308", "1.7976931348623157E308"),
        ("true", "true"),
        ("null", "null"),
    ],
)
def test_number_literals(literal: str, written: str) -> None:
    assert canon(f'{{"type":"int","p":{literal}}}') == f'{{"type":"int","p":{written}}}'
    assert canon(
        f'{{"type":"record","name":"R","fields":[{{"name":"f","type":"long","default":{literal}}}]}}'
    ) == (f'{{"type":"record","name":"R","fields":[{{"name":"f","type":"long","default":{written}}}]}}')


def test_java_double_text_thresholds() -> None:
    assert java_double_text(0.001) == "0.001"
    assert java_double_text(0.000999) == "9.99E-4"
    assert java_double_text(9999999.999) == "9999999.999"
    assert java_double_text(10000000.0) == "1.0E7"
    assert java_double_text(-1.0) == "-1.0"


@pytest.mark.parametrize(
    "ftype,default,written",
    [
        ("double", '"NaN"', '"NaN"'),
        ("float", '"NaN"', '"NaN"'),
        ("double", '"Infinity"', '"Infinity"'),
        ("double", '"-Infinity"', '"-Infinity"'),
        ("float", '"1.5"', "1.5"),
        ("double", '"1e7"', "1.0E7"),
        ("double", '" 2 "', "2.0"),
        ("double", '"3.25f"', "3.25"),
        ("double", "2", "2"),
        ("string", '"NaN"', '"NaN"'),
        ("long", '"1.5"', '"1.5"'),
        (["double", "null"], '"NaN"', '"NaN"'),
    ],
)
def test_string_defaults_on_float_and_double_fields(ftype: object, default: str, written: str) -> None:
    import orjson

    t = orjson.dumps(ftype).decode()
    text = f'{{"type":"record","name":"R","fields":[{{"name":"f","type":{t},"default":{default}}}]}}'
    assert (
        canon(text)
        == f'{{"type":"record","name":"R","fields":[{{"name":"f","type":{t},"default":{written}}}]}}'
    )


def test_nan_default_is_a_number_on_double_field() -> None:
    schema = parse_schema_text(
        '{"type":"record","name":"R","fields":[{"name":"f","type":"double","default":"NaN"}]}'
    )
    default = schema.fields[0].default
    assert isinstance(default, float) and default != default


def test_bad_numeric_string_default() -> None:
    with pytest.raises(AvroSchemaError, match="default"):
        canon('{"type":"record","name":"R","fields":[{"name":"f","type":"double","default":"abc"}]}')


def test_field_without_default_and_null_default() -> None:
    schema = parse_schema_text(RECORD_A)
    assert not schema.fields[0].has_default
    assert schema.fields[1].has_default and schema.fields[1].default is None


# -- named types and Names -------------------------------------------------------------------------


def test_names_registry_across_parses() -> None:
    names = Names()
    enum = parse_schema_text('{"type":"enum","name":"a.Color","symbols":["RED"]}', names)
    assert "a.Color" in names
    assert names.get("a.Color") is enum
    record = parse_schema_text('{"type":"record","name":"a.R","fields":[{"name":"c","type":"Color"}]}', names)
    # a type from another parse is written in full: each text stands alone
    assert canonical_text(record) == (
        '{"type":"record","name":"R","namespace":"a","fields":[{"name":"c","type":{"type":"enum","name":"Color",'
        '"symbols":["RED"]}}]}'
    )
    assert record.fields[0].schema is enum


def test_names_unchanged_when_parse_fails() -> None:
    names = Names()
    text = """{"type":"record","name":"R","fields":[
        {"name":"a","type":{"type":"enum","name":"E","symbols":["X"]}},
        {"name":"b","type":"Missing"}]}"""
    with pytest.raises(UndefinedNameError) as info:
        parse_schema_text(text, names)
    assert info.value.name == "Missing"
    assert "R" not in names and "E" not in names and len(names) == 0
    parse_schema_text('{"type":"record","name":"Missing","fields":[]}', names)
    schema = parse_schema_text(text, names)
    assert schema.fullname == "R" and "E" in names


def test_undefined_name_in_union_and_top_level() -> None:
    with pytest.raises(UndefinedNameError, match="Undefined name") as info:
        parse_schema(["null", "x.Y"])
    assert info.value.name == "x.Y"
    with pytest.raises(UndefinedNameError):
        parse_schema("Nope")


def test_redefinition() -> None:
    with pytest.raises(AvroSchemaError, match="Can't redefine: R"):
        canon(
            '{"type":"record","name":"R","fields":[{"name":"r","type":{"type":"record","name":"R","fields":[]}}]}'
        )
    names = Names()
    parse_schema_text('{"type":"fixed","name":"F","size":1}', names)
    with pytest.raises(AvroSchemaError, match="Can't redefine: F"):
        parse_schema_text('{"type":"fixed","name":"F","size":1}', names)


@pytest.mark.parametrize(
    "text,message",
    [
        ("5", "Schema not yet supported"),
        ("{}", "No type"),
        ('{"type":["null","int"]}', "No type"),
        ('{"type":"Foo"}', "Type not supported"),
        ('{"type":"record","fields":[]}', "No name"),
        ('{"type":"record","name":"R"}', "Record has no fields"),
        ('{"type":"record","name":"R","fields":[{"type":"int"}]}', "No field name"),
        ('{"type":"record","name":"R","fields":[{"name":"f"}]}', "No field type"),
        ('{"type":"record","name":"R","fields":[{"name":"f","type":"Q"}]}', "is not a defined name"),
        (
            '{"type":"record","name":"R","fields":[{"name":"f","type":"int"},{"name":"f","type":"int"}]}',
            "Duplicate field",
        ),
        ('{"type":"record","name":"R","fields":[{"name":"1f","type":"int"}]}', "Illegal initial character"),
        ('{"type":"record","name":"R-2","fields":[]}', "Illegal character"),
        ('{"type":"record","name":"","fields":[]}', "Empty"),
        ('{"type":"record","name":"a..R","fields":[]}', "Empty namespace part"),
        ('{"type":"record","name":"int","fields":[]}', "named after primitives"),
        ('{"type":"enum","name":"E"}', "Enum has no symbols"),
        ('{"type":"enum","name":"E","symbols":["A","A"]}', "Duplicate enum symbol"),
        ('{"type":"enum","name":"E","symbols":["A-"]}', "Illegal character"),
        ('{"type":"enum","name":"E","symbols":[1]}', "not a string"),
        ('{"type":"fixed","name":"F"}', "Invalid or no size"),
        ('{"type":"fixed","name":"F","size":1.0}', "Invalid or no size"),
        ('{"type":"fixed","name":"F","size":"4"}', "Invalid or no size"),
        ('{"type":"fixed","name":"F","size":-1}', "Invalid fixed size"),
        ('{"type":"array"}', "Array has no items"),
        ('{"type":"map"}', "Map has no values"),
        ('["int",["null"]]', "Nested union"),
        ('["int","int"]', "Duplicate in union"),
        ('[{"type":"array","items":"int"},{"type":"array","items":"long"}]', "Duplicate in union"),
        ('{"type":', "Invalid schema JSON"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(AvroSchemaError, match=message):
        parse_schema_text(text)


def test_error_message_names_the_place() -> None:
    with pytest.raises(AvroSchemaError) as info:
        parse_schema_text(
            '{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":["int","int"]}]}'
        )
    assert str(info.value).startswith("fields[1].type[1]: ")


def test_union_of_distinct_named_types_is_fine() -> None:
    text = '[{"type":"fixed","name":"A","size":1},{"type":"fixed","name":"B","size":1},"A"]'
    with pytest.raises(AvroSchemaError, match="Duplicate in union: A"):
        parse_schema_text(text)
    schema = parse_schema_text(text[: text.rindex(",")] + "]")
    assert [b.branch_name for b in schema.branches] == ["A", "B"]


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(AvroSchemaError, match="surrogate"):
        parse_schema({"type": "record", "name": "R", "doc": "\ud800", "fields": []})
    with pytest.raises(AvroSchemaError):
        parse_schema_text('{"type":"int","p":"\\ud800"}')


def test_schema_equality_is_canonical_text_equality() -> None:
    assert parse_schema_text(RECORD_A) == parse_schema_text(RECORD_B)
    assert parse_schema("string") == parse_schema({"type": "string"})
    assert parse_schema("string") != parse_schema("bytes")
    assert len({parse_schema_text(RECORD_A), parse_schema_text(RECORD_B)}) == 1
