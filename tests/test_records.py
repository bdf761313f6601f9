"""One message per record: the split, each channel's `.data` and `.record`, and the derived values.

Expected values are computed here from the numbers of the protocol reference's example pushes
(tests/fixtures_messages.py), never copied from the code under test.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from tests.fixtures_messages import (
    ACCOUNT_PUSH,
    DEPTH_PUSH,
    FILL_PUSH,
    KLINE_PUSH,
    ORDERS_PUSH,
    POSITIONS_PUSH,
    TICKER_PUSH,
    TRADES_PUSH,
)
from tests.test_hub import T0, connect, make_hub, push
from weex_proto.events import PushFrame, WebSocketMessage
from weex_proto.messages import (
    Candle,
    Collateral,
    DepthUpdate,
    Fill,
    Order,
    PayloadError,
    Position,
    Ticker,
    Trade,
    decimal_text,
    order_status,
)
from weex_proto.records import OrderBookSnapshot, RecordSplitter, SplitError
from weex_proto.runtime.fanout import OverflowPolicy
from weex_proto.runtime.hub import StreamPlan, plan_private, plan_tickers, plan_trades
from weex_proto.session import Reconnect


def frame(push: dict[str, Any]) -> PushFrame:
    return PushFrame(push["channel"], copy.deepcopy(push), T0)


def only(splitter: RecordSplitter, push: dict[str, Any]) -> WebSocketMessage[Any]:
    [message] = splitter.split(frame(push))
    return message


def private_push(push: dict[str, Any], key: str, *rows: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(push)
    result["msg"]["data"][key] = list(rows)
    return result


def public_push(push: dict[str, Any], *rows: Any, **extra: Any) -> dict[str, Any]:
    return {**copy.deepcopy(push), "data": list(rows), **extra}


def doc_row(push: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    rows = push["data"] if key is None else push["msg"]["data"][key]
    return dict(copy.deepcopy(rows[0]))


# --------------------------------------------------------------------------- each channel


def test_ticker_record_has_the_documented_names_with_the_documented_meaning() -> None:
    row = doc_row(TICKER_PUSH)
    message = only(RecordSplitter(), TICKER_PUSH)
    data = message.data
    assert data["last"] == row["lastPrice"] == "102623.9"
    assert data["volume"] == row["size"]
    assert data["mark"] == row["markPrice"]
    assert (data["symbol"], data["high"], data["low"]) == (row["symbol"], row["high"], row["low"])
    # WEEX's priceChangePercent is a fraction; the documented change is in percent.
    assert Decimal(data["change"]) == Decimal(row["priceChangePercent"]) * 100
    assert data["change"] == "-1.9637"  # plain text: no exponent, no float noise
    for key, value in row.items():  # WEEX's own names stay, with the exchange's exact strings
        assert data[key] == value
    assert "bid" not in data and "timestamp" not in data  # WEEX sends neither
    ticker = message.record
    assert isinstance(ticker, Ticker) and ticker.last_price == Decimal(row["lastPrice"])


def test_trade_side_is_the_takers_from_buyer_maker_and_symbol_comes_from_the_channel() -> None:
    splitter = RecordSplitter()
    row = doc_row(TRADES_PUSH)
    taker_sold = {**row, "buyerMaker": True}
    messages = splitter.split(frame(public_push(TRADES_PUSH, row, taker_sold)))
    assert [m.data["side"] for m in messages] == ["buy", "sell"]
    data = messages[0].data
    assert (data["price"], data["size"], data["time"]) == (row["price"], row["size"], row["time"])
    assert data["symbol"] == "cmt_btcusdt"
    trade = messages[1].record
    assert isinstance(trade, Trade) and trade.buyer_maker and trade.symbol == "cmt_btcusdt"


def test_account_balance_and_currency_and_no_made_up_available_or_frozen() -> None:
    row = doc_row(ACCOUNT_PUSH, "collateral")
    message = only(RecordSplitter(), ACCOUNT_PUSH)
    assert message.data["balance"] == row["amount"] == "6625267.708162"
    assert message.data["currency"] == "USDT"
    assert message.data.get("available", "N/A") == "N/A"
    assert message.data.get("frozen", "N/A") == "N/A"
    assert isinstance(message.record, Collateral)
    assert message.record.amount == Decimal(row["amount"])


def test_position_without_a_mark_price_has_entry_price_but_no_unrealized_pnl() -> None:
    row = doc_row(POSITIONS_PUSH, "position")
    message = only(RecordSplitter(), POSITIONS_PUSH)
    data = message.data
    assert (data["symbol"], data["size"], data["side"]) == ("cmt_btcusdt", row["size"], "LONG")
    assert Decimal(data["entry_price"]) == Decimal(row["openValue"]) / Decimal(row["size"])
    assert "unrealized_pnl" not in data and "mark_price" not in data
    position = message.record
    assert isinstance(position, Position) and position.unrealized_pnl is None


@pytest.mark.parametrize("side", ["LONG", "SHORT"])
def test_position_unrealized_pnl_uses_the_latest_ticker_mark_price(side: str) -> None:
    splitter = RecordSplitter()
    ticker = doc_row(TICKER_PUSH)
    splitter.split(frame(public_push(TICKER_PUSH, {**ticker, "markPrice": "1.0"})))
    splitter.split(frame(TICKER_PUSH))  # the latest mark wins
    row = {**doc_row(POSITIONS_PUSH, "position"), "side": side}
    message = only(splitter, private_push(POSITIONS_PUSH, "position", row))
    mark, size, open_value = (
        Decimal(ticker["markPrice"]),
        Decimal(row["size"]),
        Decimal(row["openValue"]),
    )
    entry = open_value / size
    expected = (mark - entry) * size if side == "LONG" else (entry - mark) * size
    assert Decimal(message.data["unrealized_pnl"]) == expected
    assert message.data["mark_price"] == ticker["markPrice"]
    position = message.record
    assert isinstance(position, Position)
    assert position.mark_price == mark and position.unrealized_pnl == expected


def test_a_mark_price_of_another_contract_is_not_used() -> None:
    splitter = RecordSplitter()
    eth = {**doc_row(TICKER_PUSH), "symbol": "cmt_ethusdt"}
    splitter.split(frame(public_push({**TICKER_PUSH, "channel": "ticker.cmt_ethusdt"}, eth)))
    assert "unrealized_pnl" not in only(splitter, POSITIONS_PUSH).data


def test_order_record_has_documented_names_and_status_and_keeps_weex_status() -> None:
    row = doc_row(ORDERS_PUSH, "order")
    message = only(RecordSplitter(), ORDERS_PUSH)
    data = message.data
    assert data["order_id"] == row["id"]
    assert (data["symbol"], data["size"], data["price"]) == (
        row["contractId"],
        row["size"],
        row["price"],
    )
    assert data["side"] == "buy"
    assert data["status"] == "new" and data["weex_status"] == "PENDING"
    order = message.record
    assert isinstance(order, Order) and order.status == "PENDING"
    assert order.normalized_status == "new"


@pytest.mark.parametrize(
    ("status", "size", "filled", "expected"),
    [
        ("PENDING", "0.1", "0", "new"),
        ("OPEN", "0.1", "0", "new"),
        ("UNTRIGGERED", "0.1", "0", "new"),
        ("OPEN", "0.1", "0.04", "partially_filled"),
        ("PENDING", "0.1", "0.1", "filled"),
        ("PARTIALLY_FILLED", "0.1", "0.04", "partially_filled"),
        ("FILLED", "0.1", "0.1", "filled"),
        ("CANCELING", "0.1", "0", "new"),  # not final yet
        ("CANCELED", "0.1", "0", "canceled"),
        ("CANCELED", "0.1", "0.04", "canceled"),
        ("CANCELLED", "0.1", "0", "canceled"),
        ("EXPIRED", "0.1", "0", "canceled"),
        ("REJECTED", "0.1", "0", "rejected"),
        ("FAILED", "0.1", "0", "rejected"),
        ("UNKNOWN_ORDER_STATUS", "0.1", "0", None),
        ("SOMETHING_NEW", "0.1", "0.1", None),
    ],
)
def test_order_status_derivation(status: str, size: str, filled: str, expected: str | None) -> None:
    assert order_status(status, Decimal(size), Decimal(filled)) == expected
    row = {**doc_row(ORDERS_PUSH, "order"), "status": status, "size": size, "cumFillSize": filled}
    data = only(RecordSplitter(), private_push(ORDERS_PUSH, "order", row)).data
    assert data.get("status") == expected  # unknown: left out, so .get's default applies
    assert data["weex_status"] == status


def test_fill_record_has_a_computed_price() -> None:
    row = doc_row(FILL_PUSH, "orderFillTransaction")
    message = only(RecordSplitter(), FILL_PUSH)
    assert Decimal(message.data["price"]) == Decimal(row["fillValue"]) / Decimal(row["fillSize"])
    assert message.data["price"] == "103812.7"
    assert (message.data["order_id"], message.data["size"]) == (row["orderId"], row["fillSize"])
    assert isinstance(message.record, Fill)


def test_depth_rows_are_records_for_handlers() -> None:
    message = only(RecordSplitter(), DEPTH_PUSH)
    assert message.data["depthType"] == "CHANGED"
    assert isinstance(message.record, DepthUpdate)


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("-1.963700"), "-1.963700"), (Decimal("0E+2"), "0"), (Decimal("1E-7"), "0.0000001")],
)
def test_decimal_text_has_no_exponent(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text


# --------------------------------------------------------------------------- the message itself


def test_record_is_parsed_once_and_data_is_read_only() -> None:
    message = only(RecordSplitter(), TICKER_PUSH)
    assert message.record is message.record
    assert message.data is message.data
    with pytest.raises(TypeError):
        message.data["last"] = "1"  # type: ignore[index]
    assert message.frame["data"][0]["lastPrice"] == "102623.9"


def test_a_malformed_record_keeps_its_mapping_and_its_record_raises() -> None:
    row = {**doc_row(TICKER_PUSH), "lastPrice": "not a number"}
    message = only(RecordSplitter(), public_push(TICKER_PUSH, row))
    assert message.data["last"] == "not a number"  # the exchange's value, as sent
    with pytest.raises(PayloadError, match=r"data\[0\]\.lastPrice"):
        _ = message.record


@pytest.mark.parametrize(
    "bad",
    [
        public_push(TICKER_PUSH) | {"data": {"not": "a list"}},
        public_push(TICKER_PUSH, 7),
        private_push(ORDERS_PUSH, "order") | {"msg": "nothing"},
        {"event": "payload", "channel": "bananas", "data": []},
    ],
)
def test_a_push_without_a_record_list_cannot_be_split(bad: dict[str, Any]) -> None:
    with pytest.raises(SplitError):
        RecordSplitter().split(frame(bad))


def test_order_book_snapshot_is_typed_and_a_mapping() -> None:
    level = (Decimal("100.5"), Decimal("2"))
    book = OrderBookSnapshot("cmt_btcusdt", (level,), (), 7, T0)
    assert book.get("bids", [])[:3] == (level,) and book["version"] == 7
    assert set(book) == {"symbol", "bids", "asks", "version", "timestamp", "resyncing"}
    assert book.best_bid == level and book.best_ask is None
    resync = OrderBookSnapshot("cmt_btcusdt", (), (), None, T0, resyncing=True, reason="gap")
    assert resync["reason"] == "gap" and len(resync) == 7
    with pytest.raises(KeyError):
        book["reason"]


# --------------------------------------------------------------------------- candles


def candle(kline_time: int, close: str) -> dict[str, Any]:
    return {**doc_row(KLINE_PUSH), "klineTime": str(kline_time), "close": close}


def closes(messages: list[WebSocketMessage[Any]]) -> list[tuple[str, str, bool]]:
    return [(m.data["klineTime"], m.data["close"], m.data["closed"]) for m in messages]


def test_a_candle_is_closed_when_a_later_kline_time_arrives() -> None:
    splitter = RecordSplitter()
    first = splitter.split(frame(public_push(KLINE_PUSH, candle(60_000, "1"))))
    again = splitter.split(frame(public_push(KLINE_PUSH, candle(60_000, "2"))))
    later = splitter.split(frame(public_push(KLINE_PUSH, candle(120_000, "3"))))
    assert closes(first) == [("60000", "1", False)]
    assert closes(again) == [("60000", "2", False)]
    # The finished candle comes again, closed, with its last values and its own frame.
    assert closes(later) == [("60000", "2", True), ("120000", "3", False)]
    assert later[0].frame["data"][0]["close"] == "2"
    record = later[0].record
    assert isinstance(record, Candle) and record.closed and record.close == Decimal(2)
    assert isinstance(later[1].record, Candle) and not later[1].record.closed


def test_a_snapshot_of_several_candles_closes_all_but_the_latest_once() -> None:
    splitter = RecordSplitter()
    rows = [candle(60_000, "1"), candle(120_000, "2"), candle(180_000, "3")]
    messages = splitter.split(frame(public_push(KLINE_PUSH, *rows, type="snapshot")))
    assert closes(messages) == [("60000", "1", True), ("120000", "2", True), ("180000", "3", False)]
    older = splitter.split(frame(public_push(KLINE_PUSH, candle(60_000, "9"))))
    assert closes(older) == [("60000", "9", True)]  # older than the open candle: final


def test_array_candles_are_named_too() -> None:
    row = ["60000", "1", "3", "0.5", "2", "10"]
    message = only(RecordSplitter(), public_push(KLINE_PUSH, row))
    data = message.data
    assert (data["time"], data["open"], data["high"], data["low"], data["close"]) == (
        "60000",
        "1",
        "3",
        "0.5",
        "2",
    )
    assert data["volume"] == "10" and data["interval"] == "MINUTE_1"
    assert data["price_type"] == "LAST_PRICE" and data["symbol"] == "cmt_btcusdt"


def test_a_reconnect_forgets_open_candles_rather_than_close_them_with_missed_values() -> None:
    hub = make_hub()
    channel = KLINE_PUSH["channel"]
    buffer = hub.open_stream(StreamPlan((channel,), False, OverflowPolicy.KEEP_LATEST))
    session = hub.acquire(channel, T0)
    peer = connect(hub, session)
    push(hub, session, peer, public_push(KLINE_PUSH, candle(60_000, "1")))
    hub.decided(session, Reconnect(0.0, 0, "test"))
    push(hub, session, peer, public_push(KLINE_PUSH, candle(120_000, "2")))
    messages = drain(buffer)
    assert closes(messages) == [("60000", "1", False), ("120000", "2", False)]
    assert [m.gap for m in messages] == [False, True]


def test_a_dropped_connection_forgets_only_the_candles_it_carried() -> None:
    """Kline channels on two pooled connections (100 channels each): one drops, and only its
    candles are forgotten; the other's open candle still closes when a later one comes."""
    hub = make_hub()
    kept, dropped = KLINE_PUSH["channel"], KLINE_PUSH["channel"].replace("btc", "eth")
    fillers = [f"ticker.cmt_x{n}usdt" for n in range(99)]
    buffers = {}
    sessions = {}
    for channel in [kept, *fillers, dropped]:
        plan = StreamPlan((channel,), False, OverflowPolicy.KEEP_LATEST)
        buffers[channel] = hub.open_stream(plan)
        sessions[channel] = hub.acquire(channel, T0)
    assert sessions[kept] is not sessions[dropped]
    peers = {channel: connect(hub, sessions[channel]) for channel in (kept, dropped)}
    for channel in (kept, dropped):
        frame = {**public_push(KLINE_PUSH, candle(60_000, "1")), "channel": channel}
        push(hub, sessions[channel], peers[channel], frame)
    hub.decided(sessions[dropped], Reconnect(0.0, 0, "test"))
    for channel in (kept, dropped):
        frame = {**public_push(KLINE_PUSH, candle(120_000, "2")), "channel": channel}
        push(hub, sessions[channel], peers[channel], frame)
    assert closes(drain(buffers[kept])) == [
        ("60000", "1", False),
        ("60000", "1", True),  # closed by the later candle: its memory was kept
        ("120000", "2", False),
    ]
    assert closes(drain(buffers[dropped])) == [("60000", "1", False), ("120000", "2", False)]


# --------------------------------------------------------------------------- the hub's split


def drain(buffer: Any) -> list[WebSocketMessage[Any]]:
    out = []
    while (message := buffer.get()) is not None:
        out.append(message)
    return out


def three_trades() -> dict[str, Any]:
    row = doc_row(TRADES_PUSH)
    return public_push(TRADES_PUSH, *({**row, "price": str(price)} for price in (1, 2, 3)))


def test_the_hub_splits_each_push_once_for_every_stream_and_handler() -> None:
    hub = make_hub()
    buffers = [hub.open_stream(plan_trades("BTCUSDT")) for _ in range(2)]
    handled: list[WebSocketMessage[Any]] = []
    hub.add_handler("trades.*", handled.append)
    session = hub.acquire("trades.cmt_btcusdt", T0)
    peer = connect(hub, session)
    push(hub, session, peer, three_trades())
    streamed = [drain(buffer) for buffer in buffers]
    assert [[m.data["price"] for m in got] for got in streamed] == [["1", "2", "3"]] * 2
    assert [m.index for m in handled] == [0, 1, 2]
    # Split once: every consumer holds the very same message objects.
    assert all(a is b for a, b in zip(streamed[0], handled, strict=True))
    assert all(a is b for a, b in zip(streamed[1], handled, strict=True))
    assert len({id(m.frame) for m in handled}) == 1


def test_only_the_first_record_after_a_gap_is_flagged() -> None:
    hub = make_hub()
    buffer = hub.open_stream(plan_trades("BTCUSDT"))
    session = hub.acquire("trades.cmt_btcusdt", T0)
    peer = connect(hub, session)
    hub.decided(session, Reconnect(0.0, 0, "test"))
    push(hub, session, peer, three_trades())
    push(hub, session, peer, three_trades())
    assert [m.gap for m in drain(buffer)] == [True, False, False, False, False, False]


def test_overflow_drops_whole_records_and_flags_the_oldest_kept() -> None:
    hub = make_hub(buffer_size=2)
    buffer = hub.open_stream(plan_trades("BTCUSDT"))
    session = hub.acquire("trades.cmt_btcusdt", T0)
    peer = connect(hub, session)
    push(hub, session, peer, three_trades())
    messages = drain(buffer)
    assert [(m.data["price"], m.gap) for m in messages] == [("2", True), ("3", False)]


def test_an_empty_push_yields_nothing_and_a_pending_gap_waits_for_a_record() -> None:
    hub = make_hub()
    buffer = hub.open_stream(plan_tickers(["BTCUSDT"]))
    session = hub.acquire("ticker.cmt_btcusdt", T0)
    peer = connect(hub, session)
    hub.decided(session, Reconnect(0.0, 0, "test"))
    push(hub, session, peer, public_push(TICKER_PUSH))
    assert drain(buffer) == []
    push(hub, session, peer, TICKER_PUSH)
    [message] = drain(buffer)
    assert message.gap


def test_an_unsplittable_push_is_logged_and_skipped() -> None:
    hub = make_hub()
    buffer = hub.open_stream(plan_tickers(["BTCUSDT"]))
    session = hub.acquire("ticker.cmt_btcusdt", T0)
    peer = connect(hub, session)
    push(hub, session, peer, public_push(TICKER_PUSH) | {"data": "nope"})
    push(hub, session, peer, TICKER_PUSH)
    assert [m.data["last"] for m in drain(buffer)] == ["102623.9"]
    assert hub.health.skipped == 1


def test_frame_handlers_see_each_whole_push_once() -> None:
    hub = make_hub()
    frames: list[PushFrame] = []
    hub.frame_handlers.append(("trades.*", frames.append))
    session = hub.acquire("trades.cmt_btcusdt", T0)
    peer = connect(hub, session)
    push(hub, session, peer, three_trades())
    push(hub, session, peer, public_push(TRADES_PUSH))  # no records: still a frame
    assert [len(f.frame["data"]) for f in frames] == [3, 0]


def test_private_streams_get_one_message_per_record() -> None:
    hub = make_hub()
    buffer = hub.open_stream(plan_private("orders"))
    session = hub.acquire("orders", T0)
    peer = connect(hub, session)
    row = doc_row(ORDERS_PUSH, "order")
    filled = {**row, "id": "2", "status": "FILLED", "cumFillSize": row["size"]}
    push(hub, session, peer, private_push(ORDERS_PUSH, "order", row, filled))
    assert [(m.data["order_id"], m.data["status"]) for m in drain(buffer)] == [
        (row["id"], "new"),
        ("2", "filled"),
    ]
