"""The v3 frames captured by Weex.Net (tests/data/v3) read through a v3 connection, exactly.

Each fixture's pushed frame goes in as the server's text; what comes out is the record model
of v2 (`.record`, `.data` with v2's names). Every expected value is read from the fixture's own
frame, so the test says "v3 field X is v2 field Y", never a number typed in by hand.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.wspeer import ServerPeer
from weex_proto import v3wire
from weex_proto.config import WeexConfig
from weex_proto.connection import WeexConnection
from weex_proto.events import MessageReceived, Subscribed
from weex_proto.messages import (
    Candle,
    Collateral,
    DepthUpdate,
    Fill,
    Order,
    Position,
    Ticker,
    Trade,
)
from weex_proto.records import RecordSplitter
from weex_proto.subscriptions import SubscriptionBook

DATA = Path(__file__).parent / "data" / "v3"
T0 = 1_775_000_000.0
CONFIG = WeexConfig(api_key="k", secret_key="s", passphrase="p", api="v3")


def fixture(name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The fixture's request, answer and pushed frame text."""
    text = (DATA / f"{name}.txt").read_text()
    head, _, push = text.partition("\n= \n")
    lines = head.splitlines()
    request = json.loads(lines[0].removeprefix("> "))
    answer = json.loads(lines[1].removeprefix("< "))
    return request, answer, push.strip()


def v3_connection(*, private: bool, channel: str) -> tuple[WeexConnection, ServerPeer]:
    """An open v3 connection that asked for `channel` (request id 1) and was told yes."""
    book = SubscriptionBook()
    book.subscribe(channel, T0)
    conn = WeexConnection(CONFIG, private=private, subscriptions=book)
    peer = ServerPeer()
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    peer.receive(conn.data_to_send())
    list(conn.events())
    conn.receive_data(peer.text({"id": 1, "result": True}), T0)
    assert list(conn.events()) == [Subscribed(channel)]
    return conn, peer


def pushed(name: str, channel: str, *, private: bool = False) -> list[Any]:
    """The messages (one per record) the fixture's push becomes on `channel`."""
    _, answer, text = fixture(name)
    assert answer == {"id": "|1|", "result": True}
    conn, peer = v3_connection(private=private, channel=channel)
    conn.receive_data(peer.text(text), T0 + 1)
    events = list(conn.events())
    assert len(events) == 1 and isinstance(events[0], MessageReceived), events
    push = events[0].message
    assert push.channel == channel
    assert push.raw == text  # the v3 text as received
    return RecordSplitter().split(push)


def raw(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(fixture(name)[2])
    return result


def test_each_public_request_is_what_the_dialect_writes() -> None:
    cases = {
        "Ticker": "ticker.cmt_ethusdt",
        "OrderBook": "depth.cmt_ethusdt.15",
        "Trades": "trades.cmt_ethusdt",
        "Kline": "kline.LAST_PRICE.cmt_ethusdt.MINUTE_1",
        "Account": "account",
        "UserTrade": "fill",
    }
    for name, channel in cases.items():
        request, _, _ = fixture(name)
        assert v3wire.request("subscribe", channel, 1) == {**request, "id": 1}, name


def test_ticker() -> None:
    frame = raw("Ticker")
    row = frame["d"][0]
    (message,) = pushed("Ticker", "ticker.cmt_ethusdt")
    data, record = message.data, message.record
    assert data["symbol"] == "cmt_" + frame["s"].lower()
    pairs = {
        "priceChange": "p",
        "priceChangePercent": "P",
        "lastPrice": "c",
        "high": "h",
        "low": "l",
        "size": "v",
        "value": "q",
        "trades": "n",
        "markPrice": "m",
        "open": "o",
        "vwap": "w",
        "indexPrice": "i",
        "openTime": "O",
        "closeTime": "C",
    }
    for v2, v3 in pairs.items():
        assert data[v2] == row[v3], v2
    assert set(row) == set(pairs.values())
    assert message.frame["time"] == frame["E"]
    assert isinstance(record, Ticker)
    assert record.last_price == Decimal(row["c"])
    assert record.mark_price == Decimal(row["m"])
    assert record.price_change_percent == Decimal(row["P"])
    assert record.trades == row["n"]
    # The documentation's names are derived as on v2.
    assert data["last"] == row["c"]
    assert Decimal(data["change"]) == Decimal(row["P"]) * 100


def test_order_book_update() -> None:
    frame = raw("OrderBook")
    (message,) = pushed("OrderBook", "depth.cmt_ethusdt.15")
    record = message.record
    assert isinstance(record, DepthUpdate)
    assert record.symbol == "cmt_ethusdt"
    assert (record.start_version, record.end_version) == (frame["U"], frame["u"])
    assert record.level == frame["l"]
    assert record.depth_type == frame["d"]
    assert [(str(x.price), str(x.size)) for x in record.bids] == [tuple(x) for x in frame["b"]]
    assert [(str(x.price), str(x.size)) for x in record.asks] == [tuple(x) for x in frame["a"]]
    data = message.data
    assert data["startVersion"] == frame["U"] and data["endVersion"] == frame["u"]
    assert data["bids"] == [{"price": p, "size": s} for p, s in frame["b"]]


def test_trades_in_the_order_sent() -> None:
    frame = raw("Trades")
    messages = pushed("Trades", "trades.cmt_ethusdt")
    assert len(messages) == len(frame["d"])
    for message, row in zip(messages, frame["d"], strict=True):
        record = message.record
        assert isinstance(record, Trade)
        assert record.symbol == "cmt_ethusdt"
        assert record.time == row["T"]
        assert (record.price, record.size, record.value) == tuple(Decimal(row[k]) for k in "pqv")
        assert record.buyer_maker is row["m"]
        assert message.data["tradeId"] == row["t"]
        assert message.data["side"] == ("sell" if row["m"] else "buy")


def test_kline_channel_comes_from_the_pushed_interval() -> None:
    frame = raw("Kline")
    row = frame["d"][0]
    assert row["i"] == "1d"  # the fixture's request says 1m: the push names its own interval
    (message,) = pushed("Kline", "kline.LAST_PRICE.cmt_ethusdt.DAY_1")
    candle = message.record
    assert isinstance(candle, Candle)
    assert candle.symbol == "cmt_" + row["s"].lower()
    assert candle.kline_time == row["t"]
    for field, key in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c")):
        assert getattr(candle, field) == Decimal(row[key])
    assert (candle.size, candle.value) == (Decimal(row["v"]), Decimal(row["q"]))
    data = message.data
    assert (data["closeTime"], data["trades"]) == (row["T"], row["n"])
    assert (data["takerBuySize"], data["takerBuyValue"]) == (row["V"], row["Q"])
    assert message.frame["type"] == "change"


def _private(name: str, channel: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
    frame = raw(name)
    (message,) = pushed(name, channel, private=True)
    msg = message.frame["msg"]
    assert (msg["msgEvent"], msg["version"], msg["time"]) == (
        frame["msgEvent"],
        frame["v"],
        frame["E"],
    )
    return frame, frame["d"][0], message


def _same_fields_but_renamed(row: dict[str, Any], data: Any) -> None:
    """Every field of the v3 record is in `.data`, three of them under v2's name (and an
    order's `status` as `weex_status`, `.data["status"]` being the documented vocabulary)."""
    renamed = {
        "coin": "coinId",
        "symbol": "contractId",
        "crossSymbol": "crossContractId",
        "status": "weex_status",
    }
    for key, value in row.items():
        if key == "symbol":
            assert data["contractId"] == "cmt_" + value.lower()
        elif key in renamed:
            assert data[renamed[key]] == value, key
        else:
            assert data[key] == value, key


def test_account() -> None:
    _, row, message = _private("Account", "account")
    record = message.record
    assert isinstance(record, Collateral)
    assert record.coin_id == row["coin"]
    assert record.amount == Decimal(row["amount"])
    assert record.liquidating is row["liquidating"]
    assert record.cross_contract_id == row["crossSymbol"]
    _same_fields_but_renamed(row, message.data)
    assert message.data["balance"] == row["amount"]


def test_positions() -> None:
    _, row, message = _private("Position", "positions")
    record = message.record
    assert isinstance(record, Position)
    assert record.contract_id == "cmt_btcusdt" == "cmt_" + row["symbol"].lower()
    assert (record.size, record.open_value) == (Decimal(row["size"]), Decimal(row["openValue"]))
    assert record.auto_append_isolated_margin is row["autoAppendIsolatedMargin"]
    _same_fields_but_renamed(row, message.data)


def test_orders() -> None:
    _, row, message = _private("Order", "orders")
    record = message.record
    assert isinstance(record, Order)
    assert (record.id, record.client_order_id, record.status) == (
        row["id"],
        row["clientOrderId"],
        row["status"],
    )
    assert record.order_type == row["type"]
    assert record.cum_fill_size == Decimal(row["cumFillSize"])
    _same_fields_but_renamed(row, message.data)
    assert message.data["status"] == "new"  # PENDING with nothing filled, as on v2


def test_fills() -> None:
    _, row, message = _private("UserTrade", "fill")
    record = message.record
    assert isinstance(record, Fill)
    assert (record.id, record.order_id) == (row["id"], row["orderId"])
    assert record.fill_value == Decimal(row["fillValue"])
    assert record.direction == row["direction"]
    _same_fields_but_renamed(row, message.data)


@pytest.mark.parametrize("name", ["Ticker", "OrderBook", "Trades", "Kline"])
def test_public_push_keeps_its_envelope_time(name: str) -> None:
    frame = raw(name)
    converted = v3wire.push_to_v2(frame)
    assert isinstance(converted, dict)
    assert converted["time"] == frame["E"]
