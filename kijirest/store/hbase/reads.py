"""ReadOptions and row regexes as Thrift 2 reads want them: columns, filter bytes, versions, time
range. HBase then applies them itself (versions counted after the time filter, family TTLs, delete
markers), so the HBase store needs none of `kijirest.store.semantics`.

HBase has no prefix column: a read with qualifier prefixes reads whole families and filters cells
with a protobuf filter (`filters.py`); exact qualifiers and whole families are plain `TColumn`s.
"""

from __future__ import annotations

import functools
from typing import Any

from kijirest.primitives import INT32_MAX
from kijirest.store.base import LATEST, ColumnSelector, ReadOptions
from kijirest.store.hbase import filters
from kijirest.store.hbase.thrift import thrift2
from kijirest.store.semantics import compile_row_regex

_ALL_VERSIONS = INT32_MAX  # Integer.MAX_VALUE: HBase then caps at the family's VERSIONS


def row_filter(pattern: str) -> bytes:
    """The row regex as HBase must get it: anchored to the whole key (HBase uses `find()`)."""
    compile_row_regex(pattern)  # same acceptance as the other stores: ValueError when invalid
    return filters.row_regex("^(?:" + pattern + ")\\z")


@functools.lru_cache(maxsize=512)
def read_parts(read: ReadOptions) -> tuple[list[Any] | None, bytes | None, int, Any]:
    """ReadOptions as Thrift 2 wants them: (columns, filter bytes, maxVersions, timeRange).
    Cached: the gateway reads with the same few ReadOptions again and again."""
    if not isinstance(read, ReadOptions):
        raise TypeError(f"read must be ReadOptions, not {type(read).__name__}")
    tmin, tmax = read.time_range
    if type(tmin) is not int or type(tmax) is not int:
        raise TypeError("time_range bounds must be int")
    if tmin < 0 or tmax < tmin or tmax > LATEST:
        raise ValueError(f"invalid time_range [{tmin}, {tmax}): need 0 <= min <= max")
    requested = read.max_versions
    if requested is not None and (type(requested) is not int or requested < 1):
        raise ValueError(f"max_versions must be None or a positive int, not {requested!r}")
    max_versions = _ALL_VERSIONS if requested is None else min(requested, _ALL_VERSIONS)
    time_range = None if (tmin, tmax) == (0, LATEST) else thrift2.TTimeRange(tmin, tmax)
    if read.columns is None:
        return None, None, max_versions, time_range
    if not read.columns:
        raise ValueError("columns must hold at least one ColumnSelector (None means the whole row)")

    # family -> None (all of it) or its exact qualifiers and prefixes, in first-seen order
    wanted: dict[bytes, tuple[list[bytes], list[bytes]] | None] = {}
    for sel in read.columns:
        if not isinstance(sel, ColumnSelector):
            raise TypeError(f"columns must be ColumnSelector, not {type(sel).__name__}")
        if sel.qualifier is None and not sel.prefix:  # a b"" prefix is the whole family
            wanted[sel.family] = None
            continue
        if sel.family not in wanted:
            wanted[sel.family] = ([], [])
        parts = wanted[sel.family]
        if parts is not None:
            if sel.qualifier is not None:
                parts[0].append(sel.qualifier)
            else:
                parts[1].append(sel.prefix)  # type: ignore[arg-type]

    if not any(parts is not None and parts[1] for parts in wanted.values()):
        columns: list[Any] = []
        for family, parts in wanted.items():
            if parts is None:
                columns.append(thrift2.TColumn(family))
            else:
                columns.extend(thrift2.TColumn(family, q) for q in dict.fromkeys(parts[0]))
        return columns, None, max_versions, time_range

    # Prefixes exist: HBase has no prefix column, so read whole families and filter the cells.
    columns = [thrift2.TColumn(family) for family in wanted]
    clauses = []
    for family, parts in wanted.items():
        clause = None  # the whole family
        if parts is not None:
            tests = [filters.qualifier_is(q) for q in dict.fromkeys(parts[0])]
            tests += [filters.column_prefix(p) for p in dict.fromkeys(parts[1])]
            clause = filters.any_of(*tests)
        if len(wanted) > 1:  # with one family (never whole here) the columns already restrict to it
            clause = filters.all_of(filters.family_is(family), clause)
        clauses.append(clause)
    filt = filters.any_of(*clauses)
    return columns, filt, max_versions, time_range
