"""Layout files: dialect, union rules, defaults, version gates, validation messages, ids, effective
layout, schemas/ and directory rules (layouts.md)."""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from kijirest.avro.schema import Names
from kijirest.layouts.loader import (
    LayoutError,
    check_schema_uids,
    load_layout,
    load_layout_dir,
    load_schemas,
)
from kijirest.layouts.model import FOREVER_TTL, AvroSchemaRef, KeyComponent, RowKeySpec, TableLayout

DATA = Path(__file__).parent / "data" / "layouts"

SECTION_9 = (DATA / "shop" / "users.json").read_text()


def base(**top: Any) -> dict[str, Any]:
    """A small valid layout `t` (file shop/t.json); keyword arguments replace top-level fields."""
    doc: dict[str, Any] = {
        "name": "t",
        "version": "layout-1.5.0",
        "keys_format": {"encoding": "RAW"},
        "locality_groups": [
            {
                "name": "default",
                "in_memory": False,
                "max_versions": 1,
                "ttl_seconds": FOREVER_TTL,
                "compression_type": "NONE",
                "families": [
                    {
                        "name": "info",
                        "columns": [
                            {
                                "name": "a",
                                "column_schema": {"type": "INLINE", "storage": "UID", "value": '"string"'},
                            }
                        ],
                    }
                ],
            }
        ],
    }
    doc.update(top)
    return doc


def lg0(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["locality_groups"][0]


def fam0(doc: dict[str, Any]) -> dict[str, Any]:
    return lg0(doc)["families"][0]


def col0(doc: dict[str, Any]) -> dict[str, Any]:
    return fam0(doc)["columns"][0]


def load(doc: dict[str, Any] | str, file: str = "shop/t.json", names: Names | None = None) -> TableLayout:
    text = doc if isinstance(doc, str) else orjson.dumps(doc).decode()
    return load_layout(text, file=file, names=names)


def error(doc: dict[str, Any] | str, file: str = "shop/t.json", names: Names | None = None) -> str:
    with pytest.raises(LayoutError) as info:
        load(doc, file, names)
    return str(info.value)


def formatted(**keys: Any) -> dict[str, Any]:
    kf = {
        "encoding": "FORMATTED",
        "components": [{"name": "a", "type": "STRING"}, {"name": "b", "type": "LONG"}],
    }
    kf.update(keys)
    return base(keys_format=kf)


# ---------------------------------------------------------------------------------------------------
# The §9 example


def test_section_9_example() -> None:
    t = load(SECTION_9, "shop/users.json")
    assert t.name == "users"
    assert t.row_key == RowKeySpec(
        "FORMATTED",
        hash_size=2,
        components=(KeyComponent("org", "STRING"), KeyComponent("login", "STRING")),
        range_scan_start_index=1,
        nullable_start_index=2,
    )
    (main,) = t.locality_groups
    assert (main.name, main.id, main.max_versions, main.ttl_seconds, main.compression_type) == (
        "main",
        1,
        5,
        FOREVER_TTL,
        "GZ",
    )
    assert main.bloom_type is None and main.block_size is None and main.in_memory is False
    profile, prefs = main.families
    assert (profile.name, profile.id, prefs.name, prefs.id) == ("profile", 1, "prefs", 2)
    assert [(c.name, c.id) for c in profile.columns] == [("full_name", 1), ("email", 2), ("logins", 3)]
    assert not profile.is_map and prefs.is_map
    assert profile.locality_group == "main"
    full_name, email, logins = profile.columns
    assert (full_name.cell.type, full_name.cell.storage, full_name.cell.schema) == (
        "INLINE",
        "UID",
        '"string"',
    )
    assert email.cell.schema == '["null","string"]'
    assert (logins.cell.type, logins.cell.storage, logins.cell.schema) == ("COUNTER", "FINAL", None)
    assert prefs.map_cell is not None and prefs.map_cell.schema == '"string"'
    assert t.column_name_translator == "SHORT"
    assert t.version == "layout-1.1.0"


# ---------------------------------------------------------------------------------------------------
# Dialect and structure


def test_lenient_dialect_features() -> None:
    text = """// comment
    {name: 't', version: 'layout-1.0', /* block */ keys_format: {'encoding': "RAW"},
     $unused_is_still_a_name_check: 1}"""
    assert "unexpected field '$unused_is_still_a_name_check'" in error(text)
    t = load("{name: 't', version: 'layout-1.0', keys_format: {'encoding': \"RAW\"}} // end")
    assert t.row_key == RowKeySpec("RAW") and t.locality_groups == ()


def test_syntax_error_names_file_line_and_column() -> None:
    msg = error("{\n  name: 't',\n  version: 'layout-1.0',,\n}")
    assert msg.startswith("shop/t.json: line 3, column 25: ")


@pytest.mark.parametrize(
    "text",
    [
        "{name: 't', version: 'layout-1.0', keys_format: {encoding: 'RAW'},}",  # trailing comma
        "{name: 't', version: 'layout-1.0', keys_format: {encoding: 'RAW'}} {}",  # content after
        "{name: 't', version: 'layout-1.0', keys_format: {encoding: 'RAW'}, max_filesize: 0x10}",
        "{name: 't', version: 'layout-1.0', keys_format: {encoding: 'RAW'}, max_filesize: NaN}",
        "{name: 't\t', version: 'layout-1.0', keys_format: {encoding: 'RAW'}}",  # raw tab in a string
    ],
)
def test_syntax_errors_of_the_dialect(text: str) -> None:
    assert error(text).startswith("shop/t.json: line 1, column ")


def test_unexpected_and_missing_fields() -> None:
    assert error(base(colour="red")) == "shop/t.json: colour: unexpected field 'colour'"
    doc = base()
    del lg0(doc)["in_memory"]
    assert error(doc) == "shop/t.json: locality_groups[0]: missing field 'in_memory'"
    doc = base()
    del doc["version"]
    assert error(doc) == "shop/t.json: missing field 'version'"
    doc = base()
    col0(doc)["column_schema"]["vaule"] = '"int"'
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].columns[0].column_schema.vaule: unexpected field 'vaule'"
    )


def test_field_order_is_free() -> None:
    doc = base()
    reordered = dict(reversed(list(doc.items())))
    assert load(reordered) == load(doc)


def test_enum_symbols_exact_case() -> None:
    doc = base()
    lg0(doc)["compression_type"] = "gz"
    assert error(doc) == (
        "shop/t.json: locality_groups[0].compression_type: 'gz' is not one of [NONE, GZ, LZO, SNAPPY]"
    )
    lg0(doc)["compression_type"] = 1
    assert "expected enum CompressionType, got 1" in error(doc)


def test_type_errors() -> None:
    doc = base()
    lg0(doc)["max_versions"] = "5"
    assert error(doc) == 'shop/t.json: locality_groups[0].max_versions: expected int, got "5"'
    lg0(doc)["max_versions"] = 5.0  # no floats anywhere
    assert error(doc) == "shop/t.json: locality_groups[0].max_versions: expected int, got 5.0"
    lg0(doc)["max_versions"] = True
    assert "expected int, got true" in error(doc)
    lg0(doc)["max_versions"] = 2**31
    assert "expected int, got 2147483648 (out of the int range)" in error(doc)
    lg0(doc)["max_versions"] = 2**31 - 1
    assert load(doc).locality_groups[0].max_versions == 2**31 - 1
    lg0(doc)["in_memory"] = 0
    assert "locality_groups[0].in_memory: expected boolean, got 0" in error(doc)
    assert "name: expected string, got 5" in error(base(name=5))
    assert "locality_groups: expected array of record LocalityGroupDesc" in error(base(locality_groups={}))


def test_long_fields_take_64_bit_integers() -> None:
    assert load(base(max_filesize=2**40)).max_filesize == 2**40
    assert "expected long, got 9223372036854775808" in error(base(max_filesize=2**63))
    assert "max_filesize: expected long, got 1.5" in error(base(max_filesize=1.5))


# ---------------------------------------------------------------------------------------------------
# Unions


def test_optional_union_direct_tagged_and_null() -> None:
    direct, tagged, null = base(), base(), base()
    lg0(direct)["block_size"] = 65536
    lg0(tagged)["block_size"] = {"int": 65536}
    lg0(null)["block_size"] = None
    assert load(direct).locality_groups[0].block_size == 65536
    assert load(tagged) == load(direct)
    assert load(null).locality_groups[0].block_size is None
    col0(direct)["column_schema"]["value"] = '"long"'
    col0(tagged)["column_schema"]["value"] = {"string": '"long"'}
    assert load(tagged) == load(direct)
    assert load(direct).locality_groups[0].families[0].columns[0].cell.schema == '"long"'


def test_optional_union_with_record_branch() -> None:
    direct, tagged = base(), base()
    cell = {"type": "INLINE", "storage": "UID", "value": '"int"'}
    for doc, value in ((direct, cell), (tagged, {"org.kiji.schema.avro.CellSchema": cell})):
        fam0(doc)["columns"] = []
        fam0(doc)["map_schema"] = value
    assert load(direct) == load(tagged)
    assert load(direct).locality_groups[0].families[0].map_cell.schema == '"int"'


def test_union_errors() -> None:
    doc = base()
    lg0(doc)["block_size"] = "big"
    assert error(doc) == 'shop/t.json: locality_groups[0].block_size: expected int, got "big"'
    lg0(doc)["block_size"] = {"long": 5}  # not a branch of [null, int]
    assert 'expected int, got {"long":5}' in error(doc)
    lg0(doc)["block_size"] = {"int": "5"}  # the tag names a branch: that branch's error
    assert error(doc) == 'shop/t.json: locality_groups[0].block_size: expected int, got "5"'
    msg = error(base(keys_format={"encoding": "RAW", "colour": "red"}))
    assert msg.startswith(
        'shop/t.json: keys_format: no branch of union [RowKeyFormat, RowKeyFormat2] accepts {"encoding":"RAW"'
    )
    assert "unexpected field 'colour'" in msg
    msg = error(base(keys_format={"org.kiji.schema.avro.RowKeyFormat2": {"encoding": "RAW", "x": 1}}))
    assert msg == "shop/t.json: keys_format.x: unexpected field 'x'"


def test_keys_format_legacy_first() -> None:
    hashed = load(
        base(version="layout-1.0", keys_format={"encoding": "HASH", "hash_type": "MD5", "hash_size": 16})
    )
    assert hashed.row_key == RowKeySpec("HASH", hash_size=16)
    assert "org.kiji.schema.avro.RowKeyFormat" in hashed.effective["keys_format"]
    raw = load(base(version="layout-1.0", keys_format={"encoding": "RAW"}))
    assert list(raw.effective["keys_format"]) == ["org.kiji.schema.avro.RowKeyFormat"]
    fmt = load(formatted())
    assert list(fmt.effective["keys_format"]) == ["org.kiji.schema.avro.RowKeyFormat2"]
    # a RowKeyFormat2-only field selects RowKeyFormat2 even without components
    assert "At least 1 component" in error(
        base(keys_format={"encoding": "FORMATTED", "nullable_start_index": 1})
    )


def test_bare_formatted_reads_as_legacy_and_is_rejected() -> None:
    assert error(base(keys_format={"encoding": "FORMATTED"})) == (
        "shop/t.json: keys_format.encoding: RowKeyFormat only supports encodings of type RAW, HASH and "
        "HASH_PREFIX. Use RowKeyFormat2 instead"
    )
    tagged = base(keys_format={"org.kiji.schema.avro.RowKeyFormat2": {"encoding": "FORMATTED"}})
    assert (
        error(tagged)
        == "shop/t.json: keys_format.components: At least 1 component is required in row key format."
    )


def test_raw_row_key_format2() -> None:
    t = load(base(keys_format={"org.kiji.schema.avro.RowKeyFormat2": {"encoding": "RAW", "salt": None}}))
    assert t.row_key == RowKeySpec("RAW")


# ---------------------------------------------------------------------------------------------------
# FORMATTED defaults and traps (encodings.md §1.5)


def test_salt_omitted_means_two_bytes() -> None:
    t = load(formatted())
    assert t.row_key.hash_size == 2 and not t.row_key.suppress_key_materialization
    assert (t.row_key.range_scan_start_index, t.row_key.nullable_start_index) == (1, 1)
    salt = t.effective["keys_format"]["org.kiji.schema.avro.RowKeyFormat2"]["salt"]
    assert salt == {
        "org.kiji.schema.avro.HashSpec": {
            "hash_type": "MD5",
            "hash_size": 2,
            "suppress_key_materialization": False,
        }
    }


def test_salt_object_fields_take_hashspec_defaults() -> None:
    assert load(formatted(salt={})).row_key.hash_size == 16
    t = load(formatted(salt={"suppress_key_materialization": True}, range_scan_start_index=2))
    assert (t.row_key.hash_size, t.row_key.suppress_key_materialization) == (16, True)
    assert load(formatted(salt={"hash_size": 4})).row_key.hash_size == 4


def test_salt_null_only_for_raw() -> None:
    assert error(formatted(salt=None)) == (
        "shop/t.json: keys_format.salt: Null values for RowKeyFormat2.salt are only allowed for RAW encoding."
    )


# ---------------------------------------------------------------------------------------------------
# Versions


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("foo-1.0", "version: Invalid version protocol: 'foo'. Expected 'layout'."),
        ("kiji-1.1", "version: Invalid version protocol: 'kiji'. Expected 'layout'."),
        (
            "layout-1.6",
            "version: The maximum layout version we support is layout-1.5.0; this layout "
            "requires layout-1.6.0",
        ),
        (
            "layout-0.9.9",
            "version: The minimum layout version we support is layout-1.0.0; this layout "
            "requires layout-0.9.9",
        ),
        ("layout", "version: Invalid layout version: 'layout'. Expected 'layout-X[.Y[.Z]]'."),
        ("layout-1.x", "version: Invalid layout version: 'layout-1.x'. Expected 'layout-X[.Y[.Z]]'."),
    ],
)
def test_bad_versions(version: str, message: str) -> None:
    assert error(base(version=version)) == f"shop/t.json: {message}"


@pytest.mark.parametrize("version", ["kiji-1.0", "kiji-1.0.0", "layout-1", "layout-1.0", "layout-1.5.0"])
def test_accepted_versions(version: str) -> None:
    t = load(base(version=version))
    assert t.version == version  # kept as written
    assert t.effective["version"] == version


def test_version_gates() -> None:
    fmt = formatted()
    fmt["version"] = "layout-1.0.0"
    assert error(fmt) == (
        "shop/t.json: keys_format: Support for specifying keys_format as a RowKeyFormat2 begins with layout "
        "version layout-1.1.0"
    )
    fmt["version"] = "layout-1.1"
    assert load(fmt).row_key.encoding == "FORMATTED"

    for key in ("max_filesize", "memstore_flushsize"):
        doc = base(version="layout-1.1.0", **{key: 1000})
        assert error(doc) == f"shop/t.json: {key}: Support for {key} begins with layout version layout-1.2.0"
        doc["version"] = "layout-1.2"
        assert getattr(load(doc), key) == 1000
    for key, value in (("block_size", 4096), ("bloom_type", "ROWCOL")):
        doc = base(version="layout-1.1.0")
        lg0(doc)[key] = value
        assert error(doc) == (
            f"shop/t.json: locality_groups[0].{key}: Support for {key} begins with layout "
            "version layout-1.2.0"
        )
        doc["version"] = "layout-1.2.0"
        assert getattr(load(doc).locality_groups[0], key) == value
    for translator in ("IDENTITY", "HBASE_NATIVE"):
        doc = base(version="layout-1.4.0", column_name_translator=translator)
        lg0(doc)["name"] = fam0(doc)["name"] = "info"
        assert error(doc) == (
            "shop/t.json: column_name_translator: Support for column_name_translator "
            f"{translator} begins with "
            "layout version layout-1.5.0"
        )
        doc["version"] = "layout-1.5.0"
        assert load(doc).column_name_translator == translator


@pytest.mark.parametrize(
    ("cell", "gate", "below"),
    [
        ({"type": "AVRO", "storage": "UID"}, "layout-1.3.0", "layout-1.2.0"),
        ({"type": "RAW_BYTES"}, "layout-1.3.0", "layout-1.2.0"),
        ({"type": "PROTOBUF", "protobuf_full_name": "x.Msg"}, "layout-1.4.0", "layout-1.3.0"),
    ],
)
def test_cell_type_gates(cell: dict[str, Any], gate: str, below: str) -> None:
    doc = base(version=below)
    col0(doc)["column_schema"] = cell
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].columns[0].column_schema.type: Cell "
        f"type {cell['type']} "
        f"requires table layout version >= {gate}, got version {below}"
    )
    doc["version"] = gate
    assert load(doc).locality_groups[0].families[0].columns[0].cell.type == cell["type"]


# ---------------------------------------------------------------------------------------------------
# Names


def test_invalid_names() -> None:
    assert error(base(name="1t"), "shop/1t.json") == "shop/1t.json: name: Invalid table name: '1t'."
    doc = base()
    lg0(doc)["name"] = "my-group"
    assert error(doc) == "shop/t.json: locality_groups[0].name: Invalid locality group name: 'my-group'."
    doc = base()
    fam0(doc)["name"] = "in fo"
    assert error(doc) == "shop/t.json: locality_groups[0].families[0].name: Invalid family name: 'in fo'."
    doc = base()
    col0(doc)["name"] = "a:b"
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].columns[0].name: Invalid column name: 'a:b'."
    )
    doc = base()
    col0(doc)["aliases"] = ["ok-alias_1", "bad alias"]
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].columns[0].aliases[1]: Invalid "
        "column alias: 'bad alias'."
    )


def test_aliases_may_start_with_digits_and_hyphens() -> None:
    doc = base()
    col0(doc)["aliases"] = ["1st", "-x-"]
    fam0(doc)["aliases"] = ["9"]
    t = load(doc)
    assert t.locality_groups[0].families[0].aliases == ("9",)
    assert t.locality_groups[0].families[0].columns[0].aliases == ("1st", "-x-")


def test_layout_name_must_match_file_name() -> None:
    assert (
        error(base(name="other"))
        == "shop/t.json: name: layout name 'other' does not match file name 't.json'"
    )


def test_duplicate_names() -> None:
    doc = base()
    doc["locality_groups"].append(copy.deepcopy(lg0(doc)))
    doc["locality_groups"][1]["families"][0]["name"] = "other"
    assert error(doc) == "shop/t.json: locality_groups[1].name: Duplicate locality group name: default"
    doc["locality_groups"][1]["name"] = "second"
    doc["locality_groups"][1]["aliases"] = ["default"]  # names and aliases share one namespace
    assert error(doc) == "shop/t.json: locality_groups[1].aliases[0]: Duplicate locality group name: default"

    doc = base()
    doc["locality_groups"].append(copy.deepcopy(lg0(doc)))
    doc["locality_groups"][1]["name"] = "second"  # family names are table-wide
    assert error(doc) == (
        "shop/t.json: locality_groups[1].families[0].name: Layout for table 't' contains duplicate family "
        "name 'info'."
    )

    doc = base()
    fam0(doc)["columns"].append(
        {"name": "b", "aliases": ["a"], "column_schema": {"type": "INLINE", "value": '"int"'}}
    )
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].columns[1].aliases[0]: Family 'info' contains duplicate "
        "column qualifier 'a'."
    )


def test_same_column_name_in_two_families_is_fine() -> None:
    doc = base()
    lg0(doc)["families"].append(copy.deepcopy(fam0(doc)))
    lg0(doc)["families"][1]["name"] = "more"
    assert [f.name for f in load(doc).locality_groups[0].families] == ["info", "more"]


def test_family_with_map_schema_and_columns() -> None:
    doc = base()
    fam0(doc)["map_schema"] = {"type": "INLINE", "value": '"string"'}
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].columns: Invalid family 'info' with "
        "both map-type and columns"
    )


# ---------------------------------------------------------------------------------------------------
# Locality groups and table sizes


def test_locality_group_limits() -> None:
    doc = base()
    lg0(doc)["ttl_seconds"] = 0
    assert error(doc) == (
        "shop/t.json: locality_groups[0].ttl_seconds: Invalid TTL seconds for locality "
        "group 'default': TTL must "
        "be positive, got 0."
    )
    doc = base()
    lg0(doc)["max_versions"] = -1
    assert error(doc) == (
        "shop/t.json: locality_groups[0].max_versions: Invalid max versions for locality "
        "group 'default': max "
        "versions must be positive, got -1."
    )
    doc = base()
    lg0(doc)["block_size"] = 0
    assert error(doc) == "shop/t.json: locality_groups[0].block_size: block_size must be greater than 0"
    assert error(base(max_filesize=0)) == "shop/t.json: max_filesize: max_filesize must be greater than 0"
    assert error(base(memstore_flushsize=-5)) == (
        "shop/t.json: memstore_flushsize: memstore_flushsize must be greater than 0"
    )


# ---------------------------------------------------------------------------------------------------
# Row key formats


def test_legacy_row_key_format_rules() -> None:
    v = "layout-1.0"
    assert load(base(version=v, keys_format={"encoding": "HASH", "hash_type": "MD5"})).row_key == RowKeySpec(
        "HASH", hash_size=16
    )  # hash_size is ignored by HASH
    assert load(
        base(version=v, keys_format={"encoding": "HASH_PREFIX", "hash_type": "MD5", "hash_size": 0})
    ).row_key == RowKeySpec("HASH_PREFIX", hash_size=0)
    assert error(
        base(version=v, keys_format={"encoding": "HASH_PREFIX", "hash_type": "MD5", "hash_size": 17})
    ) == (
        "shop/t.json: keys_format.hash_size: HASH or HASH_PREFIX row key formats require hash size to be "
        "between 0 and 16"
    )
    assert error(base(version=v, keys_format={"encoding": "HASH", "hash_size": 16})) == (
        "shop/t.json: keys_format.hash_type: hash_type must be MD5 for HASH and HASH_PREFIX"
    )
    assert error(base(version=v, keys_format={"encoding": "HASH", "hash_type": "SHA1"})).endswith(
        "keys_format: no branch of union [RowKeyFormat, RowKeyFormat2] accepts "
        '{"encoding":"HASH","hash_type":"SHA1"} (RowKeyFormat: \'SHA1\' is not one of [MD5]; RowKeyFormat2: '
        "unexpected field 'hash_type')"
    )


@pytest.mark.parametrize(
    ("keys", "path", "message"),
    [
        (
            {"encoding": "HASH", "components": [{"name": "a", "type": "STRING"}]},
            "keys_format.encoding",
            "RowKeyFormat2 only supports RAW or FORMATTED encoding. Found HASH",
        ),
        ({"components": []}, "keys_format.components", "At least 1 component is required in row key format."),
        (
            {"nullable_start_index": 0},
            "keys_format.nullable_start_index",
            "Invalid index for nullable component. The second component onwards can be set to null.",
        ),
        (
            {"nullable_start_index": 3},
            "keys_format.nullable_start_index",
            "Invalid index for nullable component. The second component onwards can be set to null.",
        ),
        (
            {"range_scan_start_index": 0},
            "keys_format.range_scan_start_index",
            "Invalid range scan index. Range scans are supported starting with the second component.",
        ),
        (
            {"range_scan_start_index": 3},
            "keys_format.range_scan_start_index",
            "Invalid range scan index. Range scans are supported starting with the second component.",
        ),
        (
            {"salt": {"suppress_key_materialization": True}},
            "keys_format.range_scan_start_index",
            "Range scans are not supported if suppress_key_materialization is true. Please set "
            "range_scan_start_index to components.size",
        ),
        (
            {"components": [{"name": "1a", "type": "STRING"}]},
            "keys_format.components[0].name",
            "Names should begin with a letter followed by a combination of letters, numbers and underscores.",
        ),
        (
            {"components": [{"name": "a", "type": "STRING"}, {"name": "a", "type": "INTEGER"}]},
            "keys_format.components[1].name",
            "Component name already used.",
        ),
        ({"salt": {"hash_size": 0}}, "keys_format.salt.hash_size", "Valid hash sizes are between 1 and 16"),
        ({"salt": {"hash_size": 17}}, "keys_format.salt.hash_size", "Valid hash sizes are between 1 and 16"),
        (
            {"components": [{"name": "a", "type": "FLOAT"}]},
            "keys_format",
            "no branch of union [RowKeyFormat, RowKeyFormat2] accepts",
        ),
    ],
)
def test_row_key_format2_rules(keys: dict[str, Any], path: str, message: str) -> None:
    assert error(formatted(**keys)).startswith(f"shop/t.json: {path}: {message}")


def test_spec_error_example() -> None:
    text = SECTION_9.replace("salt: {hash_size: 2}", "salt: {hash_size: 17}")
    assert error(text, "shop/users.json") == (
        "shop/users.json: keys_format.salt.hash_size: Valid hash sizes are between 1 and 16"
    )


def test_all_components_hashed_and_all_required() -> None:
    t = load(
        formatted(
            range_scan_start_index=2,
            nullable_start_index=2,
            salt={"hash_size": 16, "suppress_key_materialization": True},
        )
    )
    assert t.row_key.range_scan_start_index == 2 and t.row_key.nullable_start_index == 2
    assert t.row_key.suppress_key_materialization and t.row_key.hash_size == 16


# ---------------------------------------------------------------------------------------------------
# Cell schemas


def cell_error(cell: dict[str, Any], version: str = "layout-1.5.0", names: Names | None = None) -> str:
    doc = base(version=version)
    col0(doc)["column_schema"] = cell
    return error(doc, names=names).removeprefix("shop/t.json: locality_groups[0].families[0].columns[0].")


def test_final_storage_only_for_inline_and_counter() -> None:
    msg = cell_error({"type": "CLASS", "storage": "FINAL", "value": "x.Y"})
    assert msg.startswith(
        'column_schema.storage: Invalid final column schema: {"storage":"FINAL","type":"CLASS"'
    )
    assert msg.endswith(".")
    assert cell_error({"type": "AVRO", "storage": "FINAL"}).startswith(
        "column_schema.storage: Invalid final column schema: "
    )


def test_counter_must_be_final() -> None:
    assert cell_error({"type": "COUNTER"}).startswith(
        'column_schema.storage: Invalid counter schema, storage must be final: '
        '{"storage":"HASH","type":"COUNTER"'
    )


def test_inline_schemas() -> None:
    assert cell_error({"type": "INLINE"}) == "column_schema.value: INLINE column needs a value"
    assert cell_error({"type": "INLINE", "value": '"strin"'}).startswith(
        "column_schema.value: Invalid Avro schema in value: "
    )
    assert cell_error({"type": "INLINE", "value": "{'type': 'string'}"}).startswith(
        "column_schema.value: Invalid Avro schema in value: line 1, column 2:"
    )  # Avro's parser takes comments, not single quotes
    doc = base()
    col0(doc)["column_schema"]["value"] = '/* a comment */ {"type": "record", "name": "R", "fields": []}'
    assert load(doc).locality_groups[0].families[0].columns[0].cell.schema == (
        '{"type":"record","name":"R","fields":[]}'
    )


def test_class_lookup() -> None:
    assert cell_error({"type": "CLASS", "value": "org.example.Nope"}) == (
        "column_schema.value: no schema named 'org.example.Nope' in shop/schemas"
    )
    assert cell_error({"type": "CLASS"}) == "column_schema.value: CLASS column needs a value"


def test_avro_schema_descriptors() -> None:
    both = {"type": "AVRO", "default_reader": {"uid": 3, "json": '"long"'}}
    assert cell_error(both) == "column_schema.default_reader: AvroSchema needs exactly one of uid and json"
    neither = {"type": "AVRO", "writers": [{"json": '"int"'}, {}]}
    assert cell_error(neither) == "column_schema.writers[1]: AvroSchema needs exactly one of uid and json"
    bad = {"type": "AVRO", "default_reader": {"json": '{"type": "fixed"}'}}
    assert cell_error(bad).startswith(
        "column_schema.default_reader.json: Invalid Avro schema in default_reader: "
    )
    assert cell_error({"type": "AVRO", "default_reader": {"uid": -1}}) == (
        "column_schema.default_reader.uid: unknown schema uid -1"
    )


def test_avro_cell_spec() -> None:
    doc = base()
    col0(doc)["column_schema"] = {
        "type": "AVRO",
        "storage": "HASH",
        "avro_validation_policy": "STRICT",
        "default_reader": {"json": '{"type": "string"}'},
        "writers": [{"uid": 0}, {"json": '"string"'}],
        "readers": [{"uid": 0}],
        "specific_reader_schema_class": "com.example.Ignored",
    }
    cell = load(doc).locality_groups[0].families[0].columns[0].cell
    assert cell.schema == '"string"'  # canonical text of the default reader
    assert cell.default_reader == AvroSchemaRef(json='{"type": "string"}')
    assert cell.writers == (AvroSchemaRef(uid=0), AvroSchemaRef(json='"string"'))
    assert cell.avro_validation_policy == "STRICT"
    col0(doc)["column_schema"] = {"type": "AVRO", "default_reader": {"uid": 8}}
    cell = load(doc).locality_groups[0].families[0].columns[0].cell
    assert cell.schema is None and cell.default_reader == AvroSchemaRef(uid=8)


def test_unknown_schema_uid_is_checked_against_the_schema_table(tmp_path: Path) -> None:
    doc = base()
    col0(doc)["column_schema"] = {"type": "AVRO", "default_reader": {"uid": 12}}
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "t.json").write_bytes(orjson.dumps(doc))
    instance = load_layout_dir(tmp_path)["shop"]
    check_schema_uids(instance, lambda uid: uid == 12)
    with pytest.raises(LayoutError) as info:
        check_schema_uids(instance, lambda uid: uid < 8)
    assert str(info.value) == (
        "shop/t.json: locality_groups[0].families[0].columns[0].column_schema.default_reader.uid: "
        "unknown schema uid 12"
    )


# ---------------------------------------------------------------------------------------------------
# Translators


def test_hbase_native_rules() -> None:
    doc = base(column_name_translator="HBASE_NATIVE")
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].name: For HBASE_NATIVE column name translation, family: "
        "'info' must match locality group: 'default'"
    )
    lg0(doc)["name"] = "info"
    assert load(doc).column_name_translator == "HBASE_NATIVE"
    fam0(doc)["columns"] = []
    fam0(doc)["map_schema"] = {"type": "INLINE", "value": '"string"'}
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].map_schema: For HBASE_NATIVE column name translation, "
        "family: 'info' must be a group type."
    )


# ---------------------------------------------------------------------------------------------------
# Ids


def columns(*ids: int) -> list[dict[str, Any]]:
    return [
        {"name": name, "id": n, "column_schema": {"type": "INLINE", "value": '"int"'}}
        for name, n in zip("abcdefgh", ids, strict=False)
    ]


def test_id_assignment_example() -> None:
    doc = base()
    fam0(doc)["columns"] = columns(0, 1, 0)  # [a, b{id:1}, c]
    t = load(doc)
    assert [(c.name, c.id) for c in t.locality_groups[0].families[0].columns] == [
        ("a", 2),
        ("b", 1),
        ("c", 3),
    ]
    effective_ids = [c["id"] for c in t.effective["locality_groups"][0]["families"][0]["columns"]]
    assert effective_ids == [2, 1, 3]


def test_ids_fill_gaps_in_each_scope() -> None:
    doc = base()
    fam0(doc)["columns"] = columns(0, 3, 0, 0, 7)
    lg0(doc)["families"].append({"name": "more", "id": 5, "columns": columns(0)})
    lg0(doc)["families"].append({"name": "third", "columns": columns(2, 0)})
    doc["locality_groups"].append(
        {
            "name": "second",
            "id": 0,
            "in_memory": False,
            "max_versions": 1,
            "ttl_seconds": 1,
            "compression_type": "NONE",
            "families": [{"name": "x", "columns": columns(0)}],
        }
    )
    lg0(doc)["id"] = 2
    t = load(doc)
    assert [(lg.name, lg.id) for lg in t.locality_groups] == [("default", 2), ("second", 1)]
    info, more, third = t.locality_groups[0].families
    assert [(f.name, f.id) for f in (info, more, third)] == [("info", 1), ("more", 5), ("third", 2)]
    assert [c.id for c in info.columns] == [1, 3, 2, 4, 7]
    assert [c.id for c in more.columns] == [1]
    assert [c.id for c in third.columns] == [2, 1]
    assert t.locality_groups[1].families[0].id == 1  # families are numbered per locality group


def test_duplicate_ids() -> None:
    doc = base()
    lg0(doc)["families"] = [{"name": "a", "id": 1, "columns": []}, {"name": "b", "id": 1, "columns": []}]
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[1].id: Duplicate family ID 'B' associated to 'a' and 'b'."
    )
    doc = base()
    fam0(doc)["columns"] = columns(64, 64)
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].columns[1].id: Duplicate column ID 'AB' associated to "
        "'a' and 'b'."
    )
    doc = base()
    doc["locality_groups"].append(copy.deepcopy(lg0(doc)))
    doc["locality_groups"][1].update(name="other", families=[])
    lg0(doc)["id"] = doc["locality_groups"][1]["id"] = 3
    assert error(doc) == (
        "shop/t.json: locality_groups[1].id: Duplicate locality group ID 'D' associated "
        "to 'default' and 'other'."
    )


def test_negative_id() -> None:
    doc = base()
    col0(doc)["id"] = -1
    assert error(doc) == "shop/t.json: locality_groups[0].families[0].columns[0].id: id must not be negative"


# ---------------------------------------------------------------------------------------------------
# Diff-only fields


def test_delete_and_rename_are_errors() -> None:
    doc = base()
    fam0(doc)["delete"] = True
    assert error(doc) == (
        "shop/t.json: locality_groups[0].families[0].delete: Attempting to delete family 'info' unknown in "
        "reference layout."
    )
    doc = base()
    col0(doc)["renamed_from"] = "old"
    assert error(doc).startswith(
        "shop/t.json: locality_groups[0].families[0].columns[0].renamed_from: Invalid "
        "rename: no reference column "
        "'old'"
    )
    doc = base()
    lg0(doc)["delete"] = False
    lg0(doc)["renamed_from"] = None
    lg0(doc)["enabled"] = False  # accepted and ignored
    assert load(doc) == load(base())


# ---------------------------------------------------------------------------------------------------
# The effective layout (§8)

TABLE_FIELDS = [
    "name",
    "max_filesize",
    "memstore_flushsize",
    "description",
    "keys_format",
    "locality_groups",
    "column_name_translator",
    "version",
    "layout_id",
    "reference_layout",
]
LG_FIELDS = [
    "id",
    "name",
    "aliases",
    "enabled",
    "description",
    "in_memory",
    "max_versions",
    "ttl_seconds",
    "block_size",
    "bloom_type",
    "compression_type",
    "families",
    "delete",
    "renamed_from",
]
FAMILY_FIELDS = [
    "id",
    "name",
    "aliases",
    "enabled",
    "description",
    "map_schema",
    "columns",
    "delete",
    "renamed_from",
]
COLUMN_FIELDS = ["id", "name", "aliases", "enabled", "description", "column_schema", "delete", "renamed_from"]
CELL_FIELDS = [
    "storage",
    "type",
    "value",
    "avro_validation_policy",
    "specific_reader_schema_class",
    "default_reader",
    "readers",
    "written",
    "writers",
    "protobuf_full_name",
    "protobuf_class_name",
]


def test_effective_layout_shape() -> None:
    t = load(SECTION_9, "shop/users.json")
    e = t.effective
    assert list(e) == TABLE_FIELDS
    assert e["layout_id"] == {"string": "1"}
    assert e["reference_layout"] is None and e["max_filesize"] is None
    assert e["description"] == "Registered users"
    kf = e["keys_format"]["org.kiji.schema.avro.RowKeyFormat2"]
    assert list(kf) == ["encoding", "salt", "range_scan_start_index", "nullable_start_index", "components"]
    assert kf["components"] == [{"name": "org", "type": "STRING"}, {"name": "login", "type": "STRING"}]
    lg = e["locality_groups"][0]
    assert list(lg) == LG_FIELDS
    assert (lg["id"], lg["aliases"], lg["enabled"], lg["block_size"], lg["bloom_type"]) == (
        1,
        [],
        True,
        None,
        None,
    )
    profile, prefs = lg["families"]
    assert list(profile) == FAMILY_FIELDS and profile["map_schema"] is None
    assert list(profile["columns"][0]) == COLUMN_FIELDS
    cs = profile["columns"][1]["column_schema"]
    assert list(cs) == CELL_FIELDS
    assert cs["value"] == {"string": '["null", "string"]'}  # as written, tagged
    assert cs["storage"] == "UID" and cs["avro_validation_policy"] == "SCHEMA_1_0"
    assert list(prefs["map_schema"]) == ["org.kiji.schema.avro.CellSchema"]
    assert prefs["columns"] == [] and prefs["id"] == 2
    assert e["column_name_translator"] == "SHORT"


def test_effective_tags_every_optional_value() -> None:
    t = load((DATA / "shop" / "samples.json").read_text(), "shop/samples.json")
    e = t.effective
    assert e["max_filesize"] == {"long": 1073741824}
    assert e["layout_id"] == {"string": "7"}  # kept
    lg = e["locality_groups"][0]
    assert lg["block_size"] == {"int": 65536}
    assert lg["bloom_type"] == {"org.kiji.schema.avro.BloomType": "ROWCOL"}
    legacy = load(
        base(
            version="layout-1.0", keys_format={"encoding": "HASH_PREFIX", "hash_type": "MD5", "hash_size": 4}
        )
    )
    assert legacy.effective["keys_format"] == {
        "org.kiji.schema.avro.RowKeyFormat": {
            "encoding": "HASH_PREFIX",
            "hash_type": {"org.kiji.schema.avro.HashType": "MD5"},
            "hash_size": 4,
        }
    }
    avro = load((DATA / "shop" / "people.json").read_text(), "shop/people.json", _shop_names())
    visits = avro.effective["locality_groups"][0]["families"][0]["columns"][3]["column_schema"]
    assert visits["default_reader"] == {
        "org.kiji.schema.avro.AvroSchema": {"uid": None, "json": {"string": '"long"'}}
    }
    assert visits["writers"] == {
        "array": [{"uid": None, "json": {"string": '"int"'}}, {"uid": None, "json": {"string": '"long"'}}]
    }


def _shop_names() -> Names:
    files = sorted((DATA / "shop" / "schemas").glob("*.avsc"))
    return load_schemas([(f"shop/schemas/{p.name}", p.read_text()) for p in files])


def all_data_layouts() -> list[Path]:
    return sorted(DATA.glob("*/*.json"))


@pytest.mark.parametrize("path", all_data_layouts(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_effective_layout_round_trip(path: Path) -> None:
    rel = f"{path.parent.name}/{path.name}"
    names = _shop_names() if path.parent.name == "shop" else Names()
    first = load(path.read_text(), rel, names)
    again = load(orjson.dumps(first.effective).decode(), rel, names)
    assert again == first
    assert again.effective == first.effective


# ---------------------------------------------------------------------------------------------------
# schemas/*.avsc


def test_class_schemas_across_two_files() -> None:
    instance = load_layout_dir(DATA)["shop"]
    assert {"org.example.Person", "org.example.Address", "org.example.Account"} <= set(instance.schemas)
    people = instance.tables["people"]
    info, friends = people.locality_groups[0].families
    person, account = info.columns[0], info.columns[1]
    assert person.cell.schema is not None and person.cell.schema.startswith(
        '{"type":"record","name":"Person","namespace":"org.example",'
    )
    assert account.cell.schema is not None and '"name":"owner","type":{"type":"record","name":"Person"' in (
        account.cell.schema
    )
    assert friends.map_cell is not None and friends.map_cell.schema == person.cell.schema


def avsc(*files: tuple[str, str]) -> Names:
    return load_schemas([(f"shop/schemas/{name}", text) for name, text in files])


PERSON = '{"type": "record", "name": "P", "namespace": "x", "fields": [{"name": "n", "type": "string"}]}'


def test_avsc_same_type_in_two_files_with_same_text_is_fine() -> None:
    team = '{"type": "record", "name": "Team", "namespace": "x", "fields": [{"name": "lead", "type": %s}]}'
    names = avsc(("a.avsc", team % PERSON), ("b.avsc", PERSON.replace(": ", ":")))
    assert {"x.P", "x.Team"} == set(names)


def test_avsc_same_name_different_schema_is_an_error() -> None:
    other = PERSON.replace('"string"', '"long"')
    with pytest.raises(LayoutError) as info:
        avsc(("a.avsc", PERSON), ("b.avsc", other))
    assert (
        str(info.value)
        == "shop/schemas/b.avsc: x.P is also defined in shop/schemas/a.avsc with a different schema"
    )


def test_avsc_errors() -> None:
    with pytest.raises(
        LayoutError, match=r"^shop/schemas/a.avsc: Invalid Avro schema: .*\"Missing\" is not a defined name"
    ):
        avsc(("a.avsc", '{"type": "record", "name": "A", "fields": [{"name": "b", "type": "Missing"}]}'))
    with pytest.raises(LayoutError, match=r"^shop/schemas/a.avsc: line 1, column 9: "):
        avsc(("a.avsc", '{"type":,}'))
    with pytest.raises(LayoutError, match=r"^shop/schemas/a.avsc: a schema file must hold a named type"):
        avsc(("a.avsc", '"string"'))
    with pytest.raises(LayoutError, match=r"^shop/schemas/a.avsc: Invalid Avro schema: "):
        avsc(("a.avsc", '{"type": "enum", "name": "E"}'))


def test_avsc_array_of_named_types_and_comments() -> None:
    text = """// two types
    [{"type": "enum", "name": "Color", "namespace": "x", "symbols": ["RED"]},
     /* refers to the first */ {"type": "record", "name": "Car", "namespace": "x",
      "fields": [{"name": "c", "type": "Color"}]}]"""
    assert set(avsc(("cars.avsc", text))) == {"x.Color", "x.Car"}


def test_avsc_retry_chain_in_reverse_order() -> None:
    a = '{"type": "record", "name": "A", "fields": [{"name": "b", "type": "B"}]}'
    b = '{"type": "record", "name": "B", "fields": [{"name": "c", "type": "C"}]}'
    c = '{"type": "record", "name": "C", "fields": []}'
    assert set(avsc(("a.avsc", a), ("b.avsc", b), ("c.avsc", c))) == {"A", "B", "C"}


# ---------------------------------------------------------------------------------------------------
# Directory rules


def test_data_directory() -> None:
    instances = load_layout_dir(DATA)
    assert list(instances) == ["empty", "native", "shop"]
    assert instances["empty"].tables == {}
    shop = instances["shop"]
    assert list(shop.tables) == sorted(shop.tables)
    assert set(shop.tables) == {"events", "hashed", "people", "prefixed", "samples", "tokens", "users"}
    assert shop.files["users"] == "shop/users.json"
    assert shop.columns["users"].hbase_column("profile", "email") == (b"B", b"B:C")
    keys = {name: t.row_key for name, t in shop.tables.items()}
    assert keys["events"] == RowKeySpec("RAW")
    assert keys["hashed"] == RowKeySpec("HASH", hash_size=16)
    assert keys["prefixed"] == RowKeySpec("HASH_PREFIX", hash_size=2)
    assert keys["tokens"] == RowKeySpec(
        "FORMATTED",
        hash_size=16,
        suppress_key_materialization=True,
        components=(KeyComponent("token", "STRING"),),
    )
    assert [c.type for c in keys["samples"].components] == ["STRING", "STRING", "STRING", "INTEGER", "LONG"]
    assert keys["people"].hash_size == 2 and keys["people"].range_scan_start_index == 2


def make_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def t_json(name: str = "t") -> str:
    return orjson.dumps(base(name=name)).decode()


def test_directory_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_dir(
        tmp_path,
        {
            "README.md": "stray file",
            ".hidden/x.json": "not even JSON",
            "inst/t.json": t_json(),
            "inst/.t2.json": "ignored",
            "inst/notes.txt": "stray",
            "inst/schemas/.swp": "ignored",
            "Inst_2/u.json": t_json("u"),
        },
    )
    (root / "empty").mkdir()
    with caplog.at_level(logging.WARNING, logger="kijirest.layouts"):
        instances = load_layout_dir(root)
    assert list(instances) == ["Inst_2", "empty", "inst"]
    assert list(instances["inst"].tables) == ["t"]
    warnings = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("README.md: ignored") for m in warnings)
    assert any(m.startswith("inst/notes.txt: ignored") for m in warnings)
    assert not any(".t2.json" in m or ".hidden" in m or ".swp" in m for m in warnings)


def test_bad_instance_directory_name(tmp_path: Path) -> None:
    make_dir(tmp_path, {"my-inst/t.json": t_json()})
    with pytest.raises(LayoutError) as info:
        load_layout_dir(tmp_path)
    assert str(info.value) == "my-inst: invalid instance directory name: instance names match [a-zA-Z0-9_]+"


def test_subdirectory_in_instance(tmp_path: Path) -> None:
    make_dir(tmp_path, {"inst/t.json": t_json(), "inst/more/u.json": t_json("u")})
    with pytest.raises(LayoutError, match=r"^inst/more: unexpected directory"):
        load_layout_dir(tmp_path)


def test_file_stem_must_match(tmp_path: Path) -> None:
    make_dir(tmp_path, {"inst/users.json": t_json("t")})
    with pytest.raises(LayoutError) as info:
        load_layout_dir(tmp_path)
    assert str(info.value) == "inst/users.json: name: layout name 't' does not match file name 'users.json'"


def test_instance_schemas_directory(tmp_path: Path) -> None:
    shutil.copytree(DATA / "shop", tmp_path / "shop")
    (tmp_path / "shop" / "schemas" / "readme.txt").write_text("stray")
    assert "people" in load_layout_dir(tmp_path)["shop"].tables
    (tmp_path / "shop" / "schemas" / "person.avsc").unlink()
    with pytest.raises(
        LayoutError, match=r"^shop/schemas/account.avsc: Invalid Avro schema: .*\"Person\" is not a defined"
    ):
        load_layout_dir(tmp_path)


def test_utf8_bom_and_bad_utf8(tmp_path: Path) -> None:
    (tmp_path / "inst").mkdir()
    (tmp_path / "inst" / "t.json").write_bytes(b"\xef\xbb\xbf" + t_json().encode())
    assert "t" in load_layout_dir(tmp_path)["inst"].tables
    (tmp_path / "inst" / "t.json").write_bytes(b'{"name": "\xff"}')
    with pytest.raises(LayoutError, match=r"^inst/t.json: not valid UTF-8"):
        load_layout_dir(tmp_path)


def test_missing_layouts_directory(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="does not exist"):
        load_layout_dir(tmp_path / "nope")
