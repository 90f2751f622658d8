"""`kijirest demo`: load the demo rows of `conf/demo-rows.json` into the store, once.

The rows are written through the same validation and write path as a POST, so the demo data is
exactly what a client could have posted. A table that already holds rows is left alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from kijirest.catalog import Catalog, StartupError
from kijirest.store.base import Scan, Store
from kijirest.writer import apply_writes, plan_writes

log = logging.getLogger("kijirest.demo")

DEMO_ROWS = Path(__file__).resolve().parent.parent / "conf" / "demo-rows.json"
DEMO_INSTANCE = "demo"


def load_demo_rows(store: Store, catalog: Catalog, rows_file: Path = DEMO_ROWS) -> int:
    """Write the demo rows into every empty demo table; returns the number of rows written."""
    instance = catalog.instance(DEMO_INSTANCE)
    if instance is None:
        raise StartupError(f"no '{DEMO_INSTANCE}' instance in the layouts for the demo rows")
    written = 0
    for table_name, rows in orjson.loads(rows_file.read_bytes()).items():
        table = instance.tables[table_name]
        with store.scan(table.hbase_name, Scan(batch_size=1)) as scanner:
            if any(batch for batch in scanner):
                log.info("demo table %s already holds rows: left as it is", table_name)
                continue
        apply_writes(store, table, plan_writes(table, rows))
        written += len(rows)
        log.info("demo table %s: %d rows loaded", table_name, len(rows))
    return written
