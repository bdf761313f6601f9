"""Typed events that `WeexConnection` hands to the adapter, one per thing that happened.

Every event is a frozen attrs class, so adapters can match on type and tests can compare by value.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Generic, Protocol, TypeVar, cast

import attrs

from .errors import ErrorKind
from .messages import Push, parse_push

_UNSET: Final[Any] = object()


R = TypeVar("R")


class RecordKind(Protocol):
    """How a message turns its raw record into `.data` and `.record` (see `records.py`).

    `row_view`, when not None, builds `.data` from `(channel, row)` with no work of its own:
    such a view is made with the message, the others on first access."""

    @property
    def row_view(self) -> Callable[[str, Any], Mapping[str, Any]] | None: ...
    def data(self, channel: str, source: Any, context: Any) -> Mapping[str, Any]: ...
    def parse(self, channel: str, source: Any, index: int, context: Any) -> Any: ...


class _Frozen:
    """Immutability and value equality for the hot-path slots classes below: they are built
    as their plain slots base and frozen by switching to the subclass, so nothing here runs
    per message. Subclasses say which fields compare (`_key`) and hash (`_hash_key`)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise attrs.exceptions.FrozenInstanceError

    def __delattr__(self, name: str) -> None:
        raise attrs.exceptions.FrozenInstanceError

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def _hash_key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Frozen)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._hash_key())


class _MessageSlots:
    """`WebSocketMessage`'s fields with ordinary (fast) attribute stores, for building one."""

    __slots__ = (
        "_record",
        "_view",
        "channel",
        "context",
        "frame",
        "gap",
        "index",
        "kind",
        "raw",
        "source",
        "timestamp",
    )


class WebSocketMessage(_MessageSlots, _Frozen, Generic[R]):
    """One record of a data push: a ticker, a trade, a candle, an order, a position, a
    collateral entry or a fill; for `stream_order_book`, one consistent local book.

    - `data`: the record as a read-only mapping with WEEX's own field names *and* the names of
      the documentation (`last`, `volume`, `change`, `side`, `status`, `balance`, ...), values
      as the exchange's exact strings; built on first access.
    - `record`: the typed record (`Ticker`, `Order`, `OrderBookSnapshot`, ...), parsed on first
      access and cached; raises `PayloadError` if the exchange sent a malformed one.
    - `frame`: the whole decoded frame the record came in; `raw`: that frame's exact text.
    - `timestamp`: when the frame arrived, seconds since the epoch (the adapter's wall clock).
    - `gap`: True on the first record after a reconnect or an overflow.
    - `source`: the record as it sits in `frame` (a JSON object, or a kline's array row), or
      the record itself when there is no `kind` (order books); `index`: which record of the
      frame this is (0 for the first); `context`: what the client knew beside the frame (a
      candle's closed flag, a position's mark price).

    Immutable like the events, but not an attrs class: one is built per record on the hot
    path, so it is a plain slots class whose constructor validates nothing (the splitter
    hands it rows it has checked) and costs a fraction of an attrs `__init__`. Equality
    compares `channel`, `frame`, `timestamp`, `gap` and `index`.
    """

    __slots__ = ()
    channel: str
    frame: Mapping[str, Any]
    timestamp: float
    raw: str
    gap: bool
    source: Any
    kind: RecordKind | None
    index: int
    context: Any
    _view: Mapping[str, Any] | None
    _record: Any

    def __new__(
        cls,
        channel: str,
        frame: Mapping[str, Any],
        timestamp: float,
        raw: str = "",
        gap: bool = False,
        source: Any = None,
        kind: RecordKind | None = None,
        index: int = 0,
        context: Any = None,
    ) -> WebSocketMessage[R]:
        # Filled in as plain `_MessageSlots`, then frozen by switching its class.
        self: Any = object.__new__(_MessageSlots)
        self.channel = channel
        self.frame = frame
        self.timestamp = timestamp
        self.raw = raw
        self.gap = gap
        self.source = source
        self.kind = kind
        self.index = index
        self.context = context
        self._view = None
        self._record = _UNSET
        self.__class__ = cls
        return self  # type: ignore[no-any-return]

    def _key(self) -> tuple[Any, ...]:
        return (self.channel, self.frame, self.timestamp, self.gap, self.index)

    def _hash_key(self) -> tuple[Any, ...]:
        return (self.channel, self.timestamp, self.gap, self.index)  # frames are dicts

    def with_gap(self) -> WebSocketMessage[R]:
        """The same message flagged `gap=True` (what a buffer hands on after an overflow)."""
        message: WebSocketMessage[R] = WebSocketMessage(
            self.channel,
            self.frame,
            self.timestamp,
            self.raw,
            True,
            self.source,
            self.kind,
            self.index,
            self.context,
        )
        _set_view(message, self._view)
        _set_record(message, self._record)
        return message

    @property
    def data(self) -> Mapping[str, Any]:
        """The record as a read-only mapping; see the class docstring and the README."""
        view = self._view
        if view is None:
            if self.kind is not None:
                view = self.kind.data(self.channel, self.source, self.context)
            elif isinstance(self.source, Mapping):
                view = self.source
            else:
                view = MappingProxyType(dict(self.frame))
            _set_view(self, view)
        return view

    @property
    def record(self) -> R:
        """The typed record, parsed once (`PayloadError` if the exchange sent a bad one)."""
        record = self._record
        if record is _UNSET:
            if self.kind is None:
                record = self.source
            else:
                record = self.kind.parse(self.channel, self.source, self.index, self.context)
            _set_record(self, record)
        return cast(R, record)

    @property
    def received_at(self) -> _dt.datetime:
        """`timestamp` as an aware UTC datetime."""
        return _dt.datetime.fromtimestamp(self.timestamp, tz=_dt.UTC)

    def __repr__(self) -> str:
        gap = ", gap=True" if self.gap else ""
        return (
            f"WebSocketMessage(channel={self.channel!r}, index={self.index}, "
            f"timestamp={self.timestamp!r}{gap})"
        )


def messages_for_rows(
    channel: str,
    frame: Mapping[str, Any],
    timestamp: float,
    raw: str,
    rows: list[Any],
    kind: RecordKind,
) -> list[WebSocketMessage[Any]]:
    """One message per row of one push, with no context: what `WebSocketMessage(...)` builds
    for each, in one call per push (the splitter's hot path: tickers, trades, depth)."""
    messages: list[WebSocketMessage[Any]] = []
    append = messages.append
    new = object.__new__
    cls = WebSocketMessage
    row_view: Any = kind.row_view
    view: Any = None
    for index, row in enumerate(rows):
        if row_view is not None:  # `row_view(channel, row)`, without a call to `__init__`
            view = new(row_view)
            view._channel = channel
            view._row = row
        message: Any = new(_MessageSlots)
        message.channel = channel
        message.frame = frame
        message.timestamp = timestamp
        message.raw = raw
        message.gap = False
        message.source = row
        message.kind = kind
        message.index = index
        message.context = None
        message._view = view
        message._record = _UNSET
        message.__class__ = cls
        append(message)
    return messages


_set_view = _MessageSlots._view.__set__  # type: ignore[attr-defined]
_set_record = _MessageSlots._record.__set__  # type: ignore[attr-defined]
"""Fill a message's caches past its frozen `__setattr__` (the slot descriptors themselves)."""


class _PushSlots:
    """`PushFrame`'s fields with ordinary (fast) attribute stores, for building one."""

    __slots__ = ("channel", "frame", "raw", "timestamp")


class PushFrame(_PushSlots, _Frozen):
    """One whole data push as the connection received it; the hub splits it into records.

    `frame` is the decoded JSON object, `raw` its exact text, `timestamp` the wall time of its
    arrival (seconds since the epoch). Immutable; a slots class built like `WebSocketMessage`
    (one per received frame). Equality compares `channel`, `frame` and `timestamp`.
    """

    __slots__ = ()
    channel: str
    frame: Mapping[str, Any]
    timestamp: float
    raw: str

    def __new__(
        cls, channel: str, frame: Mapping[str, Any], timestamp: float, raw: str = ""
    ) -> PushFrame:
        self: Any = object.__new__(_PushSlots)
        self.channel = channel
        self.frame = frame
        self.timestamp = timestamp
        self.raw = raw
        self.__class__ = cls
        return self  # type: ignore[no-any-return]

    def _key(self) -> tuple[Any, ...]:
        return (self.channel, self.frame, self.timestamp)

    def _hash_key(self) -> tuple[Any, ...]:
        return (self.channel, self.timestamp)

    @property
    def received_at(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.timestamp, tz=_dt.UTC)

    def parse(self) -> tuple[Push, ...]:
        """The whole push as typed records with exact decimals (`PayloadError` if malformed)."""
        return parse_push(self.frame)

    def __repr__(self) -> str:
        return f"PushFrame(channel={self.channel!r}, timestamp={self.timestamp!r})"


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
    """A data push (`event: payload`) for a channel, whole; the hub splits it into records."""

    message: PushFrame


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
    refused: bool = False
    """The error answered this connection's pending subscribe of `channel` and the channel is
    given up (see `SubscriptionBook.on_refused`): only then does it end the channel's streams.
    An error naming a channel this connection did not ask for, or one asked for again, refuses
    nothing."""


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
