"""A paper trading engine: SMA crossover signals, simulated fills, positions and PnL in Decimal.

Shows: turning a live ticker stream into trading decisions without sending any order. The
strategy holds a target position: +size after a "buy" crossover, -size after a "sell"
(signals from `moving_average.CrossoverDetector`). Each change of target is filled at once at
the ticker's last price. The book-keeping uses the average-cost method: a fill that reduces
the position realises (price - entry) x closed size (sign flipped for shorts); what is still
open is worth (last price - entry) x position, the unrealised PnL. No fees, no slippage.

Run:
    python examples/paper_trading.py                        # simulator, 120 updates, SMA 3/8
    python examples/paper_trading.py ETHUSDT --size 0.5 --count 300
    python examples/paper_trading.py --live --duration 600
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from examples.moving_average import CrossoverDetector
from weex_anyio import WeexConfig, WeexWebSocketClient


@attrs.frozen
class PaperFill:
    index: int
    """Which price (counting from 0) it was filled at."""
    side: Literal["BUY", "SELL"]
    size: Decimal
    price: Decimal
    realized_pnl: Decimal
    """PnL this fill realised by reducing or flipping the position."""


class PaperAccount:
    """One contract's position, kept with the average-cost method."""

    def __init__(self) -> None:
        self.position = Decimal(0)  # signed: > 0 long, < 0 short
        self.entry_price: Decimal | None = None
        self.realized_pnl = Decimal(0)
        self.fills: list[PaperFill] = []

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        if self.entry_price is None:
            return Decimal(0)
        return (price - self.entry_price) * self.position

    def fill(
        self, side: Literal["BUY", "SELL"], size: Decimal, price: Decimal, index: int
    ) -> PaperFill:
        signed = size if side == "BUY" else -size
        realized = Decimal(0)
        if self.position and (self.position > 0) != (signed > 0):
            # Reducing (or flipping): the closed part realises against the entry price.
            assert self.entry_price is not None
            closed = min(abs(signed), abs(self.position))
            direction = 1 if self.position > 0 else -1
            realized = (price - self.entry_price) * closed * direction
        new_position = self.position + signed
        if new_position == 0:
            self.entry_price = None
        elif self.position == 0 or (self.position > 0) != (new_position > 0):
            self.entry_price = price  # opened, or flipped: the new side starts here
        elif (self.position > 0) == (signed > 0):
            assert self.entry_price is not None  # adding: average the entry
            self.entry_price = (self.entry_price * abs(self.position) + price * size) / abs(
                new_position
            )
        self.position = new_position
        self.realized_pnl += realized
        paper_fill = PaperFill(index, side, size, price, realized)
        self.fills.append(paper_fill)
        return paper_fill

    def move_to(self, target: Decimal, price: Decimal, index: int) -> PaperFill | None:
        """Trade whatever takes the position to `target`; None when it is there already."""
        difference = target - self.position
        if difference == 0:
            return None
        side: Literal["BUY", "SELL"] = "BUY" if difference > 0 else "SELL"
        return self.fill(side, abs(difference), price, index)


@attrs.frozen
class PaperReport:
    prices: tuple[Decimal, ...]
    fills: tuple[PaperFill, ...]
    position: Decimal
    entry_price: Decimal | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    """Marked at the last price seen."""

    @property
    def total_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl


async def run(
    config: WeexConfig,
    symbol: str = "BTCUSDT",
    *,
    count: int | None = 120,
    short: int = 3,
    long: int = 8,
    size: Decimal = Decimal("0.01"),
    duration: float | None = None,
) -> PaperReport:
    """Paper-trade `symbol` for `count` ticker updates (or `duration` seconds)."""
    if size <= 0:
        raise ValueError("size must be positive")
    detector = CrossoverDetector(short, long)
    account = PaperAccount()
    prices: list[Decimal] = []
    with anyio.move_on_after(duration):
        async with WeexWebSocketClient(config) as client:
            async for message in client.stream_tickers([symbol]):
                price = message.record.last_price
                prices.append(price)
                _, _, signal = detector.update(price)
                if signal is not None:
                    target = size if signal.kind == "buy" else -size
                    fill = account.move_to(target, price, signal.index)
                    if fill is not None:
                        print(
                            f"#{fill.index + 1:<4} {signal.kind:<4} signal: {fill.side} "
                            f"{fill.size} @ {fill.price}  realised {fill.realized_pnl:+}  "
                            f"position {account.position}  total realised "
                            f"{account.realized_pnl:+}"
                        )
                if count is not None and len(prices) >= count:
                    break
    last = prices[-1] if prices else Decimal(0)
    return PaperReport(
        prices=tuple(prices),
        fills=tuple(account.fills),
        position=account.position,
        entry_price=account.entry_price,
        realized_pnl=account.realized_pnl,
        unrealized_pnl=account.unrealized_pnl(last),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(__doc__, count=120, count_help="stop after N ticker updates")
    parser.add_argument("symbol", nargs="?", default="BTCUSDT")
    parser.add_argument("--short", type=int, default=3, help="short SMA window (default 3)")
    parser.add_argument("--long", type=int, default=8, help="long SMA window (default 8)")
    parser.add_argument("--size", type=Decimal, default=Decimal("0.01"), help="position size")
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
            size=args.size,
            duration=args.duration,
        )
        print(
            f"\n{len(report.fills)} fills over {len(report.prices)} prices; position "
            f"{report.position} (entry {report.entry_price}); PnL realised "
            f"{report.realized_pnl:+}, unrealised {report.unrealized_pnl:+}, "
            f"total {report.total_pnl:+}"
        )

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
