"""The client's local order books: one per depth channel that a stream reads or a user holds.

Each `BookFeed` keeps its channel's `OrderBook`, the streams reading it (each at its own
depth) and a count of `LocalOrderBook`s holding it. `OrderBooks` applies each depth push,
hands every reader one consistent book per update (a holder reads the book when it likes),
and when the book can no longer be trusted gets a fresh snapshot without ever dropping the
channel (see `_resync`), or ends its readers with `OrderBookError` when it cannot.

A book waiting for a snapshot has a deadline (`snapshot_timeout` from when it was asked for,
on an open connection): a server that acks the subscribe and then sends only deltas, or never
answers, would otherwise leave the book silent for ever. A missed deadline counts as a failed
resync and asks again, so such a book ends with `OrderBookError` rather than wait.
"""

from __future__ import annotations

import logging

from ..channels import Depth, parse_channel
from ..errors import OrderBookError, SubscriptionLimitError, WeexError
from ..events import PushFrame, WebSocketMessage
from ..messages import PayloadError, parse_depth_levels
from ..orderbook import Applied, BookState, NeedsResync, OrderBook, Rejected
from ..records import Level, OrderBookSnapshot
from ..session import WeexSession
from .fanout import MessageBuffer
from .health import Health

log = logging.getLogger("weex_ws")

MAX_RESYNCS_WITHOUT_SNAPSHOT = 5
"""Resyncs in a row a book may ask for without one usable snapshot arriving; the next problem
ends its streams with `OrderBookError`. Any usable snapshot starts the count again."""
RESYNC_OPERATIONS = 2  # an unsubscribe and a subscribe
SNAPSHOT_TIMEOUT = 10.0
"""Seconds a book waits for its snapshot after asking for one (subscribing, resubscribing, or
reconnecting) before it asks again."""


class OrderBooks:
    """Every local book of the client, by depth channel."""

    def __init__(self, health: Health, *, snapshot_timeout: float = SNAPSHOT_TIMEOUT) -> None:
        if not snapshot_timeout > 0:
            raise ValueError("snapshot_timeout must be positive")
        self.feeds: dict[str, BookFeed] = {}
        self.snapshot_timeout = snapshot_timeout
        self._health = health

    # --- the snapshot deadline ------------------------------------------------------------

    def awaiting(self, channels: tuple[str, ...] | list[str], now: float) -> None:
        """These channels were just asked for (a subscribe, or a connection's resubscribe):
        each of their books that has no snapshot yet must get one by `now + snapshot_timeout`."""
        feeds = self.feeds
        for channel in channels:
            feed = feeds.get(channel)
            if feed is not None and not feed.live:
                feed.snapshot_due = now + self.snapshot_timeout

    def next_deadline(self, session: WeexSession) -> float | None:
        """The earliest snapshot deadline of the books carried by `session`'s connection."""
        wants = session.subscriptions.wants
        dues = [
            feed.snapshot_due
            for feed in self.feeds.values()
            if feed.snapshot_due is not None and wants(feed.channel)
        ]
        return min(dues) if dues else None

    def handle_timer(self, session: WeexSession, now: float) -> None:
        """Resync every book of `session` whose snapshot is overdue (a failed resync each)."""
        wants = session.subscriptions.wants
        for feed in list(self.feeds.values()):
            due = feed.snapshot_due
            if due is None or due > now or not wants(feed.channel):
                continue
            feed.snapshot_due = None
            conn = session.connection
            if conn is None or not conn.is_open:
                continue  # the reconnect asks again (and sets a new deadline)
            reason = f"no snapshot within {self.snapshot_timeout:g}s of asking for one"
            self._resync(session, feed, NeedsResync(reason), None, now, overdue=True)

    # --- depth pushes ---------------------------------------------------------------------

    def update(self, session: WeexSession, feed: BookFeed, message: PushFrame, now: float) -> None:
        try:
            updates = parse_depth_levels(message.frame)
        except PayloadError as exc:
            log.warning(
                "unusable depth push on %s: %s",
                feed.channel,
                exc,
                extra={"weex_event": "book_bad_push", "channel": feed.channel},
            )
            self._resync(session, feed, feed.book.invalidate("unusable depth push"), message, now)
            return
        for update in updates:
            result = feed.book.apply_levels(update)
            if isinstance(result, Applied):
                if update.depth_type == "SNAPSHOT":
                    feed.resyncs_without_snapshot = 0
                    feed.snapshot_due = None
                feed.updated_at = message.timestamp
                if feed.readers:
                    feed.publish(message)
            elif isinstance(result, Rejected):
                log.warning(
                    "skipped a depth push on %s: %s",
                    feed.channel,
                    result.reason,
                    extra={"weex_event": "book_bad_push", "channel": feed.channel},
                )
            elif isinstance(result, NeedsResync):
                self._resync(session, feed, result, message, now)
                return

    def _resync(
        self,
        session: WeexSession,
        feed: BookFeed,
        problem: NeedsResync,
        message: PushFrame | None,
        now: float,
        *,
        overdue: bool = False,
    ) -> None:
        """Get a fresh snapshot without ever dropping the channel; readers are told first.

        The cheap way is to resubscribe on this connection, an unsubscribe and a subscribe of
        its operation budget, and only if both fit. Otherwise the connection is replaced: a
        fresh one has a fresh budget and its resubscribe brings a snapshot (other streams on
        it see a gap flag, which is the truth). While a resubscribe or reconnect is already
        under way nothing more is asked: a snapshot is coming (unless it is `overdue`: then
        the request is taken as lost and made again). After `MAX_RESYNCS_WITHOUT_SNAPSHOT`
        resyncs in a row without a usable snapshot, the book cannot be rebuilt and its streams
        end with `OrderBookError`.
        """
        channel = feed.channel
        feed.waiting_for = problem.reason
        log.warning(
            "order book %s needs a new snapshot: %s",
            channel,
            problem.reason,
            extra={"weex_event": "book_resync", "channel": channel, "reason": problem.reason},
        )
        if message is not None:
            feed.publish_resync(problem.reason, message)
        conn = session.connection
        if conn is None or not conn.is_open:
            return  # a reconnect is under way; its resubscribe brings a snapshot
        if not overdue and session.subscriptions.pending.get(channel) == "subscribe":
            if feed.snapshot_due is None:  # its snapshot is coming, but not without bound
                feed.snapshot_due = now + self.snapshot_timeout
            return  # a resubscribe is under way
        self._health.book_resyncs += 1
        feed.resyncs_without_snapshot += 1
        if feed.resyncs_without_snapshot > MAX_RESYNCS_WITHOUT_SNAPSHOT:
            self.end(
                feed,
                OrderBookError(
                    f"order book {channel} cannot be rebuilt: "
                    f"{MAX_RESYNCS_WITHOUT_SNAPSHOT} resyncs brought no usable snapshot "
                    f"(last problem: {problem.reason})"
                ),
            )
            return
        if session.subscriptions.operations_left(now) >= RESYNC_OPERATIONS:
            try:
                session.unsubscribe(channel, now)
                session.subscribe(channel, now)
            except SubscriptionLimitError as exc:  # cannot happen after the check; never silent
                self.end(feed, OrderBookError(f"cannot resubscribe {channel}: {exc}"))
                return
            feed.snapshot_due = now + self.snapshot_timeout
            return
        log.warning(
            "order book %s: this connection's subscription budget is spent; "
            "reconnecting for a fresh snapshot",
            channel,
            extra={"weex_event": "book_resync_reconnect", "channel": channel},
        )
        session.restart(now)

    def end(self, feed: BookFeed, error: WeexError) -> None:
        """End the streams reading `feed` with `error`: a book that cannot be kept is not
        left silent. A new stream on the channel starts a new book."""
        log.error(
            "order book stream %s ends: %s",
            feed.channel,
            error,
            extra={"weex_event": "book_failed", "channel": feed.channel},
        )
        feed.error = error
        if self.feeds.get(feed.channel) is feed:
            del self.feeds[feed.channel]
        for buffer, _ in feed.readers:
            buffer.close(error)


class BookFeed:
    """One depth channel's local book, the streams reading it (each with its own depth) and
    how many `LocalOrderBook`s hold it."""

    def __init__(self, channel: str) -> None:
        spec = parse_channel(channel)
        assert isinstance(spec, Depth)
        self.channel = channel
        self.book = OrderBook(spec.symbol, spec.level)
        self.readers: list[tuple[MessageBuffer, int]] = []
        self.holders = 0
        """`LocalOrderBook`s open on this book: they read it when they like, with no buffer."""
        self.updated_at = 0.0
        """Wall time the last applied push was received (0.0 before the first)."""
        self.waiting_for = "waiting for the first snapshot"
        """Why the book is not live, while it is not."""
        self.error: WeexError | None = None
        """Why the book ended, once it cannot be kept (its readers got the same error)."""
        self.resyncs_without_snapshot = 0
        self.snapshot_due: float | None = None
        """Monotonic time by which the snapshot asked for must have arrived; None when the
        book is live or nothing has been asked on an open connection yet."""

    @property
    def live(self) -> bool:
        return self.book.state is BookState.LIVE

    @property
    def unread(self) -> bool:
        """No stream reads it and nobody holds it: the client stops keeping it."""
        return not self.readers and not self.holders

    def publish(self, source: PushFrame) -> None:
        """One consistent book per reader (each at its own depth), for the push just applied."""
        for buffer, levels in self.readers:
            snapshot = book_snapshot(self.book, levels, source.timestamp)
            buffer.put(_book_message(self.channel, snapshot, source))

    def publish_resync(self, reason: str, source: PushFrame) -> None:
        """Tell every reader the book is being rebuilt; they see no stale book meanwhile."""
        snapshot = OrderBookSnapshot(
            self.book.symbol, (), (), None, source.timestamp, resyncing=True, reason=reason
        )
        for buffer, _ in self.readers:
            message = _book_message(self.channel, snapshot, source)
            buffer.put(message.with_gap())


class LocalOrderBook:
    """A local book the client keeps, read when the reader wants rather than once per update.

    For readers that look now and then (a strategy checking the spread before an order, a
    relay's periodic snapshots): nothing is copied or queued per update, and the book resyncs
    exactly as `stream_order_book`'s does. Reading a book that could not be kept raises its
    `OrderBookError`: it is never read stale.
    """

    def __init__(self, feed: BookFeed, levels: int) -> None:
        self._feed = feed
        self._held = True
        self.levels = levels
        """How many levels a side `snapshot()` returns."""

    def __repr__(self) -> str:
        return f"<LocalOrderBook {self._feed.channel} top {self.levels}>"

    @property
    def channel(self) -> str:
        return self._feed.channel

    @property
    def symbol(self) -> str:
        return self._feed.book.symbol

    @property
    def live(self) -> bool:
        """True while the book is consistent with WEEX's (False while it waits for a snapshot)."""
        return self._checked().live

    @property
    def version(self) -> int | None:
        """The version of the last update applied; None while the book waits for a snapshot."""
        return self._checked().book.version

    def snapshot(self, levels: int | None = None) -> OrderBookSnapshot:
        """The top `levels` (default: the book's own `levels`) of each side, now: the record a
        stream would yield, `resyncing` (empty, with its `reason`) while the book is rebuilt."""
        feed = self._checked()
        if not feed.live:
            return OrderBookSnapshot(
                self.symbol, (), (), None, feed.updated_at, resyncing=True, reason=feed.waiting_for
            )
        return book_snapshot(feed.book, self.levels if levels is None else levels, feed.updated_at)

    def depth_levels(self) -> tuple[int, list[Level], list[Level]] | None:
        """`(version, bids, asks)` with every level the book holds, best first; None while it
        waits for a snapshot. The cheapest whole copy (lists of the book's own levels)."""
        feed = self._checked()
        version = feed.book.version
        if not feed.live or version is None:
            return None
        return version, feed.book.bids(), feed.book.asks()

    def let_go(self) -> BookFeed | None:
        """The client stops keeping the book for this holder (once); returns its feed."""
        feed, self._held = (self._feed if self._held else None), False
        if feed is not None:
            feed.holders -= 1
        return feed

    def _checked(self) -> BookFeed:
        if self._feed.error is not None:
            raise self._feed.error
        return self._feed


def book_snapshot(book: OrderBook, levels: int, timestamp: float) -> OrderBookSnapshot:
    """The top `levels` levels of each side of `book`, as `stream_order_book` yields it."""
    bids, asks = book.top(levels)
    return OrderBookSnapshot(book.symbol, bids, asks, book.version, timestamp)


def _book_message(
    channel: str, snapshot: OrderBookSnapshot, source: PushFrame
) -> WebSocketMessage[OrderBookSnapshot]:
    return WebSocketMessage(channel, source.frame, source.timestamp, source.raw, source=snapshot)
