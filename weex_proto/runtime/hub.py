"""`ClientHub`: everything the public client decides that is not I/O.

Both adapters (`weex_anyio`, `weex_trio`) hold one hub and do only three things around it:
run a loop per connection that moves bytes and sleeps until deadlines, wake consumers when their
buffer says so, and run async handlers in tasks. Because the rest lives here, the two adapters
behave identically, and this part is tested without any event loop.

The hub knows: the client's connections (`connections`: a `WeexSession` for each, as many per
endpoint as its channels need, see connections.py); who holds which channel (user subscriptions
and open streams share one subscription through reference counts); where each message goes
(routers of handlers and bounded buffers); connection health; and what to log.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

from ..channels import channel_matches, is_private_channel
from ..config import WeexConfig
from ..connection import ConnectionOptions, PushTuple, WeexConnection
from ..error_codes import exception_for
from ..errors import ErrorKind, WeexError, explain_error
from ..events import (
    Connected,
    ConnectionClosed,
    ConnectionRejected,
    ErrorReceived,
    MessageSkipped,
    PingAnswered,
    PongReceived,
    PushFrame,
    Subscribed,
    Unsubscribed,
    WebSocketMessage,
)
from ..pool import ConnectionBudget
from ..records import RecordSplitter, SplitError
from ..session import Decision, GiveUp, Reconnect, Stop, WeexSession
from ..sessionpool import PooledSession, RetrySettings
from .books import MAX_RESYNCS_WITHOUT_SNAPSHOT as MAX_RESYNCS_WITHOUT_SNAPSHOT
from .books import SNAPSHOT_TIMEOUT, BookFeed, LocalOrderBook, OrderBooks
from .connections import ClientConnections, connection_name
from .fanout import ChannelRefs, Handler, HandlerBacklog, MessageBuffer, Router
from .health import Health
from .plans import DEFAULT_TICKER_SYMBOLS as DEFAULT_TICKER_SYMBOLS
from .plans import StreamPlan as StreamPlan
from .plans import mark_channel_for as mark_channel_for
from .plans import plan_klines as plan_klines
from .plans import plan_order_book as plan_order_book
from .plans import plan_private as plan_private
from .plans import plan_tickers as plan_tickers
from .plans import plan_trades as plan_trades

log = logging.getLogger("weex_ws")

GapCallback = Callable[[str, tuple[str, ...]], Any]


class ClientHub:
    def __init__(
        self,
        config: WeexConfig,
        *,
        options: ConnectionOptions,
        rng: random.Random,
        max_retries: int | None = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        fail_fast: bool = False,
        buffer_size: int = 1024,
        on_gap: GapCallback | None = None,
        budget: ConnectionBudget | None = None,
        snapshot_timeout: float = SNAPSHOT_TIMEOUT,
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.config = config
        self.rng = rng
        self.retry = RetrySettings(max_retries, backoff_base, backoff_max, fail_fast)
        self.buffer_size = buffer_size
        self.on_gap = on_gap
        self.connections = ClientConnections(
            config, options=options, rng=rng, retry=self.retry, budget=budget
        )
        self.routers = {False: Router(), True: Router()}
        self.refs = ChannelRefs()
        self.user_channels: set[str] = set()
        self.health = Health(connections_of=self.connections.health)
        self._async_handlers: list[tuple[str, Handler, HandlerBacklog]] = []
        self.books = OrderBooks(self.health, snapshot_timeout=snapshot_timeout)
        self._books = self.books.feeds
        self._ack_listeners: dict[str, list[Callable[[WeexError | None], None]]] = {}
        self.splitter = RecordSplitter()
        """Splits each push into one message per record, once for every consumer."""
        self.frame_handlers: list[tuple[str, Callable[[PushFrame], Any]]] = []
        """Sync callables that see each whole push before it is split (recorders)."""
        self._handler_gaps: set[str] = set()
        """Channels whose next record, to sync handlers, follows a reconnect: flagged `gap`."""

    # ------------------------------------------------------------------ sessions

    @property
    def options(self) -> ConnectionOptions:
        """The options of connections made from now on."""
        return self.connections.options

    @options.setter
    def options(self, options: ConnectionOptions) -> None:
        self.connections.options = options

    def session(self, private: bool) -> WeexSession:
        """The endpoint's first connection: the one `connect()` waits for and raw messages use."""
        return self.connections.endpoint(private).primary()

    @property
    def subscriptions(self) -> frozenset[str]:
        return self.connections.desired

    @property
    def connection_attempts(self) -> int:
        return self.connections.connection_attempts

    # ------------------------------------------------------------------ who holds which channel

    def acquire(self, channel: str, now: float) -> WeexSession:
        """A user (stream or explicit subscribe) wants `channel`; subscribes on the first.

        Returns the session of the connection it is placed on, which may now have bytes to
        flush (or a new connection to open).
        """
        private = is_private_channel(channel)
        if private:
            self.config.require_credentials()
        session: WeexSession | None = None
        if self.refs.count(channel) == 0:
            session = self.connections.subscribe(channel, now)  # may raise: nothing counted
        else:
            session = self.connections.holder(channel)  # None if the server refused it
        self.refs.acquire(channel)
        self.books.awaiting((channel,), now)
        return session if session is not None else self.session(private)

    def release(self, channel: str, now: float) -> WeexSession | None:
        """A user is done with `channel`; unsubscribes after the last one (closing its
        connection when that was its last channel, unless it is the endpoint's first)."""
        if not self.refs.release(channel):
            return None
        return self.connections.unsubscribe(channel, now)

    def release_all(self, channels: Iterable[str], now: float) -> list[WeexSession]:
        """A stream that ends lets go of its channels together: those it held last are
        unsubscribed, and a connection they leave empty is closed instead, with no unsubscribe
        spent (unless it is the endpoint's first). Returns the sessions with bytes to flush.

        Never raises: a channel whose connection has no operation left for the unsubscribe
        stays subscribed (and is logged); a later stream on it reuses it."""
        last = [channel for channel in channels if self.refs.release(channel)]
        sessions, refused = self.connections.unsubscribe_many(last, now)
        for channel, error in refused:
            log.warning(
                "%s stays subscribed: %s",
                channel,
                error,
                extra={"weex_event": "unsubscribe_refused", "channel": channel},
            )
        return list(sessions)

    def user_subscribe(self, channel: str, now: float) -> WeexSession | None:
        """Explicit `subscribe()`: idempotent, holds one reference until `user_unsubscribe()`."""
        if channel in self.user_channels:
            return None
        session = self.acquire(channel, now)
        self.user_channels.add(channel)
        return session

    def listen_for_ack(
        self, channel: str, listener: Callable[[WeexError | None], None]
    ) -> Callable[[], None]:
        """Call `listener(None)` when the server acknowledges `channel`, or with the error it
        answers instead. Returns the function that stops listening."""
        listeners = self._ack_listeners.setdefault(channel, [])
        listeners.append(listener)

        def stop() -> None:
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._ack_listeners.pop(channel, None)

        return stop

    def _answer_listeners(self, channel: str, error: WeexError | None) -> None:
        for listener in list(self._ack_listeners.get(channel, ())):
            listener(error)

    def user_unsubscribe(self, channel: str, now: float) -> WeexSession | None:
        if channel not in self.user_channels:
            return None
        self.user_channels.discard(channel)
        return self.release(channel, now)

    # ------------------------------------------------------------------ streams and handlers

    def open_stream(self, plan: StreamPlan) -> MessageBuffer:
        buffer = MessageBuffer(plan.name, self.buffer_size, plan.policy)
        if plan.book_levels is not None:
            (channel,) = plan.channels
            self._book_feed(channel).readers.append((buffer, plan.book_levels))
        else:
            self.routers[plan.private].add_buffer((*plan.channels, *plan.patterns), buffer)
        return buffer

    def close_stream(self, plan: StreamPlan, buffer: MessageBuffer) -> None:
        if plan.book_levels is not None:
            (channel,) = plan.channels
            feed = self._books.get(channel)
            if feed is not None:
                feed.readers = [(b, n) for b, n in feed.readers if b is not buffer]
                if feed.unread:
                    del self._books[channel]
        else:
            self.routers[plan.private].remove_buffer(buffer)
        buffer.close()

    def hold_book(self, channel: str, levels: int) -> LocalOrderBook:
        """A `LocalOrderBook` of depth `channel`: the client keeps the book until it is let go."""
        feed = self._book_feed(channel)
        feed.holders += 1
        return LocalOrderBook(feed, levels)

    def _book_feed(self, channel: str) -> BookFeed:
        """The book of depth `channel`, started for its first reader or holder."""
        feed = self._books.get(channel)
        if feed is None:
            feed = self._books[channel] = BookFeed(channel)
        return feed

    def let_go_book(self, book: LocalOrderBook) -> None:
        feed = book.let_go()
        if feed is not None and feed.unread and self._books.get(feed.channel) is feed:
            del self._books[feed.channel]

    def _stream_buffers(self, private: bool) -> list[MessageBuffer]:
        """Buffers of open streams (not of async handlers, which outlive connections)."""
        handler_buffers = {id(backlog.buffer(private)) for _, _, backlog in self._async_handlers}
        buffers = [b for b in self.routers[private].buffers if id(b) not in handler_buffers]
        if not private:
            buffers += [buffer for feed in self._books.values() for buffer, _ in feed.readers]
        return buffers

    def add_handler(self, pattern: str, handler: Handler) -> HandlerBacklog | None:
        """Sync handlers are called inline by the hub. For async ones the hub returns the
        bounded backlog their worker task must drain: public data keeps the latest when it
        falls behind, private data it cannot keep fails it (`StreamOverflowError`), as for
        streams."""
        if not inspect.iscoroutinefunction(handler):
            for router in self.routers.values():
                router.add_handler(pattern, handler)
            return None
        name = f"async handler {getattr(handler, '__qualname__', handler)!r}"
        backlog = HandlerBacklog(name, self.buffer_size)
        for private, router in self.routers.items():
            router.add_buffer([pattern], backlog.buffer(private))
        self._async_handlers.append((pattern, handler, backlog))
        return backlog

    def remove_handler(self, pattern: str, handler: Handler | None = None) -> int:
        removed = sum(router.remove_handler(pattern, handler) for router in self.routers.values())
        removed //= len(self.routers)
        kept = []
        for entry in self._async_handlers:
            registered, target, backlog = entry
            if registered == pattern and (handler is None or target == handler):
                for private, router in self.routers.items():
                    router.remove_buffer(backlog.buffer(private))
                backlog.close()
                removed += 1
            else:
                kept.append(entry)
        self._async_handlers = kept
        return removed

    @staticmethod
    def handler_failed(message: WebSocketMessage[Any]) -> None:
        """Call from an `except` block around a handler: log it with its traceback, carry on."""
        log.exception(
            "message handler failed for %s",
            message.channel,
            extra={"weex_event": "handler_error", "channel": message.channel},
        )

    def end_all_streams(self, error: BaseException | None = None) -> None:
        for private in self.routers:
            for buffer in self._stream_buffers(private):
                buffer.close(error)

    # ------------------------------------------------------------------ the endpoint loop

    def start_attempt(
        self, session: WeexSession, now: float, *, wall_time: float | None = None
    ) -> WeexConnection:
        conn = session.start_attempt(now, wall_time=wall_time)
        log.info(
            "connecting to %s (attempt %d)",
            connection_name(session),
            session.connection_attempts,
            extra={
                "weex_event": "connecting",
                "endpoint": _endpoint_name(session),
                "connection": session.index if isinstance(session, PooledSession) else 1,
                "attempt": session.connection_attempts,
            },
        )
        return conn

    def read_events(
        self, session: WeexSession, conn: WeexConnection, now: float
    ) -> Decision | None:
        """`handle_events`, also counting this connection's share in `client.health`."""
        endpoint = self.health.endpoint(_endpoint_name(session))
        messages = endpoint.messages
        stats = session.stats if isinstance(session, PooledSession) else None
        handshakes = 0 if stats is None else stats.handshakes
        decision = self.handle_events(session, conn, now)
        if stats is not None:
            if endpoint.messages != messages:
                stats.messages += endpoint.messages - messages
                stats.last_message_at = endpoint.last_message_at
            if stats.handshakes != handshakes:
                stats.connected_at = endpoint.connected_at
        return decision

    def next_deadline(self, session: WeexSession) -> float | None:
        """When `handle_timer` must next be called for `session`, beside its connection's
        own deadlines: the snapshot deadlines of the books it carries."""
        return self.books.next_deadline(session)

    def handle_timer(self, session: WeexSession, now: float) -> None:
        """Act on `session`'s due deadlines (books whose snapshot is overdue resync)."""
        self.books.handle_timer(session, now)

    def transport_failed(self, session: WeexSession, now: float, error: BaseException) -> Decision:
        # INFO: the decision's own line (reconnecting, giving up) says the same at WARNING.
        log.info(
            "could not connect to %s: %s",
            _endpoint_name(session),
            explain_error(error),
            extra={"weex_event": "connect_failed", "endpoint": _endpoint_name(session)},
        )
        return session.transport_failed(now, error)

    def handle_events(
        self, session: WeexSession, conn: WeexConnection, now: float
    ) -> Decision | None:
        """Drain the connection's events, all of one received buffer in one pass; a decision
        once it has closed, else None. Data pushes, nearly all of it, are delivered as they
        come; health counts them once for the batch."""
        decision: Decision | None = None
        pushes = 0
        last_push_at = 0.0
        deliver = self._deliver
        for event in conn.take_events():
            if type(event) is tuple:  # a data push: (channel, frame, timestamp, raw)
                if not pushes:
                    session.delivered()  # the connection works: see backoff.py
                pushes += 1
                last_push_at = event[2]
                deliver(session, event, now)
                continue
            if isinstance(event, PingAnswered | Subscribed | Unsubscribed):
                session.delivered()
            if isinstance(event, PingAnswered):
                self.health.ping(_endpoint_name(session), event, event.received_at)
            elif isinstance(event, PongReceived):
                self.health.pong(_endpoint_name(session), event.round_trip)
            elif isinstance(event, Subscribed | Unsubscribed):
                if isinstance(event, Subscribed):
                    self._answer_listeners(event.channel, None)
                    self.books.awaiting((event.channel,), now)
                log.debug(
                    "%s %s",
                    type(event).__name__.lower(),
                    event.channel,
                    extra={"weex_event": type(event).__name__.lower(), "channel": event.channel},
                )
            elif isinstance(event, ErrorReceived):
                session.error_received(event.kind, event.code, event.message)
                self._server_error(session, event)
            elif isinstance(event, MessageSkipped):
                self.health.skipped += 1
                log.warning(
                    "skipped a frame from %s: %s",
                    _endpoint_name(session),
                    event.reason,
                    extra={"weex_event": "skipped", "reason": event.reason, "raw": event.raw[:200]},
                )
            elif isinstance(event, Connected):
                session.connected(now)
                self.books.awaiting(event.resubscribed, now)
                self.health.connected(_endpoint_name(session), event.opened_at)
                log.info(
                    "connected to %s",
                    _endpoint_name(session),
                    extra={
                        "weex_event": "connected",
                        "endpoint": _endpoint_name(session),
                        "resubscribed": list(event.resubscribed),
                    },
                )
            elif isinstance(event, ConnectionRejected):
                session.rejected(event)
                log.warning(
                    "%s refused the connection: HTTP %s (%s)",
                    _endpoint_name(session),
                    event.status_code,
                    event.reason,
                    extra={
                        "weex_event": "rejected",
                        "status": event.status_code,
                        "kind": event.kind.value,
                    },
                )
            elif isinstance(event, ConnectionClosed):
                log.info(
                    "%s connection closed: %s",
                    _endpoint_name(session),
                    event.reason or event.code,
                    extra={
                        "weex_event": "closed",
                        "code": event.code,
                        "initiator": event.initiator.value,
                    },
                )
                decision = session.connection_closed(now, event)
        if pushes:
            self.health.messages_received(_endpoint_name(session), pushes, last_push_at)
        return decision

    def decided(self, session: WeexSession, decision: Decision) -> None:
        """Carry out the non-I/O part of a decision: gap flags, callbacks, failing streams."""
        name = _endpoint_name(session)
        if isinstance(decision, Reconnect):
            self.health.reconnects += 1
            self._mark_gaps(session)
            log.warning(
                "reconnecting to %s in %.2fs%s: %s",
                connection_name(session),
                decision.delay,
                f" (attempt {decision.attempt})" if decision.attempt else "",
                decision.reason,
                extra={
                    "weex_event": "reconnecting",
                    "delay": decision.delay,
                    "attempt": decision.attempt,
                },
            )
            if self.on_gap is not None and decision.gap:
                try:
                    self.on_gap(name, decision.gap)
                except Exception:
                    log.exception("on_gap callback failed", extra={"weex_event": "handler_error"})
        elif isinstance(decision, GiveUp):
            log.error("giving up on %s: %s", name, decision.error, extra={"weex_event": "gave_up"})
            for buffer in self._stream_buffers(session.private):
                buffer.close(decision.error)
        else:
            assert isinstance(decision, Stop)

    def _mark_gaps(self, session: WeexSession) -> None:
        """What this connection carried may have been missed: the streams and async handlers
        fed by its channels see a gap flag, its books wait for the resubscribe's snapshot.
        Streams of the endpoint's other connections are not affected."""
        channels = session.subscriptions.desired
        router = self.routers[session.private]
        for channel in channels:
            for buffer in router.route(channel)[1]:
                buffer.mark_gap(channel)  # the first record of each of its channels
        self._handler_gaps.update(channels)
        if session.private:
            return
        for channel in channels:
            feed = self._books.get(channel)
            if feed is not None:
                for buffer, _ in feed.readers:
                    buffer.mark_gap()
                feed.book.invalidate("reconnecting")  # the resubscribe brings a snapshot
                feed.waiting_for = "reconnecting"
                feed.snapshot_due = None  # set again when the new connection asks for it
        self.splitter.forget_candles(channels)

    # ------------------------------------------------------------------ dispatch

    def _deliver(self, session: WeexSession, push: PushTuple, now: float) -> None:
        """Split the push into records once; each goes to every matching buffer and handler.

        Nothing is built for nobody: a push no stream or handler reads is only observed (the
        splitter keeps mark prices and open candles), and a `PushFrame` is made only for
        frame handlers and order books."""
        channel, frame, timestamp, raw = push
        whole = None
        if self.frame_handlers:
            whole = PushFrame(channel, frame, timestamp, raw)
            self._call_frame_handlers(whole)
        router = self.routers[session.private]
        handlers, buffers = router.cached_route(channel) or router.route(channel)
        try:
            if handlers or buffers:
                records = self.splitter.split_push(channel, frame, timestamp, raw)
            else:
                self.splitter.observe(channel, frame, timestamp, raw)
                records = []
        except SplitError as exc:
            self.health.skipped += 1
            log.warning(
                "skipped a push from %s: %s",
                _endpoint_name(session),
                exc,
                extra={"weex_event": "skipped", "reason": str(exc), "raw": raw[:200]},
            )
            records = []
        if self._handler_gaps and channel in self._handler_gaps:
            records = self._after_gap(channel, records, buffers, handlers)
        for message in records:
            for buffer in buffers:
                buffer.put(message)
            for handler in handlers:
                try:
                    handler(message)
                except Exception:
                    self.handler_failed(message)
        feed = self._books.get(channel)
        if feed is not None:
            if whole is None:
                whole = PushFrame(channel, frame, timestamp, raw)
            self.books.update(session, feed, whole, now)

    def _after_gap(
        self,
        channel: str,
        records: list[WebSocketMessage[Any]],
        buffers: Iterable[MessageBuffer],
        handlers: Iterable[Handler],
    ) -> list[WebSocketMessage[Any]]:
        """Deliver the first record of `channel` since its connection dropped, flagged `gap`
        for the sync handlers (buffers keep their own flags); returns the rest to deliver."""
        if not handlers:
            self._handler_gaps.discard(channel)  # nobody to tell
            return records
        if not records:
            return records  # the flag waits for the channel's first record
        self._handler_gaps.discard(channel)
        first = records[0]
        for buffer in buffers:
            buffer.put(first)
        flagged = first.with_gap()
        for handler in handlers:
            try:
                handler(flagged)
            except Exception:
                self.handler_failed(flagged)
        return records[1:]

    def _call_frame_handlers(self, push: PushFrame) -> None:
        for pattern, frame_handler in self.frame_handlers:
            if channel_matches(pattern, push.channel):
                try:
                    frame_handler(push)
                except Exception:
                    log.exception(
                        "frame handler failed for %s",
                        push.channel,
                        extra={"weex_event": "handler_error", "channel": push.channel},
                    )

    def _server_error(self, session: WeexSession, event: ErrorReceived) -> None:
        self.health.errors += 1
        level = logging.WARNING if event.kind is ErrorKind.RATE_LIMIT else logging.ERROR
        log.log(
            level,
            "server error %s: %s",
            event.code,
            event.message,
            extra={
                "weex_event": "server_error",
                "code": event.code,
                "kind": event.kind.value,
                "channel": event.channel,
            },
        )
        if event.channel is None or not event.refused:
            return  # not an answer to a subscribe of this connection: nothing is refused
        # The server refused a channel: streams that asked for exactly it cannot get data.
        error: WeexError = exception_for(
            event.kind, event.code, event.message, channel=event.channel
        )
        self._answer_listeners(event.channel, error)
        for buffer in self.routers[session.private].route(event.channel)[1]:
            if buffer.name == event.channel:
                buffer.close(error)
        feed = self._books.get(event.channel)
        if feed is not None and not session.private:
            self.books.end(feed, error)  # without the channel the book would go silent


def _endpoint_name(session: WeexSession) -> str:
    return "private" if session.private else "public"
