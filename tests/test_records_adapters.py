"""One message per record on every adapter: splitting, gap flags, candles, positions' PnL."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio

from tests.adapters import BOTH_DIALECTS, Harness, eventually, on_every_adapter
from tests.test_adapters import catch_up_with_server, generator
from weex_proto.events import WebSocketMessage
from weex_proto.messages import Candle, Position

TRADES = "trades.cmt_btcusdt"
KLINES = "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1"


def trades_frame(*prices: str) -> str:
    rows = [
        {"time": "1747131727502", "price": p, "size": "0.5", "value": "1", "buyerMaker": i % 2 == 1}
        for i, p in enumerate(prices)
    ]
    return json.dumps({"event": "payload", "channel": TRADES, "data": rows})


def candle_frame(kline_time: int, close: str) -> str:
    row = {
        "symbol": "cmt_btcusdt",
        "klineTime": str(kline_time),
        "size": "1",
        "value": "1",
        "high": close,
        "low": close,
        "open": close,
        "close": close,
    }
    return json.dumps({"event": "payload", "type": "change", "channel": KLINES, "data": [row]})


async def collect(stream: AsyncIterator[WebSocketMessage[Any]], into: list[Any]) -> None:
    async with contextlib.aclosing(generator(stream)) as messages:
        async for message in messages:
            into.append(message)


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_several_records_in_a_push_are_messages_and_only_the_first_after_a_gap_is_flagged(
    h: Harness,
) -> None:
    h.server.pause_market()
    got: list[WebSocketMessage[Any]] = []
    async with h.client() as client, anyio.create_task_group() as tasks:
        tasks.start_soon(collect, client.stream_trades("BTCUSDT"), got)
        await h.server.wait_for_subscription(TRADES)
        await catch_up_with_server(client)
        await h.server.send_push(trades_frame("1", "2", "3"))
        with anyio.fail_after(5):
            await eventually(lambda: len(got) >= 3)
        before = got[:3]
        assert [(m.data["price"], m.data["side"], m.index) for m in before] == [
            ("1", "buy", 0),
            ("2", "sell", 1),
            ("3", "buy", 2),
        ]
        assert not any(m.gap for m in before)
        assert len({id(m.frame) for m in before}) == 1  # one frame, three records

        assert await h.server.drop_connections() == 1
        await h.server.wait_until(
            lambda: any(TRADES in c.subscriptions for c in h.server.connections)
        )
        await h.server.send_push(trades_frame("4", "5"))
        with anyio.fail_after(5):
            await eventually(lambda: len(got) >= 5)
        tasks.cancel_scope.cancel()
    assert [(m.data["price"], m.gap) for m in got[3:]] == [("4", True), ("5", False)]


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_stream_klines_closes_a_candle_when_a_later_one_arrives(h: Harness) -> None:
    h.server.pause_market()
    later = 4_000_000_000_000  # after any candle the simulator's snapshot holds
    seen: list[WebSocketMessage[Candle]] = []
    async with h.client() as client, anyio.create_task_group() as tasks:
        tasks.start_soon(collect, client.stream_klines("BTCUSDT"), seen)
        await h.server.wait_for_subscription(KLINES)
        await h.server.send_push(candle_frame(later, "10"))
        await h.server.send_push(candle_frame(later, "11"))
        await h.server.send_push(candle_frame(later + 60_000, "12"))
        with anyio.fail_after(5):
            await eventually(lambda: any(m.record.kline_time > later for m in seen))
        tasks.cancel_scope.cancel()
    ours = [
        (m.record.kline_time, m.data["close"], m.record.closed)
        for m in seen
        if m.record.kline_time >= later
    ]
    assert ours == [
        (later, "10", False),
        (later, "11", False),
        (later, "11", True),
        (later + 60_000, "12", False),
    ]
    # Whatever the snapshot held is closed by our later candle before ours is delivered.
    earlier = [m for m in seen if m.record.kline_time < later]
    assert earlier and earlier[-1].record.closed and earlier[-1].data["closed"] is True


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_positions_carry_unrealized_pnl_once_the_contracts_mark_price_is_known(
    h: Harness,
) -> None:
    marks: list[str] = []
    positions: list[WebSocketMessage[Position]] = []
    async with h.client() as client:
        client.add_message_handler("ticker.cmt_ethusdt", lambda m: marks.append(m.data["mark"]))

        async def collect() -> None:
            async with contextlib.aclosing(client.stream_positions()) as stream:
                async for message in stream:
                    positions.append(message)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(collect)
            await h.server.wait_for_subscription("positions")
            await h.server.simulate_trade("cmt_ethusdt", "BUY", "0.5")
            # The stream subscribes the ticker of the contract it saw, for its mark price.
            await h.server.wait_for_subscription("ticker.cmt_ethusdt")
            with anyio.fail_after(5):
                await eventually(lambda: bool(marks))
            await h.server.simulate_trade("cmt_ethusdt", "BUY", "0.25")
            with anyio.fail_after(5):
                await eventually(lambda: len(positions) >= 2)
            tasks.cancel_scope.cancel()
    last = positions[-1]
    data = last.data
    mark, size, open_value = (
        Decimal(data["mark_price"]),
        Decimal(data["size"]),
        Decimal(data["openValue"]),
    )
    assert data["mark_price"] in marks
    expected = size * mark - open_value if data["side"] == "LONG" else open_value - size * mark
    assert Decimal(data["unrealized_pnl"]) == expected
    assert Decimal(data["entry_price"]) == open_value / size
    assert last.record.unrealized_pnl == expected
    assert data["symbol"] == "cmt_ethusdt"
