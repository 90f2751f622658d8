"""Reading Kiji rows: request columns → store selectors, and stored rows → the JSON rows of api.md.

`RowReader` is built once per table and kept in its context. Everything that depends only on the
layout or on a (column, writer schema) pair is computed once and cached, so the per-cell work of a
scan is: one dict lookup for the column, one cached decoder call, one small dict for the cell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kijirest.cells import CellDecodeError
from kijirest.entity_id import KeyCodec, to_string_binary
from kijirest.errors import BadRequest
from kijirest.layouts.columns import ColumnNames, UnknownColumnError
from kijirest.layouts.model import Family
from kijirest.store.base import LATEST, ColumnSelector, ReadOptions, Row

log = logging.getLogger("kijirest.reader")

#: bytes → (JSON value, writer schema uid); raises CellDecodeError
CellDecoder = Callable[[bytes], tuple[Any, int]]

MAX_CACHED_COLUMNS = 65536  # map-family qualifiers are unbounded: cap per-table column caches


@dataclass(frozen=True, slots=True)
class ColumnRequest:
    family: Family
    qualifier: str | None  # None = the whole family


def parse_columns(
    names: ColumnNames, text: str | None, where: str = "cols"
) -> tuple[ColumnRequest, ...] | None:
    """`cols`: `*` (or absent) = every column (None); else `family` / `family:qualifier` split on `,`.

    The first `:` separates family and qualifier (a map qualifier may hold `:`); aliases resolve to
    primary names; duplicates and columns covered by a whole-family request are merged.
    """
    if text is None or text == "*":
        return None
    whole: dict[str, Family] = {}
    single: dict[tuple[str, str], ColumnRequest] = {}
    for part in text.split(","):
        if part == "*":
            return None
        if part == "":
            raise BadRequest(where, f"empty column name in {text!r}")
        family_name, sep, qualifier = part.partition(":")
        try:
            family = names.family(family_name)
            if sep and qualifier:
                if not family.is_map:
                    qualifier = names.column(family, qualifier).name
                single[(family.name, qualifier)] = ColumnRequest(family, qualifier)
            else:
                whole[family.name] = family
        except UnknownColumnError as exc:
            raise BadRequest(where, str(exc)) from None
    merged = [ColumnRequest(f, None) for f in whole.values()]
    merged += [c for (fname, _), c in single.items() if fname not in whole]
    return tuple(merged)


def read_options(
    names: ColumnNames,
    columns: tuple[ColumnRequest, ...] | None,
    versions: int | None,
    time_range: tuple[int, int] = (0, LATEST),
) -> ReadOptions:
    """The store-level read of a request (selectors, versions, time range)."""
    selectors: tuple[ColumnSelector, ...] | None = None
    if columns is not None:
        selectors = tuple(
            names.family_selector(c.family)
            if c.qualifier is None
            else names.column_selector(c.family, c.qualifier)
            for c in columns
        )
    return ReadOptions(columns=selectors, max_versions=versions, time_range=time_range)


class RowReader:
    """Turns stored rows of one table into api.md rows."""

    def __init__(
        self,
        names: ColumnNames,
        keys: KeyCodec,
        decoder_for: Callable[..., CellDecoder],
        table: str,
    ) -> None:
        self._names = names
        self._entity_id_json = keys.entity_id_json
        #: HASH_PREFIX and materialized FORMATTED keys show as decoded components: a text answer
        #: then means the key did not decode (foreign or corrupt), which is logged
        self._decodes = keys.encoding == "HASH_PREFIX" or keys.wildcards_allowed
        self._decoder_for = decoder_for  # (CellSpec) → CellDecoder, cached by the caller
        self._table = table
        #: (HBase family, HBase qualifier) → (family name, qualifier, decoder, is counter) or None
        self._columns: dict[tuple[bytes, bytes], tuple[str, str, CellDecoder, bool] | None] = {}

    def _column(self, hfamily: bytes, hqualifier: bytes) -> tuple[str, str, CellDecoder, bool] | None:
        hit = self._names.kiji_column(hfamily, hqualifier)
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
