"""WeexSession: reconnect decisions across many connections, without any I/O.

Each test that opens a connection takes the `api` fixture and runs on v2 and v3 (the peer is
tests/dialect_peer.py's); the three that only word a transport failure never reach a
server, so no dialect enters them.
"""

from __future__ import annotations

import random
import ssl

import pytest
import trio

from tests.adapters import BOTH_DIALECTS
from tests.dialect_peer import DialectPeer, config
from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions
from weex_proto.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionClosedError,
    ErrorKind,
    HandshakeRejectedError,
    ProxyAuthenticationError,
    RateLimitError,
    ReconnectExhaustedError,
    UnreachableError,
)
from weex_proto.events import CloseInitiator, Connected, ConnectionClosed, ConnectionRejected
from weex_proto.session import Decision, GiveUp, Reconnect, SessionState, Stop, WeexSession

T0 = 1_700_000_000.0


@pytest.fixture(params=BOTH_DIALECTS)
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_session(api: str = "v2", **kwargs: object) -> WeexSession:
    params: dict[str, object] = {"rng": random.Random(7), "backoff_base": 1.0}
    params.update(kwargs)
    return WeexSession(config(api), **params)  # type: ignore[arg-type]


def open_connection(session: WeexSession, now: float) -> DialectPeer:
    conn = session.start_attempt(now)
    peer = DialectPeer(session.config.api_version)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), now)
    events = list(conn.events())
    assert isinstance(events[0], Connected)
    session.connected(now)
    peer.receive(conn.data_to_send())
    return peer


def dropped(now: float) -> ConnectionClosed:
    return ConnectionClosed(1006, "connection lost", CloseInitiator.TRANSPORT)


def test_private_session_needs_credentials(api: str) -> None:
    with pytest.raises(ConfigError):
        WeexSession(WeexConfig(api=api), private=True, rng=random.Random(0))


def test_drop_after_connecting_reconnects_and_reports_a_gap(api: str) -> None:
    session = make_session(api)
    session.subscriptions.subscribe("ticker.cmt_btcusdt", T0)
    peer = open_connection(session, T0)
    assert peer.requests() == [{"event": "subscribe", "channel": "ticker.cmt_btcusdt"}]
    decision = session.connection_closed(T0 + 1, dropped(T0 + 1))
    assert isinstance(decision, Reconnect)
    assert 0.5 <= decision.delay <= 1.0
    assert decision.gap == ("ticker.cmt_btcusdt",)
    assert session.state is SessionState.WAITING
    # the next attempt resubscribes on its own
    peer = open_connection(session, T0 + 3)
    assert peer.requests() == [{"event": "subscribe", "channel": "ticker.cmt_btcusdt"}]
    assert session.connection_attempts == 2


def test_each_attempt_is_signed_afresh(api: str) -> None:
    session = make_session(api, private=True)
    first = ServerPeer()
    first.receive(session.start_attempt(T0).data_to_send())
    session.transport_failed(T0, OSError("refused"))
    second = ServerPeer()
    second.receive(session.start_attempt(T0 + 40).data_to_send())
    assert first.headers()["access-timestamp"] == "1700000000000"
    assert second.headers()["access-timestamp"] == "1700000040000"
    assert first.headers()["access-sign"] != second.headers()["access-sign"]


def test_gives_up_after_max_retries_consecutive_failures(api: str) -> None:
    session = make_session(api, max_retries=3)
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


def test_auth_rejection_gives_up_at_once(api: str) -> None:
    session = make_session(api, private=True, max_retries=None)
    session.start_attempt(T0)
    session.rejected(ConnectionRejected(401, "API verification failed", ErrorKind.AUTH))
    decision = session.connection_closed(T0, ConnectionClosed(None, "", CloseInitiator.REMOTE))
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, AuthenticationError)
    assert "API verification failed" in str(decision.error)


def test_rate_limited_rejection_waits_at_least_the_advice(api: str) -> None:
    session = make_session(api, backoff_base=0.01)
    session.start_attempt(T0)
    session.rejected(ConnectionRejected(429, "Too many requests", ErrorKind.RATE_LIMIT))
    decision = session.connection_closed(T0, ConnectionClosed(None, "", CloseInitiator.REMOTE))
    assert isinstance(decision, Reconnect)
    assert decision.delay >= 1.0


def test_other_rejection_is_retried_and_reported_when_exhausted(api: str) -> None:
    session = make_session(api, max_retries=0)
    session.start_attempt(T0)
    session.rejected(ConnectionRejected(503, "HTTP 503", ErrorKind.OTHER))
    decision = session.connection_closed(T0, ConnectionClosed(None, "", CloseInitiator.REMOTE))
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, ReconnectExhaustedError)
    assert isinstance(decision.error.last_error, HandshakeRejectedError)


def test_user_stop_means_no_reconnect(api: str) -> None:
    session = make_session(api)
    open_connection(session, T0)
    session.stop()
    decision = session.connection_closed(T0, ConnectionClosed(1000, "", CloseInitiator.LOCAL))
    assert isinstance(decision, Stop)


def test_stable_connection_resets_the_backoff(api: str) -> None:
    session = make_session(api, max_retries=2)
    for _ in range(2):
        session.start_attempt(T0)
        assert isinstance(session.transport_failed(T0, OSError()), Reconnect)
    open_connection(session, T0 + 100)
    decision = session.connection_closed(T0 + 200, dropped(T0 + 200))
    assert isinstance(decision, Reconnect)
    assert decision.delay <= 1.0  # back to the first step


# --------------------------------------------------------------------------- retry accounting


def test_reconnects_that_worked_do_not_use_up_the_retries(api: str) -> None:
    # max_retries=2, and five connections that each handshook, got data and then dropped.
    session = make_session(api, max_retries=2)
    for n in range(5):
        open_connection(session, T0 + n)
        session.delivered()
        decision = session.connection_closed(T0 + n + 0.5, dropped(T0 + n + 0.5))
        assert isinstance(decision, Reconnect)
        assert decision.attempt == 1  # each drop starts a fresh run of reconnection attempts
    assert session.state is SessionState.WAITING


def test_connections_that_deliver_nothing_still_exhaust_the_retries(api: str) -> None:
    session = make_session(api, max_retries=2)
    decisions: list[Decision] = []
    for n in range(3):
        open_connection(session, T0 + n)  # handshakes, then drops before the server says a thing
        decisions.append(session.connection_closed(T0 + n + 0.5, dropped(T0 + n + 0.5)))
    assert [d.attempt for d in decisions if isinstance(d, Reconnect)] == [1, 2]
    give_up = decisions[-1]
    assert isinstance(give_up, GiveUp)
    error = give_up.error
    assert isinstance(error, ReconnectExhaustedError)
    assert (error.attempts, error.failures) == (2, 3)
    assert "after 2 attempts" in str(error)
    assert isinstance(error.last_error, ConnectionClosedError)
    assert error.last_error.code == 1006
    assert "connection lost" in str(error)


def test_attempt_numbers_count_reconnection_attempts_exactly(api: str) -> None:
    max_retries = 3
    session = make_session(api, max_retries=max_retries)
    attempts = []
    decision: Decision | None = None
    while not isinstance(decision, GiveUp):
        session.start_attempt(T0)
        decision = session.transport_failed(T0, ConnectionRefusedError("nope"))
        if isinstance(decision, Reconnect):
            attempts.append(decision.attempt)
    assert attempts == list(range(1, max_retries + 1))
    assert session.connection_attempts == 1 + max_retries
    error = decision.error
    assert isinstance(error, ReconnectExhaustedError)
    assert (error.attempts, error.failures) == (max_retries, max_retries + 1)
    assert f"gave up reconnecting after {max_retries} attempts" in str(error)


def test_a_drop_after_data_then_failures_gives_up_after_max_retries_reconnects(api: str) -> None:
    session = make_session(api, max_retries=2)
    open_connection(session, T0)
    session.delivered()
    decisions = [session.connection_closed(T0 + 1, dropped(T0 + 1))]
    for n in range(2):
        session.start_attempt(T0 + 2 + n)
        decisions.append(session.transport_failed(T0 + 2 + n, ConnectionRefusedError("nope")))
    assert [type(d) for d in decisions] == [Reconnect, Reconnect, GiveUp]
    assert [d.attempt for d in decisions[:2] if isinstance(d, Reconnect)] == [1, 2]
    assert session.connection_attempts == 3  # the one that worked, then two reconnects


def test_restart_asked_for_while_waiting_does_not_make_the_next_failure_free(api: str) -> None:
    session = make_session(api, max_retries=5)
    session.start_attempt(T0)
    assert isinstance(session.transport_failed(T0, OSError("down")), Reconnect)
    session.restart(T0 + 0.1)  # no connection to close: the runner just skips the wait
    session.start_attempt(T0 + 0.1)
    decision = session.transport_failed(T0 + 0.1, OSError("still down"))
    assert isinstance(decision, Reconnect)
    assert decision.attempt == 2
    assert decision.reason != "reconnect requested"


def test_user_requested_reconnect_is_not_counted(api: str) -> None:
    session = make_session(api, max_retries=1)
    open_connection(session, T0)
    session.restart(T0 + 1)
    decision = session.connection_closed(
        T0 + 1, ConnectionClosed(1000, "client reconnect", CloseInitiator.LOCAL)
    )
    assert isinstance(decision, Reconnect)
    assert (decision.delay, decision.attempt) == (0.0, 0)
    session.start_attempt(T0 + 1)
    assert isinstance(session.transport_failed(T0 + 1, OSError("down")), Reconnect)


# --------------------------------------------------------------------------- giving up says why


def test_handshake_timeouts_are_the_last_error(api: str) -> None:
    session = make_session(api, max_retries=1, options=ConnectionOptions(handshake_timeout=3))
    decisions = []
    for n in range(2):
        conn = session.start_attempt(T0 + 10 * n)
        conn.handle_timer(T0 + 10 * n + 3)
        (closed,) = list(conn.events())
        assert isinstance(closed, ConnectionClosed)
        decisions.append(session.connection_closed(T0 + 10 * n + 3, closed))
    give_up = decisions[-1]
    assert isinstance(give_up, GiveUp)
    error = give_up.error
    assert isinstance(error, ReconnectExhaustedError)
    assert isinstance(error.last_error, ConnectionClosedError)
    assert "handshake timed out" in str(error.last_error)
    assert "handshake timed out" in str(error)


def test_a_message_too_big_close_is_the_last_error(api: str) -> None:
    session = make_session(api, max_retries=0, options=ConnectionOptions(max_message_size=100))
    peer = open_connection(session, T0)
    conn = session.connection
    assert conn is not None
    conn.receive_data(peer.text("x" * 1000), T0 + 1)
    closed = [e for e in conn.events() if isinstance(e, ConnectionClosed)]
    assert [e.code for e in closed] == [1009]
    decision = session.connection_closed(T0 + 1, closed[0])
    assert isinstance(decision, GiveUp)
    error = decision.error
    assert isinstance(error, ReconnectExhaustedError)
    assert isinstance(error.last_error, ConnectionClosedError)
    assert error.last_error.code == 1009
    assert "1009" in str(error)


def fail_transport(error: BaseException) -> GiveUp:
    session = make_session(max_retries=0)
    session.start_attempt(T0)
    decision = session.transport_failed(T0, error)
    assert isinstance(decision, GiveUp)
    return decision


def test_a_wrapped_certificate_error_is_shown() -> None:
    # What trio's SSLStream raises: an empty BrokenResourceError caused by the ssl error.
    text = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    verify = ssl.SSLCertVerificationError(1, text)
    try:
        raise trio.BrokenResourceError from verify
    except trio.BrokenResourceError as exc:
        broken = exc
    error = fail_transport(broken).error
    assert isinstance(error, ReconnectExhaustedError)
    last = error.last_error
    assert isinstance(last, ConnectionClosedError)
    assert last.__cause__ is broken
    for text in (str(error), str(last)):
        assert "BrokenResourceError" in text
        assert "SSLCertVerificationError" in text
        assert "certificate verify failed" in text


def test_implicit_chains_and_groups_are_followed_too() -> None:
    try:
        try:
            raise ExceptionGroup("attempts failed", [ConnectionRefusedError(111, "refused")])
        except ExceptionGroup:
            raise OSError("All connection attempts failed")  # noqa: B904 - chained implicitly
    except OSError as exc:
        failure = exc
    text = str(fail_transport(failure).error)
    assert "All connection attempts failed" in text
    assert "refused" in text


def test_a_cyclic_cause_chain_ends() -> None:
    first, second = OSError("first"), OSError("second")
    first.__cause__, second.__cause__ = second, first
    text = str(fail_transport(first).error)
    assert text.count("first") == 1 and text.count("second") == 1


# --------------------------------------------------------------------------- refusals by status


def reject(session: WeexSession, status: int, body: bytes = b"") -> Decision:
    """Run one attempt that the server refuses with `status`, through the real connection."""
    conn = session.start_attempt(T0)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.reject(status, body), T0)
    decision: Decision | None = None
    for event in conn.events():
        if isinstance(event, ConnectionRejected):
            session.rejected(event)
        elif isinstance(event, ConnectionClosed):
            decision = session.connection_closed(T0, event)
    assert decision is not None
    return decision


@pytest.mark.parametrize("status", [401, 403])
def test_public_401_and_403_are_refusals_not_credential_errors(status: int, api: str) -> None:
    decision = reject(make_session(api, max_retries=5), status)
    assert isinstance(decision, GiveUp)
    error = decision.error
    assert isinstance(error, HandshakeRejectedError)
    assert not isinstance(error, AuthenticationError)
    assert (error.status_code, error.retryable, error.permanent) == (status, False, True)


@pytest.mark.parametrize("status", [401, 403])
def test_private_401_and_403_stay_credential_errors(status: int, api: str) -> None:
    decision = reject(make_session(api, private=True, max_retries=5), status)
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, AuthenticationError)


def test_public_auth_code_in_the_body_is_still_no_credential_error(api: str) -> None:
    body = b'{"code":"40009","msg":"API verification failed"}'
    decision = reject(make_session(api, max_retries=5), 401, body)
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, HandshakeRejectedError)
    assert "API verification failed" in str(decision.error)


@pytest.mark.parametrize("private", [False, True])
@pytest.mark.parametrize("status", [400, 404, 405, 410, 414, 426, 451])
def test_permanent_refusals_give_up_at_once(status: int, private: bool, api: str) -> None:
    session = make_session(api, private=private, max_retries=None)
    decision = reject(session, status)
    assert isinstance(decision, GiveUp)
    error = decision.error
    assert isinstance(error, HandshakeRejectedError)
    assert (error.status_code, error.permanent) == (status, True)
    assert f"HTTP {status}" in str(error)
    assert session.state is SessionState.FAILED
    assert session.connection_attempts == 1


@pytest.mark.parametrize("status", [408, 425, 500, 502, 503, 504])
def test_transient_refusals_are_retried(status: int, api: str) -> None:
    session = make_session(api, max_retries=1)
    assert isinstance(reject(session, status), Reconnect)
    decision = reject(session, status)
    assert isinstance(decision, GiveUp)
    error = decision.error
    assert isinstance(error, ReconnectExhaustedError)
    assert isinstance(error.last_error, HandshakeRejectedError)
    assert (error.last_error.status_code, error.last_error.retryable) == (status, True)


def test_rate_limited_refusal_is_retried_after_its_advice(api: str) -> None:
    session = make_session(api, max_retries=1, backoff_base=0.01, backoff_max=0.01)
    decision = reject(session, 429)
    assert isinstance(decision, Reconnect)
    assert decision.delay >= 1.0
    give_up = reject(session, 429)
    assert isinstance(give_up, GiveUp)
    assert isinstance(give_up.error, ReconnectExhaustedError)
    assert isinstance(give_up.error.last_error, RateLimitError)


def test_an_auth_error_frame_ends_retries_only_if_the_close_follows_it(api: str) -> None:
    """An auth error frame then the close: credentials refused, no retry. An auth error frame
    the connection outlives (data arrives after it) makes a later drop an ordinary one."""
    fatal = make_session(api, private=True, max_retries=None)
    open_connection(fatal, T0)
    fatal.error_received(ErrorKind.AUTH, "40009", "API verification failed")
    decision = fatal.connection_closed(T0 + 1, dropped(T0 + 1))
    assert isinstance(decision, GiveUp) and isinstance(decision.error, AuthenticationError)

    outlived = make_session(api, private=True, max_retries=None)
    open_connection(outlived, T0)
    outlived.error_received(ErrorKind.AUTH, "40014", "Invalid permissions")
    outlived.delivered()  # e.g. the next push or ping
    assert isinstance(outlived.connection_closed(T0 + 1, dropped(T0 + 1)), Reconnect)


def test_fail_fast_gives_up_on_the_first_unreachable_attempt_only(api: str) -> None:
    """Before the server was ever reached a transport failure ends the session; after, it is
    retried as without fail_fast; and a failure that is never retried keeps its own type."""
    session = make_session(api, max_retries=3, fail_fast=True)
    session.start_attempt(T0)
    decision = session.transport_failed(T0, ConnectionRefusedError(111, "Connection refused"))
    assert isinstance(decision, GiveUp)
    assert isinstance(decision.error, UnreachableError)
    assert (
        str(decision.error)
        == "could not connect: ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert session.connection_attempts == 1

    reached = make_session(api, max_retries=3, fail_fast=True)
    open_connection(reached, T0)
    assert isinstance(reached.connection_closed(T0 + 1, dropped(T0 + 1)), Reconnect)
    reached.start_attempt(T0 + 2)
    assert isinstance(reached.transport_failed(T0 + 2, OSError("refused")), Reconnect)

    proxied = make_session(api, max_retries=3, fail_fast=True)
    proxied.start_attempt(T0)
    refused = ProxyAuthenticationError("http://proxy:3128", "HTTP 407")
    decision = proxied.transport_failed(T0, refused)
    assert isinstance(decision, GiveUp) and decision.error is refused
