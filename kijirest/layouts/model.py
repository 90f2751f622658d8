"""The loaded form of a Kiji table layout: what the rest of kijirest reads.

`kijirest.layouts.loader` turns a layout file into these objects (defaults filled in, ids assigned,
names validated); nothing here parses JSON. Everything is immutable after loading, so request handlers
share one `TableLayout` without locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FOREVER_TTL = 2147483647

#: base-64 digits of ColumnId text, least significant first (encodings.md §2.2)
COLUMN_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@dataclass(frozen=True, slots=True)
class KeyComponent:
    name: str
    type: str  # "STRING" | "INTEGER" | "LONG"


@dataclass(frozen=True, slots=True)
class RowKeySpec:
    """`keys_format` normalized to what entity IDs need (encodings.md §1).

    encoding: "RAW" | "HASH" | "HASH_PREFIX" | "FORMATTED". `hash_size` is 16 for HASH, the legacy
    hash_size for HASH_PREFIX, the salt's size for FORMATTED, 0 for RAW.
    """

    encoding: str
    hash_size: int = 0
    suppress_key_materialization: bool = False
    components: tuple[KeyComponent, ...] = ()
    range_scan_start_index: int = 1
    nullable_start_index: int = 1


@dataclass(frozen=True, slots=True)
class AvroSchemaRef:
    """A layout `AvroSchema` descriptor: exactly one of uid / json is set."""

    uid: int | None = None
    json: str | None = None


@dataclass(frozen=True, slots=True)
class CellSpec:
    """A layout `CellSchema`.

    `schema` is the canonical text (encodings.md §3.4) of the column's own schema where the layout
    alone fixes it: INLINE `value`, CLASS (the named type from the instance's `schemas/`), AVRO
    `default_reader` given as `json`. It is None for COUNTER, RAW_BYTES, PROTOBUF, and for AVRO
    columns whose default reader is a uid or absent (resolved against the schema table at start-up).
    """

    type: str  # INLINE | CLASS | AVRO | COUNTER | RAW_BYTES | PROTOBUF
    storage: str = "HASH"  # HASH | UID | FINAL
    value: str | None = None
    avro_validation_policy: str = "SCHEMA_1_0"
    default_reader: AvroSchemaRef | None = None
    writers: tuple[AvroSchemaRef, ...] | None = None
    schema: str | None = None


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    id: int
    aliases: tuple[str, ...]
    cell: CellSpec


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    id: int
    aliases: tuple[str, ...]
    locality_group: str  # name of its LocalityGroup
    map_cell: CellSpec | None  # set ⇔ map-type family
    columns: tuple[Column, ...] = ()  # group-type only, in layout order

    @property
    def is_map(self) -> bool:
        return self.map_cell is not None


@dataclass(frozen=True, slots=True)
class LocalityGroup:
    name: str
    id: int
    aliases: tuple[str, ...]
    in_memory: bool
    max_versions: int
    ttl_seconds: int
    compression_type: str  # NONE | GZ | LZO | SNAPPY
    bloom_type: str | None  # None | NONE | ROW | ROWCOL
    block_size: int | None
    families: tuple[Family, ...] = ()


@dataclass(frozen=True, slots=True)
class TableLayout:
    """One loaded table layout. `effective` is the Avro-JSON of the effective layout (layouts.md §8)."""

    name: str
    row_key: RowKeySpec
    locality_groups: tuple[LocalityGroup, ...]
    column_name_translator: str  # SHORT | IDENTITY | HBASE_NATIVE
    version: str
    max_filesize: int | None = None
    memstore_flushsize: int | None = None
    effective: dict[str, Any] = field(default_factory=dict, compare=False)
