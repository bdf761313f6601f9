"""Order book monitoring: a consistent local book, kept by the client from WEEX's deltas.

Shows: `client.stream_order_book(symbol, level=N)`, which applies the depth SNAPSHOT and its
CHANGED diffs for you, checks version continuity, and on a gap or crossed book resubscribes for
a fresh snapshot. Each message's `data` is the top N levels, best first, as exact Decimals:
`{"bids": [(price, size), ...], "asks": [...], "version": ..., "resyncing": False}`. While a
resync is under way you get one message with `resyncing: True` instead of a stale book.
Each update prints best bid, best ask and the spread.

Run:
    python examples/order_book_monitor.py                    # simulator, BTCUSDT, 20 updates
    python examples/order_book_monitor.py ETHUSDT --count 50 --level 5
    python examples/order_book_monitor.py --live --duration 30
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_proto.events import WebSocketMessage
from weex_proto.messages import DepthUpdate


@attrs.frozen
class Quote:
    """The top of the book after one update."""

    version: int
    best_bid: Decimal
    best_ask: Decimal
    bids: tuple[tuple[Decimal, Decimal], ...] = ()
    asks: tuple[tuple[Decimal, Decimal], ...] = ()

    @property
    def spread(self) -> Decimal:
        return self.best_ask - self.best_bid

    @property
    def mid(self) -> Decimal:
        return (self.best_ask + self.best_bid) / 2


@attrs.frozen
class BookReport:
    quotes: tuple[Quote, ...]
    """The book after each update that left both sides non-empty."""
    resyncs: int
    """How often the client reported a resync (a version gap or crossed book)."""
    frames: tuple[DepthUpdate, ...]
    """The raw depth pushes seen meanwhile (from a handler), for checking the book."""


async def run(
    config: WeexConfig,
    symbol: str = "BTCUSDT",
    *,
    count: int | None = 20,
    level: int = 15,
    duration: float | None = None,
) -> BookReport:
    """Follow the book of `symbol` until `count` quotes or `duration` seconds."""
    quotes: list[Quote] = []
    frames: list[DepthUpdate] = []
    resyncs = 0

    def record(message: WebSocketMessage[Any]) -> None:
        if isinstance(message.record, DepthUpdate):  # handlers get each depth update as sent
            frames.append(message.record)

    with anyio.move_on_after(duration):
        async with (
            WeexWebSocketClient(config) as client,
            _common.closing(client.stream_order_book(symbol, level=level)) as book,
        ):
            client.add_message_handler("depth.*", record)
            async for message in book:
                data = message.data
                if data["resyncing"]:
                    resyncs += 1
                    print(f"-- {data['reason']}: waiting for a fresh snapshot --")
                    continue
                bids, asks = data["bids"], data["asks"]
                if not bids or not asks:
                    continue
                quote = Quote(data["version"], bids[0][0], asks[0][0], tuple(bids), tuple(asks))
                quotes.append(quote)
                print(
                    f"{data['symbol']} v{quote.version:<11} bid {quote.best_bid:>12}  "
                    f"ask {quote.best_ask:>12}  spread {quote.spread}  "
                    f"({len(bids)}x{len(asks)} levels)"
                )
                if count is not None and len(quotes) >= count:
                    break
    return BookReport(tuple(quotes), resyncs, tuple(frames))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(__doc__, count=20, count_help="stop after N quotes")
    parser.add_argument("symbol", nargs="?", default="BTCUSDT")
    parser.add_argument("--level", type=int, default=15, help="levels to show (1-200)")
    args = parser.parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        report = await run(
            exchange.config,
            args.symbol,
            count=args.count,
            level=args.level,
            duration=args.duration,
        )
        if report.quotes:
            spreads = [quote.spread for quote in report.quotes]
            print(
                f"\n{len(report.quotes)} quotes, spread min {min(spreads)} max {max(spreads)}, "
                f"{report.resyncs} resyncs"
            )

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
