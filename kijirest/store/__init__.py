"""Stores: where the rows live. `open_store(uri)` picks one from a URI.

- `memory:` — in-process, gone with the process (tests, demos);
- `embedded:PATH` — durable, on the local disk in the directory PATH (the gateway's default);
- `hbase://HOST[:PORT][?options]` — a real HBase through its Thrift servers.

The store modules are imported on demand, so using one store never needs another's dependencies.
"""

from __future__ import annotations

from kijirest.store.base import (
    FOREVER,
    LATEST,
    Cell,
    ColumnSelector,
    FamilySpec,
    ReadOptions,
    Row,
    RowScanner,
    Scan,
    Store,
    StoreError,
    StoreUnavailable,
    TableExists,
    TableNotFound,
)

__all__ = [
    "FOREVER",
    "LATEST",
    "Cell",
    "ColumnSelector",
    "FamilySpec",
    "ReadOptions",
    "Row",
    "RowScanner",
    "Scan",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TableExists",
    "TableNotFound",
    "open_store",
]

_SCHEMES = "memory:, embedded:PATH or hbase://HOST[:PORT][?options]"


def open_store(uri: str, *, timeout: float | None = None) -> Store:
    """Open the store a URI names; a URI that names none raises ValueError saying why. `timeout`
    (seconds) bounds each call to a remote store (HBase: Thrift socket timeouts and the wait for a
    pooled connection) unless the URI sets its own (`hbase://...?timeout=MS` wins)."""
    if not isinstance(uri, str):
        raise TypeError(f"store URI must be a str, not {type(uri).__name__}")
    scheme, sep, rest = uri.partition(":")
    if not sep:
        raise ValueError(f"store URI {uri!r} has no scheme; expected {_SCHEMES}")
    scheme = scheme.lower()
    if scheme == "memory":
        if rest:
            raise ValueError(f"store URI {uri!r}: 'memory:' takes nothing after the colon")
        from kijirest.store.memory import MemoryStore

        return MemoryStore()
    if scheme == "embedded":
        if rest.startswith("//"):
            raise ValueError(
                f"store URI {uri!r}: write 'embedded:PATH' (e.g. embedded:data/kiji), not 'embedded://'"
            )
        if not rest:
            raise ValueError(
                f"store URI {uri!r}: 'embedded:' needs a directory path, e.g. embedded:data/kiji"
            )
        from kijirest.store.embedded import EmbeddedStore

        return EmbeddedStore(rest)
    if scheme == "hbase":
        if not rest.startswith("//") or len(rest) == 2 or rest[2] in "/?:":
            raise ValueError(f"store URI {uri!r}: expected hbase://HOST[:PORT][?options]")
        from kijirest.store.hbase import HBaseStore

        timeout_ms = None if timeout is None else max(1, round(timeout * 1000))
        return HBaseStore.from_uri(uri, timeout_ms=timeout_ms)
    raise ValueError(f"store URI {uri!r}: unknown scheme {scheme!r}; expected {_SCHEMES}")
