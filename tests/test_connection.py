"""WeexConnection driven byte by byte against a wsproto server peer."""

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
CREDENTIALS = WeexConfig(api_key="key-123", secret_key="s3cr3t", passphrase="pass-phrase")


def drain(conn: WeexConnection) -> list[Event]:
    return list(conn.events())


def open_pair(
    *,
    private: bool = False,
    options: ConnectionOptions | None = None,
    book: SubscriptionBook | None = None,
) -> tuple[WeexConnection, ServerPeer, list[Event]]:
    conn = WeexConnection(CREDENTIALS, private=private, options=options, subscriptions=book)
    peer = ServerPeer()
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    events = drain(conn)
    peer.receive(conn.data_to_send())
    return conn, peer, events


def test_public_handshake_sends_user_agent_and_path_without_credentials() -> None:
    conn = WeexConnection(CREDENTIALS)
    peer = ServerPeer()
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    assert peer.request is not None
    assert peer.request.target == "/v2/ws/public"
    assert peer.request.host == "ws-contract.weex.com"
    headers = peer.headers()
    assert headers["user-agent"] == CREDENTIALS.user_agent
    assert not any(name.startswith("access-") for name in headers)
    assert conn.state is ConnectionState.CONNECTING


def test_private_handshake_is_signed_at_the_given_time() -> None:
    conn = WeexConnection(CREDENTIALS, private=True)
    peer = ServerPeer()
    conn.initiate(T0 + 0.123)
    peer.receive(conn.data_to_send())
    assert peer.request is not None and peer.request.target == "/v2/ws/private"
    headers = peer.headers()
    timestamp = "1700000000123"
    expected = base64.b64encode(
        hmac.new(b"s3cr3t", (timestamp + "/v2/ws/private").encode(), hashlib.sha256).digest()
    ).decode()
    assert headers["access-timestamp"] == timestamp
    assert headers["access-sign"] == expected
    assert headers["access-key"] == "key-123"
    assert headers["access-passphrase"] == "pass-phrase"


def test_accept_emits_connected_and_resubscribes_desired_channels() -> None:
    book = SubscriptionBook()
    book.subscribe("ticker.cmt_btcusdt", T0)
    book.subscribe("depth.cmt_btcusdt.15", T0)
    conn, peer, events = open_pair(book=book)
    assert events == [Connected(False, ("ticker.cmt_btcusdt", "depth.cmt_btcusdt.15"))]
    assert peer.json_sent() == [
        {"event": "subscribe", "channel": "ticker.cmt_btcusdt"},
        {"event": "subscribe", "channel": "depth.cmt_btcusdt.15"},
    ]
    assert conn.is_open


def test_subscribe_when_open_sends_request_and_ack_updates_book() -> None:
    conn, peer, _ = open_pair()
    conn.subscribe("trades.cmt_ethusdt", T0 + 1)
    peer.receive(conn.data_to_send())
    assert peer.json_sent() == [{"event": "subscribe", "channel": "trades.cmt_ethusdt"}]
    conn.receive_data(peer.text({"event": "subscribed", "channel": "trades.cmt_ethusdt"}), T0 + 2)
    assert drain(conn) == [Subscribed("trades.cmt_ethusdt")]
    assert "trades.cmt_ethusdt" in conn.subscriptions.active
    conn.unsubscribe("trades.cmt_ethusdt", T0 + 3)
    peer.receive(conn.data_to_send())
    assert peer.json_sent()[-1] == {"event": "unsubscribe", "channel": "trades.cmt_ethusdt"}
    conn.receive_data(peer.text({"event": "unsubscribed", "channel": "trades.cmt_ethusdt"}), T0)
    assert drain(conn) == [Unsubscribed("trades.cmt_ethusdt")]
    assert conn.subscriptions.active == frozenset()


def test_subscribe_before_open_is_sent_on_accept() -> None:
    conn = WeexConnection(CREDENTIALS)
    conn.subscribe("ticker.cmt_btcusdt", T0)
    assert conn.data_to_send() == b""
    peer = ServerPeer()
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    peer.receive(conn.data_to_send())
    assert peer.json_sent() == [{"event": "subscribe", "channel": "ticker.cmt_btcusdt"}]


@pytest.mark.parametrize("key", ["event", "type"])
def test_application_ping_is_answered_with_the_same_key_and_time(key: str) -> None:
    conn, peer, _ = open_pair()
    conn.receive_data(peer.text({key: "ping", "time": "1693208170000"}), T0 + 5)
    assert drain(conn) == [PingAnswered("1693208170000", key, T0 + 5, 1693208170.0)]
    peer.receive(conn.data_to_send())
    assert peer.json_sent() == [{key: "pong", "time": "1693208170000"}]


def test_private_style_ping_with_type_and_event_payload_fields() -> None:
    conn, peer, _ = open_pair()
    conn.receive_data(peer.text({"type": "ping", "time": "42"}), T0)
    peer.receive(conn.data_to_send())
    assert peer.json_sent() == [{"type": "pong", "time": "42"}]


@pytest.mark.parametrize("forced", ["event", "type"])
def test_pong_key_can_be_forced(forced: Any) -> None:
    conn, peer, _ = open_pair(options=ConnectionOptions(pong_key=forced))
    conn.receive_data(peer.text({"event": "ping", "time": "7"}), T0)
    conn.receive_data(peer.text({"type": "ping", "time": "8"}), T0)
    peer.receive(conn.data_to_send())
    assert peer.json_sent() == [{forced: "pong", "time": "7"}, {forced: "pong", "time": "8"}]


def test_websocket_ping_is_answered_with_a_pong() -> None:
    conn, peer, _ = open_pair()
    conn.receive_data(peer.ping(b"abc"), T0)
    peer.receive(conn.data_to_send())
    assert peer.pongs == [b"abc"]
    assert drain(conn) == []


def test_payload_becomes_message_with_receive_timestamp_and_raw_text() -> None:
    conn, peer, _ = open_pair()
    frame = {
        "event": "payload",
        "channel": "ticker.cmt_btcusdt",
        "data": [{"symbol": "cmt_btcusdt", "lastPrice": "102623.9"}],
    }
    raw = json.dumps(frame)
    conn.receive_data(peer.text(raw), T0 + 9.5)
    [event] = drain(conn)
    assert isinstance(event, MessageReceived)
    message = event.message
    assert message.channel == "ticker.cmt_btcusdt"
    assert message.frame == frame
    assert message.timestamp == T0 + 9.5
    assert message.raw == raw
    assert message.received_at.timestamp() == T0 + 9.5


def test_private_payload_envelope_is_delivered() -> None:
    conn, peer, _ = open_pair(private=True)
    frame = {
        "type": "trade-event",
        "channel": "orders",
        "event": "payload",
        "msg": {"msgEvent": "OrderUpdate", "version": 1, "data": {"order": []}, "time": 1},
    }
    conn.receive_data(peer.text(frame), T0)
    [event] = drain(conn)
    assert isinstance(event, MessageReceived) and event.message.channel == "orders"


def test_fragmented_message_is_reassembled() -> None:
    conn, peer, _ = open_pair()
    frame = json.dumps({"event": "payload", "channel": "trades.cmt_btcusdt", "data": ["x" * 300]})
    conn.receive_data(peer.fragments(frame, 5), T0)
    [event] = drain(conn)
    assert isinstance(event, MessageReceived) and event.message.raw == frame


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "frame is not a JSON object"),
        ('{"event": "surprise"}', "unknown event 'surprise'"),
        ('{"event": "payload"}', "payload without a channel"),
        ('{"event": "subscribed"}', "subscribed ack without a channel"),
        ("[" * 50_000, "invalid JSON"),
    ],
)
def test_unusable_frames_are_skipped_and_the_connection_stays_open(frame: str, reason: str) -> None:
    conn, peer, _ = open_pair()
    conn.receive_data(peer.text(frame), T0)
    [event] = drain(conn)
    assert isinstance(event, MessageSkipped)
    assert event.reason == reason
    assert conn.is_open
    conn.receive_data(peer.text({"event": "payload", "channel": "c", "data": []}), T0)
    assert isinstance(drain(conn)[0], MessageReceived)


def test_binary_frames_are_skipped() -> None:
    conn, peer, _ = open_pair()
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
def test_error_frames_are_classified(frame: dict[str, Any], kind: ErrorKind, code: str) -> None:
    conn, peer, _ = open_pair()
    conn.receive_data(peer.text(frame), T0)
    [event] = drain(conn)
    assert isinstance(event, ErrorReceived)
    assert (event.kind, event.code, event.message) == (kind, code, frame["msg"])
    assert conn.is_open


def test_error_naming_a_pending_channel_rejects_that_subscription() -> None:
    conn, peer, _ = open_pair()
    conn.subscribe("ticker.cmt_nope", T0)
    conn.receive_data(
        peer.text({"event": "error", "code": "40020", "msg": "bad", "channel": "ticker.cmt_nope"}),
        T0,
    )
    [event] = drain(conn)
    assert isinstance(event, ErrorReceived) and event.channel == "ticker.cmt_nope"
    assert "ticker.cmt_nope" not in conn.subscriptions.desired


def test_oversized_message_closes_with_1009() -> None:
    conn, peer, _ = open_pair(options=ConnectionOptions(max_message_size=1000))
    conn.receive_data(peer.text("x" * 1001), T0)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed)
    assert (event.code, event.initiator) == (1009, CloseInitiator.PROTOCOL_ERROR)
    peer.receive(conn.data_to_send())
    assert peer.closes and peer.closes[0][0] == 1009


def test_oversized_fragmented_message_is_stopped_before_it_completes() -> None:
    conn, peer, _ = open_pair(options=ConnectionOptions(max_message_size=1000))
    data = peer.fragments("y" * 5000, 10)
    conn.receive_data(data[:1600], T0)  # only part of the message has arrived
    events = drain(conn)
    assert [type(e) for e in events] == [ConnectionClosed]
    assert conn.state is ConnectionState.CLOSED


def test_exactly_max_size_message_is_accepted() -> None:
    conn, peer, _ = open_pair(options=ConnectionOptions(max_message_size=1000))
    body = json.dumps({"event": "payload", "channel": "c", "data": []})
    conn.receive_data(peer.text(body + " " * (1000 - len(body))), T0)
    assert isinstance(drain(conn)[0], MessageReceived)


def test_garbage_bytes_after_handshake_close_with_protocol_error() -> None:
    conn, _, _ = open_pair()
    conn.receive_data(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", T0)
    events = drain(conn)
    assert isinstance(events[-1], ConnectionClosed)
    assert events[-1].initiator is CloseInitiator.PROTOCOL_ERROR
    assert conn.state is ConnectionState.CLOSED
    conn.receive_data(b"more garbage", T0)  # ignored once closed
    assert drain(conn) == []


def test_garbage_handshake_response_is_a_protocol_error() -> None:
    conn = WeexConnection(CREDENTIALS)
    conn.initiate(T0)
    conn.receive_data(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", T0)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed)
    assert event.initiator is CloseInitiator.PROTOCOL_ERROR


def test_http_rejection_with_weex_error_body_is_classified_as_auth() -> None:
    conn = WeexConnection(CREDENTIALS, private=True)
    peer = ServerPeer()
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
    private: bool, status: int
) -> None:
    conn = WeexConnection(CREDENTIALS, private=private)
    peer = ServerPeer()
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.reject(status, b'{"code":"40009","msg":"API verification failed"}'), T0)
    event = drain(conn)[0]
    assert isinstance(event, ConnectionRejected)
    assert event.kind is (ErrorKind.AUTH if private else ErrorKind.OTHER)


@pytest.mark.parametrize(("status", "kind"), [(429, ErrorKind.RATE_LIMIT), (503, ErrorKind.OTHER)])
def test_http_rejection_without_body(status: int, kind: ErrorKind) -> None:
    conn = WeexConnection(CREDENTIALS)
    peer = ServerPeer()
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.reject(status), T0)
    event = drain(conn)[0]
    assert isinstance(event, ConnectionRejected)
    assert (event.status_code, event.kind) == (status, kind)


def test_handshake_timeout() -> None:
    conn = WeexConnection(CREDENTIALS, options=ConnectionOptions(handshake_timeout=3))
    conn.initiate(T0)
    assert conn.next_deadline() == T0 + 3
    conn.handle_timer(T0 + 2.9)
    assert drain(conn) == []
    conn.handle_timer(T0 + 3)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed) and event.initiator is CloseInitiator.TIMEOUT


def test_idle_connection_pings_then_dies_after_interval_plus_timeout() -> None:
    conn, peer, _ = open_pair(options=ConnectionOptions(ping_interval=20, ping_timeout=10))
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


def test_any_traffic_keeps_the_connection_alive_and_pong_reports_round_trip() -> None:
    conn, peer, _ = open_pair(options=ConnectionOptions(ping_interval=20, ping_timeout=10))
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


def test_no_protocol_pings_still_detects_dead_peer() -> None:
    options = ConnectionOptions(ping_interval=5, ping_timeout=5, send_protocol_pings=False)
    conn, peer, _ = open_pair(options=options)
    assert conn.next_deadline() == T0 + 10
    conn.handle_timer(T0 + 10)
    peer.receive(conn.data_to_send())
    assert peer.pings == []
    assert isinstance(drain(conn)[0], ConnectionClosed)


def test_heartbeat_can_be_disabled() -> None:
    conn, _, _ = open_pair(options=ConnectionOptions(ping_interval=None))
    assert conn.next_deadline() is None
    conn.handle_timer(T0 + 10_000)
    assert conn.is_open


def test_local_close_handshake_completes_when_peer_answers() -> None:
    conn, peer, _ = open_pair()
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


def test_local_close_times_out_when_peer_is_silent() -> None:
    conn, _, _ = open_pair(options=ConnectionOptions(close_timeout=2))
    conn.close(T0)
    assert conn.next_deadline() == T0 + 2
    conn.handle_timer(T0 + 2)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed) and event.initiator is CloseInitiator.TIMEOUT


def test_remote_close_is_answered() -> None:
    conn, peer, _ = open_pair()
    conn.receive_data(peer.close(1001, "maintenance"), T0)
    [event] = drain(conn)
    assert event == ConnectionClosed(1001, "maintenance", CloseInitiator.REMOTE)
    # wsproto on the server side moves to CLOSED once it sees our answering close frame
    peer.receive(conn.data_to_send())
    assert peer.closes[-1][0] == 1001


def test_eof_is_a_transport_close() -> None:
    conn, _, _ = open_pair()
    conn.receive_data(None, T0)
    assert drain(conn) == [ConnectionClosed(1006, "connection lost", CloseInitiator.TRANSPORT)]
    assert conn.state is ConnectionState.CLOSED


def test_sending_requires_an_open_connection() -> None:
    conn = WeexConnection(CREDENTIALS)
    with pytest.raises(LocalProtocolError):
        conn.send_message({"event": "subscribe", "channel": "x"})
    with pytest.raises(LocalProtocolError):
        conn.send_pong("1")
    conn.initiate(T0)
    with pytest.raises(LocalProtocolError):
        conn.initiate(T0)


def test_send_message_and_send_pong_when_open() -> None:
    conn, peer, _ = open_pair()
    conn.send_message({"event": "subscribe", "channel": "ticker.cmt_ethusdt"})
    conn.send_message("raw text")
    conn.send_pong("99", key="type")
    peer.receive(conn.data_to_send())
    assert peer.texts == [
        '{"event":"subscribe","channel":"ticker.cmt_ethusdt"}',
        "raw text",
        '{"type":"pong","time":"99"}',
    ]


def test_repr_has_no_secrets() -> None:
    conn = WeexConnection(CREDENTIALS, private=True)
    conn.initiate(T0)
    text = repr(conn) + repr(conn.config)
    for secret in ("s3cr3t", "pass-phrase"):
        assert secret not in text


# --------------------------------------------------------------------------- properties


def _handshaken_peer() -> ServerPeer:
    conn = WeexConnection(CREDENTIALS)
    conn.initiate(T0)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    return peer


def _server_stream(peer: ServerPeer) -> bytes:
    frames = [
        peer.accept(),
        peer.text({"event": "subscribed", "channel": "ticker.cmt_btcusdt"}),
        peer.text({"event": "payload", "channel": "ticker.cmt_btcusdt", "data": [{"a": "1"}]}),
        peer.ping(b"p1"),
        peer.text({"event": "ping", "time": "123"}),
        peer.fragments(json.dumps({"event": "payload", "channel": "x", "data": ["é" * 200]}), 4),
        peer.text("not json"),
        peer.text({"type": "ping", "time": "124"}),
        peer.close(1000, "done"),
    ]
    return b"".join(frames)


def _replay(cuts: list[int]) -> tuple[list[Event], list[object]]:
    """Run the scripted stream through a fresh connection, cut at the given offsets.

    The stream is rebuilt per run because the server's accept header depends on the
    client's random Sec-WebSocket-Key; everything else in it is byte-for-byte the same.
    """
    conn = WeexConnection(CREDENTIALS)
    conn.initiate(T0)
    peer = ServerPeer()
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
    return events, [peer.texts, peer.pongs, peer.closes]


STREAM_LENGTH = len(_server_stream(_handshaken_peer()))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=STREAM_LENGTH), max_size=40))
def test_random_byte_splits_give_identical_events_and_replies(cuts: list[int]) -> None:
    whole_events, whole_sent = _replay([])
    split_events, split_sent = _replay(cuts)
    assert split_events == whole_events
    assert split_sent == whole_sent
    texts, pongs, closes = whole_sent
    assert texts == ['{"event":"pong","time":"123"}', '{"type":"pong","time":"124"}']
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


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.booleans())
def test_arbitrary_bytes_never_raise(garbage: bytes, after_handshake: bool) -> None:
    if after_handshake:
        conn, _, _ = open_pair()
    else:
        conn = WeexConnection(CREDENTIALS)
        conn.initiate(T0)
    conn.receive_data(garbage, T0)
    events = drain(conn)
    conn.handle_timer(T0 + 1000)
    events += drain(conn)
    conn.data_to_send()
    assert all(isinstance(e, Event) for e in events)


def test_stale_feed_is_closed_so_the_session_reconnects() -> None:
    options = ConnectionOptions(ping_interval=None, stale_timeout=30)
    conn, peer, _ = open_pair(options=options)
    assert conn.next_deadline() is None  # nothing subscribed: silence is fine
    conn.subscribe("ticker.cmt_btcusdt", T0 + 10)
    conn.receive_data(peer.text({"event": "subscribed", "channel": "ticker.cmt_btcusdt"}), T0 + 10)
    assert conn.next_deadline() == T0 + 40
    push = {"event": "payload", "channel": "ticker.cmt_btcusdt", "data": []}
    conn.receive_data(peer.text(push), T0 + 20)
    assert conn.next_deadline() == T0 + 50
    conn.receive_data(peer.text({"event": "ping", "time": "1"}), T0 + 45)  # pings are not data
    drain(conn)
    conn.handle_timer(T0 + 50)
    assert conn.state is ConnectionState.CLOSING
    peer.receive(conn.data_to_send())
    assert peer.closes == [(1001, "no data for 30s")]


def test_stale_and_heartbeat_deadlines_combine() -> None:
    options = ConnectionOptions(ping_interval=20, ping_timeout=10, stale_timeout=15)
    conn, peer, _ = open_pair(options=options)
    conn.subscribe("trades.cmt_btcusdt", T0)
    conn.receive_data(peer.text({"event": "subscribed", "channel": "trades.cmt_btcusdt"}), T0)
    assert conn.next_deadline() == T0 + 15


def test_stale_timeout_bounds_a_subscribe_the_server_never_answers() -> None:
    options = ConnectionOptions(ping_interval=20, ping_timeout=10, stale_timeout=15)
    conn, peer, _ = open_pair(options=options)
    conn.subscribe("ticker.cmt_btcusdt", T0 + 100)  # long after the open: its own clock
    conn.receive_data(peer.text({"event": "ping", "time": "1"}), T0 + 105)  # pings answered
    conn.subscribe("trades.cmt_btcusdt", T0 + 110)
    drain(conn)
    assert conn.next_deadline() == T0 + 115  # the oldest unanswered subscribe + 15
    conn.receive_data(peer.text({"event": "subscribed", "channel": "ticker.cmt_btcusdt"}), T0 + 112)
    assert conn.next_deadline() == T0 + 125  # the trades subscribe is still unanswered
    push = {"event": "payload", "channel": "ticker.cmt_btcusdt", "data": []}
    conn.receive_data(peer.text(push), T0 + 124)
    drain(conn)
    conn.handle_timer(T0 + 125)  # data flows on one channel, the other was never answered
    assert conn.state is ConnectionState.CLOSING
    peer.receive(conn.data_to_send())
    assert peer.closes == [(1001, "no answer to subscribe trades.cmt_btcusdt for 15s")]


def test_an_answered_or_refused_subscribe_no_longer_bounds_the_connection() -> None:
    options = ConnectionOptions(ping_interval=None, stale_timeout=15)
    conn, peer, _ = open_pair(options=options)
    conn.subscribe("ticker.cmt_nosuchusdt", T0)
    assert conn.next_deadline() == T0 + 15
    error = {"event": "error", "code": "40020", "msg": "bad", "channel": "ticker.cmt_nosuchusdt"}
    conn.receive_data(peer.text(error), T0 + 1)
    assert conn.next_deadline() is None  # refused: nothing is awaited any more


def test_ping_arriving_while_our_close_is_pending_is_ignored() -> None:
    conn, peer, _ = open_pair()
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
def test_a_connection_we_fail_queues_a_close_with_its_code(fast_path: bool, failure: str) -> None:
    make_frame, code = FAILING_FRAMES[failure]
    options = ConnectionOptions(max_message_size=1000, fast_path=fast_path)
    conn, peer, _ = open_pair(options=options)
    conn.receive_data(make_frame(peer), T0)
    [event] = drain(conn)
    assert isinstance(event, ConnectionClosed)
    assert (event.code, event.initiator) == (code, CloseInitiator.PROTOCOL_ERROR)
    assert conn.expects_peer_close  # the adapter lets the peer hang up before closing
    peer.receive(conn.data_to_send())
    assert [received for received, _ in peer.closes] == [code]


def test_expects_peer_close_only_while_our_close_is_unanswered() -> None:
    conn, peer, _ = open_pair()
    assert not conn.expects_peer_close
    conn.close(T0)
    assert conn.expects_peer_close  # CLOSING: e.g. cancelled from outside, still waiting
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.conn.send(peer_close_response(peer)), T0)
    assert conn.state is ConnectionState.CLOSED and not conn.expects_peer_close

    answered, peer, _ = open_pair()
    answered.receive_data(peer.close(1001, "maintenance"), T0)
    assert answered.state is ConnectionState.CLOSED and not answered.expects_peer_close

    timed_out, _, _ = open_pair(options=ConnectionOptions(close_timeout=2))
    timed_out.close(T0)
    timed_out.handle_timer(T0 + 2)
    assert timed_out.state is ConnectionState.CLOSED and not timed_out.expects_peer_close

    hung_up, _, _ = open_pair()
    hung_up.close(T0)
    hung_up.receive_data(None, T0)
    assert hung_up.state is ConnectionState.CLOSED and not hung_up.expects_peer_close


def test_too_big_while_our_close_is_pending_ends_with_1009_and_sends_nothing_more() -> None:
    conn, peer, _ = open_pair(options=ConnectionOptions(max_message_size=1000))
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


def sized_push(size: int, fill: str) -> str:
    """A payload push of exactly `size` UTF-8 bytes, mostly `fill` (a 4-byte emoji, say)."""
    head = json.dumps({"event": "payload", "channel": "c", "data": ""})[:-2]
    room = size - len(head.encode()) - 2
    body = fill * (room // len(fill.encode()))
    text = head + body + " " * (room - len(body.encode())) + '"}'
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "wsproto"])
@pytest.mark.parametrize("parts", [1, 7])
def test_max_message_size_counts_utf8_bytes_not_characters(fast_path: bool, parts: int) -> None:
    options = ConnectionOptions(max_message_size=1000, fast_path=fast_path)
    emoji = "\N{GRINNING FACE}"
    fits, too_big = sized_push(1000, emoji), sized_push(1001, emoji)
    assert len(too_big) < 300  # characters: counting those would let it through

    conn, peer, _ = open_pair(options=options)
    conn.receive_data(peer.fragments(fits, parts) if parts > 1 else peer.text(fits), T0)
    [received] = drain(conn)
    assert isinstance(received, MessageReceived) and received.message.raw == fits

    conn.receive_data(peer.fragments(too_big, parts) if parts > 1 else peer.text(too_big), T0)
    [closed] = drain(conn)
    assert isinstance(closed, ConnectionClosed) and closed.code == 1009


def test_rtt_interval_pings_a_busy_connection_and_measures_each_round_trip() -> None:
    """Traffic never pauses for `ping_interval`, so only `rtt_interval` sends pings: one at a
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
