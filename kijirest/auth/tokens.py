"""Bearer JWTs from the team's identity provider, verified with PyJWT (never by hand).

- HS256 with a shared secret (`auth.jwt.secret_file`, at least 32 bytes), or RS256 / ES256 with
  public keys from a PEM file (`public_keys`) or a JWKS document (`jwks`: a file, or an http(s)
  URL fetched with aiohttp). The algorithm of a token must be one of the configured ones and the
  key is picked by it (an HMAC secret is never tried for RS256, a public key never as an HMAC
  secret: no algorithm confusion); `none` is never accepted.
- `exp` is required; `nbf`, `iat`, `iss` (when `issuer` is set) and `aud` (when `audience` is set;
  a token naming an audience is refused when none is configured) are checked, with `leeway`
  seconds of clock skew.
- The grants come from the `grants_claim` claim (a list of grant strings, or one space-separated
  string like an OAuth `scope`); the principal is `jwt:<sub>` (`principal_claim`).
- A JWKS is re-read every `jwks_refresh` seconds in the background, and at once (at most every
  `MIN_REFETCH` seconds) when a token names a `kid` it does not hold: the provider's key rotation
  is followed without a restart. Until the first read succeeds, tokens are answered 503.

Every refusal is `problems.Unauthorized` with a detail naming what was wrong (`token expired`,
`token signature is invalid`, ...), never any part of the token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from kijirest.auth.config import JwtSettings
from kijirest.auth.grants import GrantError, Principal, parse_grants
from kijirest.problems import Unauthorized, Unavailable

log = logging.getLogger("kijirest.auth")

__all__ = ["JwtVerifier", "TokenConfigError"]

MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
MIN_REFETCH = 10.0  # seconds between JWKS reads caused by unknown kids (an attacker can send any kid)
JWKS_MAX_BYTES = 1 << 20
_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)
_KEY_TYPES = {"RS256": rsa.RSAPublicKey, "ES256": ec.EllipticCurvePublicKey}


class TokenConfigError(ValueError):
    """A JWT setting whose files or keys cannot be used (start-up fails with this message)."""


class JwtVerifier:
    def __init__(self, settings: JwtSettings, challenges: tuple[str, ...]) -> None:
        self.settings = settings
        self.challenges = challenges
        self.algorithms = settings.effective_algorithms
        self.secret = _read_secret(settings.secret_file) if settings.secret_file else None
        self.pem_keys = _read_pem_keys(settings.public_keys) if settings.public_keys else []
        self.jwks = JwksSource(settings.jwks, settings.jwks_refresh) if settings.jwks else None
        require = ["exp"]
        if settings.issuer is not None:
            require.append("iss")
        if settings.audience is not None:
            require.append("aud")
        self._options: Any = {"require": require}

    async def start(self) -> None:
        if self.jwks is not None:
            await self.jwks.refresh(reason="start-up")

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()

    def _refuse(self, what: str) -> Unauthorized:
        return Unauthorized(what, self.challenges)

    async def verify(self, token: str) -> tuple[Principal, float]:
        """The principal of a valid token, and its `exp` (seconds since the epoch)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise self._refuse("malformed token (neither an API key nor a JWT)") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            shown = alg[:16] if isinstance(alg, str) else type(alg).__name__
            raise self._refuse(f"token algorithm {shown!r} is not accepted ({', '.join(self.algorithms)})")
        kid = header.get("kid")
        keys = await self._keys_for(alg, kid if isinstance(kid, str) else None)
        claims = self._decode(token, alg, keys)
        return self._principal(claims)

    async def _keys_for(self, alg: str, kid: str | None) -> list[Any]:
        if alg == "HS256":
            return [self.secret] if self.secret is not None else []
        wanted = _KEY_TYPES[alg]
        keys: list[Any] = [k for k in self.pem_keys if isinstance(k, wanted)]
        if self.jwks is not None:
            found = self.jwks.keys_for(alg, kid)
            if not found and kid is not None and not keys:
                await self.jwks.refresh_for_unknown_kid()
                found = self.jwks.keys_for(alg, kid)
            if not found and not keys and not self.jwks.loaded:
                raise Unavailable(
                    "authorization", "the identity provider's keys (auth.jwt.jwks) cannot be read"
                )
            self.jwks.refresh_if_due()
            keys += found
        if not keys:
            raise self._refuse(
                "no key verifies this token (unknown kid)" if kid else "no key verifies this token"
            )
        return keys

    def _decode(self, token: str, alg: str, keys: list[Any]) -> dict[str, Any]:
        s = self.settings
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    audience=s.audience,
                    issuer=s.issuer,
                    leeway=s.leeway,
                    options=self._options,
                )
            except jwt.InvalidSignatureError:
                continue  # another key of the set may have signed it
            except jwt.ExpiredSignatureError:
                raise self._refuse("token expired") from None
            except jwt.ImmatureSignatureError:
                raise self._refuse("token not valid yet (nbf)") from None
            except jwt.InvalidAudienceError:
                raise self._refuse("token audience is invalid") from None
            except jwt.InvalidIssuerError:
                raise self._refuse("token issuer is invalid") from None
            except jwt.MissingRequiredClaimError as exc:
                raise self._refuse(f"token has no {exc.claim!r} claim") from None
            except jwt.InvalidIssuedAtError:
                raise self._refuse("token issued in the future (iat)") from None
            except jwt.InvalidKeyError:
                continue  # a key of another type in the set
            except jwt.InvalidTokenError:
                raise self._refuse("malformed token") from None
        raise self._refuse("token signature is invalid")

    def _principal(self, claims: dict[str, Any]) -> tuple[Principal, float]:
        s = self.settings
        subject = claims.get(s.principal_claim)
        if not isinstance(subject, str | int) or isinstance(subject, bool) or subject == "":
            raise self._refuse(f"token has no {s.principal_claim!r} claim")
        raw = claims.get(s.grants_claim, [])
        try:
            grants = parse_grants(raw)
        except GrantError as exc:
            raise self._refuse(f"token claim {s.grants_claim!r}: {exc}") from None
        exp = float(claims["exp"])
        return Principal(f"jwt:{str(subject)[:200]}", grants, exp + s.leeway), exp


def _read_secret(path: str) -> bytes:
    try:
        data = Path(path).read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise TokenConfigError(f"auth.jwt.secret_file {path}: cannot read it: {exc.strerror}") from None
    if len(data) < MIN_SECRET_BYTES:
        raise TokenConfigError(
            f"auth.jwt.secret_file {path}: an HS256 secret needs at least {MIN_SECRET_BYTES} bytes "
            "(e.g. `openssl rand -base64 48`)"
        )
    return data


def _read_pem_keys(path: str) -> list[Any]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TokenConfigError(f"auth.jwt.public_keys {path}: cannot read it: {exc.strerror}") from None
    keys = []
    for block in _PEM_BLOCK.findall(data):
        try:
            key = load_pem_public_key(block)
        except ValueError as exc:
            raise TokenConfigError(
                f"auth.jwt.public_keys {path}: a PEM block is not a public key: {exc}"
            ) from None
        if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise TokenConfigError(f"auth.jwt.public_keys {path}: only RSA and EC public keys are used")
        keys.append(key)
    if not keys:
        raise TokenConfigError(f"auth.jwt.public_keys {path}: no '-----BEGIN PUBLIC KEY-----' block")
    return keys


class JwksSource:
    """A JWKS document (file or URL), re-read every `refresh` seconds; readers get the current
    keys at once and never wait for a scheduled refresh."""

    def __init__(self, where: str, refresh: float) -> None:
        self.where = where
        self.refresh_seconds = refresh
        self.is_url = where.startswith(("http://", "https://"))
        if not self.is_url and not os.path.exists(where):
            raise TokenConfigError(f"auth.jwt.jwks {where}: no such file (or give an http(s) URL)")
        self._keys: list[jwt.PyJWK] = []
        self.loaded = False
        self._loaded_at = -1e18
        self._tried_at = -1e18
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._session: Any = None

    def keys_for(self, alg: str, kid: str | None) -> list[Any]:
        out = []
        for k in self._keys:
            if kid is not None and k.key_id is not None and k.key_id != kid:
                continue
            if k.algorithm_name != alg:  # the JWK's `alg`, or its key type's default
                continue
            if isinstance(k.key, _KEY_TYPES[alg]):
                out.append(k.key)
        return out

    def refresh_if_due(self) -> None:
        now = time.monotonic()
        if now - self._loaded_at >= self.refresh_seconds and now - self._tried_at >= min(
            MIN_REFETCH, self.refresh_seconds
        ):
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self.refresh(reason="scheduled"))

    async def refresh_for_unknown_kid(self) -> None:
        if time.monotonic() - self._tried_at >= min(MIN_REFETCH, self.refresh_seconds):
            await self.refresh(reason="unknown kid")

    async def refresh(self, *, reason: str) -> None:
        async with self._lock:
            self._tried_at = time.monotonic()
            try:
                data = await self._read()
                keys = list(jwt.PyJWKSet.from_json(data).keys)
            except Exception as exc:  # unreachable, not JSON, no usable key: keep the old keys
                log.warning("auth.jwt.jwks %s: cannot read it (%s): %s", self.where, reason, exc)
                return
            self._keys = keys
            self.loaded = True
            self._loaded_at = time.monotonic()
            log.info("auth.jwt.jwks %s: %d key(s) read (%s)", self.where, len(keys), reason)

    async def _read(self) -> str:
        if not self.is_url:
            return await asyncio.get_running_loop().run_in_executor(None, Path(self.where).read_text)
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        async with self._session.get(self.where) as resp:
            if resp.status != 200:
                raise OSError(f"HTTP {resp.status}")
            body = await resp.content.read(JWKS_MAX_BYTES + 1)
            if len(body) > JWKS_MAX_BYTES:
                raise OSError(f"larger than {JWKS_MAX_BYTES} bytes")
            return body.decode("utf-8")

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._session is not None:
            await self._session.close()
