"""`HoldBack`: two relays of one shard keep each subject in order when one of them restarts.

The model is JetStream's: each record is stored once, the first copy of its id to arrive wins,
and a subject's order is the order of arrival. Relay B has been relaying the channel for a
while and gets every record `lag` seconds late; relay A gets them on time but is away for a
span (or starts late), and its first record after coming back is flagged as following a
reconnect. Held back longer than B lags, A's first records go after
B's copies of the ones A missed.
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
from hypothesis import given

from weex_proto.relaying import HoldBack, Outgoing

CHANNEL = "depth.cmt_btcusdt.15"


def record(index: int) -> Outgoing:
    return Outgoing("weex.depth.cmt_btcusdt.15", str(index), CHANNEL, index, 0.0)


def stored_order(
    count: int, spacing: float, lag: float, delay: float, away: tuple[int, int]
) -> list[int]:
    """The indexes of the records as JetStream stores them."""
    relays = {"a": HoldBack(delay), "b": HoldBack(delay)}
    relays["b"].started.add(CHANNEL)  # B has been relaying the channel for a while
    arrivals: list[tuple[float, str, int, bool]] = []
    for index in range(count):
        if not away[0] <= index < away[1]:
            arrivals.append((index * spacing, "a", index, index == away[1] and index > 0))
        arrivals.append((index * spacing + lag, "b", index, False))
    arrivals.sort(key=lambda arrival: arrival[0])
    published: list[int] = []

    def release(now: float) -> None:
        """Every hold that ended by `now`, in the order the holds ended."""
        while ends := [until for r in relays.values() for until, _ in r.held.values()]:
            if min(ends) > now:
                return
            for relay in relays.values():
                published.extend(item.data for item in relay.release_due(min(ends)))

    for now, name, index, restarted in arrivals:
        release(now)
        admitted = relays[name].admit(CHANNEL, record(index), restarted, now)
        published.extend(item.data for item in admitted)
    release(math.inf)
    stored: list[int] = []
    for index in published:
        if index not in stored:
            stored.append(index)
    return stored


@given(
    count=st.integers(2, 60),
    spacing=st.floats(0.001, 0.5),
    delay=st.floats(0.05, 3.0),
    lag_share=st.floats(0.0, 0.99),
    away=st.tuples(st.integers(0, 60), st.integers(0, 60)).map(sorted),
)
def test_a_relay_back_from_a_gap_never_overtakes_a_peer_that_lags_less(
    count: int, spacing: float, delay: float, lag_share: float, away: list[int]
) -> None:
    start, end = away
    stored = stored_order(count, spacing, lag_share * delay, delay, (start, end))
    assert stored == list(range(count))


def test_without_holding_back_the_restarted_relay_overtakes_its_peer() -> None:
    """The case it exists for: B lags 0.3 s; A, back at record 10, is first with it."""
    assert stored_order(20, 0.1, 0.3, 0.0, (5, 10)) != list(range(20))
    assert stored_order(20, 0.1, 0.3, 0.5, (5, 10)) == list(range(20))


def test_held_records_wait_for_their_time_and_keep_their_order() -> None:
    hold = HoldBack(1.0)
    assert hold.admit(CHANNEL, record(0), False, 10.0) == []  # a channel's first record
    assert hold.admit(CHANNEL, record(1), False, 10.5) == []
    assert hold.count == 2 and hold.release_due(10.9) == []
    assert [item.data for item in hold.release_due(11.0)] == [0, 1]
    assert hold.count == 0
    assert [item.data for item in hold.admit(CHANNEL, record(2), False, 11.1)] == [2]
    assert hold.admit(CHANNEL, record(3), True, 12.0) == []  # after a reconnect: held again
    assert [item.data for item in hold.admit(CHANNEL, record(4), False, 13.0)] == [3, 4]
    assert hold.admit("ticker.cmt_btcusdt", record(5), False, 13.0) == []
    assert [item.data for item in hold.release_all()] == [5]
    assert hold.count == 0 and not hold.held
