"""The command line (api.md "Start-up contract"): `python -m kijirest serve`, the listening line,
clean stops on SIGTERM and SIGINT, invalid layouts, `--config` with flags overriding it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

LAYOUTS = Path(__file__).parent / "data" / "api_layouts"
#: the checkout under test: the process imports its kijirest, not another installed one
CHECKOUT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"kijirest listening on http://([^\s:]+):(\d+)")


class Server:
    """A `kijirest` process; its stdout and stderr are collected by reader threads."""

    def __init__(self, *args: str, cwd: Path, preexec_fn: Any = None) -> None:
        path = os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kijirest", *args],
            cwd=cwd,
            env=env,
            preexec_fn=preexec_fn,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    @property
    def output(self) -> str:
        return "".join(self.out) + "".join(self.err)

    def address(self, timeout: float = 20) -> tuple[str, int]:
        """Wait for the listening line; returns (host, port)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.output)
            if found:
                return found.group(1), int(found.group(2))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no listening line (exit {self.proc.poll()}):\n{self.output}")

    def wait(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator:
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(*args, cwd=tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def fetch(host: str, port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as resp:
        return resp.status, resp.read()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_listens_answers_and_stops_cleanly(servers, signum) -> None:
    server = servers("serve", "--layouts", str(LAYOUTS), "--store", "memory:", "--port", "0")
    host, port = server.address()
    assert port != 0
    status, body = fetch(host, port, "/v1")
    assert status == 200
    assert orjson.loads(body) == {"service": "KijiREST", "resources": ["version", "instances"]}
    status, body = fetch(host, port, "/v1/instances")
    assert [i["name"] for i in orjson.loads(body)] == ["api", "beta"]
    server.proc.send_signal(signum)
    assert server.wait() == 0, server.output
    assert "Traceback" not in server.output
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=2):
        pass


def test_open_keep_alive_connection_does_not_block_the_stop(servers, tmp_path: Path) -> None:
    server = servers(
        "serve", "--layouts", str(LAYOUTS), "--store", f"embedded:{tmp_path / 'data'}", "--port", "0"
    )
    host, port = server.address()
    conn = socket.create_connection((host, port), timeout=10)
    try:
        conn.sendall(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(12).startswith(b"HTTP/1.1 200")  # answered; the connection stays open
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait() == 0, server.output
    finally:
        conn.close()
    assert "Traceback" not in server.output


def test_invalid_layout_stops_start_up_naming_file_and_field(servers, tmp_path: Path) -> None:
    layouts = tmp_path / "layouts"
    (layouts / "inst").mkdir(parents=True)
    (layouts / "inst" / "bad.json").write_text(
        """{
          name: 'bad', version: 'layout-1.1.0',
          keys_format: {
            encoding: 'FORMATTED', salt: {hash_size: 17}, components: [{name: 'k', type: 'STRING'}]
          },
          locality_groups: []
        }"""
    )
    server = servers("serve", "--layouts", str(layouts), "--store", "memory:", "--port", "0")
    code = server.wait()
    assert code != 0
    assert "inst/bad.json: keys_format.salt.hash_size: Valid hash sizes are between 1 and 16" in server.output
    assert "listening" not in server.output
    assert "Traceback" not in server.output


def test_config_file_with_flags_overriding_it(servers, tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    busy = blocker.getsockname()[1]  # the config's port is taken: the --port flag must win
    try:
        config = tmp_path / "kijirest.yaml"
        config.write_text(
            f"layouts: {orjson.dumps(str(LAYOUTS)).decode()}\n"
            "store: 'embedded:./not-this-one'\n"
            "host: 127.0.0.1\n"
            f"port: {busy}\n"
            "instances: [beta]\n"
            "cors: true\n"
        )
        server = servers("serve", "--config", str(config), "--store", "memory:", "--port", "0")
        host, port = server.address()
        assert port != busy
        _status, body = fetch(host, port, "/v1/instances")
        assert orjson.loads(body) == [{"name": "beta", "uri": "/v1/instances/beta"}]
        req = urllib.request.Request(
            f"http://{host}:{port}/v1/instances/beta/tables/alpha/rows",
            method="OPTIONS",
            headers={"Origin": "http://example.com", "Access-Control-Request-Method": "GET"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status in (200, 204)
            assert resp.headers.get("Access-Control-Allow-Origin") in ("*", "http://example.com")
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait() == 0, server.output
        assert not (tmp_path / "not-this-one").exists()  # --store overrode the file's store
    finally:
        blocker.close()


def test_hbase_store_on_a_closed_port_fails_or_answers_503(servers) -> None:
    """An unreachable HBase: a clean start-up failure naming the store, or 503 answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"hbase://127.0.0.1:{port}?thrift2_port={port}"
    server = servers("serve", "--layouts", str(LAYOUTS), "--store", uri, "--port", "0")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.proc.poll() is None and not LISTENING.search(server.output):
        time.sleep(0.1)
    if server.proc.poll() is not None:
        assert server.wait() != 0
        assert "Traceback" not in server.output, server.output
        assert str(port) in server.output or "hbase" in server.output.lower(), server.output
        return
    host, listen_port = server.address(1)
    try:
        fetch(host, listen_port, "/v1/instances/api/tables/docs/rows?eid=%5B%22a%22%5D")
    except urllib.error.HTTPError as exc:
        assert exc.code == 503
        assert exc.headers["Content-Type"].startswith("application/problem+json")
    else:
        raise AssertionError("a read from an unreachable store answered 200")


def test_workers_share_one_port_and_one_store(servers, tmp_path: Path) -> None:
    store = f"embedded:{tmp_path / 'data'}"
    server = servers("serve", "--layouts", str(LAYOUTS), "--store", store, "--port", "0", "--workers", "2")
    host, port = server.address()
    rows = "/v1/instances/api/tables/docs/rows"
    for i in range(20):  # fresh connections: the kernel spreads them over both workers
        body = orjson.dumps(
            {"entityId": ["w", f"r{i}", "c", 1, 2], "cells": {"info": {"label": [{"value": str(i)}]}}}
        )
        req = urllib.request.Request(
            f"http://{host}:{port}{rows}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        eid = urllib.parse.quote(orjson.dumps(["w", f"r{i}", "c", 1, 2]).decode())
        status, got = fetch(host, port, f"{rows}?eid={eid}")
        assert status == 200
        assert orjson.loads(got)["cells"]["info"]["label"][0]["value"] == str(i)  # written by either worker
    assert len(LISTENING.findall(server.output)) == 2  # two processes accept on the same port
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait() == 0, server.output
    assert "Traceback" not in server.output


def test_workers_refuse_a_memory_store(servers) -> None:
    server = servers(
        "serve", "--layouts", str(LAYOUTS), "--store", "memory:", "--port", "0", "--workers", "2"
    )
    assert server.wait() == 1
    assert "memory: store lives inside one process" in server.output


def test_demo_command_loads_the_demo_rows(servers) -> None:
    server = servers("demo", "--store", "memory:", "--port", "0")
    host, port = server.address()
    status, body = fetch(host, port, "/v1/instances/demo/tables/users/rows?cols=info:fullname")
    assert status == 200
    names = [
        orjson.loads(line)["cells"]["info"]["fullname"][0]["value"] for line in body.split(b"\r\n") if line
    ]
    assert names == ["Alice Smith", "John Quincy Doe", "Homer J. Simpson"]
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait() == 0, server.output


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_when_their_parent_is_killed(servers, tmp_path: Path) -> None:
    store = f"embedded:{tmp_path / 'data'}"
    server = servers("serve", "--layouts", str(LAYOUTS), "--store", store, "--port", "0", "--workers", "2")
    host, port = server.address()
    workers = _children(server.proc.pid)
    assert len(workers) == 2, workers
    server.proc.send_signal(signal.SIGKILL)  # no chance to forward anything to the workers
    server.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and [w for w in workers if _running(w)]:
        time.sleep(0.1)
    assert [w for w in workers if _running(w)] == [], "workers outlived their killed parent"
    with pytest.raises(OSError):
        fetch(host, port, "/v1")  # nobody serves the port any more
