"""Message filtering: a `ticker.*` handler, then filters by symbol and by price move.

Shows: `client.subscribe("ticker", symbol=...)` for the channels and
`client.add_message_handler("ticker.*", handler)` to receive every ticker push through one
callback (a plain function runs inline, so it must be quick; an `async def` handler would run in
its own task). The handler applies two filters before anything is printed:

* by symbol: only contracts on the watch list pass;
* by price move: a ticker passes only when its last price moved by at least `min_move` (a
  fraction: 0.0001 = 1 basis point) from the last price that passed for that contract. The
  first ticker of each contract always passes. This "deadband" turns a busy feed into the
  updates that matter.

Run:
    python examples/filtering.py                     # simulator: watch BTC and ETH of three
    python examples/filtering.py --watch SOLUSDT --min-move 0.0005 --count 300
    python examples/filtering.py --live --duration 60
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from weex_anyio import WebSocketMessage, WeexConfig, WeexWebSocketClient
from weex_proto import normalize_symbol
from weex_proto.messages import Ticker


class PriceMoveFilter:
    """Pass tickers of watched contracts whose price moved `min_move` since the last pass."""

    def __init__(self, watch: Iterable[str], min_move: Decimal) -> None:
        if min_move < 0:
            raise ValueError("min_move must be >= 0")
        self.watch = frozenset(normalize_symbol(symbol) for symbol in watch)
        self.min_move = min_move
        self._reference: dict[str, Decimal] = {}

    def __call__(self, ticker: Ticker) -> bool:
        if ticker.symbol not in self.watch:
            return False
        reference = self._reference.get(ticker.symbol)
        if reference is not None and abs(ticker.last_price - reference) < self.min_move * reference:
            return False
        self._reference[ticker.symbol] = ticker.last_price
        return True


@attrs.frozen
class FilterReport:
    seen: tuple[Ticker, ...]
    """Every ticker the `ticker.*` handler received, in order."""
    passed: tuple[Ticker, ...]
    """The ones that got through both filters."""


async def run(
    config: WeexConfig,
    symbols: Sequence[str] = _common.DEFAULT_SYMBOLS,
    *,
    watch: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
    min_move: Decimal = Decimal("0.00002"),
    count: int | None = 60,
    duration: float | None = None,
) -> FilterReport:
    """Subscribe to `symbols`, pass on the `watch` ones that move, for `count` tickers."""
    keep = PriceMoveFilter(watch, min_move)
    seen: list[Ticker] = []
    passed: list[Ticker] = []
    enough = anyio.Event()

    def on_ticker(message: WebSocketMessage[Ticker]) -> None:
        ticker = message.record
        seen.append(ticker)
        if keep(ticker):
            passed.append(ticker)
            print(f"{ticker.symbol:<14} {ticker.last_price:>12}  (passed)")
        if count is not None and len(seen) >= count:
            enough.set()

    with anyio.move_on_after(duration):
        async with WeexWebSocketClient(config) as client:
            client.add_message_handler("ticker.*", on_ticker)
            for symbol in symbols:
                await client.subscribe("ticker", symbol=symbol)
            await enough.wait()
            client.remove_message_handler("ticker.*", on_ticker)
    return FilterReport(tuple(seen), tuple(passed))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(
        __doc__, count=60, symbols=_common.DEFAULT_SYMBOLS, count_help="stop after N tickers"
    )
    parser.add_argument(
        "--watch", nargs="+", default=["BTCUSDT", "ETHUSDT"], help="contracts to let through"
    )
    parser.add_argument(
        "--min-move", type=Decimal, default=Decimal("0.00002"), help="fraction, e.g. 0.0001"
    )
    args = parser.parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        report = await run(
            exchange.config,
            args.symbols,
            watch=args.watch,
            min_move=args.min_move,
            count=args.count,
            duration=args.duration,
        )
        print(f"\n{len(report.passed)} of {len(report.seen)} tickers passed the filters")

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
