"""Records as JSON: `canonical_json` gives the same bytes with or without orjson (two relays
derive the same ids from the same push whatever is installed), and `dumps_compact` writes
what a push holds as it is and anything else as `to_jsonable` says."""

from __future__ import annotations

import enum
import json
import math
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weex_proto import jsonable
from weex_proto.jsonable import canonical_json, dumps_compact, to_jsonable
from weex_proto.records import TickerData

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def standard_canonical(value: Any) -> bytes:
    """The definition: sorted keys, no spaces, UTF-8, written by the standard library."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture
def without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonable, "_sorted_fast", None)


@given(json_values)
def test_canonical_json_is_the_standard_librarys_sorted_compact_form(value: Any) -> None:
    assert canonical_json(value) == standard_canonical(value)


def test_canonical_json_without_orjson_is_the_same(without_orjson: None) -> None:
    for value in ({"b": 1, "a": ["é", 1.5, None, 2**65]}, {"x": "\u2028\n\x01"}, [2.5e-05, -0.0]):
        assert canonical_json(value) == standard_canonical(value)


def test_canonical_json_ignores_key_order_and_uses_orjson_when_it_can() -> None:
    orjson = pytest.importorskip("orjson")
    one = {"data": [{"lastPrice": "1.5", "ts": 17}], "channel": "ticker.cmt_btcusdt"}
    other = {"channel": "ticker.cmt_btcusdt", "data": [{"ts": 17, "lastPrice": "1.5"}]}
    assert canonical_json(one) == canonical_json(other) == standard_canonical(one)
    assert canonical_json(one) == orjson.dumps(one, option=orjson.OPT_SORT_KEYS)
    # A float: the two encoders write 2.5e-05 differently; the standard form is the one given.
    assert orjson.dumps(2.5e-05) != json.dumps(2.5e-05).encode()
    assert canonical_json({"x": 2.5e-05}) == standard_canonical({"x": 2.5e-05})
    assert canonical_json([2.5e-05]) == b"[2.5e-05]" and canonical_json(2.5e-05) == b"2.5e-05"


@pytest.mark.parametrize(
    "value",
    [
        1e16, -1e16, 2.5e-05, -2.5e-05, float("inf"), [1e16], [0, -1e16], {"a": 1e16},
        {"a": [1, {"b": -2.5e-05}]}, {"a": "x", "b": 1e16}, {"a": float("-inf")}, [None],
        {"a": None},
    ],
)  # fmt: skip
def test_every_float_and_null_goes_to_the_standard_encoder(value: Any) -> None:
    """Wherever a float sits (a bare value, first or later in a list, a value of an object),
    the standard library writes it: orjson writes these differently (1e16, 2.5e-05, an
    infinity as null)."""
    assert canonical_json(value) == standard_canonical(value)


class Side(enum.Enum):
    BUY = "buy"


@attrs.frozen
class Fill:
    price: Decimal
    side: Side
    raw: dict[str, Any]


def test_dumps_compact_writes_plain_values_as_they_are_and_the_rest_through_to_jsonable() -> None:
    row = {"lastPrice": "1.5", "size": "2", "priceChangePercent": "0.01"}
    value = {
        "plain": {"a": [1, "é", None, True]},
        "decimal": Decimal("0.10"),
        "record": Fill(Decimal("2.50"), Side.BUY, {"dropped": True}),
        "view": TickerData("ticker.cmt_btcusdt", row),
    }
    written = json.loads(dumps_compact(value))
    assert written == to_jsonable(value)
    assert written["decimal"] == "0.10" and written["record"] == {"price": "2.50", "side": "buy"}
    assert written["view"]["last"] == "1.5" and written["view"]["change"] == "1"
    assert b" " not in dumps_compact({"a": [1, 2]})


def test_dumps_compact_never_writes_invalid_json() -> None:
    for value in ({"x": math.nan}, {1: "key not a string"}, {"x": [math.inf]}):
        text = dumps_compact(value)
        json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} written"))
