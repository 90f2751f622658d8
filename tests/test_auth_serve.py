"""Auth from the command line: secure by default, `kijirest keys ...`, HTTPS served directly, and a
revoked key refused by every worker of `--workers 2` within 10 s (embedded and HBase), with no
secret in any process's output."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from auth_env import self_signed
from conftest import hbase_uri, unique_name
from test_api_cli import CHECKOUT, LAYOUTS, Server

from kijirest.auth.config import AuthSettings
from kijirest.settings import Settings, SettingsError, load_config, validate

LISTENING = re.compile(r"kijirest listening on (https?)://([^\s:]+):(\d+)")


def kijirest(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "kijirest", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


def address(server: Server, timeout: float = 30) -> tuple[str, str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LISTENING.search(server.output)
        if found:
            return found.group(1), found.group(2), int(found.group(3))
        if server.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no listening line (exit {server.proc.poll()}):\n{server.output}")


@pytest.fixture
def servers(tmp_path: Path):
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(*args, cwd=tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:  # SIGTERM first: the parent of --workers stops its workers with it
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(15)
            except subprocess.TimeoutExpired:
                server.stop()


def get(url: str, authorization: str | None = None, context: ssl.SSLContext | None = None) -> int:
    headers = {"Authorization": authorization} if authorization else {}
    # a fresh connection per request: with --workers the kernel spreads them over the workers
    request = urllib.request.Request(url, headers={**headers, "Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


# -- secure by default --------------------------------------------------------------------------------


def test_a_network_address_without_auth_refuses_to_start(servers) -> None:
    server = servers(
        "serve", "--layouts", str(LAYOUTS), "--store", "memory:", "--host", "0.0.0.0", "--port", "0"
    )
    assert server.wait() == 2
    lines = [line for line in server.output.splitlines() if line.strip()]
    assert len(lines) == 1, server.output
    assert "host 0.0.0.0 is not a loopback address and no auth is configured" in lines[0]
    assert "auth: none" in lines[0] and "listening" not in server.output


def test_the_written_auth_none_or_any_auth_allows_a_network_address(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no auth is configured"):
        validate(Settings(host="10.1.2.3"))
    for host in ("127.0.0.1", "::1", "localhost", "127.8.9.10"):
        validate(Settings(host=host))
    config = tmp_path / "k.yaml"
    config.write_text("host: 0.0.0.0\nauth: none\n")
    assert load_config(config).auth == AuthSettings()
    config.write_text("host: 0.0.0.0\nauth: {keys: true}\naudit_log: audit.jsonl\n")
    loaded = load_config(config)
    assert loaded.auth.keys and loaded.audit_log == str(tmp_path / "audit.jsonl")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("auth: yes-please\n", "auth: expected 'none' or a mapping"),
        ("auth: {keyz: true}\n", "auth.keyz: unknown member"),
        ("auth: {jwt: {}}\n", "auth.jwt: give secret_file"),
        ("auth: {jwt: {secret_file: s, algorithms: [HS512]}}\n", "'HS512' is not one of"),
        ("auth: {jwt: {jwks: j.json, algorithms: [HS256]}}\n", "HS256 needs secret_file"),
        ("auth: {keys: true, cache_seconds: 30}\n", "between 0 and 5"),
        ("tls_cert: c.pem\nauth: none\n", "tls_cert and tls_key: give both"),
    ],
)
def test_bad_auth_settings_name_the_member(tmp_path: Path, text: str, error: str) -> None:
    config = tmp_path / "k.yaml"
    config.write_text(text)
    with pytest.raises(SettingsError) as info:
        load_config(config)
    assert error in str(info.value)


def test_a_short_hs256_secret_refuses_to_start(servers, tmp_path: Path) -> None:
    (tmp_path / "short.secret").write_text("too-short\n")
    server = servers(
        "serve", "--layouts", str(LAYOUTS), "--store", "memory:", "--port", "0",
        "--jwt-secret-file", str(tmp_path / "short.secret"),
    )  # fmt: skip
    assert server.wait() == 1
    assert "an HS256 secret needs at least 32 bytes" in server.output and "too-short" not in server.output


# -- kijirest keys ---------------------------------------------------------------------------------


def test_the_keys_commands(tmp_path: Path) -> None:
    store = f"embedded:{tmp_path / 'data'}"
    audit = tmp_path / "audit.jsonl"
    made = kijirest(
        "keys", "create", "--store", store, "--audit-log", str(audit), "--name", "ci",
        "--grant", "api/docs:write@['ci']", "--grant", "beta:read", "--expires", "30d", cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert re.fullmatch(r"kr1_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", secret)  # stdout: the key alone
    assert "key ci (id " in made.stderr and 'api/docs:write@["ci"] beta:read' in made.stderr
    assert secret not in made.stderr
    listed = kijirest("keys", "list", "--store", store, cwd=tmp_path)
    assert listed.returncode == 0
    assert re.search(r"^ci\s+[0-9a-f]{16}\s+active\s+\S+Z\s+\S+Z\s+api/docs", listed.stdout, re.M), (
        listed.stdout
    )
    rotated = kijirest("keys", "rotate", "--store", store, "--audit-log", str(audit), "ci", cwd=tmp_path)
    new_secret = rotated.stdout.strip()
    assert rotated.returncode == 0 and new_secret != secret and new_secret[:20] == secret[:20]
    revoked = kijirest("keys", "revoke", "--store", store, "--audit-log", str(audit), "ci", cwd=tmp_path)
    assert revoked.returncode == 0 and "revoked" in revoked.stderr
    assert "revoked" in kijirest("keys", "list", "--store", store, cwd=tmp_path).stdout
    for args, error in (
        (("revoke", "nobody"), "no key named 'nobody'"),
        (("create", "--name", "x", "--grant", "api:sudo"), "the level must be read, write or admin"),
        (("create", "--name", "ci", "--grant", "api:read"), "a key of that name exists"),
        (("create", "--name", "y", "--grant", "api:read", "--expires", "soon"), "--expires 'soon'"),
    ):
        failed = kijirest("keys", *args, "--store", store, cwd=tmp_path)
        assert failed.returncode == 2 and error in failed.stderr, failed.stderr
    memory = kijirest("keys", "list", "--store", "memory:", cwd=tmp_path)
    assert memory.returncode == 2 and "memory: store lives inside one process" in memory.stderr
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [e["event"] for e in events] == ["key.create", "key.rotate", "key.revoke"]
    assert all(e["key"] == "ci" and e["principal"].startswith("cli:") for e in events)
    everything = audit.read_text() + kijirest("keys", "list", "--store", store, cwd=tmp_path).stdout
    for s in (secret, new_secret, secret[21:], new_secret[21:]):
        assert s not in everything


# -- HTTPS ---------------------------------------------------------------------------------------------


def test_https_served_directly_with_basic_and_bearer(servers, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    store = f"embedded:{tmp_path / 'data'}"
    made = kijirest("keys", "create", "--store", store, "--name", "tls", "--grant", "api:read", cwd=tmp_path)
    secret = made.stdout.strip()
    server = servers(
        "serve", "--layouts", str(LAYOUTS), "--store", store, "--port", "0", "--auth-keys",
        "--tls-cert", str(cert), "--tls-key", str(key),
    )  # fmt: skip
    scheme, host, port = address(server)
    assert scheme == "https"
    context = ssl.create_default_context(cafile=str(cert))
    url = f"https://{host}:{port}/v1/instances/api/tables"
    assert get(url, f"Bearer {secret}", context) == 200
    assert get(url, "Basic " + base64.b64encode(f"tls:{secret}".encode()).decode(), context) == 200
    assert get(url, None, context) == 401
    with pytest.raises(urllib.error.URLError):  # no certificate trusted: the client refuses
        get(url, f"Bearer {secret}", ssl.create_default_context())
    with pytest.raises(OSError):  # plain HTTP to the HTTPS port: no answer in clear
        urllib.request.urlopen(f"http://{host}:{port}/v1", timeout=5).read()
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait() == 0, server.output
    assert "TLS on" in server.output and secret not in server.output and secret[21:] not in server.output


@pytest.mark.parametrize("wrong", ["another key", "not a key", "missing"])
def test_tls_files_that_do_not_fit_refuse_to_start(servers, tmp_path: Path, wrong: str) -> None:
    cert, _key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    _other_cert, other_key = self_signed(tmp_path / "other")
    (tmp_path / "wrong.pem").write_text("not a key\n")
    key = {"another key": other_key, "not a key": tmp_path / "wrong.pem", "missing": tmp_path / "none.pem"}[
        wrong
    ]
    server = servers(
        "serve", "--layouts", str(LAYOUTS), "--store", "memory:", "--port", "0",
        "--tls-cert", str(cert), "--tls-key", str(key),
    )  # fmt: skip
    assert server.wait() == 1
    assert "cannot start: tls_cert" in server.output and "Traceback" not in server.output
    assert "listening" not in server.output


# -- revocation on every worker ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["embedded", pytest.param("hbase", marks=pytest.mark.hbase)])
def test_a_revoked_key_fails_on_every_worker_within_10_s(servers, tmp_path: Path, kind: str) -> None:
    if kind == "hbase":
        store = hbase_uri()
        table = "kijirest." + unique_name("keys_")
    else:
        store = f"embedded:{tmp_path / 'data'}"
        table = "kijirest.api_keys"
    config = tmp_path / "k.yaml"
    config.write_text(
        f"layouts: {orjson.dumps(str(LAYOUTS)).decode()}\nstore: {orjson.dumps(store).decode()}\n"
        f"auth: {{keys: true, keys_table: {table}}}\n"
    )
    try:
        made = kijirest(
            "keys", "create", "--config", str(config), "--name", "w", "--grant", "api:read", cwd=tmp_path
        )
        assert made.returncode == 0, made.stderr
        secret = made.stdout.strip()
        server = servers("serve", "--config", str(config), "--port", "0", "--workers", "2")
        _scheme, host, port = address(server)
        deadline = time.monotonic() + 30
        while len(LISTENING.findall(server.output)) < 2:  # both workers listen
            assert time.monotonic() < deadline, server.output
            time.sleep(0.1)
        url = f"http://{host}:{port}/v1/instances/api/tables"
        auth = f"Bearer {secret}"
        assert [get(url, auth) for _ in range(30)] == [200] * 30  # both workers verified and cached it
        revoked = kijirest("keys", "revoke", "--config", str(config), "w", cwd=tmp_path)
        assert revoked.returncode == 0, revoked.stderr
        start = time.monotonic()
        while True:
            statuses = [get(url, auth) for _ in range(20)]
            if statuses == [401] * 20:
                break
            assert time.monotonic() - start < 10, f"still answered after 10 s: {statuses}"
            time.sleep(0.2)
        took = time.monotonic() - start
        assert [get(url, auth) for _ in range(30)] == [401] * 30, "a worker took the key again"
        assert took < 10
        print(f"{kind}: the revoked key was refused by every worker after {took:.1f} s")
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait() == 0, server.output
        for text in (server.output, made.stderr, revoked.stdout, revoked.stderr):
            assert secret[21:] not in text
    finally:
        if kind == "hbase":
            from kijirest.store import open_store

            s = open_store(store)
            try:
                if table in s.list_tables():
                    s.delete_table(table)
            finally:
                s.close()
