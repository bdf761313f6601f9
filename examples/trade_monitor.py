"""Public trades: a running tally of taker buy and sell volume for one contract.

Shows: `client.stream_trades(symbol)`, `Trade` records (one push can carry several trades), and
reading `buyer_maker`: True means the buyer's order was resting, so the *seller* took
liquidity and the trade counts as selling pressure.

Run:
    python examples/trade_monitor.py                 # simulator, BTCUSDT, until 50 trades
    python examples/trade_monitor.py ETHUSDT --count 200
    python examples/trade_monitor.py --live --duration 60
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
from weex_anyio import WebSocketMessage, WeexConfig, WeexWebSocketClient
from weex_proto.messages import Trade


@attrs.define
class TradeTally:
    """Taker-side totals; volumes are in the base currency, values in the quote currency."""

    buys: int = 0
    sells: int = 0
    buy_volume: Decimal = Decimal(0)
    sell_volume: Decimal = Decimal(0)
    buy_value: Decimal = Decimal(0)
    sell_value: Decimal = Decimal(0)
    messages: list[WebSocketMessage[Any]] = attrs.field(factory=list, repr=False)
    """The pushes the tally was made from, for anyone who wants to check it."""

    @property
    def trades(self) -> int:
        return self.buys + self.sells

    @property
    def vwap(self) -> Decimal | None:
        """Volume-weighted average price of everything tallied."""
        volume = self.buy_volume + self.sell_volume
        return (self.buy_value + self.sell_value) / volume if volume else None

    def add(self, trade: Trade) -> None:
        if trade.buyer_maker:
            self.sells += 1
            self.sell_volume += trade.size
            self.sell_value += trade.value
        else:
            self.buys += 1
            self.buy_volume += trade.size
            self.buy_value += trade.value


async def run(
    config: WeexConfig,
    symbol: str = "BTCUSDT",
    *,
    count: int | None = 50,
    duration: float | None = None,
) -> TradeTally:
    """Tally trades until at least `count` trades (whole pushes) or `duration` seconds."""
    tally = TradeTally()
    with anyio.move_on_after(duration):
        async with WeexWebSocketClient(config) as client:
            async for message in client.stream_trades(symbol):
                tally.messages.append(message)
                trade = message.record
                tally.add(trade)
                side = "SELL" if trade.buyer_maker else "BUY "
                print(
                    f"{trade.symbol} {side} {trade.size:>10} @ {trade.price:<12} "
                    f"buy {tally.buy_volume} / sell {tally.sell_volume}"
                )
                if count is not None and tally.trades >= count:
                    break
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(__doc__, count=50, count_help="stop after at least N trades")
    parser.add_argument("symbol", nargs="?", default="BTCUSDT")
    args = parser.parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        tally = await run(exchange.config, args.symbol, count=args.count, duration=args.duration)
        print(
            f"\n{tally.trades} trades: {tally.buys} buys ({tally.buy_volume}), "
            f"{tally.sells} sells ({tally.sell_volume}), VWAP {tally.vwap}"
        )

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
