"""Avro schemas as Avro-Java 1.7.6 reads and prints them (encodings.md §3.4).

Kiji identifies a cell's writer schema by `MD5(UTF-8(Schema.toString()))` as printed by Avro-Java 1.7.6.
Neither Python Avro library prints that text, so this module keeps its own schema model, parsed with
1.7.6's rules (namespaces, properties kept in input order, string defaults on float/double fields) and
printed byte for byte as 1.7.6's `toString()`: the canonical text stored in the schema table.

Schemas are parsed once (layout load, schema-table load, a POSTed writer schema) and are immutable
afterwards; nothing here is meant for the per-cell hot path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import orjson

from kijirest.avro.jackson import java_parse_double, json_text, quote, write_json
from kijirest.primitives import INT32_MAX, INT32_MIN

__all__ = [
    "PRIMITIVE_TYPES",
    "ArraySchema",
    "AvroSchemaError",
    "EnumSchema",
    "Field",
    "FixedSchema",
    "MapSchema",
    "NamedSchema",
    "Names",
    "PrimitiveSchema",
    "RecordSchema",
    "Schema",
    "UndefinedNameError",
    "UnionSchema",
    "canonical_text",
    "parse_schema",
    "parse_schema_text",
    "schema_hash",
]

#: The primitive type names, in the order the schema table installs them (uids 0..7, encodings.md §4).
PRIMITIVE_TYPES: tuple[str, ...] = ("string", "bytes", "int", "long", "float", "double", "boolean", "null")
_PRIMITIVES = frozenset(PRIMITIVE_TYPES)

#: Keys of a schema object that are not properties (Avro 1.7.6 Schema.SCHEMA_RESERVED).
_SCHEMA_RESERVED = frozenset(
    ("doc", "fields", "items", "name", "namespace", "size", "symbols", "values", "type", "aliases")
)
#: Keys of a field object that are not field properties (Avro 1.7.6 Schema.FIELD_RESERVED).
_FIELD_RESERVED = frozenset(("default", "doc", "name", "order", "type", "aliases"))

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ORDERS = ("ascending", "descending", "ignore")


class AvroSchemaError(ValueError):
    """A schema that Avro 1.7.6 would not parse (or that kijirest cannot store)."""


class UndefinedNameError(AvroSchemaError):
    """A reference to a named type that is not defined (yet); `name` is the full name looked up."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class _NoDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DEFAULT"


#: `Field.default` of a field without a default (JSON null is a real default: `None`).
NO_DEFAULT: Any = _NoDefault()


# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------


class Schema:
    """A parsed schema. `type` is the Avro type name (an `error` is a "record" with `is_error`)."""

    __slots__ = ("_canonical", "props", "type")

    def __init__(self, type_: str, props: dict[str, Any] | None = None) -> None:
        self.type = type_
        #: properties (non-reserved keys) with their JSON values, in input order
        self.props: dict[str, Any] = props or {}
        self._canonical: str | None = None

    @property
    def fullname(self) -> str | None:
        """The full name of a named type (record, error, enum, fixed); None otherwise."""
        return None

    @property
    def branch_name(self) -> str:
        """The name of this schema as a union branch in Avro JSON (`{"long": 1}`, `{"a.B": {...}}`)."""
        return self.type

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schema):
            return NotImplemented
        return other is self or canonical_text(self) == canonical_text(other)

    def __hash__(self) -> int:
        return hash(canonical_text(self))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {canonical_text(self)}>"


class PrimitiveSchema(Schema):
    __slots__ = ()


class NamedSchema(Schema):
    """A record, error, enum or fixed: a type with a full name (and aliases, a doc)."""

    __slots__ = ("aliases", "doc", "name", "namespace")

    def __init__(
        self,
        type_: str,
        name: str,
        namespace: str | None,
        doc: str | None,
        props: dict[str, Any] | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        super().__init__(type_, props)
        #: the short name
        self.name = name
        #: None when the type has no namespace (never "")
        self.namespace = namespace
        self.doc = doc
        #: full names of the aliases, in input order, without duplicates
        self.aliases = aliases

    @property
    def fullname(self) -> str:
        return self.name if self.namespace is None else f"{self.namespace}.{self.name}"

    @property
    def branch_name(self) -> str:
        return self.fullname


class Field:
    """A record field. `default` is the JSON value (NO_DEFAULT when absent); `order` is lowercase."""

    __slots__ = ("aliases", "default", "doc", "name", "order", "pos", "props", "schema")

    def __init__(
        self,
        name: str,
        schema: Schema,
        pos: int,
        doc: str | None = None,
        default: Any = NO_DEFAULT,
        order: str = "ascending",
        aliases: tuple[str, ...] = (),
        props: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.schema = schema
        self.pos = pos
        self.doc = doc
        self.default = default
        self.order = order
        self.aliases = aliases
        self.props: dict[str, Any] = props or {}

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def __repr__(self) -> str:
        return f"<Field {self.name} {self.schema!r}>"


class RecordSchema(NamedSchema):
    __slots__ = ("field_map", "fields", "is_error")

    def __init__(
        self,
        name: str,
        namespace: str | None,
        doc: str | None,
        is_error: bool = False,
        props: dict[str, Any] | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        super().__init__("record", name, namespace, doc, props, aliases)
        self.is_error = is_error
        #: set once, right after the fields are parsed (a record may refer to itself)
        self.fields: tuple[Field, ...] = ()
        self.field_map: dict[str, Field] = {}


class EnumSchema(NamedSchema):
    __slots__ = ("symbols",)

    def __init__(
        self,
        name: str,
        namespace: str | None,
        doc: str | None,
        symbols: tuple[str, ...],
        props: dict[str, Any] | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        super().__init__("enum", name, namespace, doc, props, aliases)
        self.symbols = symbols


class FixedSchema(NamedSchema):
    __slots__ = ("size",)

    def __init__(
        self,
        name: str,
        namespace: str | None,
        doc: str | None,
        size: int,
        props: dict[str, Any] | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        super().__init__("fixed", name, namespace, doc, props, aliases)
        self.size = size


class ArraySchema(Schema):
    __slots__ = ("items",)

    def __init__(self, items: Schema, props: dict[str, Any] | None = None) -> None:
        super().__init__("array", props)
        self.items = items


class MapSchema(Schema):
    __slots__ = ("values",)

    def __init__(self, values: Schema, props: dict[str, Any] | None = None) -> None:
        super().__init__("map", props)
        self.values = values


class UnionSchema(Schema):
    __slots__ = ("branches",)

    def __init__(self, branches: tuple[Schema, ...]) -> None:
        super().__init__("union")
        self.branches = branches


class Names:
    """Registry of named types by full name.

    Pass one to several `parse_schema` calls so that later schemas can refer to types defined by
    earlier ones (the `schemas/*.avsc` of an instance). A failed parse leaves it unchanged.
    """

    __slots__ = ("_types",)

    def __init__(self) -> None:
        self._types: dict[str, NamedSchema] = {}

    def get(self, fullname: str) -> Schema | None:
        return self._types.get(fullname)

    def __contains__(self, fullname: object) -> bool:
        return fullname in self._types

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def items(self) -> Iterator[tuple[str, NamedSchema]]:
        return iter(self._types.items())


# ---------------------------------------------------------------------------------------------------
# Reading (Avro 1.7.6 Schema.parse)
# ---------------------------------------------------------------------------------------------------


def _path_join(path: str, part: str) -> str:
    if not path:
        return part.lstrip(".")
    return path + part


def _preview(value: Any) -> str:
    try:
        text = json_text(value)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


class _Parser:
    """One parse: new named types go to `defined` and reach the caller's Names only on success."""

    __slots__ = ("defined", "external")

    def __init__(self, names: Names | None) -> None:
        self.external: dict[str, NamedSchema] = names._types if names is not None else {}
        self.defined: dict[str, NamedSchema] = {}

    def fail(self, path: str, message: str) -> AvroSchemaError:
        return AvroSchemaError(f"{path}: {message}" if path else message)

    # -- names ----------------------------------------------------------------------------------
    def lookup(self, ref: str, space: str | None) -> Schema | None:
        """A type name as Avro 1.7.6's Names.get: primitives first; an undotted name only in the
        current namespace."""
        if ref in _PRIMITIVES:
            return PrimitiveSchema(ref)
        full = _full_name(ref, space)
        found = self.defined.get(full)
        if found is None:
            found = self.external.get(full)
        return found

    def check_name(self, path: str, name: str, what: str = "name") -> str:
        if not _NAME_RE.fullmatch(name):
            if not name:
                raise self.fail(path, f"Empty {what}")
            if not (name[0].isascii() and (name[0].isalpha() or name[0] == "_")):
                raise self.fail(path, f"Illegal initial character: {name}")
            raise self.fail(path, f"Illegal character in: {name}")
        return name

    def split_name(self, path: str, name: str, space: str | None) -> tuple[str, str | None]:
        """(short name, namespace) of a type name read in namespace `space` (Avro's Name class)."""
        if "." in name:
            space, _, name = name.rpartition(".")
        if space == "":
            space = None
        self.check_name(path, name)
        if space is not None:
            for part in space.split("."):
                self.check_name(path, part, "namespace part")
        return name, space

    def define(self, path: str, schema: NamedSchema) -> None:
        full = schema.fullname
        if full in _PRIMITIVES:
            raise self.fail(path, f"Schemas may not be named after primitives: {full}")
        if full in self.defined or full in self.external:
            raise self.fail(path, f"Can't redefine: {full}")
        self.defined[full] = schema

    def aliases(self, path: str, node: dict[str, Any]) -> list[str] | None:
        if "aliases" not in node:
            return None
        value = node["aliases"]
        if not isinstance(value, list):
            raise self.fail(_path_join(path, ".aliases"), f"aliases not an array: {_preview(value)}")
        out: dict[str, None] = {}
        for i, alias in enumerate(value):
            if not isinstance(alias, str):
                raise self.fail(_path_join(path, f".aliases[{i}]"), f"alias not a string: {_preview(alias)}")
            out[alias] = None
        return list(out)

    # -- schemas --------------------------------------------------------------------------------
    def parse(self, node: Any, space: str | None, path: str) -> Schema:
        if isinstance(node, str):
            found = self.lookup(node, space)
            if found is None:
                full = _full_name(node, space)
                raise UndefinedNameError(
                    f"{path}: Undefined name: {quote(node)}" if path else f"Undefined name: {quote(node)}",
                    full,
                )
            return found
        if isinstance(node, list):
            return self.parse_union(node, space, path)
        if isinstance(node, dict):
            return self.parse_object(node, space, path)
        raise self.fail(path, f"Schema not yet supported: {_preview(node)}")

    def parse_union(self, node: list[Any], space: str | None, path: str) -> UnionSchema:
        branches: list[Schema] = []
        seen: set[str] = set()
        for i, item in enumerate(node):
            branch = self.parse(item, space, f"{path}[{i}]")
            if isinstance(branch, UnionSchema):
                raise self.fail(f"{path}[{i}]", "Nested union: a union cannot hold a union")
            key = branch.branch_name
            if key in seen:
                raise self.fail(f"{path}[{i}]", f"Duplicate in union: {key}")
            seen.add(key)
            branches.append(branch)
        return UnionSchema(tuple(branches))

    def parse_object(self, node: dict[str, Any], space: str | None, path: str) -> Schema:
        type_ = node.get("type")
        if not isinstance(type_, str):
            raise self.fail(path, f"No type: {_preview(node)}")
        props = {k: v for k, v in node.items() if k not in _SCHEMA_RESERVED}
        if type_ in _PRIMITIVES:
            return PrimitiveSchema(type_, props)
        if type_ == "array":
            if "items" not in node:
                raise self.fail(path, f"Array has no items type: {_preview(node)}")
            return ArraySchema(self.parse(node["items"], space, _path_join(path, ".items")), props)
        if type_ == "map":
            if "values" not in node:
                raise self.fail(path, f"Map has no values type: {_preview(node)}")
            return MapSchema(self.parse(node["values"], space, _path_join(path, ".values")), props)
        if type_ not in ("record", "error", "enum", "fixed"):
            raise self.fail(path, f"Type not supported: {type_}")

        # A named type. A non-string namespace or doc counts as absent (Avro reads them as text).
        ns_value = node.get("namespace")
        ns = ns_value if isinstance(ns_value, str) else space
        doc_value = node.get("doc")
        doc = doc_value if isinstance(doc_value, str) else None
        raw_name = node.get("name")
        if not isinstance(raw_name, str):
            raise self.fail(path, f"No name in schema: {_preview(node)}")
        name, namespace = self.split_name(_path_join(path, ".name"), raw_name, ns)
        # Avro 1.7.6 makes the type's namespace the default for what it contains only when it has
        # one: a namespace-less type nested in a namespaced one leaves the outer default in force.
        inner_space = namespace if namespace is not None else space
        alias_texts = self.aliases(path, node)
        aliases: tuple[str, ...] = ()
        if alias_texts:
            full_aliases: dict[str, None] = {}
            for i, alias in enumerate(alias_texts):
                a_name, a_space = self.split_name(_path_join(path, f".aliases[{i}]"), alias, namespace)
                full_aliases[a_name if a_space is None else f"{a_space}.{a_name}"] = None
            aliases = tuple(full_aliases)

        if type_ in ("record", "error"):
            record = RecordSchema(name, namespace, doc, type_ == "error", props, aliases)
            self.define(path, record)
            fields_node = node.get("fields")
            if not isinstance(fields_node, list):
                raise self.fail(path, f"Record has no fields: {_preview(node)}")
            fields: list[Field] = []
            field_map: dict[str, Field] = {}
            for i, field_node in enumerate(fields_node):
                field = self.parse_field(field_node, inner_space, f"{_path_join(path, '.fields')}[{i}]", i)
                if field.name in field_map:
                    raise self.fail(
                        f"{_path_join(path, '.fields')}[{i}]",
                        f"Duplicate field {field.name} in record {record.fullname}",
                    )
                field_map[field.name] = field
                fields.append(field)
            record.fields = tuple(fields)
            record.field_map = field_map
            return record

        if type_ == "enum":
            symbols_node = node.get("symbols")
            if not isinstance(symbols_node, list):
                raise self.fail(path, f"Enum has no symbols: {_preview(node)}")
            symbols: dict[str, None] = {}
            for i, symbol in enumerate(symbols_node):
                spath = f"{_path_join(path, '.symbols')}[{i}]"
                if not isinstance(symbol, str):
                    raise self.fail(spath, f"Enum symbol is not a string: {_preview(symbol)}")
                self.check_name(spath, symbol, "enum symbol")
                if symbol in symbols:
                    raise self.fail(spath, f"Duplicate enum symbol: {symbol}")
                symbols[symbol] = None
            enum = EnumSchema(name, namespace, doc, tuple(symbols), props, aliases)
            self.define(path, enum)
            return enum

        size = node.get("size")
        if not _is_java_int(size):
            raise self.fail(path, f"Invalid or no size: {_preview(node)}")
        if size < 0:
            raise self.fail(path, f"Invalid fixed size: {size}")
        fixed = FixedSchema(name, namespace, doc, size, props, aliases)
        self.define(path, fixed)
        return fixed

    def parse_field(self, node: Any, space: str | None, path: str, pos: int) -> Field:
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            raise self.fail(path, f"No field name: {_preview(node)}")
        name = self.check_name(_path_join(path, ".name"), node["name"], "field name")
        doc_value = node.get("doc")
        doc = doc_value if isinstance(doc_value, str) else None
        if "type" not in node:
            raise self.fail(path, f"No field type: {_preview(node)}")
        type_node = node["type"]
        tpath = _path_join(path, ".type")
        if isinstance(type_node, str) and self.lookup(type_node, space) is None:
            raise UndefinedNameError(
                f"{tpath}: {quote(type_node)} is not a defined name. The type of the {quote(name)} field "
                'must be a defined name or a {"type": ...} expression.',
                _full_name(type_node, space),
            )
        schema = self.parse(type_node, space, tpath)
        order = "ascending"
        if "order" in node:
            # Java upper-cases the text before matching: "Descending", "IGNORE" are fine.
            order_value = node["order"]
            order = order_value.upper().lower() if isinstance(order_value, str) else ""
            if order not in _ORDERS:
                raise self.fail(_path_join(path, ".order"), f"Invalid field order: {_preview(order_value)}")
        default = NO_DEFAULT
        if "default" in node:
            default = node["default"]
            if schema.type in ("float", "double") and isinstance(default, str):
                try:
                    default = java_parse_double(default)
                except ValueError:
                    raise self.fail(
                        _path_join(path, ".default"),
                        f"Invalid number for a {schema.type} default: {default!r}",
                    ) from None
        aliases = self.aliases(path, node) or ()
        props = {k: v for k, v in node.items() if k not in _FIELD_RESERVED}
        return Field(name, schema, pos, doc, default, order, tuple(aliases), props)


def _full_name(name: str, space: str | None) -> str:
    if "." in name:
        space, _, name = name.rpartition(".")
    return f"{space}.{name}" if space else name


def _is_java_int(value: Any) -> bool:
    return type(value) is int and INT32_MIN <= value <= INT32_MAX


def parse_schema(value: object, names: Names | None = None) -> Schema:
    """Parse already-decoded schema JSON (str, list or dict) as Avro 1.7.6 does.

    Named types may refer to types in `names`; the types this schema defines are added to `names`
    only when the whole parse succeeds. Raises AvroSchemaError (UndefinedNameError for a missing
    name) with the location in the schema and the reason.
    """
    parser = _Parser(names)
    schema = parser.parse(value, None, "")
    text = canonical_text(schema)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise AvroSchemaError(
            "the schema holds a string that is not valid Unicode (a lone surrogate)"
        ) from None
    if names is not None:
        names._types.update(parser.defined)
    return schema


_BIG_INT = re.compile(r"[0-9]{19,}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_schema_text(text: str, names: Names | None = None) -> Schema:
    """Parse schema JSON text (standard JSON) as Avro 1.7.6 does; see `parse_schema`."""
    try:
        value = orjson.loads(text)
        if _BIG_INT.search(text):
            # orjson turns integers beyond 64 bits into floats; Jackson keeps their digits.
            value = json.loads(text, parse_constant=_reject_constant)
    except orjson.JSONDecodeError as e:
        if "infinity" not in str(e):
            raise AvroSchemaError(f"Invalid schema JSON: {e}") from None
        try:  # a literal such as 1e400: Jackson reads it as an infinite double
            value = json.loads(text, parse_constant=_reject_constant)
        except ValueError as e2:
            raise AvroSchemaError(f"Invalid schema JSON: {e2}") from None
    except ValueError as e:
        raise AvroSchemaError(f"Invalid schema JSON: {e}") from None
    return parse_schema(value, names)


# ---------------------------------------------------------------------------------------------------
# Writing (Avro 1.7.6 Schema.toString() through Jackson 1.x)
# ---------------------------------------------------------------------------------------------------


def _write_props(props: dict[str, Any], out: list[str]) -> None:
    for key, value in props.items():
        out.append(",")
        out.append(quote(key))
        out.append(":")
        write_json(value, out)


def _write_named_header(schema: NamedSchema, type_name: str, space: str | None, out: list[str]) -> None:
    out.append('{"type":')
    out.append(quote(type_name))
    out.append(',"name":')
    out.append(quote(schema.name))
    if schema.namespace is not None:
        if schema.namespace != space:
            out.append(',"namespace":')
            out.append(quote(schema.namespace))
    elif space is not None:
        out.append(',"namespace":""')
    if schema.doc is not None:
        out.append(',"doc":')
        out.append(quote(schema.doc))


def _write_aliases(schema: NamedSchema, out: list[str]) -> None:
    if not schema.aliases:
        return
    out.append(',"aliases":[')
    prefix = f"{schema.namespace}." if schema.namespace is not None else None
    for i, alias in enumerate(schema.aliases):
        if i:
            out.append(",")
        # an alias in the type's own namespace is written short
        if prefix is not None and alias.startswith(prefix) and "." not in alias[len(prefix) :]:
            alias = alias[len(prefix) :]
        out.append(quote(alias))
    out.append("]")


def _write_schema(schema: Schema, space: str | None, written: set[str], out: list[str]) -> None:
    if isinstance(schema, NamedSchema):
        full = schema.fullname
        if full in written:
            # a type already written: its name, short when it is in the current namespace
            out.append(quote(schema.name if schema.namespace in (None, space) else full))
            return
        written.add(full)
        if isinstance(schema, RecordSchema):
            _write_named_header(schema, "error" if schema.is_error else "record", space, out)
            out.append(',"fields":[')
            inner = schema.namespace
            for i, field in enumerate(schema.fields):
                if i:
                    out.append(",")
                out.append('{"name":')
                out.append(quote(field.name))
                out.append(',"type":')
                _write_schema(field.schema, inner, written, out)
                if field.doc is not None:
                    out.append(',"doc":')
                    out.append(quote(field.doc))
                if field.default is not NO_DEFAULT:
                    out.append(',"default":')
                    write_json(field.default, out)
                if field.order != "ascending":
                    out.append(',"order":')
                    out.append(quote(field.order))
                if field.aliases:
                    out.append(',"aliases":[')
                    out.append(",".join(quote(a) for a in field.aliases))
                    out.append("]")
                _write_props(field.props, out)
                out.append("}")
            out.append("]")
        elif isinstance(schema, EnumSchema):
            _write_named_header(schema, "enum", space, out)
            out.append(',"symbols":[')
            out.append(",".join(quote(s) for s in schema.symbols))
            out.append("]")
        elif isinstance(schema, FixedSchema):
            _write_named_header(schema, "fixed", space, out)
            out.append(f',"size":{schema.size}')
        _write_props(schema.props, out)
        _write_aliases(schema, out)
        out.append("}")
    elif isinstance(schema, UnionSchema):
        out.append("[")
        for i, branch in enumerate(schema.branches):
            if i:
                out.append(",")
            _write_schema(branch, space, written, out)
        out.append("]")
    elif isinstance(schema, ArraySchema):
        out.append('{"type":"array","items":')
        _write_schema(schema.items, space, written, out)
        _write_props(schema.props, out)
        out.append("}")
    elif isinstance(schema, MapSchema):
        out.append('{"type":"map","values":')
        _write_schema(schema.values, space, written, out)
        _write_props(schema.props, out)
        out.append("}")
    elif schema.props:
        out.append('{"type":')
        out.append(quote(schema.type))
        _write_props(schema.props, out)
        out.append("}")
    else:
        out.append(quote(schema.type))


def canonical_text(schema: Schema) -> str:
    """The compact JSON that Avro-Java 1.7.6 `Schema.toString()` prints: what Kiji hashes and stores."""
    text = schema._canonical
    if text is None:
        out: list[str] = []
        _write_schema(schema, None, set(), out)
        text = schema._canonical = "".join(out)
    return text


def schema_hash(schema: Schema) -> bytes:
    """MD5 of the UTF-8 canonical text (16 bytes): the HASH cell prefix and schema_hash row key."""
    return hashlib.md5(canonical_text(schema).encode("utf-8")).digest()
