"""Reading Kiji rows: stored rows (HBase cells) → the JSON rows of api.md.

`RowReader` is built once per table with its `TableContext`. Everything that depends only on the
layout or on a (column, writer schema) pair is computed once and cached, so the per-cell work of a
scan is: one dict lookup for the column, one cached decoder call, one small dict for the cell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from kijirest.cells import CellDecodeError
from kijirest.entity_id import KeyCodec, to_string_binary
from kijirest.layouts.columns import ColumnNames
from kijirest.store.base import Row

log = logging.getLogger("kijirest.reader")

#: bytes → (JSON value, writer schema uid); raises CellDecodeError
CellDecoder = Callable[[bytes], tuple[Any, int]]

MAX_CACHED_COLUMNS = 65536  # map-family qualifiers are unbounded: cap per-table column caches


class RowReader:
    """Turns stored rows of one table into api.md rows."""

    def __init__(
        self,
        column_names: ColumnNames,
        key_codec: KeyCodec,
        decoder_for: Callable[..., CellDecoder],
        table: str,
    ) -> None:
        self._column_names = column_names
        self._entity_id_json = key_codec.entity_id_json
        #: HASH_PREFIX and materialized FORMATTED keys show as decoded components: a text answer
        #: then means the key did not decode (foreign or corrupt), which is logged
        self._decodes = key_codec.encoding == "HASH_PREFIX" or key_codec.wildcards_allowed
        self._decoder_for = decoder_for  # (CellSpec) → CellDecoder, cached by the caller
        self._table = table
        #: (HBase family, HBase qualifier) → (family name, qualifier, decoder, is counter) or None
        self._columns: dict[tuple[bytes, bytes], tuple[str, str, CellDecoder, bool] | None] = {}

    def _column(self, hfamily: bytes, hqualifier: bytes) -> tuple[str, str, CellDecoder, bool] | None:
        hit = self._column_names.kiji_column(hfamily, hqualifier)
        info = None
        if hit is not None:
            family, qualifier, spec = hit
            info = (family.name, qualifier, self._decoder_for(spec), spec.type == "COUNTER")
        if len(self._columns) >= MAX_CACHED_COLUMNS:
            self._columns.clear()
        self._columns[(hfamily, hqualifier)] = info
        return info

    def row(self, stored: Row) -> dict[str, Any] | None:
        """The api.md row, or None when no stored cell maps to a layout column."""
        key, cells = stored
        cells_json = self.cells(key, cells)
        if not cells_json:
            return None
        return {"entityId": self.entity_id(key), "cells": cells_json}

    def renderable(self, row: dict[str, Any], reason: str) -> dict[str, Any]:
        """`row` with every cell whose value orjson cannot write (nested past its depth limit,
        which only a store written by another tool can hold) shown as an "Error loading cell"
        cell: one bad cell never aborts a stream or hides its row."""
        dumps = orjson.dumps
        for family, qualifiers in row["cells"].items():
            for qualifier, versions in qualifiers.items():
                for cell in versions:
                    try:
                        dumps(cell["value"])
                    except orjson.JSONEncodeError as exc:
                        log.warning(
                            "table %s row %s column %s:%s ts %s: cannot render cell: %s",
                            self._table,
                            row["entityId"],
                            family,
                            qualifier,
                            cell["timestamp"],
                            exc,
                        )
                        cell["value"] = f"Error loading cell: {exc}"
                        cell["writer_schema"] = -1
        log.debug("row rendered cell by cell after: %s", reason)
        return row

    def empty_row(self, key: bytes) -> dict[str, Any]:
        return {"entityId": self.entity_id(key), "cells": {}}

    def entity_id(self, key: bytes) -> Any:
        eid = self._entity_id_json(key)
        if self._decodes and type(eid) is str:
            log.warning("table %s: row key %s does not decode with the table's key format", self._table, eid)
        return eid

    def cells(self, key: bytes, cells: list) -> dict[str, dict[str, list[dict[str, Any]]]]:
        families: dict[str, dict[str, list[dict[str, Any]]]] = {}
        columns = self._columns
        missing = object()
        # cells come grouped by column (family, qualifier, newest first): the column is looked up
        # once per run of versions, not once per cell
        last_family = last_qualifier = None
        versions: list[dict[str, Any]] | None = None
        decode: CellDecoder | None = None
        counter = False
        # the HBase order of columns is often the Kiji order already (map families always are:
        # UTF-8 byte order is code point order); sort only what arrives out of order
        family = qualifier = ""
        families_sorted = True
        unsorted: list[str] | None = None  # families whose qualifiers arrived out of order
        qualifiers: dict[str, Any] = {}
        for hfamily, hqualifier, timestamp, value in cells:
            if hqualifier != last_qualifier or hfamily != last_family:
                last_family, last_qualifier = hfamily, hqualifier
                info = columns.get((hfamily, hqualifier), missing)
                if info is missing:
                    info = self._column(hfamily, hqualifier)
                if info is None:
                    versions = None  # a cell of no layout column (removed column, other tool): skipped
                    continue
                if info[0] == family:
                    if info[1] < qualifier:
                        if unsorted is None:
                            unsorted = []
                        unsorted.append(family)
                    family, qualifier, decode, counter = info  # type: ignore[misc]
                else:
                    if info[0] < family:
                        families_sorted = False
                    family, qualifier, decode, counter = info  # type: ignore[misc]
                    known = families.get(family)
                    if known is None:
                        qualifiers = families[family] = {}
                    else:  # the family again after another one: its qualifiers need a sort
                        qualifiers = known
                        if unsorted is None:
                            unsorted = []
                        unsorted.append(family)
                versions = qualifiers[qualifier] = []
            elif versions is None or counter:
                continue  # an unknown column, or a counter: the latest value only
            try:
                datum, writer = decode(value)  # type: ignore[misc]
            except CellDecodeError as exc:
                log.warning(
                    "table %s row %s column %s:%s ts %s: cannot decode cell: %s",
                    self._table,
                    to_string_binary(key),
                    family,
                    qualifier,
                    timestamp,
                    exc,
                )
                datum, writer = f"Error loading cell: {exc}", -1
            versions.append({"timestamp": timestamp, "value": datum, "writer_schema": writer})
        if unsorted is not None:
            for name in set(unsorted):
                families[name] = dict(sorted(families[name].items()))
        if not families_sorted:
            families = dict(sorted(families.items()))
        return families
