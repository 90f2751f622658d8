"""`python -m bench.auth`: what authentication costs. R_auth = throughput with auth on ÷ auth off,
for an API key and for a JWT, measured side by side in one run.

Four gateways serve the same data from the same store at the same time:

- `off`: no credentials asked (loopback, `auth` not configured);
- `key`: `--auth-keys`, every request `Authorization: Bearer kr1_...` (a key made with
  `kijirest keys create --grant bench:read` in the same store);
- `jwt`: `--jwt-secret-file`, every request `Authorization: Bearer <HS256 JWT>` with
  `kijirest_grants: ["bench:read"]`;
- `off2`: a second gateway without auth, the control: off2/off shows how far two identical
  gateway processes differ on this machine (placement, caches, other load), the noise floor of
  the other two ratios.

Two measurements:

- point GETs: `GET rows?eid=[...]` of random existing rows at concurrency 32, from one client
  process that takes turns: `--rounds` rounds of `--batch` requests to each gateway, in a rotating
  order (`bench.client` `interleaved_gets`). A turn lasts a fraction of a second, so a burst of
  load from another process on a shared machine falls on all four alike; R_auth is the median
  over the rounds of (requests/s with auth) / (requests/s without), round by round;
- a full scan: `GET rows?limit=N` of `bench/events`, streamed and parsed by `bench.client`, the
  four gateways one after the other in a rotating order, `--reps` times; R_auth per repetition
  from the wall clock, and from the CPU seconds the gateway process spent (read from /proc before
  and after: a gateway bound by its CPU serves 1 / (CPU per row) rows a second, and that moves
  less than the wall clock when other processes load the machine); medians.

Before measuring, every gateway serves the point GETs once (caches, the OS page cache, the
credential cache). A verified credential is cached by the gateway for 5 s
(`kijirest/auth/middleware.py`), so after the first request a request pays a dict lookup, an
expiry check and the grant lookups, not an HMAC, a store read or a signature check.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import data
from bench.ab import loaded_store, rows_url
from bench.procs import PYTHON, REPO, Gateway, cpu_seconds, run_job

SIDES = ("off", "key", "jwt", "off2")
CONCURRENCY = 32


def log(msg: str) -> None:
    print(f"[auth] {msg}", file=sys.stderr, flush=True)


def keys_command(store: str, *args: str) -> str:
    r = subprocess.run(
        [PYTHON, "-m", "kijirest", "keys", *args, "--store", store],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if r.returncode != 0:
        raise SystemExit(f"kijirest keys {args[0]} failed: {r.stderr}")
    return r.stdout.strip()


def make_jwt(secret: bytes) -> str:
    import jwt

    now = int(time.time())
    claims = {"sub": "bench", "iat": now, "exp": now + 6 * 3600, "kijirest_grants": ["bench:read"]}
    return jwt.encode(claims, secret, algorithm="HS256")


def report(what: str, unit: str, by_side: dict[str, list[float]]) -> None:
    medians = "   ".join(f"{s} {statistics.median(by_side[s]):,.0f}" for s in SIDES)
    print(f"  {what}: median {unit} {medians}")
    for side in ("key", "jwt", "off2"):
        ratios = sorted(on / off for on, off in zip(by_side[side], by_side["off"], strict=True))
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [ratios[0], 0, ratios[-1]]
        print(
            f"    R_auth {side}/off  median {statistics.median(ratios):.3f}"
            f"  (quartiles {quartiles[0]:.3f} .. {quartiles[2]:.3f}, {len(ratios)} pairs)"
        )


def point_urls(gw: Gateway, rows: int, count: int) -> list[str]:
    import urllib.parse

    import orjson

    urls = []
    for i in data.sample_ids(rows, count):
        eid = urllib.parse.quote(orjson.dumps(data.entity_id(i)).decode(), safe="")
        urls.append(rows_url(gw, f"eid={eid}"))
    return urls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.auth", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=None, help="hbase://... (default: an embedded store in --data-dir)")
    p.add_argument("--rows", type=int, default=100_000, help="rows of bench/events to scan")
    p.add_argument("--gets", type=int, default=5_000, help="distinct rows the point GETs read")
    p.add_argument("--rounds", type=int, default=60, help="rounds of point GETs (each side once a round)")
    p.add_argument("--batch", type=int, default=300, help="point GETs per side per round")
    p.add_argument("--reps", type=int, default=7, help="repetitions of the full scans")
    p.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "kijirest-ab"))
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="kijirest-auth-"))
    store = loaded_store(args.store, args.data_dir, args.rows)
    secret = base64.b64encode(secrets.token_bytes(48))
    secret_file = work / "jwt.secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    key_name = f"bench-{secrets.token_hex(4)}"
    key = keys_command(store, "create", "--name", key_name, "--grant", "bench:read")
    headers = {
        "off": {},
        "off2": {},
        "key": {"Authorization": f"Bearer {key}"},
        "jwt": {"Authorization": f"Bearer {make_jwt(secret)}"},
    }
    gateways = {
        "off": Gateway(store, work, name="off"),
        "off2": Gateway(store, work, name="off2"),
        "key": Gateway(store, work, name="key", args=("--auth-keys",)),
        "jwt": Gateway(store, work, name="jwt", args=("--jwt-secret-file", str(secret_file))),
    }
    gets: dict[str, list[float]] = {}
    scans: dict[str, dict[str, list[float]]] = {"wall": {s: [] for s in SIDES}, "cpu": {s: [] for s in SIDES}}
    try:
        for gw in gateways.values():
            gw.start()
        urls = {side: point_urls(gw, args.rows, args.gets) for side, gw in gateways.items()}

        def interleaved(rounds: int) -> dict[str, list[float]]:
            job = {
                "kind": "interleaved_gets",
                "sides": {side: {"urls": urls[side], "headers": headers[side]} for side in SIDES},
                "rounds": rounds,
                "batch": args.batch,
                "concurrency": CONCURRENCY,
            }
            out = run_job("bench.client", job)
            if out["errors"]:
                raise SystemExit(f"point GETs: {out['errors']} errors, first {out['first_error']}")
            return out["rates"]

        def scan(side: str) -> tuple[float, float]:
            pid = gateways[side].pid
            cpu0 = cpu_seconds(pid)
            url = rows_url(gateways[side], f"limit={args.rows}")
            out = run_job("bench.client", {"kind": "stream", "url": url, "headers": headers[side]})
            cpu = cpu_seconds(pid) - cpu0
            if out["rows"] != args.rows:
                raise SystemExit(f"scan on {side}: {out['rows']} rows, expected {args.rows}")
            return out["rows_per_s"], out["rows"] / cpu

        interleaved(max(1, args.gets // args.batch))  # warm-up: every row once through every side
        gets = interleaved(args.rounds)
        log("point GETs: " + ", ".join(f"{s} median {statistics.median(gets[s]):,.0f}/s" for s in SIDES))
        for side in SIDES:
            scan(side)  # warm-up
        for rep in range(args.reps):
            order = SIDES[rep % len(SIDES) :] + SIDES[: rep % len(SIDES)]
            got = {side: scan(side) for side in order}
            for side in SIDES:
                scans["wall"][side].append(got[side][0])
                scans["cpu"][side].append(got[side][1])
            shown = ", ".join(f"{s} {got[s][0]:,.0f} ({got[s][1]:,.0f}/CPU s)" for s in SIDES)
            log(f"scan rep {rep}: {shown} (order {' '.join(order)})")
    finally:
        for gw in gateways.values():
            gw.stop()
        keys_command(store, "revoke", key_name)
        shutil.rmtree(work, ignore_errors=True)

    print(f"R_auth: auth on / auth off, store {store}, bench/events of {args.rows} rows")
    report(
        f"point GETs, c={CONCURRENCY}, {args.rounds} rounds of {args.batch} requests per side",
        "requests/s",
        gets,
    )
    report(f"full scans of {args.rows} rows, {args.reps} repetitions", "rows/s", scans["wall"])
    report("  the same scans, per CPU second of the gateway", "rows/CPU s", scans["cpu"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
