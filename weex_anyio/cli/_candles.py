"""`weex-ws candles SYMBOL... [--interval MINUTE_1] [--price-type LAST_PRICE] [--closed]`.

Candles from the kline channel, one line (or JSON object) per candle update. WEEX marks no
candle as final; the client does, once a later candle arrives, and sends the finished one
again with `closed` set. `--closed` prints only those: one line per finished candle.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncGenerator
from typing import Any

from weex_proto.channels import KlineInterval, PriceType
from weex_proto.events import WebSocketMessage
from weex_proto.messages import Candle

from ..client import WeexWebSocketClient
from ._parser import (
    _checked,
    _connection_options,
    _stop_options,
    kline_interval,
    kline_price_type,
    symbol,
)
from ._runtime import Output, Stopper, client_options
from ._streams import Stream, config_for, pump


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """The `candles` command's arguments (the parser module creates the subcommand)."""
    sub.add_argument("symbols", nargs="+", type=_checked(symbol), metavar="SYMBOL")
    sub.add_argument(
        "--interval",
        type=_checked(kline_interval),
        default=KlineInterval.MINUTE_1,
        metavar="INTERVAL",
        help="candle width: MINUTE_1 (default), MINUTE_5, ..., HOUR_1, ..., DAY_1, WEEK_1, MONTH_1",
    )
    sub.add_argument(
        "--price-type",
        type=_checked(kline_price_type),
        default=PriceType.LAST_PRICE,
        metavar="LAST_PRICE|MARK_PRICE",
        help="which price the candles follow (default: LAST_PRICE)",
    )
    sub.add_argument(
        "--closed", action="store_true", help="print only finished candles (one per candle)"
    )
    _connection_options(sub, private=False)
    sub.add_argument("--json", action="store_true", help="one JSON object per line")
    _stop_options(sub, "stop after N candles printed")


async def _only_closed(
    stream: AsyncGenerator[WebSocketMessage[Candle], None],
) -> AsyncGenerator[WebSocketMessage[Any], None]:
    try:
        async for message in stream:
            if message.data.get("closed"):
                yield message
    finally:
        await stream.aclose()


async def run_candles(args: argparse.Namespace, stopper: Stopper, out: Output) -> int:
    config = config_for(args)
    async with WeexWebSocketClient(config, **client_options(args)) as client:
        streams: list[Stream] = []
        for name in dict.fromkeys(args.symbols):
            stream = client.stream_klines(name, args.interval, args.price_type)
            streams.append(_only_closed(stream) if args.closed else stream)
        with stopper.scope:  # inside the client, so leaving it still closes the connection
            await pump(streams, out.emit)
    return 0
