"""Gateway settings: defaults, the YAML config file, and command-line overrides (api.md start-up)."""

from __future__ import annotations

import resource
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from kijirest.auth.config import AuthConfigError, AuthSettings, is_loopback, parse_auth

DEFAULT_STORE = "embedded:./kijirest-data"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
#: descriptors kept free for the store, log files and the listening socket (max_connections' margin)
DESCRIPTOR_MARGIN = 256


def default_max_connections() -> int:
    """min(4096, the process's soft RLIMIT_NOFILE - 256): connections beyond the descriptors the
    process may open cannot be refused gracefully (accept() itself fails)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return min(4096, soft - DESCRIPTOR_MARGIN) if soft >= 2 * DESCRIPTOR_MARGIN else max(1, soft // 2)


#: memory bounds (docs/operations.md "Memory bounds"): rows one POST may write, row streams in flight
#: at once, and the bytes of store batches all streams together may hold
DEFAULT_MAX_ROWS_PER_POST = 10_000
DEFAULT_MAX_STREAMS = 256
DEFAULT_STREAM_BUFFER = 32 * 1024 * 1024


class SettingsError(ValueError):
    """A config file or flag that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    layouts: str = "layouts"
    store: str = DEFAULT_STORE
    host: str = "127.0.0.1"
    port: int = 8080
    instances: tuple[str, ...] | None = None  # visible instances; None = all
    #: origins allowed to call the API from a browser: () = none (no CORS headers at all); "*" =
    #: any origin, only when written so (or as the spec's legacy `cors: true`); never with
    #: credentials
    cors: tuple[str, ...] = ()
    max_body_size: int = DEFAULT_MAX_BODY
    workers: int = 1
    demo: bool = False  # load conf/demo-rows.json into empty demo tables at start-up
    # the HTTP edge (server.py, docs/operations.md): how long a connection may idle or dawdle, and how
    # many may be open at once
    keepalive_timeout: float = 15.0  # an idle keep-alive connection is closed after this many seconds
    header_timeout: float = 10.0  # a request head must be complete within this many seconds
    body_timeout: float = 30.0  # a body that sends nothing for this many seconds is a 408
    max_connections: int = field(default_factory=default_max_connections)
    #: seconds a store call may take (HBase: Thrift socket timeouts and the connection-pool wait;
    #: a `timeout=MS` in the hbase:// URI wins); an outage answers 503 after at most this long
    store_timeout: float = 10.0
    max_rows_per_post: int = DEFAULT_MAX_ROWS_PER_POST  # more: 413, nothing written
    max_streams: int = DEFAULT_MAX_STREAMS  # row streams (scans) at once; more: 503 + Retry-After
    stream_buffer_bytes: int = DEFAULT_STREAM_BUFFER  # shared by the store batches of open scans
    # who may call (kijirest/auth/, docs/security.md): None = not configured (loopback only)
    auth: AuthSettings | None = None
    tls_cert: str | None = None  # PEM certificate chain: serve HTTPS
    tls_key: str | None = None  # PEM private key of tls_cert
    audit_log: str | None = None  # a file path, or logger:<name>; None = no audit log

    def __post_init__(self) -> None:
        object.__setattr__(self, "cors", cors_origins(self.cors))

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with every non-None value applied (command-line flags override the file)."""
        given = {k: v for k, v in values.items() if v is not None}
        return replace(self, **given)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "layouts": str,
    "store": str,
    "host": str,
    "port": int,
    "instances": list,
    "cors": (bool, list),
    "max_body_size": int,
    "workers": int,
    "demo": bool,
    "keepalive_timeout": (int, float),
    "header_timeout": (int, float),
    "body_timeout": (int, float),
    "max_connections": int,
    "store_timeout": (int, float),
    "max_rows_per_post": int,
    "max_streams": int,
    "stream_buffer_bytes": int,
    "auth": (str, bool, dict),
    "tls_cert": str,
    "tls_key": str,
    "audit_log": str,
}


def load_config(path: str | Path) -> Settings:
    """Read a YAML config file; unknown keys and wrong types are errors naming the key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: invalid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: the config must be a mapping of settings")
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise SettingsError(f"{path}: {key}: unknown setting (known: {', '.join(sorted(known))})")
        expected = _TYPES[key]
        # bool is an int in Python: reject it where a number is meant
        if not isinstance(value, expected) or (bool not in _as_tuple(expected) and isinstance(value, bool)):
            raise SettingsError(f"{path}: {key}: expected {_type_name(expected)}, got {value!r}")
        if key == "cors":
            try:
                value = cors_origins(value)
            except SettingsError as exc:
                raise SettingsError(f"{path}: {exc}") from None
        if key == "auth":
            try:
                value = parse_auth(value)
            except AuthConfigError as exc:
                raise SettingsError(f"{path}: {exc}") from None
        if key == "instances":
            if not all(isinstance(v, str) for v in value):
                raise SettingsError(f"{path}: instances: expected a list of instance names")
            value = tuple(value)
        values[key] = value
    settings = Settings(**values)
    if path is not None and "layouts" in values:
        # a relative layouts directory in a config file is relative to that file
        layouts = Path(settings.layouts)
        if not layouts.is_absolute():
            settings = replace(settings, layouts=str(Path(path).parent / layouts))
    settings = _files_relative_to(settings, Path(path).parent)
    return validate(settings, str(path))


def _files_relative_to(settings: Settings, base: Path) -> Settings:
    """Relative file paths of a config file (TLS, audit log, JWT keys) are relative to that file."""

    def rel(value: str | None) -> str | None:
        if value is None or value.startswith(("logger:", "http://", "https://")) or Path(value).is_absolute():
            return value
        return str(base / value)

    changed: dict[str, Any] = {k: rel(getattr(settings, k)) for k in ("tls_cert", "tls_key", "audit_log")}
    auth = settings.auth
    if auth is not None and auth.jwt is not None:
        jwt = auth.jwt
        jwt = replace(
            jwt, secret_file=rel(jwt.secret_file), public_keys=rel(jwt.public_keys), jwks=rel(jwt.jwks)
        )
        changed["auth"] = replace(auth, jwt=jwt)
    return replace(settings, **changed)


def cors_origins(value: Any) -> tuple[str, ...]:
    """The `cors` setting as a tuple of origins: false/None/[] = none, true = ("*",) (the spec's
    boolean form: any origin), a list = those origins (`scheme://host[:port]`, or "*")."""
    if value is None or value is False:
        return ()
    if value is True:
        return ("*",)
    if isinstance(value, str):
        value = [value]
    origins = tuple(value)
    for origin in origins:
        if not isinstance(origin, str) or not (
            origin == "*" or (origin.startswith(("http://", "https://")) and origin.count("/") == 2)
        ):
            raise SettingsError(
                f"cors: expected origins such as 'https://app.example' (scheme://host[:port]) or '*', "
                f"got {origin!r}"
            )
    if "*" in origins and len(origins) > 1:
        raise SettingsError("cors: '*' allows every origin: give it alone or list the origins")
    return origins


def validate(settings: Settings, where: str = "settings") -> Settings:
    if not 0 <= settings.port <= 65535:
        raise SettingsError(f"{where}: port: must be between 0 and 65535, got {settings.port}")
    if settings.max_body_size <= 0:
        raise SettingsError(f"{where}: max_body_size: must be a positive number of bytes")
    if settings.workers < 1:
        raise SettingsError(f"{where}: workers: must be at least 1")
    for name in ("keepalive_timeout", "header_timeout", "body_timeout"):
        if not getattr(settings, name) > 0:
            raise SettingsError(f"{where}: {name}: must be a positive number of seconds")
    if settings.max_connections < 1:
        raise SettingsError(f"{where}: max_connections: must be at least 1")
    if not 0 < settings.store_timeout <= 3600:
        raise SettingsError(f"{where}: store_timeout: must be a number of seconds in (0, 3600]")
    for name in ("max_rows_per_post", "max_streams", "stream_buffer_bytes"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{where}: {name}: must be at least 1")
    validate_security(settings, where)
    return settings


def validate_security(settings: Settings, where: str = "settings") -> None:
    """Secure by default: no credentials are asked only on a loopback address, unless `auth: none`
    is written; TLS needs both files."""
    if settings.auth is None and not is_loopback(settings.host):
        raise SettingsError(
            f"{where}: host {settings.host} is not a loopback address and no auth is configured: set "
            "auth (keys / jwt) in the config, or write auth: none to serve it without credentials"
        )
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError(f"{where}: tls_cert and tls_key: give both (PEM files) or neither")


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _type_name(t: type | tuple[type, ...]) -> str:
    if t == (bool, list):
        return "true, false or a list of origins"
    if t == (int, float):
        return "a number of seconds"
    if t == (str, bool, dict):
        return "'none' or a mapping with keys / jwt"
    return {str: "a string", int: "an integer", bool: "true or false", list: "a list"}.get(t, str(t))  # type: ignore[arg-type]
