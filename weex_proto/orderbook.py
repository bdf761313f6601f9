"""A local order book kept from WEEX depth pushes: one SNAPSHOT, then CHANGED deltas.

WEEX documents the shape (§4.1.3) but not the sequencing rule, so we use the one every delta
feed of this shape follows and the simulator implements: a CHANGED frame covers versions
`startVersion..endVersion`, and the next must start at most one past the last `endVersion`.
Levels carry absolute sizes (`"0"` removes a level), so re-applying an overlapping frame is
harmless; a frame that starts beyond the next version means updates were lost. A lost update,
a crossed book, or a delta before any snapshot all mean the same thing: this book cannot be
trusted until a fresh snapshot arrives, which the caller gets by resubscribing.

A delta at or below the live version is a repeat of what the book holds (WEEX may resend a
few around a snapshot) and is ignored, but not for ever: `MAX_STALE_DELTAS` of them in a row
mean the server's sequence restarted below the book (a server restart), and the book would
otherwise stay frozen while the market moves, so that too invalidates it.

Nothing from the wire is trusted. A push about another contract, or a snapshot older than the
live book, is rejected (skipped; the book stays as it was). An update that cannot be applied
as sent (a price that is not a finite number > 0, a size that is negative or not finite,
`startVersion > endVersion`) invalidates the book like a gap does: applying part of it, or
none of it, would leave a book that is silently wrong.

Prices and sizes stay `Decimal`, exactly as the exchange sent them. Each side is a dict
(price -> size) beside its prices kept sorted (`bisect`), so a delta costs a few dict and
list operations, and the best levels are read from the end of the list without sorting or
copying the book.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from decimal import Decimal
from typing import Final

import attrs

from .channels import normalize_symbol
from .messages import DepthLevels, DepthUpdate

Level = tuple[Decimal, Decimal]


class BookState(enum.Enum):
    AWAITING_SNAPSHOT = "awaiting_snapshot"
    LIVE = "live"


@attrs.frozen
class Applied:
    """The book changed and is consistent."""


@attrs.frozen
class Ignored:
    """Nothing to do: a stale duplicate, or a delta while waiting for the snapshot."""

    reason: str


@attrs.frozen
class Rejected:
    """A push that does not belong in this book (another contract, an outdated snapshot):
    skipped, the book is unchanged. Worth a warning, unlike `Ignored`."""

    reason: str


@attrs.frozen
class NeedsResync:
    """The book is now invalid (and cleared); get a fresh snapshot."""

    reason: str


ApplyResult = Applied | Ignored | Rejected | NeedsResync
APPLIED = Applied()

MAX_STALE_DELTAS = 5
"""Deltas in a row at or below the live version that are taken as repeats; the next one means
the server's versions went backwards (its sequence restarted), and the book resyncs."""


class OrderBook:
    def __init__(self, symbol: str, depth: int) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.symbol = symbol
        self.depth = depth
        self.state = BookState.AWAITING_SNAPSHOT
        self.version: int | None = None
        self.stale_in_a_row = 0
        """Deltas at or below the live version since the last one applied."""
        # Each side: its prices ascending, and beside them their levels, the (price, size)
        # tuples as parsed, so reading hands out slices of the book's own tuples.
        self._bid_prices: list[Decimal] = []  # the best bid is last
        self._bid_levels: list[Level] = []
        self._ask_prices: list[Decimal] = []  # the best ask is first
        self._ask_levels: list[Level] = []

    def __repr__(self) -> str:
        return (
            f"<OrderBook {self.symbol} {self.state.value} v={self.version} "
            f"bids={len(self._bid_prices)} asks={len(self._ask_prices)}>"
        )

    def apply(self, update: DepthUpdate) -> ApplyResult:
        problem = _unusable(update)
        if problem is not None:
            if update.symbol != self.symbol and not _same_contract(update.symbol, self.symbol):
                return Rejected(f"push for {update.symbol[:40]!r} on the book of {self.symbol!r}")
            return self.invalidate(problem)
        return self.apply_levels(DepthLevels.of(update))

    def apply_levels(self, update: DepthLevels) -> ApplyResult:
        """`apply` for an update from `parse_depth_levels`, whose levels are already checked
        (price > 0, size >= 0, finite): the fast way from a raw depth frame into the book."""
        symbol, depth_type, start_version, end_version, bids, asks = update
        if symbol != self.symbol and not _same_contract(symbol, self.symbol):
            return Rejected(f"push for {symbol[:40]!r} on the book of {self.symbol!r}")
        version = self.version
        if depth_type == "SNAPSHOT":
            if version is not None and end_version < version:
                return Rejected(
                    f"snapshot at version {end_version} is older than the live book at {version}"
                )
            self._bid_prices, self._bid_levels = _sorted_side(bids)
            self._ask_prices, self._ask_levels = _sorted_side(asks)
            self.version = end_version
            self.state = BookState.LIVE
            self.stale_in_a_row = 0
            self._truncate()
            return self._check_crossed()
        if version is None or self.state is not _LIVE:
            return Ignored("delta before the snapshot")
        if end_version <= version:
            self.stale_in_a_row += 1
            if self.stale_in_a_row > MAX_STALE_DELTAS:
                return self.invalidate(
                    f"versions went backwards: {self.stale_in_a_row} deltas in a row at or "
                    f"below the live version {version} (the last up to {end_version})"
                )
            return Ignored(f"stale delta up to version {end_version}")
        self.stale_in_a_row = 0
        if start_version > version + 1:
            return self.invalidate(f"version gap: missed {version + 1}..{start_version - 1}")
        # Only a side that gained a level can be too long; empty sides cost nothing.
        bid_prices, ask_prices = self._bid_prices, self._ask_prices
        grew = bool(bids) and _merge(bid_prices, self._bid_levels, bids)
        if asks and _merge(ask_prices, self._ask_levels, asks):
            grew = True
        self.version = end_version
        if grew and (len(bid_prices) > self.depth or len(ask_prices) > self.depth):
            self._truncate()
        if bid_prices and ask_prices and bid_prices[-1] >= ask_prices[0]:
            return self._check_crossed()
        return APPLIED

    def invalidate(self, reason: str) -> NeedsResync:
        """Forget everything until the next snapshot."""
        self._bid_prices.clear()
        self._bid_levels.clear()
        self._ask_prices.clear()
        self._ask_levels.clear()
        self.version = None
        self.state = BookState.AWAITING_SNAPSHOT
        self.stale_in_a_row = 0
        return NeedsResync(reason)

    def bids(self, limit: int | None = None) -> list[Level]:
        """Best (highest) first; only the `limit` best are read."""
        if limit is None:
            return self._bid_levels[::-1]
        return self._bid_levels[: -limit - 1 : -1] if limit > 0 else []

    def asks(self, limit: int | None = None) -> list[Level]:
        """Best (lowest) first; only the `limit` best are read."""
        return self._ask_levels[:] if limit is None else self._ask_levels[: max(limit, 0)]

    def top(self, limit: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The `limit` best bids and asks, best first, as tuples (what a snapshot holds): slices
        of the book's own immutable levels, nothing is built per level."""
        if limit < 1:
            return (), ()
        return tuple(self._bid_levels[: -limit - 1 : -1]), tuple(self._ask_levels[:limit])

    @property
    def best_bid(self) -> Level | None:
        """The highest bid, or None: nothing is copied or built."""
        levels = self._bid_levels
        return levels[-1] if levels else None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask, or None: nothing is copied or built."""
        levels = self._ask_levels
        return levels[0] if levels else None

    def _truncate(self) -> None:
        """Keep only `depth` levels a side: a 15-level feed never tells us about level 16."""
        excess = len(self._bid_prices) - self.depth
        if excess > 0:  # the lowest bids go
            del self._bid_prices[:excess]
            del self._bid_levels[:excess]
        if len(self._ask_prices) > self.depth:  # the highest asks go
            del self._ask_prices[self.depth :]
            del self._ask_levels[self.depth :]

    def _check_crossed(self) -> ApplyResult:
        bids, asks = self._bid_prices, self._ask_prices
        if bids and asks and bids[-1] >= asks[0]:
            return self.invalidate(f"crossed book: bid {bids[-1]} >= ask {asks[0]}")
        return APPLIED


_LIVE: Final = BookState.LIVE


def _same_contract(pushed: str, ours: str) -> bool:
    """`BTCUSDT` and `cmt_btcusdt` name one contract; garbage names none."""
    try:
        return normalize_symbol(pushed) == normalize_symbol(ours)
    except (TypeError, ValueError):
        return False


def _unusable(update: DepthUpdate) -> str | None:
    """Why `update` cannot be applied as sent, or None. (`parse_push` already refuses all of
    this; the book checks again for updates that come from anywhere else.)"""
    if update.start_version > update.end_version:
        return f"unusable update: startVersion {update.start_version} > endVersion"
    for side in (update.bids, update.asks):
        for level in side:
            price, size = level.price, level.size
            if not (price.is_finite() and size.is_finite() and price > 0 and size >= 0):
                return f"unusable update: level {price} x {size}"
    return None


def _sorted_side(levels: list[Level]) -> tuple[list[Decimal], list[Level]]:
    """A snapshot's side: its prices ascending and their levels (size 0 levels dropped; of one
    price listed twice, the last)."""
    by_price = {level[0]: level for level in levels if level[1]}
    ordered = sorted(by_price.values())  # the prices differ, so the sizes are never compared
    return [level[0] for level in ordered], ordered


def _merge(prices: list[Decimal], levels: list[Level], changes: list[Level]) -> bool:
    """Apply absolute sizes to one side, prices and levels in step; True if a price was added
    (then the side may be longer than the book's depth). No hashing: a new price's `Decimal`
    hash costs more than the few comparisons of finding its place."""
    grew = False
    for level in changes:
        price = level[0]
        index = bisect_left(prices, price)
        if index < len(prices) and (prices[index] is price or prices[index] == price):
            if level[1]:  # a size > 0 (a Decimal is false only at zero)
                levels[index] = level
            else:
                del prices[index]
                del levels[index]
        elif level[1]:
            prices.insert(index, price)
            levels.insert(index, level)
            grew = True
    return grew
