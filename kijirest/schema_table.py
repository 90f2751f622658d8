"""The instance schema table (encodings.md §4): uid ⇄ schema ⇄ hash, shared with Kiji.

Two HBase tables per instance, `kiji.<i>.schema_id` (row `varint(id)`, plus the `counter` row holding
the next id) and `kiji.<i>.schema_hash` (row = the 16 hash bytes), each cell a `SchemaTableEntry`.
Entries are cached in memory; a miss re-reads the store once, since another process (or Kiji
itself) may have registered the schema since. All calls block on the store: the gateway runs them
in its thread pool, and the per-cell hot path only meets the caches (through `cells.ColumnCodec`).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import fastavro

from kijirest.avro.schema import PRIMITIVE_TYPES, Schema, canonical_text, parse_schema, schema_hash
from kijirest.primitives import encode_varint, now_ms
from kijirest.store.base import FOREVER, FamilySpec, ReadOptions, Scan, Store

__all__ = [
    "SCHEMA_FAMILY",
    "SchemaEntry",
    "SchemaLookup",
    "SchemaTable",
    "SchemaTableError",
    "decode_entry",
    "encode_entry",
]

log = logging.getLogger(__name__)

#: the one family of both tables: every version kept, forever, no compression, no bloom filter
SCHEMA_FAMILY = FamilySpec(
    name=b"schema", max_versions=2147483647, ttl_seconds=FOREVER, compression="NONE", bloom_filter="NONE"
)
_FAMILY = b"schema"
_QUALIFIER = b""
COUNTER_ROW = b"counter"
_LATEST = ReadOptions(columns=None, max_versions=1)

#: org.kiji.schema.avro.SchemaTableEntry, the value of every row of both tables
_ENTRY_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "SchemaTableEntry",
        "namespace": "org.kiji.schema.avro",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "hash", "type": {"type": "fixed", "name": "MD5Hash", "size": 16}},
            {"name": "avro_schema", "type": "string"},
        ],
    }
)


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    """One schema-table entry: uid, MD5 hash of the canonical text, canonical text."""

    uid: int
    hash: bytes
    text: str

    @property
    def id(self) -> int:
        """The uid under the name `GET /v1/instances/<i>` lists it with."""
        return self.uid

    @property
    def schema(self) -> str:
        """The canonical text (the `avro_schema` of the instance listing)."""
        return self.text


class SchemaLookup(Protocol):
    """How cells find writer schemas (implemented by `SchemaTable`; `cells.ColumnCodec` asks it).

    Both calls may block on a cache miss (the table re-reads its store once); None = unknown.
    """

    def by_uid(self, uid: int) -> SchemaEntry | None: ...

    def by_hash(self, schema_hash: bytes) -> SchemaEntry | None: ...


class SchemaTableError(RuntimeError):
    """The schema table cannot be used (installation never finished, bad entry written, ...)."""


def encode_entry(entry: SchemaEntry) -> bytes:
    """SchemaTableEntry binary: zig-zag varint id ‖ 16 hash bytes ‖ zig-zag varint length ‖ UTF-8."""
    out = io.BytesIO()
    fastavro.schemaless_writer(
        out, _ENTRY_SCHEMA, {"id": entry.uid, "hash": entry.hash, "avro_schema": entry.text}
    )
    return out.getvalue()


def decode_entry(data: bytes) -> SchemaEntry:
    record: Any = fastavro.schemaless_reader(io.BytesIO(data), _ENTRY_SCHEMA, None)
    return SchemaEntry(record["id"], bytes(record["hash"]), record["avro_schema"])


class SchemaTable:
    """The schema table of one instance over a Store (implements `SchemaLookup`).

    Call `install()` once at start-up. `get_or_create` is safe from several threads; several
    processes (or Kiji) may register concurrently: ids come from an atomic increment, and when two
    processes register the same new schema both ids stay valid.
    """

    def __init__(
        self,
        store: Store,
        instance: str,
        *,
        install_timeout: float = 60.0,
        poll_interval: float = 0.05,
        miss_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.instance = instance
        self.id_table = f"kiji.{instance}.schema_id"
        self.hash_table = f"kiji.{instance}.schema_hash"
        self.install_timeout = install_timeout
        self.poll_interval = poll_interval
        #: an unknown uid/hash is re-read from the store at most this often (seconds)
        self.miss_interval = miss_interval
        self._by_uid: dict[int, SchemaEntry] = {}
        self._by_hash: dict[bytes, SchemaEntry] = {}
        self._misses: dict[object, float] = {}
        self._lock = threading.Lock()

    # -- installation and loading ---------------------------------------------------------------------
    def install(self) -> bool:
        """Create both tables when missing and load the entries; True when this call installed.

        Only the process whose creation of the id table succeeded writes the counter and the eight
        primitives (ids 0..7); any other waits, bounded by `install_timeout`, until the counter is 8.
        """
        created = self.store.create_table(self.id_table, [SCHEMA_FAMILY])
        self.store.create_table(self.hash_table, [SCHEMA_FAMILY])
        if created:
            self.store.put_row(
                self.id_table, COUNTER_ROW, [(_FAMILY, _QUALIFIER, now_ms(), (0).to_bytes(8, "big"))]
            )
            for name in PRIMITIVE_TYPES:
                self.get_or_create(parse_schema(name))
        else:
            deadline = time.monotonic() + self.install_timeout
            while (counter := self.counter()) < len(PRIMITIVE_TYPES):
                if time.monotonic() > deadline:
                    raise SchemaTableError(
                        f"schema table of instance {self.instance!r} is not installed (counter {counter} "
                        f"after {self.install_timeout:g} s): another process is installing it, or an "
                        "installation was interrupted"
                    )
                time.sleep(self.poll_interval)
        self.load()
        return created

    def counter(self) -> int:
        """The next id to hand out (0 when the counter row does not exist yet)."""
        ((_, cells),) = self.store.get_rows(self.id_table, [COUNTER_ROW], _LATEST)
        if not cells:
            return 0
        return int.from_bytes(cells[0][3], "big", signed=True)

    def load(self) -> None:
        """Read both tables into the caches (start-up, and `entries()`)."""
        by_uid = {e.uid: e for e in self._scan(self.id_table)}
        by_hash = {e.hash: e for e in self._scan(self.hash_table)}
        self._by_uid.update(by_uid)
        self._by_hash.update(by_hash)

    def stale_entries(self) -> list[SchemaEntry]:
        """Cached entries the store no longer holds as cached (its schema table was re-created, or
        emptied): the caches must then be reset before a cached uid is written again."""
        stored = {e.uid: e for e in self._scan(self.id_table)}
        cached = list(self._by_uid.values()) + list(self._by_hash.values())
        return [e for e in cached if stored.get(e.uid) != e]

    def forget(self) -> None:
        """Forget every cached entry (before `install()` re-creates a schema table that is gone:
        it must register the primitives, not find them in the cache)."""
        with self._lock:
            self.forget_unlocked()

    def reset(self) -> None:
        """Forget every cached entry and re-read both tables (after `stale_entries` found some)."""
        with self._lock:
            self.forget_unlocked()
            self.load()

    def forget_unlocked(self) -> None:
        self._by_uid.clear()
        self._by_hash.clear()
        self._misses.clear()

    def _scan(self, table: str) -> list[SchemaEntry]:
        out: list[SchemaEntry] = []
        with self.store.scan(table, Scan(read=_LATEST)) as scanner:
            for batch in scanner:
                for key, cells in batch:
                    if key == COUNTER_ROW and table == self.id_table:
                        continue
                    entry = self._entry_of(table, key, cells)
                    if entry is not None:
                        out.append(entry)
        return out

    def _entry_of(
        self, table: str, key: bytes, cells: list[tuple[bytes, bytes, int, bytes]]
    ) -> SchemaEntry | None:
        for family, qualifier, _, value in cells:  # newest first
            if family == _FAMILY and qualifier == _QUALIFIER:
                try:
                    return decode_entry(value)
                except Exception as e:  # corrupt or foreign data: skip the row, never fail a read
                    log.warning("schema table %s: row %r does not hold a SchemaTableEntry: %s", table, key, e)
                    return None
        return None

    def _read_row(self, table: str, key: bytes) -> SchemaEntry | None:
        ((_, cells),) = self.store.get_rows(table, [key], _LATEST)
        return self._entry_of(table, key, cells) if cells else None

    # -- lookups ------------------------------------------------------------------------------------
    def by_uid(self, uid: int) -> SchemaEntry | None:
        """The entry of a uid; an unknown uid is re-read from the store (at most once per
        `miss_interval`) before it is declared unknown."""
        entry = self._by_uid.get(uid)
        if entry is not None or uid < 0:
            return entry
        if not self._should_reread(("uid", uid)):
            return None
        entry = self._read_row(self.id_table, encode_varint(uid))
        if entry is not None:
            self._by_uid[uid] = entry
        return entry

    def by_hash(self, schema_hash: bytes) -> SchemaEntry | None:
        """The entry of a 16-byte schema hash (re-read from the store on a miss, as `by_uid`)."""
        entry = self._by_hash.get(schema_hash)
        if entry is not None or len(schema_hash) != 16:
            return entry
        if not self._should_reread(("hash", schema_hash)):
            return None
        entry = self._read_row(self.hash_table, schema_hash)
        if entry is not None:
            self._by_hash[schema_hash] = entry
            self._by_uid.setdefault(entry.uid, entry)
        return entry

    def has_uid(self, uid: int) -> bool:
        """Whether a uid is registered (layout `uid` references are checked with it at start-up)."""
        return self.by_uid(uid) is not None

    def lookup(self, schema: Schema) -> SchemaEntry | None:
        """The entry of a schema if registered (no registration)."""
        return self.by_hash(schema_hash(schema))

    def _should_reread(self, key: object) -> bool:
        now = time.monotonic()
        last = self._misses.get(key)
        if last is not None and now - last < self.miss_interval:
            return False
        self._misses[key] = now
        return True

    # -- registration -------------------------------------------------------------------------------
    def get_or_create(self, schema: Schema) -> int:
        """The uid of a schema, registering it when new (id row first, then hash row)."""
        return self.register(schema).uid

    def register(self, schema: Schema) -> SchemaEntry:
        """The entry of a schema, registering it when new."""
        digest = schema_hash(schema)
        entry = self._by_hash.get(digest)
        if entry is not None:
            return entry
        with self._lock:  # one registration at a time in this process: no id handed out twice
            entry = self._by_hash.get(digest)
            if entry is not None:
                return entry
            entry = self._read_row(self.hash_table, digest)
            if entry is None:
                uid = self.store.increment(self.id_table, COUNTER_ROW, _FAMILY, _QUALIFIER, 1) - 1
                entry = SchemaEntry(uid, digest, canonical_text(schema))
                data = encode_entry(entry)
                ts = now_ms()
                self.store.put_row(self.id_table, encode_varint(uid), [(_FAMILY, _QUALIFIER, ts, data)])
                self.store.put_row(self.hash_table, digest, [(_FAMILY, _QUALIFIER, ts, data)])
                log.info("schema table %s: registered uid %d: %s", self.instance, uid, entry.text)
            self._by_uid.setdefault(entry.uid, entry)
            self._by_hash[digest] = entry
            self._misses.pop(("uid", entry.uid), None)
            self._misses.pop(("hash", digest), None)
            return entry

    # -- listing --------------------------------------------------------------------------------------
    def entries(self) -> list[SchemaEntry]:
        """Every entry of the id table, sorted by id (re-read, so other processes' schemas show)."""
        fresh = self._scan(self.id_table)
        for entry in fresh:
            self._by_uid.setdefault(entry.uid, entry)
        return sorted(fresh, key=lambda e: e.uid)

    def listing(self) -> list[dict[str, Any]]:
        """`schema_table.entries` of `GET /v1/instances/<i>`: id, lowercase hex hash, schema text."""
        return [{"id": e.uid, "hash": e.hash.hex(), "avro_schema": e.text} for e in self.entries()]
