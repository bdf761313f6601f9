"""A real proxy on loopback for the tests: `pproxy`, serving HTTP CONNECT and SOCKS5 on one port.

Started as a subprocess (it runs on asyncio, the tests also on trio) and always reaped. `-v`
makes it log each tunnel it opens, `host:port -> target`, which is how tests check that a
connection really went through it. `--auth 0` stops it from remembering that an address once
logged in (by default it lets that address in without credentials for 30 days).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

START_LIMIT = 20.0  # seconds for the proxy to start listening on a busy machine


def free_port() -> int:
    """A loopback port nothing listens on (free when asked; good enough for a test)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@attrs.frozen
class RunningProxy:
    port: int
    log: Path
    login: str | None
    """"user:password" the proxy requires, or None."""

    def url(self, scheme: str, login: str | None = None) -> str:
        """A URL of this proxy; `login` defaults to the right credentials."""
        login = self.login if login is None else login
        userinfo = f"{login}@" if login else ""
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}"

    def tunnels_to(self, port: int) -> int:
        """How many tunnels to 127.0.0.1:`port` the proxy has opened so far."""
        lines = self.log.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if line.endswith(f"-> 127.0.0.1:{port}"))


@contextlib.contextmanager
def pproxy_server(directory: Path, *, login: str | None = None) -> Iterator[RunningProxy]:
    port = free_port()
    log = directory / f"pproxy-{port}.log"
    listen = f"http+socks5://127.0.0.1:{port}" + (f"#{login}" if login else "")
    command = [sys.executable, "-u", "-m", "pproxy", "-l", listen, "--auth", "0", "-v"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        _wait_until_listening(port, process, log)
        yield RunningProxy(port, log, login)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pproxy exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pproxy did not listen on port {port} within {START_LIMIT:g}s")
