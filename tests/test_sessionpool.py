"""SessionPool: one endpoint's connections as WeexSessions over a ConnectionPool, driven by a
hypothesis state machine against scripted servers (wsproto's server role, tests/wspeer.py).

The machine does what an adapter does: it starts an attempt only when the pool grants it,
feeds each connection's bytes to its own server, and reports handshakes and ends to the
session exactly as the hub does. The servers ack every request at once. The invariants check
WEEX's limits on what the servers saw, and that each channel lives on one connection only.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, ConnectionState, WeexConnection
from weex_proto.errors import SubscriptionLimitError
from weex_proto.events import Connected, ConnectionClosed
from weex_proto.pool import ConnectionBudget, PooledState
from weex_proto.session import GiveUp, Reconnect, SessionState, Stop
from weex_proto.sessionpool import PooledSession, RetrySettings, SessionPool

MAX_CHANNELS = 3
MAX_OPERATIONS = 5
OPERATIONS_WINDOW = 100.0
MAX_CONNECTIONS = 4
MAX_REQUESTS = 5
REQUESTS_WINDOW = 50.0
CHANNELS = [f"ticker.cmt_c{i}usdt" for i in range(MAX_CHANNELS * MAX_CONNECTIONS + 2)]
CONFIG = WeexConfig()
OPTIONS = ConnectionOptions(ping_interval=None)


def max_in_any_window(times: list[float], window: float) -> int:
    return max((sum(1 for s in times if s <= t < s + window) for t in times), default=0)


def make_pool(budget: ConnectionBudget | None = None, *, retries: int | None = None) -> SessionPool:
    return SessionPool(
        CONFIG,
        private=False,
        options=OPTIONS,
        rng=random.Random(3),
        retry=RetrySettings(retries, 1.0, 8.0),
        budget=budget or ConnectionBudget(),
        max_channels=MAX_CHANNELS,
        max_operations=MAX_OPERATIONS,
        window=OPERATIONS_WINDOW,
    )


class Socket:
    """One attempt's socket: the client connection and the scripted server on the other end."""

    def __init__(self, conn: WeexConnection) -> None:
        self.conn = conn
        self.peer = ServerPeer()
        self.accepted = False
        self.closed = False
        self.subscribed: set[str] = set()  # what the server holds
        self.operations: list[float] = []
        self.texts_seen = 0


class PoolSessionsMachine(RuleBasedStateMachine):
    @initialize(burst=st.integers(1, MAX_REQUESTS), rate=st.sampled_from([0.05, 0.5, 5.0]))
    def start(self, burst: int, rate: float) -> None:
        self.budget = ConnectionBudget(
            max_connections=MAX_CONNECTIONS,
            max_requests=MAX_REQUESTS,
            window=REQUESTS_WINDOW,
            burst=burst,
            rate=rate,
        )
        self.endpoint = make_pool(self.budget)
        self.now = 0.0
        self.wanted: set[str] = set()
        self.sockets: dict[PooledSession, Socket] = {}
        self.connect_times: list[float] = []
        self.stopped = False

    # --- what the adapter and the hub do -------------------------------------------------

    def handle(self, session: PooledSession) -> None:
        """Move bytes both ways until both sides are quiet; report events as the hub does."""
        while (socket := self.sockets.get(session)) is not None:
            conn = socket.conn
            out = conn.data_to_send()
            if out:
                socket.peer.receive(out)
            replies = b""
            requests = socket.peer.json_sent()[socket.texts_seen :]
            socket.texts_seen += len(requests)
            for request in requests:
                if socket.closed:
                    break
                self.serve(socket, request)
                ack = {"event": f"{request['event']}d", "channel": request["channel"]}
                replies += socket.peer.text(ack)
            if socket.peer.closes and not socket.closed:
                socket.closed = True
                replies += socket.peer.close()  # answer the client's close
            if replies and conn.state is not ConnectionState.CLOSED:
                conn.receive_data(replies, self.now)
            if self.events(session, conn):
                del self.sockets[session]
                return
            if not out and not replies:
                return

    def serve(self, socket: Socket, request: dict[str, Any]) -> None:
        socket.operations.append(self.now)
        recent = [t for t in socket.operations if t > self.now - OPERATIONS_WINDOW]
        assert len(recent) <= MAX_OPERATIONS, "a connection went past its operation budget"
        if request["event"] == "subscribe":
            socket.subscribed.add(request["channel"])
            assert len(socket.subscribed) <= MAX_CHANNELS
        else:
            socket.subscribed.discard(request["channel"])

    def events(self, session: PooledSession, conn: WeexConnection) -> bool:
        """Report the connection's events to its session; True once it has ended."""
        for event in conn.events():
            if isinstance(event, Connected):
                session.connected(self.now)
            elif isinstance(event, ConnectionClosed):
                self.decided(session.connection_closed(self.now, event))
                return True
        return False

    def decided(self, decision: Reconnect | GiveUp | Stop) -> None:
        assert not isinstance(decision, GiveUp)  # unlimited retries here

    def sessions_where(self, test: Any) -> list[PooledSession]:
        return [s for s in self.endpoint.sessions if test(s)]

    def others_quiet(self, session: PooledSession) -> dict[PooledSession, int]:
        return {s: len(k.peer.texts) for s, k in self.sockets.items() if s is not session}

    # --- rules: the user -------------------------------------------------------------------

    @rule(channel=st.sampled_from(CHANNELS))
    def subscribe(self, channel: str) -> None:
        try:
            session = self.endpoint.subscribe(channel, self.now)
        except SubscriptionLimitError:
            assert channel not in self.wanted
            assert len(self.endpoint.pool.connection_ids) == MAX_CONNECTIONS
            return
        self.wanted.add(channel)
        assert channel in session.subscriptions.desired
        self.handle(session)

    @rule(channels=st.lists(st.sampled_from(CHANNELS), min_size=2, max_size=8, unique=True))
    def open_a_stream(self, channels: list[str]) -> None:
        for channel in channels:
            self.subscribe(channel)

    @precondition(lambda self: bool(self.wanted))
    @rule(data=st.data())
    def unsubscribe(self, data: st.DataObject) -> None:
        channel = data.draw(st.sampled_from(sorted(self.wanted)))
        try:
            session = self.endpoint.unsubscribe(channel, self.now)
        except SubscriptionLimitError:
            return  # out of operations: it stays
        self.wanted.discard(channel)
        assert session is not None
        self.handle(session)

    @precondition(lambda self: bool(self.wanted))
    @rule(data=st.data())
    def end_a_stream(self, data: st.DataObject) -> None:
        channels = data.draw(st.sets(st.sampled_from(sorted(self.wanted)), min_size=1))
        touched, refused = self.endpoint.unsubscribe_many(channels, self.now)
        self.wanted -= channels - {channel for channel, _ in refused}
        for session in touched:
            self.handle(session)

    @rule()
    def disconnect(self) -> None:
        self.endpoint.stop(self.now)
        self.stopped = True
        for session in list(self.sockets):
            self.handle(session)
        for session in self.endpoint.sessions:
            assert not self.endpoint.wanted(session)

    @rule()
    def disconnect_and_use_again_at_once(self) -> None:
        """Used again while the disconnect's closes are still under way."""
        self.endpoint.stop(self.now)
        self.endpoint.resume(self.now)
        self.stopped = False
        for session in list(self.sockets):
            self.handle(session)
        for session in self.endpoint.sessions:
            assert session.state not in (SessionState.STOPPED, SessionState.FAILED)

    @precondition(lambda self: self.stopped)
    @rule()
    def use_again(self) -> None:
        self.endpoint.resume(self.now)
        self.stopped = False

    # --- rules: time and the network -------------------------------------------------------

    @rule(seconds=st.sampled_from([0.5, 3.0, 20.0, 60.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.endpoint.poll(self.now)

    @precondition(lambda self: any(self.endpoint.granted(s) for s in self.endpoint.sessions))
    @rule(data=st.data())
    def start_a_granted_attempt(self, data: st.DataObject) -> None:
        self.start_attempt(data.draw(st.sampled_from(self.sessions_where(self.endpoint.granted))))

    def start_attempt(self, session: PooledSession) -> None:
        assert session not in self.sockets
        assert self.endpoint.wanted(session)
        conn = session.start_attempt(self.now)
        self.connect_times.append(self.now)
        socket = self.sockets[session] = Socket(conn)
        socket.peer.receive(conn.data_to_send())
        assert not self.endpoint.granted(session)

    @precondition(lambda self: any(not k.accepted for k in self.sockets.values()))
    @rule(data=st.data())
    def handshake_succeeds(self, data: st.DataObject) -> None:
        self.accept(
            data.draw(st.sampled_from([s for s, k in self.sockets.items() if not k.accepted]))
        )

    def accept(self, session: PooledSession) -> None:
        socket = self.sockets[session]
        others = self.others_quiet(session)
        socket.accepted = True
        if socket.conn.state is ConnectionState.CLOSED:  # closed before it was answered
            self.handle(session)
            return
        socket.conn.receive_data(socket.peer.accept(), self.now)
        self.handle(session)
        if session in self.sockets:  # exactly its own channels, nothing on the others
            assert self.sockets[session].subscribed == set(session.subscriptions.desired)
        assert self.others_quiet(session) == others

    @rule()
    def everything_granted_connects(self) -> None:
        for session in self.sessions_where(self.endpoint.granted):
            self.start_attempt(session)
        for session, socket in list(self.sockets.items()):
            if not socket.accepted and session in self.sockets:
                self.accept(session)

    @precondition(lambda self: any(not k.accepted for k in self.sockets.values()))
    @rule(data=st.data())
    def attempt_fails(self, data: st.DataObject) -> None:
        session = data.draw(st.sampled_from([s for s, k in self.sockets.items() if not k.accepted]))
        del self.sockets[session]
        self.decided(session.transport_failed(self.now, OSError("refused")))

    @precondition(lambda self: any(k.accepted for k in self.sockets.values()))
    @rule(data=st.data())
    def connection_drops(self, data: st.DataObject) -> None:
        session = data.draw(st.sampled_from([s for s, k in self.sockets.items() if k.accepted]))
        channels = session.subscriptions.desired
        others = self.others_quiet(session)
        placement = {s: s.subscriptions.desired for s in self.endpoint.sessions if s is not session}
        socket = self.sockets.pop(session)
        socket.conn.receive_data(None, self.now)
        self.events(session, socket.conn)
        assert session.subscriptions.desired == channels  # its channels wait for it
        assert {s: s.subscriptions.desired for s in placement} == placement
        assert self.others_quiet(session) == others  # nobody else resubscribes anything

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def limits_hold(self) -> None:
        assert max_in_any_window(self.connect_times, REQUESTS_WINDOW) <= MAX_REQUESTS
        live = [k for k in self.sockets.values() if not k.closed]
        assert len(live) <= MAX_CONNECTIONS
        assert len(self.endpoint.pool.connection_ids) == self.budget.connections
        assert self.budget.connections <= MAX_CONNECTIONS

    @invariant()
    def each_wanted_channel_is_on_exactly_one_connection(self) -> None:
        placed = [c for s in self.endpoint.sessions for c in s.subscriptions.desired]
        assert sorted(placed) == sorted(self.wanted)
        held = [c for k in self.sockets.values() for c in k.subscribed]
        assert len(held) == len(set(held)), "a channel on two connections at once"

    @invariant()
    def sessions_are_the_pools_connections(self) -> None:
        pool = self.endpoint.pool
        assert tuple(s.index for s in self.endpoint.sessions) == pool.connection_ids
        for session in self.endpoint.sessions:
            assert session.subscriptions is pool.book(session.index)
            if self.endpoint.granted(session):
                assert pool.state_of(session.index) is PooledState.CONNECTING
        for session in self.sockets:
            assert self.endpoint.owns(session) or session.state is SessionState.STOPPED

    @invariant()
    def open_connections_hold_what_their_books_want(self) -> None:
        for session, socket in self.sockets.items():
            if socket.conn.is_open:
                assert socket.subscribed == set(session.subscriptions.desired)

    @invariant()
    def nothing_waits_for_nobody(self) -> None:
        """A connection that may connect is either granted or waits for a deadline."""
        deadline = self.endpoint.next_deadline()
        waiting = [
            s
            for s in self.endpoint.sessions
            if self.endpoint.wanted(s)
            and self.endpoint.pool.state_of(s.index) is PooledState.WAITING
        ]
        assert (deadline is None) == (not waiting)


PoolSessionsMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None
)
test_pool_sessions_machine = PoolSessionsMachine.TestCase


# --- examples -----------------------------------------------------------------------------


def test_the_first_connection_is_held_and_the_others_hold_channels() -> None:
    endpoint = make_pool()
    sessions = [endpoint.subscribe(channel, 0.0) for channel in CHANNELS[:7]]
    assert [s.index for s in sessions] == [1, 1, 1, 2, 2, 2, 3]
    assert endpoint.primary() is sessions[0]
    assert all(endpoint.granted(s) for s in endpoint.sessions)  # a fresh budget lets all go
    touched, refused = endpoint.unsubscribe_many(CHANNELS[:7], 1.0)
    assert refused == []
    assert [s.index for s in touched] == [1, 2, 3]
    # The held first connection keeps going, empty; the others are gone (never connected).
    assert [s.index for s in endpoint.sessions] == [1]
    assert endpoint.desired == frozenset()


def test_a_stopped_endpoint_parks_its_connections_until_it_is_used_again() -> None:
    endpoint = make_pool()
    session = endpoint.subscribe(CHANNELS[0], 0.0)
    endpoint.stop(1.0)
    assert session.state is SessionState.STOPPED and not endpoint.wanted(session)
    assert endpoint.next_deadline() is None  # parked: waits for no time
    assert not endpoint.poll(1000.0)
    endpoint.resume(1000.0)
    assert endpoint.wanted(session) and endpoint.granted(session)
    assert session.subscriptions.desired == (CHANNELS[0],)


def test_attempts_of_retired_connections_still_count() -> None:
    endpoint = make_pool()
    for channel in CHANNELS[:4]:
        endpoint.subscribe(channel, 0.0)
    second = endpoint.session_of(CHANNELS[3])
    assert second is not None and second.index == 2
    second.start_attempt(0.0)
    second.transport_failed(0.0, OSError("refused"))
    endpoint.unsubscribe(CHANNELS[3], 1.0)
    assert [s.index for s in endpoint.sessions] == [1]
    assert endpoint.connection_attempts == 1
    assert second.state is SessionState.STOPPED


def test_health_shows_each_connection() -> None:
    endpoint = make_pool()
    for channel in CHANNELS[:4]:
        endpoint.subscribe(channel, 0.0)
    health = endpoint.health()
    assert [(h.endpoint, h.index, h.channels, h.connected, h.state) for h in health] == [
        ("public", 1, 3, False, "connecting"),
        ("public", 2, 1, False, "connecting"),
    ]
    endpoint.stop(1.0)
    assert [h.state for h in endpoint.health()] == ["stopped", "stopped"]


def test_a_connection_started_without_a_grant_still_counts_as_a_request() -> None:
    budget = ConnectionBudget(max_requests=2, window=10.0, burst=1, rate=0.1)
    endpoint = make_pool(budget)
    session = endpoint.primary()  # waits: primary() does not poll
    assert not endpoint.granted(session)
    session.start_attempt(0.0)  # a caller that paces itself
    assert budget.requests_in_window(0.0) == 1
    assert endpoint.pool.state_of(session.index) is PooledState.CONNECTING


def test_a_session_no_longer_in_the_pool_cannot_start() -> None:
    endpoint = make_pool()
    endpoint.subscribe(CHANNELS[0], 0.0)
    for channel in CHANNELS[1:4]:
        endpoint.subscribe(channel, 0.0)
    second = endpoint.session_of(CHANNELS[3])
    assert second is not None
    endpoint.unsubscribe(CHANNELS[3], 0.0)
    with pytest.raises(RuntimeError, match="no longer"):
        second.start_attempt(0.0)


def test_used_again_while_closing_reconnects_at_once() -> None:
    endpoint = make_pool()
    session = endpoint.subscribe(CHANNELS[0], 0.0)
    conn = session.start_attempt(0.0)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), 0.0)
    for event in conn.events():
        if isinstance(event, Connected):
            session.connected(0.0)
    endpoint.stop(1.0)  # the close handshake starts...
    endpoint.resume(1.0)  # ...and the endpoint is wanted again before it ends
    assert endpoint.wanted(session)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.close(), 1.5)
    [closed] = [e for e in conn.events() if isinstance(e, ConnectionClosed)]
    decision = session.connection_closed(1.5, closed)
    assert decision == Reconnect(0.0, 0, "reconnect requested", (CHANNELS[0],))
    assert endpoint.granted(session)  # at once: no backoff for a connection the user closed


def test_a_grant_used_late_then_a_disconnect_used_again_stays_within_the_window() -> None:
    """Found by the machine: three `Connect`s granted at t=0 were used at t=60, when the
    window had already forgotten requests counted at their grant; the disconnect-and-use-again
    that followed reconnected all three at once: six connects at t=60, five allowed per 50 s.
    Requests count from when the attempt starts, so the third reconnect waits its turn."""
    machine = PoolSessionsMachine()
    machine.start(burst=3, rate=0.05)
    machine.open_a_stream(channels=CHANNELS[:7])  # three connections, all granted at t=0
    machine.advance(seconds=60.0)
    machine.everything_granted_connects()
    assert machine.connect_times == [60.0] * 3
    machine.limits_hold()
    machine.disconnect_and_use_again_at_once()
    machine.limits_hold()
    machine.everything_granted_connects()
    machine.limits_hold()
    assert len(machine.connect_times) == MAX_REQUESTS  # all the window allows...
    [late] = [s for s in machine.endpoint.sessions if s not in machine.sockets]
    # ...and the last one waits in the pool for the budget, its channels kept.
    assert machine.endpoint.pool.state_of(late.index) is PooledState.WAITING
    assert machine.endpoint.wanted(late) and not machine.endpoint.granted(late)
    assert machine.endpoint.next_deadline() == pytest.approx(60.0 + REQUESTS_WINDOW)
    machine.advance(seconds=REQUESTS_WINDOW - 0.5)
    assert not machine.endpoint.granted(late)
    machine.advance(seconds=0.5)
    machine.everything_granted_connects()
    machine.limits_hold()
    assert late in machine.sockets and late.state is SessionState.CONNECTED
    machine.each_wanted_channel_is_on_exactly_one_connection()
    machine.open_connections_hold_what_their_books_want()


def open_session(endpoint: SessionPool, session: PooledSession, now: float) -> ServerPeer:
    """Start the session's attempt and complete its handshake against a scripted server."""
    conn = session.start_attempt(now)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), now)
    for event in conn.events():
        if isinstance(event, Connected):
            session.connected(now)
    assert endpoint.pool.state_of(session.index) is PooledState.OPEN
    return peer


def test_used_again_while_closing_without_budget_waits_in_the_pool_for_its_turn() -> None:
    budget = ConnectionBudget(max_requests=1, window=10.0, burst=1, rate=100.0)
    endpoint = make_pool(budget)
    session = endpoint.subscribe(CHANNELS[0], 0.0)
    peer = open_session(endpoint, session, 5.0)
    endpoint.stop(6.0)
    endpoint.resume(6.0)  # wanted again before the close has ended
    conn = session.connection
    assert conn is not None
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.close(), 7.0)
    [closed] = [e for e in conn.events() if isinstance(e, ConnectionClosed)]
    assert isinstance(session.connection_closed(7.0, closed), Reconnect)
    # The window still holds the attempt of t=5: no attempt goes out past the budget.
    assert endpoint.pool.state_of(session.index) is PooledState.WAITING
    assert not endpoint.granted(session) and endpoint.next_deadline() == pytest.approx(15.0)
    assert not endpoint.poll(14.9)
    assert endpoint.poll(15.0) and endpoint.granted(session)
    session.start_attempt(15.0)
    assert budget.requests_in_window(15.0) == 1


def test_an_attempt_on_a_connection_already_under_way_is_refused_uncounted() -> None:
    budget = ConnectionBudget()
    endpoint = make_pool(budget)
    session = endpoint.subscribe(CHANNELS[0], 0.0)
    open_session(endpoint, session, 0.0)
    with pytest.raises(RuntimeError, match="open and was granted no attempt"):
        session.start_attempt(1.0)
    assert budget.requests_in_window(1.0) == 1
    assert session.connection_attempts == 1


def test_a_grant_the_disconnect_left_unused_is_released() -> None:
    budget = ConnectionBudget(max_requests=1, window=10.0, burst=1, rate=100.0)
    endpoint = make_pool(budget)
    session = endpoint.subscribe(CHANNELS[0], 0.0)
    assert endpoint.granted(session)
    endpoint.stop(1.0)  # before the attempt went out
    assert not endpoint.granted(session)
    assert budget.held == 0 and budget.requests_in_window(1.0) == 0
    endpoint.resume(2.0)
    assert endpoint.granted(session)  # the window had room: nothing went out
