"""`/v1/keys`: API-key management over HTTP for `*:admin` callers (with `auth.keys` on).

`GET /v1/keys` lists the keys (never a secret or a digest), `GET /v1/keys/<name>` shows one;
`DELETE /v1/keys/<name>` revokes one, effective on every worker and gateway of the store within
`auth.cache_seconds`. Creating and rotating keys print a secret, so they stay on the command line
(`kijirest keys create / rotate`), where the secret goes to the operator's terminal only.
"""

from __future__ import annotations

from aiohttp import web

from kijirest.auth.keys import KeyProblem, KeyTable
from kijirest.auth.middleware import AUTHENTICATOR
from kijirest.problems import Forbidden, NotFound
from kijirest.state import AUDIT_EVENT, PRINCIPAL, STORE
from kijirest.views.common import json_response


def _require_admin(request: web.Request) -> None:
    principal = request[PRINCIPAL]
    if not principal.is_admin:
        raise Forbidden("authorization", f"{principal.name} may not manage keys (that needs *:admin)")


def _key_table(request: web.Request) -> KeyTable:
    """The key table, for an admin caller only (403 otherwise)."""
    _require_admin(request)
    keys = request.app[AUTHENTICATOR].keys
    assert keys is not None
    return keys


async def list_keys(request: web.Request) -> web.Response:
    keys = _key_table(request)
    records = await request.app[STORE].run(keys.all)
    return json_response([k.listing() for k in records])


async def get_key(request: web.Request) -> web.Response:
    keys = _key_table(request)
    name = request.match_info["name"]
    try:
        record = await request.app[STORE].run(keys.by_name, name)
    except KeyProblem:
        raise NotFound("name", f"no key named {name!r}") from None
    return json_response(record.listing())


async def revoke_key(request: web.Request) -> web.Response:
    keys = _key_table(request)
    request[AUDIT_EVENT] = "key.revoke"
    name = request.match_info["name"]
    try:
        record = await request.app[STORE].run(keys.revoke, name)
    except KeyProblem:
        raise NotFound("name", f"no key named {name!r}") from None
    return json_response(record.listing())
