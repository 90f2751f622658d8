"""A rows request's query string → one value object the views act on (api.md "GET rows" / "DELETE").

`parse_row_query` reads `eid` / `eids` / `start_eid`+`end_eid`, `cols`, `versions`, `timerange` and
`limit` once, and returns a `RowQuery` that says what to do: read rows by key (`point_keys`), scan
(`scan`, with the wildcard's matcher when there is one), or nothing at all (an empty key range).
`parse_delete_query` does the same for DELETE. Every mistake is a `BadInput` naming its parameter;
nothing here touches the store.

Both take the caller's `RowScope` when a row-prefix grant narrows what it may act on (None = every
row): a scan is narrowed to the scope's key range and every scanned key is checked against it (no
row outside it is ever streamed, whatever range, wildcard or raw bound was asked), and a point
read or delete naming a row outside it is `Forbidden` (403) whether that row exists or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from multidict import MultiMapping

from kijirest.auth.scope import RowScope
from kijirest.catalog import TableContext
from kijirest.entity_id import (
    EntityIdError,
    Wildcard,
    is_empty_range,
    parse_bound,
    parse_entity_id,
    parse_entity_id_list,
)
from kijirest.layouts.columns import ColumnNames, UnknownColumnError
from kijirest.layouts.model import Family, RowKeySpec
from kijirest.params import (
    DEFAULT_SCAN_LIMIT,
    parse_limit,
    parse_timerange,
    parse_timestamp,
    parse_versions,
    single,
)
from kijirest.problems import BadInput, Forbidden
from kijirest.store.base import LATEST, ColumnSelector, ReadOptions, Scan

SCAN_BATCH_ROWS = 1000  # rows per store round trip of a scan, and keys per store call of a multi-get
FIRST_BATCH_ROWS = 1  # the first row of a scan goes out as soon as the store finds it


@dataclass(frozen=True, slots=True)
class ColumnRequest:
    family: Family
    qualifier: str | None  # None = the whole family


@dataclass(frozen=True, slots=True)
class RowQuery:
    """What a GET of rows asks for. Exactly one of `point_keys` and `scan` is set, or neither (an
    empty range: no row, no store call)."""

    read: ReadOptions
    limit: int | None  # rows to send at most; None = no limit
    point_keys: tuple[bytes, ...] | None = None  # one row per key, in order, duplicates included
    scan: Scan | None = None
    matcher: Callable[[bytes], bool] | None = None  # a wildcard's exact check of each scanned key


@dataclass(frozen=True, slots=True)
class DeleteQuery:
    keys: tuple[bytes, ...]
    columns: tuple[ColumnSelector, ...] | None  # None = the whole row
    timestamp: int | None  # None = every version


def parse_row_query(table: TableContext, query: MultiMapping[str], rows: RowScope | None = None) -> RowQuery:
    """The GET of `query`; `rows` confines it to the rows of a row-prefix grant (None = all)."""
    parsed = _parse_row_query(table, query)
    if rows is None:
        return parsed
    if parsed.point_keys is not None:
        where = "eid" if single(query, "eid") is not None else "eids"
        _check_keys(where, parsed.point_keys, rows)
        return parsed
    if parsed.scan is None:
        return parsed
    clipped = rows.clip(parsed.scan.start, parsed.scan.stop)
    if clipped is None:
        return RowQuery(parsed.read, parsed.limit)  # the asked range and the grant do not meet
    start, stop = clipped
    matcher = parsed.matcher
    check = rows.contains if matcher is None else _both(matcher, rows.contains)
    return replace(parsed, scan=replace(parsed.scan, start=start, stop=stop), matcher=check)


def _both(first: Callable[[bytes], bool], second: Callable[[bytes], bool]) -> Callable[[bytes], bool]:
    return lambda key: first(key) and second(key)


def _check_keys(where: str, keys: tuple[bytes, ...], rows: RowScope) -> None:
    """Forbidden naming the first key outside `rows` (`eids[2]`); checked before any read or write."""
    for i, key in enumerate(keys):
        if not rows.contains(key):
            at = where if where == "eid" else f"{where}[{i}]"
            raise Forbidden(at, "the row is outside the rows your grant allows")


def _parse_row_query(table: TableContext, query: MultiMapping[str]) -> RowQuery:
    eid = single(query, "eid")
    eids = single(query, "eids")
    start = single(query, "start_eid")
    end = single(query, "end_eid")
    given = [
        name
        for name, present in (("eid", eid), ("eids", eids), ("start_eid/end_eid", start or end))
        if present
    ]
    if len(given) > 1:
        raise BadInput(", ".join(given), "give only one of eid, eids and start_eid/end_eid")
    versions = parse_versions(single(query, "versions"))
    time_range = parse_timerange(single(query, "timerange"))
    columns = parse_columns(table.column_names, single(query, "cols"))
    read = read_options(table.column_names, columns, versions, time_range)
    row_key = table.layout.row_key
    limit_text = single(query, "limit")

    if eid is not None:
        try:
            parsed = parse_entity_id(eid, row_key, wildcard=True)
        except EntityIdError as exc:
            raise _entity_error("eid", exc) from None
        limit = parse_limit(limit_text, DEFAULT_SCAN_LIMIT)
        if isinstance(parsed, Wildcard):
            scan = _scan(parsed.start, parsed.stop, read, row_regex=parsed.regex)
            return RowQuery(read, limit, scan=scan, matcher=parsed.matches)
        return RowQuery(read, limit, point_keys=(parsed.key,))
    if eids is not None:
        try:
            ids = parse_entity_id_list(eids, row_key)
        except EntityIdError as exc:
            raise _entity_error("eids", exc) from None
        return RowQuery(read, parse_limit(limit_text, None), point_keys=tuple(i.key for i in ids))
    limit = parse_limit(limit_text, DEFAULT_SCAN_LIMIT)
    low = _bound("start_eid", start, row_key)
    high = _bound("end_eid", end, row_key)
    if (low is not None or high is not None) and is_empty_range(low, high):
        return RowQuery(read, limit)
    return RowQuery(read, limit, scan=_scan(low or b"", high, read))


def parse_delete_query(
    table: TableContext, query: MultiMapping[str], rows: RowScope | None = None
) -> DeleteQuery:
    """The DELETE of `query`; with `rows`, every key must be inside it (else Forbidden, nothing
    deleted)."""
    eid = single(query, "eid")
    eids = single(query, "eids")
    if (eid is None) == (eids is None):
        raise BadInput("eid, eids", "give exactly one of eid and eids")
    row_key = table.layout.row_key
    try:
        if eid is not None:
            ids = [parse_entity_id(eid, row_key)]
        else:
            ids = parse_entity_id_list(eids, row_key)  # type: ignore[arg-type]
    except EntityIdError as exc:
        raise _entity_error("eid" if eid is not None else "eids", exc) from None
    columns = parse_columns(table.column_names, single(query, "cols"))
    timestamp = parse_timestamp("timestamp", single(query, "timestamp"))
    selectors = None if columns is None else read_options(table.column_names, columns, 1).columns
    keys = tuple(i.key for i in ids)  # type: ignore[union-attr]
    if rows is not None:
        _check_keys("eid" if eid is not None else "eids", keys, rows)
    return DeleteQuery(keys, selectors, timestamp)


def parse_columns(
    column_names: ColumnNames, text: str | None, where: str = "cols"
) -> tuple[ColumnRequest, ...] | None:
    """`cols`: `*` (or absent) = every column (None); else `family` / `family:qualifier` split on `,`.

    The first `:` separates family and qualifier (a map qualifier may hold `:`); aliases resolve to
    primary names; duplicates and columns covered by a whole-family request are merged.
    """
    if text is None or text == "*":
        return None
    whole: dict[str, Family] = {}
    single_columns: dict[tuple[str, str], ColumnRequest] = {}
    for part in text.split(","):
        if part == "*":
            return None
        if part == "":
            raise BadInput(where, f"empty column name in {text!r}")
        family_name, sep, qualifier = part.partition(":")
        try:
            family = column_names.family(family_name)
            if sep and qualifier:
                if not family.is_map:
                    qualifier = column_names.column(family, qualifier).name
                single_columns[(family.name, qualifier)] = ColumnRequest(family, qualifier)
            else:
                whole[family.name] = family
        except UnknownColumnError as exc:
            raise BadInput(where, str(exc)) from None
    merged = [ColumnRequest(f, None) for f in whole.values()]
    merged += [c for (fname, _), c in single_columns.items() if fname not in whole]
    return tuple(merged)


def read_options(
    column_names: ColumnNames,
    columns: tuple[ColumnRequest, ...] | None,
    versions: int | None,
    time_range: tuple[int, int] = (0, LATEST),
) -> ReadOptions:
    """The store-level read of a request (selectors, versions, time range)."""
    selectors: tuple[ColumnSelector, ...] | None = None
    if columns is not None:
        selectors = tuple(
            column_names.family_selector(c.family)
            if c.qualifier is None
            else column_names.column_selector(c.family, c.qualifier)
            for c in columns
        )
    return ReadOptions(columns=selectors, max_versions=versions, time_range=time_range)


def _scan(start: bytes, stop: bytes | None, read: ReadOptions, row_regex: str | None = None) -> Scan:
    return Scan(
        start=start,
        stop=stop,
        read=read,
        row_regex=row_regex,
        first_batch_size=FIRST_BATCH_ROWS,
        batch_size=SCAN_BATCH_ROWS,
    )


def _bound(where: str, text: str | None, row_key: RowKeySpec) -> bytes | None:
    if text is None:
        return None
    try:
        return parse_bound(text, row_key)
    except EntityIdError as exc:
        raise _entity_error(where, exc) from None


def _entity_error(where: str, exc: EntityIdError) -> BadInput:
    return BadInput(f"{where}{exc.path}", str(exc))
