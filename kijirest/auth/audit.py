"""The audit log: one JSON line per write, delete, key change and refused request.

Where it goes is the operator's choice (`audit_log`): a file path (appended to; every line is one
`write()` on a file opened with O_APPEND, so the workers of `--workers N` can share the file
without interleaving lines), or `logger:<name>` (a Python logger, INFO, message = the JSON line:
route it with the logging configuration of the host, e.g. to syslog or journald).

A line holds: `time` (UTC, ISO 8601, ms), `event` (`write`, `delete`, `refused`, `key.create`,
`key.revoke`, `key.rotate`), `principal`, `remote` (the peer address), `method`, `path`,
`instance`, `table`, `rows` (how many rows the request touched) and `eids` (their entity IDs, at
most `MAX_EIDS`), `status`, `request_id` (the client's `X-Request-Id` when it is a plain token of at
most 128 characters, else one made here; the answer carries it back) and, for refusals, `reason`
(the problem's detail). Never a credential, never a cell value: POST bodies are not logged at all,
only the entity IDs of their rows.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from typing import Any

import orjson

__all__ = ["MAX_EIDS", "AuditLog", "request_id_of"]

MAX_EIDS = 100
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id_of(given: str | None) -> str:
    """The client's request id when it is a plain token, else a new one."""
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class AuditLog:
    """An audit sink: `audit_log` = a file path or `logger:<name>`."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._fd: int | None = None
        self._logger: logging.Logger | None = None
        self._lock = threading.Lock()
        if where.startswith("logger:"):
            self._logger = logging.getLogger(where[len("logger:") :] or "kijirest.audit")
        else:
            # O_APPEND: each os.write lands at the end as one piece, whichever process writes
            self._fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def record(self, event: str, **fields: Any) -> None:
        entry = {"time": _now_iso(), "event": event, **fields}
        eids = entry.get("eids")
        if isinstance(eids, list) and len(eids) > MAX_EIDS:
            entry["eids"] = eids[:MAX_EIDS]
            entry["eids_left_out"] = len(eids) - MAX_EIDS
        line = orjson.dumps(entry, default=str)
        if self._logger is not None:
            self._logger.info("%s", line.decode("utf-8"))
            return
        assert self._fd is not None
        with self._lock:
            os.write(self._fd, line + b"\n")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
