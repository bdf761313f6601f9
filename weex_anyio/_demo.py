"""`python -m weex_anyio demo`: a live stream in the terminal.

Against the embedded simulator by default, so it works offline; `--live` uses the real exchange.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import anyio

from weex_proto.errors import WeexError
from weex_proto.events import WebSocketMessage
from weex_proto.messages import DepthUpdate, PayloadError, Ticker, Trade

from .client import WeexWebSocketClient
from .testing import SimulatedWeexServer

DEFAULT_SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weex-ws demo", description=__doc__)
    parser.add_argument("symbols", nargs="*", default=list(DEFAULT_SYMBOLS))
    parser.add_argument("--live", action="store_true", help="stream from the real WEEX exchange")
    parser.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    parser.add_argument("--count", type=int, default=None, help="stop after N messages")
    return parser


def describe(message: WebSocketMessage) -> str:
    """One human line per push, from the typed records."""
    stamp = dt.datetime.fromtimestamp(message.timestamp).strftime("%H:%M:%S.%f")[:-3]
    gap = "  [reconnected: data may be missing]" if message.gap else ""
    if "resyncing" in message.data:  # a local order book from stream_order_book
        return describe_book(stamp, message.data) + gap
    try:
        records = message.parse()
    except PayloadError as exc:
        return f"{stamp}  {message.channel}  (unparsable: {exc}){gap}"
    parts: list[str] = []
    for record in records:
        if isinstance(record, Ticker):
            change = record.price_change_percent * 100
            parts.append(
                f"ticker {record.symbol:<14} last {record.last_price:>12}  "
                f"mark {record.mark_price:>12}  24h {change:+.2f}%"
            )
        elif isinstance(record, DepthUpdate):
            parts.append(
                f"depth  {record.symbol:<14} {record.depth_type.lower()} "
                f"v{record.start_version}-{record.end_version}"
            )
        elif isinstance(record, Trade):
            side = "sell" if record.buyer_maker else "buy "
            parts.append(f"trade  {record.symbol:<14} {side} {record.size} @ {record.price}")
    return "\n".join(f"{stamp}  {part}{gap}" for part in parts) or f"{stamp}  {message.channel}"


def describe_book(stamp: str, data: Mapping[str, Any]) -> str:
    symbol = data["symbol"]
    if data["resyncing"]:
        return f"{stamp}  book   {symbol:<14} resyncing ({data['reason']})"
    if not data["bids"] or not data["asks"]:
        return f"{stamp}  book   {symbol:<14} (one side empty)"
    (bid, bid_size), (ask, ask_size) = data["bids"][0], data["asks"][0]
    return (
        f"{stamp}  book   {symbol:<14} bid {bid:>12} x {bid_size:<9} "
        f"ask {ask:>12} x {ask_size:<9} spread {ask - bid}"
    )


async def stream(
    client: WeexWebSocketClient, symbols: Sequence[str], out: TextIO, count: int | None
) -> None:
    seen = 0
    async with anyio.create_task_group() as task_group:
        send, receive = anyio.create_memory_object_stream[WebSocketMessage](100)

        async def pump(messages: object) -> None:
            async for message in messages:  # type: ignore[attr-defined]
                await send.send(message)

        task_group.start_soon(pump, client.stream_tickers(symbols))
        task_group.start_soon(pump, client.stream_order_book(symbols[0]))
        task_group.start_soon(pump, client.stream_trades(symbols[0]))
        async for message in receive:
            print(describe(message), file=out, flush=True)
            seen += 1
            if count is not None and seen >= count:
                task_group.cancel_scope.cancel()


async def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from weex_proto.config import WeexConfig

    symbols = list(args.symbols)
    with anyio.move_on_after(args.duration):
        if args.live:
            print("streaming from the real WEEX exchange (Ctrl-C to stop)", file=out)
            async with WeexWebSocketClient(WeexConfig.from_env()) as client:
                await stream(client, symbols, out, args.count)
        else:
            async with SimulatedWeexServer(symbols=tuple(symbols)) as server:
                print(
                    f"streaming from the embedded simulator at {server.public_url} "
                    "(Ctrl-C to stop; --live for the real exchange)",
                    file=out,
                    flush=True,
                )
                config = WeexConfig(public_url=server.public_url, private_url=server.private_url)
                async with WeexWebSocketClient(config) as client:
                    await stream(client, symbols, out, args.count)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return anyio.run(run, args)
    except KeyboardInterrupt:
        return 130
    except (WeexError, ValueError) as exc:
        print(f"weex-ws: {exc}", file=sys.stderr)
        return 1
