"""Fixtures: a real throttlekit-server (built from this repository unless THROTTLEKIT_SERVER_BIN names
one) and a real redis-server (started on a free loopback port unless THROTTLEKIT_REDIS_URL names
one). Nothing is mocked; a missing redis-server or Go toolchain fails the run."""

from __future__ import annotations

import os
import pathlib
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = ROOT / "sdk-go" / "vectors" / "golden-vectors.json"


_handed_out: set[int] = set()


def _below_ephemeral() -> range:
    """Ports from 10000 to the start of the kernel's ephemeral range (empty when unknown): an outgoing
    connection can take an ephemeral port as its source before the process we start binds it."""
    try:
        start = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return range(0)
    return range(10000, start) if start >= 11000 else range(0)


def free_port() -> int:
    """A loopback port that was free a moment ago, never the same one twice in this process."""
    candidates = _below_ephemeral()
    for _ in range(1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", random.choice(candidates) if candidates else 0))
            except OSError:
                continue  # in use
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port")


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Waits until something accepts on the loopback port; fails the test if proc exits first or 30 s
    pass (a generous bound for a loaded machine, not a measurement)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"{what} on port {port} did not start")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def server_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    given = os.environ.get("THROTTLEKIT_SERVER_BIN")
    if given:
        return given
    out = tmp_path_factory.mktemp("bin") / "throttlekit-server"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/throttlekit-server"], cwd=ROOT / "server", check=True)
    return str(out)


@pytest.fixture(scope="session")
def testclock_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A server built with the test-only clock hook: requests may carry their instant in the
    x-throttlekit-test-now metadata, so its answers can be compared at exact instants."""
    given = os.environ.get("THROTTLEKIT_SERVER_TESTCLOCK_BIN")
    if given:
        return given
    out = tmp_path_factory.mktemp("bin") / "throttlekit-server-testclock"
    subprocess.run(
        ["go", "build", "-tags", "throttlekit_testclock", "-o", str(out), "./cmd/throttlekit-server"],
        cwd=ROOT / "server",
        check=True,
    )
    return str(out)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("THROTTLEKIT_REDIS_URL")
    if given:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (the test command installs it); it is required, never skipped")
    port = free_port()
    d = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", d],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc, "redis-server")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(d, ignore_errors=True)


@dataclass
class Server:
    addr: str
    proc: subprocess.Popen[bytes]
    stderr_path: pathlib.Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(server_bin: str, testclock_bin: str, tmp_path: pathlib.Path) -> Iterator[StartServer]:
    """start_server(policies_yaml, *flags, test_clock=False) runs a server on a free port and waits for
    its startup line."""
    started: list[Server] = []

    def start(policies: str, *flags: str, test_clock: bool = False) -> Server:
        cfg = tmp_path / f"policies-{len(started)}.yaml"
        cfg.write_text(policies)
        err = tmp_path / f"stderr-{len(started)}.log"
        proc = subprocess.Popen(
            [
                testclock_bin if test_clock else server_bin,
                "--config",
                str(cfg),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=err.open("wb"),
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        m = re.search(r"listening on (\S+)", line)
        if m is None:
            proc.kill()
            pytest.fail(f"server did not start: {line!r}\n{err.read_text()}")
        s = Server(m.group(1), proc, err)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


POLICIES = """version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  bucket: { strategy: tokenBucket, capacity: 4, refillPerSec: 1 }
  window: { strategy: fixedWindow, limit: 3, period: 3650d }
  sliding: { strategy: slidingWindow, limit: 10, period: 1m }
  logins: { strategy: slidingWindowLog, limit: 3, period: 10m }
  completions:
    tokenBudget: { budget: 100, windowMs: 60000 }
  checkout:
    concurrency: { minLimit: 1, maxLimit: 1 }
  unified-api:
    strategy: gcra
    limit: 5
    period: 1h
    concurrency: { minLimit: 2, maxLimit: 2 }
"""


@pytest.fixture
def server(start_server: StartServer) -> Server:
    return start_server(POLICIES)
