"""`SimulatedWeexServer` in a child process, so a benchmark's figures are the client's alone.

    with SimulatorProcess(tick_interval=0.02) as sim:
        config = sim.config()            # the simulator's URLs and account
        sim.drop_connections()           # runs in the child; returns how many dropped
        await sim.apause_market()        # a quiet point: no pushes until aresume_market()

The child runs the simulator on asyncio and answers commands sent over a pipe; the parent
never imports the simulator's state, so its memory and CPU stay out of the parent's RSS,
`tracemalloc` and event loop. The child is terminated and reaped on exit.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread

from weex_proto.config import WeexConfig

_START_LIMIT = 30.0
"""Seconds the child may take to start listening before the benchmark gives up."""


class SimulatorProcess:
    """A simulator in a child process; keyword arguments go to `SimulatedWeexServer`."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._pipe, child_end = multiprocessing.Pipe()
        self._process = multiprocessing.Process(
            target=_child_main, args=(child_end, options), daemon=True
        )
        self._child_end = child_end
        self._urls: tuple[str, str] = ("", "")
        self._credentials: tuple[str, str, str] = ("", "", "")

    def __enter__(self) -> SimulatorProcess:
        self._process.start()
        self._child_end.close()
        if not self._pipe.poll(_START_LIMIT):
            self._stop()
            raise RuntimeError("the simulator process did not start")
        self._urls, self._credentials = self._pipe.recv()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        self._process.terminate()
        self._process.join()
        self._pipe.close()

    def config(self, **overrides: Any) -> WeexConfig:
        """A client config for the simulator's URLs and account."""
        api_key, secret_key, passphrase = self._credentials
        public_url, private_url = self._urls
        fields: dict[str, Any] = {
            "public_url": public_url,
            "private_url": private_url,
            "api_key": api_key,
            "secret_key": secret_key,
            "passphrase": passphrase,
        }
        fields.update(overrides)
        return WeexConfig(**fields)

    def drop_connections(self) -> int:
        """Drop every connection's TCP socket (no close frame); blocks until the child has."""
        self._pipe.send("drop")
        dropped: int = self._pipe.recv()
        return dropped

    async def adrop_connections(self) -> int:
        """`drop_connections()` without blocking the caller's event loop."""
        return await anyio.to_thread.run_sync(self.drop_connections)

    async def apause_market(self) -> None:
        """Stop the market's pushes (a quiet point to measure at) until `aresume_market()`."""
        await anyio.to_thread.run_sync(self._command, "pause")

    async def aresume_market(self) -> None:
        await anyio.to_thread.run_sync(self._command, "resume")

    def _command(self, command: str) -> None:
        self._pipe.send(command)
        self._pipe.recv()


def _child_main(pipe: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    anyio.run(_serve, pipe, options, backend="asyncio")


async def _serve(pipe: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    from weex_anyio.testing import SimulatedWeexServer  # the child only: not in the parent

    async with SimulatedWeexServer(**options) as server:
        credentials = server.credentials
        pipe.send(
            (
                (server.public_url, server.private_url),
                (credentials.api_key, credentials.secret_key, credentials.passphrase),
            )
        )
        while True:
            try:
                command = await anyio.to_thread.run_sync(pipe.recv, abandon_on_cancel=True)
            except EOFError:  # the parent is gone
                return
            if command == "drop":
                pipe.send(await server.drop_connections())
            elif command == "pause":
                server.pause_market()
                pipe.send(None)
            elif command == "resume":
                server.resume_market()
                pipe.send(None)
