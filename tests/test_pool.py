"""ConnectionPool and ConnectionBudget: channel placement and connection pacing within WEEX's
per-connection and per-IP limits (protocol doc §5.1)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from weex_proto.errors import SubscriptionLimitError
from weex_proto.pool import (
    Close,
    Connect,
    ConnectionBudget,
    ConnectionPool,
    ConnectLater,
    ConnectNow,
    PoolAction,
    PooledState,
    Send,
)


def tickers(n: int) -> list[str]:
    return [f"ticker.cmt_sym{i}usdt" for i in range(n)]


def connects(actions: list[PoolAction]) -> list[int]:
    return [a.connection for a in actions if isinstance(a, Connect)]


def max_in_any_window(times: list[float], window: float) -> int:
    """The most events in any window ending at an event: s counts at t while s + window > t."""
    return max((sum(1 for s in times if s <= t < s + window) for t in times), default=0)


# --- ConnectionBudget ---------------------------------------------------------------------------


def test_budget_defaults_follow_the_documented_limits() -> None:
    budget = ConnectionBudget()
    assert (budget.max_connections, budget.max_requests, budget.window) == (100, 300, 300.0)
    assert budget.rate == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_connections": 0},
        {"max_requests": 0},
        {"window": 0.0},
        {"window": float("inf")},
        {"burst": 0},
        {"max_requests": 5, "burst": 6},
        {"rate": 0.0},
        {"rate": float("nan")},
    ],
)
def test_budget_refuses_impossible_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ConnectionBudget(**kwargs)  # type: ignore[arg-type]


def test_budget_bursts_then_paces_at_its_rate() -> None:
    budget = ConnectionBudget(burst=3, rate=0.5)
    assert [budget.request(0.0) for _ in range(3)] == [ConnectNow()] * 3
    assert budget.request(0.0) == ConnectLater(2.0)
    assert budget.request(1.9) == ConnectLater(2.0)
    assert budget.request(2.0) == ConnectNow()
    assert budget.requests_in_window(2.0) == 4


def test_budget_window_holds_the_hard_limit_whatever_the_rate() -> None:
    # A generous bucket: only the sliding window stops the fourth request.
    budget = ConnectionBudget(max_requests=3, window=10.0, burst=3, rate=100.0)
    for t in (0.0, 1.0, 2.0):
        assert budget.request(t) == ConnectNow()
    assert budget.request(5.0) == ConnectLater(10.0)
    assert budget.request(10.0) == ConnectNow()
    assert budget.request(10.5) == ConnectLater(11.0)


def test_budget_slots_cap_concurrent_connections() -> None:
    budget = ConnectionBudget(max_connections=2)
    assert budget.reserve_slot() and budget.reserve_slot()
    assert not budget.reserve_slot()
    budget.release_slot()
    assert budget.connections == 1 and budget.reserve_slot()
    budget.release_slot()
    budget.release_slot()
    with pytest.raises(RuntimeError):
        budget.release_slot()


@settings(max_examples=200, deadline=None)
@given(
    max_requests=st.integers(1, 8),
    burst_share=st.floats(0.0, 1.0),
    rate=st.floats(0.05, 50.0),
    gaps=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=80),
)
def test_budget_never_exceeds_its_window_and_its_promises_hold(
    max_requests: int, burst_share: float, rate: float, gaps: list[float]
) -> None:
    window = 10.0
    burst = max(1, round(burst_share * max_requests))
    budget = ConnectionBudget(max_requests=max_requests, window=window, burst=burst, rate=rate)
    granted: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        verdict = budget.request(now)
        if isinstance(verdict, ConnectNow):
            granted.append(now)
            continue
        assert verdict.not_before > now
        # The promise: nothing else asked meanwhile, so asking at not_before succeeds.
        now = verdict.not_before
        assert budget.request(now) == ConnectNow()
        granted.append(now)
    assert max_in_any_window(granted, window) <= max_requests
    # The bucket: never more than `burst` plus what the rate refilled since the first.
    for i, t in enumerate(granted):
        later = [u for u in granted[i:] if u >= t]
        assert len(later) <= burst + (later[-1] - t) * rate + 1e-6


def test_a_reserved_request_counts_until_it_is_sent_then_from_when_it_went() -> None:
    budget = ConnectionBudget(max_requests=2, window=10.0, burst=2, rate=100.0)
    assert budget.reserve(0.0) == ConnectNow()
    assert budget.requests_in_window(100.0) == 1  # held: the window never forgets it
    budget.sent(100.0)  # the grant was used late: WEEX sees the request now
    assert budget.held == 0
    assert budget.requests_in_window(109.9) == 1
    assert budget.requests_in_window(110.0) == 0
    assert budget.reserve(110.0) == ConnectNow()
    assert budget.reserve(110.0) == ConnectNow()
    assert budget.available_at() == math.inf  # only a send (or release) can free the window
    assert budget.reserve(1e9) == ConnectLater(math.inf)
    budget.release()  # one will not go out: forgotten, not counted
    assert budget.requests_in_window(110.0) == 1
    assert budget.reserve(110.0) == ConnectNow()
    for _ in range(2):
        budget.sent(111.0)
    assert budget.held == 0 and budget.available_at() == pytest.approx(121.0)
    with pytest.raises(RuntimeError, match="without a reserved request"):
        budget.sent(200.0)
    with pytest.raises(RuntimeError, match="without a reserved request"):
        budget.release()


@settings(max_examples=200, deadline=None)
@given(
    max_requests=st.integers(1, 6),
    rate=st.floats(0.05, 50.0),
    steps=st.lists(
        st.tuples(st.floats(0.0, 8.0), st.sampled_from(["reserve", "send", "release"])),
        min_size=1,
        max_size=80,
    ),
)
def test_requests_sent_whenever_after_their_reservation_never_exceed_the_window(
    max_requests: int, rate: float, steps: list[tuple[float, str]]
) -> None:
    window = 10.0
    budget = ConnectionBudget(
        max_requests=max_requests, window=window, burst=max_requests, rate=rate
    )
    held = 0
    sent: list[float] = []
    now = 0.0
    for gap, step in steps:
        now += gap
        if step == "reserve":
            verdict = budget.reserve(now)
            if isinstance(verdict, ConnectNow):
                held += 1
            else:
                assert verdict.not_before > now
        elif held and step == "send":
            budget.sent(now)
            held -= 1
            sent.append(now)
        elif held:
            budget.release()
            held -= 1
        assert budget.held == held
    assert max_in_any_window(sent, window) <= max_requests


# --- ConnectionPool: examples -------------------------------------------------------------------


def open_all(pool: ConnectionPool, actions: list[PoolAction], now: float) -> list[Send]:
    """Carry out the Connects (each succeeds) and return every Send that results."""
    sends = [a for a in actions if isinstance(a, Send)]
    for connection in connects(actions):
        sends += [a for a in pool.connected(connection, now) if isinstance(a, Send)]
    return sends


def test_350_channels_go_on_four_connections_of_at_most_100() -> None:
    pool = ConnectionPool(ConnectionBudget())
    actions: list[PoolAction] = []
    for channel in tickers(350):
        actions += pool.subscribe(channel, 0.0)
    assert connects(actions) == [1, 2, 3, 4]
    sends = open_all(pool, actions, 1.0)
    assert sorted(s.channel for s in sends) == sorted(tickers(350))
    sizes = [len(pool.channels_of(c)) for c in pool.connection_ids]
    assert sizes == [100, 100, 100, 50]
    assert {pool.state_of(c) for c in pool.connection_ids} == {PooledState.OPEN}


def test_a_drop_resubscribes_only_that_connections_channels() -> None:
    pool = ConnectionPool(ConnectionBudget())
    actions: list[PoolAction] = []
    for channel in tickers(250):
        actions += pool.subscribe(channel, 0.0)
    open_all(pool, actions, 0.0)
    before = dict(pool.placement)
    second = pool.channels_of(2)

    assert connects(pool.connection_lost(2, 5.0)) == [2]
    assert pool.state_of(1) is PooledState.OPEN and pool.state_of(3) is PooledState.OPEN
    resubscribed = pool.connected(2, 6.0)
    assert resubscribed == [Send(2, "subscribe", channel) for channel in second]
    assert dict(pool.placement) == before


def test_a_dropped_connection_waits_for_its_backoff_and_the_budget() -> None:
    pool = ConnectionPool(ConnectionBudget(burst=1, rate=0.1))
    open_all(pool, pool.subscribe("ticker.a", 0.0), 0.0)
    assert pool.connection_lost(1, 1.0, retry_at=4.0) == []
    assert pool.next_deadline() == 10.0  # the bucket refills one token in 10 s
    assert pool.poll(9.9) == []
    assert pool.poll(10.0) == [Connect(1)]
    assert pool.next_deadline() is None


def test_a_full_connection_out_of_operations_makes_room_elsewhere() -> None:
    pool = ConnectionPool(ConnectionBudget(), max_channels=3, max_operations=4, window=100.0)
    open_all(pool, pool.subscribe("a", 0.0), 0.0)
    for channel in ("b", "c"):
        pool.subscribe(channel, 1.0)
    pool.unsubscribe("c", 2.0)  # four operations spent on connection 1
    assert connects(pool.subscribe("d", 3.0)) == [2]
    assert pool.placement["d"] == 2


def test_an_emptied_connection_is_closed_without_spending_an_unsubscribe() -> None:
    budget = ConnectionBudget()
    pool = ConnectionPool(budget, max_channels=2)
    actions: list[PoolAction] = []
    for channel in ("a", "b", "c"):
        actions += pool.subscribe(channel, 0.0)
    open_all(pool, actions, 0.0)
    assert pool.unsubscribe("c", 1.0) == [Close(2)]
    assert pool.state_of(2) is PooledState.CLOSING
    assert budget.connections == 2  # its socket is not gone yet
    assert connects(pool.subscribe("d", 1.5)) == [3]  # not onto the closing one
    assert pool.connection_lost(2, 2.0) == []
    assert pool.connection_ids == (1, 3) and budget.connections == 2


def test_a_connection_emptied_before_it_connected_is_forgotten() -> None:
    budget = ConnectionBudget(burst=1, rate=0.01)
    pool = ConnectionPool(budget, max_channels=1)
    assert connects(pool.subscribe("a", 0.0)) == [1]
    assert pool.subscribe("b", 0.0) == []  # connection 2 waits for the bucket
    assert pool.unsubscribe("b", 0.5) == []
    assert pool.connection_ids == (1,) and budget.connections == 1
    assert pool.next_deadline() is None


def test_past_the_connection_cap_the_pool_refuses_and_changes_nothing() -> None:
    pool = ConnectionPool(ConnectionBudget(max_connections=2), max_channels=2)
    for channel in tickers(4):
        pool.subscribe(channel, 0.0)
    before = dict(pool.placement)
    with pytest.raises(SubscriptionLimitError, match="limit of 2 connections"):
        pool.subscribe("ticker.extra", 0.0)
    assert dict(pool.placement) == before


def test_refusal_says_when_an_operation_comes_back() -> None:
    pool = ConnectionPool(
        ConnectionBudget(max_connections=1), max_channels=5, max_operations=5, window=100.0
    )
    open_all(pool, pool.subscribe("a", 0.0), 0.0)
    for t, channel in ((10.0, "b"), (20.0, "c")):
        pool.subscribe(channel, t)
    pool.unsubscribe("c", 30.0)
    pool.subscribe("c", 40.0)  # the fifth operation
    with pytest.raises(SubscriptionLimitError) as caught:
        pool.subscribe("d", 50.0)
    assert caught.value.retry_after == pytest.approx(50.0)  # the first leaves at 100
    with pytest.raises(SubscriptionLimitError):
        pool.unsubscribe("b", 50.0)
    assert pool.placement["b"] == 1


def test_a_rejected_last_channel_closes_its_connection() -> None:
    pool = ConnectionPool(ConnectionBudget())
    open_all(pool, pool.subscribe("ticker.nope", 0.0), 0.0)
    assert pool.on_rejected(1, "ticker.nope") == [Close(1)]
    assert "ticker.nope" not in pool.placement


def test_mass_reconnect_is_paced_by_the_shared_budget() -> None:
    budget = ConnectionBudget()  # documented defaults: burst 20, then one per second
    public, private = ConnectionPool(budget), ConnectionPool(budget)
    for pool, name in ((public, "pub"), (private, "priv")):
        actions: list[PoolAction] = []
        for i in range(50 * 100):
            actions += pool.subscribe(f"{name}.{i}", 0.0)
        while pool.next_deadline() is not None:  # the initial connects, paced too
            actions += pool.poll(pool.next_deadline() or 0.0)
        open_all(pool, actions, 0.0)
    assert budget.connections == 100
    with pytest.raises(SubscriptionLimitError):
        public.subscribe("one.too.many", 100.0)

    now = 1000.0  # a network blip drops all 100 connections
    granted: list[float] = []
    for pool in (public, private):
        for connection in pool.connection_ids:
            granted += [now] * len(connects(pool.connection_lost(connection, now)))
    assert len(granted) == 20
    while any(p.next_deadline() is not None for p in (public, private)):
        now = min(d for p in (public, private) if (d := p.next_deadline()) is not None)
        for pool in (public, private):
            for connection in connects(pool.poll(now)):
                granted.append(now)
                pool.connected(connection, now)
    assert len(granted) == 100
    assert granted[-1] == pytest.approx(1080.0)
    assert max_in_any_window(granted, 300.0) <= 300


# --- ConnectionPool: stateful, against the limits -----------------------------------------------

MAX_CHANNELS = 3
MAX_OPERATIONS = 5
OPERATIONS_WINDOW = 100.0
MAX_CONNECTIONS = 4
MAX_REQUESTS = 5
REQUESTS_WINDOW = 50.0
CHANNELS = [f"c{i}" for i in range(MAX_CHANNELS * MAX_CONNECTIONS + 2)]


class PoolMachine(RuleBasedStateMachine):
    """Drives a pool as an adapter would, against a fake server that acks at once.

    The model keeps what the sockets did (connect times, operation times per socket) and where
    each wanted channel was first placed; the invariants check the documented limits on that.
    """

    @initialize(burst=st.integers(1, MAX_REQUESTS), rate=st.sampled_from([0.05, 0.2, 5.0]))
    def start(self, burst: int, rate: float) -> None:
        self.budget = ConnectionBudget(
            max_connections=MAX_CONNECTIONS,
            max_requests=MAX_REQUESTS,
            window=REQUESTS_WINDOW,
            burst=burst,
            rate=rate,
        )
        self.pool = ConnectionPool(
            self.budget,
            max_channels=MAX_CHANNELS,
            max_operations=MAX_OPERATIONS,
            window=OPERATIONS_WINDOW,
        )
        self.now = 0.0
        self.wanted: set[str] = set()
        self.home: dict[str, int] = {}  # where each wanted channel was placed
        self.sockets: dict[int, str] = {}  # "connecting" | "open"
        self.connect_times: list[float] = []
        self.operations: dict[int, list[float]] = {}  # per socket, since it opened
        self.server: dict[int, set[str]] = {}  # what the server holds per open socket
        self.held: int | None = None

    # carrying out actions

    def apply(self, actions: list[PoolAction]) -> None:
        for action in actions:
            if isinstance(action, Connect):
                assert action.connection not in self.sockets
                assert self.pool.state_of(action.connection) is PooledState.CONNECTING
                self.sockets[action.connection] = "connecting"
                self.connect_times.append(self.now)
            elif isinstance(action, Send):
                self.send(action)
            else:
                assert isinstance(action, Close)
                assert self.sockets.pop(action.connection, None) is not None
                self.server.pop(action.connection, None)
                self.apply(self.pool.connection_lost(action.connection, self.now))

    def send(self, action: Send) -> None:
        connection = action.connection
        assert self.sockets.get(connection) == "open", "a request for a socket that is not open"
        ops = self.operations[connection]
        ops.append(self.now)
        assert len([t for t in ops if t > self.now - OPERATIONS_WINDOW]) <= MAX_OPERATIONS
        if action.operation == "subscribe":
            assert len(self.server[connection]) < MAX_CHANNELS
            self.server[connection].add(action.channel)
            assert self.pool.on_subscribed(connection, action.channel)
        else:
            self.server[connection].discard(action.channel)
            assert self.pool.on_unsubscribed(connection, action.channel)

    def living(self) -> list[int]:
        return [
            c for c in self.pool.connection_ids if self.pool.state_of(c) is not PooledState.CLOSING
        ]

    def ops_left(self, connection: int) -> int:
        if self.sockets.get(connection) != "open":
            return MAX_OPERATIONS
        ops = self.operations[connection]
        return MAX_OPERATIONS - len([t for t in ops if t > self.now - OPERATIONS_WINDOW])

    # rules: the user

    @rule(channel=st.sampled_from(CHANNELS))
    def subscribe(self, channel: str) -> None:
        if channel in self.wanted:
            assert self.pool.subscribe(channel, self.now) == []
            return
        before = dict(self.pool.placement)
        try:
            actions = self.pool.subscribe(channel, self.now)
        except SubscriptionLimitError:
            assert len(self.pool.connection_ids) == MAX_CONNECTIONS
            for c in self.living():
                assert len(self.pool.channels_of(c)) == MAX_CHANNELS or self.ops_left(c) == 0
            assert dict(self.pool.placement) == before
            return
        self.wanted.add(channel)
        self.home[channel] = self.pool.placement[channel]
        self.apply(actions)

    @precondition(lambda self: bool(self.wanted))
    @rule(data=st.data())
    def unsubscribe(self, data: st.DataObject) -> None:
        channel = data.draw(st.sampled_from(sorted(self.wanted)))
        connection = self.home[channel]
        alone = self.pool.channels_of(connection) == (channel,) and connection != self.held
        try:
            actions = self.pool.unsubscribe(channel, self.now)
        except SubscriptionLimitError:
            assert not alone and self.ops_left(connection) == 0
            assert self.pool.placement[channel] == connection
            return
        self.wanted.remove(channel)
        del self.home[channel]
        if alone:
            assert not any(isinstance(a, Send) for a in actions)
        self.apply(actions)

    @precondition(lambda self: bool(self.wanted))
    @rule(data=st.data())
    def end_a_stream(self, data: st.DataObject) -> None:
        """Channels let go together: a connection they empty is closed, no unsubscribe spent."""
        channels = data.draw(st.sets(st.sampled_from(sorted(self.wanted)), min_size=1))
        emptied = {
            c
            for c in self.pool.connection_ids
            if set(self.pool.channels_of(c)) <= channels and c != self.held
        }
        actions, rest = self.pool.unsubscribe_emptying(channels, self.now)
        assert not any(isinstance(a, Send) for a in actions)
        assert {a.connection for a in actions if isinstance(a, Close)} <= emptied
        assert not set(self.pool.connection_ids) & {
            c for c in emptied if self.sockets.get(c) is None
        }  # never connected: simply forgotten
        for channel in channels - set(rest):
            self.wanted.remove(channel)
            del self.home[channel]
        self.apply(actions)
        for channel in rest:
            assert self.home[channel] not in emptied
            try:
                self.apply(self.pool.unsubscribe(channel, self.now))
            except SubscriptionLimitError:
                continue
            self.wanted.remove(channel)
            del self.home[channel]

    @precondition(lambda self: self.held is None)
    @rule()
    def hold_one(self) -> None:
        self.held = self.pool.hold()
        assert self.pool.hold() == self.held  # one held connection, however often asked
        self.apply(self.pool.poll(self.now))

    # rules: time and the network

    @rule(seconds=st.sampled_from([0.5, 3.0, 20.0, 60.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.apply(self.pool.poll(self.now))

    @precondition(lambda self: "connecting" in self.sockets.values())
    @rule(data=st.data())
    def handshake_succeeds(self, data: st.DataObject) -> None:
        connection = data.draw(
            st.sampled_from(sorted(c for c, s in self.sockets.items() if s == "connecting"))
        )
        expected = self.pool.channels_of(connection)
        self.sockets[connection] = "open"
        self.operations[connection] = []
        self.server[connection] = set()
        actions = self.pool.connected(connection, self.now)
        # Exactly this connection's channels, nothing for any other.
        assert actions == [Send(connection, "subscribe", channel) for channel in expected]
        self.apply(actions)

    @precondition(lambda self: bool(self.sockets))
    @rule(data=st.data(), backoff=st.sampled_from([None, 1.0, 30.0]))
    def socket_lost(self, data: st.DataObject, backoff: float | None) -> None:
        connection = data.draw(st.sampled_from(sorted(self.sockets)))
        channels = self.pool.channels_of(connection)
        others = {c: self.pool.channels_of(c) for c in self.pool.connection_ids if c != connection}
        del self.sockets[connection]
        self.server.pop(connection, None)
        retry_at = None if backoff is None else self.now + backoff
        actions = self.pool.connection_lost(connection, self.now, retry_at=retry_at)
        assert self.pool.channels_of(connection) == channels  # its channels wait on it
        assert {c: self.pool.channels_of(c) for c in others} == others
        if retry_at is not None and retry_at > self.now:
            assert connection not in connects(actions)
        self.apply(actions)

    # invariants: the limits and the bookkeeping

    @invariant()
    def the_held_connection_lives(self) -> None:
        if self.held is not None:
            assert self.held in self.pool.connection_ids
            assert self.pool.state_of(self.held) is not PooledState.CLOSING

    @invariant()
    def connection_limits_hold(self) -> None:
        assert len(self.pool.connection_ids) == self.budget.connections <= MAX_CONNECTIONS
        assert max_in_any_window(self.connect_times, REQUESTS_WINDOW) <= MAX_REQUESTS
        for connection in self.pool.connection_ids:
            assert len(self.pool.channels_of(connection)) <= MAX_CHANNELS

    @invariant()
    def every_wanted_channel_is_placed_once_and_never_moves(self) -> None:
        placed = [ch for c in self.pool.connection_ids for ch in self.pool.channels_of(c)]
        assert len(placed) == len(set(placed))
        assert set(placed) == self.wanted
        assert dict(self.pool.placement) == self.home
        for channel, connection in self.home.items():
            assert channel in self.pool.channels_of(connection)

    @invariant()
    def sockets_match_the_pool(self) -> None:
        for connection in self.pool.connection_ids:
            state = self.pool.state_of(connection)
            socket = self.sockets.get(connection)
            expected = {
                PooledState.WAITING: None,
                PooledState.CONNECTING: "connecting",
                PooledState.OPEN: "open",
            }
            assert state is not PooledState.CLOSING  # Close is carried out at once here
            assert socket == expected[state]
            if socket == "open":
                assert self.server[connection] == set(self.pool.channels_of(connection))
        assert set(self.sockets) <= set(self.pool.connection_ids)

    @invariant()
    def a_waiting_connection_is_never_forgotten(self) -> None:
        waiting = [
            c for c in self.pool.connection_ids if self.pool.state_of(c) is PooledState.WAITING
        ]
        deadline = self.pool.next_deadline()
        assert (deadline is None) == (not waiting)
        # Every rule that moves time or frees a connection polls: nothing due is left waiting.
        assert deadline is None or deadline > self.now


PoolMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_pool_machine = PoolMachine.TestCase


def test_pool_refuses_limits_a_connection_could_not_keep() -> None:
    with pytest.raises(ValueError, match="max_operations"):
        ConnectionPool(ConnectionBudget(), max_channels=10, max_operations=9)


# --- what the client needs beyond placement -------------------------------------------------


def test_a_held_connection_outlives_its_last_channel() -> None:
    budget = ConnectionBudget()
    pool = ConnectionPool(budget, max_channels=2)
    held = pool.hold()
    assert pool.connection_ids == (held,) and pool.state_of(held) is PooledState.WAITING
    assert connects(pool.poll(0.0)) == [held]  # a held one waits for poll like any other
    open_all(pool, pool.subscribe("a", 0.0), 0.0)  # channels fill the held one first
    assert pool.placement == {"a": held}
    pool.connected(held, 0.0)
    pool.on_subscribed(held, "a")
    assert pool.unsubscribe("a", 1.0) == [Send(held, "unsubscribe", "a")]  # not a Close
    assert pool.connection_lost(held, 2.0) == [Connect(held)]  # empty, yet reconnected
    assert budget.connections == 1


def test_a_parked_connection_waits_for_retry_now_and_keeps_its_channels() -> None:
    pool = ConnectionPool(ConnectionBudget())
    open_all(pool, pool.subscribe("a", 0.0), 0.0)
    assert pool.connection_lost(1, 1.0, retry_at=math.inf) == []
    assert pool.next_deadline() is None and pool.poll(1e9) == []
    assert pool.channels_of(1) == ("a",) and pool.budget.connections == 1
    assert pool.retry_now(1, 5.0) == [Connect(1)]


def test_retry_now_cuts_a_backoff_short_but_not_the_budget() -> None:
    pool = ConnectionPool(ConnectionBudget(burst=1, rate=0.1))
    open_all(pool, pool.subscribe("a", 0.0), 0.0)
    assert pool.connection_lost(1, 1.0, retry_at=100.0) == []
    assert pool.retry_now(1, 2.0) == []  # no token until t=10
    assert pool.next_deadline() == pytest.approx(10.0)
    assert pool.poll(10.0) == [Connect(1)]
    assert pool.retry_now(1, 11.0) == []  # CONNECTING: left alone


def test_a_connection_opened_without_poll_counts_its_request() -> None:
    budget = ConnectionBudget(max_requests=1, window=10.0, burst=1)
    pool = ConnectionPool(budget)
    held = pool.hold()
    pool.connect_now(held, 0.0)
    assert pool.state_of(held) is PooledState.CONNECTING
    assert budget.requests_in_window(0.0) == 1
    assert budget.request(1.0) == ConnectLater(10.0)  # the window saw it
    with pytest.raises(RuntimeError, match="not waiting"):
        pool.connect_now(held, 1.0)


def test_a_book_opened_by_its_connection_is_not_subscribed_twice() -> None:
    pool = ConnectionPool(ConnectionBudget())
    assert connects(pool.subscribe("a", 0.0)) == [1]
    requests = pool.book(1).connection_opened(0.0)  # what a WeexConnection does on accept
    assert requests == [{"event": "subscribe", "channel": "a"}]
    assert pool.connected(1, 0.0) == []
    assert pool.state_of(1) is PooledState.OPEN


def test_a_channel_the_connection_already_forgot_still_empties_it() -> None:
    pool = ConnectionPool(ConnectionBudget(), max_channels=1)
    actions: list[PoolAction] = []
    for channel in ("a", "b"):
        actions += pool.subscribe(channel, 0.0)
    open_all(pool, actions, 0.0)
    pool.book(2).on_rejected("b")  # the connection saw the server refuse it
    assert pool.on_rejected(2, "b") == [Close(2)]
    assert "b" not in pool.placement
    pool.book(1).on_rejected("a")
    assert pool.unsubscribe("a", 1.0) == [Close(1)]  # no unsubscribe for a refused channel


def test_channels_let_go_together_close_the_connections_they_empty() -> None:
    pool = ConnectionPool(ConnectionBudget(), max_channels=2)
    actions: list[PoolAction] = []
    for channel in ("a", "b", "c", "d", "e"):
        actions += pool.subscribe(channel, 0.0)
    open_all(pool, actions, 0.0)
    for connection in pool.connection_ids:
        for channel in pool.channels_of(connection):
            pool.on_subscribed(connection, channel)
    closing, rest = pool.unsubscribe_emptying(["c", "d", "e", "b"], 1.0)
    assert closing == [Close(2), Close(3)]
    assert rest == ["b"]  # connection 1 keeps "a": "b" is unsubscribed on its own
    assert pool.unsubscribe("b", 1.0) == [Send(1, "unsubscribe", "b")]


def test_a_grant_used_late_counts_from_when_its_attempt_started() -> None:
    budget = ConnectionBudget(max_requests=2, window=10.0, burst=2, rate=100.0)
    pool = ConnectionPool(budget, max_channels=1)
    actions = pool.subscribe("a", 0.0) + pool.subscribe("b", 0.0)
    assert connects(actions) == [1, 2] and pool.granted(1) and pool.granted(2)
    for connection in (1, 2):  # used only at t=60, long after the grants
        pool.attempt_started(connection, 60.0)
        assert not pool.granted(connection)
    assert budget.requests_in_window(60.0) == 2
    # Both fail at once: the window holds the two attempts of t=60, so neither goes again
    # before t=70 (counted from their grants they would both go at once).
    assert pool.connection_lost(1, 60.0) == []
    assert pool.connection_lost(2, 60.0) == []
    assert pool.next_deadline() == pytest.approx(70.0)
    assert connects(pool.poll(70.0)) == [1, 2]


def test_grants_not_started_yet_hold_the_window_until_they_start() -> None:
    budget = ConnectionBudget(max_requests=2, window=10.0, burst=2, rate=100.0)
    pool = ConnectionPool(budget, max_channels=1)
    actions: list[PoolAction] = []
    for channel in ("a", "b", "c"):
        actions += pool.subscribe(channel, 0.0)
    assert connects(actions) == [1, 2]
    assert pool.state_of(3) is PooledState.WAITING
    assert pool.next_deadline() is None  # no time frees the window: a start does
    assert pool.poll(1000.0) == []
    pool.attempt_started(1, 1000.0)  # counts from now; the other grant still holds its place
    assert pool.next_deadline() == pytest.approx(1010.0)
    assert pool.poll(1009.9) == []
    assert connects(pool.poll(1010.0)) == [3]


def test_a_grant_reported_only_by_connected_or_lost_counts_from_then() -> None:
    budget = ConnectionBudget(max_requests=1, window=10.0, burst=1, rate=100.0)
    pool = ConnectionPool(budget)
    assert connects(pool.subscribe("a", 0.0)) == [1]
    pool.connected(1, 30.0)  # a driver that does not report starts: it went by t=30
    assert budget.held == 0
    assert pool.connection_lost(1, 31.0) == []
    assert pool.next_deadline() == pytest.approx(40.0)
    assert pool.poll(40.0) == [Connect(1)]
    assert pool.connection_lost(1, 45.0) == []  # failed before it was reported: counted at 45
    assert pool.next_deadline() == pytest.approx(55.0)


def test_a_withdrawn_grant_frees_its_request() -> None:
    budget = ConnectionBudget(max_requests=1, window=10.0, burst=1, rate=100.0)
    pool = ConnectionPool(budget)
    assert connects(pool.subscribe("a", 0.0)) == [1]
    pool.withdraw_grant(1)  # stopped before its attempt went out
    pool.withdraw_grant(1)  # nothing outstanding: nothing happens
    assert budget.held == 0 and budget.requests_in_window(0.0) == 0
    assert pool.connection_lost(1, 0.1, retry_at=math.inf) == []
    assert pool.retry_now(1, 0.2) == [Connect(1)]  # the window has room: it was never used


def test_an_attempt_the_pool_did_not_grant_is_refused() -> None:
    budget = ConnectionBudget()
    pool = ConnectionPool(budget)
    assert connects(pool.subscribe("a", 0.0)) == [1]
    pool.attempt_started(1, 0.0)
    with pytest.raises(RuntimeError, match="connecting and was granted no attempt"):
        pool.attempt_started(1, 0.5)
    pool.connected(1, 1.0)
    with pytest.raises(RuntimeError, match="open and was granted no attempt"):
        pool.attempt_started(1, 2.0)
    assert budget.requests_in_window(2.0) == 1  # the refused ones were not counted
    pool.connection_lost(1, 3.0, retry_at=5.0)
    pool.attempt_started(1, 3.0)  # waiting: a caller that paces itself, counted
    assert budget.requests_in_window(3.0) == 2
