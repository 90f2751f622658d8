"""KijiSchema's layout records (`org.kiji.schema.avro`, Layout.avdl) and their JSON reading and writing.

Layout files are read the way KijiSchema reads them (layouts.md §2): a schema-driven decoder over the
records below, with the union rules of §2 (optional unions read directly, then the tagged Avro-JSON
form, then each branch in order). The decoded value ("datum") is plain Python: records are `Rec`
dicts (fields in record order, defaults filled), enums their symbol, unions the chosen value.
`encode` writes a datum back as Avro JSON (every field, unions tagged): the effective layout of §8.

Field order follows the record definitions of Layout.avdl (the order of the tables in layouts.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kijirest.primitives import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN

NAMESPACE = "org.kiji.schema.avro"


class DecodeError(Exception):
    """A structural error at a field path (list of field names and array indexes)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# ---------------------------------------------------------------------------------------------------
# Types


class Type:
    """A layout record field type."""

    #: name of the type as a union branch (Avro-JSON tag): primitive name, "array", or full name
    branch: str = ""

    def label(self) -> str:
        return self.branch


@dataclass(eq=False)
class Prim(Type):
    name: str  # null | boolean | int | long | string

    def __post_init__(self) -> None:
        self.branch = self.name


@dataclass(eq=False)
class Enum(Type):
    name: str
    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        self.branch = f"{NAMESPACE}.{self.name}"

    def label(self) -> str:
        return f"enum {self.name}"


@dataclass(eq=False)
class Array(Type):
    items: Type

    def __post_init__(self) -> None:
        self.branch = "array"

    def label(self) -> str:
        return f"array of {self.items.label()}"


@dataclass(eq=False)
class Union(Type):
    branches: tuple[Type, ...]

    def __post_init__(self) -> None:
        self.branch = ""
        names = [b.branch for b in self.branches]
        # optional union: null plus exactly one other type, either order
        self.optional: Type | None = None
        if len(self.branches) == 2 and "null" in names:
            self.optional = self.branches[1 - names.index("null")]

    def label(self) -> str:
        return "union [" + ", ".join(_short(b) for b in self.branches) + "]"


_MISSING: Any = object()


@dataclass(eq=False)
class Field:
    name: str
    type: Type
    default: Any = _MISSING  # Avro-JSON default (union default = first branch), or _MISSING


@dataclass(eq=False)
class Record(Type):
    name: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        self.branch = f"{NAMESPACE}.{self.name}"
        self.by_name = {f.name: f for f in self.fields}

    def label(self) -> str:
        return f"record {self.name}"


def _short(t: Type) -> str:
    if isinstance(t, (Record, Enum)):
        return t.name
    if isinstance(t, Array):
        return "array"
    return t.branch


class Rec(dict):
    """A decoded record: field name → datum, in field order; `rtype` is its Record."""

    __slots__ = ("rtype",)

    def __init__(self, rtype: Record) -> None:
        super().__init__()
        self.rtype = rtype


# ---------------------------------------------------------------------------------------------------
# The records of Layout.avdl

NULL, BOOLEAN, INT, LONG, STRING = (Prim(n) for n in ("null", "boolean", "int", "long", "string"))


def _opt(t: Type) -> Union:
    return Union((NULL, t))


COMPRESSION_TYPE = Enum("CompressionType", ("NONE", "GZ", "LZO", "SNAPPY"))
SCHEMA_TYPE = Enum("SchemaType", ("INLINE", "CLASS", "COUNTER", "AVRO", "RAW_BYTES", "PROTOBUF"))
SCHEMA_STORAGE = Enum("SchemaStorage", ("HASH", "UID", "FINAL"))
AVRO_VALIDATION_POLICY = Enum("AvroValidationPolicy", ("STRICT", "DEVELOPER", "SCHEMA_1_0", "NONE"))
BLOOM_TYPE = Enum("BloomType", ("NONE", "ROW", "ROWCOL"))
HASH_TYPE = Enum("HashType", ("MD5",))
ROW_KEY_ENCODING = Enum("RowKeyEncoding", ("RAW", "HASH", "HASH_PREFIX", "FORMATTED"))
COMPONENT_TYPE = Enum("ComponentType", ("STRING", "INTEGER", "LONG"))
COLUMN_NAME_TRANSLATOR = Enum("ColumnNameTranslator", ("SHORT", "IDENTITY", "HBASE_NATIVE"))

AVRO_SCHEMA = Record("AvroSchema", (Field("uid", _opt(LONG), None), Field("json", _opt(STRING), None)))

CELL_SCHEMA = Record(
    "CellSchema",
    (
        Field("storage", SCHEMA_STORAGE, "HASH"),
        Field("type", SCHEMA_TYPE),
        Field("value", _opt(STRING), None),
        Field("avro_validation_policy", AVRO_VALIDATION_POLICY, "SCHEMA_1_0"),
        Field("specific_reader_schema_class", _opt(STRING), None),
        Field("default_reader", _opt(AVRO_SCHEMA), None),
        Field("readers", _opt(Array(AVRO_SCHEMA)), None),
        Field("written", _opt(Array(AVRO_SCHEMA)), None),
        Field("writers", _opt(Array(AVRO_SCHEMA)), None),
        Field("protobuf_full_name", _opt(STRING), None),
        Field("protobuf_class_name", _opt(STRING), None),
    ),
)

#: the fields every layout element (column, family, locality group) starts with, in this order
_ELEMENT_FIELDS = (
    Field("id", INT, 0),
    Field("name", STRING),
    Field("aliases", Array(STRING), []),
    Field("enabled", BOOLEAN, True),
    Field("description", STRING, ""),
)

COLUMN_DESC = Record(
    "ColumnDesc",
    (
        *_ELEMENT_FIELDS,
        Field("column_schema", CELL_SCHEMA),
        Field("delete", BOOLEAN, False),
        Field("renamed_from", _opt(STRING), None),
    ),
)

FAMILY_DESC = Record(
    "FamilyDesc",
    (
        *_ELEMENT_FIELDS,
        Field("map_schema", _opt(CELL_SCHEMA), None),
        Field("columns", Array(COLUMN_DESC), []),
        Field("delete", BOOLEAN, False),
        Field("renamed_from", _opt(STRING), None),
    ),
)

LOCALITY_GROUP_DESC = Record(
    "LocalityGroupDesc",
    (
        *_ELEMENT_FIELDS,
        Field("in_memory", BOOLEAN),
        Field("max_versions", INT),
        Field("ttl_seconds", INT),
        Field("block_size", _opt(INT), None),
        Field("bloom_type", _opt(BLOOM_TYPE), None),
        Field("compression_type", COMPRESSION_TYPE),
        Field("families", Array(FAMILY_DESC), []),
        Field("delete", BOOLEAN, False),
        Field("renamed_from", _opt(STRING), None),
    ),
)

HASH_SPEC = Record(
    "HashSpec",
    (
        Field("hash_type", HASH_TYPE, "MD5"),
        Field("hash_size", INT, 16),
        Field("suppress_key_materialization", BOOLEAN, False),
    ),
)

ROW_KEY_FORMAT = Record(
    "RowKeyFormat",
    (
        Field("encoding", ROW_KEY_ENCODING),
        Field("hash_type", _opt(HASH_TYPE), None),
        Field("hash_size", INT, 0),
    ),
)

ROW_KEY_COMPONENT = Record("RowKeyComponent", (Field("name", STRING), Field("type", COMPONENT_TYPE)))

ROW_KEY_FORMAT2 = Record(
    "RowKeyFormat2",
    (
        Field("encoding", ROW_KEY_ENCODING),
        Field(
            "salt",
            Union((HASH_SPEC, NULL)),
            {"hash_type": "MD5", "hash_size": 2, "suppress_key_materialization": False},
        ),
        Field("range_scan_start_index", INT, 1),
        Field("nullable_start_index", INT, 1),
        Field("components", Array(ROW_KEY_COMPONENT), []),
    ),
)

TABLE_LAYOUT_DESC = Record(
    "TableLayoutDesc",
    (
        Field("name", STRING),
        Field("max_filesize", _opt(LONG), None),
        Field("memstore_flushsize", _opt(LONG), None),
        Field("description", STRING, ""),
        Field("keys_format", Union((ROW_KEY_FORMAT, ROW_KEY_FORMAT2))),
        Field("locality_groups", Array(LOCALITY_GROUP_DESC), []),
        Field("column_name_translator", COLUMN_NAME_TRANSLATOR, "SHORT"),
        Field("version", STRING),
        Field("layout_id", _opt(STRING), None),
        Field("reference_layout", _opt(STRING), None),
    ),
)


# ---------------------------------------------------------------------------------------------------
# Decoding


def show(value: Any, limit: int = 80) -> str:
    """Compact JSON of a value for error messages, shortened when long."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is not an int here


def decode(t: Type, value: Any, path: tuple[str | int, ...] = ()) -> Any:
    """Read one layout JSON value as type `t` (layouts.md §2); raises DecodeError."""
    if isinstance(t, Record):
        return _decode_record(t, value, path)
    if isinstance(t, Prim):
        name = t.name
        if name == "string":
            if isinstance(value, str):
                return value
        elif name == "int" or name == "long":
            if _is_int(value):
                lo, hi = (INT32_MIN, INT32_MAX) if name == "int" else (INT64_MIN, INT64_MAX)
                if not lo <= value <= hi:
                    raise DecodeError(path, f"expected {name}, got {value} (out of the {name} range)")
                return value
        elif name == "boolean":
            if value is True or value is False:
                return value
        elif value is None:  # null
            return None
        raise DecodeError(path, f"expected {name}, got {show(value)}")
    if isinstance(t, Enum):
        if not isinstance(value, str):
            raise DecodeError(path, f"expected {t.label()}, got {show(value)}")
        if value not in t.symbols:
            raise DecodeError(path, f"'{value}' is not one of [{', '.join(t.symbols)}]")
        return value
    if isinstance(t, Array):
        if not isinstance(value, list):
            raise DecodeError(path, f"expected {t.label()}, got {show(value)}")
        return [decode(t.items, item, (*path, i)) for i, item in enumerate(value)]
    if isinstance(t, Union):
        return _decode_union(t, value, path)
    raise AssertionError(t)


def _decode_record(t: Record, value: Any, path: tuple[str | int, ...]) -> Rec:
    if not isinstance(value, dict):
        raise DecodeError(path, f"expected {t.label()}, got {show(value)}")
    for key in value:
        if key not in t.by_name:
            raise DecodeError((*path, key), f"unexpected field '{key}'")
    out = Rec(t)
    for f in t.fields:
        if f.name in value:
            out[f.name] = decode(f.type, value[f.name], (*path, f.name))
        elif f.default is _MISSING:
            raise DecodeError(path, f"missing field '{f.name}'")
        else:
            out[f.name] = default_datum(f.type, f.default)
    return out


def _decode_union(t: Union, value: Any, path: tuple[str | int, ...]) -> Any:
    first_error: DecodeError | None = None
    # 1. optional union: null, else the value read as the other type directly
    if t.optional is not None:
        if value is None:
            return None
        try:
            return decode(t.optional, value, path)
        except DecodeError as e:
            first_error = e
    # 2. the tagged Avro-JSON form {"<branch full name>": value}
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        for b in t.branches:
            if b.branch == key:
                return decode(b, inner, path)  # a tag names its branch: its error is the one to show
    # 3. each branch in declaration order
    errors: list[str] = []
    for b in t.branches:
        if b is t.optional:
            continue  # already tried
        try:
            return decode(b, value, path)
        except DecodeError as e:
            errors.append(f"{_short(b)}: {e.message}")
    if first_error is not None:
        raise first_error
    raise DecodeError(path, f"no branch of {t.label()} accepts {show(value)} ({'; '.join(errors)})")


def default_datum(t: Type, default: Any) -> Any:
    """A field default as a datum (a union default is read as its first branch)."""
    if isinstance(t, Union):
        return default_datum(t.branches[0], default)
    if isinstance(t, Record):
        out = Rec(t)
        for f in t.fields:
            out[f.name] = (
                default_datum(f.type, default[f.name])
                if f.name in default
                else (default_datum(f.type, f.default))
            )
        return out
    if isinstance(t, Array):
        return [default_datum(t.items, v) for v in default]
    return default


# ---------------------------------------------------------------------------------------------------
# Encoding (Avro JSON)


def encode(t: Type, datum: Any) -> Any:
    """Write a datum as Avro JSON: every record field, union values tagged with their branch."""
    if isinstance(t, Record):
        return {f.name: encode(f.type, datum[f.name]) for f in t.fields}
    if isinstance(t, Array):
        return [encode(t.items, v) for v in datum]
    if isinstance(t, Union):
        if datum is None:
            return None
        b = _branch_of(t, datum)
        return {b.branch: encode(b, datum)}
    return datum


def _branch_of(t: Union, datum: Any) -> Type:
    for b in t.branches:
        if isinstance(b, Record):
            if isinstance(datum, Rec) and datum.rtype is b:
                return b
        elif isinstance(b, Enum):
            if isinstance(datum, str) and datum in b.symbols:
                return b
        elif isinstance(b, Array):
            if isinstance(datum, list):
                return b
        elif b.name == "string":
            if isinstance(datum, str):
                return b
        elif b.name in ("int", "long"):
            if _is_int(datum):
                return b
        elif b.name == "boolean":
            if isinstance(datum, bool):
                return b
    raise AssertionError(f"no branch of {t.label()} for {datum!r}")


def format_path(path: tuple[str | int, ...]) -> str:
    """`("locality_groups", 0, "name")` → `locality_groups[0].name`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
