"""Tests for `weex_proto.messages`: the doc examples, every documented variant, and bad frames."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures_messages import (
    ACCOUNT_PUSH,
    ALL_PUSHES,
    DEPTH_PUSH,
    FILL_PUSH,
    KLINE_PUSH,
    ORDERS_PUSH,
    POSITIONS_PUSH,
    TICKER_PUSH,
    TRADES_PUSH,
)
from weex_proto import strategies
from weex_proto.errors import ProtocolError, WeexError
from weex_proto.messages import (
    Candle,
    Collateral,
    DepthUpdate,
    Fill,
    KlineUpdate,
    Order,
    PayloadError,
    Position,
    PriceLevel,
    PrivateUpdate,
    Ticker,
    Trade,
    parse_push,
)

T = TypeVar("T")
Path = tuple[str | int, ...]
DELETE = object()


def one(frame: dict[str, Any], kind: type[T]) -> T:
    """Parse a frame that must yield exactly one value of the given type."""
    (result,) = parse_push(frame)
    assert isinstance(result, kind)
    return result


def changed(frame: dict[str, Any], path: Path, value: object) -> dict[str, Any]:
    """A deep copy of `frame` with the item at `path` replaced (or removed, with DELETE)."""
    result = copy.deepcopy(frame)
    parent: Any = result
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


def private_record(frame: dict[str, Any]) -> Any:
    update = one(frame, PrivateUpdate)
    assert len(update.records) == 1
    return update.records[0]


# --- The documented examples parse to the documented values --------------------------------


def test_ticker_example() -> None:
    ticker = one(TICKER_PUSH, Ticker)
    assert ticker.symbol == "cmt_btcusdt"
    assert ticker.price_change == Decimal("-2055.6")
    assert ticker.price_change_percent == Decimal("-0.019637")
    assert ticker.trades == 28941
    assert str(ticker.size) == "176145.66489"
    assert ticker.value == Decimal("18115688543.1")
    assert ticker.high == Decimal("104692.2")
    assert ticker.low == Decimal("100709.6")
    assert ticker.last_price == Decimal("102623.9")
    assert ticker.mark_price == Decimal("102623.9")


def test_kline_example() -> None:
    update = one(KLINE_PUSH, KlineUpdate)
    assert update.channel == "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1"
    assert update.kind == "change"
    assert update.candles == (
        Candle(
            symbol="cmt_btcusdt",
            kline_time=1747125660000,
            open=Decimal("102760.6"),
            high=Decimal("102784.6"),
            low=Decimal("102760.6"),
            close=Decimal("102764.0"),
            size=Decimal("23.76600"),
            value=Decimal("2442678.713400"),
        ),
    )
    candle = update.candles[0]
    assert str(candle.close) == "102764.0"
    assert str(candle.size) == "23.76600"
    assert str(candle.value) == "2442678.713400"


def test_depth_example() -> None:
    depth = one(DEPTH_PUSH, DepthUpdate)
    assert depth.symbol == "cmt_btcusdt"
    assert depth.level == 15
    assert depth.depth_type == "CHANGED"
    assert depth.start_version == 3644174246
    assert depth.end_version == 3644174270
    assert depth.asks == (
        PriceLevel(Decimal("103436.1"), Decimal("0.91500")),
        PriceLevel(Decimal("103436.3"), Decimal("1.95800")),
        PriceLevel(Decimal("103436.5"), Decimal("0")),
        PriceLevel(Decimal("103436.6"), Decimal("1.08300")),
    )
    assert depth.bids == (
        PriceLevel(Decimal("103435.9"), Decimal("2.40500")),
        PriceLevel(Decimal("103435.7"), Decimal("0")),
        PriceLevel(Decimal("103435.6"), Decimal("0.32700")),
    )
    assert [str(level.size) for level in depth.asks] == ["0.91500", "1.95800", "0", "1.08300"]


def test_trades_example_takes_symbol_from_channel() -> None:
    trade = one(TRADES_PUSH, Trade)
    assert trade.symbol == "cmt_btcusdt"
    assert trade.time == 1747131727502
    assert trade.price == Decimal("103337.5")
    assert str(trade.size) == "0.01600"
    assert str(trade.value) == "1653.400000"
    assert trade.buyer_maker is False


def test_account_example() -> None:
    update = one(ACCOUNT_PUSH, PrivateUpdate)
    assert (update.channel, update.msg_event) == ("account", "PositionFundingSettle")
    assert (update.version, update.time) == (46571, 1747188961302)
    (collateral,) = update.records
    assert isinstance(collateral, Collateral)
    assert collateral.coin_id == "USDT"
    assert collateral.margin_mode == "SHARED"
    assert collateral.cross_contract_id == "0"
    assert collateral.isolated_position_id == "0"
    assert collateral.amount == Decimal("6625267.708162")
    assert str(collateral.pending_deposit_amount) == "0.000000"
    assert str(collateral.pending_withdraw_amount) == "0.000000"
    assert collateral.pending_transfer_in_amount == 0
    assert collateral.pending_transfer_out_amount == 0
    assert collateral.created_time == 1728493664997
    assert collateral.updated_time == 1747188961302
    assert collateral.liquidating is False
    # Fields without a typed attribute are still there, untouched.
    assert collateral.raw["cumPositionFundingAmount"] == "-5778.744009"
    assert collateral.raw["legacyAmount"] == "6628108.535375"


def test_positions_example() -> None:
    update = one(POSITIONS_PUSH, PrivateUpdate)
    assert (update.channel, update.msg_event, update.version) == (
        "positions",
        "PositionFundingSettle",
        46571,
    )
    (position,) = update.records
    assert isinstance(position, Position)
    assert position.id == "615193369903104410"
    assert position.contract_id == "cmt_btcusdt"
    assert position.side == "LONG"
    assert position.separated_mode == "COMBINED"
    assert position.leverage == 20
    assert str(position.size) == "0.01000"
    assert position.open_value == Decimal("992.405443")
    assert position.open_fee == Decimal("0.595443")
    assert position.funding_fee == Decimal("157.475456")
    assert position.isolated_margin == 0
    assert position.created_time == 1746673529125
    assert position.auto_append_isolated_margin is False
    # 992.405443 / 0.01 worked out by hand.
    assert position.entry_price == Decimal("99240.5443")
    assert position.raw["updatedMatchSequenceId"] == "3656434385"


def test_orders_example() -> None:
    update = one(ORDERS_PUSH, PrivateUpdate)
    assert (update.channel, update.msg_event) == ("orders", "OrderUpdate")
    assert (update.version, update.time) == (46654, 1747203188148)
    (order,) = update.records
    assert isinstance(order, Order)
    assert order.id == "617414920861909658"
    assert order.client_order_id == (
        "1747203186927fpiZrpAEkOlH3ygdwfJpowP0HeXVer7JFxxmIohyCMPXqKCz74s"
    )
    assert order.position_side == "LONG"
    assert order.order_side == "BUY"
    assert order.order_type == "MARKET"
    assert order.time_in_force == "IMMEDIATE_OR_CANCEL"
    assert order.status == "PENDING"
    assert order.cancel_reason == "UNKNOWN_ORDER_CANCEL_REASON"
    assert str(order.price) == "0.0"
    assert str(order.size) == "0.10000"
    assert order.reduce_only is False
    assert order.trigger_price == 0
    assert order.trigger_price_type == "UNKNOWN_PRICE_TYPE"
    assert order.leverage == 20
    assert order.cum_fill_size == 0
    assert order.created_time == order.updated_time == 1747203188148
    assert (order.position_tpsl, order.set_open_tp, order.set_open_sl) == (False, False, False)
    assert order.raw["takerFeeRate"] == "0.0006"


def test_fill_example() -> None:
    update = one(FILL_PUSH, PrivateUpdate)
    assert (update.channel, update.msg_event, update.version) == ("fill", "OrderUpdate", 46655)
    (fill,) = update.records
    assert isinstance(fill, Fill)
    assert fill.id == "617414920887075482"
    assert fill.order_id == "617414920861909658"
    assert fill.direction == "TAKER"
    assert str(fill.fill_size) == "0.10000"
    assert str(fill.fill_value) == "10381.270000"
    assert fill.fill_fee == Decimal("6.228762")
    assert fill.liquidate_fee == fill.realize_pnl == 0
    assert fill.created_time == 1747203188154
    # 10381.27 / 0.1 worked out by hand.
    assert fill.price == Decimal("103812.7")


def test_every_row_becomes_one_value_in_order() -> None:
    frame = copy.deepcopy(TRADES_PUSH)
    second = dict(frame["data"][0], price="103338.0", buyerMaker=True)
    frame["data"].append(second)
    first, then = parse_push(frame)
    assert isinstance(first, Trade)
    assert isinstance(then, Trade)
    assert (first.price, then.price) == (Decimal("103337.5"), Decimal("103338.0"))
    assert then.buyer_maker is True
    assert parse_push(changed(TICKER_PUSH, ("data",), [])) == ()


def test_event_key_may_be_absent() -> None:
    assert parse_push(changed(TICKER_PUSH, ("event",), DELETE)) == parse_push(TICKER_PUSH)


# --- Both spellings where the doc table and example disagree -------------------------------


@pytest.mark.parametrize(
    ("frame", "record_path", "example_key", "table_key", "attribute"),
    [
        (
            ACCOUNT_PUSH,
            ("msg", "data", "collateral", 0),
            "liquidating",
            "isLiquidating",
            "liquidating",
        ),
        (
            POSITIONS_PUSH,
            ("msg", "data", "position", 0),
            "autoAppendIsolatedMargin",
            "isAutoAppendIsolatedMargin",
            "auto_append_isolated_margin",
        ),
        (
            ORDERS_PUSH,
            ("msg", "data", "order", 0),
            "positionTpsl",
            "isPositionTpsl",
            "position_tpsl",
        ),
        (ORDERS_PUSH, ("msg", "data", "order", 0), "setOpenTp", "isSetOpenTp", "set_open_tp"),
        (ORDERS_PUSH, ("msg", "data", "order", 0), "setOpenSl", "isSetOpenSl", "set_open_sl"),
    ],
)
def test_table_spelling_of_booleans(
    frame: dict[str, Any], record_path: Path, example_key: str, table_key: str, attribute: str
) -> None:
    # The examples all say False; flip to True under the table's name so the read is visible.
    renamed = changed(frame, (*record_path, example_key), DELETE)
    renamed = changed(renamed, (*record_path, table_key), True)
    assert getattr(private_record(renamed), attribute) is True
    assert getattr(private_record(frame), attribute) is False


# --- Strings or numbers, booleans or "true"/"false" ----------------------------------------


def test_ticker_numbers_instead_of_strings() -> None:
    numeric = {
        "symbol": "cmt_btcusdt",
        "priceChange": -2055.6,
        "priceChangePercent": -0.019637,
        "trades": 28941,
        "size": 176145.66489,
        "value": 18115688543.1,
        "high": 104692.2,
        "low": 100709.6,
        "lastPrice": 102623.9,
        "markPrice": 102623,
    }
    ticker = one(changed(TICKER_PUSH, ("data", 0), numeric), Ticker)
    assert ticker.last_price == Decimal("102623.9")  # not the binary float's long expansion
    assert ticker.price_change_percent == Decimal("-0.019637")
    assert ticker.value == Decimal("18115688543.1")
    assert ticker.mark_price == Decimal("102623")
    assert ticker.trades == 28941


def test_integers_as_numbers_or_strings() -> None:
    depth = one(changed(DEPTH_PUSH, ("data", 0, "level"), "15"), DepthUpdate)
    assert depth.level == 15
    depth = one(changed(DEPTH_PUSH, ("data", 0, "startVersion"), 3644174246), DepthUpdate)
    assert depth.start_version == 3644174246
    kline = one(changed(KLINE_PUSH, ("data", 0, "klineTime"), 1747125660000), KlineUpdate)
    assert kline.candles[0].kline_time == 1747125660000
    update = one(changed(ORDERS_PUSH, ("msg", "version"), "46654"), PrivateUpdate)
    assert update.version == 46654
    update = one(changed(ORDERS_PUSH, ("msg", "time"), "1747203188148"), PrivateUpdate)
    assert update.time == 1747203188148
    trade = one(changed(TRADES_PUSH, ("data", 0, "time"), 1747131727502), Trade)
    assert trade.time == 1747131727502


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False)])
def test_booleans_as_strings(text: str, expected: bool) -> None:
    trade = one(changed(TRADES_PUSH, ("data", 0, "buyerMaker"), text), Trade)
    assert trade.buyer_maker is expected
    order = private_record(changed(ORDERS_PUSH, ("msg", "data", "order", 0, "reduceOnly"), text))
    assert order.reduce_only is expected


def test_ids_as_numbers_become_strings() -> None:
    record = ("msg", "data", "orderFillTransaction", 0)
    frame = changed(FILL_PUSH, (*record, "id"), 617414920887075482)
    frame = changed(frame, (*record, "orderId"), 617414920861909658)
    fill = private_record(frame)
    assert (fill.id, fill.order_id) == ("617414920887075482", "617414920861909658")


# --- Kline rows as arrays ------------------------------------------------------------------


def test_kline_rows_as_arrays() -> None:
    rows = [
        ["1747125600000", "102750.0", "102790.0", "102740.5", "102760.6", "40.12000"],
        [1747125660000, 102760.6, "102784.6", "102760.6", "102764.0", "23.76600", "extra", 7],
    ]
    frame = changed(changed(KLINE_PUSH, ("data",), rows), ("type",), "snapshot")
    update = one(frame, KlineUpdate)
    assert update.kind == "snapshot"
    first, second = update.candles
    assert first == Candle(
        symbol="cmt_btcusdt",  # from the channel name: the array has no symbol
        kline_time=1747125600000,
        open=Decimal("102750.0"),
        high=Decimal("102790.0"),
        low=Decimal("102740.5"),
        close=Decimal("102760.6"),
        size=Decimal("40.12000"),
        value=None,
    )
    assert str(first.size) == "40.12000"
    assert second.kline_time == 1747125660000
    assert second.open == Decimal("102760.6")
    assert second.close == Decimal("102764.0")


def test_kline_mixes_object_and_array_rows() -> None:
    frame = copy.deepcopy(KLINE_PUSH)
    frame["data"].append([1747125720000, "1", "2", "0.5", "1.5", "3"])
    update = one(frame, KlineUpdate)
    assert [c.kline_time for c in update.candles] == [1747125660000, 1747125720000]
    assert [c.value for c in update.candles] == [Decimal("2442678.713400"), None]


def test_depth_levels_as_pairs() -> None:
    frame = changed(DEPTH_PUSH, ("data", 0, "asks"), [["103436.1", "0.91500"], [103437, 0]])
    depth = one(frame, DepthUpdate)
    assert depth.asks == (
        PriceLevel(Decimal("103436.1"), Decimal("0.91500")),
        PriceLevel(Decimal("103437"), Decimal("0")),
    )


# --- Derived values and record hygiene -----------------------------------------------------


def test_flat_position_has_no_entry_price() -> None:
    frame = changed(POSITIONS_PUSH, ("msg", "data", "position", 0, "size"), "0")
    assert private_record(frame).entry_price is None


def test_zero_size_fill_has_no_price() -> None:
    record = ("msg", "data", "orderFillTransaction", 0)
    frame = changed(changed(FILL_PUSH, (*record, "fillSize"), "0"), (*record, "fillValue"), "0")
    assert private_record(frame).price is None


def test_raw_is_kept_read_only_and_out_of_eq_and_repr() -> None:
    order = private_record(ORDERS_PUSH)
    assert order.raw == ORDERS_PUSH["msg"]["data"]["order"][0]
    assert "raw" not in repr(order)
    assert "takerFeeRate" not in repr(order)
    with pytest.raises(TypeError):
        order.raw["status"] = "FILLED"
    assert order == attrs.evolve(order, raw={})
    assert hash(order) == hash(attrs.evolve(order, raw={}))


def test_values_are_frozen() -> None:
    trade = one(TRADES_PUSH, Trade)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        trade.price = Decimal(1)  # type: ignore[misc]


# --- Malformed frames ----------------------------------------------------------------------

ORDER = ("msg", "data", "order", 0)


def bad(frame: dict[str, Any], path: Path, value: object, *mentions: str) -> Any:
    huge = isinstance(value, int) and value.bit_length() > 128  # repr() would refuse it
    shown = "DELETE" if value is DELETE else "huge-int" if huge else repr(value)
    name = f"{frame['channel']}:{'.'.join(map(str, path))}={shown}"
    return pytest.param(lambda: changed(frame, path, value), mentions, id=name)


MALFORMED = [
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), "abc", "ticker.cmt_btcusdt", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), "NaN", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), "Infinity", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), "-inf", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), math.nan, "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), math.inf, "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), True, "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), None, "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), "", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), " 1.5", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), "1_000", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), "\u0661\u0662", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), "1e999999999", "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "lastPrice"), ["1"], "lastPrice"),
    bad(TICKER_PUSH, ("data", 0, "markPrice"), DELETE, "markPrice", "missing"),
    bad(TICKER_PUSH, ("data", 0, "trades"), "1.5", "trades"),
    bad(TICKER_PUSH, ("data", 0, "symbol"), 5, "symbol"),
    bad(TICKER_PUSH, ("data", 0), "row", "data[0]"),
    bad(TICKER_PUSH, ("data",), {"symbol": "x"}, "data"),
    bad(TICKER_PUSH, ("data",), DELETE, "data"),
    bad(KLINE_PUSH, ("type",), DELETE, "type"),
    bad(KLINE_PUSH, ("type",), "full", "type"),
    bad(KLINE_PUSH, ("data", 0, "klineTime"), "1747125660000.5", "klineTime"),
    bad(KLINE_PUSH, ("data", 0, "close"), DELETE, "close"),
    bad(KLINE_PUSH, ("data", 0), [1747125660000, "1", "2", "3", "4"], "data[0]"),
    bad(KLINE_PUSH, ("data", 0), [1747125660000, "1", "2", "x", "4", "5"], "data[0][3]"),
    bad(KLINE_PUSH, ("data", 0), ["soon", "1", "2", "3", "4", "5"], "data[0][0]"),
    bad(DEPTH_PUSH, ("data", 0, "depthType"), "DIFF", "depthType"),
    bad(DEPTH_PUSH, ("data", 0, "level"), True, "level"),
    bad(DEPTH_PUSH, ("data", 0, "level"), 15.0, "level"),
    bad(DEPTH_PUSH, ("data", 0, "startVersion"), "abc", "startVersion"),
    bad(DEPTH_PUSH, ("data", 0, "endVersion"), "9" * 40, "endVersion"),
    bad(DEPTH_PUSH, ("data", 0, "asks"), "none", "asks"),
    bad(DEPTH_PUSH, ("data", 0, "asks", 1, "size"), DELETE, "asks[1].size"),
    bad(DEPTH_PUSH, ("data", 0, "bids", 2), ["103435.6"], "bids[2]"),
    bad(DEPTH_PUSH, ("data", 0, "bids", 2), ["103435.6", "big"], "bids[2]"),
    bad(DEPTH_PUSH, ("data", 0, "bids", 2), ["-103435.6", "1"], "bids[2]", "price > 0"),
    bad(DEPTH_PUSH, ("data", 0, "bids", 0, "price"), "0", "bids[0]", "price > 0"),
    bad(DEPTH_PUSH, ("data", 0, "bids", 0, "price"), "-103435.9", "bids[0]", "price > 0"),
    bad(DEPTH_PUSH, ("data", 0, "asks", 0, "size"), "-0.5", "asks[0]", "size >= 0"),
    bad(DEPTH_PUSH, ("data", 0, "asks", 0, "size"), -1, "asks[0]", "size >= 0"),
    bad(DEPTH_PUSH, ("data", 0, "asks", 0, "size"), "NaN", "asks[0].size"),
    bad(DEPTH_PUSH, ("data", 0, "asks", 0, "price"), math.inf, "asks[0].price"),
    bad(DEPTH_PUSH, ("data", 0, "startVersion"), "3644174271", "startVersion", "endVersion"),
    bad(TRADES_PUSH, ("data", 0, "buyerMaker"), "yes", "buyerMaker"),
    bad(TRADES_PUSH, ("data", 0, "buyerMaker"), 0, "buyerMaker"),
    bad(TRADES_PUSH, ("data", 0, "time"), 1.5, "time"),
    bad(TRADES_PUSH, ("data", 0, "buyerMaker"), 10**5000, "buyerMaker"),
    bad(TRADES_PUSH, ("channel",), "trades.", "channel"),
    bad(ORDERS_PUSH, ("msg",), DELETE, "orders", "msg"),
    bad(ORDERS_PUSH, ("msg",), [], "msg"),
    bad(ORDERS_PUSH, ("msg", "version"), True, "msg.version"),
    bad(ORDERS_PUSH, ("msg", "time"), "later", "msg.time"),
    bad(ORDERS_PUSH, ("msg", "msgEvent"), DELETE, "msg.msgEvent"),
    bad(ORDERS_PUSH, ("msg", "data"), DELETE, "msg.data"),
    bad(ORDERS_PUSH, ("msg", "data", "order"), DELETE, "msg.data.order"),
    bad(ORDERS_PUSH, ("msg", "data", "order", 0), 7, "msg.data.order[0]"),
    bad(ORDERS_PUSH, (*ORDER, "price"), None, "msg.data.order[0].price"),
    bad(ORDERS_PUSH, (*ORDER, "id"), 1.5, "msg.data.order[0].id"),
    bad(ORDERS_PUSH, (*ORDER, "id"), False, "msg.data.order[0].id"),
    bad(ORDERS_PUSH, (*ORDER, "id"), 10**5000, "msg.data.order[0].id"),
    bad(ORDERS_PUSH, (*ORDER, "reduceOnly"), "False", "reduceOnly"),
    bad(ORDERS_PUSH, (*ORDER, "positionTpsl"), DELETE, "positionTpsl"),
    bad(ACCOUNT_PUSH, ("msg", "data", "collateral", 0, "liquidating"), DELETE, "liquidating"),
    bad(ACCOUNT_PUSH, ("msg", "data", "collateral", 0, "amount"), "NaN", "account", "amount"),
    bad(POSITIONS_PUSH, ("msg", "data", "position", 0, "size"), "Infinity", "positions", "size"),
    bad(FILL_PUSH, ("msg", "data", "orderFillTransaction", 0, "fillSize"), 0.1j, "fillSize"),
    bad(FILL_PUSH, ("msg", "data"), {"position": []}, "msg.data.orderFillTransaction"),
    # Frame-level problems.
    bad(TICKER_PUSH, ("channel",), DELETE, "channel"),
    bad(TICKER_PUSH, ("channel",), 12, "channel"),
    bad(TICKER_PUSH, ("event",), "subscribed", "event"),
    bad(TICKER_PUSH, ("channel",), "tickers.cmt_btcusdt", "unknown channel", "tickers"),
    bad(TICKER_PUSH, ("channel",), "ticker", "unknown channel"),
    bad(POSITIONS_PUSH, ("channel",), "position", "unknown channel"),  # ANCHOR-ws's wrong name
    bad(FILL_PUSH, ("channel",), "trade", "unknown channel"),  # ANCHOR-ws's wrong name
]


def test_object_kline_rows_do_not_need_a_well_formed_channel() -> None:
    # Array rows take their symbol from the channel, so only they need all four parts of it.
    frame = changed(KLINE_PUSH, ("channel",), "kline.cmt_btcusdt")
    assert one(frame, KlineUpdate).candles[0].symbol == "cmt_btcusdt"
    with pytest.raises(PayloadError, match="channel"):
        parse_push(changed(frame, ("data", 0), [1, "1", "2", "0.5", "1.5", "3"]))


@pytest.mark.parametrize(("make_frame", "mentions"), MALFORMED)
def test_malformed_frames_raise_payload_error(
    make_frame: Callable[[], dict[str, Any]], mentions: tuple[str, ...]
) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_push(make_frame())
    message = str(caught.value)
    for mention in mentions:
        assert mention in message
    # The message names a field; it never dumps the frame.
    assert len(message) < 250
    for unrelated in ("176145.66489", "617414920861909658", "6625267.708162", "23.76600"):
        assert unrelated not in message


@pytest.mark.parametrize("frame", [None, [], "payload", 3, [TICKER_PUSH]])
def test_non_object_frames_raise_payload_error(frame: Any) -> None:
    with pytest.raises(PayloadError):
        parse_push(frame)


def test_payload_error_is_a_protocol_error() -> None:
    assert issubclass(PayloadError, ProtocolError)
    assert issubclass(PayloadError, WeexError)


# --- Properties ----------------------------------------------------------------------------

# (Ints past Python's str() digit limit are covered by MALFORMED: hypothesis cannot repr them.)
json_values = strategies.json_values(max_leaves=20)
CHANNELS = [frame["channel"] for frame in ALL_PUSHES.values()]


def parses_or_rejects(frame: Any) -> None:
    try:
        result = parse_push(frame)
    except PayloadError:
        return
    assert isinstance(result, tuple)


@given(json_values)
def test_any_json_value_parses_or_raises_payload_error(frame: Any) -> None:
    parses_or_rejects(frame)


@given(strategies.hostile_frames())
def test_hostile_frames_parse_or_raise_payload_error(text: str) -> None:
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return  # not JSON: the connection skips it before parse_push
    parses_or_rejects(frame)


@given(
    st.fixed_dictionaries(
        {"event": st.just("payload"), "channel": st.sampled_from(CHANNELS)},
        optional={"type": json_values, "data": json_values, "msg": json_values},
    )
)
def test_known_channels_with_random_bodies_parse_or_raise_payload_error(
    frame: dict[str, Any],
) -> None:
    parses_or_rejects(frame)


def leaf_paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path into a JSON value, containers included."""
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*prefix, index))


DOC_PATHS = [(name, path) for name, frame in ALL_PUSHES.items() for path in leaf_paths(frame)]


@settings(max_examples=300)
@given(st.sampled_from(DOC_PATHS), json_values | st.just(DELETE))
def test_doc_examples_with_one_part_broken_parse_or_raise_payload_error(
    where: tuple[str, Path], replacement: object
) -> None:
    name, path = where
    parses_or_rejects(changed(ALL_PUSHES[name], path, replacement))


@given(st.from_regex(r"-?(0|[1-9][0-9]{0,17})\.[0-9]{1,12}", fullmatch=True))
def test_decimal_strings_keep_every_digit(text: str) -> None:
    trade = one(changed(TRADES_PUSH, ("data", 0, "price"), text), Trade)
    assert format(trade.price, "f") == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_json_floats_become_their_shortest_decimal(number: float) -> None:
    trade = one(changed(TRADES_PUSH, ("data", 0, "size"), number), Trade)
    assert float(trade.size) == number
    assert len(trade.size.as_tuple().digits) <= 17


@given(st.integers(min_value=0, max_value=10**19))
def test_integer_strings_and_numbers_agree(number: int) -> None:
    from_number = one(changed(TRADES_PUSH, ("data", 0, "time"), number), Trade)
    from_text = one(changed(TRADES_PUSH, ("data", 0, "time"), str(number)), Trade)
    assert from_number.time == from_text.time == number
