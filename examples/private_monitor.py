"""Account, position and order monitoring on the private channels.

Shows: `stream_orders()`, `stream_fills()`, `stream_positions()` and `stream_account()` read
concurrently in one task group; `PrivateUpdate` records (`Order`, `Fill`, `Position`,
`Collateral`) with exact decimals and derived values (`Fill.price`, `Position.entry_price`).

Against the simulator the example makes things happen itself: once all four channels are
subscribed it places market orders with `server.simulate_trade(...)` (buy, buy, sell, ...).
Against the real exchange (`--live`, needs WEEX_API_KEY, WEEX_SECRET_KEY, WEEX_PASSPHRASE) it
only watches, so trade in the web UI or give it a `--duration`.

Run:
    python examples/private_monitor.py               # simulator, 3 trades
    python examples/private_monitor.py --count 6
    python examples/private_monitor.py --live --duration 300
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from weex_anyio import WebSocketMessage, WeexConfig, WeexWebSocketClient
from weex_anyio.testing import SimulatedTrade, SimulatedWeexServer
from weex_proto.messages import Collateral, Fill, Order, Position, PrivateRecord

PRIVATE_CHANNELS = ("orders", "fill", "positions", "account")
FINAL_ORDER_STATUSES = frozenset({"FILLED", "CANCELED"})
# What the simulator trades: (side, size) pairs, used in turn.
TRADE_PLAN = (("BUY", "0.010"), ("BUY", "0.005"), ("SELL", "0.020"))


@attrs.define
class PrivateReport:
    orders: list[Order] = attrs.field(factory=list)
    fills: list[Fill] = attrs.field(factory=list)
    positions: list[Position] = attrs.field(factory=list)
    account: list[Collateral] = attrs.field(factory=list)
    trades: list[SimulatedTrade] = attrs.field(factory=list)
    """What the example asked the simulator to do (empty with --live)."""

    def complete(self, count: int) -> bool:
        """Seen `count` fills, the final update of their orders, and as many position and
        account updates (each fill changes both)."""
        finished = {order.id for order in self.orders if order.status in FINAL_ORDER_STATUSES}
        return (
            len(self.fills) >= count
            and all(fill.order_id in finished for fill in self.fills)
            and len(self.positions) >= count
            and len(self.account) >= count
        )

    def record(self, record: PrivateRecord) -> None:
        if isinstance(record, Order):
            self.orders.append(record)
            print(
                f"order    {record.id} {record.order_side:<4} {record.order_type} "
                f"{record.size} {record.contract_id} {record.status}"
            )
        elif isinstance(record, Fill):
            self.fills.append(record)
            print(
                f"fill     {record.order_id} {record.order_side:<4} {record.fill_size} @ "
                f"{record.price} fee {record.fill_fee} realised {record.realize_pnl}"
            )
        elif isinstance(record, Position):
            self.positions.append(record)
            print(
                f"position {record.contract_id} {record.side:<5} {record.size} "
                f"entry {record.entry_price} margin {record.margin_mode}"
            )
        else:
            self.account.append(record)
            print(f"account  {record.coin_id} amount {record.amount}")


async def run(
    config: WeexConfig,
    *,
    count: int | None = 3,
    duration: float | None = None,
    server: SimulatedWeexServer | None = None,
    symbol: str = "cmt_btcusdt",
) -> PrivateReport:
    """Watch the private channels until `count` fills (and their updates) or `duration`.

    With `server`, trade `count` times on the simulator once every channel is subscribed.
    """
    report = PrivateReport()
    changed = anyio.Event()

    async def watch(stream: AsyncIterator[WebSocketMessage[Any]]) -> None:
        nonlocal changed
        async for message in stream:
            if message.gap:
                print("-- reconnected: private updates may have been missed; resync via REST --")
            report.record(message.record)
            changed.set()
            changed = anyio.Event()

    async def trade(server: SimulatedWeexServer, trades: int) -> None:
        for channel in PRIVATE_CHANNELS:
            await server.wait_for_subscription(channel)
        for number in range(trades):
            side, size = TRADE_PLAN[number % len(TRADE_PLAN)]
            print(f"-- simulator: market {side} {size} {symbol} --")
            report.trades.append(await server.simulate_trade(symbol, side, size))
            await anyio.sleep(0.05)

    with anyio.move_on_after(duration):
        async with WeexWebSocketClient(config) as client, anyio.create_task_group() as tasks:
            tasks.start_soon(watch, client.stream_orders())
            tasks.start_soon(watch, client.stream_fills())
            tasks.start_soon(watch, client.stream_positions())
            tasks.start_soon(watch, client.stream_account())
            if server is not None and count is not None:
                tasks.start_soon(trade, server, count)
            while count is None or not report.complete(count):
                await changed.wait()
            tasks.cancel_scope.cancel()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(
        __doc__, count=3, count_help="stop after N fills (simulator: trade N times)"
    )
    args = parser.parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        report = await run(
            exchange.config, count=args.count, duration=args.duration, server=exchange.server
        )
        print(
            f"\n{len(report.orders)} order updates, {len(report.fills)} fills, "
            f"{len(report.positions)} position updates, {len(report.account)} account updates"
        )

    return _common.launch(args, body, private=True)


if __name__ == "__main__":
    sys.exit(main())
