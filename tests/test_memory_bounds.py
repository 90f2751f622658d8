"""Memory bounds (issue "Holds under abuse and faults", item 4): rows per POST, large bodies parsed
incrementally with the same answers as small ones, streams in flight and their shared buffer."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from typing import Any

import orjson
import pytest

from kijirest.json_rows import MAX_DEPTH, MalformedJson, RowSplitter
from kijirest.settings import Settings, SettingsError, load_config
from kijirest.state import STREAMS
from kijirest.store.base import RowScanner, Scan
from kijirest.streams import MIN_BATCH_ROWS, StreamGate

JSON_BODY = {"Content-Type": "application/json"}


def str_row(entity: str, value: str = "x", ts: int = 5) -> dict[str, Any]:
    return {"entityId": [entity], "cells": {"v": {"str": [{"timestamp": ts, "value": value}]}}}


async def post_raw(api, table: str, body: bytes, headers: dict[str, str] | None = None):
    headers = {**JSON_BODY, **(headers or {})}
    return await api.request("POST", api.rows_path(table), data=body, headers=headers)


async def scan_all(api, table: str = "kinds") -> list[Any]:
    return (await api.rows(table, {"limit": "-1", "versions": "all"})).rows


def padding(size: int) -> str:
    """A value that makes a body larger than the small-body threshold (256 KiB)."""
    return "p" * size


# -- max_rows_per_post --------------------------------------------------------------------------------


async def test_a_small_body_over_max_rows_is_413_and_writes_nothing(make_api) -> None:
    api = await make_api(max_rows_per_post=5)
    body = [str_row(f"r{i}") for i in range(6)]
    problem = (await api.post("kinds", body)).problem(413, "body")
    assert "more than 5 rows" in problem["detail"] and "max_rows_per_post" in problem["detail"]
    assert await scan_all(api) == []
    assert (await api.post("kinds", body[:5])).status == 200  # exactly the limit is taken
    assert len(await scan_all(api)) == 5


async def test_a_large_body_over_max_rows_is_413_at_the_row_after_the_limit(make_api) -> None:
    """Refused at row max+1: a broken row after it is never reached, nothing is written."""
    api = await make_api(max_rows_per_post=3)
    rows = [orjson.dumps(str_row(f"r{i}", padding(100_000))) for i in range(4)]
    body = b"[" + b",".join(rows) + b', {"entityId": 5}, ' + b"[" * 5000  # broken after row 4
    assert len(body) > 256 * 1024
    problem = (await post_raw(api, "kinds", body)).problem(413, "body")
    assert "more than 3 rows" in problem["detail"]
    assert await scan_all(api) == []
    ok = b"[" + b",".join(rows[:3]) + b"]"
    assert (await post_raw(api, "kinds", ok)).status == 200
    assert len(await scan_all(api)) == 3


async def test_two_million_empty_rows_are_refused_without_parsing_them_all(make_api, monkeypatch) -> None:
    """The finding: 2.1 million empty rows (60 MB) took 1.7-1.9 GB, parsed whole. Here 2 million
    rows (38 MB) are refused at row 10,001: only the bytes up to there are ever parsed."""
    import kijirest.views.common as common

    parsed = []
    real = common._plan_step

    def step(splitter: Any, planner: Any, data: bytes | None, *keep: Any) -> bool:
        parsed.append(len(data or b""))
        return real(splitter, planner, data, *keep)

    monkeypatch.setattr(common, "_plan_step", step)
    api = await make_api()  # default max_rows_per_post: 10,000
    row = b'{"entityId":["e"]},'
    body = b"[" + row * 2_000_000 + b'{"entityId":["e"]}]'
    answer = await post_raw(api, "kinds", body)
    assert "more than 10000 rows" in answer.problem(413, "body")["detail"]
    assert 10_001 * len(row) < sum(parsed) < 10_001 * len(row) + 2 * common.STEP_BYTES + 300_000
    assert await scan_all(api) == []


# -- the incremental path gives the answers of the small path -------------------------------------


@pytest.fixture
def both_paths(make_api, monkeypatch):
    """`await both_paths()`: two apps on memory stores, one reading every body whole with orjson,
    one reading every body incrementally (the 256 KiB threshold moved to 0 or to 1 GB)."""
    import kijirest.views.common as common

    async def make() -> tuple[Any, Any]:
        return await make_api(), await make_api()

    def route(small: Any, large: Any) -> Any:
        async def post(body: bytes) -> tuple[Any, Any]:
            monkeypatch.setattr(common, "SMALL_BODY_BYTES", 1 << 30)
            a = await post_raw(small, "kinds", body)
            monkeypatch.setattr(common, "SMALL_BODY_BYTES", 0)
            b = await post_raw(large, "kinds", body)
            return a, b

        return post

    async def start() -> tuple[Any, Any, Any]:
        small, large = await make()
        return small, large, route(small, large)

    return start


def every_kind(i: int) -> dict[str, Any]:
    return {
        "entityId": [f"k{i}"],
        "cells": {
            "v": {
                "str": [
                    {"timestamp": 3, "value": f"s{i} é \u2603 \U0001f600"},
                    {"timestamp": 1, "value": ""},
                ],
                "long": [{"timestamp": 2, "value": -(2**63)}],
                "dbl": [{"timestamp": 2, "value": 1.5e300}],
                "bool": [{"timestamp": 2, "value": True}],
                "opt": [{"timestamp": 2, "value": None}],
                "rec": [{"timestamp": 2, "value": {"id": {"long": i}, "name": None}}],
                "color": [{"timestamp": 2, "value": "GREEN"}],
                "map": [{"timestamp": 2, "value": {"a": 1, "b": 2}}],
                "arr": [{"timestamp": 2, "value": ["x", "y"]}],
                "final": [{"timestamp": 2, "value": "f"}],
                "hits": [{"timestamp": 2, "value": 7}],
                "free": [
                    {"timestamp": 2, "value": [1, 2], "writer_schema": {"type": "array", "items": "long"}}
                ],
            },
            "m": {"q:1": [{"timestamp": 4, "value": "mv"}]},
        },
    }


@pytest.mark.parametrize("shape", ["array", "object"])
async def test_a_body_read_incrementally_writes_what_the_small_path_writes(both_paths, shape) -> None:
    small, large, post = await both_paths()
    document: Any = [every_kind(i) for i in range(40)] if shape == "array" else every_kind(0)
    a, b = await post(orjson.dumps(document))
    assert a.status == b.status == 200, (a.body[:300], b.body[:300])
    assert a.json() == b.json()  # the same targets, in the same order
    rows = await scan_all(small)
    assert rows and rows == await scan_all(large)


async def test_a_real_large_body_is_read_incrementally_and_writes_every_row(make_api, monkeypatch) -> None:
    import kijirest.views.common as common

    seen = []
    real = common._plan_step
    monkeypatch.setattr(common, "_plan_step", lambda *args: seen.append(1) or real(*args))
    api = await make_api()
    body = [str_row(f"big{i}", padding(3000) + str(i)) for i in range(200)]
    data = orjson.dumps(body)
    assert len(data) > 256 * 1024
    answer = await post_raw(api, "kinds", data)
    assert answer.status == 200, answer.body[:300]
    assert seen  # planned step by step
    rows = await scan_all(api)
    assert sorted(r["cells"]["v"]["str"][0]["value"] for r in rows) == sorted(
        r["cells"]["v"]["str"][0]["value"] for r in body
    )


BAD_BODIES = [
    [str_row("a"), {"entityId": ["b"], "cells": {"nope": {}}}],
    [str_row("a"), {"entityId": ["b"], "cells": {"v": {"nope": [{"value": 1}]}}}],
    [str_row("a"), {"entityId": ["b"], "cells": {"v": {"long": [{"value": "x"}]}}}],
    [str_row("a"), str_row("b"), {"entityId": ["c"], "cells": {"v": {"str": [{"value": "x", "ts": 1}]}}}],
    [{"cells": {}}],
    [str_row("a"), 5],
    [str_row("a"), {"entityId": ["b"], "extra": 1}],
    [{"entityId": [1]}],
    [{"entityId": ["a"], "cells": {"v": {"str": [{"value": "x", "timestamp": -1}]}}}],
    [{"entityId": ["a"], "cells": {"v": {"hits": [{"value": {"incr": 1.5}}]}}}],
    [{"entityId": ["a"], "cells": {"v": {"free": [{"value": 1, "writer_schema": {"type": "nope"}}]}}}],
    [{"entityId": ["a"], "cells": {"v": {"color": [{"value": "PURPLE"}]}}}],
    [{"entityId": ["a"], "cells": {"v": {"str": "notalist"}}}],
    {"entityId": ["a"], "cells": {"v": {"str": [{"value": 1}]}}},
    {"entityId": ["a"], "cells": {"v": {"str": [{}]}}},
    "rows",
    17,
    None,
    [[]],
]


@pytest.mark.parametrize("document", BAD_BODIES, ids=range(len(BAD_BODIES)))
async def test_errors_name_the_same_place_on_both_paths(both_paths, document) -> None:
    small, large, post = await both_paths()
    a, b = await post(orjson.dumps(document))
    pa, pb = a.problem(400), b.problem(400)
    assert pa["detail"] == pb["detail"]
    assert await scan_all(small) == [] and await scan_all(large) == []


@pytest.mark.parametrize(
    "body",
    [
        b"[",
        b'[{"entityId": ["a"]}',
        b'[{"entityId": ["a"]}] x',
        b'[{"entityId": ["a"]},]',
        b"",
        b"   ",
        b"[NaN]",
        b'["\\ud800"]',
        b'[{"entityId": ["\\udc00"]}]',
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
        b'["\xff"]',
        b"\xef\xbb\xbf[]",
    ],
)
async def test_malformed_bodies_are_400_on_both_paths(both_paths, body) -> None:
    _, _, post = await both_paths()
    a, b = await post(body)
    for answer in (a, b):
        assert "malformed JSON" in answer.problem(400, "body")["detail"]


async def test_a_deeply_nested_body_costs_little_memory(make_api) -> None:
    """ijson's `items` keeps a prefix string per level (200 KB of `[` allocated 18 GB): the
    splitter builds values from events and stops at orjson's 1,024 levels."""
    from kijirest.views.common import STEP_BYTES

    splitter = RowSplitter()
    tracemalloc.start()
    try:
        with pytest.raises(MalformedJson, match="deeper than 1024"):
            for _ in range(4):
                splitter.feed(b"[" * STEP_BYTES)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, peak
    api = await make_api()
    (await post_raw(api, "kinds", b"[" * 300_000)).problem(400, "body")


def test_the_splitter_gives_orjson_values_at_every_chunk_boundary() -> None:
    body = orjson.dumps(
        [
            {"a": "x\\ud83d\u00e9\U0001f600\\\\u", "b": [1, -2, 3.5, 1e-7, True, None, {}, []]},
            "\\\\ud800",
            {"k": {"k": {"k": [[["deep"]]]}}},
            -0.0,
        ]
    )
    expected = orjson.loads(body)
    for step in range(1, 40):
        splitter = RowSplitter()
        out = []
        for i in range(0, len(body), step):
            out += splitter.feed(body[i : i + step])
        out += splitter.close()
        assert splitter.in_array and out == expected, step


@pytest.mark.parametrize("step", [1, 2, 5, 7, 11, 1000])
@pytest.mark.parametrize(
    "text,ok",
    [
        (b'"\\ud83d\\ude00"', True),
        (b'"\\ud800"', False),
        (b'"\\udc00x"', False),
        (b'"\\\\ud800"', True),  # an escaped backslash, then the text ud800
        (b'"\\\\\\ud800"', False),
        (b'"\\ud83d\\u0041"', False),
        (b'"a\\ud83d\\ude00\\ud83d\\ude00b"', True),
    ],
)
def test_lone_surrogate_escapes_are_refused_as_orjson_refuses_them(text, ok, step) -> None:
    body = b"[" + text + b"]"
    try:
        expected = orjson.loads(body)
    except orjson.JSONDecodeError:
        expected = None
    assert (expected is not None) == ok
    splitter = RowSplitter()
    try:
        out = []
        for i in range(0, len(body), step):
            out += splitter.feed(body[i : i + step])
        out += splitter.close()
    except MalformedJson:
        out = None
    assert out == expected


async def test_a_chunked_body_past_max_body_size_is_413(make_api) -> None:
    api = await make_api(max_body_size=400_000)

    async def chunks():
        yield b"["
        for i in range(100):
            yield orjson.dumps(str_row(f"c{i}", padding(10_000))) + b","
        yield b"1]"

    answer = await api.request("POST", api.rows_path("kinds"), data=chunks(), headers=JSON_BODY)
    answer.problem(413, "body")
    assert await scan_all(api) == []


# -- max_streams and the stream buffer ----------------------------------------------------------------


class HeldStore:
    """A store whose scans wait for `release` before their first batch (in a pool thread: the
    store is made blocking), so streams stay in flight as long as a test wants."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.release = threading.Event()
        self.release.set()  # the catalog scans the schema table at start-up
        self.batches: list[int] = []
        self.blocking = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def scan(self, table: str, scan: Scan) -> Any:
        inner = self._store.scan(table, scan)
        held = self

        class Scanner(RowScanner):
            def __iter__(self):
                if not held.release.wait(30):
                    raise TimeoutError("the test never released the scan")
                for batch in inner:
                    held.batches.append(len(batch))
                    yield batch

            def close(self) -> None:
                inner.close()

        return Scanner()


async def fill(api, count: int) -> None:
    rows = [str_row(f"s{i:04d}", f"v{i}") for i in range(count)]
    assert (await api.post("kinds", rows)).status == 200


async def test_a_scan_past_max_streams_is_503_with_retry_after_and_the_others_complete(make_api) -> None:
    held: list[HeldStore] = []
    api = await make_api(max_streams=2, wrap=lambda s: held.append(HeldStore(s)) or held[0])
    store = held[0]
    store.release.set()
    await fill(api, 300)
    store.release.clear()
    gate = api.client.app[STREAMS]
    streams = [asyncio.ensure_future(api.rows("kinds", {"limit": "-1"})) for _ in range(2)]
    for _ in range(200):
        if gate.open == 2:
            break
        await asyncio.sleep(0.01)
    assert gate.open == 2
    refused = await api.rows("kinds", {"limit": "-1"})
    problem = refused.problem(503, "streams")
    assert "max_streams" in problem["detail"]
    assert refused.headers["Retry-After"] == "1"
    point = await api.rows("kinds", {"eid": '["s0001"]'})  # point reads are not counted
    assert [r["cells"]["v"]["str"][0]["value"] for r in point.rows] == ["v1"]
    store.release.set()
    for answer in await asyncio.gather(*streams):
        assert len(answer.rows) == 300
    assert gate.open == 0
    assert len((await api.rows("kinds", {"limit": "-1"})).rows) == 300


async def test_streams_leave_the_count_whatever_ends_them(make_api) -> None:
    api = await make_api(max_streams=1)
    await fill(api, 50)
    gate = api.client.app[STREAMS]
    assert (await api.request("HEAD", api.rows_path("kinds"))).status == 200
    assert len((await api.rows("kinds", {"limit": "10"})).rows) == 10
    assert (await api.rows("kinds", {"limit": "0"})).rows == []
    async with api.client.get(api.rows_path("kinds") + "?limit=-1") as resp:  # left after one chunk
        await resp.content.readany()
    for _ in range(100):
        if gate.open == 0:
            break
        await asyncio.sleep(0.01)
    assert gate.open == 0
    assert len((await api.rows("kinds", {"limit": "-1"})).rows) == 50


async def test_a_small_stream_buffer_makes_small_batches_and_every_row_still_comes(make_api) -> None:
    held: list[HeldStore] = []
    api = await make_api(stream_buffer_bytes=1, wrap=lambda s: held.append(HeldStore(s)) or held[0])
    store = held[0]
    store.release.set()
    await fill(api, 200)
    store.batches.clear()
    rows = (await api.rows("kinds", {"limit": "-1"})).rows
    assert [r["entityId"] for r in rows] == [[f"s{i:04d}"] for i in range(200)] or len(rows) == 200
    assert store.batches and max(store.batches) <= MIN_BATCH_ROWS
    assert sum(store.batches) == 200
    store.batches.clear()
    big = await make_api(wrap=lambda s: held.append(HeldStore(s)) or held[-1])
    held[-1].release.set()
    await fill(big, 200)
    held[-1].batches.clear()
    assert len((await big.rows("kinds", {"limit": "-1"})).rows) == 200
    assert max(held[-1].batches) > MIN_BATCH_ROWS  # the default budget keeps large batches


def test_the_gate_shares_its_budget() -> None:
    gate = StreamGate(max_streams=3, buffer_bytes=10_000_000)
    gate.enter()
    assert gate.batch_rows(500, 1000) == 1000 and gate.may_prefetch(500, 1000)
    assert gate.flush_bytes() == 64 * 1024
    for _ in range(2):
        gate.enter()
    share = 10_000_000 / 3  # 1,333 rows of 1,000 JSON bytes (x2.5 in objects): one batch, no prefetch
    assert gate.batch_rows(1000, 1000) == 1000 and not gate.may_prefetch(1000, 1000)
    assert gate.batch_rows(5000, 1000) == 256  # 266 rows fit: a power of two below
    assert gate.batch_rows(10**9, 1000) == MIN_BATCH_ROWS
    assert gate.flush_bytes() <= max(4096, share)
    from kijirest.problems import Busy

    with pytest.raises(Busy) as refused:
        gate.enter()
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
    gate.leave()
    gate.enter()
    assert gate.open == 3


def test_a_batch_cap_is_asked_before_every_batch() -> None:
    cap = [1000]
    sizes = Scan(batch_size=1000, first_batch_size=1, batch_cap=lambda: cap[0]).batch_sizes()
    assert [next(sizes) for _ in range(4)] == [1, 8, 64, 512]
    cap[0] = 16
    assert next(sizes) == 16
    cap[0] = 1000
    assert next(sizes) == 1000


def test_the_settings_take_the_bounds(tmp_path) -> None:
    assert Settings().max_rows_per_post == 10_000 and Settings().max_streams == 256
    config = tmp_path / "c.yaml"
    config.write_text("max_rows_per_post: 5\nmax_streams: 7\nstream_buffer_bytes: 1000000\n")
    settings = load_config(config)
    assert (settings.max_rows_per_post, settings.max_streams, settings.stream_buffer_bytes) == (5, 7, 10**6)
    for name in ("max_rows_per_post", "max_streams", "stream_buffer_bytes"):
        config.write_text(f"{name}: 0\n")
        with pytest.raises(SettingsError, match=name):
            load_config(config)
        config.write_text(f"{name}: true\n")
        with pytest.raises(SettingsError, match=name):
            load_config(config)


async def test_integers_past_64_bits_take_a_second_exact_parse(both_paths) -> None:
    """yajl refuses -2**63 (Long.MIN_VALUE) and anything past 64 bits: such a body is parsed again
    by ijson's Python backend, so both paths take Long.MIN_VALUE and refuse a long of 30 digits at
    the same place."""
    small, large, post = await both_paths()
    lowest = {"entityId": ["b"], "cells": {"v": {"long": [{"timestamp": 1, "value": -(2**63)}]}}}
    body = [str_row("a"), lowest]
    a, b = await post(orjson.dumps(body))
    assert a.status == b.status == 200, b.body[:300]
    assert await scan_all(small) == await scan_all(large)
    bad = b'[{"entityId": ["c"], "cells": {"v": {"long": [{"value": 123456789012345678901234567890}]}}}]'
    a, b = await post(bad)
    a.problem(400, "[0].cells.v.long[0].value")
    b.problem(400, "[0].cells.v.long[0].value")


async def test_the_end_of_a_burst_of_streams_trims_the_heap(make_api, monkeypatch) -> None:
    import kijirest.streams as streams

    trimmed = []
    monkeypatch.setattr(streams, "MALLOC_TRIM", trimmed.append)
    monkeypatch.setattr(streams, "TRIM_AFTER_STREAMS", 3)
    held: list[HeldStore] = []
    api = await make_api(wrap=lambda s: held.append(HeldStore(s)) or held[0])
    await fill(api, 20)
    gate = api.client.app[STREAMS]
    assert len((await api.rows("kinds", {"limit": "-1"})).rows) == 20
    await asyncio.sleep(0.05)
    assert trimmed == []  # one stream is no burst
    held[0].release.clear()
    streams_ = [asyncio.ensure_future(api.rows("kinds", {"limit": "-1"})) for _ in range(3)]
    for _ in range(200):
        if gate.open == 3:
            break
        await asyncio.sleep(0.01)
    held[0].release.set()
    assert all(len(a.rows) == 20 for a in await asyncio.gather(*streams_))
    for _ in range(100):
        if trimmed:
            break
        await asyncio.sleep(0.01)
    assert trimmed == [0] and gate.trims == 1


async def test_a_large_post_is_written_in_slices_and_every_row_lands(make_api, monkeypatch) -> None:
    """Rows go to the store in batches of WRITE_BATCH_BYTES of cells, each row's planned cells
    dropped once built, so a large POST never holds its cells twice; each row stays atomic."""
    import kijirest.writer as writer

    monkeypatch.setattr(writer, "WRITE_BATCH_BYTES", 1000)
    calls: list[int] = []

    class Counting(HeldStore):
        def put_rows(self, table: str, rows: Any) -> None:
            calls.append(len(rows))
            self._store.put_rows(table, rows)

    api = await make_api(wrap=Counting)
    calls.clear()
    body = [str_row(f"w{i:03d}", padding(300) + str(i)) for i in range(20)]
    assert (await api.post("kinds", body)).status == 200
    assert len(calls) >= 5 and sum(calls) == 20
    rows = await scan_all(api)
    assert sorted(r["cells"]["v"]["str"][0]["value"] for r in rows) == sorted(
        r["cells"]["v"]["str"][0]["value"] for r in body
    )
