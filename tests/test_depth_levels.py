"""`parse_depth_levels` (the book's fast decode) against `parse_push`: same values, same errors.

The fast path reads only the documented shape and hands everything else to `parse_push`, so on
any input the two must agree: the same levels in the same order, or the same `PayloadError`.
Each frame test runs on WEEX's v2 and v3: on v3 the decoder gets what a v3 connection makes of
the v3 push (its `Dialect.push`: pair levels become objects, versions stay numbers), so v3's
values go through the fast path as they arrive.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.adapters import BOTH_DIALECTS
from weex_proto.dialects import dialect_named
from weex_proto.messages import (
    DepthUpdate,
    PayloadError,
    _LevelDecimals,
    parse_depth_levels,
    parse_push,
)
from weex_proto.orderbook import OrderBook
from weex_proto.strategies import depth_sequences, depth_snapshots, v3_frame

DIALECTS = pytest.mark.parametrize("api", BOTH_DIALECTS)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def outcome_push(frame: Any) -> Any:
    try:
        updates = parse_push(frame)
    except PayloadError as exc:
        return ("error", str(exc))
    return [
        (
            u.symbol,
            u.depth_type,
            u.start_version,
            u.end_version,
            [(level.price, level.size) for level in u.bids],
            [(level.price, level.size) for level in u.asks],
        )
        for u in updates
        if isinstance(u, DepthUpdate)
    ]


def outcome_fast(frame: Any) -> Any:
    try:
        return [tuple(levels) for levels in parse_depth_levels(frame)]
    except PayloadError as exc:
        return ("error", str(exc))


def received(frame: Any, api: str) -> Any:
    """What the decoder gets for `frame`, a push in `api`'s words: the frame itself on v2; on v3
    the v2 frame a connection makes of it, or (a str) why the connection skips it."""
    convert = dialect_named(api).push
    return frame if convert is None or type(frame) is not dict else convert(frame)


def in_dialect(frame: dict[str, Any], api: str) -> dict[str, Any]:
    """A valid v2 depth push as the decoder gets it on `api` (on v3: from the v3 push of the
    same values)."""
    decoded = received(frame if api == "v2" else v3_frame(frame), api)
    assert isinstance(decoded, dict), decoded
    return decoded


@DIALECTS
@settings(max_examples=150, deadline=None)
@given(depth_snapshots())
def test_valid_snapshots_decode_the_same(api: str, snapshot: dict[str, Any]) -> None:
    frame = in_dialect(snapshot, api)
    assert outcome_fast(frame) == outcome_push(frame)
    assert outcome_fast(frame) != []


MUTATIONS: list[tuple[str, Any]] = [
    ("depthType", "PARTIAL"),
    ("depthType", ["SNAPSHOT"]),
    ("startVersion", "12x"),
    ("startVersion", 10**12),  # after endVersion
    ("level", "fifteen"),
    ("symbol", 7),
    ("bids", "none"),
    ("asks", [["100.5", "1"]]),  # pairs are accepted by parse_push: the fallback reads them
    ("asks", [{"price": "-1", "size": "1"}]),
    ("asks", [{"price": "1", "size": "-0.5"}]),
    ("bids", [{"price": "NaN", "size": "1"}]),
    ("bids", [{"price": "1e5", "size": 2}]),  # a number size: parse_push takes it
    ("bids", [{"price": "1", "size": True}]),
    ("bids", ["level"]),
]


V2_ROW: dict[str, Any] = {
    "startVersion": "5",
    "endVersion": "6",
    "level": 15,
    "depthType": "CHANGED",
    "symbol": "cmt_btcusdt",
    "asks": [{"price": "101.5", "size": "2"}],
    "bids": [{"price": "100.5", "size": "0"}],
}
V3_DEPTH: dict[str, Any] = {
    "e": "depth",
    "E": 1775121040002,
    "s": "BTCUSDT",
    "U": 5,
    "u": 6,
    "l": 15,
    "d": "CHANGED",
    "a": [["101.5", "2"]],
    "b": [["100.5", "0"]],
}
"""The same update as v3 writes it (docs/protocol-v3.md §5.2)."""
V3_KEYS = {
    "startVersion": "U",
    "endVersion": "u",
    "level": "l",
    "depthType": "d",
    "symbol": "s",
    "asks": "a",
    "bids": "b",
}


def v3_levels(value: Any) -> Any:
    """v2 `{price, size}` levels as v3's `[price, size]` pairs; anything else as it is."""
    if not isinstance(value, list):
        return value
    return [
        [entry["price"], entry["size"]] if isinstance(entry, dict) and len(entry) == 2 else entry
        for entry in value
    ]


def with_row_field(api: str, key: str, value: Any) -> dict[str, Any]:
    """The update above with its row's `key` (a v2 name) set to `value`, in `api`'s words."""
    if api == "v2":
        row = {**copy.deepcopy(V2_ROW), key: value}
        return {"event": "payload", "channel": "depth.cmt_btcusdt.15", "data": [row]}
    v3_key = V3_KEYS[key]
    return {**copy.deepcopy(V3_DEPTH), v3_key: v3_levels(value) if v3_key in ("a", "b") else value}


@DIALECTS
@pytest.mark.parametrize(("key", "value"), MUTATIONS)
def test_unusual_rows_get_the_parse_push_answer(api: str, key: str, value: Any) -> None:
    broken = received(with_row_field(api, key, value), api)
    if isinstance(broken, str):  # v3: no symbol or no depth, so no channel: skipped unread
        assert api == "v3" and key in ("symbol", "level"), broken
        return
    assert outcome_fast(broken) == outcome_push(broken)


def carrying(value: Any, api: str) -> list[Any]:
    """Frames in `api`'s words with `value` where a depth push has its rows (v2), or in each
    field of a v3 depth push."""
    if api == "v2":
        return [value, {"event": "payload", "channel": "depth.cmt_btcusdt.15", "data": value}]
    return [{**V3_DEPTH, key: value} for key in ("U", "u", "d", "b", "a")]


@DIALECTS
@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_gets_the_parse_push_answer(api: str, value: Any) -> None:
    for sent in carrying(value, api):
        frame = received(sent, api)
        assert outcome_fast(frame) == outcome_push(frame)


@DIALECTS
@settings(max_examples=60, deadline=None)
@given(depth_sequences())
def test_a_book_fed_levels_equals_a_book_fed_updates(
    api: str, frames: list[dict[str, Any]]
) -> None:
    fast, slow = OrderBook("cmt_btcusdt", 15), OrderBook("cmt_btcusdt", 15)
    for frame in frames:
        decoded = in_dialect(json.loads(json.dumps(frame)), api)
        results_fast = [fast.apply_levels(levels) for levels in parse_depth_levels(decoded)]
        results_slow = [
            slow.apply(update) for update in parse_push(decoded) if isinstance(update, DepthUpdate)
        ]
        assert results_fast == results_slow
        assert fast.bids() == slow.bids() and fast.asks() == slow.asks()
        assert fast.best_bid == (fast.bids(1)[0] if fast.bids(1) else None)
        assert fast.best_ask == (fast.asks(1)[0] if fast.asks(1) else None)
        assert fast.version == slow.version


def depth_frame(bids: list[tuple[str, str]]) -> dict[str, Any]:
    row = {
        "startVersion": "7",
        "endVersion": "7",
        "level": 15,
        "depthType": "SNAPSHOT",
        "symbol": "cmt_btcusdt",
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [],
    }
    return {"event": "payload", "channel": "depth.cmt_btcusdt.15", "data": [row]}


@DIALECTS
def test_cached_level_texts_keep_the_exact_decimal_the_exchange_sent(api: str) -> None:
    """Equal values written differently ("1.0", "1.00") stay apart through the cache."""
    frame = in_dialect(depth_frame([("100.0", "1.0"), ("99.50", "1.00")]), api)
    for _ in range(2):  # the second time every text is a cache hit
        (levels,) = parse_depth_levels(frame)
        assert [(str(p), str(s)) for p, s in levels.bids] == [("100.0", "1.0"), ("99.50", "1.00")]


# The cache itself sees texts, not frames: nothing in it differs between the dialects.


def test_the_level_cache_stays_bounded_and_keeps_the_texts_in_use() -> None:
    cache = _LevelDecimals(4)
    for n in range(50):
        assert cache.convert(f"{n}.5") == Decimal(f"{n}.5")
        if cache.young.get("1.25") is None:  # a text in use is read back from either generation
            assert cache.convert("1.25") == Decimal("1.25")
        assert len(cache.young) <= 4 and len(cache.old) <= 4
    assert "1.25" in cache.young or "1.25" in cache.old
    assert "0.5" not in cache.young and "0.5" not in cache.old  # long gone


@pytest.mark.parametrize("text", ["-1", "NaN", "Infinity", "1e", "", " 1", "1.5."])
def test_the_level_cache_refuses_what_is_not_decimal_text_or_is_negative(text: str) -> None:
    cache = _LevelDecimals(4)
    assert cache.convert(text) is None
    assert text not in cache.young and text not in cache.old
