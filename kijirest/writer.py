"""Writing Kiji rows (POST): the whole body is validated first, then written row by row.

`plan_writes` checks every row and cell (entity ID, column, writer schema, value, timestamp) and
encodes every value without touching the store, except to look up known schemas. One bad cell
raises `BadRequest` naming its place (`[0].cells.info.name[1].value: ...`) and nothing is written.
`apply_writes` then registers the new writer schemas, and writes each row as one atomic store
mutation (cells with different timestamps included); counter increments follow their row's put.

Both are blocking (schema-table and store calls): the view runs them in the thread pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kijirest.avro.codecs import CODECS
from kijirest.avro.schema import AvroSchemaError, Schema, canonical_text, parse_schema, schema_hash
from kijirest.catalog import TableContext
from kijirest.cells import CellEncodeError, ColumnCodec, encode_counter, encode_raw_bytes
from kijirest.entity_id import EntityIdError, entity_id_from_json, java_url_encode, target_eid_text
from kijirest.errors import BadRequest
from kijirest.layouts.columns import UnknownColumnError
from kijirest.layouts.model import Family
from kijirest.reader import MAX_CACHED_COLUMNS
from kijirest.store.base import LATEST, Store

ROW_MEMBERS = frozenset(("entityId", "cells"))
CELL_MEMBERS = frozenset(("value", "timestamp", "writer_schema"))


@dataclass(slots=True)
class CellWrite:
    family: bytes
    qualifier: bytes
    timestamp: int | None  # None = the row's server time
    data: bytes  # final cell bytes, or the Avro datum still waiting for its writer-schema prefix
    codec: ColumnCodec | None = None  # set ⇔ `data` needs the prefix of `writer`
    writer: Schema | None = None


@dataclass(slots=True)
class RowWrite:
    key: bytes
    target: str
    puts: list[CellWrite] = field(default_factory=list)
    increments: list[tuple[bytes, bytes, int]] = field(default_factory=list)


@dataclass(slots=True)
class WritePlan:
    rows: list[RowWrite]
    new_schemas: dict[str, Schema]  # canonical text → schema, registered before any row is written
    seen_writers: set[int] = field(default_factory=set)  # id() of writer schemas already looked up
    checked_writers: set[tuple[int, int]] = field(default_factory=set)  # (id(codec), id(writer)) allowed


def plan_writes(table: TableContext, document: Any) -> WritePlan:
    """Validate and encode a whole POST body (one row object or an array of them)."""
    if isinstance(document, dict):
        items, prefix = [document], lambda i: ""
    elif isinstance(document, list):
        items, prefix = document, lambda i: f"[{i}]"
    else:
        raise BadRequest("body", "expected a row object or a JSON array of row objects")
    plan = WritePlan(rows=[], new_schemas={})
    for i, item in enumerate(items):
        plan.rows.append(_plan_row(table, item, prefix(i), plan))
    return plan


def _plan_row(table: TableContext, item: Any, where: str, plan: WritePlan) -> RowWrite:
    row_where = where or "body"
    if not isinstance(item, dict):
        raise BadRequest(row_where, f"expected a row object, got {_kind(item)}")
    unknown = sorted(set(item) - ROW_MEMBERS)
    if unknown:
        raise BadRequest(
            row_where, f"unknown member(s) {', '.join(map(repr, unknown))} (a row has entityId and cells)"
        )
    if "entityId" not in item:
        raise BadRequest(row_where, "missing member 'entityId'")
    eid_where = _join(where, "entityId")
    try:
        row_key = entity_id_from_json(item["entityId"], table.layout.keys, for_write=True)
    except EntityIdError as exc:
        raise BadRequest(f"{eid_where}{exc.path}", str(exc)) from None
    target = f"{table.uri}/rows?eid={java_url_encode(target_eid_text(row_key.source))}"
    row = RowWrite(key=row_key.key, target=target)
    cells = item.get("cells", {})
    cells_where = _join(where, "cells")
    columns = table.cache.get("write_columns")
    if columns is None:
        columns = table.cache["write_columns"] = {}
    if not isinstance(cells, dict):
        raise BadRequest(cells_where, f"expected an object of families, got {_kind(cells)}")
    for family_name, qualifiers in cells.items():
        family_where = f"{cells_where}.{family_name}"
        try:
            family = table.names.family(family_name)
        except UnknownColumnError as exc:
            raise BadRequest(family_where, str(exc)) from None
        if not isinstance(qualifiers, dict):
            raise BadRequest(family_where, f"expected an object of columns, got {_kind(qualifiers)}")
        for qualifier, versions in qualifiers.items():
            column_where = f"{family_where}.{qualifier}"
            try:
                hfamily, hqualifier, codec = columns[(family.name, qualifier)]
            except KeyError:
                try:
                    hfamily, hqualifier, codec = _column_target(table, columns, family, qualifier)
                except UnknownColumnError as exc:
                    raise BadRequest(column_where, str(exc)) from None
            if not isinstance(versions, list):
                raise BadRequest(column_where, f"expected an array of cells, got {_kind(versions)}")
            for j, cell in enumerate(versions):
                _plan_cell(table, codec, hfamily, hqualifier, cell, column_where, j, row, plan)
    return row


def _column_target(
    table: TableContext, columns: dict, family: Family, qualifier: str
) -> tuple[bytes, bytes, ColumnCodec]:
    """(HBase family, HBase qualifier, codec) of a posted column, cached per table (the lookups
    behind it hash a CellSpec and a few tuples: too much to repeat for every cell of every row)."""
    spec = table.names.cell_spec(family, qualifier)
    hfamily, hqualifier = table.names.hbase_column(family, qualifier)
    target = (hfamily, hqualifier, table.codec(spec))
    if len(columns) >= MAX_CACHED_COLUMNS:
        columns.clear()
    columns[(family.name, qualifier)] = target
    return target


def _plan_cell(
    table: TableContext,
    codec: ColumnCodec,
    hfamily: bytes,
    hqualifier: bytes,
    cell: Any,
    column_where: str,
    index: int,
    row: RowWrite,
    plan: WritePlan,
) -> None:
    """Check and encode one cell. Error locations are only formatted when there is an error: this
    runs once per posted cell."""

    def at(member: str = "") -> str:
        return f"{column_where}[{index}]{member}"

    if not isinstance(cell, dict):
        raise BadRequest(at(), f"expected a cell object, got {_kind(cell)}")
    if not CELL_MEMBERS.issuperset(cell):
        unknown = ", ".join(map(repr, sorted(set(cell) - CELL_MEMBERS)))
        raise BadRequest(at(), f"unknown member(s) {unknown} (a cell has value, timestamp, writer_schema)")
    if "value" not in cell:
        raise BadRequest(at(), "missing member 'value'")
    value = cell["value"]
    timestamp = cell.get("timestamp")
    if timestamp is not None and (type(timestamp) is not int or not 0 <= timestamp < LATEST):
        _timestamp(timestamp, at(".timestamp"))  # raises the precise error
    kind = codec.kind
    if kind == "COUNTER":
        if isinstance(value, dict):
            if set(value) != {"incr"} or type(value["incr"]) is not int:
                raise BadRequest(at(".value"), 'a counter increment is {"incr": <integer>}')
            if timestamp is not None:
                raise BadRequest(at(".timestamp"), "a counter increment takes no timestamp")
            row.increments.append((hfamily, hqualifier, value["incr"]))
            return
        row.puts.append(CellWrite(hfamily, hqualifier, timestamp, _encode(encode_counter, value, at)))
        return
    if kind == "RAW_BYTES" or kind == "PROTOBUF":
        row.puts.append(CellWrite(hfamily, hqualifier, timestamp, _encode(encode_raw_bytes, value, at)))
        return
    writer = _writer_schema(table, codec, cell.get("writer_schema"), at, plan)
    try:
        datum = codec.encode_datum(value, writer)
    except CellEncodeError as exc:
        raise BadRequest(f"{at('.value')}{exc.path}", str(exc.args[0])) from None
    if writer is not codec.reader:
        problem = codec.read_back_problem(datum, writer)
        if problem is not None:  # e.g. an enum symbol the reader schema lacks: the cell would not read
            raise BadRequest(at(".value"), problem)
    if codec.storage == "FINAL":
        row.puts.append(CellWrite(hfamily, hqualifier, timestamp, codec.cell_bytes(datum, None, None)))
        return
    if id(writer) not in plan.seen_writers:  # the same schema object recurs cell after cell
        plan.seen_writers.add(id(writer))
        text = canonical_text(writer)
        if text not in plan.new_schemas and table.schemas.lookup(writer) is None:
            plan.new_schemas[text] = writer
    row.puts.append(CellWrite(hfamily, hqualifier, timestamp, datum, codec, writer))


def _writer_schema(
    table: TableContext, codec: ColumnCodec, given: Any, at: Callable[[str], str], plan: WritePlan
) -> Schema:
    if given is None:
        writer = codec.default_writer
        if writer is None:
            raise BadRequest(
                at(".writer_schema"), "required: this AVRO column has no default reader schema to write with"
            )
    elif type(given) is int:
        entry = table.schemas.by_uid(given)
        if entry is None:
            raise BadRequest(
                at(".writer_schema"),
                f"unknown schema uid {given} in the schema table of instance '{table.instance}'",
            )
        writer = CODECS.schema(entry.text)
    else:
        if isinstance(given, str) and given[:1] in ("{", "[", '"'):
            try:  # a schema given as JSON text inside a string
                given = orjson.loads(given)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(at(".writer_schema"), f"invalid schema JSON text: {exc}") from None
        try:
            writer = parse_schema(given)
        except AvroSchemaError as exc:
            raise BadRequest(at(".writer_schema"), f"invalid Avro schema: {exc}") from None
    checked = (id(codec), id(writer))
    if checked not in plan.checked_writers:
        problem = codec.writer_problem(writer)
        if problem is not None:
            raise BadRequest(at(".writer_schema"), problem)
        plan.checked_writers.add(checked)
    return writer


def _encode(encode: Callable[[Any], bytes], value: Any, at: Callable[[str], str]) -> bytes:
    try:
        return encode(value)
    except CellEncodeError as exc:
        raise BadRequest(f"{at('.value')}{exc.path}", str(exc.args[0])) from None


def _timestamp(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise BadRequest(
            where, f"expected an integer number of milliseconds since the epoch, got {_kind(value)}"
        )
    if value < 0:
        raise BadRequest(where, f"must not be negative, got {value}")
    if value >= LATEST:
        raise BadRequest(where, f"must be less than {LATEST} (HBase's 'latest' marker), got {value}")
    return value


def apply_writes(store: Store, table: TableContext, plan: WritePlan) -> list[str]:
    """Register new schemas, then write each row atomically; returns the POST targets."""
    entries = {text: table.schemas.register(schema) for text, schema in plan.new_schemas.items()}
    resolved: dict[int, tuple[bytes, int]] = {}  # id(writer) → (hash, uid)
    pending: list[tuple[bytes, list]] = []
    for row in plan.rows:
        now = time.time_ns() // 1_000_000  # one server time per row
        cells = []
        for c in row.puts:
            data = c.data
            if c.codec is not None and c.writer is not None:
                prefix = resolved.get(id(c.writer))
                if prefix is None:
                    entry = entries.get(canonical_text(c.writer)) or table.schemas.register(c.writer)
                    prefix = resolved[id(c.writer)] = (schema_hash(c.writer), entry.uid)
                data = c.codec.cell_bytes(data, *prefix)
            cells.append((c.family, c.qualifier, now if c.timestamp is None else c.timestamp, data))
        if cells:
            pending.append((row.key, cells))
        if row.increments:  # increments follow every put before them, in body order
            if pending:
                store.put_rows(table.hbase_name, pending)
                pending = []
            for family, qualifier, amount in row.increments:
                store.increment(table.hbase_name, row.key, family, qualifier, amount)
    if pending:
        store.put_rows(table.hbase_name, pending)
    return [row.target for row in plan.rows]


def _join(where: str, member: str) -> str:
    return f"{where}.{member}" if where else member


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
