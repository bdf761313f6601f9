"""ClientHub: the adapter-independent client logic, tested without any event loop.

A test that takes the `api` fixture runs once per dialect: the server's side is a
`DialectPeer` (tests/dialect_peer.py), which writes the v2-shaped frames these tests build
(pushes, acks, errors naming a channel) the dialect's way, and reads the client's requests
back in v2's words.
"""

from __future__ import annotations

import logging
import random
from decimal import Decimal
from typing import Any

import pytest

from tests.adapters import BOTH_DIALECTS
from tests.dialect_peer import DialectPeer, config
from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions
from weex_proto.errors import (
    ConfigError,
    OrderBookError,
    ReconnectExhaustedError,
    ServerError,
    WeexError,
)
from weex_proto.events import WebSocketMessage
from weex_proto.orderbook import MAX_STALE_DELTAS
from weex_proto.runtime.books import MAX_RESYNCS_WITHOUT_SNAPSHOT
from weex_proto.runtime.fanout import BufferClosed, OverflowPolicy
from weex_proto.runtime.hub import (
    ClientHub,
    plan_order_book,
    plan_private,
    plan_tickers,
    plan_trades,
)
from weex_proto.session import GiveUp, Reconnect, WeexSession

T0 = 1_700_000_000.0


@pytest.fixture(params=BOTH_DIALECTS)
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_hub(config: WeexConfig | None = None, **kwargs: Any) -> ClientHub:
    return ClientHub(
        config or WeexConfig(api_key="k", secret_key="s", passphrase="p"),
        options=ConnectionOptions(),
        rng=random.Random(1),
        **kwargs,
    )


def connect(hub: ClientHub, session: WeexSession) -> DialectPeer:
    """Open `session`'s next connection to a peer speaking the hub's dialect."""
    conn = hub.start_attempt(session, T0)
    peer = DialectPeer(hub.config.api_version)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    assert hub.handle_events(session, conn, T0) is None
    peer.receive(conn.data_to_send())
    return peer


def push(hub: ClientHub, session: WeexSession, peer: ServerPeer, frame: dict[str, Any]) -> None:
    """The server sends `frame` (v2-shaped: a `DialectPeer` writes it in its dialect, after
    reading what the client sent, so that an ack or refusal can name the request's id)."""
    conn = session.connection
    assert conn is not None
    if isinstance(peer, DialectPeer):
        peer.receive(conn.data_to_send())
        data = peer.send(frame)
    else:
        data = peer.text(frame)
    conn.receive_data(data, T0)
    hub.handle_events(session, conn, T0)


def ticker_frame(symbol: str, price: str) -> dict[str, Any]:
    return {"event": "payload", "channel": f"ticker.{symbol}", "data": [{"lastPrice": price}]}


def test_plans_build_wire_channels_and_policies() -> None:
    # Plans name channels in weex-ws's own (v2) words whatever the dialect: no `api` here.
    assert plan_tickers(["BTCUSDT", "btc-usdt", "ETHUSDT"]).channels == (
        "ticker.cmt_btcusdt",
        "ticker.cmt_ethusdt",
    )
    assert plan_tickers(None).patterns == ("ticker.*",)
    assert plan_order_book("BTCUSDT", 5).channels == ("depth.cmt_btcusdt.15",)
    assert plan_order_book("BTCUSDT", 50).channels == ("depth.cmt_btcusdt.200",)
    assert plan_trades("ETHUSDT").policy is OverflowPolicy.KEEP_LATEST
    assert plan_private("orders").policy is OverflowPolicy.RAISE
    with pytest.raises(ValueError, match="level"):
        plan_order_book("BTCUSDT", 0)
    with pytest.raises(ValueError, match="symbol"):
        plan_tickers([])


def test_streams_and_user_share_one_subscription(api: str) -> None:
    hub = make_hub(config(api))
    session = hub.acquire("ticker.cmt_btcusdt", T0)
    hub.acquire("ticker.cmt_btcusdt", T0)
    assert hub.user_subscribe("ticker.cmt_btcusdt", T0) is session
    assert hub.user_subscribe("ticker.cmt_btcusdt", T0) is None  # idempotent
    assert session.subscriptions.desired == ("ticker.cmt_btcusdt",)
    peer = connect(hub, session)
    assert peer.requests() == [{"event": "subscribe", "channel": "ticker.cmt_btcusdt"}]
    assert hub.release("ticker.cmt_btcusdt", T0) is None
    assert hub.release("ticker.cmt_btcusdt", T0) is None
    assert hub.user_unsubscribe("ticker.cmt_btcusdt", T0) is session
    conn = session.connection
    assert conn is not None
    peer.receive(conn.data_to_send())
    assert peer.requests()[-1] == {"event": "unsubscribe", "channel": "ticker.cmt_btcusdt"}
    assert hub.subscriptions == frozenset()


def test_private_channels_need_credentials(api: str) -> None:
    hub = make_hub(WeexConfig(api=api))
    with pytest.raises(ConfigError):
        hub.acquire("orders", T0)
    assert hub.refs.count("orders") == 0


def test_messages_reach_buffers_and_handlers_and_failures_are_isolated(
    caplog: pytest.LogCaptureFixture, api: str
) -> None:
    hub = make_hub(config(api))
    plan = plan_tickers(["BTCUSDT"])
    buffer = hub.open_stream(plan)
    woken: list[int] = []
    buffer.waker = lambda: woken.append(1)
    seen: list[str] = []

    def broken(message: WebSocketMessage[Any]) -> None:
        raise RuntimeError("handler bug")

    hub.add_handler("ticker.*", broken)
    hub.add_handler("ticker.cmt_btcusdt", lambda m: seen.append(m.data["last"]))
    session = hub.acquire("ticker.cmt_btcusdt", T0)
    peer = connect(hub, session)
    with caplog.at_level(logging.ERROR, logger="weex_ws"):
        push(hub, session, peer, ticker_frame("cmt_btcusdt", "1.5"))
    assert seen == ["1.5"]
    assert "handler bug" in caplog.text
    message = buffer.get()
    assert message is not None
    assert message.data["lastPrice"] == message.data["last"] == "1.5"
    assert message.frame["data"][0]["lastPrice"] == "1.5"
    assert woken == [1]
    assert hub.health.messages == 1
    hub.close_stream(plan, buffer)
    with pytest.raises(BufferClosed):
        buffer.get()


async def _async_handler(message: WebSocketMessage[Any]) -> None:
    return None


def test_async_handlers_get_a_bounded_buffer_and_can_be_removed(api: str) -> None:
    hub = make_hub(config(api), buffer_size=2)
    backlog = hub.add_handler("trades.*", _async_handler)
    assert backlog is not None
    buffer = backlog.public
    session = hub.acquire("trades.cmt_btcusdt", T0)
    peer = connect(hub, session)
    for n in range(3):
        frame = {"event": "payload", "channel": "trades.cmt_btcusdt", "data": [{"n": n}]}
        push(hub, session, peer, frame)
    assert len(buffer) == 2
    assert buffer.dropped == 1
    assert hub.remove_handler("trades.*", _async_handler) == 1
    assert backlog.closed


def test_reconnect_marks_gaps_and_tells_the_callback(api: str) -> None:
    gaps: list[tuple[str, tuple[str, ...]]] = []
    hub = make_hub(config(api), on_gap=lambda endpoint, channels: gaps.append((endpoint, channels)))
    plan = plan_tickers(["BTCUSDT"])
    buffer = hub.open_stream(plan)
    session = hub.acquire("ticker.cmt_btcusdt", T0)
    peer = connect(hub, session)
    conn = session.connection
    assert conn is not None
    conn.receive_data(None, T0 + 1)
    decision = hub.handle_events(session, conn, T0 + 1)
    assert isinstance(decision, Reconnect)
    hub.decided(session, decision)
    assert gaps == [("public", ("ticker.cmt_btcusdt",))]
    peer = connect(hub, session)
    push(hub, session, peer, ticker_frame("cmt_btcusdt", "2"))
    message = buffer.get()
    assert message is not None
    assert message.gap
    assert hub.health.reconnects == 1


def test_after_a_reconnect_every_consumer_flags_the_first_record_of_each_channel(api: str) -> None:
    hub = make_hub(config(api))
    stream = hub.open_stream(plan_tickers(["BTCUSDT", "ETHUSDT"]))
    seen: list[tuple[str, bool]] = []
    hub.add_handler("ticker.*", lambda message: seen.append((message.channel, message.gap)))

    async def slow(message: WebSocketMessage[Any]) -> None:
        raise AssertionError("never called: its backlog is read here")

    backlog = hub.add_handler("ticker.*", slow)
    assert backlog is not None
    session = hub.acquire("ticker.cmt_btcusdt", T0)
    hub.acquire("ticker.cmt_ethusdt", T0)
    peer = connect(hub, session)
    push(hub, session, peer, ticker_frame("cmt_btcusdt", "1"))
    conn = session.connection
    assert conn is not None
    conn.receive_data(None, T0 + 1)  # the connection drops
    decision = hub.handle_events(session, conn, T0 + 1)
    assert isinstance(decision, Reconnect)
    hub.decided(session, decision)
    peer = connect(hub, session)
    for symbol, price in [("btc", "2"), ("btc", "3"), ("eth", "4"), ("eth", "5"), ("btc", "6")]:
        push(hub, session, peer, ticker_frame(f"cmt_{symbol}usdt", price))
    expected = [
        ("ticker.cmt_btcusdt", False),  # before the drop
        ("ticker.cmt_btcusdt", True),
        ("ticker.cmt_btcusdt", False),
        ("ticker.cmt_ethusdt", True),
        ("ticker.cmt_ethusdt", False),
        ("ticker.cmt_btcusdt", False),
    ]
    assert seen == expected
    assert [(m.channel, m.gap) for m in drain(stream)] == expected
    assert [(m.channel, m.gap) for m in drain(backlog)] == expected


def test_giving_up_fails_every_stream_of_that_endpoint(api: str) -> None:
    hub = make_hub(config(api), max_retries=0)
    public = hub.open_stream(plan_tickers(["BTCUSDT"]))
    private = hub.open_stream(plan_private("orders"))
    session = hub.session(False)
    hub.start_attempt(session, T0)
    decision = hub.transport_failed(session, T0, ConnectionRefusedError("refused"))
    assert isinstance(decision, GiveUp)
    hub.decided(session, decision)
    with pytest.raises(ReconnectExhaustedError):
        public.get()
    assert private.get() is None  # the private endpoint is unaffected


def test_server_refusing_a_channel_ends_the_stream_that_wanted_it(api: str) -> None:
    hub = make_hub(config(api))
    plan = plan_trades("DOGEUSDT")
    buffer = hub.open_stream(plan)
    session = hub.acquire("trades.cmt_dogeusdt", T0)
    peer = connect(hub, session)
    error = {"event": "error", "code": "40020", "msg": "bad channel", "channel": plan.channels[0]}
    push(hub, session, peer, error)
    with pytest.raises(ServerError, match="bad channel"):
        buffer.get()
    assert "trades.cmt_dogeusdt" not in hub.subscriptions


# --------------------------------------------------------------------------- order books

BOOK = "depth.cmt_btcusdt.15"
SUBSCRIBE = {"event": "subscribe", "channel": BOOK}
UNSUBSCRIBE = {"event": "unsubscribe", "channel": BOOK}


def depth_frame(
    kind: str,
    start: int,
    end: int | None = None,
    *,
    bid: str = "100",
    ask: str = "101",
    size: str = "1",
    symbol: str = "cmt_btcusdt",
) -> dict[str, Any]:
    row = {
        "startVersion": str(start),
        "endVersion": str(start if end is None else end),
        "level": 15,
        "depthType": kind,
        "symbol": symbol,
        "asks": [{"price": ask, "size": "1"}],
        "bids": [{"price": bid, "size": size}],
    }
    return {"event": "payload", "channel": BOOK, "data": [row]}


def ack(event: str) -> dict[str, Any]:
    return {"event": event, "channel": BOOK}


def sent(peer: ServerPeer, session: WeexSession) -> list[Any]:
    """What the client wrote since the last look."""
    conn = session.connection
    assert conn is not None
    peer.receive(conn.data_to_send())
    frames = peer.requests() if isinstance(peer, DialectPeer) else peer.json_sent()
    peer.texts.clear()
    return frames


def drain(buffer: Any) -> list[WebSocketMessage[Any]]:
    out = []
    while (message := buffer.get()) is not None:
        out.append(message)
    return out


def live_book_stream(api: str = "v2") -> tuple[ClientHub, WeexSession, DialectPeer, Any]:
    """A hub with one level-5 book stream, subscribed and fed a snapshot at version 100."""
    hub = make_hub(config(api))
    buffer = hub.open_stream(plan_order_book("BTCUSDT", 5))
    session = hub.acquire(BOOK, T0)
    peer = connect(hub, session)
    assert sent(peer, session) == [SUBSCRIBE]
    push(hub, session, peer, ack("subscribed"))
    push(hub, session, peer, depth_frame("SNAPSHOT", 100))
    [book] = drain(buffer)
    assert book.data["version"] == 100 and not book.data["resyncing"]
    return hub, session, peer, buffer


def resubscribe(hub: ClientHub, session: WeexSession, peer: ServerPeer, snapshot: Any) -> None:
    """Play the server's side of a resync: both acks, then the new snapshot."""
    push(hub, session, peer, ack("unsubscribed"))
    push(hub, session, peer, ack("subscribed"))
    push(hub, session, peer, snapshot)


def assert_sane_book(message: WebSocketMessage[Any]) -> None:
    data = message.data
    assert not data["resyncing"]
    assert data["bids"] and data["asks"]
    assert data["bids"][0][0] < data["asks"][0][0]
    assert all(price > 0 and size > 0 for price, size in data["bids"] + data["asks"])


def test_resyncs_past_the_operation_budget_reconnect_instead_of_dropping_the_book(api: str) -> None:
    hub, session, peer, buffer = live_book_stream(api)
    version, resubscribes = 100, 0
    while True:
        push(hub, session, peer, depth_frame("CHANGED", version + 3))  # versions were lost
        requests = sent(peer, session)
        if requests != [UNSUBSCRIBE, SUBSCRIBE]:
            break
        resubscribes += 1
        version += 10
        resubscribe(hub, session, peer, depth_frame("SNAPSHOT", version))
        assert resubscribes < 200, "the budget never ran out"
    # 1 subscribe + 119 resyncs = 239 operations; a resync needs 2, so nothing was spent on it
    # and the connection is replaced instead (a fresh budget, and its resubscribe a snapshot).
    assert resubscribes == 119
    assert requests == []
    assert peer.closes == [(1000, "client reconnect")]
    assert session.subscriptions.operations_left(T0) == 1
    assert BOOK in hub.subscriptions
    messages = drain(buffer)
    notices = [m for m in messages if m.data["resyncing"]]
    assert len(notices) == 120 and all(m.gap for m in notices)
    assert messages[-1].data["resyncing"]  # readers are told before anything else happens
    for message in messages:
        if not message.data["resyncing"]:
            assert_sane_book(message)

    conn = session.connection
    assert conn is not None
    conn.receive_data(peer.close(1000), T0)
    decision = hub.handle_events(session, conn, T0)
    assert isinstance(decision, Reconnect) and decision.delay == 0
    hub.decided(session, decision)
    peer = connect(hub, session)
    assert sent(peer, session) == [SUBSCRIBE]  # the book channel is still wanted
    push(hub, session, peer, ack("subscribed"))
    push(hub, session, peer, depth_frame("SNAPSHOT", version + 10))
    [book] = drain(buffer)
    assert_sane_book(book)
    assert book.data["version"] == version + 10
    assert book.gap  # the connection changed under the stream
    push(hub, session, peer, depth_frame("CHANGED", version + 11, bid="99"))
    [book] = drain(buffer)
    assert book.data["version"] == version + 11 and not book.gap


def test_a_book_without_usable_snapshots_ends_with_order_book_error(api: str) -> None:
    hub, session, peer, buffer = live_book_stream(api)
    crossed = depth_frame("SNAPSHOT", 200, bid="102", ask="101")
    # Rule: MAX_RESYNCS_WITHOUT_SNAPSHOT (5) resyncs in a row may fail; a usable snapshot
    # starts the count again.
    for version in (1000, 2000):
        push(hub, session, peer, depth_frame("CHANGED", version))  # a gap: resync 1
        for _ in range(4):  # resyncs 2..5, each answered with a crossed snapshot
            assert sent(peer, session) == [UNSUBSCRIBE, SUBSCRIBE]
            resubscribe(hub, session, peer, crossed)
        assert sent(peer, session) == [UNSUBSCRIBE, SUBSCRIBE]
        resubscribe(hub, session, peer, depth_frame("SNAPSHOT", version + 500))
        messages = drain(buffer)
        assert [m.data["resyncing"] for m in messages] == [True] * 5 + [False]
        assert_sane_book(messages[-1])
    push(hub, session, peer, depth_frame("CHANGED", 3000))
    for _ in range(5):
        assert sent(peer, session) == [UNSUBSCRIBE, SUBSCRIBE]
        resubscribe(hub, session, peer, crossed)
    assert sent(peer, session) == []  # the sixth is not attempted
    notices = [buffer.get() for _ in range(6)]
    assert all(m is not None and m.data["resyncing"] for m in notices)
    with pytest.raises(OrderBookError, match="cannot be rebuilt"):
        buffer.get()
    assert isinstance(OrderBookError("x"), WeexError)


GARBAGE_DELTAS = [
    pytest.param(depth_frame("CHANGED", 101, size="-2"), id="negative-size"),
    pytest.param(depth_frame("CHANGED", 101, bid="0"), id="zero-price"),
    pytest.param(depth_frame("CHANGED", 101, bid="-100"), id="negative-price"),
    pytest.param(depth_frame("CHANGED", 101, size="NaN"), id="nan-size"),
    pytest.param(depth_frame("CHANGED", 101, 100), id="start-after-end"),
    pytest.param({"event": "payload", "channel": BOOK, "data": "junk"}, id="no-rows"),
]


@pytest.mark.parametrize("frame", GARBAGE_DELTAS)
def test_garbage_depth_push_resyncs_once_and_never_corrupts_the_book(
    frame: dict[str, Any], api: str
) -> None:
    hub, session, peer, buffer = live_book_stream(api)
    push(hub, session, peer, frame)  # no exception escapes
    [notice] = drain(buffer)
    assert notice.data["resyncing"] and notice.data["bids"] == ()
    assert sent(peer, session) == [UNSUBSCRIBE, SUBSCRIBE]
    push(hub, session, peer, frame)  # more garbage while the snapshot is on its way
    assert sent(peer, session) == []
    resubscribe(hub, session, peer, depth_frame("SNAPSHOT", 150))
    books = [m for m in drain(buffer) if not m.data["resyncing"]]
    assert [b.data["version"] for b in books] == [150]
    assert_sane_book(books[0])
    assert hub.health.book_resyncs == 1


@pytest.mark.parametrize(
    ("frame", "api"),
    [
        # v2 only: a v3 push's symbol is what names its channel, so none is on another's
        pytest.param(depth_frame("SNAPSHOT", 300, symbol="cmt_ethusdt"), "v2", id="other-symbol"),
        pytest.param(
            depth_frame("CHANGED", 101, symbol="cmt_ethusdt"), "v2", id="other-symbol-delta"
        ),
        *(
            pytest.param(depth_frame("SNAPSHOT", 90, bid="50"), api, id=f"older-snapshot-{api}")
            for api in BOTH_DIALECTS
        ),
    ],
)
def test_push_that_does_not_belong_is_skipped_and_the_book_carries_on(
    frame: dict[str, Any], api: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub, session, peer, buffer = live_book_stream(api)
    with caplog.at_level(logging.WARNING, logger="weex_ws"):
        push(hub, session, peer, frame)
    assert drain(buffer) == []
    assert sent(peer, session) == []
    assert [r.weex_event for r in caplog.records] == ["book_bad_push"]  # type: ignore[attr-defined]
    push(hub, session, peer, depth_frame("CHANGED", 101, bid="99.5"))
    [book] = drain(buffer)
    assert book.data["version"] == 101
    assert book.data["bids"] == ((Decimal(100), Decimal(1)), (Decimal("99.5"), Decimal(1)))
    assert hub.health.book_resyncs == 0


def test_server_refusing_a_depth_channel_ends_the_book_stream(api: str) -> None:
    hub = make_hub(config(api))
    buffer = hub.open_stream(plan_order_book("DOGEUSDT", 5))
    channel = "depth.cmt_dogeusdt.15"
    session = hub.acquire(channel, T0)
    peer = connect(hub, session)
    error = {"event": "error", "code": "40020", "msg": "bad channel", "channel": channel}
    push(hub, session, peer, error)
    with pytest.raises(ServerError, match="bad channel"):
        buffer.get()


# --------------------------------------------------------------------------- a misbehaving server


def test_an_error_naming_a_channel_this_connection_never_asked_for_ends_nothing(api: str) -> None:
    hub, session, peer, buffer = live_book_stream(api)
    trades = hub.open_stream(plan_trades("DOGEUSDT"))  # its buffer is named after its channel
    hub.acquire("trades.cmt_dogeusdt", T0)
    push(hub, session, peer, {"event": "subscribed", "channel": "trades.cmt_dogeusdt"})
    for channel in ("depth.cmt_ethusdt.15", "trades.cmt_ethusdt", BOOK, "trades.cmt_dogeusdt"):
        push(
            hub, session, peer, {"event": "error", "code": "40020", "msg": "x", "channel": channel}
        )
    push(hub, session, peer, depth_frame("CHANGED", 101, bid="99"))
    [book] = drain(buffer)
    assert book.data["version"] == 101
    assert trades.get() is None and not trades.closed
    assert {BOOK, "trades.cmt_dogeusdt"} <= hub.subscriptions
    # v3's error is the answer to a request: to one never made, or made and answered, it is
    # no answer to anything the connection awaits.
    assert (hub.health.errors, hub.health.skipped) == ((4, 0) if api == "v2" else (0, 4))


def test_a_book_acked_without_a_snapshot_asks_again_when_its_deadline_passes(api: str) -> None:
    hub = make_hub(config(api), snapshot_timeout=3.0)
    buffer = hub.open_stream(plan_order_book("BTCUSDT", 5))
    session = hub.acquire(BOOK, T0)
    peer = connect(hub, session)
    assert sent(peer, session) == [SUBSCRIBE]
    push(hub, session, peer, ack("subscribed"))  # acked at T0: the snapshot is due by T0 + 3
    push(hub, session, peer, depth_frame("CHANGED", 101))  # only deltas come
    assert hub.next_deadline(session) == T0 + 3.0
    hub.handle_timer(session, T0 + 2.9)
    assert sent(peer, session) == []
    hub.handle_timer(session, T0 + 3.0)
    assert sent(peer, session) == [UNSUBSCRIBE, SUBSCRIBE]
    assert hub.health.book_resyncs == 1
    assert hub.next_deadline(session) == T0 + 6.0
    resubscribe(hub, session, peer, depth_frame("SNAPSHOT", 200))
    [book] = drain(buffer)
    assert book.data["version"] == 200
    assert hub.next_deadline(session) is None  # a live book has no deadline


def test_a_book_whose_snapshots_never_come_ends_after_the_allowed_resyncs(api: str) -> None:
    hub = make_hub(config(api), snapshot_timeout=1.0)
    buffer = hub.open_stream(plan_order_book("BTCUSDT", 5))
    session = hub.acquire(BOOK, T0)
    peer = connect(hub, session)
    assert sent(peer, session) == [SUBSCRIBE]
    now = T0
    for _ in range(MAX_RESYNCS_WITHOUT_SNAPSHOT):  # the subscribe itself is never answered
        deadline = hub.next_deadline(session)
        assert deadline is not None and deadline > now
        now = deadline
        hub.handle_timer(session, now)
        assert sent(peer, session) == [UNSUBSCRIBE, SUBSCRIBE]
    deadline = hub.next_deadline(session)
    assert deadline is not None
    hub.handle_timer(session, deadline)
    assert sent(peer, session) == []
    with pytest.raises(OrderBookError, match="no snapshot within 1s"):
        buffer.get()
    assert hub.next_deadline(session) is None


def test_deltas_that_restart_below_the_live_book_resync_it(api: str) -> None:
    hub, session, peer, buffer = live_book_stream(api)  # live at version 100
    push(hub, session, peer, depth_frame("CHANGED", 90))  # a repeat: ignored
    push(hub, session, peer, depth_frame("CHANGED", 101))
    assert len(drain(buffer)) == 1 and sent(peer, session) == []
    for version in range(1, MAX_STALE_DELTAS + 1):  # the server restarted its sequence
        push(hub, session, peer, depth_frame("CHANGED", version))
    assert drain(buffer) == [] and sent(peer, session) == []
    push(hub, session, peer, depth_frame("CHANGED", MAX_STALE_DELTAS + 1))
    [notice] = drain(buffer)
    assert notice.data["resyncing"] and "versions went backwards" in notice.data["reason"]
    assert sent(peer, session) == [UNSUBSCRIBE, SUBSCRIBE]
