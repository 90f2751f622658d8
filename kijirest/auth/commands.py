"""`kijirest keys create | list | revoke | rotate`: API keys in the store, from the command line.

The command opens the store of `--store` or of the gateway's `--config` (whose `auth.keys_table`
and `audit_log` it uses too), so it works beside running gateways: they read the same table and
see a change within `auth.cache_seconds`. A new or rotated key is printed once, alone on stdout
(`KEY=$(kijirest keys create ...)` captures it); what was done goes to stderr. The store keeps only
a digest (`keys.py`), so a lost key cannot be shown again: rotate it.

Every change is written to the audit log when one is configured (`key.create`, `key.revoke`,
`key.rotate`; principal `cli:<OS user>`), without the secret.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from kijirest.auth.audit import AuditLog
from kijirest.auth.config import DEFAULT_KEYS_TABLE
from kijirest.auth.keys import ApiKey, KeyProblem, KeyTable, parse_duration
from kijirest.settings import DEFAULT_STORE, SettingsError, load_config

__all__ = ["run_keys"]


def run_keys(args: argparse.Namespace) -> int:
    try:
        settings = load_config(args.config) if args.config else None
    except SettingsError as exc:
        print(f"kijirest: {exc}", file=sys.stderr)
        return 2
    store_uri = args.store or (settings.store if settings else DEFAULT_STORE)
    auth = settings.auth if settings else None
    table = auth.keys_table if auth is not None else DEFAULT_KEYS_TABLE
    audit_where = args.audit_log or (settings.audit_log if settings else None)
    if store_uri.startswith("memory:"):
        print(
            "kijirest keys: a memory: store lives inside one process; use embedded: or hbase://",
            file=sys.stderr,
        )
        return 2
    from kijirest.store import open_store
    from kijirest.store.base import StoreUnavailable

    try:
        store = open_store(store_uri)
    except (ValueError, StoreUnavailable) as exc:
        print(f"kijirest keys: --store {store_uri}: {exc}", file=sys.stderr)
        return 1
    audit = None
    try:
        keys = KeyTable(store, table)
        keys.install()
        audit = AuditLog(audit_where) if audit_where else None
        return _run(args, keys, audit)
    except KeyProblem as exc:
        print(f"kijirest keys: {exc}", file=sys.stderr)
        return 2
    except (StoreUnavailable, OSError) as exc:
        print(f"kijirest keys: {exc}", file=sys.stderr)
        return 1
    finally:
        if audit is not None:
            audit.close()
        store.close()


def _run(args: argparse.Namespace, keys: KeyTable, audit: AuditLog | None) -> int:
    def record(event: str, key: ApiKey) -> None:
        if audit is not None:
            audit.record(
                event,
                principal=f"cli:{_user()}",
                remote="local",
                key=key.name,
                key_id=key.id,
                grants=list(key.grants),
            )

    if args.action == "create":
        expires = parse_duration(args.expires) if args.expires else None
        key, secret = keys.create(args.name, args.grant, expires)
        record("key.create", key)
        listing = key.listing()
        until = f", expires {listing['expires']}" if listing["expires"] else ", no expiry"
        print(f"key {key.name} (id {key.id}) created: grants {' '.join(key.grants)}{until}", file=sys.stderr)
        print("the key, shown this once (the store keeps only its digest):", file=sys.stderr)
        print(secret, flush=True)
        return 0
    if args.action == "rotate":
        key, secret = keys.rotate(args.name)
        record("key.rotate", key)
        print(
            f"key {key.name} (id {key.id}) has a new secret; the old one stops working within 5 s",
            file=sys.stderr,
        )
        print(secret, flush=True)
        return 0
    if args.action == "revoke":
        key = keys.revoke(args.name)
        record("key.revoke", key)
        print(f"key {key.name} (id {key.id}) revoked: refused by every gateway within 5 s", file=sys.stderr)
        return 0
    rows = [k.listing() for k in keys.all()]
    header = ("NAME", "ID", "STATE", "CREATED", "EXPIRES", "GRANTS")
    table = [header] + [
        (r["name"], r["id"], r["state"], r["created"], r["expires"] or "-", " ".join(r["grants"]))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        return "unknown"
