"""ClientHub: the adapter-independent client logic, tested without any event loop."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions
from weex_proto.errors import ConfigError, ReconnectExhaustedError, ServerError
from weex_proto.events import WebSocketMessage
from weex_proto.fanout import BufferClosed, OverflowPolicy
from weex_proto.hub import ClientHub, plan_order_book, plan_private, plan_tickers, plan_trades
from weex_proto.session import GiveUp, Reconnect, WeexSession

T0 = 1_700_000_000.0


def make_hub(config: WeexConfig | None = None, **kwargs: Any) -> ClientHub:
    return ClientHub(
        config or WeexConfig(api_key="k", secret_key="s", passphrase="p"),
        options=ConnectionOptions(),
        rng=random.Random(1),
        **kwargs,
    )


def connect(hub: ClientHub, session: WeexSession) -> ServerPeer:
    conn = hub.start_attempt(session, T0)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    assert hub.handle_events(session, conn, T0) is None
    peer.receive(conn.data_to_send())
    return peer


def push(hub: ClientHub, session: WeexSession, peer: ServerPeer, frame: dict[str, Any]) -> None:
    conn = session.connection
    assert conn is not None
    conn.receive_data(peer.text(frame), T0)
    hub.handle_events(session, conn, T0)


def ticker_frame(symbol: str, price: str) -> dict[str, Any]:
    return {"event": "payload", "channel": f"ticker.{symbol}", "data": [{"lastPrice": price}]}


def test_plans_build_wire_channels_and_policies() -> None:
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


def test_streams_and_user_share_one_subscription() -> None:
    hub = make_hub()
    session = hub.acquire("ticker.cmt_btcusdt", T0)
    hub.acquire("ticker.cmt_btcusdt", T0)
    assert hub.user_subscribe("ticker.cmt_btcusdt", T0) is session
    assert hub.user_subscribe("ticker.cmt_btcusdt", T0) is None  # idempotent
    assert session.subscriptions.desired == ("ticker.cmt_btcusdt",)
    peer = connect(hub, session)
    assert peer.json_sent() == [{"event": "subscribe", "channel": "ticker.cmt_btcusdt"}]
    assert hub.release("ticker.cmt_btcusdt", T0) is None
    assert hub.release("ticker.cmt_btcusdt", T0) is None
    assert hub.user_unsubscribe("ticker.cmt_btcusdt", T0) is session
    conn = session.connection
    assert conn is not None
    peer.receive(conn.data_to_send())
    assert peer.json_sent()[-1] == {"event": "unsubscribe", "channel": "ticker.cmt_btcusdt"}
    assert hub.subscriptions == frozenset()


def test_private_channels_need_credentials() -> None:
    hub = make_hub(WeexConfig())
    with pytest.raises(ConfigError):
        hub.acquire("orders", T0)
    assert hub.refs.count("orders") == 0


def test_messages_reach_buffers_and_handlers_and_failures_are_isolated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = make_hub()
    plan = plan_tickers(["BTCUSDT"])
    buffer = hub.open_stream(plan)
    woken: list[int] = []
    buffer.waker = lambda: woken.append(1)
    seen: list[str] = []

    def broken(message: WebSocketMessage) -> None:
        raise RuntimeError("handler bug")

    hub.add_handler("ticker.*", broken)
    hub.add_handler("ticker.cmt_btcusdt", lambda m: seen.append(m.data["data"][0]["lastPrice"]))
    session = hub.acquire("ticker.cmt_btcusdt", T0)
    peer = connect(hub, session)
    with caplog.at_level(logging.ERROR, logger="weex_ws"):
        push(hub, session, peer, ticker_frame("cmt_btcusdt", "1.5"))
    assert seen == ["1.5"]
    assert "handler bug" in caplog.text
    message = buffer.get()
    assert message is not None
    assert message.data["data"][0]["lastPrice"] == "1.5"
    assert woken == [1]
    assert hub.health.messages == 1
    hub.close_stream(plan, buffer)
    with pytest.raises(BufferClosed):
        buffer.get()


async def _async_handler(message: WebSocketMessage) -> None:
    return None


def test_async_handlers_get_a_bounded_buffer_and_can_be_removed() -> None:
    hub = make_hub(buffer_size=2)
    buffer = hub.add_handler("trades.*", _async_handler)
    assert buffer is not None
    session = hub.acquire("trades.cmt_btcusdt", T0)
    peer = connect(hub, session)
    for n in range(3):
        frame = {"event": "payload", "channel": "trades.cmt_btcusdt", "data": [{"n": n}]}
        push(hub, session, peer, frame)
    assert len(buffer) == 2
    assert buffer.dropped == 1
    assert hub.remove_handler("trades.*", _async_handler) == 1
    assert buffer.closed


def test_reconnect_marks_gaps_and_tells_the_callback() -> None:
    gaps: list[tuple[str, tuple[str, ...]]] = []
    hub = make_hub(on_gap=lambda endpoint, channels: gaps.append((endpoint, channels)))
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


def test_giving_up_fails_every_stream_of_that_endpoint() -> None:
    hub = make_hub(max_retries=0)
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


def test_server_refusing_a_channel_ends_the_stream_that_wanted_it() -> None:
    hub = make_hub()
    plan = plan_trades("DOGEUSDT")
    buffer = hub.open_stream(plan)
    session = hub.acquire("trades.cmt_dogeusdt", T0)
    peer = connect(hub, session)
    error = {"event": "error", "code": "40020", "msg": "bad channel", "channel": plan.channels[0]}
    push(hub, session, peer, error)
    with pytest.raises(ServerError, match="bad channel"):
        buffer.get()
    assert "trades.cmt_dogeusdt" not in hub.subscriptions
