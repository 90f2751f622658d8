"""The aiohttp middleware that authenticates every request and writes the audit log.

`Authenticator.principal(request)` reads `Authorization`:

- `Bearer <API key>` (`kr1_...`, `keys.py`) or `Bearer <JWT>` (`tokens.py`);
- `Basic base64(<key name>:<API key>)` (`curl -u name:key`, a browser's prompt), when keys are on
  and the connection is HTTPS, or the gateway listens on loopback only, or
  `auth.allow_basic_over_http` says so: a browser sends Basic credentials with every request, and
  over plain HTTP on a network anyone on the path reads them;

and puts the caller's `Principal` on the request (`state.PRINCIPAL`), or answers 401 with the
`WWW-Authenticate` challenges (`Bearer realm="kijirest"`, and `Basic realm="kijirest"` when Basic is
taken) and a detail naming what was wrong, never the credential. Grants are checked where the
request is understood: `state.table_of` / `rows_of`, the request model (`query.py`, `writer.py`).

What was verified is cached for `auth.cache_seconds` (at most 5 s): the header text → the principal
(or the refusal, for 1 s, so that a client repeating a bad key does not cost a store read each time).
Why that is safe with revocation: a revoked or rotated key is refused by every worker at the latest
when its entry ends, 5 s after the change reached the store (the requirement is 10 s); an expiry is
checked on every request against the principal's `expires_at`, so an expiring key or token stops at
its time exactly, cached or not; a JWT cannot be revoked at all, and its entry never outlives `exp`.
Concurrent first requests with the same key share one store read.

CORS preflights never reach this middleware (`routes.cors_middleware` answers them first): a browser
sends them without credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kijirest.auth.audit import AuditLog, request_id_of
from kijirest.auth.config import AuthSettings
from kijirest.auth.grants import Principal
from kijirest.auth.keys import KeyCheck, KeyTable, looks_like_key
from kijirest.auth.tokens import JwtVerifier
from kijirest.problems import Problem, Unauthorized
from kijirest.state import AUDIT_EVENT, AUDIT_ROWS, PRINCIPAL, REFUSED, STORE

log = logging.getLogger("kijirest.auth")

__all__ = ["AUDIT", "AUTHENTICATOR", "REQUEST_ID", "Authenticator", "add_request_id", "auth_middleware"]

#: cached verifications at most (each is small); past it expired entries go, then all
MAX_CACHED = 10_000
#: seconds a refusal of a key is remembered
FAILURE_SECONDS = 1.0

_KEY_FAILURES = {
    "unknown": "unknown or invalid API key",
    "revoked": "API key revoked",
    "expired": "API key expired",
}


@dataclass(frozen=True, slots=True)
class _Entry:
    until: float  # time.monotonic()
    principal: Principal | None
    failure: str | None = None


class Authenticator:
    """Credentials → Principal for one app, with the caches of what was verified."""

    def __init__(self, auth: AuthSettings, *, basic_allowed: bool) -> None:
        self.auth = auth
        self.keys_on = auth.keys
        self.basic_allowed = auth.keys and basic_allowed
        self.challenges: tuple[str, ...] = ('Bearer realm="kijirest"',)
        if self.basic_allowed:
            self.challenges += ('Basic realm="kijirest"',)
        self.jwt = JwtVerifier(auth.jwt, self.challenges) if auth.jwt is not None else None
        self.keys: KeyTable | None = None  # set by `start` (the store opens with the app)
        self.ttl = auth.cache_seconds
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[KeyCheck]] = {}
        what = (
            "Bearer <API key or JWT>"
            if self.keys_on and self.jwt
            else "Bearer <API key>"
            if self.keys_on
            else "Bearer <JWT>"
        )
        if self.basic_allowed:
            what += ", or HTTP Basic with the key as the password"
        self._missing = f"missing credentials: send Authorization: {what}"

    async def start(self, keys: KeyTable | None) -> None:
        self.keys = keys
        if self.jwt is not None:
            await self.jwt.start()

    async def close(self) -> None:
        if self.jwt is not None:
            await self.jwt.close()

    def refuse(self, what: str) -> Unauthorized:
        return Unauthorized(what, self.challenges)

    async def principal(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization")
        if header is None:
            raise self.refuse(self._missing)
        entry = self._cache.get(header)
        if entry is not None and entry.until > time.monotonic():
            principal = entry.principal
            if principal is None:
                raise self.refuse(entry.failure or "invalid credentials")
            if principal.expires_at is not None and principal.expires_at <= time.time():
                raise self.refuse(_expired(principal))
            return principal
        return await self._verify(request, header)

    async def _verify(self, request: web.Request, header: str) -> Principal:
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        basic_user: str | None = None
        if scheme == "bearer":
            token = value
        elif scheme == "basic":
            if not self.keys_on:
                raise self.refuse("HTTP Basic is not taken here (API keys are off): send a Bearer JWT")
            if not self.basic_allowed:
                raise self.refuse(
                    "HTTP Basic is refused over plain HTTP on a non-loopback address: use HTTPS "
                    "(tls_cert / tls_key), a Bearer header, or set auth.allow_basic_over_http"
                )
            try:
                basic_user, sep, token = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                sep = ""
            if not sep:
                raise self.refuse("malformed HTTP Basic credentials (base64 of <key name>:<API key>)")
        else:
            # the "scheme" may be a bare secret sent without one: never echo it
            taken = "Bearer or Basic" if self.basic_allowed else "Bearer"
            raise self.refuse(f"unsupported Authorization scheme (send {taken})")
        if not token:
            raise self.refuse("empty credentials")
        now = time.monotonic()
        if self.keys_on and looks_like_key(token):
            check = await self._check_key(request, token)
            principal = check.principal
            failure = _KEY_FAILURES.get(check.failure or "", "unknown or invalid API key")
            if principal is not None and basic_user is not None and principal.name != f"key:{basic_user}":
                principal, failure = None, _KEY_FAILURES["unknown"]
            if principal is None:
                self._remember(header, _Entry(now + min(self.ttl, FAILURE_SECONDS), None, failure))
                raise self.refuse(failure)
            self._remember(header, _Entry(now + self.ttl, principal))
            return principal
        if basic_user is not None or self.jwt is None:
            raise self.refuse(_KEY_FAILURES["unknown"])
        principal, exp = await self.jwt.verify(token)
        until = min(now + self.ttl, now + (exp - time.time()))
        self._remember(header, _Entry(until, principal))
        return principal

    async def _check_key(self, request: web.Request, token: str) -> KeyCheck:
        """One store read per key at a time: concurrent first requests wait for the same one."""
        assert self.keys is not None, "Authenticator.start was not called"
        fut = self._inflight.get(token)
        if fut is None:
            fut = asyncio.ensure_future(request.app[STORE].run(self.keys.check, token))
            self._inflight[token] = fut
            fut.add_done_callback(lambda _f: self._inflight.pop(token, None))
        return await asyncio.shield(fut)

    def _remember(self, header: str, entry: _Entry) -> None:
        cache = self._cache
        if len(cache) >= MAX_CACHED:
            now = time.monotonic()
            for k in [k for k, e in cache.items() if e.until <= now]:
                del cache[k]
            if len(cache) >= MAX_CACHED:
                cache.clear()
        cache[header] = entry


def _expired(principal: Principal) -> str:
    return "API key expired" if principal.name.startswith("key:") else "token expired"


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
AUDIT = web.AppKey("audit", AuditLog)
REQUEST_ID = web.RequestKey("request_id", str)


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Authenticate (when auth is on), run the handler, and audit writes, deletes and refusals
    (when `audit_log` is set)."""
    app = request.app
    audit = app.get(AUDIT)
    if audit is None:
        request[PRINCIPAL] = await app[AUTHENTICATOR].principal(request)
        return await handler(request)
    request[REQUEST_ID] = request_id_of(request.headers.get("X-Request-Id"))
    status = 500
    reason: str | None = None
    try:
        authenticator = app.get(AUTHENTICATOR)
        if authenticator is not None:
            request[PRINCIPAL] = await authenticator.principal(request)
        response = await handler(request)
        status = response.status
        return response
    except Problem as exc:
        status, reason = exc.status, exc.detail
        raise
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client closed the connection (nginx's code)
        raise
    finally:
        audit_request(audit, request, status, reason)


def audit_request(audit: AuditLog, request: web.Request, status: int, reason: str | None) -> None:
    refused = status in (401, 403) or REFUSED in request
    event = request.get(AUDIT_EVENT)
    if event is None:
        if refused:
            event = "refused"
        elif request.method == "POST":
            event = "write"
        elif request.method == "DELETE":
            event = "delete"
        else:
            return
    if refused and reason is None:
        reason = request.get(REFUSED)
    elif REFUSED in request:
        reason = request[REFUSED]  # the 404's detail says "unknown table"; the audit says why
    principal = request.get(PRINCIPAL)
    eids = request.get(AUDIT_ROWS) or []
    try:
        audit.record(
            event,
            principal=principal.name if principal is not None else None,
            remote=request.remote,
            method=request.method,
            path=request.path,  # never the query string: it is the client's, and may hold anything
            instance=request.match_info.get("instance"),
            table=request.match_info.get("table"),
            rows=len(eids),
            eids=eids,
            status=status,
            request_id=request.get(REQUEST_ID),
            reason=reason,
        )
    except OSError as exc:  # a full disk must not turn every write into a 500
        log.error("audit log %s: cannot write: %s", audit.where, exc)


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the answer carries the request id the audit log recorded."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-Id"] = request_id
