"""The HTTP client of the benchmark, run in its own process: `python -m bench.client '<json job>'`.

It prints one JSON object (the measurement) on stdout. Jobs:
- `stream`: GET a row stream; split on `\\r\\n`, parse every line with orjson (a client that uses
  the rows); optional `read_rate` (bytes/s, the slow client) and `max_seconds`;
- `rest_scan`: GET an HBase REST stateless scan as JSON; rows are cut out of the one big
  `{"Row": [...]}` document as they arrive, parsed with orjson, and key, columns and values are
  base64-decoded (what a REST client must do to see the bytes);
- `gets`: point GETs at a concurrency, with latencies (`format` "kiji" or "rest"); with
  `max_seconds`, the URLs are requested round and round for that long;
- `interleaved_gets`: point GETs against several gateways in short turns (bench/auth.py);
- `posts`: POST bodies at a concurrency;
- several `streams` at once (`parallel`), for aggregate throughput;
- `many_streams`: `count` streams of one URL opened at once (bench/memory.py), with the status
  of each and the rows each read;
- `big_post`: one large POST body built here (`rows` rows, a `value_bytes` string each, or
  empty rows), while `/v1/version` is asked every `probe_ms` on another connection: the POST's
  answer and the probe's latencies (bench/memory.py).

`stream` and `gets` jobs may carry `headers` (bench/auth.py sends `Authorization` with them).
"""

from __future__ import annotations

import asyncio
import binascii
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

CHUNK = 1 << 16
#: every request asks for an uncompressed answer (HBase REST would gzip for aiohttp's default
#: Accept-Encoding; the gateway does not compress)
_SEP = b"\r\n"
_ROW_END = b"]}"  # base64, digits and the fixed member names never hold "]}": it ends a REST row


def _b64(text: str) -> bytes:
    return binascii.a2b_base64(text)


def _rest_row(doc: dict) -> int:
    """Decode one REST row (key, columns, values) as a client must; returns its cell count."""
    _b64(doc["key"])
    cells = doc.get("Cell", ())
    for cell in cells:
        _b64(cell["column"])
        _b64(cell["$"])
    return len(cells)


class _Lines:
    """Incremental `\\r\\n` row splitter + parser (the gateway's stream)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.rows = 0
        self.cells = 0
        self.error: Any = None
        self.count_cells = False

    def feed(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        start = 0
        find = buf.find
        loads = orjson.loads
        while True:
            end = find(_SEP, start)
            if end < 0:
                break
            row = loads(memoryview(buf)[start:end])
            start = end + 2
            if "error" in row and "cells" not in row:
                self.error = row["error"]
                continue
            self.rows += 1
            if self.count_cells:
                for family in row["cells"].values():
                    for versions in family.values():
                        self.cells += len(versions)
        if start:
            del buf[:start]


class _RestRows:
    """Incremental splitter + parser of a REST `{"Row":[{...},{...}]}` JSON document."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.rows = 0
        self.cells = 0
        self.started = False
        self.error: Any = None

    def feed(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        if not self.started:
            head = buf.find(b"[")
            if head < 0:
                return
            pos = head + 1
            self.started = True
        loads = orjson.loads
        while True:
            while pos < len(buf) and buf[pos] in b", \n":
                pos += 1
            if pos >= len(buf) or buf[pos] == 0x5D:  # "]": end of the Row array
                break
            end = buf.find(_ROW_END, pos)
            if end < 0:
                break
            self.cells += _rest_row(loads(memoryview(buf)[pos : end + 2]))
            self.rows += 1
            pos = end + 2
        if pos:
            del buf[:pos]


async def _stream(session: aiohttp.ClientSession, job: dict) -> dict:
    url = job["url"]
    parser: Any = _RestRows() if job.get("kind") == "rest_scan" else _Lines()
    if isinstance(parser, _Lines):
        parser.count_cells = bool(job.get("count_cells"))
    rate = job.get("read_rate")
    max_seconds = job.get("max_seconds")
    headers = {"Accept": "application/json", "Accept-Encoding": "identity", **job.get("headers", {})}
    nbytes = 0
    first_row = None
    series = []
    t0 = time.perf_counter()
    truncated = False
    async with session.get(url, headers=headers) as resp:
        status = resp.status
        if status != 200:
            body = await resp.read()
            return {"error": f"HTTP {status}: {body[:300]!r}", "url": url}
        headers_s = time.perf_counter() - t0
        next_mark = 1.0
        while True:
            if rate:
                data = await resp.content.read(min(CHUNK, max(1024, int(rate / 10))))
            else:
                data = await resp.content.readany()
            if not data:
                break
            nbytes += len(data)
            parser.feed(data)
            now = time.perf_counter() - t0
            if first_row is None and parser.rows:
                first_row = now
            if now >= next_mark:
                series.append((round(now, 2), nbytes, parser.rows))
                next_mark += 1.0
            if max_seconds is not None and now >= max_seconds:
                truncated = True
                break
            if rate:
                ahead = nbytes / rate - now
                if ahead > 0:
                    await asyncio.sleep(ahead)
        if truncated:
            resp.close()
    seconds = time.perf_counter() - t0
    out = {
        "rows": parser.rows,
        "cells": parser.cells,
        "bytes": nbytes,
        "seconds": seconds,
        "headers_s": headers_s,
        "first_row_s": first_row,
        "rows_per_s": parser.rows / seconds if seconds > 0 else 0.0,
        "truncated": truncated,
    }
    if parser.error is not None:
        out["error"] = parser.error
    if rate or job.get("series"):
        out["series"] = series
    return out


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def _timed(
    items: list,
    concurrency: int,
    request: Callable[[Any], Awaitable[str | None]],
    max_seconds: float | None = None,
) -> tuple[list[float], list[str], float]:
    """`request(item)` for every item, `concurrency` at a time: (sorted latencies of the requests
    that succeeded, the errors they returned, wall seconds). With `max_seconds`, the items are
    taken round and round until that time is up (no new request starts after it)."""
    latencies: list[float] = []
    errors: list[str] = []
    next_index = 0
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items) or deadline is not None:
            if deadline is not None and time.perf_counter() >= deadline:
                return
            item = items[next_index % len(items)]
            next_index += 1
            t = time.perf_counter()
            error = await request(item)
            if error is None:
                latencies.append(time.perf_counter() - t)
            else:
                errors.append(error)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    latencies.sort()
    return latencies, errors, seconds


async def _gets(session: aiohttp.ClientSession, job: dict) -> dict:
    rest = job.get("format") == "rest"
    headers = {"Accept": "application/json", "Accept-Encoding": "identity", **job.get("headers", {})}

    async def get(url: str) -> str | None:
        async with session.get(url, headers=headers) as resp:
            body = await resp.read()
            status = resp.status
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        doc = orjson.loads(body)
        if rest:
            for row in doc["Row"]:
                _rest_row(row)
        elif not doc:
            return "empty answer"
        return None

    latencies, errors, seconds = await _timed(job["urls"], job["concurrency"], get, job.get("max_seconds"))
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": seconds,
        "per_s": len(latencies) / seconds if seconds > 0 else 0.0,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


async def _interleaved_gets(session: aiohttp.ClientSession, job: dict) -> dict:
    """Point GETs against several gateways in turns: `rounds` rounds, each sending `batch` requests
    at `concurrency` to every side in a rotating order. A burst of load from another process then
    falls on every side alike (a turn lasts a fraction of a second), where separate runs of seconds
    each would catch it on one side only. Returns each side's requests/s per round."""
    sides = job["sides"]  # name → {"urls": [...], "headers": {...}}
    names = list(sides)
    base = {"Accept": "application/json", "Accept-Encoding": "identity"}
    batch = job["batch"]
    position = dict.fromkeys(names, 0)
    rates: dict[str, list[float]] = {name: [] for name in names}
    errors: list[str] = []

    for r in range(job["rounds"]):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            side = sides[name]
            urls = side["urls"]
            headers = {**base, **side.get("headers", {})}
            start = position[name]
            items = [urls[(start + k) % len(urls)] for k in range(batch)]
            position[name] = start + batch

            async def get(url: str, headers: dict = headers) -> str | None:
                async with session.get(url, headers=headers) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        return f"HTTP {resp.status}: {body[:200]!r}"
                    return None if orjson.loads(body) else "empty answer"

            latencies, errs, seconds = await _timed(items, job["concurrency"], get)
            errors += errs
            rates[name].append(len(latencies) / seconds if seconds > 0 else 0.0)
    return {
        "rates": rates,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


async def _posts(session: aiohttp.ClientSession, job: dict) -> dict:
    url = job["url"]
    bodies = [b.encode() if isinstance(b, str) else b for b in job["bodies"]]
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Accept-Encoding": "identity",
    }

    async def post(body: bytes) -> str | None:
        async with session.post(url, data=body, headers=headers) as resp:
            answer = await resp.read()
            return None if resp.status == 200 else f"HTTP {resp.status}: {answer[:300]!r}"

    latencies, errors, seconds = await _timed(bodies, job.get("concurrency", 1), post)
    rows = len(latencies) * job["rows_per_body"]
    return {
        "rows": rows,
        "posts": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": seconds,
        "rows_per_s": rows / seconds if seconds > 0 else 0.0,
        "p50_ms": _percentile(latencies, 50) * 1000,
    }


async def _many_streams(session: aiohttp.ClientSession, job: dict) -> dict:
    url = job["url"]
    statuses: dict[int, int] = {}
    rows: list[int] = []
    retry_after: set[str] = set()
    started = asyncio.Event()
    opened = 0

    async def one() -> None:
        nonlocal opened
        parser = _Lines()
        async with session.get(url, headers={"Accept-Encoding": "identity"}) as resp:
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            opened += 1
            if opened == job["count"]:
                started.set()
            if resp.status != 200:
                retry_after.add(resp.headers.get("Retry-After", ""))
                await resp.read()
                return
            await started.wait()  # every stream is open before any is read to its end
            while True:
                data = await resp.content.readany()
                if not data:
                    break
                parser.feed(data)
            rows.append(parser.rows)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(job["count"])))
    return {
        "seconds": time.perf_counter() - t0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "retry_after": sorted(retry_after),
        "complete": sum(1 for r in rows if r == job["rows"]),
        "rows_min": min(rows, default=0),
    }


def big_body(rows: int, value_bytes: int) -> bytes:
    """A POST body of `rows` bench rows: each with one `info:name` string of `value_bytes`
    characters, or (0) no cells at all, the smallest rows there are."""
    parts = []
    for i in range(rows):
        eid = orjson.dumps([f"big{i // 4:08d}", i])
        if value_bytes:
            cell = b'{"value":"' + b"x" * value_bytes + b'","timestamp":1}'
            parts.append(b'{"entityId":' + eid + b',"cells":{"info":{"name":[' + cell + b"]}}}")
        else:
            parts.append(b'{"entityId":' + eid + b"}")
    return b"[" + b",".join(parts) + b"]"


async def _big_post(session: aiohttp.ClientSession, job: dict) -> dict:
    body = big_body(job["rows"], job["value_bytes"])
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        async with aiohttp.ClientSession() as other:  # its own connection: never queued behind the POST
            while not done.is_set():
                t = time.perf_counter()
                async with other.get(job["probe_url"]) as resp:
                    await resp.read()
                latencies.append(time.perf_counter() - t)
                await asyncio.sleep(job.get("probe_ms", 5) / 1000)

    prober = asyncio.ensure_future(probe())
    await asyncio.sleep(0.5)  # probes before the POST: the idle latency is in the figures too
    t0 = time.perf_counter()
    async with session.post(job["url"], data=body, headers={"Content-Type": "application/json"}) as resp:
        answer = await resp.read()
        status = resp.status
    seconds = time.perf_counter() - t0
    done.set()
    await prober
    latencies.sort()
    return {
        "body_bytes": len(body),
        "status": status,
        "answer": answer[:300].decode(errors="replace"),
        "seconds": seconds,
        "probes": len(latencies),
        "probe_p50_ms": _percentile(latencies, 50) * 1000,
        "probe_p99_ms": _percentile(latencies, 99) * 1000,
        "probe_max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
    }


async def run(job: dict) -> dict:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=job.get("read_timeout", 300))
    connector = aiohttp.TCPConnector(limit=max(1, job.get("concurrency", 1)), force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, auto_decompress=False) as session:
        kind = job["kind"]
        if kind in ("stream", "rest_scan"):
            return await _stream(session, job)
        if kind == "gets":
            return await _gets(session, job)
        if kind == "interleaved_gets":
            return await _interleaved_gets(session, job)
        if kind == "posts":
            return await _posts(session, job)
        if kind == "many_streams":
            return await _many_streams(session, job)
        if kind == "big_post":
            return await _big_post(session, job)
        raise SystemExit(f"unknown job kind {kind!r}")


def main(argv: list[str]) -> int:
    job = orjson.loads(argv[1] if len(argv) > 1 and argv[1] != "-" else sys.stdin.buffer.read())
    cpu0 = time.process_time()
    try:
        result = asyncio.run(run(job))
    except Exception as exc:  # reported, not raised: the orchestrator decides
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["client_cpu_s"] = time.process_time() - cpu0
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
