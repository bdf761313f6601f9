"""Hostile v3 frames: whatever the server sends on a v3 connection, the client carries on.

As for v2 (tests/test_hostile_frames.py): a frame that cannot be read is skipped or logged,
never an exception out of the connection or the hub, and the next good push still arrives.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_connection import T0, drain, open_pair
from tests.test_hostile_frames import NESTED, feed, hub_with_streams, ticker_push
from weex_proto import strategies as ws
from weex_proto import v3wire
from weex_proto.events import MessageReceived
from weex_proto.messages import DepthUpdate, PayloadError, parse_push

PRIVATE = ("account", "positions", "orders", "fill")

HOSTILE_V3 = [
    '{"e":' + NESTED + "}",
    '{"e":"ticker","s":' + NESTED + ',"d":[]}',
    '{"e":"ticker","s":"BTCUSDT","d":' + NESTED + "}",
    '{"e":"ticker","s":"BTCUSDT","d":"not a list"}',
    '{"e":"ticker","s":"BTCUSDT","d":[1,null,{"c":["x"]}]}',
    '{"e":"ticker","s":"' + "B" * 5000 + '","d":[]}',
    '{"e":"depth","s":"BTCUSDT","l":' + "9" * 5000 + "}",
    '{"e":"depth","s":"BTCUSDT","l":15,"U":"x","u":[],"d":"SNAPSHOT","b":[[1]],"a":{"x":1}}',
    '{"e":"depth","s":"BTCUSDT","l":15,"b":[["1","2","3"]],"a":[' + NESTED + "]}",
    '{"e":"kline","s":"BTCUSDT","p":' + NESTED + ',"d":[{"i":"1m"}]}',
    '{"e":"kline","s":"BTCUSDT","p":"LAST_PRICE","d":[{"i":{"a":1}}]}',
    '{"e":"trade","s":"BTCUSDT","d":[{"T":' + NESTED + "}]}",
    '{"e":"orders","d":"x","v":' + NESTED + "}",
    '{"e":"account","d":[{"symbol":' + NESTED + ',"crossSymbol":7,"coin":null}]}',
    '{"e":"positions"}',
    '{"result":true,"id":' + NESTED + "}",
    '{"result":false,"id":77,"msg":' + NESTED + "}",
    '{"result":"yes","id":{"a":1}}',
    '{"id":99,"result":true}',
    '{"event":"connected","timestamp":' + NESTED + "}",
    '{"type":"ping","time":' + NESTED + "}",
]


@pytest.mark.parametrize("text", HOSTILE_V3, ids=lambda text: text[:40])
def test_hostile_v3_frames_are_skipped_and_data_keeps_flowing(text: str) -> None:
    hub, session, peer, (tickers, book) = hub_with_streams(api="v3")
    feed(hub, session, peer, text)
    feed(hub, session, peer, ticker_push("43", "v3"))
    received = []
    while (message := tickers.get()) is not None:
        received.append(message)
    assert received[-1].frame["data"] == [{"lastPrice": "43", "symbol": "cmt_btcusdt"}]
    assert not tickers.closed and not book.closed


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)
_KEYS = st.sampled_from(["e", "E", "s", "d", "l", "U", "u", "b", "a", "p", "v", "msgEvent"])
_EVENTS = st.sampled_from(
    (
        *("ticker", "depth", "depthSnapshot", "trade", "tradeSnapshot", "kline", "klineSnapshot"),
        *("account", "positions", "orders", "fill", "bookTicker"),
    )
)


@settings(max_examples=300, deadline=None)
@given(
    event=_EVENTS,
    symbol=st.sampled_from(["BTCUSDT", "ETH", "", "btc-usdt"]) | _JSON,
    fields=st.dictionaries(_KEYS, _JSON, max_size=6),
)
def test_any_v3_push_becomes_a_v2_frame_or_a_reason(
    event: str, symbol: Any, fields: dict[str, Any]
) -> None:
    """The translation never raises; what it makes is a push the v2 parser reads or refuses
    with a PayloadError, on the channel the connection then routes it to."""
    frame = {**fields, "e": event, "s": symbol}
    converted = v3wire.push_to_v2(frame)
    if isinstance(converted, str):
        return
    assert isinstance(converted["channel"], str)
    with contextlib.suppress(PayloadError):
        parse_push(converted)
    # Through a connection: one event, never an exception.
    conn, peer, _ = open_pair("v3")
    encoded = json.dumps(frame)
    conn.receive_data(peer.text(encoded), T0)
    [event_out] = drain(conn)
    assert isinstance(event_out, MessageReceived)
    assert event_out.message.raw == encoded


# --- valid v3 traffic from weex_proto.strategies ---------------------------------------------


def _through_v3(frames: list[dict[str, Any]]) -> list[Any]:
    """The pushes a v3 connection makes of `frames`, in order (each must be one)."""
    conn, peer, _ = open_pair("v3")
    pushes = []
    for frame in frames:
        conn.receive_data(peer.text(frame), T0)
        [event] = drain(conn)
        assert isinstance(event, MessageReceived), event
        pushes.append(event.message)
    return pushes


@settings(max_examples=200, deadline=None)
@given(ws.v3_frames())
def test_every_valid_v3_push_parses_into_records(frame: dict[str, Any]) -> None:
    [push] = _through_v3([frame])
    records = parse_push(push.frame)  # valid frames never raise a PayloadError
    rows = frame["d"] if frame["e"] not in ("depth", "depthSnapshot") else [frame]
    if frame["e"] in PRIVATE or frame["e"].startswith("kline"):
        assert len(records) == 1  # one update holding the rows
    else:
        assert len(records) == len(rows)


@settings(max_examples=100, deadline=None)
@given(ws.v3_depth_sequences())
def test_v3_depth_sequences_run_on_by_version(frames: list[dict[str, Any]]) -> None:
    """U/u become the v2 versions a book checks: each update starts one past the last."""
    pushes = _through_v3(frames)
    updates = [parse_push(push.frame)[0] for push in pushes]
    assert isinstance(updates[0], DepthUpdate) and updates[0].depth_type == "SNAPSHOT"
    for before, after in itertools.pairwise(updates):
        assert isinstance(before, DepthUpdate) and isinstance(after, DepthUpdate)
        assert after.start_version == before.end_version + 1
