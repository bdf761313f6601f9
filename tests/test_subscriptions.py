"""SubscriptionBook: desired versus acknowledged channels, and WEEX's per-connection limits."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from weex_proto.errors import RateLimitError, SubscriptionLimitError
from weex_proto.subscriptions import MAX_REFUSED_RESUBSCRIBES, SubscriptionBook

BTC = "ticker.cmt_btcusdt"
ETH = "ticker.cmt_ethusdt"
DEPTH = "depth.cmt_btcusdt.15"


def sub(channel: str) -> dict[str, str]:
    return {"event": "subscribe", "channel": channel}


def unsub(channel: str) -> dict[str, str]:
    return {"event": "unsubscribe", "channel": channel}


def snapshot(book: SubscriptionBook, now: float) -> tuple[object, ...]:
    return (
        book.desired,
        book.active,
        dict(book.pending),
        book.connected,
        book.operations_left(now),
    )


def open_book(*channels: str, now: float = 0.0, **limits: float) -> SubscriptionBook:
    """A connected book whose `channels` are all acknowledged."""
    book = SubscriptionBook(**limits)  # type: ignore[arg-type]
    for channel in channels:
        book.subscribe(channel, now)
    book.connection_opened(now)
    for channel in channels:
        assert book.on_subscribed(channel)
    return book


# --- the defaults are WEEX's documented limits --------------------------------------------


def test_defaults_are_the_documented_limits() -> None:
    book = SubscriptionBook()
    assert (book.max_channels, book.max_operations, book.window) == (100, 240, 3600.0)
    assert book.operations_left(0.0) == 240


@pytest.mark.parametrize(
    "limits",
    [
        {"max_channels": 0},
        {"max_channels": 10, "max_operations": 9},
        {"window": 0.0},
        {"window": float("inf")},
        {"window": float("nan")},
    ],
)
def test_unusable_limits_are_refused(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case breaks a different rule
        SubscriptionBook(**limits)  # type: ignore[arg-type]


# --- while disconnected -------------------------------------------------------------------


def test_subscribing_while_disconnected_sends_nothing_but_remembers() -> None:
    book = SubscriptionBook()
    assert book.subscribe(BTC, 0.0) is None
    assert book.subscribe(ETH, 0.0) is None
    assert book.desired == (BTC, ETH)
    assert book.active == frozenset()
    assert book.pending == {}
    assert not book.connected


def test_unsubscribing_while_disconnected_forgets_without_sending() -> None:
    book = SubscriptionBook()
    book.subscribe(BTC, 0.0)
    book.subscribe(ETH, 0.0)
    assert book.unsubscribe(BTC, 0.0) is None
    assert book.desired == (ETH,)
    assert book.connection_opened(1.0) == [sub(ETH)]


def test_operation_budget_does_not_apply_while_disconnected() -> None:
    book = SubscriptionBook(max_channels=5, max_operations=5, window=10.0)
    for _ in range(3):
        for channel in ("a", "b", "c", "d", "e"):
            book.subscribe(channel, 0.0)
        for channel in ("a", "b", "c", "d", "e"):
            book.unsubscribe(channel, 0.0)
    book.subscribe("a", 0.0)
    assert book.operations_left(0.0) == 5
    assert book.connection_opened(0.0) == [sub("a")]
    assert book.operations_left(0.0) == 4


# --- connecting ---------------------------------------------------------------------------


def test_connection_opened_resubscribes_everything_once_in_order() -> None:
    book = SubscriptionBook()
    for channel in (DEPTH, BTC, ETH, BTC):
        book.subscribe(channel, 0.0)
    assert book.connection_opened(5.0) == [sub(DEPTH), sub(BTC), sub(ETH)]
    assert book.connected
    assert book.pending == {DEPTH: "subscribe", BTC: "subscribe", ETH: "subscribe"}
    assert book.active == frozenset()
    assert book.operations_left(5.0) == 240 - 3


def test_connection_opened_with_nothing_desired_sends_nothing() -> None:
    book = SubscriptionBook()
    assert book.connection_opened(0.0) == []
    assert book.operations_left(0.0) == 240


def test_connection_lost_keeps_desired_and_clears_the_rest() -> None:
    book = open_book(BTC, ETH)
    book.subscribe(DEPTH, 1.0)
    book.connection_lost()
    assert not book.connected
    assert book.desired == (BTC, ETH, DEPTH)
    assert book.active == frozenset()
    assert book.pending == {}
    assert book.connection_opened(2.0) == [sub(BTC), sub(ETH), sub(DEPTH)]


def test_each_connection_gets_a_fresh_operation_budget() -> None:
    book = open_book(max_channels=2, max_operations=3, window=100.0)
    book.subscribe("a", 1.0)
    book.unsubscribe("a", 2.0)
    book.subscribe("b", 3.0)
    assert book.operations_left(3.0) == 0
    book.connection_lost()
    assert book.operations_left(3.0) == 3
    assert book.connection_opened(4.0) == [sub("b")]
    assert book.operations_left(4.0) == 2
    assert book.subscribe("a", 4.0) == sub("a")


def test_reopening_without_a_loss_starts_a_new_connection() -> None:
    book = open_book(BTC)
    book.subscribe(ETH, 1.0)
    assert book.connection_opened(2.0) == [sub(BTC), sub(ETH)]
    assert book.active == frozenset()
    assert book.pending == {BTC: "subscribe", ETH: "subscribe"}


# --- subscribe / unsubscribe while connected ----------------------------------------------


def test_subscribe_while_connected_returns_the_request_and_waits_for_the_ack() -> None:
    book = open_book()
    assert book.subscribe(BTC, 1.0) == sub(BTC)
    assert book.desired == (BTC,)
    assert book.pending == {BTC: "subscribe"}
    assert book.active == frozenset()
    assert book.on_subscribed(BTC)
    assert book.pending == {}
    assert book.active == {BTC}


def test_subscribing_twice_sends_once_and_costs_once() -> None:
    book = open_book()
    assert book.subscribe(BTC, 1.0) == sub(BTC)
    assert book.subscribe(BTC, 1.0) is None
    book.on_subscribed(BTC)
    assert book.subscribe(BTC, 2.0) is None
    assert book.desired == (BTC,)
    assert book.operations_left(2.0) == 239


def test_unsubscribe_while_connected_keeps_the_channel_active_until_acked() -> None:
    book = open_book(BTC, ETH)
    assert book.unsubscribe(BTC, 1.0) == unsub(BTC)
    assert book.desired == (ETH,)
    assert book.pending == {BTC: "unsubscribe"}
    assert book.active == {BTC, ETH}
    assert book.on_unsubscribed(BTC)
    assert book.active == {ETH}
    assert book.pending == {}


def test_unsubscribing_an_unwanted_channel_changes_nothing() -> None:
    book = open_book(BTC)
    before = snapshot(book, 1.0)
    assert book.unsubscribe(ETH, 1.0) is None
    assert snapshot(book, 1.0) == before


def test_pending_is_a_read_only_snapshot() -> None:
    book = open_book()
    book.subscribe(BTC, 0.0)
    pending = book.pending
    book.on_subscribed(BTC)
    assert pending == {BTC: "subscribe"}
    with pytest.raises(TypeError):
        pending[BTC] = "unsubscribe"  # type: ignore[index]


# --- acks ---------------------------------------------------------------------------------


def test_unsolicited_acks_change_nothing() -> None:
    book = open_book(BTC)
    before = snapshot(book, 0.0)
    assert not book.on_subscribed(ETH)
    assert not book.on_subscribed(BTC)  # already active, nothing pending
    assert not book.on_unsubscribed(ETH)
    assert not book.on_unsubscribed(BTC)  # we never asked to leave
    assert snapshot(book, 0.0) == before


def test_acks_while_disconnected_are_ignored() -> None:
    book = SubscriptionBook()
    book.subscribe(BTC, 0.0)
    assert not book.on_subscribed(BTC)
    assert not book.on_unsubscribed(BTC)
    assert book.active == frozenset()


def test_acks_from_a_lost_connection_do_not_count_on_the_next() -> None:
    book = open_book()
    book.subscribe(BTC, 0.0)
    book.connection_lost()
    book.connection_opened(1.0)
    assert book.on_subscribed(BTC)  # this ack answers the resubscribe just sent
    assert not book.on_subscribed(BTC)


def test_subscribe_then_unsubscribe_before_the_ack() -> None:
    book = open_book()
    book.subscribe(BTC, 0.0)
    assert book.unsubscribe(BTC, 0.0) == unsub(BTC)
    assert book.pending == {BTC: "unsubscribe"}
    assert book.on_subscribed(BTC)  # the server does hold it until the unsubscribe lands
    assert book.active == {BTC}
    assert book.on_unsubscribed(BTC)
    assert book.active == frozenset()
    assert book.pending == {}
    assert book.desired == ()


def test_unsubscribe_then_subscribe_again_before_the_ack() -> None:
    book = open_book(BTC)
    book.unsubscribe(BTC, 0.0)
    assert book.subscribe(BTC, 0.0) == sub(BTC)
    assert book.pending == {BTC: "subscribe"}
    assert book.on_unsubscribed(BTC)
    assert book.active == frozenset()
    assert book.on_subscribed(BTC)
    assert book.active == {BTC}
    assert book.pending == {}
    assert book.desired == (BTC,)


# --- rejections ---------------------------------------------------------------------------


def test_rejected_channel_is_no_longer_desired_nor_resent() -> None:
    book = open_book(BTC)
    book.subscribe("ticker.cmt_nonsense", 1.0)
    assert book.on_rejected("ticker.cmt_nonsense")
    assert book.desired == (BTC,)
    assert book.pending == {}
    book.connection_lost()
    assert book.connection_opened(2.0) == [sub(BTC)]


def test_a_refused_new_channel_is_dropped_like_a_rejected_one() -> None:
    book = open_book(BTC)
    book.subscribe(ETH, 1.0)
    assert book.on_refused(ETH, 1.0) is None
    assert book.desired == (BTC,)
    assert book.pending == {}


def test_a_refused_resubscribe_of_a_served_channel_is_asked_again_then_dropped() -> None:
    book = open_book(BTC, ETH)
    book.connection_lost()
    book.connection_opened(1.0)  # both resubscribed; the server served both before
    assert book.on_subscribed(ETH)
    for attempt in range(MAX_REFUSED_RESUBSCRIBES):
        assert book.on_refused(BTC, 2.0 + attempt) == sub(BTC), attempt
        assert book.pending == {BTC: "subscribe"}
        assert book.desired == (BTC, ETH)
    assert book.on_refused(BTC, 9.0) is None  # refused every time: refused for good
    assert book.desired == (ETH,)
    assert book.pending == {}
    book.subscribe(BTC, 10.0)  # asked for anew, it is a new channel again
    assert book.on_refused(BTC, 10.0) is None


def test_an_ack_between_refusals_starts_the_count_again() -> None:
    book = open_book(BTC)
    for round_ in range(3):
        book.unsubscribe(BTC, float(round_))
        book.subscribe(BTC, float(round_))  # a book's resync
        assert book.on_unsubscribed(BTC)
        for _ in range(MAX_REFUSED_RESUBSCRIBES):
            assert book.on_refused(BTC, float(round_)) == sub(BTC)
        assert book.on_subscribed(BTC)
        assert book.active == {BTC}


def test_a_refused_resubscribe_is_not_asked_again_past_the_budget() -> None:
    book = open_book(BTC, max_channels=1, max_operations=3)
    book.unsubscribe(BTC, 1.0)
    book.subscribe(BTC, 1.0)  # with the connect's subscribe, three: the budget is spent
    assert book.operations_left(1.0) == 0
    assert book.on_refused(BTC, 1.0) is None
    assert book.desired == ()


def test_rejecting_an_unknown_channel_changes_nothing() -> None:
    book = open_book(BTC)
    before = snapshot(book, 0.0)
    assert not book.on_rejected(ETH)
    assert snapshot(book, 0.0) == before


def test_rejected_unsubscribe_forgets_the_channel() -> None:
    book = open_book(BTC)
    book.unsubscribe(BTC, 0.0)
    assert book.on_rejected(BTC)
    assert book.pending == {}
    assert book.active == frozenset()


# --- channel limit ------------------------------------------------------------------------


def test_channel_limit() -> None:
    book = SubscriptionBook(max_channels=2)
    book.subscribe("a", 0.0)
    book.subscribe("b", 0.0)
    before = snapshot(book, 0.0)
    with pytest.raises(SubscriptionLimitError, match="2 channels") as caught:
        book.subscribe("c", 0.0)
    assert caught.value.retry_after is None  # waiting does not help
    assert snapshot(book, 0.0) == before
    assert book.subscribe("a", 0.0) is None  # already desired: not a new channel
    book.unsubscribe("a", 0.0)
    assert book.subscribe("c", 0.0) is None
    assert book.desired == ("b", "c")


def test_channel_limit_while_connected_costs_no_operation() -> None:
    book = open_book("a", max_channels=1, max_operations=5, window=10.0)
    with pytest.raises(SubscriptionLimitError):
        book.subscribe("b", 1.0)
    assert book.operations_left(1.0) == 4


# --- operation budget ---------------------------------------------------------------------


def test_operation_budget_is_a_sliding_window() -> None:
    book = open_book(max_channels=3, max_operations=3, window=10.0)
    assert book.subscribe("a", 1.0) == sub("a")
    assert book.unsubscribe("a", 2.0) == unsub("a")
    assert book.subscribe("b", 4.0) == sub("b")
    assert book.operations_left(4.0) == 0
    before = snapshot(book, 5.0)
    with pytest.raises(SubscriptionLimitError, match="3 subscribe/unsubscribe") as caught:
        book.subscribe("c", 5.0)
    assert caught.value.retry_after == pytest.approx(6.0)  # the op at 1.0 leaves at 11.0
    assert isinstance(caught.value, RateLimitError)
    assert snapshot(book, 5.0) == before
    with pytest.raises(SubscriptionLimitError) as caught:
        book.unsubscribe("b", 10.5)
    assert caught.value.retry_after == pytest.approx(0.5)
    assert book.desired == ("b",)
    assert book.operations_left(11.0) == 1
    assert book.subscribe("c", 11.0) == sub("c")
    with pytest.raises(SubscriptionLimitError) as caught:
        book.unsubscribe("c", 11.5)
    assert caught.value.retry_after == pytest.approx(0.5)  # the op at 2.0 leaves at 12.0
    assert book.unsubscribe("c", 12.0) == unsub("c")


def test_resubscriptions_on_connect_count_against_the_budget() -> None:
    book = SubscriptionBook(max_channels=3, max_operations=4, window=10.0)
    for channel in ("a", "b", "c"):
        book.subscribe(channel, 0.0)
    book.connection_opened(100.0)
    assert book.operations_left(100.0) == 1
    book.unsubscribe("a", 101.0)
    with pytest.raises(SubscriptionLimitError) as caught:
        book.subscribe("a", 102.0)
    assert caught.value.retry_after == pytest.approx(8.0)


def test_repr_shows_counts_only() -> None:
    book = open_book(BTC, ETH)
    book.subscribe(DEPTH, 0.0)
    assert repr(book) == "SubscriptionBook(desired=3, active=2, pending=1, connected=True)"


# --- stateful model check -----------------------------------------------------------------

MAX_CHANNELS = 3
MAX_OPERATIONS = 5
WINDOW = 10.0
CHANNELS = ("ticker.a", "ticker.b", "ticker.c", "ticker.d", "bad.e")
INVALID = frozenset({"bad.e"})  # the fake server refuses every subscribe to these


class SubscriptionBookMachine(RuleBasedStateMachine):
    """Drives the book against a fake in-order server and a plain model of the user's wishes.

    The server processes requests in order and answers each with an ack (or a rejection for
    invalid channels) delivered whenever the `deliver` rule fires; a lost connection drops
    every answer still in flight.
    """

    @initialize()
    def start(self) -> None:
        self.book = SubscriptionBook(
            max_channels=MAX_CHANNELS, max_operations=MAX_OPERATIONS, window=WINDOW
        )
        self.now = 1_700_000_000.0
        self.connected = False
        self.desired: list[str] = []
        self.sent_times: list[float] = []  # ops sent on the current connection
        self.in_flight: deque[dict[str, str]] = deque()  # requests the server has not answered
        self.server_channels: set[str] = set()

    # model helpers

    def ops_in_window(self) -> list[float]:
        return [t for t in self.sent_times if t > self.now - WINDOW]

    def record(self, request: dict[str, str]) -> None:
        assert self.connected, "a request was produced while disconnected"
        self.sent_times.append(self.now)
        self.in_flight.append(request)
        assert len(self.ops_in_window()) <= MAX_OPERATIONS

    # rules: the user

    @rule(channel=st.sampled_from(CHANNELS))
    def subscribe(self, channel: str) -> None:
        before = snapshot(self.book, self.now)
        if channel in self.desired:
            assert self.book.subscribe(channel, self.now) is None
        elif len(self.desired) >= MAX_CHANNELS:
            with pytest.raises(SubscriptionLimitError) as caught:
                self.book.subscribe(channel, self.now)
            assert caught.value.retry_after is None
            assert snapshot(self.book, self.now) == before
        elif self.connected and len(self.ops_in_window()) >= MAX_OPERATIONS:
            with pytest.raises(SubscriptionLimitError) as caught:
                self.book.subscribe(channel, self.now)
            oldest = min(self.ops_in_window())
            assert caught.value.retry_after == pytest.approx(oldest + WINDOW - self.now)
            assert snapshot(self.book, self.now) == before
        else:
            request = self.book.subscribe(channel, self.now)
            self.desired.append(channel)
            if self.connected:
                assert request == sub(channel)
                self.record(request)
            else:
                assert request is None

    @rule(channel=st.sampled_from(CHANNELS))
    def unsubscribe(self, channel: str) -> None:
        before = snapshot(self.book, self.now)
        if channel not in self.desired:
            assert self.book.unsubscribe(channel, self.now) is None
            assert snapshot(self.book, self.now) == before
        elif self.connected and len(self.ops_in_window()) >= MAX_OPERATIONS:
            with pytest.raises(SubscriptionLimitError) as caught:
                self.book.unsubscribe(channel, self.now)
            oldest = min(self.ops_in_window())
            assert caught.value.retry_after == pytest.approx(oldest + WINDOW - self.now)
            assert snapshot(self.book, self.now) == before
        else:
            request = self.book.unsubscribe(channel, self.now)
            self.desired.remove(channel)
            if self.connected:
                assert request == unsub(channel)
                self.record(request)
            else:
                assert request is None

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 3.0, 9.5, 10.0, 25.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    # rules: the connection

    @rule()
    def connection_opened(self) -> None:
        self.connected = True
        self.sent_times = []
        self.in_flight.clear()
        self.server_channels = set()
        requests = self.book.connection_opened(self.now)
        assert requests == [sub(channel) for channel in self.desired]
        for request in requests:
            self.record(request)

    @rule()
    def connection_lost(self) -> None:
        self.connected = False
        self.sent_times = []
        self.in_flight.clear()
        self.book.connection_lost()

    @precondition(lambda self: self.in_flight)
    @rule()
    def deliver(self) -> None:
        """The server answers the oldest request it has not answered yet."""
        request = self.in_flight.popleft()
        channel = request["channel"]
        if request["event"] == "subscribe" and channel in INVALID:
            expected = channel in self.desired or channel in self.book.pending
            assert self.book.on_rejected(channel) is expected
            if channel in self.desired:
                self.desired.remove(channel)
            return
        was_pending = self.book.pending.get(channel)
        if request["event"] == "subscribe":
            self.server_channels.add(channel)
            matched = self.book.on_subscribed(channel)
        else:
            self.server_channels.discard(channel)
            matched = self.book.on_unsubscribed(channel)
        if was_pending == request["event"]:
            assert matched

    @rule(channel=st.sampled_from(CHANNELS), subscribed=st.booleans())
    def stray_ack(self, channel: str, subscribed: bool) -> None:
        """An ack nobody asked for (nothing pending for it) must change nothing."""
        if channel in self.book.pending:
            return
        before = snapshot(self.book, self.now)
        ack = self.book.on_subscribed if subscribed else self.book.on_unsubscribed
        assert not ack(channel)
        assert snapshot(self.book, self.now) == before

    # invariants

    @invariant()
    def desired_matches_the_model(self) -> None:
        desired = self.book.desired
        assert list(desired) == self.desired
        assert len(set(desired)) == len(desired) <= MAX_CHANNELS

    @invariant()
    def nothing_is_active_or_pending_without_a_connection(self) -> None:
        assert self.book.connected is self.connected
        if not self.connected:
            assert self.book.active == frozenset()
            assert self.book.pending == {}

    @invariant()
    def active_channels_are_wanted_or_on_their_way_out(self) -> None:
        leaving = {ch for ch, op in self.book.pending.items() if op == "unsubscribe"}
        assert self.book.active <= set(self.book.desired) | leaving
        assert all(op in ("subscribe", "unsubscribe") for op in self.book.pending.values())

    @invariant()
    def live_desired_channels_are_active_or_requested(self) -> None:
        if self.connected:
            for channel in self.book.desired:
                assert channel in self.book.active or self.book.pending.get(channel) == (
                    "subscribe"
                )

    @invariant()
    def budget_matches_the_model(self) -> None:
        expected = MAX_OPERATIONS - len(self.ops_in_window()) if self.connected else MAX_OPERATIONS
        assert self.book.operations_left(self.now) == expected

    @invariant()
    def settles_to_what_the_server_holds(self) -> None:
        """Once every request is answered, the book agrees with the server and the user."""
        if self.connected and not self.in_flight:
            assert self.book.pending == {}
            assert self.book.active == self.server_channels
            assert self.server_channels == set(self.desired)


TestSubscriptionBookMachine = SubscriptionBookMachine.TestCase
TestSubscriptionBookMachine.settings = settings(max_examples=200, stateful_step_count=40)


def test_next_operation_at_is_when_the_oldest_operation_leaves_the_window() -> None:
    book = SubscriptionBook(max_channels=2, max_operations=2, window=10.0)
    book.connection_opened(0.0)
    assert book.next_operation_at(1.0) == 1.0
    book.subscribe("a", 1.0)
    book.subscribe("b", 3.0)
    assert book.next_operation_at(4.0) == 11.0
    assert book.next_operation_at(11.0) == 11.0
