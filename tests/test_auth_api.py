"""Authentication and authorization through the real HTTP stack, on every store (memory, embedded,
HBase): every route and method against every kind of bad credential (401), grants that do not
reach (404 like a missing resource, 403), row-prefix grants under ids, ranges and wildcards, and
after every refusal a raw snapshot of the store showing that nothing was written or deleted.

The gateway of these tests takes API keys, HS256 JWTs (a secret file), RS256 JWTs (a PEM file) and
ES256 JWTs (a JWKS served by a loopback HTTP server), writes an audit log, and serves two instances
(`main`, `other`) of tests/data/auth_layouts under names unique to the module (HBase keeps them
apart from every other run; they are dropped at the end)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from auth_env import (
    AUDIENCE,
    AUTH_LAYOUTS,
    ISSUER,
    Material,
    Recorder,
    basic,
    bearer,
    snapshot_async,
)
from conftest import HBASE_ENV, Answer, ApiClient, served, unique_name

from kijirest.app import init_app
from kijirest.auth.config import AuthSettings, JwtSettings
from kijirest.auth.keys import KeyTable
from kijirest.primitives import now_ms
from kijirest.settings import Settings

TABLES = ("docs", "deep", "raw", "hashed", "prefixed", "sealed")


@dataclass
class Names:
    root: Path
    main: str
    other: str
    keys_table: str


@pytest.fixture(scope="module")
def names(tmp_path_factory) -> Iterator[Names]:
    root = tmp_path_factory.mktemp("auth-layouts")
    n = Names(root, unique_name("am"), unique_name("ao"), "kijirest." + unique_name("keys_"))
    shutil.copytree(AUTH_LAYOUTS / "main", root / n.main)
    shutil.copytree(AUTH_LAYOUTS / "other", root / n.other)
    yield n
    uri = os.environ.get(HBASE_ENV)
    if uri:  # the HBase tables of this module's instances and key table
        from kijirest.store import open_store

        store = open_store(uri)
        try:
            for table in store.list_tables():
                if table.startswith((f"kiji.{n.main}.", f"kiji.{n.other}.")) or table == n.keys_table:
                    store.delete_table(table)
        finally:
            store.close()


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> Material:
    return Material(tmp_path_factory.mktemp("auth-material"))


class Env:
    """A gateway with auth on, its keys, tokens and rows."""

    def __init__(self, api: ApiClient, names: Names, material: Material, audit: Path, jwks: dict) -> None:
        self.api = api
        self.names = names
        self.material = material
        self.audit = audit
        self.jwks = jwks
        self.keys = KeyTable(api.store, names.keys_table)
        self.creds: dict[str, str] = {}  # name → Authorization header value
        self.secrets: list[str] = []  # every credential made, for the leak checks
        self.recorder = Recorder()
        self.key_names: dict[str, str] = {}

    @property
    def main(self) -> str:
        return self.names.main

    @property
    def other(self) -> str:
        return self.names.other

    def rows_path(self, table: str, instance: str | None = None) -> str:
        return f"/v1/instances/{instance or self.main}/tables/{table}/rows"

    async def key(self, label: str, *grants: str, expires: int | None = None) -> str:
        name = f"{label}-{unique_name('')}"
        _record, secret = await asyncio.to_thread(self.keys.create, name, list(grants), expires)
        self.secrets.append(secret)
        self.key_names[label] = name
        self.creds[label] = bearer(secret)
        return secret

    def jwt(self, label: str, token: str) -> str:
        self.secrets.append(token)
        self.creds[label] = bearer(token)
        return token

    async def call(
        self,
        method: str,
        path: str,
        params: Any = None,
        *,
        cred: str | None = None,
        header: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        hdrs = dict(headers or {})
        value = header if header is not None else self.creds.get(cred) if cred else None
        if value is not None:
            hdrs["Authorization"] = value
        answer = await self.api.request(method, path, params, body=body, headers=hdrs)
        self.recorder.answers.append(answer)
        return answer

    async def rows(self, table: str, params: Any = None, *, cred: str = "admin") -> list[Any]:
        answer = await self.call("GET", self.rows_path(table), {"limit": "-1", **(params or {})}, cred=cred)
        return answer.rows

    async def snapshot(self) -> dict[str, list]:
        tables = [f"kiji.{self.main}.table.{t}" for t in TABLES] + [f"kiji.{self.other}.table.alpha"]
        return await snapshot_async(self.api, [*tables, self.names.keys_table])

    def audit_lines(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        return [orjson.loads(line) for line in self.audit.read_bytes().splitlines()]


DOCS = [["p1", "a", "x", 1, 1], ["p1", "b", "x", 1, 2], ["p2", "a", "x", 1, 3], ["p3", "a", "y", 2, 4]]
DEEP = [["north", "s1", 1], ["north", "s2", 2], ["south", "s1", 3]]
SINGLE = {"raw": ["r1", "r2"], "hashed": ["h1", "h2"], "prefixed": ["x1", "x2"]}
SEALED = [["a", "b"], ["c", "d"]]


def label_cell(text: str) -> dict:
    return {"info": {"label": [{"value": text}]}}


def name_cell(text: str) -> dict:
    return {"info": {"name": [{"value": text}]}}


@pytest.fixture
async def env(aiohttp_client, aiohttp_server, api_store, names, material, tmp_path) -> Env:
    kind, uri = api_store
    jwks = {"doc": {"keys": [Material.jwk(material.ec1, "ec1")]}}

    async def serve_jwks(request: web.Request) -> web.Response:
        return web.json_response(jwks["doc"])

    jwks_app = web.Application()
    jwks_app.router.add_get("/jwks.json", serve_jwks)
    jwks_server = await aiohttp_server(jwks_app)
    auth = AuthSettings(
        keys=True,
        keys_table=names.keys_table,
        jwt=JwtSettings(
            secret_file=str(material.secret_file),
            public_keys=str(material.pem_file),
            jwks=str(jwks_server.make_url("/jwks.json")),
            issuer=ISSUER,
            audience=AUDIENCE,
            algorithms=("HS256", "RS256", "ES256"),
            jwks_refresh=0.2,
        ),
    )
    audit = tmp_path / "audit.jsonl"
    settings = Settings(layouts=str(names.root), store=uri, auth=auth, audit_log=str(audit))
    app = await init_app(settings)
    e = Env(ApiClient(await aiohttp_client(served(app)), kind), names, material, audit, jwks)
    await e.key("admin", "*:admin")
    for table, ids in (("docs", DOCS), ("deep", DEEP), ("sealed", SEALED)):
        cells = label_cell if table == "docs" else name_cell
        body = [{"entityId": i, "cells": cells(f"{table}-{n}")} for n, i in enumerate(ids)]
        answer = await e.call("POST", e.rows_path(table), body=body, cred="admin")
        assert answer.status == 200, answer.body
    for table, ids in SINGLE.items():
        body = [{"entityId": [i], "cells": name_cell(i)} for i in ids]
        assert (await e.call("POST", e.rows_path(table), body=body, cred="admin")).status == 200
    body = {"entityId": ["z1"], "cells": name_cell("z1")}
    assert (await e.call("POST", e.rows_path("alpha", e.other), body=body, cred="admin")).status == 200
    return e


# -- 401: every route and method, every kind of bad credential --------------------------------------


def routes(e: Env) -> list[tuple[str, str, Any, Any]]:
    docs = e.rows_path("docs")
    eid = orjson.dumps(DOCS[0]).decode()
    return [
        ("GET", "/v1", None, None),
        ("GET", "/v1/version", None, None),
        ("GET", "/v1/instances", None, None),
        ("GET", f"/v1/instances/{e.main}", None, None),
        ("GET", f"/v1/instances/{e.main}/tables", None, None),
        ("GET", f"/v1/instances/{e.main}/tables/docs", None, None),
        ("GET", docs, {"eid": eid}, None),
        ("GET", docs, None, None),
        ("HEAD", docs, None, None),
        ("POST", docs, None, {"entityId": ["p1", "new"], "cells": label_cell("new")}),
        ("DELETE", docs, {"eid": eid}, None),
        ("GET", "/v1/keys", None, None),
        ("GET", f"/v1/keys/{e.key_names['admin']}", None, None),
        ("DELETE", f"/v1/keys/{e.key_names['admin']}", None, None),
        ("GET", "/v1/instances/nope/tables/x/rows", None, None),
        ("GET", "/no/such/path", None, None),
    ]


async def bad_credentials(e: Env) -> dict[str, tuple[str | None, str]]:
    """name → (Authorization header or None, what the 401's detail must say)."""
    m = e.material
    admin_key = e.creds["admin"].removeprefix("Bearer ")
    revoked = await e.key("revoked", "*:admin")
    await asyncio.to_thread(e.keys.revoke, e.key_names["revoked"])
    expired = await e.key("expired", "*:admin", expires=3600)
    record = await asyncio.to_thread(e.keys.by_name, e.key_names["expired"])
    await asyncio.to_thread(e.keys._put, replace(record, expires_ms=now_ms() - 1000))
    key_id, secret = admin_key[4:20], admin_key[21:]
    wrong_secret = ("B" if secret[0] == "A" else "A") + secret[1:]
    admin_grants = {"kijirest_grants": ["*:admin"]}
    other_secret = b"another-secret-of-enough-length-for-hs256-0123456789"
    tokens = {
        "expired jwt": m.token(exp=int(time.time()) - 60, **admin_grants),
        "jwt with a wrong signature": m.token(key=other_secret, **admin_grants),
        "jwt for another audience": m.token(aud="someone-else", **admin_grants),
        "jwt from another issuer": m.token(iss="https://evil.test/", **admin_grants),
        "jwt not valid yet": m.token(nbf=int(time.time()) + 600, **admin_grants),
        "jwt without exp": m.token(exp=None, **admin_grants),
        "jwt with alg none": _alg_none(admin_grants),
        "jwt hs256 signed with the rsa public key": m.forged_hs256_with_public_key(**admin_grants),
        "jwt es256 with an unknown kid": m.token("ES256", key=m.ec2, kid="nope", **admin_grants),
        "jwt rs256 signed by another key": m.token("RS256", key=_other_rsa(), **admin_grants),
    }
    for token in tokens.values():
        e.secrets.append(token)
    e.secrets += [revoked, expired, wrong_secret]
    cases: dict[str, tuple[str | None, str]] = {
        "no credentials": (None, "missing credentials"),
        "garbage bearer": ("Bearer !!garbage!!", "malformed token"),
        "empty bearer": ("Bearer ", "empty credentials"),
        "unsupported scheme": ("Digest abc", "unsupported Authorization scheme"),
        "a key without a scheme": (admin_key, "unsupported Authorization scheme"),
        "unknown key": (bearer(f"kr1_{'0' * 16}_{secret}"), "unknown or invalid API key"),
        "a key with a wrong secret": (bearer(f"kr1_{key_id}_{wrong_secret}"), "unknown or invalid API key"),
        "revoked key": (bearer(revoked), "API key revoked"),
        "expired key": (bearer(expired), "API key expired"),
        "basic with a wrong password": (basic(e.key_names["admin"], "nope"), "unknown or invalid API key"),
        "basic with another key's name": (basic("someone", admin_key), "unknown or invalid API key"),
        "malformed basic": ("Basic %%%", "malformed HTTP Basic"),
        "expired jwt": (bearer(tokens["expired jwt"]), "token expired"),
        "jwt with a wrong signature": (bearer(tokens["jwt with a wrong signature"]), "signature is invalid"),
        "jwt for another audience": (bearer(tokens["jwt for another audience"]), "audience is invalid"),
        "jwt from another issuer": (bearer(tokens["jwt from another issuer"]), "issuer is invalid"),
        "jwt not valid yet": (bearer(tokens["jwt not valid yet"]), "not valid yet"),
        "jwt without exp": (bearer(tokens["jwt without exp"]), "no 'exp' claim"),
        "jwt with alg none": (bearer(tokens["jwt with alg none"]), "algorithm 'none' is not accepted"),
        "jwt hs256 signed with the rsa public key": (
            bearer(tokens["jwt hs256 signed with the rsa public key"]),
            "signature is invalid",
        ),
        "jwt es256 with an unknown kid": (bearer(tokens["jwt es256 with an unknown kid"]), "unknown kid"),
        "jwt rs256 signed by another key": (bearer(tokens["jwt rs256 signed by another key"]), "signature"),
    }
    return cases


def _alg_none(claims: dict) -> str:
    import jwt

    now = int(time.time())
    payload = {"sub": "robot", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, **claims}
    return jwt.encode(payload, None, algorithm="none")


_OTHER_RSA: list[Any] = []


def _other_rsa() -> Any:
    if not _OTHER_RSA:
        from cryptography.hazmat.primitives.asymmetric import rsa

        _OTHER_RSA.append(rsa.generate_private_key(65537, 2048))
    return _OTHER_RSA[0]


def check_401(answer: Answer, what: str) -> None:
    body = answer.problem(401, "authorization")
    assert what in body["detail"], (answer.method, answer.url, body["detail"])
    challenges = answer.headers.getall("WWW-Authenticate")
    assert challenges == ['Bearer realm="kijirest"', 'Basic realm="kijirest"'], challenges


async def test_every_route_refuses_every_bad_credential_and_nothing_changes(env: Env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    e = env
    cases = await bad_credentials(e)
    before = await e.snapshot()
    for name, (header, what) in cases.items():
        for method, path, params, body in routes(e):
            answer = await e.call(method, path, params, header=header, body=body)
            if method == "HEAD":
                assert answer.status == 401 and answer.body == b"", (name, path)
                continue
            try:
                check_401(answer, what)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {method} {path}: {exc}") from None
    assert await e.snapshot() == before  # nothing written, deleted, revoked
    listed = await e.call("GET", "/v1/keys", cred="admin")
    assert {k["name"]: k["state"] for k in listed.json()}[e.key_names["admin"]] == "active"
    leaks(e, caplog.text)


def leaks(e: Env, *texts: str) -> None:
    """No credential made in this test appears in the answers, the audit log or `texts`."""
    secret_bytes = e.material.hs_secret.decode()
    haystacks = [e.recorder.text(), e.audit.read_text() if e.audit.exists() else "", *texts]
    for secret in [*e.secrets, secret_bytes]:
        for part in (secret, secret[-43:]):  # a key's secret part alone too
            for text in haystacks:
                assert part not in text, f"a credential leaked: ...{part[-6:]}"


# -- valid credentials of every kind ---------------------------------------------------------------


async def test_every_kind_of_credential_reads(env: Env) -> None:
    e = env
    m = e.material
    grants = {"kijirest_grants": [f"{e.main}:read"]}
    admin_key = e.creds["admin"].removeprefix("Bearer ")
    ways = {
        "api key": e.creds["admin"],
        "basic": basic(e.key_names["admin"], admin_key),
        "hs256": bearer(e.jwt("hs", m.token(**grants))),
        "rs256 (pem)": bearer(e.jwt("rs", m.token("RS256", **grants))),
        "es256 (jwks)": bearer(e.jwt("es", m.token("ES256", kid="ec1", **grants))),
        "grants as a scope string": bearer(e.jwt("sc", m.token(kijirest_grants=f"{e.main}:read"))),
    }
    for name, header in ways.items():
        answer = await e.call(
            "GET", e.rows_path("docs"), {"eid": orjson.dumps(DOCS[0]).decode()}, header=header
        )
        assert answer.status == 200, (name, answer.body)
        assert answer.rows[0]["entityId"] == DOCS[0]
        # the cached second use answers the same
        assert (await e.call("GET", e.rows_path("docs"), header=header)).status == 200, name


async def test_jwks_key_rotation_is_followed_without_a_restart(env: Env) -> None:
    e = env
    m = e.material
    grants = {"kijirest_grants": [f"{e.main}:read"]}
    new = e.jwt("ec2", m.token("ES256", key=m.ec2, kid="ec2", **grants))
    check_401(await e.call("GET", "/v1/instances", cred="ec2"), "unknown kid")
    e.jwks["doc"] = {"keys": [Material.jwk(m.ec2, "ec2")]}  # the provider rotates
    await asyncio.sleep(0.3)  # past jwks_refresh: an unknown kid re-reads the JWKS
    assert (await e.call("GET", "/v1/instances", header=bearer(new))).status == 200
    old = e.jwt("ec1", m.token("ES256", kid="ec1", **grants))
    check_401(await e.call("GET", "/v1/instances", header=bearer(old)), "unknown kid")


# -- grants that do not reach ------------------------------------------------------------------------


async def test_a_read_grant_does_not_write(env: Env) -> None:
    e = env
    await e.key("reader", f"{e.main}:read")
    e.jwt("jwt-reader", e.material.token(kijirest_grants=[f"{e.main}:read"]))
    before = await e.snapshot()
    docs = e.rows_path("docs")
    for cred in ("reader", "jwt-reader"):
        assert len(await e.rows("docs", cred=cred)) == len(DOCS)
        post = await e.call("POST", docs, body={"entityId": ["p1", "n"], "cells": label_cell("n")}, cred=cred)
        assert "may not write table" in post.problem(403, "authorization")["detail"]
        delete = await e.call("DELETE", docs, {"eid": orjson.dumps(DOCS[0]).decode()}, cred=cred)
        delete.problem(403, "authorization")
        (await e.call("GET", "/v1/keys", cred=cred)).problem(403, "authorization")
        name = e.key_names["admin"]
        (await e.call("DELETE", f"/v1/keys/{name}", cred=cred)).problem(403, "authorization")
    assert await e.snapshot() == before


async def missing_answer(e: Env, method: str, path: str, params: Any = None, body: Any = None) -> Answer:
    return await e.call(method, path, params, cred="admin", body=body)


async def test_an_instance_without_a_grant_is_missing(env: Env) -> None:
    e = env
    await e.key("otherinst", f"{e.other}:write")
    before = await e.snapshot()
    listed = await e.call("GET", "/v1/instances", cred="otherinst")
    assert [i["name"] for i in listed.json()] == [e.other]
    body = {"entityId": ["p1", "n"], "cells": label_cell("n")}
    for method, suffix, params, post in (
        ("GET", "", None, None),
        ("GET", "/tables", None, None),
        ("GET", "/tables/docs", None, None),
        ("GET", "/tables/docs/rows", None, None),
        ("HEAD", "/tables/docs/rows", None, None),
        ("POST", "/tables/docs/rows", None, body),
        ("DELETE", "/tables/docs/rows", {"eid": orjson.dumps(DOCS[0]).decode()}, None),
    ):
        refused = await e.call(method, f"/v1/instances/{e.main}{suffix}", params, cred="otherinst", body=post)
        missing = await missing_answer(e, method, f"/v1/instances/nope{suffix}", params, post)
        assert refused.status == missing.status == 404, (method, suffix, refused.body)
        if method != "HEAD":
            assert refused.json() == orjson.loads(missing.body.replace(b"nope", e.main.encode())), suffix
    assert await e.snapshot() == before
    refusals = [
        a for a in e.audit_lines() if a["event"] == "refused" and a["principal"].startswith("key:otherinst")
    ]
    assert len(refusals) == 7 and all("no grant on instance" in a["reason"] for a in refusals)


async def test_a_table_without_a_grant_is_missing(env: Env) -> None:
    e = env
    await e.key("deeponly", f"{e.main}/deep:write")
    before = await e.snapshot()
    assert [i["name"] for i in (await e.call("GET", "/v1/instances", cred="deeponly")).json()] == [e.main]
    tables = await e.call("GET", f"/v1/instances/{e.main}/tables", cred="deeponly")
    assert [t["name"] for t in tables.json()] == ["deep"]
    inst = await e.call("GET", f"/v1/instances/{e.main}", cred="deeponly")
    assert [t["name"] for t in inst.json()["tables"]] == ["deep"]
    assert inst.json()["schema_table"]["entries"]  # the instance's schemas: readable with any grant in it
    body = {"entityId": ["p1", "n"], "cells": label_cell("n")}
    for method, suffix, params, post in (
        ("GET", "", None, None),
        ("GET", "/rows", None, None),
        ("GET", "/rows", {"eid": orjson.dumps(DOCS[0]).decode()}, None),
        ("POST", "/rows", None, body),
        ("DELETE", "/rows", {"eid": orjson.dumps(DOCS[0]).decode()}, None),
    ):
        path = f"/v1/instances/{e.main}/tables/docs{suffix}"
        refused = await e.call(method, path, params, cred="deeponly", body=post)
        missing = await missing_answer(e, method, f"/v1/instances/{e.main}/tables/nope{suffix}", params, post)
        assert refused.status == missing.status == 404
        assert refused.json() == orjson.loads(missing.body.replace(b"nope", b"docs"))
    assert await e.snapshot() == before
    ok = await e.call(
        "POST",
        e.rows_path("deep"),
        body={"entityId": ["west", "w", 9], "cells": name_cell("w")},
        cred="deeponly",
    )
    assert ok.status == 200


# -- row-prefix grants -------------------------------------------------------------------------------


def eid(value: Any) -> str:
    return orjson.dumps(value).decode()


async def test_a_row_prefix_read_grant_confines_scans_and_refuses_point_reads_outside(env: Env) -> None:
    e = env
    await e.key("p1reader", f'{e.main}/docs:read@["p1"]')
    before = await e.snapshot()
    p1 = [d for d in DOCS if d[0] == "p1"]
    ids = lambda rows: [r["entityId"] for r in rows]  # noqa: E731
    assert ids(await e.rows("docs", cred="p1reader")) == p1
    p2_key = e.api.docs_key(*DOCS[2])
    scans = {
        "start/end around p2": {"start_eid": eid(["p2"]), "end_eid": eid(["p2", "z"])},
        "start_eid only": {"start_eid": eid(["p2"])},
        "raw bounds over everything": {"start_eid": "hbase_hex=00", "end_eid": "hbase_hex=ffffffff"},
        "raw bounds around p2": {
            "start_eid": "hbase_hex=" + p2_key.hex(),
            "end_eid": "hbase_hex=" + p2_key.hex() + "00",
        },
        "wildcard on the first component": {"eid": eid([[], "a"])},
        "wildcard on p2": {"eid": eid(["p2", []])},
        "wildcard everything": {"eid": eid([[], [], [], [], []])},
        "columns and versions": {"cols": "info", "versions": "all"},
    }
    for name, params in scans.items():
        got = ids(await e.rows("docs", params, cred="p1reader"))
        assert all(i[0] == "p1" for i in got), (name, got)
        everything = ids(await e.rows("docs", params, cred="admin"))
        assert got == [i for i in everything if i[0] == "p1"], name  # exactly the allowed part
    assert ids(await e.rows("docs", {"eid": eid([[], "a"])}, cred="p1reader")) == [DOCS[0]]
    docs = e.rows_path("docs")
    for params, where in (
        ({"eid": eid(DOCS[2])}, "eid"),
        ({"eid": eid(["p9", "never", "written", 1, 1])}, "eid"),  # missing rows too
        ({"eid": "hbase_hex=" + p2_key.hex()}, "eid"),
        ({"eids": eid([DOCS[0], DOCS[2]])}, "eids[1]"),
    ):
        for method in ("GET", "HEAD"):
            answer = await e.call(method, docs, params, cred="p1reader")
            if method == "GET":
                assert "outside the rows your grant allows" in answer.problem(403, where)["detail"]
            else:
                assert answer.status == 403
    inside = await e.call(
        "GET", docs, {"eids": eid([DOCS[0], ["p1", "zz", None, None, None]])}, cred="p1reader"
    )
    assert [r["entityId"] for r in inside.rows] == [DOCS[0], ["p1", "zz", None, None, None]]
    write = await e.call("POST", docs, body={"entityId": DOCS[0], "cells": label_cell("n")}, cred="p1reader")
    write.problem(403, "authorization")
    assert await e.snapshot() == before


async def test_a_row_prefix_write_grant_refuses_a_body_with_one_row_outside_whole(env: Env) -> None:
    e = env
    await e.key("p1writer", f'{e.main}/docs:write@["p1"]')
    docs = e.rows_path("docs")
    before = await e.snapshot()
    mixed = [
        {"entityId": ["p1", "new1"], "cells": label_cell("ok")},
        {"entityId": ["p1", "new2"], "cells": label_cell("ok")},
        {"entityId": ["p2", "new3"], "cells": label_cell("outside")},
    ]
    answer = await e.call("POST", docs, body=mixed, cred="p1writer")
    assert "nothing was written" in answer.problem(403, "[2].entityId")["detail"]
    raw = [{"entityId": "hbase_hex=" + e.api.docs_key(*DOCS[2]).hex(), "cells": label_cell("outside")}]
    (await e.call("POST", docs, body=raw, cred="p1writer")).problem(403, "[0].entityId")
    for params, where in (
        ({"eid": eid(DOCS[2])}, "eid"),
        ({"eids": eid([DOCS[0], DOCS[1], DOCS[2]])}, "eids[2]"),
        ({"eid": "hbase_hex=" + e.api.docs_key(*DOCS[3]).hex()}, "eid"),
    ):
        (await e.call("DELETE", docs, params, cred="p1writer")).problem(403, where)
    assert await e.snapshot() == before  # nothing written, nothing deleted
    good = await e.call("POST", docs, body=mixed[:2], cred="p1writer")
    assert good.status == 200, good.body
    gone = await e.call("DELETE", docs, {"eids": eid([DOCS[0], ["p1", "new1"]])}, cred="p1writer")
    assert gone.status == 200
    left = [r["entityId"] for r in await e.rows("docs")]
    assert DOCS[0] not in left and ["p1", "new2", None, None, None] in left and DOCS[2] in left


async def test_row_prefixes_on_every_key_format(env: Env) -> None:
    e = env
    await e.key("north", f'{e.main}/deep:read@["north"]')  # hash unknown: filtered key by key
    await e.key("north-s1", f'{e.main}/deep:read@["north", "s1"]')  # pushed down
    await e.key(
        "singles",
        f'{e.main}/raw:read@["r1"]',
        f'{e.main}/hashed:read@["h1"]',
        f'{e.main}/prefixed:read@["x1"]',
    )
    await e.key("sealed-part", f'{e.main}/sealed:read@["a"]')  # cannot apply: allows nothing
    await e.key("sealed-full", f'{e.main}/sealed:read@["a", "b"]')
    before = await e.snapshot()
    ids = lambda rows: [r["entityId"] for r in rows]  # noqa: E731
    north = sorted(map(tuple, ids(await e.rows("deep", cred="north"))))
    assert north == [("north", "s1", 1), ("north", "s2", 2)]
    assert ids(await e.rows("deep", {"eid": eid([[], "s1", []])}, cred="north")) == [DEEP[0]]
    assert ids(await e.rows("deep", cred="north-s1")) == [DEEP[0]]
    (await e.call("GET", e.rows_path("deep"), {"eid": eid(DEEP[2])}, cred="north")).problem(403, "eid")
    for table, (inside, outside) in SINGLE.items():
        rows = ids(await e.rows(table, cred="singles"))
        assert len(rows) == 1, (table, rows)
        point = await e.call("GET", e.rows_path(table), {"eid": eid([inside])}, cred="singles")
        assert point.status == 200
        (await e.call("GET", e.rows_path(table), {"eid": eid([outside])}, cred="singles")).problem(403, "eid")
    assert await e.rows("sealed", cred="sealed-part") == []
    (await e.call("GET", e.rows_path("sealed"), {"eid": eid(["a", "b"])}, cred="sealed-part")).problem(
        403, "eid"
    )
    assert len(await e.rows("sealed", cred="sealed-full")) == 1
    assert await e.snapshot() == before


# -- key management over HTTP, the audit log, CORS ----------------------------------------------------


async def test_an_admin_lists_and_revokes_keys_and_the_key_stops(env: Env) -> None:
    e = env
    await e.key("victim", f"{e.main}:read")
    assert (await e.call("GET", "/v1/instances", cred="victim")).status == 200
    listed = await e.call("GET", "/v1/keys", cred="admin")
    entry = {k["name"]: k for k in listed.json()}[e.key_names["victim"]]
    assert set(entry) == {"name", "id", "grants", "state", "created", "expires", "revoked", "rotated"}
    assert entry["state"] == "active" and entry["grants"] == [f"{e.main}:read"]
    revoked = await e.call("DELETE", f"/v1/keys/{e.key_names['victim']}", cred="admin")
    assert revoked.json()["state"] == "revoked"
    (await e.call("DELETE", "/v1/keys/no-such-key", cred="admin")).problem(404, "name")
    deadline = time.monotonic() + 10
    while (await e.call("GET", "/v1/instances", cred="victim")).status == 200:
        assert time.monotonic() < deadline, "a revoked key still works after 10 s"
        await asyncio.sleep(0.25)
    check_401(await e.call("GET", "/v1/instances", cred="victim"), "API key revoked")
    events = [
        (a["path"].rsplit("/", 1)[1], a["status"], a["principal"])
        for a in e.audit_lines()
        if a["event"] == "key.revoke"
    ]
    admin = f"key:{e.key_names['admin']}"
    assert events == [(e.key_names["victim"], 200, admin), ("no-such-key", 404, admin)]


async def test_the_audit_log_has_writes_deletes_and_refusals_without_values_or_secrets(
    env: Env, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    e = env
    await e.key("p1writer", f'{e.main}/docs:write@["p1"]')
    docs = e.rows_path("docs")
    value = "a-cell-value-that-must-never-be-logged"
    headers = {"X-Request-Id": "req-42"}
    assert (
        await e.call(
            "POST",
            docs,
            body={"entityId": ["p1", "aud"], "cells": label_cell(value)},
            cred="p1writer",
            headers=headers,
        )
    ).status == 200
    assert (await e.call("DELETE", docs, {"eid": eid(["p1", "aud"])}, cred="p1writer")).status == 200
    (
        await e.call(
            "POST", docs, body={"entityId": ["p2", "aud"], "cells": label_cell(value)}, cred="p1writer"
        )
    ).problem(403)
    (await e.call("GET", "/v1/instances", header="Bearer kr1_0000000000000000_" + "x" * 43)).problem(401)
    lines = [
        a
        for a in e.audit_lines()
        if a["request_id"] == "req-42" or a["principal"] in (f"key:{e.key_names['p1writer']}", None)
    ]
    by_event = {}
    for a in lines:
        by_event.setdefault(a["event"], []).append(a)
    write = by_event["write"][-1]
    assert write["request_id"] == "req-42" and write["status"] == 200 and write["rows"] == 1
    assert write["eids"] == [["p1", "aud"]] and write["instance"] == e.main and write["table"] == "docs"
    assert write["method"] == "POST" and write["remote"] == "127.0.0.1" and write["time"].endswith("Z")
    delete = by_event["delete"][-1]
    assert delete["rows"] == 1 and delete["eids"] == [["p1", "aud", None, None, None]]
    refused = by_event["refused"]
    assert any(r["status"] == 403 and r["reason"].startswith("entityId: ") for r in refused)
    assert any(
        r["status"] == 401 and r["principal"] is None and "unknown or invalid" in r["reason"] for r in refused
    )
    audit_text = e.audit.read_text()
    assert value not in audit_text
    answer = await e.call("GET", "/v1", cred="admin", headers={"X-Request-Id": "bad id with spaces"})
    assert (
        answer.headers["X-Request-Id"] != "bad id with spaces" and len(answer.headers["X-Request-Id"]) == 32
    )
    leaks(e, caplog.text)


async def test_cors_preflights_need_no_credentials(aiohttp_client, tmp_path, names) -> None:
    auth = AuthSettings(keys=True, keys_table=names.keys_table)
    settings = Settings(layouts=str(names.root), store="memory:", auth=auth, cors=("https://app.test",))
    client = await aiohttp_client(served(await init_app(settings)))
    preflight = await client.options(
        "/v1/instances",
        headers={
            "Origin": "https://app.test",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert preflight.status == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    refused = await client.get("/v1/instances", headers={"Origin": "https://app.test"})
    assert refused.status == 401  # and the browser may read why:
    assert refused.headers["Access-Control-Allow-Origin"] == "https://app.test"


async def test_basic_is_refused_over_plain_http_on_a_network_address(aiohttp_client, names) -> None:
    """The check follows the listening address of the settings (the test client itself connects over
    loopback): Basic credentials sent in clear over a network are refused, Bearer ones are not."""
    results = {}
    for label, extra in (
        ("plain", {}),
        ("allowed", {"allow_basic_over_http": True}),
    ):
        auth = AuthSettings(keys=True, keys_table=names.keys_table, **extra)
        app = await init_app(Settings(layouts=str(names.root), store="memory:", host="0.0.0.0", auth=auth))
        client = ApiClient(await aiohttp_client(served(app)), "memory")
        _, secret = await asyncio.to_thread(
            KeyTable(client.store, names.keys_table).create, "web", ["*:read"]
        )
        by_basic = await client.get("/v1/instances", headers={"Authorization": basic("web", secret)})
        by_bearer = await client.get("/v1/instances", headers={"Authorization": bearer(secret)})
        results[label] = (by_basic, by_bearer)
    plain_basic, plain_bearer = results["plain"]
    detail = plain_basic.problem(401, "authorization")["detail"]
    assert "HTTP Basic is refused over plain HTTP" in detail and secret not in detail
    assert plain_basic.headers.getall("WWW-Authenticate") == ['Bearer realm="kijirest"']  # no Basic prompt
    assert plain_bearer.status == 200
    allowed_basic, _ = results["allowed"]
    assert allowed_basic.status == 200


async def test_an_expiring_key_stops_at_its_time_even_while_cached(aiohttp_client, names) -> None:
    auth = AuthSettings(keys=True, keys_table=names.keys_table)
    app = await init_app(Settings(layouts=str(names.root), store="memory:", auth=auth))
    client = ApiClient(await aiohttp_client(served(app)), "memory")
    keys = KeyTable(client.store, names.keys_table)
    _, secret = await asyncio.to_thread(keys.create, "brief", ["*:read"], 1)
    record = await asyncio.to_thread(keys.by_name, "brief")
    headers = {"Authorization": bearer(secret)}
    assert (await client.get("/v1/instances", headers=headers)).status == 200  # now cached for 5 s
    await asyncio.sleep(max(0.0, record.expires_ms / 1000 - time.time()) + 0.05)
    answer = await client.get("/v1/instances", headers=headers)
    assert "API key expired" in answer.problem(401, "authorization")["detail"]


async def test_without_auth_every_route_answers_as_before(aiohttp_client, names) -> None:
    app = await init_app(Settings(layouts=str(names.root), store="memory:"))
    client = ApiClient(await aiohttp_client(served(app)), "memory")
    listed = await client.get("/v1/instances")
    assert sorted(i["name"] for i in listed.json()) == sorted([names.main, names.other])
    assert (await client.get("/v1/keys")).status == 404  # no key routes without auth.keys
    assert "X-Request-Id" not in listed.headers


async def test_a_key_table_that_vanished_is_recreated_and_its_keys_are_unknown(aiohttp_client, names) -> None:
    """HBase came back empty: the key table is re-created (as the catalog's tables are) and the
    keys that were in it answer 401 like any unknown key, not 500."""
    auth = AuthSettings(keys=True, keys_table=names.keys_table)
    app = await init_app(Settings(layouts=str(names.root), store="memory:", auth=auth))
    client = ApiClient(await aiohttp_client(served(app)), "memory")
    _, secret = await asyncio.to_thread(KeyTable(client.store, names.keys_table).create, "gone", ["*:read"])
    await asyncio.to_thread(client.store.delete_table, names.keys_table)
    answer = await client.get("/v1/instances", headers={"Authorization": bearer(secret)})
    assert "unknown or invalid API key" in answer.problem(401, "authorization")["detail"]
    assert names.keys_table in client.store.list_tables()


async def test_a_large_body_planned_as_it_arrives_is_refused_whole_for_one_row_outside(env: Env) -> None:
    """Bodies over 256 KiB are planned row by row while they are read (writer.RowPlanner): the
    row-prefix check holds there too, and nothing of the body is written."""
    e = env
    await e.key("p1bulk", f'{e.main}/docs:write@["p1"]')
    docs = e.rows_path("docs")
    rows = [{"entityId": ["p1", f"bulk{i}"], "cells": label_cell("x" * 1000)} for i in range(400)]
    before = await e.snapshot()
    outside = [*rows, {"entityId": ["p2", "bulk"], "cells": label_cell("outside")}]
    assert len(orjson.dumps(outside)) > 300_000
    answer = await e.call("POST", docs, body=outside, cred="p1bulk")
    assert "nothing was written" in answer.problem(403, "[400].entityId")["detail"]
    assert await e.snapshot() == before
    assert (await e.call("POST", docs, body=rows, cred="p1bulk")).status == 200
    written = [r["entityId"][:2] for r in await e.rows("docs", {"eid": eid(["p1", []])})]
    assert sum(1 for i in written if i[1].startswith("bulk")) == 400


async def test_expect_100_continue_without_credentials_is_401_before_the_body(env: Env) -> None:
    e = env
    before = await e.snapshot()
    server = e.api.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        body = orjson.dumps({"entityId": DOCS[0], "cells": label_cell("never sent")})
        writer.write(
            (
                f"POST {e.rows_path('docs')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 401 "), head  # no 100 Continue: the body is never asked for
    assert b'www-authenticate: bearer realm="kijirest"' in head.lower()
    assert await e.snapshot() == before
    refused = [orjson.loads(line) for line in e.audit.read_text().splitlines()]
    assert any(r.get("status") == 401 and r.get("method") == "POST" for r in refused)
