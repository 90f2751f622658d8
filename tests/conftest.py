"""Shared fixtures: a `store` of every kind, unique table names, an `embedded` store in a temp dir.

`store` runs a test once per store: "memory", "embedded" and "hbase". The HBase run needs a live
HBase (`scripts/hbase start`, then `KIJIREST_HBASE=hbase://127.0.0.1:9090`); without it that run is
skipped with the reason shown. Tables a test names through `table_name()` are dropped at teardown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from kijirest.store.base import Store, TableNotFound

HBASE_ENV = "KIJIREST_HBASE"
HBASE_SKIP_REASON = f"{HBASE_ENV} not set (scripts/hbase start, then {HBASE_ENV}=hbase://127.0.0.1:9090)"

STORE_KINDS = ["memory", "embedded", "hbase"]


def unique_name(prefix: str = "t_") -> str:
    """A name no other test (or earlier run against the same HBase) uses."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def hbase_store() -> Iterator[Store]:
    """One HBase connection for the whole session (connecting costs more than a test)."""
    uri = os.environ.get(HBASE_ENV)
    if not uri:
        pytest.skip(HBASE_SKIP_REASON)
    from kijirest.store import open_store

    store = open_store(uri)
    yield store
    store.close()


@pytest.fixture
def created_tables() -> list[str]:
    """Names handed out by `table_name()` in this test."""
    return []


@pytest.fixture
def table_name(created_tables: list[str]) -> Callable[[], str]:
    """Call it for a fresh table name (`t_<hex>`); the `store` fixture drops such tables afterwards."""

    def make() -> str:
        name = unique_name()
        created_tables.append(name)
        return name

    return make


def _drop(store: Store, names: list[str]) -> None:
    for name in names:
        try:
            store.delete_table(name)
        except TableNotFound:
            pass


@pytest.fixture
def embedded(tmp_path) -> Iterator[Store]:
    """An embedded store in a fresh temp directory."""
    from kijirest.store.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "embedded")
    yield store
    store.close()


@pytest.fixture(
    params=[
        pytest.param(kind, id=kind, marks=[pytest.mark.hbase] if kind == "hbase" else [])
        for kind in STORE_KINDS
    ]
)
def store(request: pytest.FixtureRequest, created_tables: list[str]) -> Iterator[Store]:
    """Every store kind in turn; tables named with `table_name()` are dropped at teardown."""
    kind = request.param
    if kind == "memory":
        from kijirest.store.memory import MemoryStore

        s: Store = MemoryStore()
        yield s
        s.close()
    elif kind == "embedded":
        s = request.getfixturevalue("embedded")
        yield s
    else:
        s = request.getfixturevalue("hbase_store")
        try:
            yield s
        finally:
            _drop(s, created_tables)
