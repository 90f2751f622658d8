"""`kijirest serve` / `kijirest demo` / `kijirest keys`: the command line (api.md, start-up contract;
docs/security.md for the credentials flags and the key commands)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from kijirest.auth.config import AuthConfigError, with_flags
from kijirest.settings import Settings, SettingsError, load_config, validate

log = logging.getLogger("kijirest")

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kijirest", description="Kiji tables over the KijiREST /v1 API")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "serve the layouts of --layouts from --store"),
        ("demo", "load the demo rows of conf/ into the store (once), then serve them"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--config",
            help="YAML file with layouts, store, host, port, instances, cors, max_body_size, "
            "keepalive_timeout, header_timeout, body_timeout, max_connections (docs/operations.md)",
        )
        p.add_argument("--layouts", help="directory of <instance>/<table>.json layout files")
        p.add_argument("--store", help="memory: | embedded:PATH | hbase://HOST[:PORT][?thrift2_port=N]")
        p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port to listen on (default 8080; 0 = any free port)")
        p.add_argument("--workers", type=int, help="processes sharing the port with SO_REUSEPORT (default 1)")
        p.add_argument("--store-timeout", type=float, help="seconds a store call may take (default 10)")
        p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
        _add_security_flags(p)
    _add_keys_parser(sub)
    return parser


def _add_security_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("credentials, TLS and audit (the config's auth / tls_* / audit_log)")
    g.add_argument("--no-auth", action="store_true", help="serve without credentials (= auth: none)")
    g.add_argument("--auth-keys", action="store_true", help="take API keys (kijirest keys create ...)")
    g.add_argument("--jwt-secret-file", help="take HS256 JWTs signed with the secret in this file")
    g.add_argument("--jwt-public-keys", help="take RS256 / ES256 JWTs verified with this PEM file's keys")
    g.add_argument("--jwt-jwks", help="take RS256 / ES256 JWTs verified with this JWKS (file or URL)")
    g.add_argument("--jwt-issuer", help="the required iss claim")
    g.add_argument("--jwt-audience", help="the required aud claim")
    g.add_argument("--jwt-grants-claim", help="the claim holding the grants (default kijirest_grants)")
    g.add_argument(
        "--allow-basic-over-http",
        action="store_true",
        help="take HTTP Basic on a non-loopback address without TLS (a proxy terminates TLS elsewhere)",
    )
    g.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    g.add_argument("--tls-key", help="PEM private key of --tls-cert")
    g.add_argument("--audit-log", help="audit log: a file path, or logger:NAME")


def _add_keys_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create, list, rotate and revoke API keys (in the store)")
    actions = keys.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text)
        p.add_argument("--config", help="the gateway's YAML config (its store, auth.keys_table, audit_log)")
        p.add_argument("--store", help="memory: | embedded:PATH | hbase://HOST[:PORT][?thrift2_port=N]")
        p.add_argument("--audit-log", help="audit log: a file path, or logger:NAME")
        p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ...")
        return p

    create = action("create", "make a key and print it (once: only its digest is stored)")
    create.add_argument("--name", required=True, help="the key's name (the user name of HTTP Basic)")
    create.add_argument(
        "--grant",
        action="append",
        required=True,
        help="<instance>[/<table>]:<read|write|admin>[@<entity-ID prefix>]; repeat for more",
    )
    create.add_argument("--expires", help="lifetime: 90m, 12h, 30d, 2w (default: none)")
    action("list", "list the keys (never their secrets)")
    for name, help_text in (
        ("revoke", "stop a key (every worker and gateway within 5 s)"),
        ("rotate", "give a key a new secret and print it (the old one stops within 5 s)"),
    ):
        action(name, help_text).add_argument("name", help="the key's name")


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = load_config(args.config) if args.config else Settings()
    if args.command == "demo":
        settings = settings.with_overrides(demo=True)
        if not args.config:
            settings = settings.with_overrides(layouts=str(REPO_CONF / "layouts"))
    settings = settings.with_overrides(
        layouts=args.layouts, store=args.store, host=args.host, port=args.port, workers=args.workers
    )
    settings = settings.with_overrides(store_timeout=args.store_timeout)
    jwt = {
        "secret_file": args.jwt_secret_file,
        "public_keys": args.jwt_public_keys,
        "jwks": args.jwt_jwks,
        "issuer": args.jwt_issuer,
        "audience": args.jwt_audience,
        "grants_claim": args.jwt_grants_claim,
    }
    try:
        auth = with_flags(
            settings.auth,
            no_auth=args.no_auth,
            keys=args.auth_keys,
            jwt=jwt,
            allow_basic_over_http=args.allow_basic_over_http,
        )
    except AuthConfigError as exc:
        raise SettingsError(f"command line: {exc}") from None
    settings = settings.with_overrides(
        auth=auth, tls_cert=args.tls_cert, tls_key=args.tls_key, audit_log=args.audit_log
    )
    return validate(settings, "command line")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,  # like KijiREST (Dropwizard): the log is the console output
    )
    if args.command == "keys":
        from kijirest.auth.commands import run_keys

        return run_keys(args)
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        print(f"kijirest: {exc}", file=sys.stderr)
        return 2
    from kijirest.auth.tls import TlsError
    from kijirest.catalog import StartupError
    from kijirest.store.base import StoreUnavailable

    try:
        return serve(settings)
    except (StartupError, StoreUnavailable, TlsError) as exc:
        print(f"kijirest: cannot start: {exc}", file=sys.stderr)
        return 1


def serve(settings: Settings) -> int:
    """Run the gateway until SIGINT/SIGTERM; with workers > 1, fork that many processes."""
    # A scan allocates ~50 short-lived objects per row: with the default thresholds a collection
    # runs every ~15 rows. Rarer young-generation collections made scans 1.18x faster in
    # `python -m bench --whatif gc` (1M rows), with no RSS growth (bench/README.md).
    gc.set_threshold(100_000, 50, 100)
    if settings.workers > 1:
        return _serve_workers(settings)
    return asyncio.run(_serve(settings, reuse_port=False))


def _security_line(settings: Settings) -> str:
    """What the gateway asks of callers, for the log (names and paths, never a secret)."""
    auth = settings.auth
    if auth is None:
        what = "auth: none configured (loopback only: every caller may do everything)"
    elif not auth.enabled:
        what = "auth: none (auth: none is set: every caller may do everything)"
    else:
        parts = []
        if auth.keys:
            parts.append(f"API keys (table {auth.keys_table})")
        if auth.jwt is not None:
            parts.append(f"JWT ({', '.join(auth.jwt.effective_algorithms)})")
        what = "auth: " + ", ".join(parts)
    tls = "TLS on" if settings.tls_cert else "no TLS"
    audit = f"audit log {settings.audit_log}" if settings.audit_log else "no audit log"
    return f"{what}; {tls}; {audit}"


def _serve_workers(settings: Settings) -> int:
    """`--workers N`: N processes accept on one port (SO_REUSEPORT). The parent makes the store
    ready first (tables, schema tables, demo rows), so the workers only read what exists."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    from kijirest.catalog import StartupError

    if settings.store.startswith("memory:"):
        raise StartupError("--workers: a memory: store lives inside one process; use embedded: or hbase://")
    _prepare_store(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.port))
    port = sock.getsockname()[1]  # one port for every worker, also when 0 was asked
    fixed = settings.with_overrides(port=port, workers=1, demo=False)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_worker_main, args=(fixed, os.getpid())) for _ in range(settings.workers)]
    for p in procs:
        p.start()
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    wait([p.sentinel for p in procs])  # the first worker to end (a signal, or a crash) ends all
    if not stopping:
        log.error("a worker ended on its own (exit %s): stopping the others", [p.exitcode for p in procs])
        forward(signal.SIGTERM, None)
    for p in procs:
        p.join()
    sock.close()
    return 0 if stopping and all(p.exitcode == 0 for p in procs) else 1


def _prepare_store(settings: Settings) -> None:
    from kijirest.app import open_settings_store, ready_catalog

    store = open_settings_store(settings)
    try:
        ready_catalog(store, settings)
    finally:
        store.close()


def _worker_main(settings: Settings, parent: int) -> None:
    _end_with_parent(parent)
    sys.exit(asyncio.run(_serve(settings, reuse_port=True)))


def _end_with_parent(parent: int) -> None:
    """A worker gets SIGTERM when its parent dies, however it dies (Linux PR_SET_PDEATHSIG): a
    parent killed with SIGKILL cannot forward a signal, and its orphaned workers kept serving the
    port and holding the store. Elsewhere the call is skipped."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _warn_if_descriptors_run_out_first(settings: Settings) -> None:
    import resource

    from kijirest.settings import DESCRIPTOR_MARGIN

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and settings.max_connections + DESCRIPTOR_MARGIN > soft:
        log.warning(
            "max_connections %s leaves fewer than %s of the process's %s descriptors (ulimit -n) to "
            "the rest: past them new connections fail to be accepted instead of being answered 503",
            settings.max_connections,
            DESCRIPTOR_MARGIN,
            soft,
        )


async def _serve(settings: Settings, *, reuse_port: bool) -> int:
    from aiohttp import web

    from kijirest.app import init_app
    from kijirest.server import EdgeRunner, install_loop_error_limiter

    install_loop_error_limiter(asyncio.get_running_loop())
    _warn_if_descriptors_run_out_first(settings)
    ssl_context = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        from kijirest.auth.tls import server_context

        ssl_context = server_context(settings.tls_cert, settings.tls_key)
    app = await init_app(settings)
    runner = EdgeRunner(app, access_log=None, shutdown_timeout=5.0, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.host, settings.port, reuse_port=reuse_port or None, ssl_context=ssl_context
    )
    try:
        await site.start()
        server = site._server  # the bound socket tells the real port when 0 was asked
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else settings.port
        scheme = "https" if ssl_context is not None else "http"
        log.info("kijirest listening on %s://%s:%s", scheme, settings.host, port)
        log.info("%s", _security_line(settings))
        log.info(
            "connections: max_connections %s, keepalive_timeout %s s, header_timeout %s s, "
            "body_timeout %s s",
            settings.max_connections,
            settings.keepalive_timeout,
            settings.header_timeout,
            settings.body_timeout,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("kijirest stopping")
    finally:
        await runner.cleanup()  # closes in-flight streams, then the app's cleanup_ctx closes the store
    return 0
