"""Order book monitoring: a local book built from the depth SNAPSHOT and its CHANGED diffs.

Shows: `client.stream_order_book(symbol, level=15)`, applying diffs (size 0 removes a level),
checking version continuity (each CHANGED starts at the previous endVersion + 1), and
resynchronising when it breaks: end the stream (which unsubscribes) and open a new one, whose
subscription brings a fresh SNAPSHOT. After a reconnect (`message.gap`) the resubscription
brings a snapshot too. Each update prints best bid, best ask and the spread.

Run:
    python examples/order_book_monitor.py                    # simulator, BTCUSDT, 20 updates
    python examples/order_book_monitor.py ETHUSDT --count 50
    python examples/order_book_monitor.py --live --duration 30
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
from weex_proto.messages import DepthUpdate


@attrs.frozen
class Quote:
    """The top of the book after one update."""

    version: int
    best_bid: Decimal
    best_ask: Decimal

    @property
    def spread(self) -> Decimal:
        return self.best_ask - self.best_bid

    @property
    def mid(self) -> Decimal:
        return (self.best_ask + self.best_bid) / 2


@attrs.frozen
class BookReport:
    applied: tuple[DepthUpdate, ...]
    """Every update that went into the book, in order (each resync starts with a SNAPSHOT)."""
    quotes: tuple[Quote, ...]
    """The top of the book after each applied update that left both sides non-empty."""
    resyncs: int
    """How often a version gap forced a fresh snapshot."""


class LocalBook:
    """Price -> size for each side, kept in step with the exchange's version numbers."""

    def __init__(self, snapshot: DepthUpdate) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.version = snapshot.end_version
        self._merge(snapshot)

    def follows(self, update: DepthUpdate) -> bool:
        """True when `update` continues this book with no missing version in between."""
        return update.start_version == self.version + 1

    def apply(self, update: DepthUpdate) -> None:
        self._merge(update)
        self.version = update.end_version

    def _merge(self, update: DepthUpdate) -> None:
        for side, levels in ((self.bids, update.bids), (self.asks, update.asks)):
            for level in levels:
                if level.size == 0:
                    side.pop(level.price, None)
                else:
                    side[level.price] = level.size

    def quote(self) -> Quote | None:
        if not self.bids or not self.asks:
            return None
        return Quote(self.version, max(self.bids), min(self.asks))


async def run(
    config: WeexConfig,
    symbol: str = "BTCUSDT",
    *,
    count: int | None = 20,
    level: int = 15,
    duration: float | None = None,
) -> BookReport:
    """Follow the book of `symbol` until `count` quotes or `duration` seconds."""
    applied: list[DepthUpdate] = []
    quotes: list[Quote] = []
    resyncs = 0

    def enough() -> bool:
        return count is not None and len(quotes) >= count

    async def follow(client: WeexWebSocketClient) -> bool:
        """Keep a book until `enough()`; return True early when a version gap needs a resync."""
        nonlocal resyncs
        book: LocalBook | None = None
        async with _common.closing(client.stream_order_book(symbol, level=level)) as depth:
            async for message in depth:
                if message.gap:
                    print("-- reconnected: waiting for a fresh snapshot --")
                    book = None
                for update in message.parse():
                    assert isinstance(update, DepthUpdate)
                    if update.depth_type == "SNAPSHOT":
                        book = LocalBook(update)
                    elif book is None:
                        continue  # a diff without its snapshot is useless
                    elif not book.follows(update):
                        resyncs += 1
                        print(
                            f"-- version gap: had v{book.version}, got "
                            f"v{update.start_version}; resubscribing for a snapshot --"
                        )
                        return True
                    else:
                        book.apply(update)
                    applied.append(update)
                    quote = book.quote()
                    if quote is not None:
                        quotes.append(quote)
                        print(
                            f"{update.symbol} v{quote.version:<11} bid {quote.best_bid:>12}  "
                            f"ask {quote.best_ask:>12}  spread {quote.spread}  "
                            f"({len(book.bids)}x{len(book.asks)} levels)"
                        )
                    if enough():
                        return False
        return False

    with anyio.move_on_after(duration):
        async with WeexWebSocketClient(config) as client:
            while await follow(client):
                pass
    return BookReport(tuple(applied), tuple(quotes), resyncs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(__doc__, count=20, count_help="stop after N quotes")
    parser.add_argument("symbol", nargs="?", default="BTCUSDT")
    parser.add_argument("--level", type=int, choices=(15, 200), default=15)
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
