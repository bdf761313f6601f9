"""OrderBook: snapshot + deltas must always equal a fresh snapshot of the same state."""

from __future__ import annotations

import itertools
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures_messages import DEPTH_PUSH
from weex_proto.messages import DepthUpdate, PriceLevel, parse_push
from weex_proto.orderbook import (
    MAX_STALE_DELTAS,
    Applied,
    BookState,
    Ignored,
    NeedsResync,
    OrderBook,
    Rejected,
)

Side = dict[Decimal, Decimal]


def update(
    kind: str,
    start: int,
    end: int,
    bids: Side,
    asks: Side,
    level: int = 15,
    symbol: str = "cmt_btcusdt",
) -> DepthUpdate:
    def levels(side: Side, reverse: bool) -> tuple[PriceLevel, ...]:
        return tuple(PriceLevel(p, side[p]) for p in sorted(side, reverse=reverse))

    return DepthUpdate(
        symbol=symbol,
        level=level,
        depth_type=kind,  # type: ignore[arg-type]
        start_version=start,
        end_version=end,
        asks=levels(asks, False),
        bids=levels(bids, True),
    )


def snapshot(version: int, bids: Side, asks: Side) -> DepthUpdate:
    return update("SNAPSHOT", version, version, bids, asks)


def delta(old: Side, new: Side) -> Side:
    """What a CHANGED frame carries to go from `old` to `new`: new sizes, and 0 for removals."""
    changes = {price: size for price, size in new.items() if old.get(price) != size}
    changes.update({price: Decimal(0) for price in old if price not in new})
    return changes


D = Decimal


def test_doc_example_delta_applies_on_top_of_a_snapshot() -> None:
    book = OrderBook("cmt_btcusdt", 15)
    bids = {D("103435.9"): D("1"), D("103435.7"): D("2"), D("103435.6"): D("3")}
    asks = {D("103436.1"): D("1"), D("103436.5"): D("4")}
    assert book.apply(snapshot(3644174245, bids, asks)) == Applied()
    [changed] = parse_push(DEPTH_PUSH)  # the reference's CHANGED example, verbatim
    assert isinstance(changed, DepthUpdate)
    assert book.apply(changed) == Applied()
    assert book.version == 3644174270
    assert book.bids() == [(D("103435.9"), D("2.40500")), (D("103435.6"), D("0.32700"))]
    assert [str(size) for _, size in book.asks()] == ["0.91500", "1.95800", "1.08300"]


def test_gap_invalidates_and_asks_for_a_resync() -> None:
    book = OrderBook("cmt_btcusdt", 15)
    book.apply(snapshot(10, {D(1): D(1)}, {D(2): D(1)}))
    result = book.apply(update("CHANGED", 13, 14, {D(1): D(5)}, {}))
    assert result == NeedsResync("version gap: missed 11..12")
    assert book.state is BookState.AWAITING_SNAPSHOT
    assert book.bids() == []
    assert isinstance(book.apply(update("CHANGED", 15, 15, {}, {})), Ignored)
    assert book.apply(snapshot(20, {D(1): D(2)}, {D(3): D(1)})) == Applied()
    assert book.bids() == [(D(1), D(2))]


def test_stale_and_overlapping_deltas() -> None:
    book = OrderBook("cmt_btcusdt", 15)
    book.apply(snapshot(10, {D(1): D(1)}, {D(2): D(1)}))
    assert isinstance(book.apply(update("CHANGED", 5, 10, {D(1): D(9)}, {})), Ignored)
    assert book.bids() == [(D(1), D(1))]
    assert book.apply(update("CHANGED", 9, 12, {D(1): D(7)}, {})) == Applied()
    assert (book.version, book.bids()) == (12, [(D(1), D(7))])


def test_crossed_book_needs_resync() -> None:
    book = OrderBook("cmt_btcusdt", 15)
    book.apply(snapshot(1, {D(100): D(1)}, {D(101): D(1)}))
    result = book.apply(update("CHANGED", 2, 2, {D(102): D(1)}, {}))
    assert isinstance(result, NeedsResync)
    assert "crossed" in result.reason


def test_book_is_truncated_to_its_depth() -> None:
    book = OrderBook("cmt_btcusdt", 3)
    bids = {D(i): D(1) for i in range(1, 11)}
    asks = {D(i): D(1) for i in range(20, 30)}
    book.apply(snapshot(1, bids, asks))
    assert [p for p, _ in book.bids()] == [D(10), D(9), D(8)]
    assert [p for p, _ in book.asks()] == [D(20), D(21), D(22)]


def live_book() -> OrderBook:
    book = OrderBook("cmt_btcusdt", 15)
    assert book.apply(snapshot(10, {D(100): D(1)}, {D(101): D(2)})) == Applied()
    return book


def test_another_contracts_push_is_rejected_and_the_book_is_kept() -> None:
    book = live_book()
    eth_snapshot = update(
        "SNAPSHOT", 50, 50, {D(3000): D(1)}, {D(3001): D(1)}, symbol="cmt_ethusdt"
    )
    assert isinstance(book.apply(eth_snapshot), Rejected)
    eth_delta = update("CHANGED", 11, 11, {D(100): D(9)}, {}, symbol="cmt_ethusdt")
    assert isinstance(book.apply(eth_delta), Rejected)
    assert (book.version, book.bids(), book.asks()) == (10, [(D(100), D(1))], [(D(101), D(2))])
    waiting = OrderBook("cmt_btcusdt", 15)
    assert isinstance(waiting.apply(eth_snapshot), Rejected)
    assert waiting.state is BookState.AWAITING_SNAPSHOT
    # Other spellings of the same contract are the same book.
    assert book.apply(update("CHANGED", 11, 11, {D(100): D(3)}, {}, symbol="BTCUSDT")) == Applied()
    assert book.bids() == [(D(100), D(3))]


def test_a_snapshot_older_than_the_live_book_is_rejected() -> None:
    book = live_book()
    assert isinstance(book.apply(snapshot(9, {D(1): D(1)}, {D(2): D(1)})), Rejected)
    assert (book.version, book.bids()) == (10, [(D(100), D(1))])
    assert book.apply(snapshot(10, {D(99): D(1)}, {D(101): D(1)})) == Applied()  # same version
    assert book.apply(snapshot(12, {D(98): D(1)}, {D(101): D(1)})) == Applied()
    assert (book.version, book.bids()) == (12, [(D(98), D(1))])
    # After an invalidation there is no live book to compare with: any snapshot starts afresh.
    book.invalidate("test")
    assert book.apply(snapshot(5, {D(1): D(1)}, {D(2): D(1)})) == Applied()


BAD_LEVELS = [
    ("bids", D(-100), D(1)),
    ("bids", D(0), D(1)),
    ("asks", D(101), D(-1)),
    ("bids", D("NaN"), D(1)),
    ("asks", D("Infinity"), D(1)),
    ("bids", D(100), D("sNaN")),
    ("asks", D(102), D("-Infinity")),
]


@pytest.mark.parametrize(("side", "price", "size"), BAD_LEVELS)
def test_levels_that_cannot_be_real_invalidate_instead_of_corrupting(
    side: str, price: Decimal, size: Decimal
) -> None:
    good, bad = PriceLevel(D(99), D(1)), PriceLevel(price, size)
    levels = (
        {"bids": (good, bad), "asks": ()} if side == "bids" else {"bids": (good,), "asks": (bad,)}
    )
    book = live_book()
    changed = attrs.evolve(update("CHANGED", 11, 11, {}, {}), **levels)
    result = book.apply(changed)
    assert isinstance(result, NeedsResync)
    assert "unusable" in result.reason
    assert (book.state, book.bids(), book.asks()) == (BookState.AWAITING_SNAPSHOT, [], [])
    fresh = OrderBook("cmt_btcusdt", 15)
    assert isinstance(fresh.apply(attrs.evolve(snapshot(5, {}, {}), **levels)), NeedsResync)
    assert fresh.state is BookState.AWAITING_SNAPSHOT


def test_start_version_after_end_version_invalidates() -> None:
    book = live_book()
    result = book.apply(update("CHANGED", 12, 11, {D(100): D(5)}, {}))
    assert isinstance(result, NeedsResync)
    assert "startVersion" in result.reason
    assert book.bids() == []


prices = st.decimals(min_value=1, max_value=100, places=1, allow_nan=False)
sizes = st.decimals(min_value=D("0.001"), max_value=50, places=3, allow_nan=False)


@st.composite
def book_states(draw: st.DrawFn) -> tuple[Side, Side]:
    """A non-crossed book of at most 15 levels a side: bids below 50.0, asks above."""
    bids = draw(st.dictionaries(prices.filter(lambda p: p < 50), sizes, max_size=15))
    asks = draw(st.dictionaries(prices.filter(lambda p: p > 50), sizes, max_size=15))
    return bids, asks


@settings(max_examples=200, deadline=None)
@given(st.lists(book_states(), min_size=1, max_size=12), st.lists(st.integers(1, 5), max_size=12))
def test_any_valid_delta_sequence_equals_a_fresh_snapshot(
    states: list[tuple[Side, Side]], spans: list[int]
) -> None:
    book = OrderBook("cmt_btcusdt", 15)
    version = 1000
    assert book.apply(snapshot(version, *states[0])) == Applied()
    for index, (old, new) in enumerate(itertools.pairwise(states)):
        span = spans[index] if index < len(spans) else 1
        frame = update(
            "CHANGED",
            version + 1,
            version + span,
            delta(old[0], new[0]),
            delta(old[1], new[1]),
        )
        version += span
        assert book.apply(frame) == Applied()
    fresh = OrderBook("cmt_btcusdt", 15)
    fresh.apply(snapshot(version, *states[-1]))
    assert book.bids() == fresh.bids()
    assert book.asks() == fresh.asks()
    assert book.version == fresh.version == version
    expected_bids = sorted(states[-1][0].items(), reverse=True)
    assert book.bids() == expected_bids


def test_repeated_deltas_are_ignored_but_a_sequence_that_restarted_resyncs() -> None:
    book = OrderBook("cmt_btcusdt", 15)
    bids, asks = {D(100): D(1)}, {D(101): D(1)}
    assert book.apply(snapshot(5000, bids, asks)) == Applied()
    for live in (5000, 5001):  # repeats of what the book holds, then the sequence goes on
        for version in range(live - MAX_STALE_DELTAS + 1, live + 1):
            assert isinstance(book.apply(update("CHANGED", version, version, bids, asks)), Ignored)
        assert book.apply(update("CHANGED", live + 1, live + 1, {D(100): D(2)}, {})) == Applied()
    for version in range(101, 101 + MAX_STALE_DELTAS):  # a restarted server's versions
        assert isinstance(book.apply(update("CHANGED", version, version, bids, asks)), Ignored)
    result = book.apply(update("CHANGED", 200, 210, bids, asks))
    assert isinstance(result, NeedsResync) and "versions went backwards" in result.reason
    assert book.state is BookState.AWAITING_SNAPSHOT
    assert book.apply(snapshot(211, bids, asks)) == Applied()  # the new sequence's snapshot
