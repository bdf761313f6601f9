"""`weex_proto.strategies` keeps its promises: what it calls valid is valid, and exactly so.

Expected values are computed here from the generated JSON, independently of `parse_push`: a
decimal string becomes `Decimal(text)` (and must print back as the same text), digit strings
become ints, booleans stay booleans. Depth sequences are replayed into `OrderBook` and into a
plain dict model; hostile frames and whole server scripts go through a real `WeexConnection`
inside a `ClientHub` with streams open, as the adapters drive them.

Each property holds on both of WEEX's protocol generations (`api`): on v3 the generated pushes go
out as `v3_frame`s (or come from the v3 generators), the client turns them into the v2 frames it
reads, and the expected values are still read from the generated frames.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adapters import BOTH_DIALECTS
from tests.dialect_peer import DialectPeer, pong
from tests.test_depth_levels import received
from weex_proto import strategies as ws
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, ConnectionState
from weex_proto.events import MessageReceived, PingAnswered
from weex_proto.messages import (
    Candle,
    DepthUpdate,
    KlineUpdate,
    PriceLevel,
    PrivateUpdate,
    Ticker,
    Trade,
    parse_push,
)
from weex_proto.orderbook import Applied, BookState, NeedsResync, OrderBook
from weex_proto.runtime.hub import (
    ClientHub,
    plan_order_book,
    plan_private,
    plan_tickers,
    plan_trades,
)
from weex_proto.session import Reconnect, WeexSession

T0 = 1_700_000_000.0
DIALECTS = pytest.mark.parametrize("api", BOTH_DIALECTS)


def config(api: str) -> WeexConfig:
    return WeexConfig(api_key="k", secret_key="s", passphrase="p", api=api)


def on_wire(frame: dict[str, Any], api: str) -> dict[str, Any]:
    """A generated (v2) push as `api` sends it."""
    return ws.v3_frame(frame) if api == "v3" else frame


def parsed(frame: dict[str, Any], api: str) -> tuple[Any, ...]:
    """The records the client makes of a generated push sent in `api`'s words."""
    decoded = received(on_wire(frame, api), api)
    assert isinstance(decoded, dict), decoded  # on v3, a push the connection can place
    return parse_push(decoded)


WIRE_KEYS = {"order_type": "type"}  # the one attribute not named after its wire key


def wire_key(attribute: str) -> str:
    if attribute in WIRE_KEYS:
        return WIRE_KEYS[attribute]
    head, *rest = attribute.split("_")
    return head + "".join(part.capitalize() for part in rest)


def expected_value(kind: Any, value: Any) -> Any:
    """The typed value a wire value must become, by the attribute's declared type."""
    text = str(kind)
    if "Decimal" in text:
        assert isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value)
        return Decimal(value)
    if text in ("int", "<class 'int'>"):
        assert isinstance(value, str) and value.isdigit()  # strings, as documented
        return int(value)
    if text in ("bool", "<class 'bool'>"):
        assert isinstance(value, bool)  # JSON booleans, as the examples show
        return value
    assert isinstance(value, str)
    return value


def expected_record(cls: type[Any], row: dict[str, Any], **given_fields: Any) -> Any:
    """The record the parser must build from `row`: every wire field read independently here;
    fields the client computes itself (with a default: a candle's `closed`, a position's mark
    and PnL) keep their defaults, since a lone frame gives no reason to set them."""
    fields = {}
    for field in attrs.fields(cls):
        if field.name == "raw":
            continue
        if field.name in given_fields:
            fields[field.name] = given_fields[field.name]
        elif wire_key(field.name) in row or field.default is attrs.NOTHING:
            fields[field.name] = expected_value(field.type, row[wire_key(field.name)])
    return cls(**fields)


def exact_texts(record: Any, row: dict[str, Any]) -> None:
    """Every decimal prints back as the exact text it came from (trailing zeros and all)."""
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        if isinstance(value, Decimal):
            assert str(value) == row[wire_key(field.name)]


@DIALECTS
@given(ws.ticker_frames())
def test_ticker_frames_parse_to_exact_tickers(api: str, frame: dict[str, Any]) -> None:
    [row] = frame["data"]
    [ticker] = parsed(frame, api)
    assert ticker == expected_record(Ticker, row)
    assert frame["channel"] == f"ticker.{row['symbol']}"
    exact_texts(ticker, row)


@DIALECTS
@given(ws.trade_frames())
def test_trade_frames_parse_to_one_trade_per_row(api: str, frame: dict[str, Any]) -> None:
    symbol = frame["channel"].removeprefix("trades.")
    trades = parsed(frame, api)
    assert trades == tuple(expected_record(Trade, row, symbol=symbol) for row in frame["data"])
    for trade, row in zip(trades, frame["data"], strict=True):
        exact_texts(trade, row)


@DIALECTS
@given(ws.kline_frames())
def test_kline_frames_parse_to_candles(api: str, frame: dict[str, Any]) -> None:
    [update] = parsed(frame, api)
    candles = tuple(expected_record(Candle, row) for row in frame["data"])
    assert update == KlineUpdate(frame["channel"], frame["type"], candles)
    assert frame["type"] in ("change", "snapshot")
    for candle in candles:
        assert candle.low <= min(candle.open, candle.close) <= max(candle.open, candle.close)
        assert max(candle.open, candle.close) <= candle.high


def expected_depth(row: dict[str, Any]) -> DepthUpdate:
    assert isinstance(row["level"], int) and not isinstance(row["level"], bool)  # a number
    return DepthUpdate(
        symbol=row["symbol"],
        level=row["level"],
        depth_type=row["depthType"],
        start_version=int(row["startVersion"]),
        end_version=int(row["endVersion"]),
        asks=tuple(PriceLevel(Decimal(x["price"]), Decimal(x["size"])) for x in row["asks"]),
        bids=tuple(PriceLevel(Decimal(x["price"]), Decimal(x["size"])) for x in row["bids"]),
    )


@DIALECTS
@given(st.one_of(ws.depth_sequences(level=15), ws.depth_sequences(level=200, max_changes=3)))
def test_depth_frames_parse_exactly(api: str, frames: list[dict[str, Any]]) -> None:
    for frame in frames:
        [row] = frame["data"]
        assert parsed(frame, api) == (expected_depth(row),)
        assert frame["channel"] == f"depth.{row['symbol']}.{row['level']}"


RECORD_TYPES = {
    "account": "Collateral",
    "positions": "Position",
    "orders": "Order",
    "fill": "Fill",
}


@DIALECTS
@given(ws.private_update_sequences())
def test_private_sequences_parse_with_increasing_versions(
    api: str, frames: list[dict[str, Any]]
) -> None:
    from weex_proto import messages

    versions = []
    for frame in frames:
        msg = frame["msg"]
        assert type(msg["version"]) is int and type(msg["time"]) is int  # JSON numbers
        [update] = parsed(frame, api)
        assert isinstance(update, PrivateUpdate)
        cls = getattr(messages, RECORD_TYPES[frame["channel"]])
        [rows] = msg["data"].values()
        records = tuple(expected_record(cls, row) for row in rows)
        assert update == PrivateUpdate(
            frame["channel"], msg["msgEvent"], msg["version"], msg["time"], records
        )
        assert [dict(record.raw) for record in update.records] == rows
        versions.append(update.version)
    assert versions == sorted(set(versions))  # strictly increasing


# --------------------------------------------------------------------------- order books


LIVE_BOOKS = {"v2": ws.depth_sequences(max_changes=20), "v3": ws.v3_depth_sequences()}
GAPPY_BOOKS = {"v2": ws.depth_sequences(gaps=True), "v3": ws.v3_depth_sequences(gaps=True)}


def book_row(frame: dict[str, Any], api: str) -> Any:
    """(type, start version, end version, bids, asks) of a raw book push in `api`'s words,
    levels as (price, size) texts."""
    if api == "v3":
        return frame["d"], frame["U"], frame["u"], frame["b"], frame["a"]
    [row] = frame["data"]
    bids, asks = ([(x["price"], x["size"]) for x in row[key]] for key in ("bids", "asks"))
    return row["depthType"], int(row["startVersion"]), int(row["endVersion"]), bids, asks


def reference_book(
    frames: list[dict[str, Any]], depth: int, api: str = "v2"
) -> tuple[list[Any], list[Any]]:
    """The book the frames describe, by brute force: apply every level, keep the best `depth`."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for frame in frames:
        depth_type, _, _, bid_levels, ask_levels = book_row(frame, api)
        if depth_type == "SNAPSHOT":
            bids.clear()
            asks.clear()
        for side, levels in ((bids, bid_levels), (asks, ask_levels)):
            for level_price, level_size in levels:
                price, size = Decimal(level_price), Decimal(level_size)
                if size:
                    side[price] = size
                else:
                    side.pop(price, None)
        bids = dict(sorted(bids.items(), reverse=True)[:depth])
        asks = dict(sorted(asks.items())[:depth])
    return sorted(bids.items(), reverse=True), sorted(asks.items())


def book_updates(frames: list[dict[str, Any]], api: str) -> list[DepthUpdate]:
    updates = []
    for frame in frames:
        decoded = received(frame, api)
        assert isinstance(decoded, dict), decoded
        [update] = parse_push(decoded)
        assert isinstance(update, DepthUpdate)
        updates.append(update)
    return updates


@DIALECTS
@given(data=st.data())
def test_depth_sequences_without_gaps_keep_a_book_live(api: str, data: st.DataObject) -> None:
    frames = data.draw(LIVE_BOOKS[api])
    book = OrderBook("cmt_btcusdt", 15)
    for update in book_updates(frames, api):
        assert book.apply(update) == Applied()
        assert book.state is BookState.LIVE
    assert book.version == book_row(frames[-1], api)[2]
    assert (book.bids(), book.asks()) == reference_book(frames, 15, api)


@DIALECTS
@given(data=st.data())
def test_depth_sequences_with_gaps_make_the_book_resync(api: str, data: st.DataObject) -> None:
    frames = data.draw(GAPPY_BOOKS[api])
    rows = [book_row(frame, api) for frame in frames]
    first_gap = next(
        index for index in range(1, len(rows)) if rows[index][1] > rows[index - 1][2] + 1
    )
    book = OrderBook("cmt_btcusdt", 15)
    results = []
    for update in book_updates(frames[: first_gap + 1], api):
        results.append(book.apply(update))
    assert results[:-1] == [Applied()] * first_gap
    assert isinstance(results[-1], NeedsResync) and "gap" in results[-1].reason
    assert book.state is BookState.AWAITING_SNAPSHOT


# --------------------------------------------------------------------------- through a connection


def open_hub(
    api: str = "v2",
) -> tuple[ClientHub, dict[bool, tuple[WeexSession, DialectPeer]], list[Any]]:
    """A hub with a public and a private connection open and streams of every kind."""
    hub = ClientHub(
        config(api), options=ConnectionOptions(), rng=random.Random(1), max_retries=None
    )
    plans = [
        plan_tickers(["cmt_btcusdt"]),
        plan_trades("cmt_btcusdt"),
        plan_order_book("cmt_btcusdt", 5),
        plan_private("orders"),
        plan_private("account"),
    ]
    buffers = []
    for plan in plans:
        buffers.append(hub.open_stream(plan))
        for channel in plan.channels:
            hub.acquire(channel, T0)
    sessions = {}
    for private in (False, True):
        session = hub.session(private)
        sessions[private] = (session, handshake(hub, session, T0))
    return hub, sessions, buffers


def handshake(hub: ClientHub, session: WeexSession, now: float) -> DialectPeer:
    conn = hub.start_attempt(session, now)
    peer = DialectPeer(hub.config.api_version)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), now)
    assert hub.handle_events(session, conn, now) is None
    peer.receive(conn.data_to_send())
    for channel in session.subscriptions.desired:
        conn.receive_data(peer.ack(channel), now)
    assert hub.handle_events(session, conn, now) is None
    return peer


@DIALECTS
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ws.hostile_frames(), max_size=12), ws.ticker_frames("cmt_btcusdt"))
def test_hostile_frames_never_raise_and_never_drop_the_link(
    api: str, hostile: list[str], last: dict[str, Any]
) -> None:
    hub, sessions, buffers = open_hub(api)
    for private, (session, peer) in sessions.items():
        conn = session.connection
        assert conn is not None
        for text in hostile:
            conn.receive_data(peer.text(text), T0)
            assert hub.handle_events(session, conn, T0) is None
            for buffer in buffers:
                while buffer.get() is not None:  # reading never raises either
                    pass
        assert conn.state is ConnectionState.OPEN, private
    session, peer = sessions[False]
    conn = session.connection
    assert conn is not None
    conn.receive_data(peer.text(on_wire(last, api)), T0)
    hub.handle_events(session, conn, T0)
    message = buffers[0].get()
    assert message is not None and (message.record,) == parse_push(last)


PINGS = {"v2": ws.pings(), "v3": ws.v3_pings()}


@DIALECTS
@given(data=st.data())
def test_pings_in_both_forms_are_answered_with_the_same_key_and_time(
    api: str, data: st.DataObject
) -> None:
    ping = data.draw(PINGS[api])
    _, sessions, _ = open_hub(api)
    session, peer = sessions[ping.get("event") == "ping"]
    conn = session.connection
    assert conn is not None
    conn.receive_data(peer.text(ping), T0)
    events = list(conn.events())
    [key] = (k for k in ping if k != "time")
    assert events == [PingAnswered(ping["time"], key, T0, int(ping["time"]) / 1000)]
    peer.receive(conn.data_to_send())
    assert peer.json_sent()[-1] == pong(api, key, ping["time"], peer.last_id)


def step_text(step: ws.SendFrame | ws.SendGarbage, api: str) -> str:
    """What a step sends in `api`'s words: on v3 a generated push goes as its `v3_frame`;
    pings read the same in both, and v2's acks by name are stray frames to a v3 client."""
    if (
        api == "v3"
        and isinstance(step, ws.SendFrame)
        and ("data" in step.frame or "msg" in step.frame)
    ):
        return json.dumps(ws.v3_frame(step.frame))
    return step.text


@DIALECTS
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(ws.server_scripts(raw=True))
def test_server_scripts_never_raise_and_every_end_is_a_reconnect(
    api: str, script: list[ws.Step]
) -> None:
    """Play a script against the public connection: faults end connections (a drop, a silence
    past the heartbeat, raw bytes that break the framing), and each end is followed by a new
    handshake that resubscribes; nothing raises, and buffers stay bounded."""
    hub, sessions, buffers = open_hub(api)
    session, peer = sessions[False]
    now = T0
    reconnects = 0
    for step in script:
        conn = session.connection
        assert conn is not None and conn.is_open
        if isinstance(step, ws.SendFrame | ws.SendGarbage):
            conn.receive_data(peer.text(step_text(step, api)), now)
        elif isinstance(step, ws.SendRaw):
            conn.receive_data(step.data, now)
        elif isinstance(step, ws.Drop):
            conn.receive_data(None, now)
        else:
            now += step.seconds
            conn.handle_timer(now)
            now += conn.options.ping_timeout + 1  # our ping goes unanswered: the link is dead
            conn.handle_timer(now)
        decision = hub.handle_events(session, conn, now)
        for buffer in buffers:
            assert len(buffer) <= hub.buffer_size
        if decision is None and conn.state is ConnectionState.CLOSING:
            conn.receive_data(None, now)  # the peer hangs up instead of answering our close
            decision = hub.handle_events(session, conn, now)
        if decision is not None:
            assert isinstance(decision, Reconnect)
            hub.decided(session, decision)
            reconnects += 1
            peer = handshake(hub, session, now)
            assert {message["channel"] for message in peer.requests()} == set(
                session.subscriptions.desired
            )
    assert session.connection is not None and session.connection.is_open
    assert hub.health.reconnects == reconnects


VALID_TEXTS = {
    "v2": ws.frame_texts(),
    "v3": ws.frame_texts(st.one_of(ws.v3_frames(), ws.v3_pings())),
}


@DIALECTS
def test_valid_frames_are_recognised_as_data_or_control_by_a_connection(api: str) -> None:
    """A sample of `valid_frames()` (on v3: `v3_frames()` and `v3_pings()`) gives only data,
    ping or ack events: nothing is skipped."""

    @settings(max_examples=80)
    @given(VALID_TEXTS[api])
    def check(text: str) -> None:
        _, sessions, _ = open_hub(api)
        session, peer = sessions[False]
        conn = session.connection
        assert conn is not None
        conn.receive_data(peer.text(text), T0)
        events = list(conn.events())
        assert len(events) == 1
        assert type(events[0]).__name__ in {
            "MessageReceived",
            "PingAnswered",
            "Subscribed",
            "Unsubscribed",
        }
        if isinstance(events[0], MessageReceived):
            decoded = received(json.loads(text), api)
            assert isinstance(decoded, dict), decoded
            assert parse_push(decoded)  # the same frame parses into records

    check()


def test_importing_without_hypothesis_names_the_extra() -> None:
    code = "import sys; sys.modules['hypothesis'] = None; import weex_proto.strategies"
    result = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "pip install 'weex-ws[hypothesis]'" in result.stderr
