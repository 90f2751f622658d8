"""The served instances and tables: layouts loaded, store tables and schema tables made ready.

Built once at start-up (`open_catalog`), then read-only: request handlers look up a `TableContext`
holding everything a request on that table needs, precomputed (column names, key codec, row decoder).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kijirest.cells import ColumnCodec
from kijirest.entity_id import KeyCodec, codec_for
from kijirest.layouts.columns import ColumnNames, hbase_table_name
from kijirest.layouts.model import CellSpec, Family, TableLayout
from kijirest.schema_table import SchemaTable
from kijirest.settings import Settings
from kijirest.store.base import FamilySpec, Store, StoreUnavailable

log = logging.getLogger("kijirest.catalog")


class StartupError(Exception):
    """The gateway cannot start: the message names the file, table or setting at fault."""


@dataclass
class TableContext:
    instance: str
    name: str
    layout: TableLayout
    hbase_name: str
    names: ColumnNames
    keys: KeyCodec
    schemas: SchemaTable
    uri: str = ""
    codecs: dict[CellSpec, ColumnCodec] = field(default_factory=dict)
    #: per-table objects built on first use (the row reader)
    cache: dict = field(default_factory=dict)

    def codec(self, spec: CellSpec) -> ColumnCodec:
        """The cell codec of a column (all are built at start-up; decoders per writer are cached)."""
        codec = self.codecs.get(spec)
        if codec is None:
            codec = self.codecs[spec] = ColumnCodec(spec, self.schemas)
        return codec


@dataclass
class InstanceContext:
    name: str
    tables: dict[str, TableContext]
    schemas: SchemaTable
    uri: str = ""


@dataclass
class Catalog:
    instances: dict[str, InstanceContext]

    def instance(self, name: str) -> InstanceContext | None:
        return self.instances.get(name)


def open_catalog(store: Store, layouts_dir: str, visible: tuple[str, ...] | None) -> Catalog:
    """Load the layouts and make the store ready for them (blocking: run it off the event loop).

    Creates missing tables and schema tables, never alters or drops existing ones; registers the
    schema of every FINAL column so that reads never write.
    """
    from kijirest.layouts.loader import LayoutError, check_schema_uids, load_layout_dir

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
            names = inst.columns.get(tname) or ColumnNames(layout)
            hname = hbase_table_name(iname, tname)
            _ensure_table(store, hname, names.family_specs(), existing)
            _register_final_schemas(schemas, names)
            tables[tname] = context = TableContext(
                instance=iname,
                name=tname,
                layout=layout,
                hbase_name=hname,
                names=names,
                keys=codec_for(layout.keys),
                schemas=schemas,
                uri=f"/v1/instances/{iname}/tables/{tname}",
            )
            for family, spec in _cell_specs(names):
                try:
                    context.codec(spec)
                except ValueError as exc:
                    raise StartupError(
                        f"{inst.files.get(tname, tname)}: family {family.name}: {exc}"
                    ) from exc
        instances[iname] = InstanceContext(iname, tables, schemas, uri=f"/v1/instances/{iname}")
    return Catalog(instances)


def ready_catalog(store: Store, settings: Settings) -> Catalog:
    """The catalog of `settings` on an open store, with the demo rows loaded when asked (blocking)."""
    catalog = open_catalog(store, settings.layouts, settings.instances)
    if settings.demo:
        from kijirest.demo import load_demo_rows

        load_demo_rows(store, catalog)
    return catalog


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


def _cell_specs(names: ColumnNames) -> Iterator[tuple[Family, CellSpec]]:
    for family in names.families:
        if family.map_cell is not None:
            yield family, family.map_cell
        for column in family.columns:
            yield family, column.cell


def _register_final_schemas(schemas: SchemaTable, names: ColumnNames) -> None:
    """FINAL columns' schemas are registered at start-up (layout order) so that reads never write."""
    from kijirest.avro.schema import parse_schema_text

    for _, cell in _cell_specs(names):
        if cell.storage == "FINAL" and cell.type == "INLINE" and cell.schema:
            schemas.get_or_create(parse_schema_text(cell.schema))
