"""Every store answers as HBase does (base.py, encodings.md §5). Runs once per store kind.

Expected answers come from HBase's rules, not from any implementation. Nothing here relies on
what HBase may prune at flush: no test reads more versions than its family keeps through a time
range that would reach pruned versions.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from async_store import AsyncStore

from kijirest.store.base import (
    LATEST,
    ColumnSelector,
    FamilySpec,
    ReadOptions,
    RowScanner,
    Scan,
    Store,
    StoreError,
    TableNotFound,
)
from kijirest.store.memory import MemoryStore
from kijirest.store.runner import COALESCE_WAVES

ALL = ReadOptions(max_versions=None)
HOUR_MS = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def be8(n: int) -> bytes:
    return n.to_bytes(8, "big", signed=True)


@pytest.fixture
def table(store: Store, table_name) -> str:
    """A table with families f (3 versions), g (1 version) and v (5 versions)."""
    name = table_name()
    assert store.create_table(
        name,
        [
            FamilySpec(b"f", max_versions=3),
            FamilySpec(b"g", max_versions=1),
            FamilySpec(b"v", max_versions=5),
        ],
    )
    return name


def scan_all(store: Store, table: str, scan: Scan | None = None) -> list:
    with store.scan(table, scan or Scan()) as scanner:
        return [row for batch in scanner for row in batch]


def keys_of(rows: list) -> list[bytes]:
    return [key for key, _ in rows]


# -- tables -------------------------------------------------------------------------------------


def test_create_list_families_delete(store: Store, table_name) -> None:
    name = table_name()
    families = [FamilySpec(b"a", max_versions=4), FamilySpec(b"b", ttl_seconds=86400)]
    assert store.create_table(name, families) is True
    assert name in store.list_tables()
    got = store.table_families(name)
    assert set(got) == {b"a", b"b"}
    assert (got[b"a"].max_versions, got[b"a"].ttl_seconds) == (4, 2147483647)
    assert (got[b"b"].max_versions, got[b"b"].ttl_seconds) == (1, 86400)

    assert store.create_table(name, [FamilySpec(b"other")]) is False
    assert set(store.table_families(name)) == {b"a", b"b"}  # unchanged

    store.put_row(name, b"r", [(b"a", b"q", 1000, b"x")])
    store.delete_table(name)
    assert name not in store.list_tables()
    with pytest.raises(TableNotFound):
        store.table_families(name)
    with pytest.raises(TableNotFound):
        store.get_rows(name, [b"r"])
    with pytest.raises(TableNotFound):
        store.put_row(name, b"r", [(b"a", b"q", 1000, b"x")])

    # a re-created table starts empty
    assert store.create_table(name, families) is True
    assert store.get_rows(name, [b"r"]) == [(b"r", [])]


def test_missing_table(store: Store, table_name) -> None:
    name = table_name()
    with pytest.raises(TableNotFound):
        store.delete_table(name)
    with pytest.raises(TableNotFound):
        store.scan(name, Scan()).close()


# -- put / get ----------------------------------------------------------------------------------


def test_put_get_cells_sorted(store: Store, table: str) -> None:
    store.put_row(
        table,
        b"row",
        [
            (b"g", b"x", 1000, b"gx"),
            (b"f", b"\xff", 1000, b"fff"),
            (b"f", b"", 1000, b"fempty"),
            (b"f", b"x", 1000, b"fx"),
            (b"f", b"\x00", 1000, b"f00"),
        ],
    )
    assert store.get_rows(table, [b"row"]) == [
        (
            b"row",
            [
                (b"f", b"", 1000, b"fempty"),
                (b"f", b"\x00", 1000, b"f00"),
                (b"f", b"x", 1000, b"fx"),
                (b"f", b"\xff", 1000, b"fff"),
                (b"g", b"x", 1000, b"gx"),
            ],
        )
    ]


def test_put_mixed_timestamps_is_one_row(store: Store, table: str) -> None:
    store.put_row(
        table,
        b"r",
        [
            (b"f", b"q", 1000, b"v1"),
            (b"f", b"q", 3000, b"v3"),
            (b"f", b"q", 2000, b"v2"),
            (b"g", b"q", 500, b"g"),
        ],
    )
    assert store.get_rows(table, [b"r"], ALL) == [
        (
            b"r",
            [
                (b"f", b"q", 3000, b"v3"),
                (b"f", b"q", 2000, b"v2"),
                (b"f", b"q", 1000, b"v1"),
                (b"g", b"q", 500, b"g"),
            ],
        )
    ]


def test_same_timestamp_keeps_later_value(store: Store, table: str) -> None:
    store.put_row(table, b"r", [(b"f", b"q", 1000, b"old")])
    store.put_row(table, b"r", [(b"f", b"q", 1000, b"new")])
    assert store.get_rows(table, [b"r"], ALL) == [(b"r", [(b"f", b"q", 1000, b"new")])]


def test_get_rows_order_duplicates_missing(store: Store, table: str) -> None:
    for key in (b"a", b"b", b"c"):
        store.put_row(table, key, [(b"g", b"q", 1000, key)])
    got = store.get_rows(table, [b"c", b"missing", b"a", b"c", b"b"])
    assert got == [
        (b"c", [(b"g", b"q", 1000, b"c")]),
        (b"missing", []),
        (b"a", [(b"g", b"q", 1000, b"a")]),
        (b"c", [(b"g", b"q", 1000, b"c")]),
        (b"b", [(b"g", b"q", 1000, b"b")]),
    ]
    assert store.get_rows(table, []) == []


def test_put_unknown_family_writes_nothing(store: Store, table: str) -> None:
    with pytest.raises(StoreError):
        store.put_row(table, b"r", [(b"f", b"q", 1000, b"ok"), (b"nope", b"q", 1000, b"bad")])
    assert store.get_rows(table, [b"r"]) == [(b"r", [])]


# -- key order and scans ------------------------------------------------------------------------

BINARY_KEYS = [b"\xff", b"a", b"\x80", b"ab", b"\x00", b"a\x00", b"\x7f", b"\x00\x00", b"b"]
BINARY_ORDER = [b"\x00", b"\x00\x00", b"a", b"a\x00", b"ab", b"b", b"\x7f", b"\x80", b"\xff"]


def test_binary_key_order(store: Store, table: str) -> None:
    for key in BINARY_KEYS:
        store.put_row(table, key, [(b"g", b"q", 1000, key)])
    rows = scan_all(store, table)
    assert keys_of(rows) == BINARY_ORDER
    assert all(cells == [(b"g", b"q", 1000, key)] for key, cells in rows)


@pytest.mark.parametrize(
    ("start", "stop", "expected"),
    [
        (b"", None, BINARY_ORDER),
        (b"", b"", BINARY_ORDER),  # an empty stop row is an open end, as in HBase
        (b"a\x00", b"\x80", [b"a\x00", b"ab", b"b", b"\x7f"]),  # start inclusive, stop exclusive
        (b"\x00\x01", b"b\x00", [b"a", b"a\x00", b"ab", b"b"]),  # bounds that are no keys
        (b"a", None, [b"a", b"a\x00", b"ab", b"b", b"\x7f", b"\x80", b"\xff"]),
        (b"", b"\x80", [b"\x00", b"\x00\x00", b"a", b"a\x00", b"ab", b"b", b"\x7f"]),
        (b"\x7f", b"\x80", [b"\x7f"]),
        (b"\x80", None, [b"\x80", b"\xff"]),
        (b"a\x00", b"a\x00", []),
        (b"c", b"d", []),
    ],
)
def test_scan_range(
    store: Store, table: str, start: bytes, stop: bytes | None, expected: list[bytes]
) -> None:
    for key in BINARY_KEYS:
        store.put_row(table, key, [(b"g", b"q", 1000, key)])
    assert keys_of(scan_all(store, table, Scan(start=start, stop=stop))) == expected


@pytest.mark.parametrize(
    ("regex", "expected"),
    [
        (r"k.a", [b"k\x00a", b"k\na", b"kxa"]),  # '.' matches NUL and newline (DOTALL)
        (r"k\x00a", [b"k\x00a"]),
        (r"k\na", [b"k\na"]),
        (r"k", []),  # the whole key must match
        (r"x.*", []),
        (r"k.*|other", [b"k\x00a", b"k\na", b"kxa", b"other"]),
        (r"[^\n]*", [b"k\x00a", b"kxa", b"other"]),
    ],
)
def test_scan_row_regex(store: Store, table: str, regex: str, expected: list[bytes]) -> None:
    for key in (b"k\x00a", b"k\na", b"kxa", b"other"):
        store.put_row(table, key, [(b"g", b"q", 1000, b"v")])
    assert keys_of(scan_all(store, table, Scan(row_regex=regex))) == expected


def test_scan_regex_with_range_and_small_batches(store: Store, table: str) -> None:
    for i in range(30):
        store.put_row(table, b"r%02d" % i, [(b"g", b"q", 1000, b"v")])
    rows = scan_all(store, table, Scan(start=b"r05", stop=b"r25", row_regex=r"r.[05]", batch_size=2))
    assert keys_of(rows) == [b"r05", b"r10", b"r15", b"r20"]


def test_scan_batch_size(store: Store, table: str) -> None:
    keys = [b"row%03d" % i for i in range(25)]
    for key in keys:
        store.put_row(table, key, [(b"g", b"q", 1000, key)])
    with store.scan(table, Scan(batch_size=7)) as scanner:
        batches = list(scanner)
    assert all(1 <= len(b) <= 7 for b in batches)
    assert [key for b in batches for key, _ in b] == keys


def test_put_rows_writes_every_row(store: Store, table: str) -> None:
    rows = [(b"p%02d" % i, [(b"g", b"q", 1000 + i, b"v%d" % i), (b"g", b"r", 5, b"w")]) for i in range(12)]
    store.put_rows(table, rows)
    got = scan_all(store, table)
    assert [(key, cells) for key, cells in got] == [
        (key, sorted(cells, key=lambda c: (c[0], c[1], -c[2]))) for key, cells in rows
    ]


def test_scan_first_batch_small_then_growing(store: Store, table: str) -> None:
    keys = [b"row%03d" % i for i in range(90)]
    for key in keys:
        store.put_row(table, key, [(b"g", b"q", 1000, key)])
    with store.scan(table, Scan(batch_size=50, first_batch_size=1)) as scanner:
        batches = list(scanner)
    assert [len(b) for b in batches] == [1, 8, 50, 31]
    assert [key for b in batches for key, _ in b] == keys


def test_scanner_close_midway(store: Store, table: str) -> None:
    for i in range(20):
        store.put_row(table, b"r%02d" % i, [(b"g", b"q", 1000, b"v")])
    scanner = store.scan(table, Scan(batch_size=3))
    first = next(iter(scanner))
    assert keys_of(first) == [b"r00", b"r01", b"r02"]
    scanner.close()
    # the store is fine afterwards: writes and new scans see everything
    store.put_row(table, b"r99", [(b"g", b"q", 1000, b"v")])
    assert len(scan_all(store, table)) == 21


def test_scan_skips_rows_without_selected_cells(store: Store, table: str) -> None:
    store.put_row(table, b"a", [(b"f", b"q", 1000, b"fa")])
    store.put_row(table, b"b", [(b"g", b"q", 1000, b"gb")])
    store.put_row(table, b"c", [(b"f", b"q", 1000, b"fc"), (b"g", b"q", 1000, b"gc")])
    rows = scan_all(store, table, Scan(read=ReadOptions(columns=(ColumnSelector(b"f"),))))
    assert rows == [(b"a", [(b"f", b"q", 1000, b"fa")]), (b"c", [(b"f", b"q", 1000, b"fc")])]
    rows = scan_all(store, table, Scan(read=ReadOptions(time_range=(2000, 3000))))
    assert rows == []


# -- column selection ---------------------------------------------------------------------------


@pytest.fixture
def wide_row(store: Store, table: str) -> str:
    store.put_row(
        table,
        b"r",
        [
            (b"f", b"a", 1000, b"fa"),
            (b"f", b"pa", 1000, b"fpa"),
            (b"f", b"pb", 1000, b"fpb"),
            (b"f", b"p\xff", 1000, b"fpff"),
            (b"f", b"q", 1000, b"fq"),
            (b"g", b"a", 1000, b"ga"),
            (b"g", b"pa", 1000, b"gpa"),
            (b"v", b"x", 1000, b"vx"),
        ],
    )
    return table


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ((ColumnSelector(b"g"),), [(b"g", b"a"), (b"g", b"pa")]),
        ((ColumnSelector(b"f", qualifier=b"pb"),), [(b"f", b"pb")]),
        ((ColumnSelector(b"f", qualifier=b"p"),), []),
        ((ColumnSelector(b"f", prefix=b"p"),), [(b"f", b"pa"), (b"f", b"pb"), (b"f", b"p\xff")]),
        ((ColumnSelector(b"f", prefix=b"p\xff"),), [(b"f", b"p\xff")]),
        (
            (ColumnSelector(b"f", qualifier=b"a"), ColumnSelector(b"f", prefix=b"pb"), ColumnSelector(b"v")),
            [(b"f", b"a"), (b"f", b"pb"), (b"v", b"x")],
        ),
        (
            (ColumnSelector(b"g", prefix=b"p"), ColumnSelector(b"f", qualifier=b"q")),
            [(b"f", b"q"), (b"g", b"pa")],
        ),
        ((ColumnSelector(b"g", qualifier=b"a"), ColumnSelector(b"g")), [(b"g", b"a"), (b"g", b"pa")]),
    ],
)
def test_column_selectors(store: Store, wide_row: str, columns, expected) -> None:
    read = ReadOptions(columns=columns)
    [(_, cells)] = store.get_rows(wide_row, [b"r"], read)
    assert [(f, q) for f, q, _, _ in cells] == expected
    scanned = scan_all(store, wide_row, Scan(read=read))
    assert scanned == ([(b"r", cells)] if expected else [])


# -- versions, time ranges, retention -------------------------------------------------------------


@pytest.fixture
def versions(store: Store, table: str) -> str:
    """Row r: v:q at 1000..5000 (family v keeps 5), and g:q at 1000 and 2000 (family g keeps 1)."""
    store.put_row(table, b"r", [(b"v", b"q", ts, b"v%d" % ts) for ts in (1000, 2000, 3000, 4000, 5000)])
    store.put_row(table, b"r", [(b"g", b"q", 1000, b"g1")])
    store.put_row(table, b"r", [(b"g", b"q", 2000, b"g2")])
    return table


def _ts(rows, family: bytes = b"v") -> list[int]:
    [(_, cells)] = rows
    return [ts for f, _, ts, _ in cells if f == family]


@pytest.mark.parametrize(
    ("max_versions", "time_range", "expected"),
    [
        (1, (0, 2**63 - 1), [5000]),
        (2, (0, 2**63 - 1), [5000, 4000]),
        (None, (0, 2**63 - 1), [5000, 4000, 3000, 2000, 1000]),
        (10, (0, 2**63 - 1), [5000, 4000, 3000, 2000, 1000]),
        (1, (2000, 4000), [3000]),  # newest inside the range, not the newest overall
        (2, (1000, 4000), [3000, 2000]),  # counted after the time filter
        (None, (2000, 4001), [4000, 3000, 2000]),  # min inclusive, max exclusive
        (None, (3000, 3000), []),
        (None, (5001, 9000), []),
        (1, (0, 1000), []),
    ],
)
def test_versions_and_time_range(store: Store, versions: str, max_versions, time_range, expected) -> None:
    read = ReadOptions(columns=(ColumnSelector(b"v"),), max_versions=max_versions, time_range=time_range)
    rows = store.get_rows(versions, [b"r"], read)
    assert _ts(rows) == expected
    scanned = scan_all(store, versions, Scan(read=read))
    assert scanned == (rows if expected else [])


def test_values_follow_versions(store: Store, versions: str) -> None:
    read = ReadOptions(columns=(ColumnSelector(b"v", qualifier=b"q"),), max_versions=2, time_range=(0, 5000))
    assert store.get_rows(versions, [b"r"], read) == [
        (b"r", [(b"v", b"q", 4000, b"v4000"), (b"v", b"q", 3000, b"v3000")])
    ]


def test_family_max_versions_caps_reads(store: Store, versions: str) -> None:
    # g keeps one version: asking for all still returns only the newest
    rows = store.get_rows(versions, [b"r"], ReadOptions(columns=(ColumnSelector(b"g"),), max_versions=None))
    assert rows == [(b"r", [(b"g", b"q", 2000, b"g2")])]
    store.put_row(versions, b"s", [(b"f", b"q", ts, b"x") for ts in (1000, 2000, 3000, 4000)])
    rows = store.get_rows(versions, [b"s"], ALL)
    assert _ts(rows, b"f") == [4000, 3000, 2000]


def test_ttl_hides_old_cells(store: Store, table_name) -> None:
    name = table_name()
    store.create_table(name, [FamilySpec(b"t", max_versions=3, ttl_seconds=1), FamilySpec(b"k")])
    now = now_ms()
    store.put_row(name, b"old", [(b"t", b"q", 1000, b"old"), (b"k", b"q", 1000, b"kept")])
    store.put_row(name, b"new", [(b"t", b"q", now + HOUR_MS, b"new"), (b"t", b"q", 1000, b"old")])
    assert store.get_rows(name, [b"old"]) == [(b"old", [(b"k", b"q", 1000, b"kept")])]
    assert store.get_rows(name, [b"new"], ALL) == [(b"new", [(b"t", b"q", now + HOUR_MS, b"new")])]
    read = ReadOptions(columns=(ColumnSelector(b"t"),), max_versions=None)
    assert scan_all(store, name, Scan(read=read)) == [(b"new", [(b"t", b"q", now + HOUR_MS, b"new")])]


# -- increments ---------------------------------------------------------------------------------


def test_increment(store: Store, table: str) -> None:
    assert store.increment(table, b"r", b"g", b"n", 5) == 5
    assert store.increment(table, b"r", b"g", b"n", -8) == -3
    [(_, [(family, qualifier, ts, value)])] = store.get_rows(table, [b"r"])
    assert (family, qualifier, value) == (b"g", b"n", be8(-3))
    assert abs(ts - now_ms()) < 60_000  # written at the store's clock

    store.put_row(table, b"s", [(b"g", b"n", 1000, be8(40))])  # a counter set is a plain put
    assert store.increment(table, b"s", b"g", b"n", 2) == 42
    assert store.get_rows(table, [b"s"])[0][1][0][3] == be8(42)
    assert store.increment(table, b"s", b"g", b"other", 0) == 0


def test_increment_after_a_future_version_writes_a_newer_one(store: Store, table: str) -> None:
    future = now_ms() + HOUR_MS
    store.put_row(table, b"r", [(b"g", b"n", future, be8(40))])
    assert store.increment(table, b"r", b"g", b"n", 2) == 42
    [(_, [(_, _, ts, value)])] = store.get_rows(table, [b"r"])
    assert value == be8(42) and ts > future  # the increment is the newest version
    assert store.increment(table, b"r", b"g", b"n", 1) == 43


def test_concurrent_increments_sum_exactly(store: Store, table: str) -> None:
    threads, each = 8, 25

    def work() -> None:
        for _ in range(each):
            store.increment(table, b"c", b"f", b"n", 1)

    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(work) for _ in range(threads)]:
            f.result()
    [(_, cells)] = store.get_rows(table, [b"c"])
    assert cells[0][3] == be8(threads * each)
    assert store.increment(table, b"c", b"f", b"n", 0) == threads * each


# -- deletes --------------------------------------------------------------------------------------


@pytest.fixture
def full_row(store: Store, table: str) -> str:
    """Row r: f:a and f:pa, f:pb at 1000, 2000, 3000; g:a at 2000."""
    cells = [(b"f", q, ts, b"%s@%d" % (q, ts)) for q in (b"a", b"pa", b"pb") for ts in (1000, 2000, 3000)]
    store.put_row(table, b"r", [*cells, (b"g", b"a", 2000, b"g")])
    store.put_row(table, b"other", [(b"g", b"a", 2000, b"o")])
    return table


def _columns(store: Store, table: str, key: bytes = b"r") -> list[tuple[bytes, bytes, int]]:
    """The row's (family, qualifier, ts) triples, all versions; a scan must agree with the get."""
    [(_, cells)] = store.get_rows(table, [key], ALL)
    scanned = scan_all(store, table, Scan(start=key, stop=key + b"\x00", read=ALL))
    assert scanned == ([(key, cells)] if cells else [])
    return [(f, q, ts) for f, q, ts, _ in cells]


def test_delete_row(store: Store, full_row: str) -> None:
    store.delete(full_row, b"r")
    assert store.get_rows(full_row, [b"r"], ALL) == [(b"r", [])]
    assert keys_of(scan_all(store, full_row)) == [b"other"]


def test_delete_row_at_timestamp(store: Store, full_row: str) -> None:
    store.delete(full_row, b"r", timestamp=2000)
    assert _columns(store, full_row) == [(b"f", b"a", 3000), (b"f", b"pa", 3000), (b"f", b"pb", 3000)]


def test_delete_family(store: Store, full_row: str) -> None:
    store.delete(full_row, b"r", [ColumnSelector(b"f")])
    assert _columns(store, full_row) == [(b"g", b"a", 2000)]


def test_delete_family_at_timestamp(store: Store, full_row: str) -> None:
    store.delete(full_row, b"r", [ColumnSelector(b"f")], timestamp=1000)
    assert _columns(store, full_row) == [
        (b"f", b"a", 3000),
        (b"f", b"a", 2000),
        (b"f", b"pa", 3000),
        (b"f", b"pa", 2000),
        (b"f", b"pb", 3000),
        (b"f", b"pb", 2000),
        (b"g", b"a", 2000),
    ]


def test_delete_columns(store: Store, full_row: str) -> None:
    store.delete(
        full_row, b"r", [ColumnSelector(b"f", qualifier=b"pa"), ColumnSelector(b"g", qualifier=b"a")]
    )
    assert _columns(store, full_row) == [
        (b"f", b"a", 3000),
        (b"f", b"a", 2000),
        (b"f", b"a", 1000),
        (b"f", b"pb", 3000),
        (b"f", b"pb", 2000),
        (b"f", b"pb", 1000),
    ]


def test_delete_column_at_timestamp(store: Store, full_row: str) -> None:
    store.delete(full_row, b"r", [ColumnSelector(b"f", qualifier=b"a")], timestamp=2000)
    assert [c for c in _columns(store, full_row) if c[1] == b"a"] == [(b"f", b"a", 3000), (b"g", b"a", 2000)]


def test_delete_prefix(store: Store, full_row: str) -> None:
    store.delete(full_row, b"r", [ColumnSelector(b"f", prefix=b"p")])
    assert _columns(store, full_row) == [
        (b"f", b"a", 3000),
        (b"f", b"a", 2000),
        (b"f", b"a", 1000),
        (b"g", b"a", 2000),
    ]


def test_delete_prefix_at_timestamp(store: Store, full_row: str) -> None:
    store.delete(full_row, b"r", [ColumnSelector(b"f", prefix=b"p")], timestamp=2000)
    assert [c for c in _columns(store, full_row) if c[1].startswith(b"p")] == [
        (b"f", b"pa", 3000),
        (b"f", b"pb", 3000),
    ]


def test_delete_missing_row_is_fine(store: Store, table: str) -> None:
    store.delete(table, b"never-written")
    assert store.get_rows(table, [b"never-written"]) == [(b"never-written", [])]


@pytest.mark.parametrize(
    "columns",
    [
        None,
        [ColumnSelector(b"f")],
        [ColumnSelector(b"f", qualifier=b"pa")],
        [ColumnSelector(b"f", prefix=b"p")],
    ],
    ids=["row", "family", "column", "prefix"],
)
def test_delete_marker_hides_later_put_with_older_timestamp(store: Store, full_row: str, columns) -> None:
    store.delete(full_row, b"r", columns, timestamp=2500)
    store.put_row(full_row, b"r", [(b"f", b"pa", 1500, b"late-but-old"), (b"f", b"pa", 2500, b"at-marker")])
    store.put_row(full_row, b"r", [(b"f", b"pa", 2600, b"newer")])
    [(_, cells)] = store.get_rows(
        full_row, [b"r"], ReadOptions(columns=(ColumnSelector(b"f", qualifier=b"pa"),), max_versions=None)
    )
    assert cells == [(b"f", b"pa", 3000, b"pa@3000"), (b"f", b"pa", 2600, b"newer")]


def test_older_delete_does_not_weaken_a_newer_one(store: Store, full_row: str) -> None:
    column = [ColumnSelector(b"f", qualifier=b"a")]
    store.delete(full_row, b"r", column, timestamp=2000)
    store.delete(full_row, b"r", column, timestamp=1000)
    store.put_row(full_row, b"r", [(b"f", b"a", 1500, b"hidden")])
    assert [c for c in _columns(store, full_row) if c[:2] == (b"f", b"a")] == [(b"f", b"a", 3000)]


@pytest.mark.parametrize(
    ("time_range", "expected"),
    [
        ((0, LATEST), [(b"f", b"a", 3000), (b"f", b"pb", 3000), (b"g", b"a", 2000)]),
        ((0, 2700), [(b"f", b"pb", 2000), (b"g", b"a", 2000)]),
        ((0, 2000), []),  # f:a's newest stored version in range (1500) is hidden, and so is all else
    ],
    ids=["latest", "until-2700", "until-2000"],
)
def test_latest_only_reads_skip_hidden_versions(store: Store, full_row: str, time_range, expected) -> None:
    """The newest visible version of each column in the time range, markers applied (a store may
    pick newest versions itself: it must still honour the markers)."""
    store.delete(full_row, b"r", [ColumnSelector(b"f", qualifier=b"a")], timestamp=2000)
    store.delete(full_row, b"r", [ColumnSelector(b"f", qualifier=b"pa")], timestamp=3000)
    store.put_row(full_row, b"r", [(b"f", b"a", 1500, b"hidden"), (b"f", b"pa", 2600, b"hidden too")])
    store.put_row(full_row, b"r", [(b"f", b"pb", 1000, b"replaced")])
    store.delete(full_row, b"r", [ColumnSelector(b"f", qualifier=b"pb")], timestamp=1000)
    store.put_row(full_row, b"r", [(b"f", b"pb", 900, b"old, hidden")])
    read = ReadOptions(max_versions=1, time_range=time_range)
    for scan in (Scan(read=read), Scan(read=read, batch_size=1)):
        scanned = dict(scan_all(store, full_row, scan)).get(b"r", [])
        [(_, got)] = store.get_rows(full_row, [b"r"], read)
        assert scanned == got
        assert [(f, q, ts) for f, q, ts, _ in got] == expected


def test_scan_applies_delete_markers_across_batches(store: Store, table: str) -> None:
    for i in range(10):
        store.put_row(table, b"r%d" % i, [(b"f", b"a", 1000, b"x"), (b"f", b"b", 1000, b"y")])
    for i in (1, 2, 3, 7):
        store.delete(table, b"r%d" % i)
    store.delete(table, b"r5", [ColumnSelector(b"f", qualifier=b"a")])
    rows = scan_all(store, table, Scan(batch_size=2))
    assert keys_of(rows) == [b"r0", b"r4", b"r5", b"r6", b"r8", b"r9"]
    assert dict(rows)[b"r5"] == [(b"f", b"b", 1000, b"y")]


def test_delete_without_timestamp_uses_store_clock(store: Store, table: str) -> None:
    future = now_ms() + HOUR_MS
    store.put_row(table, b"r", [(b"f", b"q", 1000, b"past"), (b"f", b"q", future, b"future")])
    store.delete(table, b"r")
    assert store.get_rows(table, [b"r"], ALL) == [(b"r", [(b"f", b"q", future, b"future")])]
    # the marker (at the delete's clock) also hides a past version written afterwards
    store.put_row(table, b"r", [(b"f", b"q", 2000, b"written-after-delete")])
    assert store.get_rows(table, [b"r"], ALL) == [(b"r", [(b"f", b"q", future, b"future")])]
    store.delete(table, b"r", [ColumnSelector(b"f", qualifier=b"q")])
    assert store.get_rows(table, [b"r"], ALL) == [(b"r", [(b"f", b"q", future, b"future")])]


# -- AsyncStore ---------------------------------------------------------------------------------


async def test_async_store_basics(store: Store, table: str, table_name) -> None:
    with ThreadPoolExecutor(2) as pool:
        runner = AsyncStore(store, pool)
        for i in range(10):
            await runner.put_row(table, b"r%d" % i, [(b"g", b"q", 1000, b"v%d" % i)])
        assert await runner.get_rows(table, [b"r3", b"zz"]) == [
            (b"r3", [(b"g", b"q", 1000, b"v3")]),
            (b"zz", []),
        ]
        assert await runner.increment(table, b"c", b"g", b"n", 7) == 7
        await runner.delete(table, b"c")
        assert await runner.get_rows(table, [b"c"]) == [(b"c", [])]
        assert table in await runner.list_tables()
        assert set(await runner.table_families(table)) == {b"f", b"g", b"v"}

        scanner = await runner.scan(table, Scan(batch_size=4))
        keys = [key async for batch in scanner for key, _ in batch]
        assert keys == [b"r%d" % i for i in range(10)]

        async with await runner.scan(table, Scan(batch_size=3)) as scanner:
            first = await scanner.__anext__()
        assert keys_of(first) == [b"r0", b"r1", b"r2"]
        with pytest.raises(StopAsyncIteration):
            await scanner.__anext__()  # closed: nothing more

        name = table_name()
        assert await runner.create_table(name, [FamilySpec(b"f")]) is True
        await runner.delete_table(name)


class _RecordingStore(Store):
    """A blocking store forwarding to another one and recording the threads it is called in."""

    blocking = True

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.threads: set[int] = set()

    def _seen(self) -> Store:
        self.threads.add(threading.get_ident())
        return self.inner

    def create_table(self, table, families):
        return self._seen().create_table(table, families)

    def list_tables(self):
        return self._seen().list_tables()

    def table_families(self, table):
        return self._seen().table_families(table)

    def delete_table(self, table):
        return self._seen().delete_table(table)

    def put_row(self, table, key, cells):
        return self._seen().put_row(table, key, cells)

    def increment(self, table, key, family, qualifier, amount):
        return self._seen().increment(table, key, family, qualifier, amount)

    def delete(self, table, key, columns=None, timestamp=None):
        return self._seen().delete(table, key, columns, timestamp)

    def get_rows(self, table, keys, read=ALL):
        return self._seen().get_rows(table, keys, read)

    def scan(self, table, scan):
        return self._seen().scan(table, scan)


async def test_async_store_runs_blocking_stores_off_the_loop(store: Store, table: str) -> None:
    recording = _RecordingStore(store)
    with ThreadPoolExecutor(2) as pool:
        runner = AsyncStore(recording, pool)
        await runner.put_row(table, b"r", [(b"g", b"q", 1000, b"v")])
        scanner = await runner.scan(table, Scan())
        assert [b async for b in scanner] == [[(b"r", [(b"g", b"q", 1000, b"v")])]]
        assert await runner.get_rows(table, [b"r"], ReadOptions()) == [(b"r", [(b"g", b"q", 1000, b"v")])]
    assert recording.threads
    assert threading.get_ident() not in recording.threads


async def test_async_store_close_closes_store_and_own_pool(embedded: Store, table_name) -> None:
    runner = AsyncStore(embedded)
    name = table_name()
    assert await runner.create_table(name, [FamilySpec(b"f")])
    await runner.close()
    with pytest.raises(StoreError):
        embedded.put_row(name, b"r", [(b"f", b"q", 1000, b"v")])


class _SlowScanner(RowScanner):
    """Each batch takes a while; records the order of fetch ends and close."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def __iter__(self):
        for i in range(3):
            time.sleep(0.2)
            self.events.append(f"batch{i}")
            yield [(b"r%d" % i, [(b"f", b"q", 1, b"v")])]

    def close(self) -> None:
        self.events.append("close")


async def test_async_scanner_close_waits_for_a_cancelled_fetch() -> None:
    events: list[str] = []
    memory = MemoryStore()

    class Slow(_RecordingStore):
        def scan(self, table, scan):
            return _SlowScanner(events)

    with ThreadPoolExecutor(2) as pool:
        runner = AsyncStore(Slow(memory), pool)
        scanner = await runner.scan("t", Scan())
        fetch = asyncio.ensure_future(scanner.__anext__())
        await asyncio.sleep(0.05)
        fetch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fetch
        await scanner.aclose()
    assert events == ["batch0", "close"]


def test_empty_column_list_is_refused(store: Store, table: str) -> None:
    store.put_row(table, b"r", [(b"f", b"q", 1000, b"v")])
    with pytest.raises(ValueError):
        store.get_rows(table, [b"r"], ReadOptions(columns=()))
    with pytest.raises(ValueError):
        store.delete(table, b"r", [])
    assert store.get_rows(table, [b"r"]) == [(b"r", [(b"f", b"q", 1000, b"v")])]


async def test_async_point_gets_arriving_together_share_store_calls(store: Store, table: str) -> None:
    calls: list[list[bytes]] = []
    in_flight = [0, 0]  # now, most
    lock = threading.Lock()

    class Counting(_RecordingStore):
        def get_rows(self, table, keys, read=ALL):
            with lock:
                calls.append(list(keys))
                in_flight[0] += 1
                in_flight[1] = max(in_flight)
            time.sleep(0.02)  # a round trip: gets arriving meanwhile queue for the next call
            try:
                return self.inner.get_rows(table, keys, read)
            finally:
                with lock:
                    in_flight[0] -= 1

    for i in range(30):
        store.put_row(table, b"r%02d" % i, [(b"g", b"q", 1000, b"v%d" % i)])
    with ThreadPoolExecutor(4) as pool:
        runner = AsyncStore(Counting(store), pool)
        wanted = [[b"r%02d" % i] for i in range(30)] + [[b"r05", b"nope", b"r05"]]
        answers = await asyncio.gather(*(runner.get_rows(table, keys) for keys in wanted))
    for keys, rows in zip(wanted, answers, strict=True):
        assert [key for key, _ in rows] == keys  # each caller gets its own rows, in its order
        assert [cells for key, cells in rows if key != b"nope"] == [
            [(b"g", b"q", 1000, b"v%d" % int(key[1:]))] for key in keys if key != b"nope"
        ]
    assert len(calls) <= 2 * COALESCE_WAVES  # 31 gets, a few round trips
    assert in_flight[1] == COALESCE_WAVES  # side by side, up to the cap (the wrapper is blocking)
    assert sorted(k for c in calls for k in c) == sorted(k for keys in wanted for k in keys)


async def test_async_point_get_failure_reaches_every_waiter(store: Store, table: str) -> None:
    with ThreadPoolExecutor(2) as pool:
        runner = AsyncStore(_RecordingStore(store), pool)
        results = await asyncio.gather(
            *(runner.get_rows("no_such_table_x", [b"r%d" % i]) for i in range(5)), return_exceptions=True
        )
    assert all(isinstance(r, StoreError) for r in results), results
