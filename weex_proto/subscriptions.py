"""Which channels the user wants, and which ones the current connection has acknowledged.

WEEX keeps subscriptions per connection and forgets them when it drops, so the user's wishes
(`desired`) have to outlive connections and be replayed on every (re)connect. The server also
enforces limits we can count ourselves (protocol doc §5.1): at most 100 channels per connection
and 240 subscribe/unsubscribe requests per connection per hour. What happens past them is
undocumented, so we refuse locally with `SubscriptionLimitError` rather than find out.

Requests carry no id (doc §3.1): acks are matched by channel name alone, which is why
`pending` holds at most one outstanding operation per channel.

Pure bookkeeping: no I/O, and time comes in as `now` (seconds since the epoch).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from .errors import SubscriptionLimitError

__all__ = ["Operation", "SubscriptionBook"]

Operation = Literal["subscribe", "unsubscribe"]

MAX_REFUSED_RESUBSCRIBES = 3
"""Refusals in a row (no ack between them) of a channel the server has served before, each
answered by asking again, after which it is refused for good like any other channel."""


class SubscriptionBook:
    """Desired channels (kept across connections) versus the current connection's state."""

    def __init__(
        self, *, max_channels: int = 100, max_operations: int = 240, window: float = 3600.0
    ) -> None:
        if max_channels < 1:
            raise ValueError("max_channels must be >= 1")
        if max_operations < max_channels:
            # Otherwise a reconnect could not resubscribe everything within one window.
            raise ValueError("max_operations must be >= max_channels")
        if not (math.isfinite(window) and window > 0):
            raise ValueError("window must be a finite number > 0")
        self.max_channels = max_channels
        self.max_operations = max_operations
        self.window = window
        self._desired: dict[str, None] = {}  # a dict keeps insertion order
        self._active: set[str] = set()
        self._pending: dict[str, Operation] = {}
        self._asked_at: dict[str, float] = {}  # when each pending subscribe was sent
        self._connected = False
        self._sent: deque[float] = deque()  # send times of this connection's operations
        self._served: set[str] = set()  # acked at least once, on any connection
        self._refusals: dict[str, int] = {}  # of served channels, since their last ack

    # --- what is known --------------------------------------------------------------------

    @property
    def desired(self) -> tuple[str, ...]:
        """Channels the user asked for, in the order asked; replayed on every connect."""
        return tuple(self._desired)

    def wants(self, channel: str) -> bool:
        """Whether `channel` is desired (`channel in desired`, without building the tuple)."""
        return channel in self._desired

    @property
    def active(self) -> frozenset[str]:
        """Channels the current connection has acknowledged."""
        return frozenset(self._active)

    @property
    def pending(self) -> Mapping[str, str]:
        """Channel -> "subscribe"/"unsubscribe": sent on this connection, not acked yet."""
        return MappingProxyType(dict(self._pending))

    @property
    def connected(self) -> bool:
        return self._connected

    def unanswered_since(self) -> tuple[float, str] | None:
        """When the oldest subscribe still unanswered on this connection was sent, and its
        channel; None when every subscribe has been answered. A server that never answers
        would otherwise leave the channel's readers waiting with nothing to time out."""
        asked = self._asked_at
        if not asked:
            return None
        return min((at, channel) for channel, at in asked.items())

    def operations_left(self, now: float) -> int:
        """Subscribe/unsubscribe requests this connection may still send at `now`.

        While disconnected this is the full budget: the limit is per connection, and the next
        one starts afresh (its resubscriptions will take their share).
        """
        self._forget_old_operations(now)
        return self.max_operations - len(self._sent)

    def next_operation_at(self, now: float) -> float:
        """When this connection may send its next operation: `now` if it may already."""
        self._forget_old_operations(now)
        if len(self._sent) < self.max_operations:
            return now
        return self._sent[len(self._sent) - self.max_operations] + self.window

    # --- what the user asks for -----------------------------------------------------------

    def subscribe(self, channel: str, now: float) -> dict[str, str] | None:
        """Want `channel`. Returns the request to send now, or None if there is nothing to send.

        Nothing is sent while disconnected (the next connect sends it) or for a channel that
        is already desired. Raises `SubscriptionLimitError`, changing nothing, if the channel
        limit or this connection's operation budget would be exceeded.
        """
        if channel in self._desired:
            return None
        if len(self._desired) >= self.max_channels:
            raise SubscriptionLimitError(
                f"cannot subscribe to {channel!r}: already at the limit of "
                f"{self.max_channels} channels per connection"
            )
        if not self._connected:
            self._desired[channel] = None
            return None
        self._check_budget(channel, "subscribe", now)
        self._desired[channel] = None
        return self._send(channel, "subscribe", now)

    def unsubscribe(self, channel: str, now: float) -> dict[str, str] | None:
        """Stop wanting `channel`; the mirror image of `subscribe`.

        A channel that is not desired is left alone and nothing is sent.
        """
        if channel not in self._desired:
            return None
        if not self._connected:
            del self._desired[channel]
            return None
        self._check_budget(channel, "unsubscribe", now)
        del self._desired[channel]
        return self._send(channel, "unsubscribe", now)

    # --- what the connection reports ------------------------------------------------------

    def connection_opened(self, now: float) -> list[dict[str, str]]:
        """A new connection is up: return one subscribe request per desired channel, in order.

        The server has no subscriptions on a fresh connection and the operation budget starts
        over, so everything desired is (re)sent and counted against the new budget.
        """
        self._connected = True
        self._active.clear()
        self._pending.clear()
        self._asked_at.clear()
        self._sent.clear()
        return [self._send(channel, "subscribe", now) for channel in self._desired]

    def connection_lost(self) -> None:
        """The connection is gone, and its subscriptions with it; the wishes stay."""
        self._connected = False
        self._active.clear()
        self._pending.clear()
        self._asked_at.clear()
        self._sent.clear()

    def on_subscribed(self, channel: str) -> bool:
        """The server acked a subscribe. False (and no change) if we cannot place the ack.

        On a live connection every desired channel is active or has a subscribe pending, so an
        ack for a desired channel that is not active yet is always matched by that subscribe.
        """
        operation = self._pending.get(channel)
        if operation == "subscribe":
            del self._pending[channel]
            self._asked_at.pop(channel, None)
            self._active.add(channel)
            self._served.add(channel)
            self._refusals.pop(channel, None)
            return True
        if operation == "unsubscribe" and channel not in self._active:
            # Subscribe then unsubscribe were both sent; this acks the first. The server
            # does hold the channel until the unsubscribe, still pending, is acked.
            self._active.add(channel)
            return True
        return False

    def on_unsubscribed(self, channel: str) -> bool:
        """The server acked an unsubscribe. False (and no change) if we never asked for it."""
        operation = self._pending.get(channel)
        if operation == "unsubscribe":
            del self._pending[channel]
            self._active.discard(channel)
            return True
        if operation == "subscribe" and channel in self._active:
            # Unsubscribe then subscribe again were both sent; this acks the first, and
            # the channel comes back when the re-subscribe is acked.
            self._active.discard(channel)
            return True
        return False

    def on_refused(self, channel: str, now: float) -> dict[str, str] | None:
        """The server answered our pending subscribe of `channel` with an error.

        A channel it has served before (a resubscribe after a reconnect, or a book's resync)
        has a good name, so the error is about this request (a limit, a hiccup, or noise),
        not the channel: it is asked for again, returning the request to send, while this
        connection's budget lasts and up to `MAX_REFUSED_RESUBSCRIBES` times in a row.
        Anything else is `on_rejected`: stop wanting it (returns None).
        """
        refusals = self._refusals.get(channel, 0) + 1
        if (
            channel in self._served
            and self._pending.get(channel) == "subscribe"
            and refusals <= MAX_REFUSED_RESUBSCRIBES
            and self.operations_left(now) > 0
        ):
            self._refusals[channel] = refusals
            return self._send(channel, "subscribe", now)
        self.on_rejected(channel)
        return None

    def on_rejected(self, channel: str) -> bool:
        """The server refused `channel`: stop wanting it, so reconnects do not retry it."""
        if channel not in self._desired and channel not in self._pending:
            return False
        self._served.discard(channel)
        self._refusals.pop(channel, None)
        self._desired.pop(channel, None)
        self._pending.pop(channel, None)
        self._asked_at.pop(channel, None)
        self._active.discard(channel)
        return True

    # --- internals ------------------------------------------------------------------------

    def _forget_old_operations(self, now: float) -> None:
        # Times should not go backwards; if they do, operations are merely forgotten late.
        horizon = now - self.window
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()

    def _check_budget(self, channel: str, operation: Operation, now: float) -> None:
        self._forget_old_operations(now)
        if len(self._sent) >= self.max_operations:
            retry_after = self._sent[0] + self.window - now
            raise SubscriptionLimitError(
                f"cannot {operation} {channel!r}: this connection has used its "
                f"{self.max_operations} subscribe/unsubscribe operations per "
                f"{self.window:g} seconds",
                retry_after=retry_after,
            )

    def _send(self, channel: str, operation: Operation, now: float) -> dict[str, str]:
        self._pending[channel] = operation
        if operation == "subscribe":
            self._asked_at[channel] = now
        else:
            self._asked_at.pop(channel, None)
        self._sent.append(now)
        return {"event": operation, "channel": channel}

    def __repr__(self) -> str:
        return (
            f"SubscriptionBook(desired={len(self._desired)}, active={len(self._active)}, "
            f"pending={len(self._pending)}, connected={self._connected})"
        )
