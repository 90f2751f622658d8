"""The `auth` setting: which credentials the gateway takes, read from the YAML config and flags.

```yaml
auth:
  keys: true                        # API keys (kijirest keys create ...), Bearer or HTTP Basic
  keys_table: kijirest.api_keys     # the store table holding them (default)
  allow_basic_over_http: false      # HTTP Basic on a non-loopback address without TLS
  jwt:
    secret_file: /etc/kijirest/jwt.secret    # HS256: the shared secret, in a file
    public_keys: /etc/kijirest/idp.pem       # RS256 / ES256: PEM public key(s)
    jwks: https://idp.example/.well-known/jwks.json   # or a JWKS file
    issuer: https://idp.example/
    audience: kijirest
    grants_claim: kijirest_grants
```

`auth: none` says, in writing, that the gateway serves without credentials; leaving `auth` out
does the same only on a loopback address (`settings.validate` refuses any other). Secrets are
never written in the config itself: the HS256 secret is read from a file.

Neutral: no aiohttp, no PyJWT (`settings.py` imports this module).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "DEFAULT_KEYS_TABLE",
    "AuthConfigError",
    "AuthSettings",
    "JwtSettings",
    "is_loopback",
    "parse_auth",
]

DEFAULT_KEYS_TABLE = "kijirest.api_keys"
JWT_ALGORITHMS = ("HS256", "RS256", "ES256")


class AuthConfigError(ValueError):
    """An `auth` value that cannot be used; the message names the member."""


@dataclass(frozen=True)
class JwtSettings:
    secret_file: str | None = None  # HS256 shared secret (the file's bytes, trailing newline dropped)
    public_keys: str | None = None  # a PEM file of one or more public keys (RS256 / ES256)
    jwks: str | None = None  # a JWKS document: http(s) URL or file path
    algorithms: tuple[str, ...] = ()  # () = those the key sources can verify
    issuer: str | None = None  # required `iss` when set
    audience: str | None = None  # required `aud` when set
    grants_claim: str = "kijirest_grants"  # a list of grant strings, or one space-separated string
    principal_claim: str = "sub"
    leeway: float = 5.0  # seconds of clock skew allowed on exp / nbf / iat
    jwks_refresh: float = 300.0  # seconds between JWKS re-reads (and an unknown `kid` re-reads it)

    @property
    def effective_algorithms(self) -> tuple[str, ...]:
        if self.algorithms:
            return self.algorithms
        algs: list[str] = []
        if self.secret_file:
            algs.append("HS256")
        if self.public_keys or self.jwks:
            algs += ["RS256", "ES256"]
        return tuple(algs)


@dataclass(frozen=True)
class AuthSettings:
    """`keys` / `jwt` switched on, or neither (`auth: none`)."""

    keys: bool = False
    keys_table: str = DEFAULT_KEYS_TABLE
    jwt: JwtSettings | None = None
    allow_basic_over_http: bool = False
    #: seconds a verified credential is trusted without another look (revocation reaches every
    #: worker within this plus one request: docs/security.md)
    cache_seconds: float = field(default=5.0)

    @property
    def enabled(self) -> bool:
        return self.keys or self.jwt is not None


_JWT_TYPES: dict[str, Any] = {
    "secret_file": str,
    "public_keys": str,
    "jwks": str,
    "algorithms": list,
    "issuer": str,
    "audience": str,
    "grants_claim": str,
    "principal_claim": str,
    "leeway": (int, float),
    "jwks_refresh": (int, float),
}
_AUTH_TYPES: dict[str, Any] = {
    "keys": bool,
    "keys_table": str,
    "jwt": dict,
    "allow_basic_over_http": bool,
    "cache_seconds": (int, float),
}


def parse_auth(value: Any) -> AuthSettings | None:
    """The `auth` setting of a config file: `none` / false → AuthSettings() (explicitly off),
    a mapping → its settings. Raises AuthConfigError naming the member."""
    if value is None:
        return None
    if value == "none" or value is False:
        return AuthSettings()
    if not isinstance(value, dict):
        raise AuthConfigError("auth: expected 'none' or a mapping with keys / jwt")
    values = _typed("auth", value, _AUTH_TYPES)
    jwt = values.pop("jwt", None)
    if jwt is not None:
        jwt_values = _typed("auth.jwt", jwt, _JWT_TYPES)
        if "algorithms" in jwt_values:
            jwt_values["algorithms"] = tuple(jwt_values["algorithms"])
        values["jwt"] = JwtSettings(**jwt_values)
    return check_auth(AuthSettings(**values))


def check_auth(auth: AuthSettings) -> AuthSettings:
    jwt = auth.jwt
    if auth.cache_seconds < 0 or auth.cache_seconds > 5:
        raise AuthConfigError(
            "auth.cache_seconds: between 0 and 5 (revocation must reach every worker in 10 s)"
        )
    if jwt is not None:
        if not (jwt.secret_file or jwt.public_keys or jwt.jwks):
            raise AuthConfigError(
                "auth.jwt: give secret_file (HS256), public_keys (PEM) or jwks (file or URL)"
            )
        for alg in jwt.effective_algorithms:
            if alg not in JWT_ALGORITHMS:
                raise AuthConfigError(
                    f"auth.jwt.algorithms: {alg!r} is not one of {', '.join(JWT_ALGORITHMS)}"
                )
        if "HS256" in jwt.effective_algorithms and not jwt.secret_file:
            raise AuthConfigError("auth.jwt.algorithms: HS256 needs secret_file")
        if any(a != "HS256" for a in jwt.effective_algorithms) and not (jwt.public_keys or jwt.jwks):
            raise AuthConfigError("auth.jwt.algorithms: RS256 / ES256 need public_keys or jwks")
        if jwt.leeway < 0 or jwt.jwks_refresh <= 0:
            raise AuthConfigError("auth.jwt: leeway must be >= 0 and jwks_refresh > 0 seconds")
    return auth


def _typed(where: str, value: dict, types: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        if key not in types:
            raise AuthConfigError(f"{where}.{key}: unknown member (known: {', '.join(sorted(types))})")
        expected = types[key]
        numeric = expected == (int, float)
        if not isinstance(item, expected) or (numeric and isinstance(item, bool)):
            raise AuthConfigError(f"{where}.{key}: expected {_name(expected)}, got {item!r}")
        if expected is list and not all(isinstance(v, str) for v in item):
            raise AuthConfigError(f"{where}.{key}: expected a list of strings")
        out[key] = item
    return out


def _name(t: Any) -> str:
    if t == (int, float):
        return "a number"
    return {str: "a string", bool: "true or false", list: "a list", dict: "a mapping"}[t]


def with_flags(
    auth: AuthSettings | None,
    *,
    no_auth: bool = False,
    keys: bool = False,
    jwt: dict[str, Any] | None = None,
    allow_basic_over_http: bool = False,
) -> AuthSettings | None:
    """Command-line flags over the config's `auth`: `--no-auth`, `--auth-keys`, `--jwt-*`."""
    given_jwt = {k: v for k, v in (jwt or {}).items() if v is not None}
    if no_auth:
        if keys or given_jwt:
            raise AuthConfigError("--no-auth: not with --auth-keys or --jwt-* flags")
        return AuthSettings()
    if not (keys or given_jwt or allow_basic_over_http):
        return auth
    auth = auth or AuthSettings()
    if keys:
        auth = replace(auth, keys=True)
    if given_jwt:
        auth = replace(auth, jwt=replace(auth.jwt or JwtSettings(), **given_jwt))
    if allow_basic_over_http:
        auth = replace(auth, allow_basic_over_http=True)
    return check_auth(auth)


def is_loopback(host: str) -> bool:
    """Whether a listening address only takes connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
