"""Spreading channels over several connections of one endpoint, within WEEX's limits.

WEEX caps one connection at 100 channels and 240 subscribe/unsubscribe operations per hour,
and one IP at 100 concurrent connections and 300 connection requests per 5 minutes (protocol
doc §5.1). A stream of 350 tickers therefore needs four connections, and a network blip that
drops them all must not turn into a burst of reconnects that gets the IP banned. Two pieces of
pure state make those decisions, with no I/O and no clock of their own (time comes in as a
monotonic `now`):

* `ConnectionBudget`, shared by every connection of a client (public and private pools
  alike): the concurrent-connection cap, and a pacer for connection requests. The pacer is a
  token bucket (a small burst, then `rate` per second) under a sliding-window log that holds
  the hard limit exactly: never more than `max_requests` in any `window` seconds, however the
  burst and rate are set. `request(now)` answers `ConnectNow` (and counts it) or
  `ConnectLater(not_before)`. The pool asks with `reserve(now)` instead: a `Connect` it hands
  out may be used a while later, and WEEX counts the request when the socket is opened, so the
  granted request is held in the window (as if it went out at every moment) until `sent(now)`
  stamps it with the time the attempt really started, or `release()` drops an unused one.
* `ConnectionPool`, one per endpoint: which connection each channel goes to. Each pooled
  connection keeps its own `SubscriptionBook`, so its channel limit and operation budget are
  counted exactly as a single connection's are. The pool hands out actions (`Connect`,
  `Send`, `Close`) for the adapter to carry out, and is told what happened
  (`connected`, `connection_lost`, the acks).

Placement rules:

* First fit in connection order: a channel goes to the oldest connection that has fewer than
  `max_channels` channels and, when it is open, an operation left to subscribe with. Only when
  none has room is another connection opened, so channels stay packed on few connections.
* Stable: a channel never moves while its connection lives. A drop keeps the connection's
  channels on it; when it is back, exactly those channels are resubscribed (and its operation
  budget starts over, as WEEX's does), while the other connections keep streaming.
* An emptied connection is closed at once (no unsubscribe is spent on its last channel). One
  that never got a socket is simply forgotten. Channels let go together (a stream that ends,
  `unsubscribe_emptying`) close every connection they empty without spending any. A held
  connection (`hold`) is never closed for being empty.
* Past the limits the pool refuses with `SubscriptionLimitError`, changing nothing: no
  connection can take the channel and the connection cap is reached, or the channel's
  connection has no operation left to unsubscribe with (`retry_after` says when it will).

Lifecycle of one pooled connection::

                      budget says ConnectNow
    (new) --> WAITING -----------------------> CONNECTING --connected()--> OPEN
                 ^                                  |                       |
                 +--------- connection_lost() ------+-----------------------+
    emptied: WAITING --> gone;  CONNECTING / OPEN --Close--> CLOSING --connection_lost()--> gone

A connection holds its budget slot from creation until it is gone, so a reconnecting connection
keeps its place under the connection cap. Each `Connect` consumes one connection request,
held in the budget until the attempt is reported: `attempt_started` (the client's sessions
say when their attempt went out), else `connected` or `connection_lost`, which stamp it then
(no earlier than it went, so the window never undercounts); `withdraw_grant` releases one that
will not be used.

The client (`sessionpool.SessionPool`, one per endpoint) gives each pooled connection its own
`WeexSession` whose `WeexConnection` keeps the member's book: the connection replays it on each
handshake and applies the acks, so the pool is only told that a socket opened or closed.
`connected()` then has nothing to send; a pure driver of the pool (the tests) gets the
subscribes from it instead. The client also holds its first connection (`hold`), so an
endpoint keeps one connection while it is in use, parks connections when the user disconnects
or a connection gives up (`connection_lost(..., retry_at=math.inf)`, `retry_now`), and calls
`poll()` when `next_deadline()` comes.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import deque
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from .errors import SubscriptionLimitError
from .subscriptions import Operation, SubscriptionBook

# Refills are float arithmetic: a request made exactly at `available_at()` must not miss its
# token by a rounding error.
_TOKEN_SLACK = 1e-9

__all__ = [
    "Close",
    "Connect",
    "ConnectLater",
    "ConnectNow",
    "ConnectVerdict",
    "ConnectionBudget",
    "ConnectionPool",
    "PoolAction",
    "PooledConnection",
    "PooledState",
    "Send",
]


# --- the per-IP budget -------------------------------------------------------------------------


@attrs.frozen
class ConnectNow:
    """Open the connection now; the request has been counted."""


@attrs.frozen
class ConnectLater:
    """No connection request may go out before `not_before` (monotonic seconds)."""

    not_before: float


ConnectVerdict = ConnectNow | ConnectLater


class ConnectionBudget:
    """WEEX's per-IP connection limits, shared by every connection of one client.

    Defaults follow the documentation (100 concurrent connections, 300 requests per 300 s);
    `burst` and `rate` shape how fast requests go out below that limit: after a mass drop the
    first `burst` reconnects go at once, then one every `1 / rate` seconds.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_requests: int = 300,
        window: float = 300.0,
        burst: int = 20,
        rate: float | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if max_requests < 1:
            raise ValueError("max_requests must be >= 1")
        if not (math.isfinite(window) and window > 0):
            raise ValueError("window must be a finite number > 0")
        if not 1 <= burst <= max_requests:
            raise ValueError("burst must be between 1 and max_requests")
        rate = max_requests / window if rate is None else rate
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError("rate must be a finite number > 0")
        self.max_connections = max_connections
        self.max_requests = max_requests
        self.window = window
        self.burst = burst
        self.rate = rate
        self._slots = 0
        self._tokens = float(burst)
        self._tokens_at: float | None = None  # when `_tokens` was last brought up to date
        self._requests: deque[float] = deque()  # times of the requests still in the window
        self._held = 0  # reserved requests not sent yet: in the window until they are

    # --- concurrent connections -------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Connections holding a slot (open, opening or waiting to reconnect)."""
        return self._slots

    def reserve_slot(self) -> bool:
        """Take a slot for one more connection; False when the cap is reached."""
        if self._slots >= self.max_connections:
            return False
        self._slots += 1
        return True

    def release_slot(self) -> None:
        if self._slots <= 0:
            raise RuntimeError("release_slot() without a reserved slot")
        self._slots -= 1

    # --- connection requests ----------------------------------------------------------------

    @property
    def held(self) -> int:
        """Reserved requests not yet `sent` (or `release`d)."""
        return self._held

    def requests_in_window(self, now: float) -> int:
        """Connection requests counted in the `window` seconds up to `now`, the reserved ones
        not yet sent included."""
        self._forget_old_requests(now)
        return len(self._requests) + self._held

    def request(self, now: float) -> ConnectVerdict:
        """May a connection request go out at `now`? Counts it when the answer is yes."""
        verdict = self._take(now)
        if isinstance(verdict, ConnectNow):
            self._requests.append(now)
        return verdict

    def reserve(self, now: float) -> ConnectVerdict:
        """May a connection request go out from `now` on? When the answer is yes the request
        is held: it counts in the window at every moment until `sent` (or `release`), so a
        grant used late still cannot put more than `max_requests` in any window."""
        verdict = self._take(now)
        if isinstance(verdict, ConnectNow):
            self._held += 1
        return verdict

    def sent(self, now: float) -> None:
        """A reserved request went out at `now`: from now on it counts from that time."""
        if self._held <= 0:
            raise RuntimeError("sent() without a reserved request")
        self._forget_old_requests(now)
        self._held -= 1
        self._requests.append(now)

    def release(self) -> None:
        """A reserved request will not go out: the window forgets it (its token stays spent,
        the bucket never refunds)."""
        if self._held <= 0:
            raise RuntimeError("release() without a reserved request")
        self._held -= 1

    def _take(self, now: float) -> ConnectVerdict:
        self._refill(now)
        self._forget_old_requests(now)
        not_before = self.available_at()
        if not_before > now:
            return ConnectLater(not_before)
        self._tokens -= 1.0
        return ConnectNow()

    def count(self, now: float) -> None:
        """Count a request that went out without asking (a caller pacing itself): the window
        and the bucket still see it, so the requests asked for after it wait their turn."""
        self._refill(now)
        self._forget_old_requests(now)
        self._tokens -= 1.0
        self._requests.append(now)

    def available_at(self) -> float:
        """The earliest time the next request is allowed (in the past when it is allowed now;
        `math.inf` while reserved requests alone fill the window: one must be sent first)."""
        at = -math.inf
        if self._tokens < 1.0 - _TOKEN_SLACK and self._tokens_at is not None:
            at = self._tokens_at + (1.0 - self._tokens) / self.rate
        room = self.max_requests - self._held  # what the sent requests may fill
        if room <= 0:
            return math.inf
        if len(self._requests) >= room:
            at = max(at, self._requests[-room] + self.window)
        return at

    def _refill(self, now: float) -> None:
        if self._tokens_at is not None and now > self._tokens_at:
            elapsed = now - self._tokens_at
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        if self._tokens_at is None or now > self._tokens_at:
            self._tokens_at = now  # a clock going backwards is ignored, never refunds

    def _forget_old_requests(self, now: float) -> None:
        # A request counts while `at + window > now`, the same test `available_at` makes.
        while self._requests and self._requests[0] + self.window <= now:
            self._requests.popleft()

    def __repr__(self) -> str:
        return (
            f"ConnectionBudget(connections={self._slots}/{self.max_connections}, "
            f"requests={len(self._requests) + self._held}/{self.max_requests} per "
            f"{self.window:g}s)"
        )


# --- the pool of one endpoint ------------------------------------------------------------------


class PooledState(enum.Enum):
    WAITING = "waiting"  # wants a socket: new, or dropped; paced by the budget
    CONNECTING = "connecting"  # `Connect` handed out, not open yet
    OPEN = "open"
    CLOSING = "closing"  # emptied: `Close` handed out; holds its slot until it is gone


@attrs.frozen
class Connect:
    """Open a socket for pooled connection `connection` (its request is reserved in the budget,
    and counts from when the attempt is reported: see `ConnectionPool.attempt_started`)."""

    connection: int


@attrs.frozen
class Send:
    """Send a subscribe/unsubscribe request on `connection`."""

    connection: int
    operation: Operation
    channel: str

    @property
    def message(self) -> dict[str, str]:
        """The JSON object to send."""
        return {"event": self.operation, "channel": self.channel}


@attrs.frozen
class Close:
    """Close `connection`: it has no channel left. Report `connection_lost` once it is gone."""

    connection: int


PoolAction = Connect | Send | Close


@attrs.frozen
class PooledConnection:
    """A snapshot of one pooled connection, for health reports and tests."""

    id: int
    state: PooledState
    channels: tuple[str, ...]
    """Channels placed on it, in the order they were placed."""
    active: frozenset[str]
    """Channels the server has acknowledged on its current socket."""
    operations_left: int
    not_before: float | None
    """While WAITING: the earliest time it may reconnect (its own backoff; `math.inf` while
    parked), else None."""
    held: bool = False
    """Kept even without channels (see `ConnectionPool.hold`)."""


@attrs.define
class _Member:
    id: int
    book: SubscriptionBook
    state: PooledState = PooledState.WAITING
    not_before: float = -math.inf
    held: bool = False
    granted: bool = False  # a `Connect` handed out, its attempt not reported: request reserved


class ConnectionPool:
    """Channel placement over the connections of one endpoint (see the module docstring)."""

    def __init__(
        self,
        budget: ConnectionBudget,
        *,
        max_channels: int = 100,
        max_operations: int = 240,
        window: float = 3600.0,
    ) -> None:
        # The books of its connections will be made with these: refuse bad ones now, not later.
        SubscriptionBook(max_channels=max_channels, max_operations=max_operations, window=window)
        self.budget = budget
        self.max_channels = max_channels
        self.max_operations = max_operations
        self.window = window
        self._members: dict[int, _Member] = {}  # by id: oldest first
        self._placement: dict[str, int] = {}
        self._ids = itertools.count(1)

    # --- what is known ----------------------------------------------------------------------

    @property
    def placement(self) -> Mapping[str, int]:
        """Channel -> id of the connection it is placed on, for every wanted channel."""
        return MappingProxyType(dict(self._placement))

    @property
    def connection_ids(self) -> tuple[int, ...]:
        """Every living connection, oldest first, CLOSING ones included."""
        return tuple(self._members)

    def snapshot(self, now: float) -> tuple[PooledConnection, ...]:
        """Every living connection as seen at `now`, oldest first (for `client.health`)."""
        return tuple(self._view(member, now) for member in self._members.values())

    def state_of(self, connection: int) -> PooledState:
        return self._member(connection).state

    def channels_of(self, connection: int) -> tuple[str, ...]:
        return self._member(connection).book.desired

    def connection_of(self, channel: str) -> int | None:
        """The connection `channel` is placed on, or None when it is not wanted."""
        return self._placement.get(channel)

    def granted(self, connection: int) -> bool:
        """Was `connection` handed a `Connect` whose attempt has not been reported yet?"""
        return self._member(connection).granted

    def book(self, connection: int) -> SubscriptionBook:
        """The subscription book of `connection`, itself and not a copy: the `WeexConnection`
        that carries the connection must keep this very book, so that its channel limit and
        operation budget are the ones placement counts."""
        return self._member(connection).book

    # --- what the user asks for -------------------------------------------------------------

    def subscribe(self, channel: str, now: float) -> list[PoolAction]:
        """Want `channel`: place it, opening a connection when none has room.

        Returns the actions to carry out (a `Connect` when a new connection may go out now, a
        `Send` when the chosen connection is open). Raises `SubscriptionLimitError`, changing
        nothing, when no connection can take it and no more may be opened.
        """
        if channel in self._placement:
            return []
        member = self._first_fit(now)
        actions: list[PoolAction] = []
        if member is None:
            if not self.budget.reserve_slot():
                raise self._full_error(channel, now)
            member = self._new_member(now)
            actions.extend(self.poll(now))
        request = member.book.subscribe(channel, now)
        self._placement[channel] = member.id
        if request is not None:
            actions.append(Send(member.id, "subscribe", channel))
        return actions

    def hold(self) -> int:
        """Keep one connection even when it has no channel (the client's first one, which
        `connect()` opens and which lives as long as the client uses the endpoint): the oldest
        living connection, or a new one, which waits for `poll` like any other. Returns its id.

        Raises `SubscriptionLimitError` when a new one is needed and the cap is reached.
        """
        for held in self._members.values():
            if held.held:
                return held.id
        member = next(
            (m for m in self._members.values() if m.state is not PooledState.CLOSING), None
        )
        if member is None:
            if not self.budget.reserve_slot():
                raise SubscriptionLimitError(
                    f"cannot open a connection: the limit of {self.budget.max_connections} "
                    "connections is reached"
                )
            member = self._new_member(-math.inf)
        member.held = True
        return member.id

    def unsubscribe(self, channel: str, now: float) -> list[PoolAction]:
        """Stop wanting `channel`. Closes its connection instead when it was the last channel
        (unless the connection is held: then the unsubscribe goes out as usual).

        Raises `SubscriptionLimitError`, changing nothing, if the connection has no operation
        left for the unsubscribe (`retry_after` says when one comes back).
        """
        connection = self._placement.get(channel)
        if connection is None:
            return []
        member = self._members[connection]
        desired = member.book.desired
        if channel not in desired:  # refused by the server meanwhile: its book forgot it
            del self._placement[channel]
            return [] if desired or member.held else self._retire(member)
        if desired == (channel,) and not member.held:
            del self._placement[channel]
            member.book.on_rejected(channel)  # forget it without spending an operation
            return self._retire(member)
        request = member.book.unsubscribe(channel, now)  # may raise: nothing changed yet
        del self._placement[channel]
        return [] if request is None else [Send(member.id, "unsubscribe", channel)]

    def unsubscribe_emptying(
        self, channels: Iterable[str], now: float
    ) -> tuple[list[PoolAction], list[str]]:
        """Stop wanting `channels` at once (a stream that ends), where that empties a
        connection: such a connection is closed without spending a single unsubscribe.

        Returns the actions, and the channels not handled so (their connections keep other
        channels, or are held), for `unsubscribe` one at a time.
        """
        leaving: dict[int, list[str]] = {}
        for channel in dict.fromkeys(channels):
            connection = self._placement.get(channel)
            if connection is not None:
                leaving.setdefault(connection, []).append(channel)
        actions: list[PoolAction] = []
        rest: list[str] = []
        for connection, gone in leaving.items():
            member = self._members[connection]
            if member.held or not set(member.book.desired) <= set(gone):
                rest += gone
                continue
            for channel in gone:
                del self._placement[channel]
                member.book.on_rejected(channel)  # forget it without spending an operation
            actions += self._retire(member)
        return actions, rest

    # --- what the adapter reports -----------------------------------------------------------

    def poll(self, now: float) -> list[PoolAction]:
        """The `Connect`s due at `now`: waiting connections whose time has come, as far as the
        shared budget allows, oldest first."""
        actions: list[PoolAction] = []
        for member in self._waiting_in_turn():
            if member.not_before > now:
                break
            if isinstance(self.budget.reserve(now), ConnectLater):
                break
            member.state = PooledState.CONNECTING
            member.granted = True
            actions.append(Connect(member.id))
        return actions

    def next_deadline(self) -> float | None:
        """When `poll` must next be called, or None when no connection waits for a time
        (parked ones wait for `retry_now`; and while granted attempts not started yet fill the
        budget's window, the next start is what frees it)."""
        waiting = self._waiting_in_turn()
        if not waiting or waiting[0].not_before == math.inf:
            return None
        deadline = max(waiting[0].not_before, self.budget.available_at())
        return None if deadline == math.inf else deadline

    def retry_now(self, connection: int, now: float) -> list[PoolAction]:
        """A waiting (or parked) `connection` may reconnect from `now` on, its backoff cut
        short (the user asked); the shared budget still paces it. Returns the `Connect`s due.
        Any other state is left alone."""
        member = self._member(connection)
        if member.state is PooledState.WAITING:
            member.not_before = min(member.not_before, now)
        return self.poll(now)

    def attempt_started(self, connection: int, now: float) -> None:
        """The attempt of `connection` goes out at `now`. A granted one's reserved request
        counts from now on (WEEX counts it when the socket opens, however long ago the
        `Connect` was handed out); a waiting one is opened without a grant (`connect_now`).

        Raises `RuntimeError` for any other connection (already connecting or open, closing):
        such an attempt would escape the budget, so it is refused before it goes out."""
        member = self._member(connection)
        if member.granted:
            self._settle(member, now)
        elif member.state is PooledState.WAITING:
            self.connect_now(connection, now)
        else:
            raise RuntimeError(
                f"connection {connection} is {member.state.value} and was granted no attempt"
            )

    def connect_now(self, connection: int, now: float) -> None:
        """A waiting `connection` is being opened without a `Connect` from `poll` (a caller
        that paces itself): it is CONNECTING from now on, and its request is counted all the
        same, so the budget's window still holds every request."""
        member = self._member(connection)
        if member.state is not PooledState.WAITING:
            raise RuntimeError(f"connection {connection} is {member.state.value}, not waiting")
        self.budget.count(now)
        member.state = PooledState.CONNECTING

    def withdraw_grant(self, connection: int) -> None:
        """The `Connect` handed out to `connection` will not be used (the client stopped or
        closed it before its attempt): its reserved request is released. Its state is left
        to `connection_lost`. Nothing happens without a grant outstanding."""
        member = self._member(connection)
        if member.granted:
            member.granted = False
            self.budget.release()

    def connected(self, connection: int, now: float) -> list[PoolAction]:
        """The socket of `connection` is open: subscribe to its channels, and only those.

        When the book is already open, its carrier (a `WeexConnection` replays its book on
        the handshake by itself) has sent those subscribes: nothing more is returned.
        """
        member = self._member(connection)
        self._settle(member, now)  # a driver that did not report the start: it went by now
        if member.state is PooledState.CLOSING:
            return []  # emptied while connecting: the `Close` already handed out stands
        if member.state is not PooledState.CONNECTING:
            raise RuntimeError(f"connection {connection} is {member.state.value}, not connecting")
        member.state = PooledState.OPEN
        if member.book.connected:
            return []
        return [
            Send(member.id, "subscribe", request["channel"])
            for request in member.book.connection_opened(now)
        ]

    def connection_lost(
        self, connection: int, now: float, *, retry_at: float | None = None
    ) -> list[PoolAction]:
        """The socket of `connection` is gone, or its attempt failed.

        A CLOSING connection is gone for good and frees its slot, and so is one left with no
        channel (unless held). Any other waits to reconnect, not before `retry_at` (the
        adapter's backoff) nor before the budget allows; its channels stay on it. With
        `retry_at=math.inf` it is parked: it keeps its channels and its slot, and waits for
        `retry_now` (a client that disconnected, or gave up). Returns the `Connect`s that may
        go out at once.
        """
        member = self._member(connection)
        self._settle(member, now)  # its attempt, if it was not reported, may have gone out
        member.book.connection_lost()
        if member.state is PooledState.CLOSING or not (member.book.desired or member.held):
            self._forget(member)
        else:
            member.state = PooledState.WAITING
            member.not_before = now if retry_at is None else retry_at
        return self.poll(now)

    def on_subscribed(self, connection: int, channel: str) -> bool:
        return self._member(connection).book.on_subscribed(channel)

    def on_unsubscribed(self, connection: int, channel: str) -> bool:
        return self._member(connection).book.on_unsubscribed(channel)

    def on_rejected(self, connection: int, channel: str) -> list[PoolAction]:
        """The server refused `channel` on `connection`: stop wanting it (and close the
        connection if it was its last channel). The book may have been told already (a
        `WeexConnection` tells its own)."""
        member = self._member(connection)
        member.book.on_rejected(channel)
        if self._placement.get(channel) != connection:
            return []
        del self._placement[channel]
        return [] if member.book.desired or member.held else self._retire(member)

    # --- internals --------------------------------------------------------------------------

    def _member(self, connection: int) -> _Member:
        try:
            return self._members[connection]
        except KeyError:
            raise KeyError(f"no pooled connection {connection}") from None

    def _first_fit(self, now: float) -> _Member | None:
        for member in self._members.values():
            if member.state is PooledState.CLOSING:
                continue
            book = member.book
            if len(book.desired) >= self.max_channels:
                continue
            if book.connected and book.operations_left(now) < 1:
                continue
            return member
        return None

    def _full_error(self, channel: str, now: float) -> SubscriptionLimitError:
        # Room on an open connection that is out of operations comes back within the hour.
        waits = [
            member.book.next_operation_at(now) - now
            for member in self._members.values()
            if member.state is PooledState.OPEN and len(member.book.desired) < self.max_channels
        ]
        return SubscriptionLimitError(
            f"cannot subscribe to {channel!r}: every connection is full or out of operations, "
            f"and the limit of {self.budget.max_connections} connections is reached",
            retry_after=min(waits) if waits else None,
        )

    def _new_member(self, now: float) -> _Member:
        member = _Member(
            id=next(self._ids),
            book=SubscriptionBook(
                max_channels=self.max_channels,
                max_operations=self.max_operations,
                window=self.window,
            ),
            not_before=now,
        )
        self._members[member.id] = member
        return member

    def _retire(self, member: _Member) -> list[PoolAction]:
        if member.state is PooledState.WAITING:
            self._forget(member)
            return []
        if member.state is PooledState.CLOSING:
            return []
        member.state = PooledState.CLOSING
        return [Close(member.id)]

    def _settle(self, member: _Member, now: float) -> None:
        """The granted attempt of `member` went out, at `now` at the latest."""
        if member.granted:
            member.granted = False
            self.budget.sent(now)

    def _forget(self, member: _Member) -> None:
        assert not member.granted, "a forgotten connection would keep its request reserved"
        del self._members[member.id]
        for channel in member.book.desired:
            self._placement.pop(channel, None)
        self.budget.release_slot()

    def _waiting_in_turn(self) -> list[_Member]:
        waiting = [m for m in self._members.values() if m.state is PooledState.WAITING]
        return sorted(waiting, key=lambda m: (m.not_before, m.id))

    def _view(self, member: _Member, now: float) -> PooledConnection:
        return PooledConnection(
            id=member.id,
            state=member.state,
            channels=member.book.desired,
            active=member.book.active,
            operations_left=member.book.operations_left(now),
            not_before=member.not_before if member.state is PooledState.WAITING else None,
            held=member.held,
        )

    def __repr__(self) -> str:
        return f"ConnectionPool(connections={len(self._members)}, channels={len(self._placement)})"
