"""WeexSession: reconnect decisions across many connections, without any I/O."""

from __future__ import annotations

import random

import pytest

from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.errors import (
    AuthenticationError,
    ConfigError,
    ErrorKind,
    HandshakeRejectedError,
    ReconnectExhaustedError,
)
from weex_proto.events import CloseInitiator, Connected, ConnectionClosed, ConnectionRejected
from weex_proto.session import GiveUp, Reconnect, SessionState, Stop, WeexSession

T0 = 1_700_000_000.0
CONFIG = WeexConfig(api_key="k", secret_key="s", passphrase="p")


def make_session(**kwargs: object) -> WeexSession:
    params: dict[str, object] = {"rng": random.Random(7), "backoff_base": 1.0}
    params.update(kwargs)
    return WeexSession(CONFIG, **params)  # type: ignore[arg-type]


def open_connection(session: WeexSession, now: float) -> ServerPeer:
    conn = session.start_attempt(now)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), now)
    events = list(conn.events())
    assert isinstance(events[0], Connected)
    session.connected(now)
    peer.receive(conn.data_to_send())
    return peer


def dropped(now: float) -> ConnectionClosed:
    return ConnectionClosed(1006, "connection lost", CloseInitiator.TRANSPORT)


def test_private_session_needs_credentials() -> None:
    with pytest.raises(ConfigError):
        WeexSession(WeexConfig(), private=True, rng=random.Random(0))


def test_drop_after_connecting_reconnects_and_reports_a_gap() -> None:
    session = make_session()
    session.subscriptions.subscribe("ticker.cmt_btcusdt", T0)
    peer = open_connection(session, T0)
    assert peer.json_sent() == [{"event": "subscribe", "channel": "ticker.cmt_btcusdt"}]
    decision = session.connection_closed(T0 + 1, dropped(T0 + 1))
    assert isinstance(decision, Reconnect)
    assert 0.5 <= decision.delay <= 1.0
    assert decision.gap == ("ticker.cmt_btcusdt",)
    assert session.state is SessionState.WAITING
    # the next attempt resubscribes on its own
    peer = open_connection(session, T0 + 3)
    assert peer.json_sent() == [{"event": "subscribe", "channel": "ticker.cmt_btcusdt"}]
    assert session.connection_attempts == 2


def test_each_attempt_is_signed_afresh() -> None:
    session = make_session(private=True)
    first = ServerPeer()
    first.receive(session.start_attempt(T0).data_to_send())
    session.transport_failed(T0, OSError("refused"))
    second = ServerPeer()
    second.receive(session.start_attempt(T0 + 40).data_to_send())
    assert first.headers()["access-timestamp"] == "1700000000000"
    assert second.headers()["access-timestamp"] == "1700000040000"
    assert first.headers()["access-sign"] != second.headers()["access-sign"]


def test_gives_up_after_max_retries_consecutive_failures() -> None:
    session = make_session(max_retries=3)
    delays = []
    decision: object = None
    for attempt in range(10):
        session.start_attempt(T0 + attempt)
        decision = session.transport_failed(T0 + attempt, ConnectionRefusedError("nope"))
        if not isinstance(decision, Reconnect):
            break
        delays.append(decision.delay)
    assert len(delays) == 3
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, ReconnectExhaustedError)
    assert "ConnectionRefusedError" in str(decision.error)
    assert session.state is SessionState.FAILED
    assert delays[0] <= 1.0 < delays[2] <= 4.0


def test_auth_rejection_gives_up_at_once() -> None:
    session = make_session(private=True, max_retries=None)
    session.start_attempt(T0)
    session.rejected(ConnectionRejected(401, "API verification failed", ErrorKind.AUTH))
    decision = session.connection_closed(T0, ConnectionClosed(None, "", CloseInitiator.REMOTE))
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, AuthenticationError)
    assert "API verification failed" in str(decision.error)


def test_rate_limited_rejection_waits_at_least_the_advice() -> None:
    session = make_session(backoff_base=0.01)
    session.start_attempt(T0)
    session.rejected(ConnectionRejected(429, "Too many requests", ErrorKind.RATE_LIMIT))
    decision = session.connection_closed(T0, ConnectionClosed(None, "", CloseInitiator.REMOTE))
    assert isinstance(decision, Reconnect)
    assert decision.delay >= 1.0


def test_other_rejection_is_retried_and_reported_when_exhausted() -> None:
    session = make_session(max_retries=0)
    session.start_attempt(T0)
    session.rejected(ConnectionRejected(503, "HTTP 503", ErrorKind.OTHER))
    decision = session.connection_closed(T0, ConnectionClosed(None, "", CloseInitiator.REMOTE))
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, ReconnectExhaustedError)
    assert isinstance(decision.error.last_error, HandshakeRejectedError)


def test_user_stop_means_no_reconnect() -> None:
    session = make_session()
    open_connection(session, T0)
    session.stop()
    decision = session.connection_closed(T0, ConnectionClosed(1000, "", CloseInitiator.LOCAL))
    assert isinstance(decision, Stop)


def test_stable_connection_resets_the_backoff() -> None:
    session = make_session(max_retries=2)
    for _ in range(2):
        session.start_attempt(T0)
        assert isinstance(session.transport_failed(T0, OSError()), Reconnect)
    open_connection(session, T0 + 100)
    decision = session.connection_closed(T0 + 200, dropped(T0 + 200))
    assert isinstance(decision, Reconnect)
    assert decision.delay <= 1.0  # back to the first step
