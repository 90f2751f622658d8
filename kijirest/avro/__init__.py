"""Avro for kijirest: Avro-Java 1.7.6 schema reading and canonical text (`schema`)."""

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
