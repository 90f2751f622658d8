"""Cell bytes ⇄ JSON values (encodings.md §3, api.md "Value rendering" and "POST rows").

A Kiji cell is a schema prefix (16-byte hash, varint uid, or nothing) followed by one Avro datum.
Reading turns the datum straight into the JSON value the API shows, resolving the writer schema to
the column's reader schema as Avro-Java 1.7.6 does; writing turns a posted JSON value into the datum
of the writer schema, with precise errors.

Both directions are compiled once per schema (pair) into a tree of small closures and cached by
canonical text, so the per-cell work is only byte reading and dict building. The codec reads and
writes Avro binary itself rather than through fastavro: after fastavro's decoding the union branch of
a number is lost (`{"int": 5}` vs `{"long": 5}`, float vs double), its resolution picks the first
matching union branch where Avro 1.7.6 prefers the exact type, and its record name checks differ. The
bytes are the standard Avro binary encoding; the tests check them against fastavro.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from kijirest.avro.schema import (
    ArraySchema,
    EnumSchema,
    FixedSchema,
    MapSchema,
    NamedSchema,
    RecordSchema,
    Schema,
    UnionSchema,
    canonical_text,
    parse_schema_text,
    schema_hash,
)

if TYPE_CHECKING:
    from kijirest.layouts.model import CellSpec

__all__ = [
    "UID_BYTES",
    "UID_LONG",
    "UID_STRING",
    "CellDecodeError",
    "CellEncodeError",
    "CodecCache",
    "ColumnCodec",
    "SchemaEntry",
    "SchemaLookup",
    "cell_bytes",
    "decode_counter",
    "decode_datum",
    "decode_varint",
    "encode_counter",
    "encode_datum",
    "encode_raw_bytes",
    "encode_varint",
    "resolution_problem",
]

#: uids of the primitives the schema table installs first (encodings.md §4)
UID_STRING = 0
UID_BYTES = 1
UID_LONG = 3

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_MASK64 = (1 << 64) - 1


class CellDecodeError(Exception):
    """A cell that cannot be decoded; the API shows it as "Error loading cell: <reason>"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CellEncodeError(ValueError):
    """A posted value that does not fit its schema.

    `path` locates the bad part inside the value (`""`, `".address.city"`, `"[3]"`, `'["key"]'`); the
    gateway prefixes the cell's own location: `[0].cells.info.name[1].value<path>: <reason>`.
    """

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    """One schema-table entry: uid, MD5 hash of the canonical text, canonical text."""

    uid: int
    hash: bytes
    text: str

    @property
    def id(self) -> int:
        """The uid under the name `GET /v1/instances/<i>` lists it with."""
        return self.uid

    @property
    def schema(self) -> str:
        """The canonical text (the `avro_schema` of the instance listing)."""
        return self.text


class SchemaLookup(Protocol):
    """How cells find writer schemas (implemented by `kijirest.schema_table.SchemaTable`).

    Both calls may block on a cache miss (the table re-reads its store once); None = unknown.
    """

    def by_uid(self, uid: int) -> SchemaEntry | None: ...

    def by_hash(self, schema_hash: bytes) -> SchemaEntry | None: ...


# ---------------------------------------------------------------------------------------------------
# Varints (§3.2): unsigned LEB128, the uid prefix and the schema_id row keys
# ---------------------------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 (not zig-zag) of a non-negative id."""
    if value < 0 or value > _MASK64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """(value, position after it); ValueError when truncated or longer than 10 bytes."""
    result = 0
    shift = 0
    end = len(data)
    for _ in range(10):
        if pos >= end:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _MASK64, pos
        shift += 7
    raise ValueError("varint longer than 10 bytes")


# ---------------------------------------------------------------------------------------------------
# Reading: Avro binary -> JSON value, with writer -> reader resolution (Avro 1.7.6)
# ---------------------------------------------------------------------------------------------------

#: reads one value at `pos`: (JSON value, position after it)
Reader = Callable[[bytes, int], tuple[Any, int]]
#: skips one value at `pos`: position after it
Skipper = Callable[[bytes, int], int]

_unpack_float = struct.Struct("<f").unpack_from
_unpack_double = struct.Struct("<d").unpack_from
_pack_float = struct.Struct("<f").pack
_pack_double = struct.Struct("<d").pack


class _BadData(Exception):
    """Datum bytes that do not decode (turned into CellDecodeError)."""


class _Mismatch(Exception):
    """A writer schema that does not resolve to the reader schema."""


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    n = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 63:
            raise _BadData("invalid long encoding")
    n &= _MASK64
    return (n >> 1) ^ -(n & 1), pos


def _read_int(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:  # one byte: always in range
        return (b >> 1) ^ -(b & 1), pos + 1
    v, pos = _read_long(buf, pos)
    if v < _INT_MIN or v > _INT_MAX:
        raise _BadData("invalid int encoding")
    return v, pos


def _read_null(buf: bytes, pos: int) -> tuple[Any, int]:
    return None, pos


def _read_boolean(buf: bytes, pos: int) -> tuple[bool, int]:
    return buf[pos] == 1, pos + 1


def _double_json(v: float) -> Any:
    """A double as JSON: NaN and infinities as strings, like Jackson's default."""
    if v - v == 0.0:
        return v
    if v != v:
        return "NaN"
    return "Infinity" if v > 0 else "-Infinity"


def _float32(v: float) -> float:
    return _unpack_float(_pack_float(v))[0]


def _float_json(v: float) -> Any:
    """A float32 value as JSON with its shortest float digits (Java's Float.toString: 0.1f is 0.1)."""
    if v - v != 0.0:
        return _double_json(v)
    for digits in range(1, 10):
        shortest = float(f"{v:.{digits}g}")
        if _float32(shortest) == v:
            return shortest
    return v


def _read_float(buf: bytes, pos: int) -> tuple[Any, int]:
    return _float_json(_unpack_float(buf, pos)[0]), pos + 4


def _read_double(buf: bytes, pos: int) -> tuple[Any, int]:
    return _double_json(_unpack_double(buf, pos)[0]), pos + 8


def _read_float_as_double(buf: bytes, pos: int) -> tuple[Any, int]:
    return _double_json(_unpack_float(buf, pos)[0]), pos + 4


def _read_long_as_float(buf: bytes, pos: int) -> tuple[Any, int]:
    v, pos = _read_long(buf, pos)
    return _float_json(_float32(float(v))), pos


def _read_int_as_float(buf: bytes, pos: int) -> tuple[Any, int]:
    v, pos = _read_int(buf, pos)
    return _float_json(_float32(float(v))), pos


def _read_long_as_double(buf: bytes, pos: int) -> tuple[Any, int]:
    v, pos = _read_long(buf, pos)
    return float(v), pos


def _read_int_as_double(buf: bytes, pos: int) -> tuple[Any, int]:
    v, pos = _read_int(buf, pos)
    return float(v), pos


def _read_length(buf: bytes, pos: int) -> tuple[int, int]:
    n, pos = _read_long(buf, pos)
    if n < 0:
        raise _BadData(f"negative length {n}")
    if pos + n > len(buf):
        raise IndexError
    return n, pos


def _read_string(buf: bytes, pos: int) -> tuple[str, int]:
    b = buf[pos]
    if b < 0x80 and not b & 1:  # a length < 64 in one byte (the common case, inlined)
        end = pos + 1 + (b >> 1)
        if end > len(buf):
            raise IndexError
        return buf[pos + 1 : end].decode("utf-8", "replace"), end
    n, pos = _read_length(buf, pos)
    end = pos + n
    return buf[pos:end].decode("utf-8", "replace"), end


def _read_bytes(buf: bytes, pos: int) -> tuple[str, int]:
    b = buf[pos]
    if b < 0x80 and not b & 1:
        end = pos + 1 + (b >> 1)
        if end > len(buf):
            raise IndexError
        return buf[pos + 1 : end].decode("latin-1"), end
    n, pos = _read_length(buf, pos)
    end = pos + n
    return buf[pos:end].decode("latin-1"), end


def _skip_long(buf: bytes, pos: int) -> int:
    while buf[pos] >= 0x80:
        pos += 1
    return pos + 1


def _skip_bytes(buf: bytes, pos: int) -> int:
    n, pos = _read_length(buf, pos)
    return pos + n


def _failing_reader(reason: str) -> Reader:
    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        raise _BadData(reason)

    return read


def _branch_label(schema: Schema) -> str:
    return "union" if isinstance(schema, UnionSchema) else schema.branch_name


def _names_match(writer: NamedSchema, reader: NamedSchema) -> bool:
    """Named types match by full name, by unqualified name, or by a reader alias."""
    return (
        writer.fullname == reader.fullname or writer.name == reader.name or writer.fullname in reader.aliases
    )


_PROMOTIONS: dict[tuple[str, str], Reader] = {
    ("int", "long"): _read_int,
    ("int", "float"): _read_int_as_float,
    ("int", "double"): _read_int_as_double,
    ("long", "float"): _read_long_as_float,
    ("long", "double"): _read_long_as_double,
    ("float", "double"): _read_float_as_double,
}
_SAME_TYPE: dict[str, Reader] = {
    "null": _read_null,
    "boolean": _read_boolean,
    "int": _read_int,
    "long": _read_long,
    "float": _read_float,
    "double": _read_double,
    "string": _read_string,
    "bytes": _read_bytes,
}
#: union branch selection by promotion, Avro 1.7.6 ResolvingGrammarGenerator.bestBranch
_UNION_PROMOTIONS = {"int": ("long", "double"), "long": ("double",), "float": ("double",)}
_FIXED_SKIP = {"null": 0, "boolean": 1, "float": 4, "double": 8}


def _default_json(schema: Schema, value: Any) -> Any:
    """A field default (Avro's JSON for defaults: a union takes its first branch, unwrapped) as the
    JSON value the API shows for it. Raises ValueError when the default does not fit the schema."""
    t = schema.type
    if isinstance(schema, UnionSchema):
        if not schema.branches:
            raise ValueError("a default for an empty union")
        first = schema.branches[0]
        inner = _default_json(first, value)
        return None if first.type == "null" else {first.branch_name: inner}
    if t == "null":
        if value is not None:
            raise ValueError("expected null")
        return None
    if t == "boolean":
        if type(value) is not bool:
            raise ValueError("expected a boolean")
        return value
    if t in ("int", "long"):
        if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
            raise ValueError(f"expected {t}")
        v = int(value)  # Java reads a number's integer value
        lo, hi = (_INT_MIN, _INT_MAX) if t == "int" else (_LONG_MIN, _LONG_MAX)
        if not lo <= v <= hi:
            raise ValueError(f"{t} out of range")
        return v
    if t in ("float", "double"):
        if type(value) not in (int, float):
            raise ValueError(f"expected {t}")
        return _float_json(_float32(float(value))) if t == "float" else _double_json(float(value))
    if t in ("string", "bytes", "enum", "fixed"):
        if type(value) is not str:
            raise ValueError(f"expected {t}")
        if t == "bytes" or t == "fixed":
            value.encode("latin-1")
            if isinstance(schema, FixedSchema) and len(value) != schema.size:
                raise ValueError(f"expected {schema.size} bytes")
        if isinstance(schema, EnumSchema) and value not in schema.symbols:
            raise ValueError(f"{value!r} is not a symbol of {schema.fullname}")
        return value
    if isinstance(schema, ArraySchema):
        if type(value) is not list:
            raise ValueError("expected an array")
        return [_default_json(schema.items, v) for v in value]
    if isinstance(schema, MapSchema):
        if type(value) is not dict:
            raise ValueError("expected an object")
        return {k: _default_json(schema.values, v) for k, v in value.items()}
    if isinstance(schema, RecordSchema):
        if type(value) is not dict:
            raise ValueError("expected an object")
        out = {}
        for field in schema.fields:
            if field.name in value:
                out[field.name] = _default_json(field.schema, value[field.name])
            elif field.has_default:
                out[field.name] = _default_json(field.schema, field.default)
            else:
                raise ValueError(f"no value for field {field.name}")
        return out
    raise ValueError(f"unsupported schema {t}")


class _Resolver:
    """Builds readers for one (writer, reader) pair.

    `check_names` asks for the POST compatibility rule: records must match by name too (decoding,
    like Avro's resolving decoder, matches records by structure). Writer union branches that do not
    resolve are kept as `problems` and fail only when such a datum is read, as in Avro 1.7.6.
    """

    def __init__(self, check_names: bool) -> None:
        self.check_names = check_names
        self.problems: list[str] = []
        self.records: dict[tuple[int, int], Reader] = {}
        self.skippers: dict[int, Skipper] = {}

    # -- resolution ------------------------------------------------------------------------------
    def reader(self, w: Schema, r: Schema, top: bool) -> Reader:
        if isinstance(w, UnionSchema):
            return self._writer_union(w, r, top)
        if isinstance(r, UnionSchema):
            return self._reader_union(w, r, top)
        wt, rt = w.type, r.type
        if wt == rt:
            same = _SAME_TYPE.get(wt)
            if same is not None:
                return same
            if isinstance(w, RecordSchema) and isinstance(r, RecordSchema):
                if self.check_names and not _names_match(w, r):
                    raise _Mismatch(f"Found {w.fullname}, expecting {r.fullname}")
                return self._record(w, r)
            if isinstance(w, EnumSchema) and isinstance(r, EnumSchema) and _names_match(w, r):
                return self._enum(w, r)
            if isinstance(w, FixedSchema) and isinstance(r, FixedSchema) and _names_match(w, r):
                if w.size != r.size:
                    raise _Mismatch(f"Found {w.fullname} of size {w.size}, expecting size {r.size}")
                size = w.size

                def read_fixed(buf: bytes, pos: int) -> tuple[str, int]:
                    end = pos + size
                    if end > len(buf):
                        raise IndexError
                    return buf[pos:end].decode("latin-1"), end

                return read_fixed
            if isinstance(w, ArraySchema) and isinstance(r, ArraySchema):
                return self._array(self.reader(w.items, r.items, False), w.items)
            if isinstance(w, MapSchema) and isinstance(r, MapSchema):
                return self._map(self.reader(w.values, r.values, False))
        else:
            promoted = _PROMOTIONS.get((wt, rt))
            if promoted is not None:
                return promoted
        raise _Mismatch(f"Found {_branch_label(w)}, expecting {_branch_label(r)}")

    def _writer_union(self, w: UnionSchema, r: Schema, top: bool) -> Reader:
        branches: list[Reader] = []
        for branch in w.branches:
            try:
                branches.append(self.reader(branch, r, top))
            except _Mismatch as e:
                self.problems.append(str(e))
                branches.append(_failing_reader(str(e)))
        table = tuple(branches)
        count = len(table)

        def read_union(buf: bytes, pos: int) -> tuple[Any, int]:
            i, pos = _read_long(buf, pos)
            if 0 <= i < count:
                return table[i](buf, pos)
            raise _BadData(f"union index {i} out of range")

        return read_union

    def best_branch(self, r: UnionSchema, w: Schema) -> int:
        """The reader branch a non-union writer resolves to (Avro 1.7.6 bestBranch, plus the
        unqualified-name rule for named types); -1 when none."""
        wt = w.type
        named_match = -1
        for j, b in enumerate(r.branches):
            if b.type != wt:
                continue
            if isinstance(w, NamedSchema) and isinstance(b, NamedSchema):
                if w.fullname == b.fullname:
                    return j
                if named_match < 0 and _names_match(w, b):
                    named_match = j
            else:
                return j
        if named_match >= 0:
            return named_match
        targets = _UNION_PROMOTIONS.get(wt, ())
        for j, b in enumerate(r.branches):
            if b.type in targets:
                return j
        return -1

    def _reader_union(self, w: Schema, r: UnionSchema, top: bool) -> Reader:
        j = self.best_branch(r, w)
        if j < 0:
            raise _Mismatch(f"Found {_branch_label(w)}, expecting {canonical_text(r)}")
        branch = r.branches[j]
        inner = self.reader(w, branch, False)
        if top or branch.type == "null":
            return inner
        name = branch.branch_name

        def read_wrapped(buf: bytes, pos: int) -> tuple[Any, int]:
            v, pos = inner(buf, pos)
            return {name: v}, pos

        return read_wrapped

    def _enum(self, w: EnumSchema, r: EnumSchema) -> Reader:
        known = set(r.symbols)
        table = tuple(s if s in known else None for s in w.symbols)
        symbols = w.symbols
        count = len(table)

        def read_enum(buf: bytes, pos: int) -> tuple[str, int]:
            i, pos = _read_int(buf, pos)
            if 0 <= i < count:
                symbol = table[i]
                if symbol is None:
                    raise _BadData(f"No match for {symbols[i]}")
                return symbol, pos
            raise _BadData(f"enum index {i} out of range")

        return read_enum

    def _array(self, item: Reader, item_schema: Schema) -> Reader:
        zero_width = _min_size(item_schema) == 0

        def read_array(buf: bytes, pos: int) -> tuple[list[Any], int]:
            out: list[Any] = []
            append = out.append
            while True:
                n, pos = _read_long(buf, pos)
                if n == 0:
                    return out, pos
                if n < 0:
                    n = -n
                    _, pos = _read_long(buf, pos)
                if n > len(buf) - pos and (not zero_width or n > 10_000_000):
                    raise IndexError
                for _ in range(n):
                    v, pos = item(buf, pos)
                    append(v)

        return read_array

    def _map(self, value: Reader) -> Reader:
        def read_map(buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
            out: dict[str, Any] = {}
            while True:
                n, pos = _read_long(buf, pos)
                if n == 0:
                    return out, pos
                if n < 0:
                    n = -n
                    _, pos = _read_long(buf, pos)
                if n > len(buf) - pos:
                    raise IndexError
                for _ in range(n):
                    k, pos = _read_string(buf, pos)
                    out[k], pos = value(buf, pos)

        return read_map

    def _record(self, w: RecordSchema, r: RecordSchema) -> Reader:
        key = (id(w), id(r))
        known = self.records.get(key)
        if known is not None:
            return known
        slot: list[Reader] = []

        def read_forward(buf: bytes, pos: int) -> tuple[Any, int]:
            return slot[0](buf, pos)

        self.records[key] = read_forward
        try:
            actual = self._record_body(w, r)
        except _Mismatch as e:
            slot.append(_failing_reader(str(e)))
            raise
        slot.append(actual)
        return actual

    def _record_body(self, w: RecordSchema, r: RecordSchema) -> Reader:
        names = tuple(f.name for f in r.fields)
        slot_of: dict[str, int] = {}
        defaults: list[Any] = [None] * len(names)
        has_defaults = False
        for i, rf in enumerate(r.fields):
            wf = w.field_map.get(rf.name)
            if wf is None or wf.name in slot_of:
                wf = next((w.field_map[a] for a in rf.aliases if a in w.field_map), None)
            if wf is not None and wf.name not in slot_of:
                slot_of[wf.name] = i
                continue
            if not rf.has_default:
                raise _Mismatch(
                    f"Found {w.fullname}, expecting {r.fullname}, missing required field {rf.name}"
                )
            try:
                defaults[i] = _default_json(rf.schema, rf.default)
            except (ValueError, OverflowError) as e:
                raise _Mismatch(f"Invalid default for field {rf.name} of {r.fullname}: {e}") from None
            has_defaults = True
        plan: list[tuple[int, Callable[..., Any]]] = []
        for wf in w.fields:
            i = slot_of.get(wf.name, -1)
            if i < 0:
                plan.append((-1, self.skipper(wf.schema)))
            else:
                plan.append((i, self.reader(wf.schema, r.fields[i].schema, False)))
        in_order = [i for i, _ in plan if i >= 0]
        if not has_defaults and in_order == sorted(in_order):
            return _straight_record_reader([(names[i] if i >= 0 else None, fn) for i, fn in plan])
        template = defaults
        general = tuple(plan)

        def read_record_resolved(buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
            values = template.copy()
            for i, fn in general:
                if i < 0:
                    pos = fn(buf, pos)
                else:
                    values[i], pos = fn(buf, pos)
            return dict(zip(names, values, strict=True)), pos

        return read_record_resolved

    # -- skipping writer fields the reader does not have --------------------------------------------
    def skipper(self, w: Schema) -> Skipper:
        t = w.type
        fixed = _FIXED_SKIP.get(t)
        if fixed is not None:
            return lambda buf, pos: pos + fixed
        if t in ("int", "long", "enum"):
            return _skip_long
        if t in ("string", "bytes"):
            return _skip_bytes
        if isinstance(w, FixedSchema):
            size = w.size
            return lambda buf, pos: pos + size
        if isinstance(w, UnionSchema):
            branches = tuple(self.skipper(b) for b in w.branches)
            count = len(branches)

            def skip_union(buf: bytes, pos: int) -> int:
                i, pos = _read_long(buf, pos)
                if 0 <= i < count:
                    return branches[i](buf, pos)
                raise _BadData(f"union index {i} out of range")

            return skip_union
        if isinstance(w, (ArraySchema, MapSchema)):
            is_map = isinstance(w, MapSchema)
            inner = self.skipper(w.values if isinstance(w, MapSchema) else w.items)

            def skip_blocks(buf: bytes, pos: int) -> int:
                while True:
                    n, pos = _read_long(buf, pos)
                    if n == 0:
                        return pos
                    if n < 0:
                        size, pos = _read_long(buf, pos)
                        pos += size
                        continue
                    if n > len(buf) - pos + 10_000_000:
                        raise IndexError
                    for _ in range(n):
                        if is_map:
                            pos = _skip_bytes(buf, pos)
                        pos = inner(buf, pos)

            return skip_blocks
        assert isinstance(w, RecordSchema)
        known = self.skippers.get(id(w))
        if known is not None:
            return known
        slot: list[Skipper] = []
        self.skippers[id(w)] = lambda buf, pos: slot[0](buf, pos)
        fields = tuple(self.skipper(f.schema) for f in w.fields)

        def skip_record(buf: bytes, pos: int) -> int:
            for fn in fields:
                pos = fn(buf, pos)
            return pos

        slot.append(skip_record)
        return skip_record


def _straight_record_reader(steps: list[tuple[str | None, Callable[..., Any]]]) -> Reader:
    """The reader of a record whose writer fields map in order onto the reader's (None = a writer
    field to skip), as one straight-line function: no loop and no per-field dict store, which makes
    a small record ~2x cheaper to read than a loop over the steps. Only the field readers and the
    field names (as values of the function's globals, never as source text) go into it."""
    env: dict[str, Any] = {}
    lines = ["def read_record(buf, pos):"]
    items = []
    for k, (name, fn) in enumerate(steps):
        env[f"_f{k}"] = fn
        if name is None:
            lines.append(f"    pos = _f{k}(buf, pos)")
        else:
            env[f"_n{k}"] = name
            lines.append(f"    _v{k}, pos = _f{k}(buf, pos)")
            items.append(f"_n{k}: _v{k}")
    lines.append(f"    return {{{', '.join(items)}}}, pos")
    exec("\n".join(lines), env)  # source made of our own identifiers only
    return env["read_record"]  # type: ignore[no-any-return]


def _min_size(schema: Schema, seen: frozenset[int] = frozenset()) -> int:
    """Lower bound of a datum's size in bytes (0 for null and for records of zero-size fields)."""
    if schema.type == "null":
        return 0
    if isinstance(schema, FixedSchema):
        return schema.size
    if isinstance(schema, RecordSchema):
        if id(schema) in seen:
            return 0
        inner = seen | {id(schema)}
        return sum(_min_size(f.schema, inner) for f in schema.fields)
    return 1


def _decode_error(exc: Exception) -> CellDecodeError:
    if isinstance(exc, _BadData):
        return CellDecodeError(str(exc))
    if isinstance(exc, RecursionError):
        return CellDecodeError("datum nested too deeply")
    return CellDecodeError("truncated datum")  # IndexError, struct.error


_DECODE_FAILURES = (_BadData, IndexError, struct.error, RecursionError)


def _tagged_reader(reader: Reader, uid: int) -> Callable[[bytes, int], tuple[Any, int]]:
    """Wraps a reader into `decode(buf, pos) -> (value, uid)`: every failure becomes a
    CellDecodeError, the datum must fit in the bytes. The per-cell function of a scan, kept to one
    Python call around the datum's reader."""

    def decode_cell(buf: bytes, pos: int) -> tuple[Any, int]:
        try:
            value, end = reader(buf, pos)
        except _DECODE_FAILURES as e:
            raise _decode_error(e) from None
        if end > len(buf):
            raise CellDecodeError("truncated datum")
        return value, uid

    return decode_cell


# ---------------------------------------------------------------------------------------------------
# Writing: JSON value -> Avro binary of the writer schema
# ---------------------------------------------------------------------------------------------------

#: appends the datum of one value to `out`; raises CellEncodeError
Encoder = Callable[[Any, bytearray], None]

_JSON_TYPES = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _got(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _write_long(out: bytearray, n: int) -> None:
    n = ((n << 1) ^ (n >> 63)) & _MASK64
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise CellEncodeError(f"string is not valid Unicode (lone surrogate at index {e.start})") from None


def _latin1(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError as e:
        raise CellEncodeError(
            f"bytes are given as an ISO-8859-1 string; character U+{ord(value[e.start]):04X} at index "
            f"{e.start} is above U+00FF"
        ) from None


def _enc_null(v: Any, out: bytearray) -> None:
    if v is not None:
        raise CellEncodeError(f"expected null, got {_got(v)}")


def _enc_boolean(v: Any, out: bytearray) -> None:
    if type(v) is not bool:
        raise CellEncodeError(f"expected a boolean, got {_got(v)}")
    out.append(1 if v else 0)


def _integer_encoder(name: str, article: str, low: int, high: int) -> Encoder:
    def encode(v: Any, out: bytearray) -> None:
        if type(v) is not int:
            raise CellEncodeError(f"expected {article} {name}, got {_got(v)}")
        if v < low or v > high:
            raise CellEncodeError(f"{name} out of range: {v}")
        _write_long(out, v)

    return encode


_enc_int = _integer_encoder("int", "an", _INT_MIN, _INT_MAX)
_enc_long = _integer_encoder("long", "a", _LONG_MIN, _LONG_MAX)


def _number(v: Any, what: str) -> float:
    t = type(v)
    if t is float:
        return v
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise CellEncodeError(f"{what} out of range: {v}") from None
    if t is str and v in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[v]
    raise CellEncodeError(f"expected a {what}, got {_got(v)}")


def _enc_float(v: Any, out: bytearray) -> None:
    f = _number(v, "float")
    try:
        out += _pack_float(f)
    except OverflowError:
        raise CellEncodeError(f"float out of range: {v}") from None


def _enc_double(v: Any, out: bytearray) -> None:
    out += _pack_double(_number(v, "double"))


def _enc_string(v: Any, out: bytearray) -> None:
    if type(v) is not str:
        raise CellEncodeError(f"expected a string, got {_got(v)}")
    data = _utf8(v)
    _write_long(out, len(data))
    out += data


def _enc_bytes(v: Any, out: bytearray) -> None:
    if type(v) is not str:
        raise CellEncodeError(f"expected bytes as an ISO-8859-1 string, got {_got(v)}")
    data = _latin1(v)
    _write_long(out, len(data))
    out += data


_PRIMITIVE_ENCODERS: dict[str, Encoder] = {
    "null": _enc_null,
    "boolean": _enc_boolean,
    "int": _enc_int,
    "long": _enc_long,
    "float": _enc_float,
    "double": _enc_double,
    "string": _enc_string,
    "bytes": _enc_bytes,
}
_NUMERIC = frozenset(("int", "long", "float", "double"))


def _key_path(key: str) -> str:
    return "[" + orjson.dumps(key).decode() + "]"


class _EncoderBuilder:
    def __init__(self) -> None:
        self.records: dict[int, Encoder] = {}

    def encoder(self, s: Schema, top: bool) -> Encoder:
        primitive = _PRIMITIVE_ENCODERS.get(s.type)
        if primitive is not None:
            return primitive
        if isinstance(s, UnionSchema):
            return self._union(s, top)
        if isinstance(s, RecordSchema):
            return self._record(s)
        if isinstance(s, EnumSchema):
            index = {sym: i for i, sym in enumerate(s.symbols)}
            name = s.fullname

            def enc_enum(v: Any, out: bytearray) -> None:
                if type(v) is not str:
                    raise CellEncodeError(f"expected a symbol of enum {name}, got {_got(v)}")
                i = index.get(v)
                if i is None:
                    raise CellEncodeError(f"{orjson.dumps(v).decode()} is not a symbol of enum {name}")
                _write_long(out, i)

            return enc_enum
        if isinstance(s, FixedSchema):
            size = s.size

            def enc_fixed(v: Any, out: bytearray) -> None:
                if type(v) is not str:
                    raise CellEncodeError(f"expected {size} bytes as an ISO-8859-1 string, got {_got(v)}")
                data = _latin1(v)
                if len(data) != size:
                    raise CellEncodeError(f"expected {size} bytes, got {len(data)}")
                out += data

            return enc_fixed
        if isinstance(s, ArraySchema):
            item = self.encoder(s.items, False)

            def enc_array(v: Any, out: bytearray) -> None:
                if type(v) is not list:
                    raise CellEncodeError(f"expected an array, got {_got(v)}")
                if v:
                    _write_long(out, len(v))
                    for i, x in enumerate(v):
                        try:
                            item(x, out)
                        except CellEncodeError as e:
                            e.path = f"[{i}]{e.path}"
                            raise
                out.append(0)

            return enc_array
        if isinstance(s, MapSchema):
            value = self.encoder(s.values, False)

            def enc_map(v: Any, out: bytearray) -> None:
                if type(v) is not dict:
                    raise CellEncodeError(f"expected an object, got {_got(v)}")
                if v:
                    _write_long(out, len(v))
                    for k, x in v.items():
                        try:
                            data = _utf8(k)
                            _write_long(out, len(data))
                            out += data
                            value(x, out)
                        except CellEncodeError as e:
                            e.path = f"{_key_path(k)}{e.path}"
                            raise
                out.append(0)

            return enc_map
        raise AssertionError(f"unknown schema type {s.type}")

    def _record(self, s: RecordSchema) -> Encoder:
        known = self.records.get(id(s))
        if known is not None:
            return known
        slot: list[Encoder] = []
        self.records[id(s)] = lambda v, out: slot[0](v, out)
        steps: list[tuple[str, Encoder, Any]] = []
        missing = object()
        for field in s.fields:
            enc = self.encoder(field.schema, False)
            default: Any = missing
            if field.has_default:
                try:
                    default = _default_json(field.schema, field.default)
                except (ValueError, OverflowError):
                    default = missing  # an unusable default: the field must be given
            steps.append((field.name, enc, default))
        plan = tuple(steps)
        known_names = frozenset(f.name for f in s.fields)
        name = s.fullname

        def enc_record(v: Any, out: bytearray) -> None:
            if type(v) is not dict:
                raise CellEncodeError(f"expected an object for record {name}, got {_got(v)}")
            if len(v) > len(known_names) or not known_names.issuperset(v):
                unknown = sorted(k for k in v if k not in known_names)
                if unknown:
                    raise CellEncodeError(f"unknown field(s) of record {name}: {', '.join(unknown)}")
            for fname, enc, default in plan:
                x = v.get(fname, missing)
                if x is missing:
                    if default is missing:
                        raise CellEncodeError(f"missing field {fname} of record {name}", f".{fname}")
                    x = default
                try:
                    enc(x, out)
                except CellEncodeError as e:
                    e.path = f".{fname}{e.path}"
                    raise

        slot.append(enc_record)
        return enc_record

    def _union(self, s: UnionSchema, top: bool) -> Encoder:
        branches = tuple((b, self.encoder(b, False)) for b in s.branches)
        by_name = {b.branch_name: (i, enc) for i, (b, enc) in enumerate(branches)}
        null_index = next((i for i, (b, _) in enumerate(branches) if b.type == "null"), None)
        names = ", ".join(b.branch_name for b, _ in branches)

        def enc_wrapped(v: Any, out: bytearray) -> bool:
            """The Avro JSON union forms: null, or {"<branch name>": value}; False if neither."""
            if v is None and null_index is not None:
                _write_long(out, null_index)
                return True
            if type(v) is dict and len(v) == 1:
                ((key, x),) = v.items()
                found = by_name.get(key)
                if found is not None:
                    i, enc = found
                    _write_long(out, i)
                    try:
                        enc(x, out)
                    except CellEncodeError as e:
                        e.path = f".{key}{e.path}"
                        raise
                    return True
            return False

        if not top:

            def enc_union(v: Any, out: bytearray) -> None:
                if not enc_wrapped(v, out):
                    raise CellEncodeError(
                        f'expected a union value: null or {{"<branch>": value}} with a branch among {names}, '
                        f"got {_got(v)}"
                    )

            return enc_union

        def enc_top_union(v: Any, out: bytearray) -> None:
            if enc_wrapped(v, out):
                return
            # A bare value is accepted when it matches exactly one branch (numbers first by kind).
            is_int = type(v) is int
            for lenient in (False, True):
                matches: list[tuple[int, Schema, bytes]] = []
                for i, (b, enc) in enumerate(branches):
                    if not lenient and is_int and b.type in ("float", "double"):
                        continue
                    trial = bytearray()
                    try:
                        enc(v, trial)
                    except CellEncodeError:
                        continue
                    matches.append((i, b, bytes(trial)))
                if len(matches) > 1 and not all(b.type in _NUMERIC for _, b, _ in matches):
                    found = ", ".join(b.branch_name for _, b, _ in matches)
                    raise CellEncodeError(
                        f'ambiguous value for union: it fits {found}; give it as {{"<branch>": value}}'
                    )
                if matches:
                    i, _, data = matches[0]
                    _write_long(out, i)
                    out += data
                    return
                if not is_int:
                    break
            raise CellEncodeError(f"{_got(v)} fits no branch of the union ({names})")

        return enc_top_union


def _value_encoder(schema: Schema) -> Callable[[Any], bytes]:
    enc = _EncoderBuilder().encoder(schema, True)
    is_string = schema.type == "string"

    def encode(value: Any) -> bytes:
        out = bytearray()
        try:
            enc(value, out)
        except CellEncodeError as first:
            # KijiREST leniency: JSON text inside a JSON string, where the schema is not a string.
            if is_string or type(value) is not str:
                raise
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise first from None
            out = bytearray()
            try:
                enc(parsed, out)
            except CellEncodeError:
                raise first from None
        except RecursionError:
            raise CellEncodeError("value nested too deeply") from None
        return bytes(out)

    return encode


# ---------------------------------------------------------------------------------------------------
# The codec cache
# ---------------------------------------------------------------------------------------------------


class CodecCache:
    """Parsed schemas, readers and encoders, built once per canonical text (pair).

    Safe to share between threads: a race only builds the same codec twice.
    """

    def __init__(self) -> None:
        self._schemas: dict[str, Schema] = {}
        self._readers: dict[
            tuple[str, str | None], tuple[Callable[[bytes, int], Any] | None, str | None]
        ] = {}
        self._problems: dict[tuple[str, str], str | None] = {}
        self._encoders: dict[str, Callable[[Any], bytes]] = {}

    def schema(self, text: str) -> Schema:
        """The schema of a canonical text (parsed once)."""
        schema = self._schemas.get(text)
        if schema is None:
            schema = self._schemas[text] = parse_schema_text(text)
        return schema

    def reader(self, writer: Schema, reader: Schema | None) -> Callable[[bytes, int], Any]:
        """`decode(buf, pos) -> JSON value` for datums written with `writer`, read as `reader` (None
        = the writer itself). Raises CellDecodeError when the writer does not resolve at all."""
        tagged = _tagged_reader(self._raw_reader(writer, reader), 0)
        return lambda buf, pos: tagged(buf, pos)[0]

    def cell_reader(self, writer: Schema, reader: Schema | None, uid: int) -> Callable[[bytes, int], Any]:
        """`decode(buf, pos) -> (JSON value, uid)`, otherwise as `reader`."""
        return _tagged_reader(self._raw_reader(writer, reader), uid)

    def _raw_reader(self, writer: Schema, reader: Schema | None) -> Reader:
        key = (canonical_text(writer), None if reader is None else canonical_text(reader))
        entry = self._readers.get(key)
        if entry is None:
            try:
                fn = _Resolver(check_names=False).reader(writer, writer if reader is None else reader, True)
                entry = (fn, None)
            except _Mismatch as e:
                entry = (None, f"the writer schema does not resolve to the reader schema: {e}")
            self._readers[key] = entry
        if entry[0] is None:
            raise CellDecodeError(entry[1] or "unresolvable")
        return entry[0]

    def resolution_problem(self, writer: Schema, reader: Schema) -> str | None:
        key = (canonical_text(writer), canonical_text(reader))
        if key in self._problems:
            return self._problems[key]
        resolver = _Resolver(check_names=True)
        try:
            resolver.reader(writer, reader, True)
            problem = resolver.problems[0] if resolver.problems else None
        except _Mismatch as e:
            problem = str(e)
        self._problems[key] = problem
        return problem

    def encoder(self, writer: Schema) -> Callable[[Any], bytes]:
        """`encode(json_value) -> datum bytes` for `writer`; raises CellEncodeError."""
        text = canonical_text(writer)
        enc = self._encoders.get(text)
        if enc is None:
            enc = self._encoders[text] = _value_encoder(writer)
        return enc


#: the process-wide cache
CODECS = CodecCache()


def decode_datum(data: bytes, writer: Schema, reader: Schema | None = None, pos: int = 0) -> Any:
    """The JSON value of the datum at `pos` (bytes after it are ignored); raises CellDecodeError."""
    return CODECS.reader(writer, reader)(data, pos)


def encode_datum(value: Any, writer: Schema) -> bytes:
    """The Avro binary datum of a posted JSON value; raises CellEncodeError."""
    return CODECS.encoder(writer)(value)


def resolution_problem(writer: Schema, reader: Schema) -> str | None:
    """Why data written with `writer` cannot be read with `reader` (§3.5), or None when it can.

    Every branch of a writer union must resolve; named types match by full or unqualified name (or
    a reader alias); a writer enum symbol missing from the reader only fails when read (Avro 1.7.6).
    """
    return CODECS.resolution_problem(writer, reader)


def cell_bytes(
    storage: str, datum: bytes, writer_hash: bytes | None = None, writer_uid: int | None = None
) -> bytes:
    """The HBase cell value for a datum: HASH → hash ‖ datum, UID → varint(uid) ‖ datum, FINAL → datum."""
    if storage == "HASH":
        if writer_hash is None or len(writer_hash) != 16:
            raise ValueError("HASH storage needs the 16-byte writer schema hash")
        return writer_hash + datum
    if storage == "UID":
        if writer_uid is None:
            raise ValueError("UID storage needs the writer schema uid")
        return encode_varint(writer_uid) + datum
    if storage == "FINAL":
        return datum
    raise ValueError(f"unknown storage {storage}")


def encode_counter(value: Any) -> bytes:
    """A counter set (8-byte big-endian signed long); only a JSON integer is accepted."""
    if type(value) is not int:
        raise CellEncodeError(f'a counter takes an integer or {{"incr": n}}, got {_got(value)}')
    if value < _LONG_MIN or value > _LONG_MAX:
        raise CellEncodeError(f"counter value out of range: {value}")
    return value.to_bytes(8, "big", signed=True)


def decode_counter(cell: bytes) -> int:
    if len(cell) != 8:
        raise CellDecodeError(f"counter cell has {len(cell)} bytes, expected 8")
    return int.from_bytes(cell, "big", signed=True)


def encode_raw_bytes(value: Any) -> bytes:
    """RAW_BYTES / PROTOBUF cells are posted as ISO-8859-1 strings."""
    if type(value) is not str:
        raise CellEncodeError(f"expected bytes as an ISO-8859-1 string, got {_got(value)}")
    return _latin1(value)


# ---------------------------------------------------------------------------------------------------
# One column
# ---------------------------------------------------------------------------------------------------

_AVRO_KINDS = frozenset(("INLINE", "CLASS", "AVRO"))


class ColumnCodec:
    """Reads and writes the cells of one column (one layout CellSpec) of one instance.

    `decode` is the per-cell hot path: it reads the prefix and calls the reader cached for that
    writer (one per writer uid/hash). A writer never seen before is looked up in the schema table,
    which may block once (the gateway decodes off the event loop or accepts that).
    """

    def __init__(self, spec: CellSpec, schemas: SchemaLookup, codecs: CodecCache = CODECS) -> None:
        self.kind = spec.type
        # COUNTER cells are FINAL whatever the layout says; RAW_BYTES/PROTOBUF have no storage
        self.storage = (
            spec.storage if spec.type in _AVRO_KINDS else "FINAL" if spec.type == "COUNTER" else "NONE"
        )
        self.policy = spec.avro_validation_policy
        self._schemas = schemas
        self._codecs = codecs
        #: the reader schema (§3.6); None for non-Avro kinds and AVRO columns without a default reader
        self.reader: Schema | None = None
        if self.kind in _AVRO_KINDS:
            if spec.schema is not None:
                self.reader = codecs.schema(spec.schema)
            elif spec.default_reader is not None and spec.default_reader.uid is not None:
                self.reader = self._schema_of_uid(spec.default_reader.uid)
            elif spec.default_reader is not None and spec.default_reader.json is not None:
                self.reader = codecs.schema(canonical_text(parse_schema_text(spec.default_reader.json)))
            elif self.kind != "AVRO":
                raise ValueError(f"{self.kind} column without a schema")
        self._final_uid: int | None = None
        if self.kind in _AVRO_KINDS and self.storage == "FINAL":
            if self.reader is None:
                raise ValueError("FINAL column without a schema")
            entry = schemas.by_hash(schema_hash(self.reader))
            if entry is None:
                raise ValueError(
                    f"FINAL column schema is not in the schema table: {canonical_text(self.reader)}"
                )
            self._final_uid = entry.uid
            self._final_decode = codecs.cell_reader(self.reader, self.reader, entry.uid)
        self._strict_writers: frozenset[str] | None = None
        if self.kind == "AVRO" and self.policy == "STRICT":
            texts: set[str] = set()
            for ref in spec.writers or ():
                if ref.uid is not None:
                    schema = self._schema_of_uid(ref.uid)
                elif ref.json is not None:
                    schema = parse_schema_text(ref.json)
                else:
                    continue
                texts.add(canonical_text(schema))
                if isinstance(schema, UnionSchema):
                    texts.update(canonical_text(b) for b in schema.branches)
            self._strict_writers = frozenset(texts)
        self._by_uid: dict[int, Callable[[bytes, int], tuple[Any, int]]] = {}
        self._by_hash: dict[bytes, Callable[[bytes, int], tuple[Any, int]]] = {}
        #: `decode` for scans: the same answers; for UID storage a closure that goes straight to
        #: the reader of a known one-byte uid (no attribute lookups, no storage dispatch)
        self.decode_cell: Callable[[bytes], tuple[Any, int]] = (
            self._uid_decoder() if self.storage == "UID" else self.decode
        )

    def _schema_of_uid(self, uid: int) -> Schema:
        entry = self._schemas.by_uid(uid)
        if entry is None:
            raise ValueError(f"unknown schema uid {uid}")
        return self._codecs.schema(entry.text)

    # -- reading --------------------------------------------------------------------------------
    def _uid_decoder(self) -> Callable[[bytes], tuple[Any, int]]:
        known = self._by_uid.get
        general = self.decode

        def decode_uid(cell: bytes) -> tuple[Any, int]:
            if cell:
                b = cell[0]
                if b < 0x80:
                    fn = known(b)
                    if fn is not None:
                        return fn(cell, 1)
            return general(cell)  # a longer uid, a writer not seen yet, an empty cell

        return decode_uid

    def decode(self, cell: bytes) -> tuple[Any, int]:
        """(JSON value, writer uid) of a cell; raises CellDecodeError."""
        storage = self.storage
        if storage == "UID":
            if not cell:
                raise CellDecodeError("empty cell")
            b = cell[0]
            if b < 0x80:
                uid, pos = b, 1
            else:
                try:
                    uid, pos = decode_varint(cell)
                except ValueError as e:
                    raise CellDecodeError(f"bad schema uid prefix: {e}") from None
            fn = self._by_uid.get(uid)
            if fn is None:
                fn = self._writer_decoder(self._schemas.by_uid(uid), f"unknown schema uid {uid}")
                self._by_uid[uid] = fn
            return fn(cell, pos)
        if storage == "HASH":
            key = cell[:16]
            fn = self._by_hash.get(key)
            if fn is None:
                if len(cell) < 16:
                    raise CellDecodeError(f"cell of {len(cell)} bytes is shorter than a schema hash")
                fn = self._writer_decoder(self._schemas.by_hash(key), f"unknown schema hash {key.hex()}")
                self._by_hash[key] = fn
            return fn(cell, 16)
        if self.kind == "COUNTER":
            return decode_counter(cell), UID_LONG
        if self.kind in _AVRO_KINDS:  # FINAL
            return self._final_decode(cell, 0)  # type: ignore[no-any-return]
        return cell.decode("latin-1"), UID_BYTES

    def _writer_decoder(
        self, entry: SchemaEntry | None, unknown: str
    ) -> Callable[[bytes, int], tuple[Any, int]]:
        if entry is None:
            raise CellDecodeError(unknown)  # not cached: another process may register it later
        uid = entry.uid
        try:
            writer = self._codecs.schema(entry.text)
            return self._codecs.cell_reader(writer, self.reader, uid)
        except CellDecodeError as e:
            reason = e.reason

            def fail(cell: bytes, pos: int) -> tuple[Any, int]:
                raise CellDecodeError(reason)

            return fail
        except ValueError as e:  # a stored schema text that does not parse
            reason = f"schema {uid} does not parse: {e}"

            def fail_parse(cell: bytes, pos: int) -> tuple[Any, int]:
                raise CellDecodeError(reason)

            return fail_parse

    # -- writing --------------------------------------------------------------------------------
    @property
    def default_writer(self) -> Schema | None:
        """The writer schema when a POST gives none: the column's own (reader) schema."""
        return self.reader if self.kind in _AVRO_KINDS else None

    @property
    def final_uid(self) -> int | None:
        return self._final_uid

    def writer_problem(self, writer: Schema) -> str | None:
        """Why a POST may not write this column with `writer` (§3.5), or None."""
        if self.kind not in _AVRO_KINDS:
            return None
        if self.storage == "FINAL":
            assert self.reader is not None
            if canonical_text(writer) != canonical_text(self.reader):
                return f"a FINAL column is written with its own schema {canonical_text(self.reader)} only"
            return None
        if self._strict_writers is not None and canonical_text(writer) not in self._strict_writers:
            return "the writer schema is not among the column's writers (avro_validation_policy STRICT)"
        if self.reader is not None:
            problem = self._codecs.resolution_problem(writer, self.reader)
            if problem is not None:
                return f"the column's reader schema cannot read data written with this schema: {problem}"
        return None

    def encode_datum(self, value: Any, writer: Schema) -> bytes:
        """The datum bytes (no prefix) of a posted value; raises CellEncodeError."""
        return self._codecs.encoder(writer)(value)

    def read_back_problem(self, datum: bytes, writer: Schema) -> str | None:
        """Why a datum written with `writer` cannot be read with the column's reader schema, or None.

        Schema resolution alone admits writers whose data may still fail to read (a writer enum
        symbol the reader lacks, a union branch with no match): reading the datum back tells."""
        if self.reader is None or canonical_text(writer) == canonical_text(self.reader):
            return None
        try:
            self._codecs.reader(writer, self.reader)(datum, 0)
        except CellDecodeError as exc:
            return f"cannot be read with the column's reader schema: {exc}"
        return None

    def cell_bytes(self, datum: bytes, writer_hash: bytes | None, writer_uid: int | None) -> bytes:
        return cell_bytes(self.storage, datum, writer_hash, writer_uid)
