"""The simulator's v3 face, and the client streaming from it on every adapter.

The simulator's v3 frames must have the shape of the frames Weex.Net captured (tests/data/v3):
the same keys, each with the same JSON type. The client on v3 must yield the same records and
`.data` names as on v2.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.adapters import Harness, eventually, on_every_adapter, take
from tests.test_adapters import generator
from tests.test_records_adapters import collect
from tests.test_simulator import Rejected, fast_server, raw_client, weex_sign
from weex_anyio.testing import _v3
from weex_anyio.testing._channels import parse_public_channel
from weex_anyio.testing._market import Market
from weex_anyio.testing._private import SimulatedAccount
from weex_proto.messages import DepthUpdate, Order, Ticker, Trade
from weex_proto.records import OrderBookSnapshot

DATA = Path(__file__).parent / "data" / "v3"
SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt")
NOW_MS = 1_775_000_000_000


def captured(name: str) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads((DATA / f"{name}.txt").read_text().partition("\n= \n")[2])
    return frame


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively; a list by its first item (if any)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def market_frame(channel: str, *, initial: bool = False) -> dict[str, Any]:
    market = Market(SYMBOLS, random.Random(3), NOW_MS / 1000)
    for step in range(1, 40):  # long enough for trades to happen
        market.step(NOW_MS / 1000 + step)
    parsed = parse_public_channel(channel, SYMBOLS)
    assert parsed is not None
    message = market.initial_messages(parsed)[0] if initial else market.update_message(parsed)
    assert message is not None
    return _v3.push(message, NOW_MS)


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("Ticker", "ticker.cmt_ethusdt"),
        ("OrderBook", "depth.cmt_ethusdt.15"),
        ("Trades", "trades.cmt_ethusdt"),
        ("Kline", "kline.LAST_PRICE.cmt_ethusdt.DAY_1"),
    ],
)
def test_public_frames_have_the_captured_shape(name: str, channel: str) -> None:
    frame = market_frame(channel)
    assert shape(frame) == shape(captured(name))
    assert frame["s"] == "ETHUSDT"


def test_depth_snapshot_is_a_depth_snapshot_event() -> None:
    frame = market_frame("depth.cmt_ethusdt.15", initial=True)
    assert (frame["e"], frame["d"]) == ("depthSnapshot", "SNAPSHOT")
    assert {k: v for k, v in shape(frame).items() if k != "e"} == {
        k: v for k, v in shape(captured("OrderBook")).items() if k != "e"
    }


def test_private_frames_have_the_captured_shape() -> None:
    account = SimulatedAccount(random.Random(1), NOW_MS)
    _, pushes = account.trade("cmt_btcusdt", "BUY", Decimal("0.01"), Decimal("60000"), 4, NOW_MS)
    names = {"account": "Account", "positions": "Position", "orders": "Order", "fill": "UserTrade"}
    seen = set()
    for channel, message in pushes:
        frame = _v3.push(message, NOW_MS)
        expected = shape(captured(names[channel]))
        got = shape(frame)
        # The simulated account fills the documented v2 fields; the captured records may carry
        # more. Every field the simulator sends has the captured name and type.
        assert got.keys() == expected.keys()
        record, captured_record = got["d"][0], expected["d"][0]
        assert {k: v for k, v in record.items() if k in captured_record} == {
            k: v for k, v in captured_record.items() if k in record
        }
        assert "coin" in record and "coinId" not in record
        seen.add(channel)
    assert seen == set(names)


@pytest.mark.parametrize(
    ("v3", "v2"),
    [
        ("BTCUSDT@ticker", "ticker.cmt_btcusdt"),
        ("BTCUSDT@trade", "trades.cmt_btcusdt"),
        ("BTCUSDT@depth200", "depth.cmt_btcusdt.200"),
        ("BTCUSDT@kline_1M_MARK_PRICE", "kline.MARK_PRICE.cmt_btcusdt.MONTH_1"),
        ("orders", "orders"),
        ("DOGEUSDT@ticker", None),
        ("BTCUSDT@depth5", None),
        ("ticker.cmt_btcusdt", None),
    ],
)
def test_simulator_reads_v3_names(v3: str, v2: str | None) -> None:
    assert _v3.v2_channel(v3, SYMBOLS) == v2


# --- the client on v3, every adapter ---------------------------------------------------------


@on_every_adapter(api="v3", tick_interval=0.02)
async def test_streams_over_v3_yield_the_v2_records(h: Harness) -> None:
    assert h.config().api_version == "v3"
    async with h.client() as client:
        async with contextlib.aclosing(generator(client.stream_tickers(["BTCUSDT"]))) as tickers:
            message = await take(tickers)
        assert message.channel == "ticker.cmt_btcusdt"
        assert isinstance(message.record, Ticker)
        assert message.data["symbol"] == "cmt_btcusdt"
        assert message.data["last"] == message.data["lastPrice"]
        assert json.loads(message.raw)["e"] == "ticker"  # .raw is the v3 text as received
        async with contextlib.aclosing(generator(client.stream_trades("BTCUSDT"))) as trades:
            trade = await take(trades)
        assert isinstance(trade.record, Trade) and trade.record.symbol == "cmt_btcusdt"
        assert trade.data["side"] in ("buy", "sell") and "tradeId" in trade.data
        book_stream = generator(client.stream_order_book("BTCUSDT", level=5))
        async with contextlib.aclosing(book_stream) as books:
            book = (await take(books)).record
        assert isinstance(book, OrderBookSnapshot) and not book.resyncing
        assert book.best_bid is not None and book.best_ask is not None
        assert book.best_bid[0] < book.best_ask[0]
        assert book.version is not None
        paths = {c.path for c in h.server.connections}
        assert paths == {"/v3/ws/public"}


@on_every_adapter(api="v3", tick_interval=0.02)
async def test_depth_updates_over_v3_keep_the_book_in_step(h: Harness) -> None:
    """Handlers see v3 depth frames as DepthUpdates whose versions run on (U = previous u + 1)."""
    seen: list[DepthUpdate] = []
    enough = anyio.Event()

    def on_depth(message: Any) -> None:
        seen.append(message.record)
        if len(seen) >= 4:
            enough.set()

    async with h.client() as client:
        client.add_message_handler("depth.cmt_btcusdt.15", on_depth)
        await client.subscribe("depth", symbol="BTCUSDT", level=15)
        with anyio.fail_after(10):
            await enough.wait()
    assert seen[0].depth_type == "SNAPSHOT"
    for before, after in itertools.pairwise(seen):
        assert after.depth_type == "CHANGED"
        assert after.start_version == before.end_version + 1


@on_every_adapter(api="v3")
async def test_private_stream_over_v3_signs_and_reads_orders(h: Harness) -> None:
    got: list[Any] = []
    async with h.client() as client, anyio.create_task_group() as tasks:
        tasks.start_soon(collect, client.stream_orders(), got)
        await h.server.wait_for_subscription("orders")
        await h.server.simulate_trade("cmt_ethusdt", "BUY", "0.01")
        await eventually(lambda: bool(got))
        tasks.cancel_scope.cancel()
    message = got[0]
    record = message.record
    assert isinstance(record, Order)
    assert record.contract_id == "cmt_ethusdt"
    assert message.data["order_id"] == record.id
    assert json.loads(message.raw)["e"] == "orders"


# --- the simulator's v3 protocol, from a raw socket ------------------------------------------


@pytest.mark.anyio
async def test_simulator_v3_requests_echo_their_id_and_may_name_several_channels() -> None:
    """What v2 has no counterpart of (test_simulator runs the rest on both dialects): ids are
    echoed as sent (ccxt's are strings), and one request may name several channels, answered
    once; a refusal names the first name refused, the others are still subscribed."""
    async with fast_server(api="v3") as server, raw_client(server) as ws:
        await ws.send(
            {"method": "SUBSCRIBE", "params": ["BTCUSDT@ticker", "ETHUSDT@trade"], "id": "7"}
        )
        assert await ws.recv() == {"id": "7", "result": True}
        names = ["NOPEUSDT@ticker", "SOLUSDT@ticker", "BTCUSDT@depth5"]
        await ws.send({"method": "SUBSCRIBE", "params": names, "id": 8})
        refusal = await ws.recv_until(lambda m: m.get("id") == 8)
        assert refusal == {
            "result": False,
            "id": 8,
            "msg": "INVALID_ARGUMENT: invalid symbol : NOPEUSDT@ticker",
        }
        assert server.connections[0].subscriptions == {
            "ticker.cmt_btcusdt",
            "trades.cmt_ethusdt",
            "ticker.cmt_solusdt",
        }
        await ws.send(
            {"method": "UNSUBSCRIBE", "params": ["BTCUSDT@ticker", "ETHUSDT@trade"], "id": 9}
        )
        assert await ws.recv_until(lambda m: m.get("id") == 9) == {"id": 9, "result": True}
        assert server.connections[0].subscriptions == {"ticker.cmt_solusdt"}


@pytest.mark.anyio
async def test_simulator_v3_private_needs_the_v3_signature() -> None:
    async with fast_server(api="v3") as server:
        headers = server.signed_headers()
        stamp = headers["ACCESS-TIMESTAMP"]
        secret = server.credentials.secret_key
        assert headers["ACCESS-SIGN"] == weex_sign(secret, stamp, "/v3/ws/private")
        wrong = {**headers, "ACCESS-SIGN": weex_sign(secret, stamp, "/v2/ws/private")}
        with pytest.raises(Rejected) as info:
            async with raw_client(server, path="/v3/ws/private", headers=wrong):
                pass
        assert info.value.status == 401


@on_every_adapter(api="v3", ping_interval=0.05, max_missed_pongs=2, tick_interval=0.05)
async def test_v3_pings_are_answered_so_the_server_keeps_the_connection(h: Harness) -> None:
    async with h.client() as client:
        tickers = generator(client.stream_tickers(["BTCUSDT"]))
        async with contextlib.aclosing(tickers):
            await take(tickers)
            await eventually(lambda: h.server.connections[0].pongs_received >= 5)
            assert h.server.connections[0].outstanding_pings <= 2
            assert h.server.stats.accepted == 1  # never closed for missed pongs
            assert client.health.endpoints["public"].pings_answered >= 5
    pongs = [m for m in h.server.received if isinstance(m, dict) and m.get("method") == "PONG"]
    assert len({m["id"] for m in pongs}) == len(pongs)  # each PONG a request id of its own
