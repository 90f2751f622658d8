"""The benchmark's own pieces: its data set as the gateway serves it, its client's stream parsers,
its profile summary. (The measurements themselves are `python -m bench`, not tests.)"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import data
from bench.client import _Lines, _RestRows
from bench.procs import profile_summary
from kijirest.store.embedded import EmbeddedStore

ROWS = 24


def expected_cells(i: int, versions: tuple[int, ...], uids: dict[str, int]) -> dict[str, Any]:
    """The `cells` of row i as api.md renders them (records in Avro JSON, nested unions wrapped)."""
    out: dict[str, dict[str, list]] = {}
    for v in sorted(versions, reverse=True):
        for family, qualifier, value in data.row_values(i, v):
            writer = uids["long"] if qualifier == "score" else uids["record"] if qualifier == "profile" else 0
            cell = {"timestamp": data.VERSION_TS[v], "value": value, "writer_schema": writer}
            out.setdefault(family, {}).setdefault(qualifier, []).append(cell)
    return out


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """An embedded store holding the data set's first ROWS rows, loaded as the bench loads it."""
    path = tmp_path / "embedded"
    path.mkdir()
    store = EmbeddedStore(str(path))
    try:
        table = data.open_bench_catalog(store).instances[data.INSTANCE].tables[data.TABLE]
        encoder = data.RowEncoder(table)
        data.load_embedded(store, encoder, path, ROWS, chunk=10)
        record = table.column_names.cell_spec("info", "profile")
        uids = {"long": 3, "record": table.schemas.lookup(table.codec(record).reader).uid}
    finally:
        store.close()
    return path, uids


@pytest.fixture
async def bench_api(aiohttp_client: Any, loaded: tuple[Path, dict[str, int]]) -> Any:
    from kijirest.app import init_app
    from kijirest.settings import Settings

    path, _ = loaded
    app = await init_app(Settings(layouts=str(data.LAYOUTS), store=f"embedded:{path}"))
    return await aiohttp_client(app)


def rows_of(body: bytes) -> list[dict]:
    return [orjson.loads(line) for line in body.split(b"\r\n") if line]


async def test_loaded_rows_read_back_as_the_data_set_says(bench_api: Any, loaded: Any) -> None:
    path, uids = loaded
    assert data.embedded_loaded_rows(path) == ROWS
    assert uids["record"] >= 8  # the first user schema gets id 8 (encodings.md §4)
    resp = await bench_api.get(
        f"/v1/instances/{data.INSTANCE}/tables/{data.TABLE}/rows", params={"limit": "-1"}
    )
    assert resp.status == 200
    rows = rows_of(await resp.read())
    assert len(rows) == ROWS
    by_seq = {row["entityId"][1]: row for row in rows}
    assert sorted(by_seq) == list(range(ROWS))
    for i, row in by_seq.items():
        assert row["entityId"] == data.entity_id(i)
        assert row["cells"] == expected_cells(i, (2,), uids)


async def test_versions_scan_returns_the_three_versions_newest_first(bench_api: Any, loaded: Any) -> None:
    _, uids = loaded
    tmin, tmax = data.VERSION_TS[0], data.VERSION_TS[-1] + 1
    resp = await bench_api.get(
        f"/v1/instances/{data.INSTANCE}/tables/{data.TABLE}/rows",
        params={"limit": "-1", "versions": "all", "timerange": f"{tmin}..{tmax}"},
    )
    rows = rows_of(await resp.read())
    assert len(rows) == ROWS
    for row in rows:
        i = row["entityId"][1]
        assert row["cells"] == expected_cells(i, (0, 1, 2), uids)


async def test_selective_wildcard_finds_only_the_picked_row(bench_api: Any, loaded: Any) -> None:
    path, _ = loaded
    store = EmbeddedStore(str(path))
    try:
        encoder = data.RowEncoder(data.open_bench_catalog(store).instances[data.INSTANCE].tables[data.TABLE])
        target = data.key_order_pick(encoder, ROWS, 0.95)
        keys = sorted(encoder.key(i) for i in range(ROWS))
    finally:
        store.close()
    assert keys.index(encoder.key(target)) == int(ROWS * 0.95)
    eid = orjson.dumps([[], target]).decode()
    resp = await bench_api.get(f"/v1/instances/{data.INSTANCE}/tables/{data.TABLE}/rows", params={"eid": eid})
    assert [row["entityId"] for row in rows_of(await resp.read())] == [data.entity_id(target)]


async def test_posted_rows_hold_the_cells_the_loader_writes(bench_api: Any, loaded: Any) -> None:
    """The write measurement's POST bodies and the loader write the same cells."""
    _, uids = loaded
    body = orjson.dumps([data.post_row(i) for i in range(5)])
    resp = await bench_api.post(
        f"/v1/instances/{data.INSTANCE}/tables/{data.WRITE_TABLE}/rows",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 200, await resp.text()
    resp = await bench_api.get(
        f"/v1/instances/{data.INSTANCE}/tables/{data.WRITE_TABLE}/rows", params={"limit": "-1"}
    )
    rows = rows_of(await resp.read())
    assert {row["entityId"][1] for row in rows} == set(range(5))
    for row in rows:
        assert row["cells"] == expected_cells(row["entityId"][1], (2,), uids)


def feed_in_pieces(parser: Any, payload: bytes, size: int) -> None:
    for start in range(0, len(payload), size):
        parser.feed(payload[start : start + size])


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_stream_parser_counts_rows_and_cells_across_chunk_boundaries(size: int) -> None:
    rows = [
        {
            "entityId": ["a", 1],
            "cells": {"f": {"q": [{"timestamp": 1, "value": "x\r\ny", "writer_schema": 0}]}},
        },
        {"entityId": ["b", 2], "cells": {"f": {"q": [{"timestamp": 2, "value": 1, "writer_schema": 3}] * 3}}},
    ]
    payload = b"".join(orjson.dumps(r) + b"\r\n" for r in rows)
    parser = _Lines()
    parser.count_cells = True
    feed_in_pieces(parser, payload, size)
    assert (parser.rows, parser.cells, parser.error) == (2, 4, None)


def test_stream_parser_reports_the_error_tail() -> None:
    parser = _Lines()
    payload = orjson.dumps({"entityId": ["a"], "cells": {}}) + b"\r\n"
    payload += orjson.dumps({"error": {"status": 503, "title": "Service Unavailable"}}) + b"\r\n"
    parser.feed(payload)
    assert parser.rows == 1
    assert parser.error == {"status": 503, "title": "Service Unavailable"}


@pytest.mark.parametrize("size", [1, 5, 333, 100_000])
def test_rest_parser_cuts_rows_out_of_the_cellset_document(size: int) -> None:
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    doc = {
        "Row": [
            {
                "key": b64(b"\x00\x01row%d" % n),
                "Cell": [
                    {"column": b64(b"B:B%d" % c), "timestamp": 1600000002000, "$": b64(b"]}" * c)}
                    for c in range(n + 1)
                ],
            }
            for n in range(4)
        ]
    }
    parser = _RestRows()
    feed_in_pieces(parser, orjson.dumps(doc), size)
    assert (parser.rows, parser.cells) == (4, 1 + 2 + 3 + 4)


def test_profile_summary_ranks_frames_by_share_of_samples(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    pool = (
        'process 1:"python";thread (2);_bootstrap (threading.py:1);_worker (concurrent/futures/thread.py:83)'
    )
    raw.write_text(
        'process 1:"python";thread (1);main (kijirest/cli.py:10);cells (kijirest/reader.py:150) 6\n'
        'process 1:"python";thread (1);main (kijirest/cli.py:10);dumps (kijirest/streaming.py:70) 2\n'
        f"{pool};read (thriftpy2/thrift.py:188) 2\n"
    )
    summary = profile_summary(raw)
    assert summary["samples"] == 10
    assert summary["threads"] == {"event loop": 80.0, "store pool": 20.0}
    assert summary["self"][0] == ("cells (kijirest/reader.py)", 60.0)
    assert ("main (kijirest/cli.py)", 80.0) in summary["inclusive"]
