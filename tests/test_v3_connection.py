"""WeexConnection speaking v3 (`WeexConfig(api="v3")`) against a wsproto server peer."""

from __future__ import annotations

from typing import Any

import pytest

import weex_anyio
import weex_trio
from tests.wspeer import ServerPeer
from weex_proto import v3wire
from weex_proto.config import WeexConfig
from weex_proto.connection import WeexConnection
from weex_proto.dialects import V2, V3
from weex_proto.errors import ConfigError
from weex_proto.events import (
    Connected,
    Event,
    MessageReceived,
    Subscribed,
)
from weex_proto.subscriptions import SubscriptionBook

T0 = 1_700_000_000.0
V3_CONFIG = WeexConfig(api_key="key-123", secret_key="s3cr3t", passphrase="pass-phrase", api="v3")


def drain(conn: WeexConnection) -> list[Event]:
    return list(conn.events())


def open_v3(
    *, private: bool = False, book: SubscriptionBook | None = None
) -> tuple[WeexConnection, ServerPeer]:
    conn = WeexConnection(V3_CONFIG, private=private, subscriptions=book)
    peer = ServerPeer()
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    peer.receive(conn.data_to_send())
    opened = drain(conn)
    assert len(opened) == 1 and isinstance(opened[0], Connected)
    return conn, peer


# --- choosing the dialect ------------------------------------------------------------------


def test_v2_stays_the_default() -> None:
    config = WeexConfig()
    assert config.dialect is V2
    assert config.endpoint(private=False).path == "/v2/ws/public"


def test_api_v3_moves_default_urls_to_v3() -> None:
    assert V3_CONFIG.dialect is V3
    assert V3_CONFIG.endpoint(private=False).path == "/v3/ws/public"
    assert V3_CONFIG.endpoint(private=True).path == "/v3/ws/private"
    assert V3_CONFIG.endpoint(private=True).host == "ws-contract.weex.com"


def test_a_v3_url_implies_v3() -> None:
    config = WeexConfig(public_url="ws://127.0.0.1:9/v3/ws/public")
    assert config.api_version == "v3"
    # the private URL left at its default follows the dialect
    assert config.endpoint(private=True).path == "/v3/ws/private"


def test_contradicting_choices_are_refused() -> None:
    with pytest.raises(ConfigError, match="api is 'v2' but the URLs are v3"):
        WeexConfig(api="v2", public_url="ws://127.0.0.1:9/v3/ws/public")
    with pytest.raises(ConfigError, match="different API versions"):
        WeexConfig(
            public_url="ws://127.0.0.1:9/v3/ws/public",
            private_url="ws://127.0.0.1:9/v2/ws/private",
        )
    with pytest.raises(ConfigError, match="api must be"):
        WeexConfig(api="v4")


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v2", "v3"),
    [
        ("ticker.cmt_btcusdt", "BTCUSDT@ticker"),
        ("trades.cmt_ethusdt", "ETHUSDT@trade"),
        ("depth.cmt_btcusdt.15", "BTCUSDT@depth15"),
        ("depth.cmt_btcusdt.200", "BTCUSDT@depth200"),
        ("kline.LAST_PRICE.cmt_btcusdt.MINUTE_1", "BTCUSDT@kline_1m_LAST_PRICE"),
        ("kline.MARK_PRICE.cmt_btcusdt.MONTH_1", "BTCUSDT@kline_1M_MARK_PRICE"),
        ("kline.LAST_PRICE.cmt_btcusdt.HOUR_4", "BTCUSDT@kline_4h_LAST_PRICE"),
        ("account", "account"),
        ("positions", "positions"),
        ("orders", "orders"),
        ("fill", "fill"),
    ],
)
def test_channel_names(v2: str, v3: str) -> None:
    assert v3wire.wire_channel(v2) == v3


# --- requests and answers ------------------------------------------------------------------


def test_resubscribe_on_open_numbers_each_request_and_acks_by_id() -> None:
    book = SubscriptionBook()
    book.subscribe("ticker.cmt_btcusdt", T0)
    book.subscribe("depth.cmt_btcusdt.15", T0)
    conn, peer = open_v3(book=book)
    assert peer.json_sent() == [
        {"method": "SUBSCRIBE", "params": ["BTCUSDT@ticker"], "id": 1},
        {"method": "SUBSCRIBE", "params": ["BTCUSDT@depth15"], "id": 2},
    ]
    # Answered out of order, one with its id as text (ccxt sends string ids).
    conn.receive_data(peer.text({"result": True, "id": "2"}), T0 + 1)
    conn.receive_data(peer.text({"id": 1, "result": True}), T0 + 1)
    assert drain(conn) == [Subscribed("depth.cmt_btcusdt.15"), Subscribed("ticker.cmt_btcusdt")]
    assert conn.subscriptions.active == {"ticker.cmt_btcusdt", "depth.cmt_btcusdt.15"}


# --- heartbeat and system messages ---------------------------------------------------------


def test_pong_ids_and_request_ids_do_not_collide() -> None:
    conn, peer = open_v3()
    conn.receive_data(peer.text({"event": "ping", "time": "1"}), T0)
    conn.subscribe("ticker.cmt_btcusdt", T0)
    peer.receive(conn.data_to_send())
    ids = [message["id"] for message in peer.json_sent()]
    assert ids == [1, 2]
    conn.receive_data(peer.text({"result": True, "id": 2}), T0)
    assert Subscribed("ticker.cmt_btcusdt") in drain(conn)


def test_connected_greeting_is_taken_quietly() -> None:
    conn, peer = open_v3()
    drain(conn)
    conn.receive_data(peer.text({"event": "connected", "timestamp": 1776078750000}), T0)
    assert drain(conn) == []


# --- pushes --------------------------------------------------------------------------------


def test_depth_snapshot_event_is_a_snapshot() -> None:
    conn, peer = open_v3()
    frame = {
        "e": "depthSnapshot",
        "E": 1775120521971,
        "s": "ETHUSDT",
        "U": 10,
        "u": 12,
        "l": 15,
        "d": "SNAPSHOT",
        "b": [["2043.20", "40.724"]],
        "a": [["2043.21", "46.901"]],
    }
    conn.receive_data(peer.text(frame), T0)
    (event,) = [e for e in drain(conn) if isinstance(e, MessageReceived)]
    push = event.message
    assert push.channel == "depth.cmt_ethusdt.15"
    assert push.frame["data"][0]["depthType"] == "SNAPSHOT"


def test_trade_and_kline_snapshots_say_so() -> None:
    trades = v3wire.push_to_v2({"e": "tradeSnapshot", "s": "ETHUSDT", "d": []})
    assert isinstance(trades, dict) and trades["type"] == "snapshot"
    kline = v3wire.push_to_v2(
        {"e": "klineSnapshot", "s": "ETHUSDT", "p": "MARK_PRICE", "d": [{"i": "5m"}]}
    )
    assert isinstance(kline, dict)
    assert (kline["channel"], kline["type"]) == (
        "kline.MARK_PRICE.cmt_ethusdt.MINUTE_5",
        "snapshot",
    )


def test_v2_frames_still_read_on_a_v3_connection() -> None:
    """A v2-shaped push (a replayed recording, a proxy) is not refused by the v3 reader."""
    conn, peer = open_v3()
    drain(conn)
    push = {"event": "payload", "channel": "trades.cmt_btcusdt", "data": []}
    conn.receive_data(peer.text(push), T0)
    (event,) = drain(conn)
    assert isinstance(event, MessageReceived) and event.message.channel == "trades.cmt_btcusdt"


def test_answers_to_our_pongs_are_taken_quietly() -> None:
    """The public socket answers each PONG (docs/protocol-v3.md §3), whether the connection
    sent it for a ping or the user sent it by hand."""
    conn, peer = open_v3()
    conn.receive_data(peer.text({"event": "ping", "time": "1776078750000"}), T0)
    conn.send_pong("1693208170000", key="type")
    drain(conn)
    conn.receive_data(peer.text({"result": True, "id": 1}), T0 + 1)
    conn.receive_data(peer.text({"result": True, "id": "2"}), T0 + 1)
    assert drain(conn) == []


@pytest.mark.parametrize(
    "client_class", [weex_anyio.WeexWebSocketClient, weex_trio.WeexWebSocketClient]
)
def test_a_clients_endpoint_constants_are_its_generations(client_class: Any) -> None:
    """On the class, WEEX's default generation's URLs (v2); on a v3 client, v3's."""
    weex = "wss://ws-contract.weex.com"
    assert (
        f"{weex}/v2/ws/public",
        f"{weex}/v2/ws/private",
    ) == (client_class.PUBLIC_ENDPOINT, client_class.PRIVATE_ENDPOINT)
    v3_client = client_class(WeexConfig(api="v3"))
    assert (
        f"{weex}/v3/ws/public",
        f"{weex}/v3/ws/private",
    ) == (v3_client.PUBLIC_ENDPOINT, v3_client.PRIVATE_ENDPOINT)
    assert f"{weex}/v2/ws/public" == client_class(WeexConfig()).PUBLIC_ENDPOINT
