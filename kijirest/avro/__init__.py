"""Avro for kijirest, as Avro-Java 1.7.6 (the version Kiji uses) reads, resolves and prints it.

- `schema`: schemas parsed with 1.7.6's rules and printed as its canonical text (the schema table's).
- `jackson`: JSON text as Jackson 1.x writes it, Java's double texts (what the canonical text needs).
- `binary`: reading and skipping Avro binary primitives; how bad datum bytes fail.
- `resolve`: writer → reader schema resolution compiled into readers that give JSON values.
- `encode`: JSON values → Avro binary datums, with located errors.
- `codecs`: the cache of readers and encoders per schema (pair), and the datum entry points.

Imports go one way: `kijirest.primitives` ← this package ← `kijirest.cells` / `kijirest.schema_table`;
nothing here imports Kiji cells, the schema table, the store or HTTP.
"""

from kijirest.avro.schema import (
    PRIMITIVE_TYPES,
    AvroSchemaError,
    Names,
    Schema,
    UndefinedNameError,
    canonical_text,
    parse_schema,
    parse_schema_text,
    schema_hash,
)

__all__ = [
    "PRIMITIVE_TYPES",
    "AvroSchemaError",
    "Names",
    "Schema",
    "UndefinedNameError",
    "canonical_text",
    "parse_schema",
    "parse_schema_text",
    "schema_hash",
]
