"""Processes the benchmark starts and watches: HBase (only when not running), the gateways, an
HBase REST server with a fetch size matched to the gateway's, the client and baseline processes,
RSS sampling and py-spy."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
_LISTENING = re.compile(r"kijirest listening on http://([^:\s]+):(\d+)")


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- HBase ------------------------------------------------------------------------------------------


def hbase_running() -> bool:
    """True when scripts/hbase reports all four JVMs up."""
    r = subprocess.run([str(REPO / "scripts" / "hbase"), "status"], capture_output=True, text=True)
    return r.returncode == 0


def hbase_start() -> None:
    r = subprocess.run([str(REPO / "scripts" / "hbase"), "start"], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"scripts/hbase start failed:\n{r.stderr[-3000:]}")


def hbase_stop() -> None:
    subprocess.run([str(REPO / "scripts" / "hbase"), "stop"], capture_output=True, text=True)


def hbase_pids() -> dict[str, int]:
    """role -> pid of the running HBase JVMs (from scripts/hbase status)."""
    r = subprocess.run([str(REPO / "scripts" / "hbase"), "status"], capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\w+)\s+running\s+pid\s+(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


class RestServer:
    """Our own HBase REST server (same jars and cluster as scripts/hbase's) whose stateless scans
    fetch `fetch_size` rows per RegionServer round trip (`hbase.rest.scan.fetchsize`, default 10),
    so it is compared with the gateway at the same batch size. The shared REST server of
    scripts/hbase is left alone."""

    def __init__(self, workdir: Path, fetch_size: int, heap: str = "512m") -> None:
        self.workdir = workdir
        self.fetch_size = fetch_size
        self.heap = heap
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "rest.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        r = subprocess.run(
            [str(REPO / "scripts" / "hbase"), "classpath"], capture_output=True, text=True, check=False
        )
        if r.returncode != 0 or not r.stdout.strip():
            raise BenchError(f"scripts/hbase classpath failed: {r.stderr[-2000:]}")
        shared_conf, _, jars = r.stdout.strip().partition(":")
        conf = self.workdir / "rest-conf"
        conf.mkdir(parents=True, exist_ok=True)
        site = (Path(shared_conf) / "hbase-site.xml").read_text()
        extra = (
            f"  <property><name>hbase.rest.scan.fetchsize</name><value>{self.fetch_size}</value></property>\n"
            f"  <property><name>hbase.rest.port</name><value>{self.port}</value></property>\n"
        )
        site = re.sub(r"\s*<property><name>hbase\.rest\.port</name>.*?</property>", "", site)
        site = site.replace("</configuration>", extra + "</configuration>")
        (conf / "hbase-site.xml").write_text(site)
        shutil.copy(Path(shared_conf) / "log4j2.properties", conf / "log4j2.properties")
        opts = []
        for line in (Path(shared_conf) / "jvm17.opts").read_text().splitlines():
            if line.startswith("-Dlog4j2.configurationFile="):
                line = f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}"
            elif line.startswith("-Dhbase.log.dir="):
                line = f"-Dhbase.log.dir={self.workdir}"
            opts.append(line)
        (conf / "jvm17.opts").write_text("\n".join(opts) + "\n")
        java = os.environ.get("KIJIREST_HBASE_JAVA", "java")
        cmd = [
            java,
            f"@{conf / 'jvm17.opts'}",
            f"-Xmx{self.heap}",
            "-cp",
            f"{conf}:{jars}",
            "org.apache.hadoop.hbase.rest.RESTServer",
            "start",
            "-p",
            str(self.port),
            "--infoport",
            "-1",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"our REST server exited:\n{_tail(self.log)}")
            try:
                with urllib.request.urlopen(self.url + "/version/cluster", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise BenchError(f"our REST server did not answer within {timeout:g} s:\n{_tail(self.log)}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# -- the gateway ------------------------------------------------------------------------------------


class Gateway:
    """`python -m kijirest serve` as a subprocess; ready when it logs its listening line."""

    def __init__(
        self,
        store: str,
        workdir: Path,
        *,
        workers: int = 1,
        name: str = "gateway",
        whatif: str = "",
        repo: Path = REPO,
        args: tuple[str, ...] = (),
        config: Path | None = None,
    ) -> None:
        self.store = store
        self.args = args  # more `serve` flags (bench/auth.py: the credentials to take)
        self.repo = repo  # the checkout whose kijirest runs (bench.ab: another revision)
        self.config = config  # a YAML config file (settings the command line has no flag for)
        self.workers = workers
        self.whatif = whatif  # bench/whatif.py variants patched into this gateway
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def server_pids(self) -> list[int]:
        """The processes that serve requests: the gateway itself, or its forked workers."""
        if self.workers <= 1:
            return [self.pid]
        return _children(self.pid)

    def start(self, timeout: float = 120.0) -> None:
        from bench.data import LAYOUTS

        launcher = ["bench.whatif", self.whatif] if self.whatif else ["kijirest"]
        cmd = [
            PYTHON,
            "-m",
            *launcher,
            "serve",
            "--layouts",
            str(LAYOUTS),
            "--store",
            self.store,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--log-level",
            "WARNING" if self.workers > 1 else "INFO",
            *self.args,
        ]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
            # with workers, the listening line only comes from the workers: keep INFO for it
            cmd[cmd.index("--log-level") + 1] = "INFO"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.repo
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the gateway ({self.store}) exited:\n{_tail(self.log)}")
            text = self.log.read_text(errors="replace")
            found = _LISTENING.findall(text)
            if len(found) >= max(1, self.workers):
                self.port = int(found[0][1])
                return
            time.sleep(0.1)
        self.stop()
        raise BenchError(f"the gateway ({self.store}) did not start within {timeout:g} s:\n{_tail(self.log)}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


# -- memory and CPU ---------------------------------------------------------------------------------


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB; (0, 0) when it is gone."""
    rss = hwm = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, hwm


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Sampler:
    """Samples VmRSS of some processes every `interval` s in a thread while a measurement runs."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (t, summed RSS MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = 0.0
        self.cpu0: dict[int, float] = {}
        self.cpu: dict[int, float] = {}

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(memory_mb(p)[0] for p in self.pids)
            self.samples.append((time.perf_counter() - self._t0, total))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._t0 = time.perf_counter()
        self.cpu0 = {p: cpu_seconds(p) for p in self.pids}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = {p: cpu_seconds(p) - self.cpu0.get(p, 0.0) for p in self.pids}

    @property
    def peak_mb(self) -> float:
        return max((s[1] for s in self.samples), default=0.0)


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


# -- child processes --------------------------------------------------------------------------------


def run_job(module: str, job: dict[str, Any], *, timeout: float = 3600.0) -> dict:
    """Run `python -m <module> <job json>` and return its JSON answer; errors raise BenchError."""
    r = subprocess.run(
        [PYTHON, "-m", module, "-"],
        input=orjson.dumps(job),
        capture_output=True,
        timeout=timeout,
        cwd=REPO,
    )
    try:
        out = orjson.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, orjson.JSONDecodeError):
        raise BenchError(
            f"{module} {job.get('kind')} failed (exit {r.returncode}):\n"
            + r.stderr.decode(errors="replace")[-3000:]
        ) from None
    if out.get("error"):
        raise BenchError(f"{module} {job.get('kind')}: {out['error']}")
    return out


def start_job(module: str, job: dict[str, Any]) -> subprocess.Popen:
    """Start a job without waiting (collect it with `finish_job`); the job goes in on stdin."""
    proc = subprocess.Popen(
        [PYTHON, "-m", module, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdin is not None
    proc.stdin.write(orjson.dumps(job))
    proc.stdin.close()
    proc.stdin = None  # so that communicate() does not touch it again
    return proc


def finish_job(proc: subprocess.Popen, timeout: float = 3600.0) -> dict:
    out, err = proc.communicate(timeout=timeout)
    try:
        result = orjson.loads(out.strip().splitlines()[-1])
    except (IndexError, orjson.JSONDecodeError):
        raise BenchError(
            f"job failed (exit {proc.returncode}):\n{err.decode(errors='replace')[-3000:]}"
        ) from None
    if result.get("error"):
        raise BenchError(f"job: {result['error']}")
    return result


# -- py-spy -----------------------------------------------------------------------------------------


def py_spy() -> str | None:
    exe = Path(PYTHON).with_name("py-spy")
    if exe.exists():
        return str(exe)
    return shutil.which("py-spy")


def profile_start(
    pid: int, seconds: float, out: Path, rate: int = 250, gil: bool = False
) -> subprocess.Popen | None:
    """py-spy record of a process (collapsed stacks, one line per stack) for `seconds`; `gil`:
    only samples of the thread holding the GIL, i.e. where the Python CPU goes (without it,
    every non-idle thread is sampled, GIL waits included)."""
    exe = py_spy()
    if exe is None:
        return None
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
        "--threads",
    ]
    if gil:
        cmd.append("--gil")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def profile_summary(path: Path, top: int = 15, possible: int | None = None) -> dict:
    """Top frames of a py-spy raw (collapsed) profile: self and inclusive share of the samples,
    per thread kind (the event loop thread vs the store's pool threads). `possible`: samples the
    duration allowed (rate x seconds); with a --gil profile, samples / possible is the share of
    the time some thread held the GIL."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    total = 0
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    thread_counts: dict[str, int] = {}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        while frames and frames[0].startswith(("process ", "thread ")):
            frames = frames[1:]
        kind = "store pool" if "concurrent/futures/thread.py" in stack else "event loop"
        thread_counts[kind] = thread_counts.get(kind, 0) + count
        total += count
        seen = set()
        for frame in frames:
            name = _frame_name(frame)
            if name not in seen:
                seen.add(name)
                incl_counts[name] = incl_counts.get(name, 0) + count
        if frames:
            leaf = _frame_name(frames[-1])
            self_counts[leaf] = self_counts.get(leaf, 0) + count
    if not total:
        return {}

    def top_of(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / total, 1)) for name, n in ranked]

    busy = {"busy_pct": round(100 * total / possible, 1)} if possible else {}
    return {
        "samples": total,
        **busy,
        "threads": {k: round(100 * v / total, 1) for k, v in thread_counts.items()},
        "self": top_of(self_counts),
        "inclusive": top_of(incl_counts),
    }


def _frame_name(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`: lines merged, paths shortened."""
    m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame.strip())
    if not m:
        return frame.strip()
    func, path = m.groups()
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{func} ({short})"
