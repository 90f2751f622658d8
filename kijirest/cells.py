"""Kiji cell bytes ⇄ JSON values (encodings.md §3, api.md "Value rendering" and "POST rows").

A Kiji cell is a schema prefix (16-byte hash, varint uid, or nothing) followed by one Avro datum, or,
for COUNTER, RAW_BYTES and PROTOBUF columns, no Avro at all. This module is the Kiji layer over the
Avro codec (`kijirest.avro`): it reads and writes the prefix, finds the writer schema of a cell in
the schema table, holds the column's reader schema and its writer rules (FINAL, STRICT, §3.5), and
handles the non-Avro kinds. The datum itself is read (resolving the writer schema to the column's
reader schema as Avro-Java 1.7.6 does) and written (from a posted JSON value, with precise errors)
by the cached codecs of `kijirest.avro.codecs`.

`ColumnCodec.decode_cell` is the per-cell function of a scan: for a known writer it is one dict
lookup on the prefix and one call to the cached reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kijirest.avro.binary import DatumDecodeError
from kijirest.avro.codecs import CODECS, CodecCache
from kijirest.avro.encode import DatumEncodeError, json_type_name, latin1_bytes
from kijirest.avro.schema import Schema, UnionSchema, canonical_text, parse_schema_text, schema_hash
from kijirest.primitives import INT64_MAX, INT64_MIN, decode_varint, encode_varint

if TYPE_CHECKING:
    from kijirest.layouts.model import CellSpec
    from kijirest.schema_table import SchemaEntry, SchemaLookup

__all__ = [
    "UID_BYTES",
    "UID_LONG",
    "UID_STRING",
    "CellDecodeError",
    "CellEncodeError",
    "ColumnCodec",
    "cell_bytes",
    "decode_counter",
    "encode_counter",
    "encode_raw_bytes",
]

#: uids of the primitives the schema table installs first (encodings.md §4)
UID_STRING = 0
UID_BYTES = 1
UID_LONG = 3

#: A cell that cannot be decoded; the API shows it as "Error loading cell: <reason>". The same class
#: as the Avro layer's datum error: a cached datum reader is the whole per-cell decode of a known
#: writer, so its errors reach the gateway as they are, with no re-wrapping per cell.
CellDecodeError = DatumDecodeError
#: A posted value that does not fit its column (`path` locates the bad part inside the value). The
#: same class as the Avro layer's datum error, which `ColumnCodec.encode_datum` lets through.
CellEncodeError = DatumEncodeError


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
        raise CellEncodeError(f'a counter takes an integer or {{"incr": n}}, got {json_type_name(value)}')
    if value < INT64_MIN or value > INT64_MAX:
        raise CellEncodeError(f"counter value out of range: {value}")
    return value.to_bytes(8, "big", signed=True)


def decode_counter(cell: bytes) -> int:
    if len(cell) != 8:
        raise CellDecodeError(f"counter cell has {len(cell)} bytes, expected 8")
    return int.from_bytes(cell, "big", signed=True)


def encode_raw_bytes(value: Any) -> bytes:
    """RAW_BYTES / PROTOBUF cells are posted as ISO-8859-1 strings."""
    if type(value) is not str:
        raise CellEncodeError(f"expected bytes as an ISO-8859-1 string, got {json_type_name(value)}")
    return latin1_bytes(value)


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
        if self.kind in _AVRO_KINDS and self.storage == "FINAL":
            if self.reader is None:
                raise ValueError("FINAL column without a schema")
            entry = schemas.by_hash(schema_hash(self.reader))
            if entry is None:
                raise ValueError(
                    f"FINAL column schema is not in the schema table: {canonical_text(self.reader)}"
                )
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

    def forget_writers(self) -> None:
        """Drop the decoders cached per writer uid / hash (the schema table was re-created: a uid
        may now name another schema). Cleared in place: `decode_cell` holds the dict."""
        self._by_uid.clear()
        self._by_hash.clear()

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
