"""`.data` on the hot channels is a `RowView`: WEEX's row read through, the documented names
worked out only when asked for. It must behave as a read-only mapping holding exactly what a
copy of the row plus the documented names would hold (the reference model below, written
from the README's table, not from the code), for any row a server could send."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fixtures_messages import DEPTH_PUSH, TICKER_PUSH, TRADES_PUSH
from weex_proto.events import PushFrame
from weex_proto.records import DepthData, RecordSplitter, RowView, TickerData, TradeData

T0 = 1_700_000_000.0
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.sampled_from(["1.5", "-0.25"])
)
WIRE_KEYS = ["lastPrice", "size", "markPrice", "priceChangePercent", "buyerMaker", "symbol"]
DOCUMENTED_KEYS = ["last", "volume", "change", "side"]
wire_keys = st.sampled_from([*WIRE_KEYS, *DOCUMENTED_KEYS, "price", "x"])
rows = st.dictionaries(st.one_of(wire_keys, st.text(max_size=6)), json_scalars, max_size=8)


def percent(value: Any) -> str | None:
    """The README: `change` is `priceChangePercent` (a fraction) as a percentage."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        number = Decimal(value)
    except ArithmeticError:
        return None
    if not number.is_finite():
        return None
    text = format(number * 100, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def ticker_model(row: dict[str, Any]) -> dict[str, Any]:
    model = dict(row)
    for name, wire in (("last", "lastPrice"), ("volume", "size"), ("mark", "markPrice")):
        if wire in row:
            model[name] = row[wire]
    change = percent(row.get("priceChangePercent"))
    if change is not None:
        model["change"] = change
    return model


def taker_side(value: Any) -> str | None:
    """The protocol reference: `buyerMaker` is a JSON boolean (the doc tables say String, so
    "true"/"false" are read too). Nothing else is guessed at: 0, 1 or "True" leave no side."""
    if value is True or value == "true":
        return "sell"
    if value is False or value == "false":
        return "buy"
    return None


def trade_model(row: dict[str, Any], symbol: str) -> dict[str, Any]:
    model = {**row, "symbol": symbol}
    side = taker_side(row.get("buyerMaker"))
    if side is not None:
        model["side"] = side
    return model


def split_one(push: dict[str, Any]) -> Any:
    [message] = RecordSplitter().split(PushFrame(push["channel"], push, T0))
    return message


def check_mapping(view: Mapping[str, Any], model: dict[str, Any]) -> None:
    assert dict(view) == model
    if isinstance(view, RowView):  # the one-pass copy: the same items, in the same order
        assert list(view.as_dict().items()) == list(dict(view).items())
    assert view == model
    assert len(view) == len(model)
    assert list(view) == list(dict.fromkeys(view))  # every key once
    for key, value in model.items():
        assert key in view
        assert view[key] == value
        assert view.get(key, "default") == value
    for absent in ("nothing here", "change", "side", "last", "volume"):
        if absent not in model:
            assert absent not in view
            assert view.get(absent, "default") == "default"
            with pytest.raises(KeyError):
                view[absent]


@given(rows)
def test_ticker_view_holds_the_row_and_the_documented_names(row: dict[str, Any]) -> None:
    message = split_one({**copy.deepcopy(TICKER_PUSH), "data": [row]})
    assert isinstance(message.data, TickerData)
    check_mapping(message.data, ticker_model(row))


@given(rows)
@example({"buyerMaker": 0})  # a number is not a flag
@example({"buyerMaker": "1"})
@example({"buyerMaker": "false"})
def test_trade_view_holds_the_row_and_the_documented_names(row: dict[str, Any]) -> None:
    message = split_one({**copy.deepcopy(TRADES_PUSH), "data": [row]})
    assert isinstance(message.data, TradeData)
    symbol = TRADES_PUSH["channel"].split(".", 1)[1]
    check_mapping(message.data, trade_model(row, symbol))


@given(rows)
def test_depth_view_is_the_row_as_it_is(row: dict[str, Any]) -> None:
    message = split_one({**copy.deepcopy(DEPTH_PUSH), "data": [row]})
    assert isinstance(message.data, DepthData)
    check_mapping(message.data, dict(row))


def test_views_are_read_only_and_the_frame_is_left_as_it_came() -> None:
    push = copy.deepcopy(TICKER_PUSH)
    message = split_one(push)
    data: Any = message.data
    with pytest.raises(TypeError):
        data["last"] = "1"
    with pytest.raises(AttributeError):
        data.update({"last": "1"})
    assert "last" not in message.frame["data"][0]  # the documented names live in the view
    assert message.frame == TICKER_PUSH


def test_a_message_built_by_hand_has_the_same_view_as_a_split_one() -> None:
    split = split_one(copy.deepcopy(TICKER_PUSH))
    by_hand: Any = type(split)(
        split.channel, split.frame, split.timestamp, split.raw, False, split.source, split.kind
    )
    assert type(by_hand.data) is type(split.data)
    assert by_hand.data == split.data
    assert repr(split.data).startswith("TickerData({") and "'last'" in repr(split.data)
