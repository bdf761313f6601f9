"""Moving-average analysis of ticker last prices, with short/long crossover signals.

Shows: exact `Decimal` arithmetic on `Ticker.last_price` (no float rounding), a simple moving
average kept in O(1) per update with a window and a running sum, and crossover signals:
"buy" when the short SMA moves from at or below the long SMA to above it, "sell" when it moves
from at or above to below. `CrossoverDetector` is reused by `paper_trading.py`.

Run:
    python examples/moving_average.py                         # simulator, 60 updates, SMA 5/20
    python examples/moving_average.py ETHUSDT --short 3 --long 10 --count 100
    python examples/moving_average.py --live --duration 120
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from weex_anyio import WeexConfig, WeexWebSocketClient


class SimpleMovingAverage:
    """The mean of the last `window` values; None until `window` values have been seen."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._values: deque[Decimal] = deque()
        self._sum = Decimal(0)  # sums of decimal prices are exact: no drift as values leave

    def update(self, value: Decimal) -> Decimal | None:
        self._values.append(value)
        self._sum += value
        if len(self._values) > self.window:
            self._sum -= self._values.popleft()
        return self._sum / self.window if len(self._values) == self.window else None


@attrs.frozen
class Signal:
    index: int
    """Position of the price that triggered it, counting from 0."""
    kind: Literal["buy", "sell"]
    price: Decimal
    short_sma: Decimal
    long_sma: Decimal


class CrossoverDetector:
    """Feeds prices to a short and a long SMA and reports where they cross."""

    def __init__(self, short: int, long: int) -> None:
        if not 1 <= short < long:
            raise ValueError("need 1 <= short < long")
        self.short = SimpleMovingAverage(short)
        self.long = SimpleMovingAverage(long)
        self._previous: Decimal | None = None  # short - long at the previous price
        self._index = -1

    def update(self, price: Decimal) -> tuple[Decimal | None, Decimal | None, Signal | None]:
        """The short SMA, the long SMA and the signal (if any) after `price`."""
        self._index += 1
        short, long = self.short.update(price), self.long.update(price)
        if short is None or long is None:
            return short, long, None
        difference, previous = short - long, self._previous
        self._previous = difference
        signal = None
        if previous is not None and previous <= 0 < difference:
            signal = Signal(self._index, "buy", price, short, long)
        elif previous is not None and previous >= 0 > difference:
            signal = Signal(self._index, "sell", price, short, long)
        return short, long, signal


@attrs.frozen
class MovingAverageReport:
    prices: tuple[Decimal, ...]
    short_sma: tuple[Decimal | None, ...]
    long_sma: tuple[Decimal | None, ...]
    signals: tuple[Signal, ...]


async def run(
    config: WeexConfig,
    symbol: str = "BTCUSDT",
    *,
    count: int | None = 60,
    short: int = 5,
    long: int = 20,
    duration: float | None = None,
) -> MovingAverageReport:
    """Compute both SMAs over `count` ticker updates (or `duration` seconds) of `symbol`."""
    detector = CrossoverDetector(short, long)
    prices: list[Decimal] = []
    shorts: list[Decimal | None] = []
    longs: list[Decimal | None] = []
    signals: list[Signal] = []
    with anyio.move_on_after(duration):
        async with WeexWebSocketClient(config) as client:
            async for message in client.stream_tickers([symbol]):
                ticker = message.record
                short_sma, long_sma, signal = detector.update(ticker.last_price)
                prices.append(ticker.last_price)
                shorts.append(short_sma)
                longs.append(long_sma)
                line = f"{ticker.symbol} #{len(prices):<4} last {ticker.last_price:<12}"
                if short_sma is not None:
                    line += f" SMA{short} {short_sma:.6f}"
                if long_sma is not None:
                    line += f" SMA{long} {long_sma:.6f}"
                if signal is not None:
                    signals.append(signal)
                    line += f"  <-- {signal.kind.upper()} (short crossed long)"
                print(line)
                if count is not None and len(prices) >= count:
                    break
    return MovingAverageReport(tuple(prices), tuple(shorts), tuple(longs), tuple(signals))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(__doc__, count=60, count_help="stop after N ticker updates")
    parser.add_argument("symbol", nargs="?", default="BTCUSDT")
    parser.add_argument("--short", type=int, default=5, help="short SMA window (default 5)")
    parser.add_argument("--long", type=int, default=20, help="long SMA window (default 20)")
    args = parser.parse_args(argv)
    if not 1 <= args.short < args.long:
        parser.error("need 1 <= --short < --long")

    async def body(exchange: _common.Exchange) -> None:
        report = await run(
            exchange.config,
            args.symbol,
            count=args.count,
            short=args.short,
            long=args.long,
            duration=args.duration,
        )
        print(f"\n{len(report.prices)} prices, {len(report.signals)} crossover signals")
        for signal in report.signals:
            print(f"  #{signal.index + 1} {signal.kind} at {signal.price}")

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
