"""`weex-ws tickers|book|trades SYMBOL...` and `weex-ws account|positions|orders|fills`.

Each command opens the client's streams (several at once are merged in arrival order) and prints
every message until `--count`, `--duration`, a signal, or the client giving up.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

import anyio

from weex_proto.config import WeexConfig
from weex_proto.events import WebSocketMessage

from ..client import WeexWebSocketClient
from ._runtime import Output, Stopper, client_options

Stream = AsyncGenerator[WebSocketMessage[Any], None]
PRIVATE_COMMANDS = ("account", "positions", "orders", "fills")


def config_for(args: argparse.Namespace) -> WeexConfig:
    """The environment's config, with the command line's URLs on top.

    Private commands check the credentials here, so a missing one is a clear configuration
    error naming the variables before anything connects.
    """
    overrides: dict[str, Any] = {}
    if getattr(args, "url", None):
        overrides["public_url"] = args.url
    if getattr(args, "private_url", None):
        overrides["private_url"] = args.private_url
    if getattr(args, "api", None):
        overrides["api"] = args.api
    config = WeexConfig.from_env(**overrides)
    if args.command in PRIVATE_COMMANDS:
        config.require_credentials()
    return config


def streams_for(client: WeexWebSocketClient, args: argparse.Namespace) -> list[Stream]:
    command = args.command
    if command == "tickers":
        # One stream per symbol: a refused symbol then ends its own stream with the error
        # (a stream of several symbols would carry on with the others).
        return [client.stream_tickers(s) for s in dict.fromkeys(args.symbols)]
    if command == "book":
        return [client.stream_order_book(s, level=args.depth) for s in dict.fromkeys(args.symbols)]
    if command == "trades":
        return [client.stream_trades(s) for s in dict.fromkeys(args.symbols)]
    # Mark prices (for unrealized PnL) come from the public endpoint: not from WEEX's when
    # the private one was pointed elsewhere (a test server).
    follow_marks = getattr(args, "private_url", None) is None
    private: dict[str, Callable[[], Stream]] = {
        "account": client.stream_account,
        "positions": lambda: client.stream_positions(mark_prices=follow_marks),
        "orders": client.stream_orders,
        "fills": client.stream_fills,
    }
    return [private[command]()]


async def pump(streams: list[Stream], deliver: Callable[[WebSocketMessage[Any]], None]) -> None:
    """Feed every message of `streams` to `deliver`, until all of them end."""

    async def drain(stream: Stream) -> None:
        async with contextlib.aclosing(stream):
            async for message in stream:
                deliver(message)

    async with anyio.create_task_group() as task_group:
        for stream in streams:
            task_group.start_soon(drain, stream)


async def run_stream(args: argparse.Namespace, stopper: Stopper, out: Output) -> int:
    config = config_for(args)
    async with WeexWebSocketClient(config, **client_options(args)) as client:
        with stopper.scope:  # inside the client, so leaving it still closes the connection
            await pump(streams_for(client, args), out.emit)
    return 0
