"""WeexConnection driven byte by byte against a wsproto server peer, on v2 and v3 alike.

A test that takes the `api` fixture runs once per dialect; the peer (tests/dialect_peer.py)
reads the client's requests back in v2's words and answers in the dialect's. v3-only facts
(ids, names, v3 pushes) are in tests/test_v3_connection.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.adapters import BOTH_DIALECTS
from tests.dialect_peer import DialectPeer, pong
from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, ConnectionState, WeexConnection
from weex_proto.errors import ErrorKind, LocalProtocolError
from weex_proto.events import (
    CloseInitiator,
    Connected,
    ConnectionClosed,
    ConnectionRejected,
    ErrorReceived,
    Event,
    MessageReceived,
    MessageSkipped,
    PingAnswered,
    PongReceived,
    Subscribed,
    Unsubscribed,
)
from weex_proto.heartbeat import Heartbeat, HeartbeatAction
from weex_proto.subscriptions import SubscriptionBook

T0 = 1_700_000_000.0


def credentials(api: str = "v2") -> WeexConfig:
    return WeexConfig(api_key="key-123", secret_key="s3cr3t", passphrase="pass-phrase", api=api)


CREDENTIALS = credentials()


@pytest.fixture(params=BOTH_DIALECTS)
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def drain(conn: WeexConnection) -> list[Event]:
    return list(conn.events())


def open_pair(
    api: str = "v2",
    *,
    private: bool = False,
    options: ConnectionOptions | None = None,
    book: SubscriptionBook | None = None,
) -> tuple[WeexConnection, DialectPeer, list[Event]]:
    conn = WeexConnection(credentials(api), private=private, options=options, subscriptions=book)
    peer = DialectPeer(api)
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    events = drain(conn)
    peer.receive(conn.data_to_send())
    return conn, peer, events


def test_public_handshake_sends_user_agent_and_path_without_credentials(api: str) -> None:
    conn = WeexConnection(credentials(api))
    peer = DialectPeer(api)
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    assert peer.request is not None
    assert peer.request.target == f"/{api}/ws/public"
    assert peer.request.host == "ws-contract.weex.com"
    headers = peer.headers()
    assert headers["user-agent"] == CREDENTIALS.user_agent
    assert not any(name.startswith("access-") for name in headers)
    assert conn.state is ConnectionState.CONNECTING


def test_private_handshake_is_signed_at_the_given_time(api: str) -> None:
    conn = WeexConnection(credentials(api), private=True)
    peer = DialectPeer(api)
    conn.initiate(T0 + 0.123)
    peer.receive(conn.data_to_send())
    assert peer.request is not None and peer.request.target == f"/{api}/ws/private"
    headers = peer.headers()
    timestamp = "1700000000123"
    expected = base64.b64encode(
        hmac.new(b"s3cr3t", f"{timestamp}/{api}/ws/private".encode(), hashlib.sha256).digest()
    ).decode()
    assert headers["access-timestamp"] == timestamp
    assert headers["access-sign"] == expected
    assert headers["access-key"] == "key-123"
    assert headers["access-passphrase"] == "pass-phrase"


def test_accept_emits_connected_and_resubscribes_desired_channels(api: str) -> None:
    book = SubscriptionBook()
    book.subscribe("ticker.cmt_btcusdt", T0)
    book.subscribe("depth.cmt_btcusdt.15", T0)
    conn, peer, events = open_pair(api, book=book)
    assert events == [Connected(False, ("ticker.cmt_btcusdt", "depth.cmt_btcusdt.15"))]
    assert peer.requests() == [
        {"event": "subscribe", "channel": "ticker.cmt_btcusdt"},
        {"event": "subscribe", "channel": "depth.cmt_btcusdt.15"},
    ]
    assert conn.is_open


def test_subscribe_when_open_sends_request_and_ack_updates_book(api: str) -> None:
    conn, peer, _ = open_pair(api)
    conn.subscribe("trades.cmt_ethusdt", T0 + 1)
    peer.receive(conn.data_to_send())
    assert peer.requests() == [{"event": "subscribe", "channel": "trades.cmt_ethusdt"}]
    conn.receive_data(peer.ack("trades.cmt_ethusdt"), T0 + 2)
    assert drain(conn) == [Subscribed("trades.cmt_ethusdt")]
    assert "trades.cmt_ethusdt" in conn.subscriptions.active
    conn.unsubscribe("trades.cmt_ethusdt", T0 + 3)
    peer.receive(conn.data_to_send())
    assert peer.requests()[-1] == {"event": "unsubscribe", "channel": "trades.cmt_ethusdt"}
    conn.receive_data(peer.ack("trades.cmt_ethusdt", "unsubscribe"), T0)
    assert drain(conn) == [Unsubscribed("trades.cmt_ethusdt")]
    assert conn.subscriptions.active == frozenset()


def test_subscribe_before_open_is_sent_on_accept(api: str) -> None:
    conn = WeexConnection(credentials(api))
    conn.subscribe("ticker.cmt_btcusdt", T0)
    assert conn.data_to_send() == b""
    peer = DialectPeer(api)
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    peer.receive(conn.data_to_send())
    assert peer.requests() == [{"event": "subscribe", "channel": "ticker.cmt_btcusdt"}]


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
@pytest.mark.parametrize("key", ["event", "type"])
def test_application_ping_is_answered_with_the_same_key_and_time(
    key: str, private: bool, api: str
) -> None:
    """v2 echoes the ping's key and `time`; v3 answers either form with a PONG request."""
    conn, peer, _ = open_pair(api, private=private)
    conn.receive_data(peer.text({key: "ping", "time": "1693208170000"}), T0 + 5)
    assert drain(conn) == [PingAnswered("1693208170000", key, T0 + 5, 1693208170.0)]
    peer.receive(conn.data_to_send())
    assert peer.json_sent() == [pong(api, key, "1693208170000", 1)]


@pytest.mark.parametrize("forced", ["event", "type"])
def test_pong_key_can_be_forced(forced: Any, api: str) -> None:
    conn, peer, _ = open_pair(api, options=ConnectionOptions(pong_key=forced))
    conn.receive_data(peer.text({"event": "ping", "time": "7"}), T0)
    conn.receive_data(peer.text({"type": "ping", "time": "8"}), T0)
    peer.receive(conn.data_to_send())
    assert peer.json_sent() == [pong(api, forced, "7", 1), pong(api, forced, "8", 2)]


def test_websocket_ping_is_answered_with_a_pong(api: str) -> None:
    conn, peer, _ = open_pair(api)
    conn.receive_data(peer.ping(b"abc"), T0)
    peer.receive(conn.data_to_send())
    assert peer.pongs == [b"abc"]
    assert drain(conn) == []


TICKER = {
    "event": "payload",
    "channel": "ticker.cmt_btcusdt",
    "data": [{"symbol": "cmt_btcusdt", "lastPrice": "102623.9"}],
}
PUSHES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "v2": (TICKER, TICKER),
    "v3": (  # on the wire, and the v2 frame it stands for
        {"e": "ticker", "E": 1693208170000, "s": "BTCUSDT", "d": [{"c": "102623.9"}]},
        {**TICKER, "time": 1693208170000},
    ),
}


def test_payload_becomes_message_with_receive_timestamp_and_raw_text(api: str) -> None:
    conn, peer, _ = open_pair(api)
    sent, frame = PUSHES[api]
    raw = json.dumps(sent)
    conn.receive_data(peer.text(raw), T0 + 9.5)
    [event] = drain(conn)
    assert isinstance(event, MessageReceived)
    message = event.message
    assert message.channel == "ticker.cmt_btcusdt"
    assert message.frame == frame
    assert message.timestamp == T0 + 9.5
    assert message.raw == raw
    assert message.received_at.timestamp() == T0 + 9.5


def test_private_payload_envelope_is_delivered(api: str) -> None:
    conn, peer, _ = open_pair(api, private=True)
    frame = {
        "type": "trade-event",
        "channel": "orders",
        "event": "payload",
        "msg": {"msgEvent": "OrderUpdate", "version": 1, "data": {"order": []}, "time": 1},
    }
    conn.receive_data(peer.push(frame), T0)
    [event] = drain(conn)
    assert isinstance(event, MessageReceived) and event.message.channel == "orders"
    assert event.message.frame == frame


def test_fragmented_message_is_reassembled(api: str) -> None:
    conn, peer, _ = open_pair(api)
    push = {"event": "payload", "channel": "trades.cmt_btcusdt", "data": ["x" * 300]}
    frame = json.dumps(peer.wire(push))
    conn.receive_data(peer.fragments(frame, 5), T0)
    [event] = drain(conn)
    assert isinstance(event, MessageReceived) and event.message.raw == frame


UNUSABLE = [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "frame is not a JSON object"),
    ('{"event": "surprise"}', "unknown event 'surprise'"),
    ('{"event": "payload"}', "payload without a channel"),
    ('{"event": "subscribed"}', "subscribed ack without a channel"),
    ("[" * 50_000, "invalid JSON"),
]
UNUSABLE_V3 = [  # v3's own: v2's above are read on v3 too
    ('{"e": ["ticker"]}', "v3 push without an event name (e)"),
    ('{"e": "bookTicker", "s": "ETHUSDT"}', "unknown v3 event 'bookTicker'"),
    ('{"e": "ticker", "s": "ETH USDT", "d": []}', "v3 ticker push without a symbol (s)"),
    ('{"e": "depth", "s": "ETHUSDT", "l": 16}', "v3 depth push without a depth of 15 or 200 (l)"),
    (
        '{"e": "kline", "s": "ETHUSDT", "p": "LAST_PRICE", "d": [{"i": ["1m"]}]}',
        "v3 kline push without a known interval (d[0].i)",
    ),
    ('{"result": true, "id": 99}', "answer to no request of ours"),
]


@pytest.mark.parametrize(
    ("api", "frame", "reason"),
    [("v2", *row) for row in UNUSABLE] + [("v3", *row) for row in UNUSABLE + UNUSABLE_V3],
)
def test_unusable_frames_are_skipped_and_the_connection_stays_open(
    api: str, frame: str, reason: str
) -> None:
    conn, peer, _ = open_pair(api)
    conn.receive_data(peer.text(frame), T0)
    [event] = drain(conn)
    assert isinstance(event, MessageSkipped)
    assert event.reason == reason
    assert conn.is_open
    conn.receive_data(peer.push({"event": "payload", "channel": "ticker.cmt_x", "data": []}), T0)
    assert isinstance(drain(conn)[0], MessageReceived)


def test_binary_frames_are_skipped(api: str) -> None:
    conn, peer, _ = open_pair(api)
    conn.receive_data(peer.binary(b"\x1f\x8b\x08"), T0)
    [event] = drain(conn)
    assert isinstance(event, MessageSkipped) and "binary" in event.reason


@pytest.mark.parametrize(
    ("frame", "kind", "code"),
    [
        (
            {"event": "error", "code": "40009", "msg": "API verification failed"},
            ErrorKind.AUTH,
            "40009",
        ),
        (
            {"event": "error", "code": "429", "msg": "Too many requests"},
            ErrorKind.RATE_LIMIT,
            "429",
        ),
        (
            {"event": "error", "code": 40020, "msg": "Parameter is invalid"},
            ErrorKind.OTHER,
            "40020",
        ),
        ({"code": "40030", "msg": "slow down"}, ErrorKind.RATE_LIMIT, "40030"),
        ({"event": "error", "msg": "request frequency too high"}, ErrorKind.RATE_LIMIT, None),
    ],
)
def test_error_frames_are_classified(
    frame: dict[str, Any], kind: ErrorKind, code: str, api: str
) -> None:
    """v2 sends error frames; v3 says no as the answer to a request, `result:false` with a
    `msg` (and, should it send one, a `code`), here to a subscribe it refuses."""
    conn, peer, _ = open_pair(api)
    channel = None
    if api == "v3":
        channel = "ticker.cmt_btcusdt"
        conn.subscribe(channel, T0)
        peer.receive(conn.data_to_send())
        frame = {"result": False, "id": 1} | {k: v for k, v in frame.items() if k != "event"}
    conn.receive_data(peer.text(frame), T0)
    [event] = drain(conn)
    assert isinstance(event, ErrorReceived)
    assert (event.kind, event.code, event.message, event.channel) == (
        kind,
        code,
        frame["msg"],
        channel,
    )
    assert conn.is_open


def test_error_naming_a_pending_channel_rejects_that_subscription(api: str) -> None:
    conn, peer, _ = open_pair(api)
    conn.subscribe("ticker.cmt_nope", T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.refuse("ticker.cmt_nope", "INVALID_ARGUMENT: invalid symbol"), T0)
    [event] = drain(conn)
    assert isinstance(event, ErrorReceived) and event.channel == "ticker.cmt_nope"
    assert event.message == "INVALID_ARGUMENT: invalid symbol" and event.refused
    assert "ticker.cmt_nope" not in conn.subscriptions.desired


def test_oversized_message_closes_with_1009(api: str) -> None:
    conn, peer, _ = open_pair(api, options=ConnectionOptions(max_message_size=1000))
    conn.receive_data(peer.text("x" * 1001), T0)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed)
    assert (event.code, event.initiator) == (1009, CloseInitiator.PROTOCOL_ERROR)
    peer.receive(conn.data_to_send())
    assert peer.closes and peer.closes[0][0] == 1009


def test_oversized_fragmented_message_is_stopped_before_it_completes(api: str) -> None:
    conn, peer, _ = open_pair(api, options=ConnectionOptions(max_message_size=1000))
    data = peer.fragments("y" * 5000, 10)
    conn.receive_data(data[:1600], T0)  # only part of the message has arrived
    events = drain(conn)
    assert [type(e) for e in events] == [ConnectionClosed]
    assert conn.state is ConnectionState.CLOSED


def test_exactly_max_size_message_is_accepted(api: str) -> None:
    conn, peer, _ = open_pair(api, options=ConnectionOptions(max_message_size=1000))
    body = json.dumps(peer.wire({"event": "payload", "channel": "ticker.cmt_x", "data": []}))
    conn.receive_data(peer.text(body + " " * (1000 - len(body))), T0)
    assert isinstance(drain(conn)[0], MessageReceived)


def test_garbage_bytes_after_handshake_close_with_protocol_error(api: str) -> None:
    conn, _, _ = open_pair(api)
    conn.receive_data(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", T0)
    events = drain(conn)
    assert isinstance(events[-1], ConnectionClosed)
    assert events[-1].initiator is CloseInitiator.PROTOCOL_ERROR
    assert conn.state is ConnectionState.CLOSED
    conn.receive_data(b"more garbage", T0)  # ignored once closed
    assert drain(conn) == []


def test_garbage_handshake_response_is_a_protocol_error(api: str) -> None:
    conn = WeexConnection(credentials(api))
    conn.initiate(T0)
    conn.receive_data(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", T0)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed)
    assert event.initiator is CloseInitiator.PROTOCOL_ERROR


def test_http_rejection_with_weex_error_body_is_classified_as_auth(api: str) -> None:
    conn = WeexConnection(credentials(api), private=True)
    peer = DialectPeer(api)
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    body = b'{"code":"40009","msg":"API verification failed","requestTime":1,"data":null}'
    conn.receive_data(peer.reject(401, body), T0)
    events = drain(conn)
    assert events[0] == ConnectionRejected(401, "API verification failed", ErrorKind.AUTH, body)
    assert isinstance(events[1], ConnectionClosed)
    assert events[1].initiator is CloseInitiator.REMOTE


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
@pytest.mark.parametrize("status", [401, 403])
def test_only_a_connection_that_sent_credentials_reads_401_403_as_an_auth_failure(
    private: bool, status: int, api: str
) -> None:
    conn = WeexConnection(credentials(api), private=private)
    peer = DialectPeer(api)
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.reject(status, b'{"code":"40009","msg":"API verification failed"}'), T0)
    event = drain(conn)[0]
    assert isinstance(event, ConnectionRejected)
    assert event.kind is (ErrorKind.AUTH if private else ErrorKind.OTHER)


@pytest.mark.parametrize(("status", "kind"), [(429, ErrorKind.RATE_LIMIT), (503, ErrorKind.OTHER)])
def test_http_rejection_without_body(status: int, kind: ErrorKind, api: str) -> None:
    conn = WeexConnection(credentials(api))
    peer = DialectPeer(api)
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.reject(status), T0)
    event = drain(conn)[0]
    assert isinstance(event, ConnectionRejected)
    assert (event.status_code, event.kind) == (status, kind)


def test_handshake_timeout(api: str) -> None:
    conn = WeexConnection(credentials(api), options=ConnectionOptions(handshake_timeout=3))
    conn.initiate(T0)
    assert conn.next_deadline() == T0 + 3
    conn.handle_timer(T0 + 2.9)
    assert drain(conn) == []
    conn.handle_timer(T0 + 3)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed) and event.initiator is CloseInitiator.TIMEOUT


def test_idle_connection_pings_then_dies_after_interval_plus_timeout(api: str) -> None:
    conn, peer, _ = open_pair(api, options=ConnectionOptions(ping_interval=20, ping_timeout=10))
    assert conn.next_deadline() == T0 + 20
    conn.handle_timer(T0 + 20)
    peer.receive(conn.data_to_send())
    assert len(peer.pings) == 1
    assert conn.next_deadline() == T0 + 30
    conn.handle_timer(T0 + 29.99)
    assert drain(conn) == [] and conn.is_open
    conn.handle_timer(T0 + 30)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed) and event.initiator is CloseInitiator.TIMEOUT


def test_any_traffic_keeps_the_connection_alive_and_pong_reports_round_trip(api: str) -> None:
    conn, peer, _ = open_pair(api, options=ConnectionOptions(ping_interval=20, ping_timeout=10))
    conn.handle_timer(T0 + 20)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.pong(peer.pings[0]), T0 + 20.25)
    assert drain(conn) == [PongReceived(0.25)]
    assert conn.next_deadline() == T0 + 40.25
    conn.receive_data(peer.text({"event": "ping", "time": "1"}), T0 + 35)
    drain(conn)
    assert conn.next_deadline() == T0 + 55
    conn.handle_timer(T0 + 50)
    assert conn.is_open


def test_no_protocol_pings_still_detects_dead_peer(api: str) -> None:
    options = ConnectionOptions(ping_interval=5, ping_timeout=5, send_protocol_pings=False)
    conn, peer, _ = open_pair(api, options=options)
    assert conn.next_deadline() == T0 + 10
    conn.handle_timer(T0 + 10)
    peer.receive(conn.data_to_send())
    assert peer.pings == []
    assert isinstance(drain(conn)[0], ConnectionClosed)


def test_heartbeat_can_be_disabled(api: str) -> None:
    conn, _, _ = open_pair(api, options=ConnectionOptions(ping_interval=None))
    assert conn.next_deadline() is None
    conn.handle_timer(T0 + 10_000)
    assert conn.is_open


def test_local_close_handshake_completes_when_peer_answers(api: str) -> None:
    conn, peer, _ = open_pair(api)
    conn.subscribe("ticker.cmt_btcusdt", T0)
    conn.close(T0, 1000, "bye")
    assert conn.state is ConnectionState.CLOSING
    peer.receive(conn.data_to_send())
    assert peer.closes == [(1000, "bye")]
    conn.receive_data(peer.conn.send(peer_close_response(peer)), T0 + 1)
    [event] = drain(conn)
    assert event == ConnectionClosed(1000, "bye", CloseInitiator.LOCAL)
    assert conn.subscriptions.desired == ("ticker.cmt_btcusdt",)
    assert conn.subscriptions.active == frozenset()


def peer_close_response(peer: ServerPeer) -> Any:
    from wsproto.events import CloseConnection

    code, reason = peer.closes[-1]
    return CloseConnection(code=code, reason=reason)


def test_local_close_times_out_when_peer_is_silent(api: str) -> None:
    conn, _, _ = open_pair(api, options=ConnectionOptions(close_timeout=2))
    conn.close(T0)
    assert conn.next_deadline() == T0 + 2
    conn.handle_timer(T0 + 2)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed) and event.initiator is CloseInitiator.TIMEOUT


def test_remote_close_is_answered(api: str) -> None:
    conn, peer, _ = open_pair(api)
    conn.receive_data(peer.close(1001, "maintenance"), T0)
    [event] = drain(conn)
    assert event == ConnectionClosed(1001, "maintenance", CloseInitiator.REMOTE)
    # wsproto on the server side moves to CLOSED once it sees our answering close frame
    peer.receive(conn.data_to_send())
    assert peer.closes[-1][0] == 1001


def test_eof_is_a_transport_close(api: str) -> None:
    conn, _, _ = open_pair(api)
    conn.receive_data(None, T0)
    assert drain(conn) == [ConnectionClosed(1006, "connection lost", CloseInitiator.TRANSPORT)]
    assert conn.state is ConnectionState.CLOSED


def test_sending_requires_an_open_connection(api: str) -> None:
    conn = WeexConnection(credentials(api))
    with pytest.raises(LocalProtocolError):
        conn.send_message({"event": "subscribe", "channel": "x"})
    with pytest.raises(LocalProtocolError):
        conn.send_pong("1")
    conn.initiate(T0)
    with pytest.raises(LocalProtocolError):
        conn.initiate(T0)


def test_send_message_and_send_pong_when_open(api: str) -> None:
    conn, peer, _ = open_pair(api)
    conn.send_message({"event": "subscribe", "channel": "ticker.cmt_ethusdt"})
    conn.send_message("raw text")
    conn.send_pong("99", key="type")
    peer.receive(conn.data_to_send())
    assert peer.texts == [
        '{"event":"subscribe","channel":"ticker.cmt_ethusdt"}',
        "raw text",
        json.dumps(pong(api, "type", "99", 1), separators=(",", ":")),
    ]


def test_repr_has_no_secrets(api: str) -> None:
    conn = WeexConnection(credentials(api), private=True)
    conn.initiate(T0)
    text = repr(conn) + repr(conn.config)
    for secret in ("s3cr3t", "pass-phrase"):
        assert secret not in text


# --------------------------------------------------------------------------- properties

ACKS: dict[str, dict[str, Any]] = {
    "v2": {"event": "subscribed", "channel": "ticker.cmt_btcusdt"},
    "v3": {"result": True, "id": 1},
}


def _client(api: str) -> WeexConnection:
    """A connection that asks for BTC's ticker (request 1 on v3) as it opens."""
    book = SubscriptionBook()
    book.subscribe("ticker.cmt_btcusdt", T0)
    conn = WeexConnection(credentials(api), subscriptions=book)
    conn.initiate(T0)
    return conn


def _handshaken_peer(api: str) -> DialectPeer:
    peer = DialectPeer(api)
    peer.receive(_client(api).data_to_send())
    return peer


def _server_stream(peer: DialectPeer) -> bytes:
    btc = {"event": "payload", "channel": "ticker.cmt_btcusdt", "data": [{"lastPrice": "1"}]}
    eth = {"event": "payload", "channel": "trades.cmt_ethusdt", "data": [{"price": "é" * 200}]}
    frames = [
        peer.accept(),
        peer.text(ACKS[peer.api]),
        peer.push(btc),
        peer.ping(b"p1"),
        peer.text({"event": "ping", "time": "123"}),
        peer.fragments(json.dumps(peer.wire(eth)), 4),
        peer.text("not json"),
        peer.text({"type": "ping", "time": "124"}),
        peer.close(1000, "done"),
    ]
    return b"".join(frames)


def _replay(api: str, cuts: list[int]) -> tuple[list[Event], list[object]]:
    """Run the scripted stream through a fresh connection, cut at the given offsets.

    The stream is rebuilt per run because the server's accept header depends on the
    client's random Sec-WebSocket-Key; everything else in it is byte-for-byte the same.
    """
    conn = _client(api)
    peer = DialectPeer(api)
    peer.receive(conn.data_to_send())
    stream = _server_stream(peer)
    events: list[Event] = []
    sent = b""
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        if cut > start:
            conn.receive_data(stream[start:cut], T0)
            start = cut
        events.extend(conn.events())
        sent += conn.data_to_send()
    # Client frames are masked with random keys, so compare what the server decodes.
    peer.receive(sent)
    return events, [peer.requests(), peer.pongs, peer.closes]


STREAM_LENGTH = max(len(_server_stream(_handshaken_peer(api))) for api in BOTH_DIALECTS)


@pytest.mark.parametrize("api", BOTH_DIALECTS)
@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=STREAM_LENGTH), max_size=40))
def test_random_byte_splits_give_identical_events_and_replies(api: str, cuts: list[int]) -> None:
    whole_events, whole_sent = _replay(api, [])
    split_events, split_sent = _replay(api, cuts)
    assert split_events == whole_events
    assert split_sent == whole_sent
    texts, pongs, closes = whole_sent
    assert texts == [
        {"event": "subscribe", "channel": "ticker.cmt_btcusdt"},
        pong(api, "event", "123", 2),
        pong(api, "type", "124", 3),
    ]
    assert pongs == [b"p1"]
    assert closes == [(1000, "done")]
    kinds = [type(e).__name__ for e in whole_events]
    assert kinds == [
        "Connected",
        "Subscribed",
        "MessageReceived",
        "PingAnswered",
        "MessageReceived",
        "MessageSkipped",
        "PingAnswered",
        "ConnectionClosed",
    ]


@pytest.mark.parametrize("api", BOTH_DIALECTS)
@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.booleans())
def test_arbitrary_bytes_never_raise(api: str, garbage: bytes, after_handshake: bool) -> None:
    if after_handshake:
        conn, _, _ = open_pair(api)
    else:
        conn = WeexConnection(credentials(api))
        conn.initiate(T0)
    conn.receive_data(garbage, T0)
    events = drain(conn)
    conn.handle_timer(T0 + 1000)
    events += drain(conn)
    conn.data_to_send()
    assert all(isinstance(e, Event) for e in events)


def test_stale_feed_is_closed_so_the_session_reconnects(api: str) -> None:
    options = ConnectionOptions(ping_interval=None, stale_timeout=30)
    conn, peer, _ = open_pair(api, options=options)
    assert conn.next_deadline() is None  # nothing subscribed: silence is fine
    conn.subscribe("ticker.cmt_btcusdt", T0 + 10)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.ack("ticker.cmt_btcusdt"), T0 + 10)
    assert conn.next_deadline() == T0 + 40
    push = {"event": "payload", "channel": "ticker.cmt_btcusdt", "data": []}
    conn.receive_data(peer.push(push), T0 + 20)
    assert conn.next_deadline() == T0 + 50
    conn.receive_data(peer.text({"event": "ping", "time": "1"}), T0 + 45)  # pings are not data
    drain(conn)
    conn.handle_timer(T0 + 50)
    assert conn.state is ConnectionState.CLOSING
    peer.receive(conn.data_to_send())
    assert peer.closes == [(1001, "no data for 30s")]


def test_stale_and_heartbeat_deadlines_combine(api: str) -> None:
    options = ConnectionOptions(ping_interval=20, ping_timeout=10, stale_timeout=15)
    conn, peer, _ = open_pair(api, options=options)
    conn.subscribe("trades.cmt_btcusdt", T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.ack("trades.cmt_btcusdt"), T0)
    assert conn.next_deadline() == T0 + 15


def test_stale_timeout_bounds_a_subscribe_the_server_never_answers(api: str) -> None:
    options = ConnectionOptions(ping_interval=20, ping_timeout=10, stale_timeout=15)
    conn, peer, _ = open_pair(api, options=options)
    conn.subscribe("ticker.cmt_btcusdt", T0 + 100)  # long after the open: its own clock
    conn.receive_data(peer.text({"event": "ping", "time": "1"}), T0 + 105)  # pings answered
    conn.subscribe("trades.cmt_btcusdt", T0 + 110)
    drain(conn)
    peer.receive(conn.data_to_send())
    assert conn.next_deadline() == T0 + 115  # the oldest unanswered subscribe + 15
    conn.receive_data(peer.ack("ticker.cmt_btcusdt"), T0 + 112)
    assert conn.next_deadline() == T0 + 125  # the trades subscribe is still unanswered
    push = {"event": "payload", "channel": "ticker.cmt_btcusdt", "data": []}
    conn.receive_data(peer.push(push), T0 + 124)
    drain(conn)
    conn.handle_timer(T0 + 125)  # data flows on one channel, the other was never answered
    assert conn.state is ConnectionState.CLOSING
    peer.receive(conn.data_to_send())
    assert peer.closes == [(1001, "no answer to subscribe trades.cmt_btcusdt for 15s")]


def test_an_answered_or_refused_subscribe_no_longer_bounds_the_connection(api: str) -> None:
    options = ConnectionOptions(ping_interval=None, stale_timeout=15)
    conn, peer, _ = open_pair(api, options=options)
    conn.subscribe("ticker.cmt_nosuchusdt", T0)
    assert conn.next_deadline() == T0 + 15
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.refuse("ticker.cmt_nosuchusdt"), T0 + 1)
    assert conn.next_deadline() is None  # refused: nothing is awaited any more


def test_ping_arriving_while_our_close_is_pending_is_ignored(api: str) -> None:
    conn, peer, _ = open_pair(api)
    pings = peer.text({"event": "ping", "time": "5"}) + peer.text("ping")  # already in flight
    conn.close(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(pings, T0)
    assert drain(conn) == []
    assert conn.state is ConnectionState.CLOSING
    peer.receive(conn.data_to_send())
    assert peer.texts == []


# --------------------------------------------------------------------------- close frames we send


def raw_frame(first: int, payload: bytes) -> bytes:
    """A short server frame by hand (wsproto's server would refuse to send the bad ones)."""
    assert len(payload) < 126
    return bytes([first, len(payload)]) + payload


FAILING_FRAMES: dict[str, tuple[Callable[[ServerPeer], bytes], int]] = {
    "too big": (lambda peer: peer.text("x" * 1001), 1009),
    "too big in bytes": (lambda peer: peer.text("\N{GRINNING FACE}" * 251), 1009),
    "invalid utf-8": (lambda peer: raw_frame(0x81, b'{"a":"\xc3\x28"}'), 1007),
    "invalid utf-8 fragment": (
        lambda peer: raw_frame(0x01, b'{"a":"') + raw_frame(0x80, b'\xff"}'),
        1007,
    ),
    "reserved bits": (lambda peer: raw_frame(0xC1, b"{}"), 1002),
    "unknown opcode": (lambda peer: raw_frame(0x83, b"{}"), 1002),
}


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "wsproto"])
@pytest.mark.parametrize("failure", list(FAILING_FRAMES))
def test_a_connection_we_fail_queues_a_close_with_its_code(
    fast_path: bool, failure: str, api: str
) -> None:
    make_frame, code = FAILING_FRAMES[failure]
    options = ConnectionOptions(max_message_size=1000, fast_path=fast_path)
    conn, peer, _ = open_pair(api, options=options)
    conn.receive_data(make_frame(peer), T0)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed)
    assert (event.code, event.initiator) == (code, CloseInitiator.PROTOCOL_ERROR)
    assert conn.expects_peer_close  # the adapter lets the peer hang up before closing
    peer.receive(conn.data_to_send())
    assert [received for received, _ in peer.closes] == [code]


def test_expects_peer_close_only_while_our_close_is_unanswered(api: str) -> None:
    conn, peer, _ = open_pair(api)
    assert not conn.expects_peer_close
    conn.close(T0)
    assert conn.expects_peer_close  # CLOSING: e.g. cancelled from outside, still waiting
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.conn.send(peer_close_response(peer)), T0)
    assert conn.state is ConnectionState.CLOSED and not conn.expects_peer_close

    answered, peer, _ = open_pair(api)
    answered.receive_data(peer.close(1001, "maintenance"), T0)
    assert answered.state is ConnectionState.CLOSED and not answered.expects_peer_close

    timed_out, _, _ = open_pair(api, options=ConnectionOptions(close_timeout=2))
    timed_out.close(T0)
    timed_out.handle_timer(T0 + 2)
    assert timed_out.state is ConnectionState.CLOSED and not timed_out.expects_peer_close

    hung_up, _, _ = open_pair(api)
    hung_up.close(T0)
    hung_up.receive_data(None, T0)
    assert hung_up.state is ConnectionState.CLOSED and not hung_up.expects_peer_close


def test_too_big_while_our_close_is_pending_ends_with_1009_and_sends_nothing_more(api: str) -> None:
    conn, peer, _ = open_pair(api, options=ConnectionOptions(max_message_size=1000))
    in_flight = peer.text("x" * 1001)  # sent before our Close reached the server
    conn.close(T0, 1000, "bye")
    peer.receive(conn.data_to_send())
    conn.receive_data(in_flight, T0)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed)
    assert (event.code, event.initiator) == (1009, CloseInitiator.PROTOCOL_ERROR)
    assert conn.data_to_send() == b""  # one Close per connection (RFC 6455 §5.5.1)
    assert peer.closes == [(1000, "bye")]


# --------------------------------------------------------------------------- sizes in bytes


SIZED = {
    "v2": {"event": "payload", "channel": "trades.cmt_btcusdt", "data": ""},
    "v3": {"e": "trade", "s": "BTCUSDT", "d": ""},
}


def sized_push(size: int, fill: str, api: str = "v2") -> str:
    """A payload push of exactly `size` UTF-8 bytes, mostly `fill` (a 4-byte emoji, say)."""
    head = json.dumps(SIZED[api])[:-2]
    room = size - len(head.encode()) - 2
    body = fill * (room // len(fill.encode()))
    text = head + body + " " * (room - len(body.encode())) + '"}'
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "wsproto"])
@pytest.mark.parametrize("parts", [1, 7])
def test_max_message_size_counts_utf8_bytes_not_characters(
    fast_path: bool, parts: int, api: str
) -> None:
    options = ConnectionOptions(max_message_size=1000, fast_path=fast_path)
    emoji = "\N{GRINNING FACE}"
    fits, too_big = sized_push(1000, emoji, api), sized_push(1001, emoji, api)
    assert len(too_big) < 300  # characters: counting those would let it through

    conn, peer, _ = open_pair(api, options=options)
    conn.receive_data(peer.fragments(fits, parts) if parts > 1 else peer.text(fits), T0)
    [received] = drain(conn)
    assert isinstance(received, MessageReceived) and received.message.raw == fits

    conn.receive_data(peer.fragments(too_big, parts) if parts > 1 else peer.text(too_big), T0)
    [closed] = drain(conn)
    assert isinstance(closed, ConnectionClosed) and closed.code == 1009


def test_rtt_interval_pings_a_busy_connection_and_measures_each_round_trip() -> None:
    """The heartbeat alone: WebSocket pings, the same in either dialect.

    Traffic never pauses for `ping_interval`, so only `rtt_interval` sends pings: one at a
    time (none while one is unanswered), and each pong gives the round trip."""
    beat = Heartbeat(interval=5.0, timeout=5.0, send_pings=True, rtt_interval=1.0)
    idle = Heartbeat(interval=5.0, timeout=5.0, send_pings=True)
    for heartbeat in (beat, idle):
        heartbeat.start(0.0)
    round_trips = []
    now = 0.0
    while now < 10.0:
        now = round(now + 0.1, 1)
        for heartbeat in (beat, idle):
            heartbeat.traffic(now)  # a push every 0.1 s
            if heartbeat.poll(now) is HeartbeatAction.SEND_PING:
                assert heartbeat is beat
                payload = heartbeat.ping_payload(now)
                assert heartbeat.poll(now) is HeartbeatAction.NOTHING  # one at a time
                round_trips.append(heartbeat.pong(payload, now + 0.05))
    assert len(round_trips) >= 8 and all(rtt == pytest.approx(0.05) for rtt in round_trips)
