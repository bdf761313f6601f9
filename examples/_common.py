"""What every example needs and none of them is about: command line, where to connect, errors.

* `parser(__doc__, count=..., duration=...)` builds the shared command line: `--live`,
  `--count N`, `--duration S`, `--tick-interval S` (simulator speed) and `--verbose`.
* `launch(args, body)` runs `await body(exchange)` on asyncio, against the embedded
  `SimulatedWeexServer` by default or the real exchange with `--live`, and turns errors into
  exit codes (1 for a WEEX error, 2 for a configuration problem, 130 for Ctrl-C).
* `merged(*streams)` reads several client streams as one; `closing(stream)` ends a stream (and
  so unsubscribes) as soon as its block is left.

With `--live`, `WeexConfig.from_env()` supplies the URLs and, for private channels, the
credentials (`WEEX_API_KEY`, `WEEX_SECRET_KEY`, `WEEX_PASSPHRASE`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from weex_anyio import ConfigError, WebSocketMessage, WeexConfig, WeexError
from weex_anyio.testing import SimulatedWeexServer

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
"""Contracts both the real exchange and the simulator know (the simulator's default set)."""

T = TypeVar("T")


@attrs.frozen
class Exchange:
    """Where an example connects: a config, plus the simulator itself when not `--live`.

    Examples that need something to *happen* (a trade, a dropped connection) drive `server`;
    against the real exchange it is None and they just watch.
    """

    config: WeexConfig
    server: SimulatedWeexServer | None = None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def parser(
    doc: str | None,
    *,
    count: int | None = None,
    duration: float | None = None,
    symbols: Sequence[str] | None = None,
    count_help: str = "stop after N messages",
) -> argparse.ArgumentParser:
    """The shared command line; examples add their own options to what this returns."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if symbols is not None:
        parser.add_argument(
            "symbols",
            nargs="*",
            default=list(symbols),
            help=f"contracts, e.g. BTCUSDT (default: {' '.join(symbols)})",
        )
    parser.add_argument("--live", action="store_true", help="use the real WEEX exchange")
    parser.add_argument("--count", type=_positive_int, default=count, help=count_help)
    parser.add_argument(
        "--duration", type=_positive_float, default=duration, help="stop after S seconds"
    )
    parser.add_argument(
        "--tick-interval",
        type=_positive_float,
        default=0.1,
        help="simulator only: seconds between market updates (default 0.1)",
    )
    parser.add_argument("--verbose", action="store_true", help="log connection events")
    return parser


@contextlib.asynccontextmanager
async def simulator(**options: Any) -> AsyncIterator[Exchange]:
    """An embedded simulator and a config (with its credentials) pointing at it.

    The simulator's own random trading is off, so private events come only from the example.
    It speaks the protocol generation `WEEX_API` names (v2 unless it says v3), as `--live` does.
    """
    options.setdefault("trade_interval", None)
    options.setdefault("api", WeexConfig(api=os.environ.get("WEEX_API", "")).api_version)
    async with SimulatedWeexServer(**options) as server:
        credentials = server.credentials
        config = WeexConfig(
            api_key=credentials.api_key,
            secret_key=credentials.secret_key,
            passphrase=credentials.passphrase,
            public_url=server.public_url,
            private_url=server.private_url,
        )
        yield Exchange(config, server)


def live_exchange(*, private: bool = False) -> Exchange:
    """The real exchange, configured from the environment (credentials checked if needed)."""
    config = WeexConfig.from_env()
    if private:
        config.require_credentials()
    return Exchange(config)


def launch(
    args: argparse.Namespace,
    body: Callable[[Exchange], Awaitable[object]],
    *,
    private: bool = False,
    **simulator_options: Any,
) -> int:
    """Run `body` against the simulator (or the live exchange); return the exit code."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )

    async def main() -> None:
        if args.live:
            exchange = live_exchange(private=private)
            print("using the real WEEX exchange (Ctrl-C to stop)", flush=True)
            await body(exchange)
            return
        simulator_options.setdefault("tick_interval", args.tick_interval)
        async with simulator(**simulator_options) as exchange:
            assert exchange.server is not None
            print(
                f"using the embedded simulator at {exchange.server.public_url} "
                "(--live for the real exchange)",
                flush=True,
            )
            await body(exchange)

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        error = _sole_error(exc)
        if isinstance(error, WeexError):
            print(f"error: {error}", file=sys.stderr)
            return 2 if isinstance(error, ConfigError) else 1
        raise
    return 0


def _sole_error(exc: BaseException) -> BaseException:
    """The one error inside (nested) single-member exception groups from task groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@contextlib.asynccontextmanager
async def merged(
    *streams: AsyncIterator[WebSocketMessage[Any]], buffer: int = 256
) -> AsyncIterator[MemoryObjectReceiveStream[WebSocketMessage[Any]]]:
    """Read several client streams as one, in arrival order; each is pumped by its own task.

    Leaving the block cancels the pumps, which ends their streams and unsubscribes.
    """
    send, receive = anyio.create_memory_object_stream[WebSocketMessage[Any]](buffer)
    async with anyio.create_task_group() as task_group:
        for stream in streams:
            task_group.start_soon(_pump, stream, send.clone())
        send.close()
        try:
            yield receive
        finally:
            task_group.cancel_scope.cancel()
            receive.close()


async def _pump(
    stream: AsyncIterator[WebSocketMessage[Any]],
    send: MemoryObjectSendStream[WebSocketMessage[Any]],
) -> None:
    async with send:
        async for message in stream:
            await send.send(message)


@contextlib.asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """`contextlib.aclosing` for the client's streams: leaving the block ends the stream now.

    Breaking out of `async for` alone leaves the stream to the garbage collector, so its channel
    stays subscribed a little longer; code that re-subscribes right away (to get a fresh
    snapshot) must end the old stream first.
    """
    try:
        yield stream
    finally:
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()
