"""Entity IDs: the three text forms, the four key formats, wildcards and scan bounds (encodings.md §1).

The bytes are KijiSchema's, so rows written here and by Kiji share keys. Everything that depends only on
the layout's `RowKeySpec` is worked out once in a `KeyCodec` (cached per spec): decoding a row key into
its `entityId` runs for every row of every scan and must stay cheap.

Errors are `EntityIdError(ValueError)` whose text is the encodings.md message, so the HTTP layer answers
`400 "eid: <message>"`; `EntityIdError.path` adds an index inside `eids` (`"[2]"`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from kijirest.layouts.model import RowKeySpec
from kijirest.primitives import successor

__all__ = [
    "WILDCARD",
    "EntityIdError",
    "KeyCodec",
    "RowKey",
    "Wildcard",
    "codec_for",
    "decode_row_key",
    "encode_components",
    "entity_id_from_json",
    "entity_id_json",
    "from_string_binary",
    "is_empty_range",
    "java_url_encode",
    "parse_bound",
    "parse_entity_id",
    "parse_entity_id_list",
    "parse_hex",
    "target_eid_text",
    "to_string_binary",
]

HBASE_PREFIX = "hbase="
HBASE_HEX_PREFIX = "hbase_hex="

# Messages of encodings.md §1.4 / §1.6 (KijiSchema's texts, kept for clients that match on them).
TOO_MANY = "Too many components in kiji Row Key"
TOO_FEW = "Too few components in kiji Row key"
NULL_FOLLOWED = "Non null component follows null component"
STRING_NUL = "String component cannot contain \\u0000"
INVALID_KEY = "Invalid hbase row key"
SUPPRESSED_EXTRA = "Extra bytes in key after hash when materialization is suppressed"
MALFORMED = "Malformed hbase Row Key"
EXTRA_BYTES = "Extra bytes in hbase row key cannot be mapped to any component"
TOO_FEW_DECODED = "Too few components decoded from hbase row key"
EMPTY_KEY = "An HBase row key cannot be empty"


class EntityIdError(ValueError):
    """A malformed entity ID (always a 400). `path` locates it inside a list (`"[3]"`), else ""."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


# ---------------------------------------------------------------------------------------------------
# hbase= text (HBase Bytes.toStringBinary / toBytesBinary), hbase_hex=
# ---------------------------------------------------------------------------------------------------

# Byte → its toStringBinary text: printable ASCII except backslash as itself, the rest \xHH uppercase.
_BINARY_TEXT = tuple(
    chr(b) if 0x20 <= b <= 0x7E and b != 0x5C else f"\\x{b:02X}" for b in range(256)
)
_NEEDS_ESCAPE = re.compile(r"[^\x20-\x5b\x5d-\x7e]")


def to_string_binary(key: bytes) -> str:
    """HBase 1.x/2.x `Bytes.toStringBinary`: printable ASCII as is, every other byte and `\\` as `\\xHH`."""
    text = key.decode("latin-1")
    if _NEEDS_ESCAPE.search(text) is None:  # the common case: nothing to escape
        return text
    return "".join([_BINARY_TEXT[b] for b in key])


_UPPER_HEX = frozenset("0123456789ABCDEF")


def from_string_binary(text: str) -> bytes:
    """HBase `Bytes.toBytesBinary`, with HBase's quirks kept (§1.8) and its silent truncations made errors.

    `\\x` + two uppercase hex digits is one byte; `\\x` + anything else drops the backslash (so `\\x0b`
    is the three bytes `x0b`); a backslash not followed by `x` is itself.
    """
    if "\\" not in text:
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise _wide_char(text, exc.start) from None
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] == "x":
            if i + 3 >= n:
                raise EntityIdError(f"Incomplete \\x escape at index {i} of hbase row key text")
            hi, lo = text[i + 2], text[i + 3]
            if hi in _UPPER_HEX and lo in _UPPER_HEX:
                out.append(int(hi + lo, 16))
                i += 4
            else:
                i += 1  # HBase drops the backslash and reads on from the 'x'
            continue
        code = ord(ch)
        if code > 0xFF:
            raise _wide_char(text, i)
        out.append(code)
        i += 1
    return bytes(out)


def _wide_char(text: str, index: int) -> EntityIdError:
    return EntityIdError(
        f"Character U+{ord(text[index]):04X} at index {index} of hbase row key text is not a byte"
        " (only U+0000..U+00FF; write other bytes as \\xHH)"
    )


_HEX_TEXT = re.compile(r"(?:[0-9A-Fa-f]{2})+")


def parse_hex(text: str) -> bytes:
    """`hbase_hex=` text: hex digits of either case, even length, at least one byte."""
    if _HEX_TEXT.fullmatch(text) is None:
        raise EntityIdError("Invalid hbase_hex row key: expected an even number (at least 2) of hex digits")
    return bytes.fromhex(text)


# ---------------------------------------------------------------------------------------------------
# Key formats
# ---------------------------------------------------------------------------------------------------

_STRING, _INTEGER, _LONG = 0, 1, 2
_KINDS = {"STRING": _STRING, "INTEGER": _INTEGER, "LONG": _LONG}
_WIDTH = {_INTEGER: 4, _LONG: 8}
# Adding 2^(bits-1) to a two's complement value is the same as flipping its top bit (§1.4).
_OFFSET = {_INTEGER: 1 << 31, _LONG: 1 << 63}


class _WildcardComponent:
    """The marker that stands for a `[]` component once parsed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "[]"


WILDCARD = _WildcardComponent()


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def _utf8(value: str, index: int) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise EntityIdError(
            f"String component at index {index} is not valid Unicode (lone surrogate)"
        ) from None


class KeyCodec:
    """Encoder / decoder of one `RowKeySpec`, with everything per-layout computed once.

    Get one with `codec_for(row_key)` (cached); the module-level functions are thin wrappers over it.
    """

    __slots__ = (
        "_decoded_output",
        "encoding",
        "hash_size",
        "kinds",
        "n",
        "names",
        "nullable_start",
        "range_scan_start",
        "spec",
        "suppressed",
    )

    def __init__(self, row_key: RowKeySpec) -> None:
        self.spec = row_key
        self.encoding = row_key.encoding
        self.hash_size = row_key.hash_size
        self.suppressed = row_key.encoding == "FORMATTED" and row_key.suppress_key_materialization
        self.names = tuple(c.name for c in row_key.components)
        self.kinds = tuple(_KINDS[c.type] for c in row_key.components)
        self.n = len(self.kinds)
        self.range_scan_start = row_key.range_scan_start_index
        self.nullable_start = row_key.nullable_start_index
        # entityId of a row is decoded components only for HASH_PREFIX and unsuppressed FORMATTED.
        self._decoded_output = row_key.encoding == "HASH_PREFIX" or (
            row_key.encoding == "FORMATTED" and not self.suppressed
        )

    @property
    def formatted(self) -> bool:
        return self.encoding == "FORMATTED"

    @property
    def wildcards_allowed(self) -> bool:
        """§1.9: only FORMATTED keys that are materialized can be matched component by component."""
        return self.encoding == "FORMATTED" and not self.suppressed

    # -- input checking --------------------------------------------------------------------------

    def check_components(self, values: list, *, wildcard: bool = False, bound: bool = False) -> list:
        """Apply the §1.4 input checks in order; return the values with `[]` replaced by a marker.

        The result has exactly `n` entries for FORMATTED (missing ones: None, or wildcards when the
        input had a wildcard) and one UTF-8-encodable string for the single-string formats.
        `bound` relaxes the nullable_start rule to "at least one component" (§1.10).
        """
        if not isinstance(values, list):
            raise EntityIdError("An entity ID must be a JSON array of components")
        if self.encoding != "FORMATTED":
            return self._check_single(values)
        n = self.n
        if len(values) > n:
            raise EntityIdError(TOO_MANY)
        has_wildcard = (
            wildcard and self.wildcards_allowed and any(isinstance(v, list) and not v for v in values)
        )
        nullable_start = 1 if bound else self.nullable_start
        if not has_wildcard and len(values) < nullable_start:
            raise EntityIdError(TOO_FEW)
        out: list[Any] = []
        seen_null = False
        names, kinds = self.names, self.kinds
        for i, value in enumerate(values):
            if value is None:
                if i < nullable_start:
                    raise EntityIdError(
                        "Unexpected null component in kiji row key. "
                        f"Expected at least {nullable_start} non-null components"
                    )
                seen_null = True
                out.append(None)
                continue
            if isinstance(value, list) and not value:
                if not has_wildcard:
                    raise EntityIdError(self._wildcard_refusal(i, wildcard))
                out.append(WILDCARD)
                continue
            if seen_null:
                raise EntityIdError(NULL_FOLLOWED)
            kind = kinds[i]
            if kind == _STRING:
                ok = isinstance(value, str)
            else:
                ok = type(value) is int and -_OFFSET[kind] <= value < _OFFSET[kind]
            if not ok:
                raise EntityIdError(f"Invalid type for component {names[i]} at index {i}")
            out.append(value)
        for value in out:
            if isinstance(value, str) and "\x00" in value:
                raise EntityIdError(STRING_NUL)
        out.extend([WILDCARD if has_wildcard else None] * (n - len(out)))
        return out

    def _wildcard_refusal(self, index: int, wildcard: bool) -> str:
        if not wildcard:
            return f"Wildcard component [] at index {index} is only allowed in the eid parameter"
        return (
            f"Wildcard component [] at index {index} is not allowed: this table's row key "
            "materialization is suppressed"
        )

    def _check_single(self, values: list) -> list:
        end = len(values)
        while end and values[end - 1] is None:  # explicit trailing nulls = left out (§1.7)
            end -= 1
        if end != 1 or not isinstance(values[0], str):
            raise EntityIdError(f"A {self.encoding} row key takes exactly one string component")
        return [values[0]]

    # -- encoding --------------------------------------------------------------------------------

    def encode(self, values: list, *, bound: bool = False) -> bytes:
        """The HBase row key of a JSON component list (§1.1–1.4); `bound` for start/end_eid (§1.10)."""
        checked = self.check_components(values, bound=bound)
        return self.encode_checked(checked)

    def encode_checked(self, checked: list) -> bytes:
        """Encode values already passed through `check_components` (no wildcards)."""
        encoding = self.encoding
        if encoding != "FORMATTED":
            raw = _utf8(checked[0], 0)
            if encoding == "RAW":
                key = raw
            elif encoding == "HASH":
                key = _md5(raw)
            else:  # HASH_PREFIX
                key = _md5(raw)[: self.hash_size] + raw
            if not key:
                raise EntityIdError(EMPTY_KEY)
            return key
        hashed, parts = self._component_bytes(checked)
        h = _md5(b"".join(hashed))[: self.hash_size]
        if self.suppressed:
            return h
        return h + b"".join(parts)

    def _component_bytes(self, checked: list) -> tuple[list[bytes], list[bytes]]:
        """(bytes fed to the hash, bytes of the key) of the leading given components."""
        hashed: list[bytes] = []
        parts: list[bytes] = []
        range_scan_start = self.range_scan_start
        for i, value in enumerate(checked):
            if value is None or value is WILDCARD:
                continue
            kind = self.kinds[i]
            if kind == _STRING:
                raw = _utf8(value, i)
                if i < range_scan_start:
                    hashed.append(raw)
                parts.append(raw + b"\x00")
            else:
                raw = (value + _OFFSET[kind]).to_bytes(_WIDTH[kind], "big")
                if i < range_scan_start:
                    hashed.append(raw)
                parts.append(raw)
        return hashed, parts

    # -- decoding --------------------------------------------------------------------------------

    def decode(self, key: bytes) -> list | None:
        """Decoded components (§1.6), or None when the API shows the key as `hbase=` (RAW, HASH,
        suppressed FORMATTED, which are still validated). Raises `EntityIdError` when undecodable."""
        encoding = self.encoding
        if encoding == "FORMATTED":
            return self._decode_formatted(key)
        if encoding == "HASH_PREFIX":
            if len(key) < self.hash_size or not key:
                raise EntityIdError(INVALID_KEY)
            return [key[self.hash_size :].decode("utf-8", "replace")]
        return None

    def _decode_formatted(self, key: bytes) -> list | None:
        size = len(key)
        if not size:
            raise EntityIdError(INVALID_KEY)
        pos = self.hash_size
        if self.suppressed:
            if size > pos:
                raise EntityIdError(SUPPRESSED_EXTRA)
            return None
        out: list[Any] = []
        for kind in self.kinds:
            if pos >= size:
                break
            if kind == _STRING:
                end = key.find(b"\x00", pos)
                if end < 0:
                    out.append(key[pos:].decode("utf-8", "replace"))
                    pos = size
                else:
                    out.append(key[pos:end].decode("utf-8", "replace"))
                    pos = end + 1
            else:
                end = pos + _WIDTH[kind]
                if end > size:
                    raise EntityIdError(MALFORMED)
                out.append(int.from_bytes(key[pos:end], "big") - _OFFSET[kind])
                pos = end
        if pos < size:
            raise EntityIdError(EXTRA_BYTES)
        if len(out) < self.nullable_start:
            raise EntityIdError(TOO_FEW_DECODED)
        missing = self.n - len(out)
        if missing:
            out.extend([None] * missing)
        return out

    def split_raw(self, key: bytes) -> list | None:
        """Like `decode` for FORMATTED, but strings stay raw bytes (exact comparison for wildcards)."""
        size = len(key)
        if not size:
            return None
        pos = self.hash_size
        out: list[Any] = []
        for kind in self.kinds:
            if pos >= size:
                break
            if kind == _STRING:
                end = key.find(b"\x00", pos)
                if end < 0:
                    out.append(key[pos:])
                    pos = size
                else:
                    out.append(key[pos:end])
                    pos = end + 1
            else:
                end = pos + _WIDTH[kind]
                if end > size:
                    return None
                out.append(int.from_bytes(key[pos:end], "big") - _OFFSET[kind])
                pos = end
        if pos < size or len(out) < self.nullable_start:
            return None
        out.extend([None] * (self.n - len(out)))
        return out

    def entity_id_json(self, key: bytes) -> str | list:
        """The row's `entityId` (§1.7); an undecodable key falls back to `"hbase=<text>"`, never raises."""
        if self._decoded_output:
            try:
                decoded = self.decode(key)
            except EntityIdError:
                decoded = None
            if decoded is not None:
                return decoded
        return HBASE_PREFIX + to_string_binary(key)


@lru_cache(maxsize=1024)
def codec_for(row_key: RowKeySpec) -> KeyCodec:
    """The cached `KeyCodec` of a row-key spec (specs are frozen, hence hashable)."""
    return KeyCodec(row_key)


def encode_components(values: list, row_key: RowKeySpec) -> bytes:
    """The HBase row key of a JSON component list; raises `EntityIdError` with the §1.4 message."""
    return codec_for(row_key).encode(values)


def decode_row_key(key: bytes, row_key: RowKeySpec) -> list | None:
    """Components of a row key (§1.6), None where the API shows `hbase=`; raises if undecodable."""
    return codec_for(row_key).decode(key)


def entity_id_json(key: bytes, row_key: RowKeySpec) -> str | list:
    """The `entityId` of a row as the API shows it (§1.7); never raises."""
    return codec_for(row_key).entity_id_json(key)


# ---------------------------------------------------------------------------------------------------
# Parsed entity IDs
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowKey:
    """One point entity ID: the HBase key and what the client wrote (text, list, or `hbase=` string)."""

    key: bytes
    source: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, eq=False)
class Wildcard:
    """A wildcard `eid` (§1.9), planned for push-down.

    Scan `[start, stop)` (`stop` None = table end) with the row filter `regex` (Java/HBase syntax, ends
    in `\\z`), then keep the rows for which `matches(key)` holds: the regex alone can be fooled by
    contrived binary keys, and re-checking makes both stores return the same rows.
    """

    start: bytes
    stop: bytes | None
    regex: str
    hash: bytes | None  # H when every hashed component is given, else None
    components: tuple  # per position: the given value, None (null) or WILDCARD
    codec: KeyCodec = field(repr=False)
    source: Any = None

    def matches(self, key: bytes) -> bool:
        """The matching rule of §1.9: the key decodes, the hash agrees when known, and every given
        position holds exactly the given value (strings compared as UTF-8 bytes)."""
        codec = self.codec
        raw = codec.split_raw(key)  # None exactly where decode() would fail
        if raw is None:
            return False
        if self.hash is not None and key[: codec.hash_size] != self.hash:
            return False
        for want, got in zip(self.components, raw, strict=True):
            if want is WILDCARD:
                continue
            if isinstance(want, str):
                if got != want.encode("utf-8"):
                    return False
            elif want != got:
                return False
        return True


def _regex_string_bytes(raw: bytes) -> str:
    return "".join(
        chr(b) if (0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A) else f"\\x{b:02x}"
        for b in raw
    )


def _regex_hex(raw: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in raw)


_WILDCARD_PIECE = {_STRING: r"([^\x00]*\x00)?", _INTEGER: r"(.{4})?", _LONG: r"(.{8})?"}


def _plan_wildcard(codec: KeyCodec, checked: list, source: Any) -> Wildcard:
    """Push-down of §1.9: hash, prefix, row regex."""
    hash_known = all(v is not WILDCARD for v in checked[: codec.range_scan_start])
    h: bytes | None = None
    pieces = ["(?s)^"]
    if hash_known:
        hashed, _ = codec._component_bytes(checked[: codec.range_scan_start])
        h = _md5(b"".join(hashed))[: codec.hash_size]
        pieces.append(_regex_hex(h))
    else:
        pieces.append(f".{{{codec.hash_size}}}")
    for i, value in enumerate(checked):
        kind = codec.kinds[i]
        if value is WILDCARD:
            pieces.append(_WILDCARD_PIECE[kind])
        elif value is None:
            continue
        elif kind == _STRING:
            pieces.append(_regex_string_bytes(_utf8(value, i)) + r"\x00")
        else:
            pieces.append(_regex_hex((value + _OFFSET[kind]).to_bytes(_WIDTH[kind], "big")))
    body = "".join(pieces)
    if h is not None:
        first = next(i for i, v in enumerate(checked) if v is WILDCARD)
        _, parts = codec._component_bytes(checked[:first])
        start = h + b"".join(parts)
        stop = successor(start)
    else:
        start, stop = b"", None
    return Wildcard(
        start=start,
        stop=stop,
        regex=body + r"\z",
        hash=h,
        components=tuple(checked),
        codec=codec,
        source=source,
    )


def _loads_array_text(text: str) -> Any:
    """JSON from a URL parameter: strict JSON first (fast), then KijiSchema's lenient dialect."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    from kijirest.lenient_json import LenientJSONError, loads

    try:
        return loads(text)
    except LenientJSONError as exc:
        raise EntityIdError(f"Invalid JSON entity ID: {exc}") from None


_FORMS_HINT = "a JSON array of components, hbase=<text> or hbase_hex=<hex>"


def _raw_key(text: str) -> bytes | None:
    """The key of an `hbase=` / `hbase_hex=` text, None when the text is neither."""
    if text.startswith(HBASE_PREFIX):
        key = from_string_binary(text[len(HBASE_PREFIX) :])
    elif text.startswith(HBASE_HEX_PREFIX):
        key = parse_hex(text[len(HBASE_HEX_PREFIX) :])
    else:
        return None
    if not key:
        raise EntityIdError(EMPTY_KEY)
    return key


def parse_entity_id(text: str, row_key: RowKeySpec, *, wildcard: bool = False) -> RowKey | Wildcard:
    """A URL parameter value (already URL-decoded): `hbase=...`, `hbase_hex=...` or a JSON array.

    With `wildcard` (the `eid` parameter) an array holding `[]` becomes a `Wildcard`; GET and DELETE
    accept any raw key, decodable or not.
    """
    key = _raw_key(text)
    if key is not None:
        return RowKey(key, text)
    value = _loads_array_text(text)
    if not isinstance(value, list):
        raise EntityIdError(f"An entity ID must be {_FORMS_HINT}")
    codec = codec_for(row_key)
    checked = codec.check_components(value, wildcard=wildcard)
    if wildcard and any(v is WILDCARD for v in checked):
        return _plan_wildcard(codec, checked, value)
    return RowKey(codec.encode_checked(checked), value)


def entity_id_from_json(value: Any, row_key: RowKeySpec, *, for_write: bool) -> RowKey:
    """An entity ID already parsed from a JSON body (POST `entityId`): a list, or an `hbase=` /
    `hbase_hex=` string. `for_write` refuses raw keys that a FORMATTED table could not decode (§1.6)."""
    codec = codec_for(row_key)
    if isinstance(value, str):
        key = _raw_key(value)
        if key is None:
            raise EntityIdError(f"An entity ID must be {_FORMS_HINT}")
        if for_write and codec.formatted:
            codec.decode(key)
        return RowKey(key, value)
    if not isinstance(value, list):
        raise EntityIdError(f"An entity ID must be {_FORMS_HINT}")
    return RowKey(codec.encode(value), value)


def parse_entity_id_list(text: str, row_key: RowKeySpec) -> list[RowKey]:
    """The `eids` parameter: a JSON array whose items are component arrays or `hbase=` strings.

    An error carries `path` = `"[i]"`, the item's index.
    """
    items = _loads_array_text(text)
    if not isinstance(items, list):
        raise EntityIdError("eids must be a JSON array of entity IDs")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(entity_id_from_json(item, row_key, for_write=False))
        except EntityIdError as exc:
            raise EntityIdError(str(exc), f"[{i}]") from None
    return out


# ---------------------------------------------------------------------------------------------------
# Ranges
# ---------------------------------------------------------------------------------------------------


def parse_bound(text: str, row_key: RowKeySpec) -> bytes:
    """A `start_eid` / `end_eid` value as a scan row (§1.10): raw keys as they are, FORMATTED arrays
    may be partial (at least one component; trailing ones are nulls)."""
    key = _raw_key(text)
    if key is not None:
        return key
    value = _loads_array_text(text)
    if not isinstance(value, list):
        raise EntityIdError(f"An entity ID must be {_FORMS_HINT}")
    return codec_for(row_key).encode(value, bound=True)


def is_empty_range(start: bytes | None, stop: bytes | None) -> bool:
    """True when `[start, stop)` holds no key, so no store call is needed (§1.10)."""
    return start is not None and stop is not None and stop <= start


# ---------------------------------------------------------------------------------------------------
# POST targets
# ---------------------------------------------------------------------------------------------------


def target_eid_text(value: Any) -> str:
    """The entity ID as POST's `targets` shows it: the given string, or the array as compact JSON
    (non-ASCII kept)."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode("utf-8")


_URL_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-*_")
_URL_ENCODED = tuple(chr(b) if b in _URL_SAFE else "+" if b == 0x20 else f"%{b:02X}" for b in range(256))


def java_url_encode(text: str) -> str:
    """Java `URLEncoder.encode(text, "UTF-8")`: form encoding, space → `+`, `%XX` uppercase."""
    return "".join([_URL_ENCODED[b] for b in text.encode("utf-8")])
