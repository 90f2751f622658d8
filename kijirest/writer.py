"""Writing Kiji rows (POST): the whole body is validated first, then written row by row.

`plan_writes` checks every row and cell (entity ID, column, writer schema, value, timestamp) and
encodes every value without touching the store, except to look up known schemas. One bad cell
raises `BadInput` naming its place (`[0].cells.info.name[1].value: ...`) and nothing is written.
Permissions are part of that rule: given the caller's `RowScope` (a row-prefix grant), a body with
one row outside it is `Forbidden` (403) as a whole, before anything is written.
`apply_writes` then registers the new writer schemas, and writes each row as one atomic store
mutation (cells with different timestamps included); counter increments follow their row's put.

Both are blocking (schema-table and store calls): the view runs them in the thread pool.

A body may hold at most `max_rows` rows (the `max_rows_per_post` setting): one more is a 413 and
nothing is written, since a plan holds every row's encoded cells until the last row is checked.
`RowPlanner` plans rows one at a time for a body parsed incrementally (`json_rows.py`), with the
same checks, the same error paths (`[i].cells...`) and the same refusal at row `max_rows` + 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kijirest.auth.scope import RowScope
from kijirest.avro.codecs import CODECS
from kijirest.avro.schema import AvroSchemaError, Schema, canonical_text, parse_schema, schema_hash
from kijirest.catalog import TableContext
from kijirest.cells import CellEncodeError, ColumnCodec, encode_counter, encode_raw_bytes
from kijirest.entity_id import EntityIdError, entity_id_from_json, java_url_encode, target_eid_text
from kijirest.layouts.columns import UnknownColumnError
from kijirest.primitives import now_ms
from kijirest.problems import BadInput, Forbidden, TooLarge
from kijirest.store.base import LATEST, Store

#: Nesting limits of posted values and writer schemas. Anything accepted must read back: a row
#: line adds 5 levels (row, cells, family, qualifier, cell) to its values, and orjson refuses to
#: write past 254, so a deeper value would make its row unreadable for every reader; the schema
#: parser and the codecs recurse once or twice per level.
MAX_VALUE_DEPTH = 200
MAX_SCHEMA_DEPTH = 100

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
    entity: Any = None  # the entityId as posted (for the audit log)
    puts: list[CellWrite] = field(default_factory=list)
    increments: list[tuple[bytes, bytes, int]] = field(default_factory=list)


@dataclass(slots=True)
class WritePlan:
    rows: list[RowWrite]
    new_schemas: dict[str, Schema]  # canonical text → schema, registered before any row is written
    seen_writers: set[int] = field(default_factory=set)  # id() of writer schemas already looked up
    checked_writers: set[tuple[int, int]] = field(default_factory=set)  # (id(codec), id(writer)) allowed


NOT_ROWS = "expected a row object or a JSON array of row objects"


def plan_writes(
    table: TableContext, document: Any, max_rows: int | None = None, scope: RowScope | None = None
) -> WritePlan:
    """Validate and encode a whole POST body (one row object or an array of them); `scope`: the
    rows the caller may write (None = every row)."""
    if isinstance(document, dict):
        items, prefix = [document], lambda i: ""
    elif isinstance(document, list):
        items, prefix = document, lambda i: f"[{i}]"
        if max_rows is not None and len(items) > max_rows:
            raise too_many_rows(max_rows)
    else:
        raise BadInput("body", NOT_ROWS)
    plan = WritePlan(rows=[], new_schemas={})
    for i, item in enumerate(items):
        plan.rows.append(_plan_row(table, item, prefix(i), plan, scope))
    return plan


def too_many_rows(max_rows: int) -> TooLarge:
    return TooLarge(
        "body", f"more than {max_rows} rows in one POST (max_rows_per_post): send them in several POSTs"
    )


class RowPlanner:
    """`plan_writes` one row at a time, for a body whose rows arrive one by one."""

    def __init__(self, table: TableContext, max_rows: int, scope: RowScope | None = None) -> None:
        self.table = table
        self.max_rows = max_rows
        self.scope = scope
        self.plan = WritePlan(rows=[], new_schemas={})

    def add(self, item: Any, in_array: bool) -> None:
        """Plan the next row: an element of the body's array, or (`in_array` False) the body."""
        rows = self.plan.rows
        if not in_array:
            if not isinstance(item, dict):
                raise BadInput("body", NOT_ROWS)
            rows.append(_plan_row(self.table, item, "", self.plan, self.scope))
            return
        if len(rows) >= self.max_rows:
            raise too_many_rows(self.max_rows)
        rows.append(_plan_row(self.table, item, f"[{len(rows)}]", self.plan, self.scope))


def _plan_row(
    table: TableContext, item: Any, where: str, plan: WritePlan, scope: RowScope | None
) -> RowWrite:
    row_where = where or "body"
    if not isinstance(item, dict):
        raise BadInput(row_where, f"expected a row object, got {_kind(item)}")
    unknown = sorted(set(item) - ROW_MEMBERS)
    if unknown:
        raise BadInput(
            row_where, f"unknown member(s) {', '.join(map(repr, unknown))} (a row has entityId and cells)"
        )
    if "entityId" not in item:
        raise BadInput(row_where, "missing member 'entityId'")
    eid_where = _join(where, "entityId")
    try:
        row_key = entity_id_from_json(item["entityId"], table.layout.row_key, for_write=True)
    except EntityIdError as exc:
        raise BadInput(f"{eid_where}{exc.path}", str(exc)) from None
    if scope is not None and not scope.contains(row_key.key):
        raise Forbidden(eid_where, "the row is outside the rows your grant allows; nothing was written")
    target = f"{table.uri}/rows?eid={java_url_encode(target_eid_text(row_key.source))}"
    row = RowWrite(key=row_key.key, target=target, entity=row_key.source)
    cells = item.get("cells", {})
    cells_where = _join(where, "cells")
    targets = table.write_targets
    if not isinstance(cells, dict):
        raise BadInput(cells_where, f"expected an object of families, got {_kind(cells)}")
    for family_name, qualifiers in cells.items():
        family_where = f"{cells_where}.{family_name}"
        try:
            family = table.column_names.family(family_name)
        except UnknownColumnError as exc:
            raise BadInput(family_where, str(exc)) from None
        if not isinstance(qualifiers, dict):
            raise BadInput(family_where, f"expected an object of columns, got {_kind(qualifiers)}")
        for qualifier, versions in qualifiers.items():
            column_where = f"{family_where}.{qualifier}"
            try:
                hfamily, hqualifier, codec = targets[(family.name, qualifier)]
            except KeyError:
                try:
                    hfamily, hqualifier, codec = table.write_target(family, qualifier)
                except UnknownColumnError as exc:
                    raise BadInput(column_where, str(exc)) from None
            if not isinstance(versions, list):
                raise BadInput(column_where, f"expected an array of cells, got {_kind(versions)}")
            for j, cell in enumerate(versions):
                _plan_cell(table, codec, hfamily, hqualifier, cell, column_where, j, row, plan)
    return row


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
        raise BadInput(at(), f"expected a cell object, got {_kind(cell)}")
    if not CELL_MEMBERS.issuperset(cell):
        unknown = ", ".join(map(repr, sorted(set(cell) - CELL_MEMBERS)))
        raise BadInput(at(), f"unknown member(s) {unknown} (a cell has value, timestamp, writer_schema)")
    if "value" not in cell:
        raise BadInput(at(), "missing member 'value'")
    value = cell["value"]
    if type(value) is dict or type(value) is list:
        _check_depth(value, MAX_VALUE_DEPTH, at(".value"), "value")
    timestamp = cell.get("timestamp")
    if timestamp is not None and (type(timestamp) is not int or not 0 <= timestamp < LATEST):
        _timestamp(timestamp, at(".timestamp"))  # raises the precise error
    kind = codec.kind
    if kind == "COUNTER":
        if isinstance(value, dict):
            if set(value) != {"incr"} or type(value["incr"]) is not int:
                raise BadInput(at(".value"), 'a counter increment is {"incr": <integer>}')
            if timestamp is not None:
                raise BadInput(at(".timestamp"), "a counter increment takes no timestamp")
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
        raise BadInput(f"{at('.value')}{exc.path}", str(exc.args[0])) from None
    if writer is not codec.reader:
        problem = codec.read_back_problem(datum, writer)
        if problem is not None:  # e.g. an enum symbol the reader schema lacks: the cell would not read
            raise BadInput(at(".value"), problem)
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
            raise BadInput(
                at(".writer_schema"), "required: this AVRO column has no default reader schema to write with"
            )
    elif type(given) is int:
        entry = table.schemas.by_uid(given)
        if entry is None:
            raise BadInput(
                at(".writer_schema"),
                f"unknown schema uid {given} in the schema table of instance '{table.instance}'",
            )
        writer = CODECS.schema(entry.text)
    else:
        if isinstance(given, str) and given[:1] in ("{", "[", '"'):
            try:  # a schema given as JSON text inside a string
                given = orjson.loads(given)
            except orjson.JSONDecodeError as exc:
                raise BadInput(at(".writer_schema"), f"invalid schema JSON text: {exc}") from None
        if type(given) is dict or type(given) is list:
            _check_depth(given, MAX_SCHEMA_DEPTH, at(".writer_schema"), "schema")
        try:
            writer = parse_schema(given)
        except AvroSchemaError as exc:
            raise BadInput(at(".writer_schema"), f"invalid Avro schema: {exc}") from None
    checked = (id(codec), id(writer))
    if checked not in plan.checked_writers:
        problem = codec.writer_problem(writer)
        if problem is not None:
            raise BadInput(at(".writer_schema"), problem)
        plan.checked_writers.add(checked)
    return writer


def _encode(encode: Callable[[Any], bytes], value: Any, at: Callable[[str], str]) -> bytes:
    try:
        return encode(value)
    except CellEncodeError as exc:
        raise BadInput(f"{at('.value')}{exc.path}", str(exc.args[0])) from None


def _timestamp(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise BadInput(
            where, f"expected an integer number of milliseconds since the epoch, got {_kind(value)}"
        )
    if value < 0:
        raise BadInput(where, f"must not be negative, got {value}")
    if value >= LATEST:
        raise BadInput(where, f"must be less than {LATEST} (HBase's 'latest' marker), got {value}")
    return value


#: rows are handed to the store in batches of at most this many bytes of cells: each row's planned
#: cells are dropped once its final cells are built, so a large POST does not hold both copies
WRITE_BATCH_BYTES = 4 * 1024 * 1024


def apply_writes(store: Store, table: TableContext, plan: WritePlan) -> list[str]:
    """Register new schemas, then write each row atomically; returns the POST targets."""
    entries = {text: table.schemas.register(schema) for text, schema in plan.new_schemas.items()}
    resolved: dict[int, tuple[bytes, int]] = {}  # id(writer) → (hash, uid)
    pending: list[tuple[bytes, list]] = []
    pending_bytes = 0
    for row in plan.rows:
        now = now_ms()  # one server time per row
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
            pending_bytes += len(data)
        row.puts = []  # the planned cells: replaced by `cells`
        if cells:
            pending.append((row.key, cells))
        if pending_bytes >= WRITE_BATCH_BYTES:
            store.put_rows(table.hbase_name, pending)
            pending = []
            pending_bytes = 0
        if row.increments:  # increments follow every put before them, in body order
            if pending:
                store.put_rows(table.hbase_name, pending)
                pending = []
                pending_bytes = 0
            for family, qualifier, amount in row.increments:
                store.increment(table.hbase_name, row.key, family, qualifier, amount)
    if pending:
        store.put_rows(table.hbase_name, pending)
    return [row.target for row in plan.rows]


def _check_depth(value: Any, limit: int, where: str, what: str) -> None:
    """BadInput when arrays/objects nest more than `limit` levels (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise BadInput(where, f"the {what} nests deeper than {limit} levels of arrays and objects")
        children = item.values() if type(item) is dict else item
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))


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
