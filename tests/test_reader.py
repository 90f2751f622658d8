"""RowReader: stored cells in whatever order a store hands them over -> the api.md row (families and
qualifiers sorted by name, versions newest first as given)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from kijirest.catalog import open_catalog
from kijirest.store.base import ReadOptions, Scan
from kijirest.store.memory import MemoryStore
from kijirest.writer import apply_writes, plan_writes

LAYOUTS = Path(__file__).parent / "data" / "api_layouts"


@pytest.fixture(scope="module")
def stored_row() -> tuple:
    """One row of `docs` (families declared info, extra, tags; info's columns label, count) as the
    memory store keeps it, and its table context."""
    store = MemoryStore()
    table = open_catalog(store, str(LAYOUTS), ("api",)).instances["api"].tables["docs"]
    body = {
        "entityId": ["k", None, None, None, None],
        "cells": {
            "tags": {q: [{"value": q, "timestamp": 5}] for q in ("b", "é", "a:z", "B")},
            "info": {
                "label": [{"value": f"L{t}", "timestamp": t} for t in (1, 2)],
                "count": [{"value": 7, "timestamp": 3}],
            },
            "extra": {"note": [{"value": "N", "timestamp": 4}]},
        },
    }
    apply_writes(store, table, plan_writes(table, body))
    with store.scan(table.hbase_name, Scan(read=ReadOptions(max_versions=None))) as scanner:
        [[row]] = list(scanner)
    return row, table


EXPECTED_FAMILIES = ["extra", "info", "tags"]
EXPECTED_TAGS = ["B", "a:z", "b", "é"]


def _check(row: dict) -> None:
    cells = row["cells"]
    assert list(cells) == EXPECTED_FAMILIES
    assert list(cells["info"]) == ["count", "label"]
    assert list(cells["tags"]) == EXPECTED_TAGS
    assert [v["value"] for v in cells["info"]["label"]] == ["L2", "L1"]
    assert cells["tags"]["é"] == [{"timestamp": 5, "value": "é", "writer_schema": 0}]
    assert cells["extra"]["note"][0]["value"] == "N"


def test_store_order_comes_out_sorted(stored_row: tuple) -> None:
    (key, cells), table = stored_row
    _check(table.reader.row((key, cells)))


def test_any_column_order_comes_out_sorted(stored_row: tuple) -> None:
    """Runs of a column's versions in any order of the columns, a family split in two runs too."""
    (key, cells), table = stored_row
    reader = table.reader
    runs = [list(group) for _, group in itertools.groupby(cells, key=lambda c: (c[0], c[1]))]
    assert len(runs) == 7
    rng = random.Random(5)
    for _ in range(200):
        rng.shuffle(runs)
        _check(reader.row((key, [cell for run in runs for cell in run])))
