"""Ticker monitoring for several symbols: one `stream_tickers` call, one line per update.

Shows: `client.stream_tickers([...])`, `message.parse()` giving `Ticker` records with exact
`Decimal` fields, the `.gap` flag after a reconnect, and keeping the latest ticker per symbol.

Run:
    python examples/ticker_monitor.py                      # embedded simulator, 30 updates
    python examples/ticker_monitor.py BTCUSDT ETHUSDT --count 100
    python examples/ticker_monitor.py --live --duration 30 # the real exchange
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_proto.messages import Ticker


@attrs.frozen
class TickerReport:
    messages: int
    latest: dict[str, Ticker]
    """The last ticker of each contract, by contract id (`cmt_btcusdt`)."""
    updates: dict[str, int]
    """How many ticker records each contract sent."""


async def run(
    config: WeexConfig,
    symbols: Sequence[str] = _common.DEFAULT_SYMBOLS,
    *,
    count: int | None = 30,
    duration: float | None = None,
) -> TickerReport:
    """Print ticker updates until `count` messages or `duration` seconds, whichever is first."""
    latest: dict[str, Ticker] = {}
    updates: dict[str, int] = {}
    messages = 0
    with anyio.move_on_after(duration):
        async with WeexWebSocketClient(config) as client:
            async for message in client.stream_tickers(symbols):
                if message.gap:
                    print("-- reconnected: updates may have been missed --")
                messages += 1
                ticker = message.record
                previous = latest.get(ticker.symbol)
                move = ticker.last_price - previous.last_price if previous else Decimal(0)
                print(
                    f"{ticker.symbol:<14} last {ticker.last_price:>12} ({move:+})  "
                    f"mark {ticker.mark_price:>12}  24h {ticker.price_change_percent:+.4%}  "
                    f"vol {ticker.size}"
                )
                latest[ticker.symbol] = ticker
                updates[ticker.symbol] = updates.get(ticker.symbol, 0) + 1
                if count is not None and messages >= count:
                    break
    return TickerReport(messages, latest, updates)


def main(argv: Sequence[str] | None = None) -> int:
    args = _common.parser(__doc__, count=30, symbols=_common.DEFAULT_SYMBOLS).parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        report = await run(exchange.config, args.symbols, count=args.count, duration=args.duration)
        print(f"\n{report.messages} ticker messages")
        for symbol, ticker in sorted(report.latest.items()):
            print(f"  {symbol:<14} {report.updates[symbol]:>4} updates, last {ticker.last_price}")

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
