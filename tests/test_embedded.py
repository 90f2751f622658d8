"""The embedded store on disk: what survives a reopen and a killed writer, and what a failed
write leaves behind (nothing)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kijirest.store import open_store
from kijirest.store.base import ColumnSelector, FamilySpec, ReadOptions, Scan, StoreError
from kijirest.store.embedded import EmbeddedStore

REPO = Path(__file__).resolve().parents[1]
ALL = ReadOptions(max_versions=None)

FAMILIES = [FamilySpec(b"f", max_versions=3), FamilySpec(b"g", ttl_seconds=2_000_000_000, compression="GZ")]


def test_open_store_uri(tmp_path: Path) -> None:
    store = open_store(f"embedded:{tmp_path / 'data'}")
    try:
        assert isinstance(store, EmbeddedStore)
        assert (tmp_path / "data").is_dir()
    finally:
        store.close()


def test_reopen_keeps_tables_data_and_markers(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = EmbeddedStore(path)
    assert store.create_table("kiji.default.table.users", FAMILIES)
    assert store.create_table("other", [FamilySpec(b"x")])
    store.put_row("kiji.default.table.users", b"u1", [(b"f", b"q", ts, b"v%d" % ts) for ts in (1, 2, 3)])
    store.put_row("kiji.default.table.users", b"u2", [(b"g", b"name", 5, b"bob")])
    store.delete("kiji.default.table.users", b"u1", [ColumnSelector(b"f", qualifier=b"q")], timestamp=1)
    assert store.increment("kiji.default.table.users", b"u3", b"g", b"n", 41) == 41
    store.delete_table("other")
    store.close()

    store = EmbeddedStore(path)
    try:
        assert store.list_tables() == ["kiji.default.table.users"]
        families = store.table_families("kiji.default.table.users")
        assert families == {spec.name: spec for spec in FAMILIES}
        assert store.get_rows("kiji.default.table.users", [b"u1", b"u2"], ALL) == [
            (b"u1", [(b"f", b"q", 3, b"v3"), (b"f", b"q", 2, b"v2")]),
            (b"u2", [(b"g", b"name", 5, b"bob")]),
        ]
        # the delete marker survived: a version at ts 1 written now stays hidden
        store.put_row("kiji.default.table.users", b"u1", [(b"f", b"q", 1, b"again")])
        assert len(store.get_rows("kiji.default.table.users", [b"u1"], ALL)[0][1]) == 2
        assert store.increment("kiji.default.table.users", b"u3", b"g", b"n", 1) == 42
        # a new table does not see the dropped one's data
        assert store.create_table("other", [FamilySpec(b"x")])
        with store.scan("other", Scan()) as scanner:
            assert list(scanner) == []
    finally:
        store.close()


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        ((b"f", b"q", 1000, "text"), TypeError),  # value not bytes
        ((b"f", "q", 1000, b"v"), TypeError),  # qualifier not bytes
        ((b"f", b"q", -1, b"v"), ValueError),  # negative timestamp
        ((b"f", b"q", 2**63 - 1, b"v"), ValueError),  # HBase's "latest" marker
        ((b"f", b"q", 1.5, b"v"), TypeError),
        ((b"nope", b"q", 1000, b"v"), StoreError),  # no such family
        ((b"f", b"q", 1000), TypeError),
    ],
)
def test_invalid_cell_writes_nothing_of_the_row(embedded: EmbeddedStore, cell, error) -> None:
    embedded.create_table("t", FAMILIES)
    good = [(b"f", b"a", 1000, b"good"), (b"g", b"b", 1000, b"good")]
    with pytest.raises(error):
        embedded.put_row("t", b"row", [*good, cell])
    assert embedded.get_rows("t", [b"row"], ALL) == [(b"row", [])]
    embedded.put_row("t", b"row", good)  # the store still works
    assert len(embedded.get_rows("t", [b"row"])[0][1]) == 2


def test_bad_row_keys(embedded: EmbeddedStore) -> None:
    embedded.create_table("t", FAMILIES)
    with pytest.raises(ValueError):
        embedded.put_row("t", b"", [(b"f", b"a", 1000, b"v")])
    with pytest.raises(TypeError):
        embedded.put_row("t", "text", [(b"f", b"a", 1000, b"v")])


def test_concurrent_writers_all_land(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    store.create_table("t", FAMILIES)

    def write(worker: int) -> None:
        for i in range(40):
            key = b"w%d-%03d" % (worker, i)
            store.put_row("t", key, [(b"f", b"a", 1, key), (b"f", b"a", 2, key), (b"g", b"b", 1, key)])

    with ThreadPoolExecutor(8) as pool:
        for f in [pool.submit(write, w) for w in range(8)]:
            f.result()
    store.close()
    store = EmbeddedStore(tmp_path / "s")
    try:
        with store.scan("t", Scan(read=ALL, batch_size=100)) as scanner:
            rows = [row for batch in scanner for row in batch]
        assert len(rows) == 8 * 40
        assert all(
            cells == [(b"f", b"a", 2, key), (b"f", b"a", 1, key), (b"g", b"b", 1, key)] for key, cells in rows
        )
    finally:
        store.close()


WRITER = textwrap.dedent(
    """
    import sys
    from kijirest.store.base import FamilySpec
    from kijirest.store.embedded import EmbeddedStore

    store = EmbeddedStore(sys.argv[1])
    store.create_table("t", [FamilySpec(b"f", max_versions=5), FamilySpec(b"g")])
    i = 0
    while True:
        key = b"row%06d" % i
        cells = [(b"f", b"q", ts, key * 20) for ts in (1, 2, 3, 4, 5)]
        cells += [(b"g", b"c%d" % c, 7, key) for c in range(20)]
        store.put_row("t", key, cells)
        sys.stdout.write(key.decode() + "\\n")
        sys.stdout.flush()
        i += 1
    """
)


@pytest.mark.slow
def test_killed_writer_loses_no_acknowledged_row(tmp_path: Path) -> None:
    path = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env, cwd=tmp_path
    )
    acked: list[bytes] = []
    buffer = b""
    deadline = time.monotonic() + 8
    try:
        # read acknowledgements until enough rows are on disk, then kill the writer mid-stride
        while len(acked) < 300 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                acked.extend(lines)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 300, f"the writer acknowledged only {len(acked)} rows"

    store = EmbeddedStore(path)
    try:
        rows = store.get_rows("t", acked, ALL)
        for key, cells in rows:
            expected = [(b"f", b"q", ts, key * 20) for ts in (5, 4, 3, 2, 1)]
            expected += sorted((b"g", b"c%d" % c, 7, key) for c in range(20))
            assert cells == expected, key
        # rows are all-or-nothing, also the ones written but not acknowledged
        with store.scan("t", Scan(read=ALL)) as scanner:
            for batch in scanner:
                assert all(len(cells) == 25 for _, cells in batch)
    finally:
        store.close()
