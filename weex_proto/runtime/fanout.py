"""Where each received message goes: handlers and per-stream buffers, with bounded memory.

Both adapters share this so they route, drop and flag gaps identically; they add only the
waiting (an event to wake a sleeping consumer) and the calling of async handlers.

Overflow policies:
- KEEP_LATEST (tickers, books, trades): drop the oldest message and flag a gap on the oldest
  one kept (data is missing right before it), so a slow consumer always gets fresh data and
  never grows memory.
- RAISE (private account/position/order data): losing one of these silently would corrupt the
  user's view of their money, so the consumer fails with `StreamOverflowError` instead.

Every consumer kind follows the same rule: a stream's one buffer has its data's policy, and an
async handler, which may see both kinds, has a `HandlerBacklog` of one buffer of each.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..channels import channel_matches
from ..errors import StreamOverflowError
from ..events import WebSocketMessage


class OverflowPolicy(enum.Enum):
    KEEP_LATEST = "keep_latest"
    RAISE = "raise"


class _Closed:
    """Marker: no more messages will come (the stream's error, if any, is kept beside it)."""


class MessageBuffer:
    """A bounded FIFO of messages for one consumer."""

    def __init__(self, name: str, maxsize: int, policy: OverflowPolicy) -> None:
        if maxsize < 1:
            raise ValueError("buffer size must be at least 1")
        self.name = name
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
        self._items: deque[WebSocketMessage[Any]] = deque()
        self._gap = False  # the next message, whatever its channel, follows lost data
        self._gap_channels: set[str] = set()  # the next message of each of these does
        self._error: BaseException | None = None
        self._closed = False
        self.waker: Callable[[], None] | None = None
        """Set by the adapter: called when a message arrives in the empty buffer (a consumer
        waits only on an empty one) or the end arrives, to wake the consumer."""

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (
            f"<MessageBuffer {self.name} {len(self._items)}/{self.maxsize} dropped={self.dropped}>"
        )

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """What the buffer was closed with, if anything."""
        return self._error

    @property
    def pending(self) -> deque[WebSocketMessage[Any]]:
        """The messages waiting, oldest first: a consumer may `popleft()` from it directly
        while it is not empty (the stream's fast path), and calls `get()` once it is."""
        return self._items

    def put(self, message: WebSocketMessage[Any]) -> None:
        if self._closed:
            return
        items = self._items
        if items and len(items) < self.maxsize and not self._gap and not self._gap_channels:
            items.append(message)  # the common case: not empty, so nobody waits to be woken
            return
        if len(self._items) >= self.maxsize:
            if self.policy is OverflowPolicy.RAISE:
                self.close(StreamOverflowError(message.channel, self.maxsize))
                return
            self._items.popleft()
            self.dropped += 1
            # Data is now missing just before the oldest message we still hold: flag that one.
            if self._items:
                self._items[0] = self._items[0].with_gap()
            else:
                self._gap = True
        if self._gap or message.channel in self._gap_channels:
            message = message.with_gap()
            self._gap = False
            self._gap_channels.discard(message.channel)
        was_empty = not self._items
        self._items.append(message)
        if was_empty and self.waker is not None:
            self.waker()

    def mark_gap(self, channel: str | None = None) -> None:
        """Data may be missing before whatever arrives next on `channel` (e.g. after its
        connection dropped), or, with no channel, before whatever arrives next at all."""
        if channel is None:
            self._gap = True
        else:
            self._gap_channels.add(channel)

    def close(self, error: BaseException | None = None) -> None:
        """No more messages. With an error, the consumer sees it after the buffered ones
        (for RAISE-policy overflow: immediately, since what is buffered is already incomplete)."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        if isinstance(error, StreamOverflowError):
            self._items.clear()
        if self.waker is not None:
            self.waker()

    def get(self) -> WebSocketMessage[Any] | None:
        """The next message; None if empty and open. Raises the close error, or
        `StopAsyncIteration`-worthy `BufferClosed`, once drained and closed."""
        if self._items:
            return self._items.popleft()
        if self._closed:
            if self._error is not None:
                raise self._error
            raise BufferClosed(self.name)
        return None


class BufferClosed(Exception):
    """The buffer is drained and closed without error: the stream ends normally."""


class HandlerBacklog:
    """An async handler's messages waiting for its worker task: public ones in a KEEP_LATEST
    buffer (on the public router), private ones in a RAISE buffer (on the private router).

    Two buffers, not one, so a public flood that overflows the backlog can only push out older
    public messages, never a private one; and neither costs anything more per message than a
    stream's buffer. One worker drains both, so the handler is never called concurrently with
    itself; private messages go first, so they never wait behind a backlog of market data.

    A private message that cannot be kept fails the backlog at once (`failure`, and
    `on_overflow` is called with it), not when the worker next asks: the handler may be stuck
    in the very call that made it fall behind.
    """

    def __init__(self, name: str, maxsize: int) -> None:
        self.name = name
        self.public = MessageBuffer(name, maxsize, OverflowPolicy.KEEP_LATEST)
        self.private = MessageBuffer(name, maxsize, OverflowPolicy.RAISE)
        self.private.waker = self._private_woken
        self.failure: StreamOverflowError | None = None
        self.on_overflow: Callable[[StreamOverflowError], None] | None = None
        self._waker: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<HandlerBacklog {self.public!r} {self.private!r}>"

    def __len__(self) -> int:
        return len(self.public) + len(self.private)

    def buffer(self, private: bool) -> MessageBuffer:
        return self.private if private else self.public

    @property
    def waker(self) -> Callable[[], None] | None:
        return self._waker

    @waker.setter
    def waker(self, waker: Callable[[], None] | None) -> None:
        # The worker sleeps only when both are empty, so a put into either wakes it.
        self.public.waker = self._waker = waker

    def _private_woken(self) -> None:
        """A private message arrived in the empty buffer, or the buffer closed."""
        if self.private.closed and self.failure is None:
            error = self.private.error
            if isinstance(error, StreamOverflowError):
                self.failure = StreamOverflowError(error.channel, error.maxsize, consumer=self.name)
                self.public.close()
                if self.on_overflow is not None:
                    self.on_overflow(self.failure)
        if self._waker is not None:
            self._waker()

    @property
    def closed(self) -> bool:
        return self.public.closed and self.private.closed

    def close(self) -> None:
        """No more messages (the handler was removed)."""
        self.public.close()
        self.private.close()

    def get(self) -> WebSocketMessage[Any] | None:
        """The next message; None if both are empty and open. Raises `failure` once a private
        message could not be kept (what is buffered is already incomplete), `BufferClosed`
        once both are drained and closed."""
        if self.failure is not None:
            raise self.failure
        try:
            message = self.private.get()
        except BufferClosed:
            message = None  # closed normally: drain the public one to its end
        if message is None:
            message = self.public.get()
        return message


Handler = Callable[[WebSocketMessage[Any]], Any]


@attrs.define
class _Route:
    pattern: str
    target: Any  # a handler callable or a MessageBuffer


ROUTE_CACHE_SIZE = 4096
"""Channels whose routes `Router` remembers: far more than any real subscription set."""


class Router:
    """Maps channel names to handlers and buffers, by exact name or shell-style pattern.

    Lookups are cached per channel because the same few channels repeat on the hot path. The
    names come from the server, so the cache is bounded: when full, the entry cached longest
    ago is dropped. A channel that keeps receiving is simply cached again on its next message,
    so the hot set stays cached while a flood of one-off names cannot grow memory.
    """

    def __init__(self, cache_size: int = ROUTE_CACHE_SIZE) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.cache_size = cache_size
        self._handlers: list[_Route] = []
        self._buffers: list[_Route] = []
        self._cache: dict[str, tuple[list[Handler], list[MessageBuffer]]] = {}
        self.cached_route = self._cache.get
        """The route of a channel if it is cached, else None: `route` without a Python call,
        for the hub's per-push path (the cache is only ever cleared, never replaced)."""

    def add_handler(self, pattern: str, handler: Handler) -> None:
        _check_pattern(pattern)
        self._handlers.append(_Route(pattern, handler))
        self._cache.clear()

    def remove_handler(self, pattern: str, handler: Handler | None = None) -> int:
        """Remove handlers for `pattern` (all of them, or just `handler`); returns how many."""
        before = len(self._handlers)
        self._handlers = [
            r
            for r in self._handlers
            if not (r.pattern == pattern and (handler is None or r.target == handler))
        ]
        self._cache.clear()
        return before - len(self._handlers)

    def add_buffer(self, patterns: Iterable[str], buffer: MessageBuffer) -> None:
        for pattern in patterns:
            _check_pattern(pattern)
            self._buffers.append(_Route(pattern, buffer))
        self._cache.clear()

    def remove_buffer(self, buffer: MessageBuffer) -> None:
        self._buffers = [r for r in self._buffers if r.target is not buffer]
        self._cache.clear()

    @property
    def buffers(self) -> list[MessageBuffer]:
        seen: dict[int, MessageBuffer] = {}
        for route in self._buffers:
            seen.setdefault(id(route.target), route.target)
        return list(seen.values())

    def route(self, channel: str) -> tuple[list[Handler], list[MessageBuffer]]:
        cached = self._cache.get(channel)
        if cached is None:
            handlers = [r.target for r in self._handlers if channel_matches(r.pattern, channel)]
            buffers: list[MessageBuffer] = []
            for r in self._buffers:
                if channel_matches(r.pattern, channel) and r.target not in buffers:
                    buffers.append(r.target)
            if len(self._cache) >= self.cache_size:
                del self._cache[next(iter(self._cache))]  # dicts keep insertion order
            cached = self._cache[channel] = (handlers, buffers)
        return cached

    @property
    def cached_channels(self) -> int:
        """How many channels' routes are remembered (never more than `cache_size`)."""
        return len(self._cache)

    def deliver(self, message: WebSocketMessage[Any]) -> list[Handler]:
        """Put the message in every matching buffer; return the handlers the adapter must call."""
        handlers, buffers = self.route(message.channel)
        for buffer in buffers:
            buffer.put(message)
        return handlers


def _check_pattern(pattern: str) -> None:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("a channel name or pattern must be a non-empty string")
    if pattern != pattern.strip():
        raise ValueError(f"channel pattern {pattern!r} has surrounding whitespace")


class ChannelRefs:
    """Reference counts per channel so that two streams on one channel share a subscription,
    and closing one stream does not unsubscribe the other (or the user's explicit one)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def acquire(self, channel: str) -> bool:
        """Count a user; True if this is the first (so the caller must subscribe)."""
        count = self._counts.get(channel, 0)
        self._counts[channel] = count + 1
        return count == 0

    def release(self, channel: str) -> bool:
        """Drop a user; True if it was the last (so the caller should unsubscribe)."""
        count = self._counts.get(channel, 0)
        if count <= 1:
            self._counts.pop(channel, None)
            return count == 1
        self._counts[channel] = count - 1
        return False

    def count(self, channel: str) -> int:
        return self._counts.get(channel, 0)
