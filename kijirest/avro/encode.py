"""JSON value → Avro binary datum of the writer schema, with errors that say where and why.

A POST gives cell values as JSON, in Avro's JSON form (unions as `{"<branch>": value}`, bytes and
fixed as ISO-8859-1 strings, NaN and infinities as strings), or leniently: a top-level union also
takes a bare value that fits exactly one branch, and a non-string schema also takes its JSON as
text inside a JSON string (as KijiREST did). A value that does not fit raises `DatumEncodeError`
with the path of the bad part, so the client learns which field of which cell is wrong.

Like reading (`resolve`), an encoder is compiled once per writer schema into a tree of small
closures that append to one bytearray; the bytes are the standard Avro binary encoding (the tests
check them against fastavro).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson

from kijirest.avro.binary import pack_double, pack_float
from kijirest.avro.resolve import default_json
from kijirest.avro.schema import (
    ArraySchema,
    EnumSchema,
    FixedSchema,
    MapSchema,
    RecordSchema,
    Schema,
    UnionSchema,
)
from kijirest.primitives import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, UINT64_MASK

__all__ = ["DatumEncodeError", "Encoder", "json_type_name", "latin1_bytes", "value_encoder"]


class DatumEncodeError(ValueError):
    """A posted value that does not fit its schema (`cells.CellEncodeError` is this class).

    `path` locates the bad part inside the value (`""`, `".address.city"`, `"[3]"`, `'["key"]'`); the
    gateway prefixes the cell's own location: `[0].cells.info.name[1].value<path>: <reason>`.
    """

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


#: appends the datum of one value to `out`; raises DatumEncodeError
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


def json_type_name(value: Any) -> str:
    """What a JSON value is, for error messages ("an integer", "an object", ...)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _write_long(out: bytearray, n: int) -> None:
    n = ((n << 1) ^ (n >> 63)) & UINT64_MASK
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DatumEncodeError(f"string is not valid Unicode (lone surrogate at index {e.start})") from None


def latin1_bytes(value: str) -> bytes:
    """The bytes a JSON string stands for (one character per byte); DatumEncodeError above U+00FF."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError as e:
        raise DatumEncodeError(
            f"bytes are given as an ISO-8859-1 string; character U+{ord(value[e.start]):04X} at index "
            f"{e.start} is above U+00FF"
        ) from None


def _enc_null(v: Any, out: bytearray) -> None:
    if v is not None:
        raise DatumEncodeError(f"expected null, got {json_type_name(v)}")


def _enc_boolean(v: Any, out: bytearray) -> None:
    if type(v) is not bool:
        raise DatumEncodeError(f"expected a boolean, got {json_type_name(v)}")
    out.append(1 if v else 0)


def _integer_encoder(name: str, article: str, low: int, high: int) -> Encoder:
    def encode(v: Any, out: bytearray) -> None:
        if type(v) is not int:
            raise DatumEncodeError(f"expected {article} {name}, got {json_type_name(v)}")
        if v < low or v > high:
            raise DatumEncodeError(f"{name} out of range: {v}")
        _write_long(out, v)

    return encode


_enc_int = _integer_encoder("int", "an", INT32_MIN, INT32_MAX)
_enc_long = _integer_encoder("long", "a", INT64_MIN, INT64_MAX)


def _number(v: Any, what: str) -> float:
    t = type(v)
    if t is float:
        return v
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise DatumEncodeError(f"{what} out of range: {v}") from None
    if t is str and v in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[v]
    raise DatumEncodeError(f"expected a {what}, got {json_type_name(v)}")


def _enc_float(v: Any, out: bytearray) -> None:
    f = _number(v, "float")
    try:
        out += pack_float(f)
    except OverflowError:
        raise DatumEncodeError(f"float out of range: {v}") from None


def _enc_double(v: Any, out: bytearray) -> None:
    out += pack_double(_number(v, "double"))


def _enc_string(v: Any, out: bytearray) -> None:
    if type(v) is not str:
        raise DatumEncodeError(f"expected a string, got {json_type_name(v)}")
    data = _utf8(v)
    _write_long(out, len(data))
    out += data


def _enc_bytes(v: Any, out: bytearray) -> None:
    if type(v) is not str:
        raise DatumEncodeError(f"expected bytes as an ISO-8859-1 string, got {json_type_name(v)}")
    data = latin1_bytes(v)
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
                    raise DatumEncodeError(f"expected a symbol of enum {name}, got {json_type_name(v)}")
                i = index.get(v)
                if i is None:
                    raise DatumEncodeError(f"{orjson.dumps(v).decode()} is not a symbol of enum {name}")
                _write_long(out, i)

            return enc_enum
        if isinstance(s, FixedSchema):
            size = s.size

            def enc_fixed(v: Any, out: bytearray) -> None:
                if type(v) is not str:
                    raise DatumEncodeError(
                        f"expected {size} bytes as an ISO-8859-1 string, got {json_type_name(v)}"
                    )
                data = latin1_bytes(v)
                if len(data) != size:
                    raise DatumEncodeError(f"expected {size} bytes, got {len(data)}")
                out += data

            return enc_fixed
        if isinstance(s, ArraySchema):
            item = self.encoder(s.items, False)

            def enc_array(v: Any, out: bytearray) -> None:
                if type(v) is not list:
                    raise DatumEncodeError(f"expected an array, got {json_type_name(v)}")
                if v:
                    _write_long(out, len(v))
                    for i, x in enumerate(v):
                        try:
                            item(x, out)
                        except DatumEncodeError as e:
                            e.path = f"[{i}]{e.path}"
                            raise
                out.append(0)

            return enc_array
        if isinstance(s, MapSchema):
            value = self.encoder(s.values, False)

            def enc_map(v: Any, out: bytearray) -> None:
                if type(v) is not dict:
                    raise DatumEncodeError(f"expected an object, got {json_type_name(v)}")
                if v:
                    _write_long(out, len(v))
                    for k, x in v.items():
                        try:
                            data = _utf8(k)
                            _write_long(out, len(data))
                            out += data
                            value(x, out)
                        except DatumEncodeError as e:
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
                    default = default_json(field.schema, field.default)
                except (ValueError, OverflowError):
                    default = missing  # an unusable default: the field must be given
            steps.append((field.name, enc, default))
        plan = tuple(steps)
        known_names = frozenset(f.name for f in s.fields)
        name = s.fullname

        def enc_record(v: Any, out: bytearray) -> None:
            if type(v) is not dict:
                raise DatumEncodeError(f"expected an object for record {name}, got {json_type_name(v)}")
            if len(v) > len(known_names) or not known_names.issuperset(v):
                unknown = sorted(k for k in v if k not in known_names)
                if unknown:
                    raise DatumEncodeError(f"unknown field(s) of record {name}: {', '.join(unknown)}")
            for fname, enc, default in plan:
                x = v.get(fname, missing)
                if x is missing:
                    if default is missing:
                        raise DatumEncodeError(f"missing field {fname} of record {name}", f".{fname}")
                    x = default
                try:
                    enc(x, out)
                except DatumEncodeError as e:
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
                    except DatumEncodeError as e:
                        e.path = f".{key}{e.path}"
                        raise
                    return True
            return False

        if not top:

            def enc_union(v: Any, out: bytearray) -> None:
                if not enc_wrapped(v, out):
                    raise DatumEncodeError(
                        f'expected a union value: null or {{"<branch>": value}} with a branch among {names}, '
                        f"got {json_type_name(v)}"
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
                    except DatumEncodeError:
                        continue
                    matches.append((i, b, bytes(trial)))
                if len(matches) > 1 and not all(b.type in _NUMERIC for _, b, _ in matches):
                    found = ", ".join(b.branch_name for _, b, _ in matches)
                    raise DatumEncodeError(
                        f'ambiguous value for union: it fits {found}; give it as {{"<branch>": value}}'
                    )
                if matches:
                    i, _, data = matches[0]
                    _write_long(out, i)
                    out += data
                    return
                if not is_int:
                    break
            raise DatumEncodeError(f"{json_type_name(v)} fits no branch of the union ({names})")

        return enc_top_union


def value_encoder(schema: Schema) -> Callable[[Any], bytes]:
    """`encode(json_value) -> datum bytes` for a writer schema; raises DatumEncodeError."""
    enc = _EncoderBuilder().encoder(schema, True)
    is_string = schema.type == "string"

    def encode(value: Any) -> bytes:
        out = bytearray()
        try:
            enc(value, out)
        except DatumEncodeError as first:
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
            except DatumEncodeError:
                raise first from None
        except RecursionError:
            raise DatumEncodeError("value nested too deeply") from None
        return bytes(out)

    return encode
