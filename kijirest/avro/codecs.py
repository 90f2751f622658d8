"""The Avro codec entry points: readers and encoders built once per schema (pair) and cached.

Building a reader (a `resolve.Resolver` pass over both schemas) or an encoder costs far more than
using it, and a gateway meets the same few schemas over and over, so `CodecCache` keeps each, keyed
by canonical text: the per-cell work is only byte reading and dict building. `CODECS` is the one
process-wide cache; `decode_datum`, `encode_datum` and `resolution_problem` use it.

The codec reads and writes Avro binary itself rather than through fastavro: after fastavro's
decoding the union branch of a number is lost (`{"int": 5}` vs `{"long": 5}`, float vs double), its
resolution picks the first matching union branch where Avro 1.7.6 prefers the exact type, and its
record name checks differ. The bytes are the standard Avro binary encoding; the tests check them
against fastavro.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kijirest.avro.binary import DatumDecodeError, Reader
from kijirest.avro.encode import value_encoder
from kijirest.avro.resolve import Resolver, SchemaMismatch, tagged_reader
from kijirest.avro.schema import Schema, canonical_text, parse_schema_text

__all__ = ["CODECS", "CodecCache", "decode_datum", "encode_datum", "resolution_problem"]


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
        = the writer itself). Raises DatumDecodeError when the writer does not resolve at all."""
        tagged = tagged_reader(self._raw_reader(writer, reader), 0)
        return lambda buf, pos: tagged(buf, pos)[0]

    def cell_reader(self, writer: Schema, reader: Schema | None, uid: int) -> Callable[[bytes, int], Any]:
        """`decode(buf, pos) -> (JSON value, uid)`, otherwise as `reader`."""
        return tagged_reader(self._raw_reader(writer, reader), uid)

    def _raw_reader(self, writer: Schema, reader: Schema | None) -> Reader:
        key = (canonical_text(writer), None if reader is None else canonical_text(reader))
        entry = self._readers.get(key)
        if entry is None:
            try:
                fn = Resolver(check_names=False).reader(writer, writer if reader is None else reader, True)
                entry = (fn, None)
            except SchemaMismatch as e:
                entry = (None, f"the writer schema does not resolve to the reader schema: {e}")
            self._readers[key] = entry
        if entry[0] is None:
            raise DatumDecodeError(entry[1] or "unresolvable")
        return entry[0]

    def resolution_problem(self, writer: Schema, reader: Schema) -> str | None:
        key = (canonical_text(writer), canonical_text(reader))
        if key in self._problems:
            return self._problems[key]
        resolver = Resolver(check_names=True)
        try:
            resolver.reader(writer, reader, True)
            problem = resolver.problems[0] if resolver.problems else None
        except SchemaMismatch as e:
            problem = str(e)
        self._problems[key] = problem
        return problem

    def encoder(self, writer: Schema) -> Callable[[Any], bytes]:
        """`encode(json_value) -> datum bytes` for `writer`; raises DatumEncodeError."""
        text = canonical_text(writer)
        enc = self._encoders.get(text)
        if enc is None:
            enc = self._encoders[text] = value_encoder(writer)
        return enc


#: the process-wide cache
CODECS = CodecCache()


def decode_datum(data: bytes, writer: Schema, reader: Schema | None = None, pos: int = 0) -> Any:
    """The JSON value of the datum at `pos` (bytes after it are ignored); raises DatumDecodeError."""
    return CODECS.reader(writer, reader)(data, pos)


def encode_datum(value: Any, writer: Schema) -> bytes:
    """The Avro binary datum of a posted JSON value; raises DatumEncodeError."""
    return CODECS.encoder(writer)(value)


def resolution_problem(writer: Schema, reader: Schema) -> str | None:
    """Why data written with `writer` cannot be read with `reader` (§3.5), or None when it can.

    Every branch of a writer union must resolve; named types match by full or unqualified name (or
    a reader alias); a writer enum symbol missing from the reader only fails when read (Avro 1.7.6).
    """
    return CODECS.resolution_problem(writer, reader)
