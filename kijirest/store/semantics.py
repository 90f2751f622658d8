"""HBase's semantics, defined once for the stores that must reproduce them.

The memory and embedded stores keep cells themselves, so they must answer exactly as HBase would;
both take the rules from here, so they cannot drift apart (the HBase store gets them from HBase
itself). The rules (base.py, encodings.md §5):

- a read keeps, per column, the newest versions *inside* the time range and the family TTL that no
  delete marker hides, at most min(requested, family max_versions) of them (`plan_read` resolves
  the read against the table once, `visible_cells` applies it to one row);
- delete markers are data: a marker "at T" on a family (a row delete places one on every family) or
  on a column hides every version with ts <= T, also versions written later with an older ts; a
  prefix delete places a column marker on every qualifier under the prefix that the row holds, as
  HBase clients (Kiji included) do it: read the qualifiers, delete each column (`delete_targets`);
- counters are 8-byte big-endian longs that wrap like Java's long (`add_counter`);
- a row regex matches the whole key read as ISO-8859-1, DOTALL like HBase's RegexStringComparator
  (`compile_row_regex`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kijirest.primitives import INT64_MAX, INT64_MIN, UINT64_MASK
from kijirest.store.base import (
    FOREVER,
    Cell,
    ColumnSelector,
    FamilySpec,
    ReadOptions,
    StoreError,
    check_selectors,
)

# -- reads ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FamilyRead:
    """How one selected family is read: its qualifiers, oldest visible ts and version cap."""

    whole: bool  # every qualifier
    qualifiers: frozenset[bytes]
    prefixes: tuple[bytes, ...]
    low: int  # max(time range min, TTL cutoff)
    cap: int  # min(requested versions, family max_versions)

    def wants(self, qualifier: bytes) -> bool:
        if self.whole or qualifier in self.qualifiers:
            return True
        return any(qualifier.startswith(p) for p in self.prefixes)


@dataclass(slots=True)
class ReadPlan:
    """ReadOptions resolved against a table's families once per get or scan, not per row."""

    families: dict[bytes, FamilyRead]
    high: int  # time range max (exclusive)


def plan_read(table: str, families: dict[bytes, FamilySpec], read: ReadOptions, now: int) -> ReadPlan:
    """Resolve ReadOptions against the table's families at time `now` (for TTLs)."""
    if not isinstance(read, ReadOptions):
        raise TypeError(f"read must be ReadOptions, not {type(read).__name__}")
    tmin, tmax = read.time_range
    if type(tmin) is not int or type(tmax) is not int:
        raise TypeError("time_range bounds must be int")
    if tmin < 0 or tmax < tmin:
        raise ValueError(f"invalid time_range [{tmin}, {tmax}): need 0 <= min <= max")
    requested = read.max_versions
    if requested is not None and (type(requested) is not int or requested < 1):
        raise ValueError(f"max_versions must be None or a positive int, not {requested!r}")

    if read.columns is None:
        wanted: dict[bytes, list[ColumnSelector] | None] = dict.fromkeys(families)
    else:
        check_selectors(table, families, read.columns)
        wanted = {}
        for sel in read.columns:
            if sel.qualifier is None and sel.prefix is None:
                wanted[sel.family] = None
            elif sel.family not in wanted:
                wanted[sel.family] = [sel]
            elif wanted[sel.family] is not None:
                wanted[sel.family].append(sel)  # type: ignore[union-attr]

    plans: dict[bytes, FamilyRead] = {}
    for name, sels in wanted.items():
        spec = families[name]
        low = tmin
        if spec.ttl_seconds != FOREVER:
            low = max(low, now - spec.ttl_seconds * 1000)
        cap = spec.max_versions if requested is None else min(requested, spec.max_versions)
        if sels is None:
            plans[name] = FamilyRead(True, frozenset(), (), low, cap)
        else:
            quals = frozenset(s.qualifier for s in sels if s.qualifier is not None)
            prefixes = tuple(s.prefix for s in sels if s.prefix is not None)
            if b"" in prefixes:
                plans[name] = FamilyRead(True, frozenset(), (), low, cap)
            else:
                plans[name] = FamilyRead(False, quals, prefixes, low, cap)
    return ReadPlan(plans, tmax)


#: delete markers of one row: family -> T, (family, qualifier) -> T
Markers = tuple[dict[bytes, int], dict[tuple[bytes, bytes], int]]


def visible_cells(plan: ReadPlan, cells: Iterable[Cell], markers: Markers | None) -> list[Cell]:
    """The cells of one row a read returns; `cells` sorted by family, qualifier, ts newest first."""
    out: list[Cell] = []
    families = plan.families
    high = plan.high
    fam_marks, col_marks = markers if markers is not None else ({}, {})
    cur_fam = None
    fread: FamilyRead | None = None
    cur_qual = None
    wanted = False
    count = 0
    fam_mark = -1
    col_mark = -1
    for cell in cells:
        fam, qual, ts, _ = cell
        if fam != cur_fam:
            cur_fam = fam
            fread = families.get(fam)
            fam_mark = fam_marks.get(fam, -1)
            cur_qual = None
        if fread is None:
            continue
        if qual != cur_qual:
            cur_qual = qual
            wanted = fread.wants(qual)
            count = 0
            col_mark = max(fam_mark, col_marks.get((fam, qual), -1)) if col_marks else fam_mark
        if not wanted or count >= fread.cap or ts >= high or ts < fread.low or ts <= col_mark:
            continue
        count += 1
        out.append(cell)
    return out


# -- deletes ----------------------------------------------------------------------------------------


def delete_targets(
    families: dict[bytes, FamilySpec],
    stored: Iterable[bytes] | dict[bytes, Iterable[bytes]],
    columns: Sequence[ColumnSelector] | None,
) -> list[tuple[bytes, bytes | None]]:
    """Where a delete puts markers: (family, None) for a whole family, (family, qualifier) for a
    column. A prefix becomes one column marker per stored qualifier under it; `stored` maps
    family -> the row's stored qualifiers."""
    if columns is None:
        return [(f, None) for f in families]
    out: list[tuple[bytes, bytes | None]] = []
    for sel in columns:
        if sel.qualifier is not None:
            out.append((sel.family, sel.qualifier))
        elif sel.prefix is not None and sel.prefix:
            quals = stored.get(sel.family, ())  # type: ignore[union-attr]
            out.extend((sel.family, q) for q in list(quals) if q.startswith(sel.prefix))
        else:
            out.append((sel.family, None))
    return out


# -- counters and row regexes ----------------------------------------------------------------------


def compile_row_regex(pattern: str | None) -> re.Pattern[str] | None:
    """The row regex, DOTALL like HBase's RegexStringComparator; matched with fullmatch on latin-1."""
    if pattern is None:
        return None
    if pattern.endswith("\\z") and not pattern.endswith("\\\\z"):
        # Java's end-of-input `\z` (what HBase is sent) is spelled `\Z` in Python before 3.14
        pattern = pattern[:-2] + "\\Z"
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as e:
        raise ValueError(f"invalid row_regex {pattern!r}: {e}") from None


def counter_bytes(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


def add_counter(table: str, current: bytes | None, amount: int) -> tuple[int, bytes]:
    """The incremented counter (wrapping like Java's long) and its 8-byte big-endian cell value."""
    if type(amount) is not int:
        raise TypeError(f"increment amount must be int, not {type(amount).__name__}")
    if not INT64_MIN <= amount <= INT64_MAX:
        raise ValueError(f"increment amount {amount} does not fit in a signed 64-bit long")
    old = 0
    if current is not None:
        if len(current) != 8:
            raise StoreError(f"table {table!r}: counter cell is {len(current)} bytes wide, not 8")
        old = int.from_bytes(current, "big", signed=True)
    new = ((old + amount - INT64_MIN) & UINT64_MASK) + INT64_MIN
    return new, counter_bytes(new)
