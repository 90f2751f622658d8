"""Who is calling and what they may do: credentials, grants, row scopes, the audit log.

Before this package anyone who reached the port could read, write and delete every row of every
table: the gateway acted with its own rights, not the caller's (HBase REST's CVE-2019-0212). Now a
request carries credentials (an API key or a JWT, `middleware.py`), they resolve to a `Principal`
holding grants (`grants.py`), and every route checks the grants: instances and tables the caller
may not read are missing to them, writes need `write`, and a row-prefix grant confines reads and
writes to the rows under that prefix (`scope.py`, applied by the request model in `query.py` and
`writer.py`).

The modules sit at different layers (docs/architecture.md, docs/security.md):

- `config.py`, `grants.py`: neutral (no aiohttp, no store, no Kiji model);
- `scope.py`: the Kiji model (row keys through `entity_id.KeyCodec`);
- `keys.py`: the key table, over the `Store` interface (bytes only); `tokens.py`: JWT checks (PyJWT);
- `middleware.py`, `audit.py`, `tls.py`: the HTTP layer.

Nothing here is imported by `kijirest/auth/__init__.py` itself, so `settings.py` can import
`auth.config` without pulling in PyJWT or aiohttp.
"""
