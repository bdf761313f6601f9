"""Typed events that `WeexConnection` hands to the adapter, one per thing that happened.

Every event is a frozen attrs class, so adapters can match on type and tests can compare by value.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ErrorKind
from .messages import Push, parse_push


@attrs.frozen(repr=False)
class WebSocketMessage:
    """One data push from the exchange.

    `data` is the whole decoded JSON frame (a mapping: `event`, `channel`, and `data` for public
    pushes or `msg` for private ones). `timestamp` is when we received it, in seconds since the
    epoch: the wall clock, read by the adapter when the bytes arrived. `raw` is the exact text of
    the frame.
    """

    channel: str
    data: Mapping[str, Any]
    timestamp: float
    raw: str = attrs.field(default="", eq=False)
    gap: bool = False
    """True on the first message after a reconnect or overflow: data before it may be missing."""

    @property
    def received_at(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.timestamp, tz=_dt.UTC)

    def parse(self) -> tuple[Push, ...]:
        """The push as typed records with exact decimals (raises `PayloadError` if malformed)."""
        return parse_push(self.data)

    def __repr__(self) -> str:
        gap = ", gap=True" if self.gap else ""
        return f"WebSocketMessage(channel={self.channel!r}, timestamp={self.timestamp!r}{gap})"


class Event:
    """Base class of the events below."""

    __slots__ = ()


@attrs.frozen
class Connected(Event):
    """The WebSocket upgrade succeeded; subscriptions have been (re)sent."""

    private: bool
    resubscribed: tuple[str, ...] = ()
    opened_at: float = attrs.field(default=0.0, eq=False)
    """Wall time (epoch seconds) of the handshake's completion."""


@attrs.frozen
class ConnectionRejected(Event):
    """The server answered the upgrade with an HTTP status instead of 101."""

    status_code: int
    reason: str
    kind: ErrorKind
    body: bytes = attrs.field(default=b"", repr=False)


@attrs.frozen
class MessageReceived(Event):
    """A data push (`event: payload`) for a channel."""

    message: WebSocketMessage


@attrs.frozen
class Subscribed(Event):
    channel: str


@attrs.frozen
class Unsubscribed(Event):
    channel: str


@attrs.frozen
class PingAnswered(Event):
    """The server's application ping; the matching pong is already queued in `data_to_send()`."""

    time: str
    key: str
    received_at: float
    """Wall time (epoch seconds) the ping arrived: `time` is the server's, in milliseconds."""
    server_time: float | None = None
    """`time` in seconds since the epoch when it is a plausible millisecond timestamp, else None
    (the ping was answered all the same)."""


@attrs.frozen
class PongReceived(Event):
    """The answer to our WebSocket (RFC 6455) ping, with the measured round trip in seconds."""

    round_trip: float | None


@attrs.frozen
class ErrorReceived(Event):
    """An error event from the exchange, classified so the adapter knows whether to retry."""

    kind: ErrorKind
    code: str | None
    message: str
    channel: str | None
    raw: str = attrs.field(default="", repr=False)


@attrs.frozen
class MessageSkipped(Event):
    """A frame we could not use (bad JSON, unknown event, binary data); logged and dropped."""

    reason: str
    raw: str = attrs.field(default="", repr=False)


class CloseInitiator(enum.Enum):
    LOCAL = "local"
    REMOTE = "remote"
    TIMEOUT = "timeout"
    PROTOCOL_ERROR = "protocol_error"
    TRANSPORT = "transport"


@attrs.frozen
class ConnectionClosed(Event):
    """The connection is over. Flush `data_to_send()`, then close the socket."""

    code: int | None
    reason: str
    initiator: CloseInitiator
