"""The served instances and tables: layouts loaded, store tables and schema tables made ready.

Built once at start-up (`open_catalog`), then read-only (except `Catalog.recover`, which readies a
store that lost tables again, as at start-up): request handlers look up a `TableContext`
holding everything a request on that table needs, precomputed (column names, key codec, cell codecs,
the row reader) plus the caches that fill as columns are used (cell decoders per writer schema, the
HBase names and codecs of posted columns). The catalog knows the store and the layouts, nothing of
settings, the demo or HTTP: start-up composition lives in `app.py`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kijirest.avro.schema import parse_schema_text
from kijirest.cells import ColumnCodec
from kijirest.entity_id import KeyCodec, codec_for
from kijirest.layouts.columns import ColumnNames, hbase_table_name
from kijirest.layouts.loader import LayoutError, check_schema_uids, load_layout_dir
from kijirest.layouts.model import CellSpec, Family, TableLayout
from kijirest.reader import MAX_CACHED_COLUMNS, RowReader
from kijirest.schema_table import SchemaTable
from kijirest.store.base import FamilySpec, Store, StoreUnavailable

log = logging.getLogger("kijirest.catalog")


class StartupError(Exception):
    """The gateway cannot start: the message names the file, table or setting at fault."""


#: a posted column's (HBase family, HBase qualifier, cell codec)
WriteTarget = tuple[bytes, bytes, ColumnCodec]


@dataclass
class TableContext:
    instance: str
    name: str
    layout: TableLayout
    hbase_name: str
    column_names: ColumnNames
    key_codec: KeyCodec
    schemas: SchemaTable
    uri: str = ""
    codecs: dict[CellSpec, ColumnCodec] = field(default_factory=dict)
    #: stored rows → api.md rows (built with the context)
    reader: RowReader = field(init=False, repr=False)
    #: (family name, qualifier) → where a posted cell goes, filled by `write_target`
    write_targets: dict[tuple[str, str], WriteTarget] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reader = RowReader(
            self.column_names, self.key_codec, lambda spec: self.codec(spec).decode_cell, self.hbase_name
        )

    def codec(self, spec: CellSpec) -> ColumnCodec:
        """The cell codec of a column (all are built at start-up; decoders per writer are cached)."""
        codec = self.codecs.get(spec)
        if codec is None:
            codec = self.codecs[spec] = ColumnCodec(spec, self.schemas)
        return codec

    def write_target(self, family: Family, qualifier: str) -> WriteTarget:
        """Where a posted cell of `family:qualifier` goes, cached (the lookups behind it hash a
        CellSpec and a few tuples: too much to repeat for every cell of every posted row). Raises
        UnknownColumnError."""
        spec = self.column_names.cell_spec(family, qualifier)
        hfamily, hqualifier = self.column_names.hbase_column(family, qualifier)
        target = (hfamily, hqualifier, self.codec(spec))
        if len(self.write_targets) >= MAX_CACHED_COLUMNS:
            self.write_targets.clear()
        self.write_targets[(family.name, qualifier)] = target
        return target


    def forget_writers(self) -> None:
        """Drop what was cached per writer schema uid (see `Catalog.recover`)."""
        for codec in self.codecs.values():
            codec.forget_writers()


@dataclass
class InstanceContext:
    name: str
    tables: dict[str, TableContext]
    schemas: SchemaTable
    uri: str = ""
    #: one recovery at a time per instance (requests of several threads find the same table gone)
    recovery_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def store_tables(self) -> list[str]:
        """The store tables this instance needs: its schema tables, then its tables in name order."""
        return [self.schemas.id_table, self.schemas.hash_table, *(t.hbase_name for t in self.tables.values())]


@dataclass
class Catalog:
    instances: dict[str, InstanceContext]

    def instance(self, name: str) -> InstanceContext | None:
        return self.instances.get(name)

    def recover(self, store: Store, table: str | None = None) -> bool:
        """Ready the store again for the instance that serves `table` (None: every instance), as
        at start-up: missing tables and schema tables are created (existing ones are never altered
        or dropped). When the schema table no longer holds what this process cached (it was
        re-created empty, e.g. HBase came back without its data), the caches of uids are reset
        and the FINAL columns' schemas are registered again, in start-up order: a uid cached
        before the outage is never written again, since it may now name another schema.

        Blocking (run it in the store's pool); True when `table` belongs to a served instance
        (the failed call may then be retried), False for a table this catalog does not know."""
        found = False
        for inst in self.instances.values():
            if table is None or table in inst.store_tables():
                found = True
                _recover_instance(store, inst)
        return found


def open_catalog(store: Store, layouts_dir: str, visible: tuple[str, ...] | None) -> Catalog:
    """Load the layouts and make the store ready for them (blocking: run it off the event loop).

    Creates missing tables and schema tables, never alters or drops existing ones; registers the
    schema of every FINAL column so that reads never write.
    """
    if not Path(layouts_dir).is_dir():
        raise StartupError(f"--layouts {layouts_dir}: not a directory")
    try:
        loaded = load_layout_dir(layouts_dir)
    except LayoutError as exc:
        raise StartupError(str(exc)) from exc
    if visible is not None:
        missing = [name for name in visible if name not in loaded]
        if missing:
            raise StartupError(f"instances: no layouts directory for instance(s) {', '.join(missing)}")
        loaded = {name: inst for name, inst in loaded.items() if name in visible}
    try:
        existing = set(store.list_tables())
    except StoreUnavailable as exc:
        raise StartupError(f"--store: {exc}") from exc
    instances: dict[str, InstanceContext] = {}
    for iname in sorted(loaded):
        inst = loaded[iname]
        schemas = SchemaTable(store, iname)
        schemas.install()
        try:
            check_schema_uids(inst, schemas.has_uid)
        except LayoutError as exc:
            raise StartupError(str(exc)) from exc
        tables: dict[str, TableContext] = {}
        for tname in sorted(inst.tables):
            layout = inst.tables[tname]
            column_names = inst.columns.get(tname) or ColumnNames(layout)
            hname = hbase_table_name(iname, tname)
            _ensure_table(store, hname, column_names.family_specs(), existing)
            _register_final_schemas(schemas, column_names)
            tables[tname] = context = TableContext(
                instance=iname,
                name=tname,
                layout=layout,
                hbase_name=hname,
                column_names=column_names,
                key_codec=codec_for(layout.row_key),
                schemas=schemas,
                uri=f"/v1/instances/{iname}/tables/{tname}",
            )
            for family, spec in _cell_specs(column_names):
                try:
                    context.codec(spec)
                except ValueError as exc:
                    raise StartupError(
                        f"{inst.files.get(tname, tname)}: family {family.name}: {exc}"
                    ) from exc
        instances[iname] = InstanceContext(iname, tables, schemas, uri=f"/v1/instances/{iname}")
    return Catalog(instances)


def _recover_instance(store: Store, inst: InstanceContext) -> None:
    with inst.recovery_lock:
        existing = set(store.list_tables())
        missing = [name for name in inst.store_tables() if name not in existing]
        schemas = inst.schemas
        if schemas.id_table in missing or schemas.hash_table in missing:
            log.warning("instance %s: the schema table is gone: re-creating it", inst.name)
            schemas.forget()
            schemas.install()  # creates what is missing; the primitives when the id table was
            stale = True
        elif stale_entries := schemas.stale_entries():
            log.warning(
                "instance %s: the schema table no longer holds %d cached schema(s) (re-created?): "
                "resetting the caches and registering the layouts' FINAL schemas again",
                inst.name,
                len(stale_entries),
            )
            schemas.reset()
            stale = True
        else:
            stale = False
        if stale:
            for context in inst.tables.values():
                context.forget_writers()
        for context in inst.tables.values():
            if context.hbase_name in missing:
                created = store.create_table(context.hbase_name, context.column_names.family_specs())
                if created:
                    log.warning("instance %s: re-created the missing table %s", inst.name, context.hbase_name)
            if stale:
                _register_final_schemas(schemas, context.column_names)


def _ensure_table(store: Store, name: str, families: list[FamilySpec], existing: set[str]) -> None:
    if name not in existing:
        try:
            store.create_table(name, families)
        except Exception as exc:  # a codec HBase lacks (LZO, SNAPPY), a refused setting
            raise StartupError(f"table {name}: cannot create it: {exc}") from exc
        return
    have = store.table_families(name)
    for spec in families:
        got = have.get(spec.name)
        if got is None:
            raise StartupError(
                f"table {name}: HBase family {spec.name.decode()!r} of the layout is missing in the store "
                "(kijirest never alters existing tables)"
            )
        if (got.max_versions, got.ttl_seconds) != (spec.max_versions, spec.ttl_seconds):
            log.warning(
                "table %s family %s: store has max_versions=%s ttl=%s, layout says %s / %s",
                name,
                spec.name.decode(),
                got.max_versions,
                got.ttl_seconds,
                spec.max_versions,
                spec.ttl_seconds,
            )


def _cell_specs(column_names: ColumnNames) -> Iterator[tuple[Family, CellSpec]]:
    for family in column_names.families:
        if family.map_cell is not None:
            yield family, family.map_cell
        for column in family.columns:
            yield family, column.cell


def _register_final_schemas(schemas: SchemaTable, column_names: ColumnNames) -> None:
    """FINAL columns' schemas are registered at start-up (layout order) so that reads never write."""
    for _, cell in _cell_specs(column_names):
        if cell.storage == "FINAL" and cell.type == "INLINE" and cell.schema:
            schemas.get_or_create(parse_schema_text(cell.schema))
