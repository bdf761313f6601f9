"""`SessionPool`: the connections of one endpoint, each a `WeexSession`, placed by a pool.

WEEX allows 100 channels on one connection, so a client streaming more opens several
connections to the same endpoint. `ConnectionPool` (pool.py) decides which connection each
channel goes to and when a connection may be opened; this module gives each pooled connection
a `PooledSession`, a `WeexSession` (reconnect policy, signing, the `WeexConnection` of each
attempt) that keeps the pool member's own subscription book, and carries the pool's actions
out on those sessions. Adapters run one loop per session and ask two things: may this session
connect now (`granted`), and is it still wanted at all (`wanted`).

How the pool hears what happens: a `PooledSession` tells its `SessionPool` when an attempt
starts, when the handshake completes and how the connection ended (the decision of
`WeexSession`), so the hub and the adapters keep calling the session exactly as they did when
an endpoint had one connection.

* A `Reconnect(delay)` makes the connection wait in the pool until its backoff is over and the
  shared `ConnectionBudget` allows a request; only its own channels are resubscribed.
* A `Stop` (the user disconnected) or a `GiveUp` parks it: it keeps its channels and waits for
  `resume()`, which any later use of the endpoint calls.
* A connection the pool closed because its last channel went (`Close`) stops for good and is
  forgotten once its socket is gone.

The first connection of an endpoint is held (`ConnectionPool.hold`): it stays open without
channels, as the single connection did before, until the client disconnects. Raw messages
(`send_message`) go on it.

Pure bookkeeping: no I/O, and time comes in as `now`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import attrs

from .config import WeexConfig
from .connection import ConnectionOptions, WeexConnection
from .errors import SubscriptionLimitError
from .events import ConnectionClosed
from .pool import Close, ConnectionBudget, ConnectionPool, PoolAction, PooledState, Send
from .session import Decision, Reconnect, SessionState, WeexSession
from .subscriptions import SubscriptionBook

__all__ = ["ConnectionHealth", "ConnectionStats", "PooledSession", "RetrySettings", "SessionPool"]

PARKED = math.inf
"""`retry_at` of a connection that waits for `resume()` rather than for a time."""


@attrs.frozen
class RetrySettings:
    """How every connection of the client reconnects (see `WeexSession`)."""

    max_retries: int | None = 5
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    fail_fast: bool = False


@attrs.define
class ConnectionStats:
    """Counters of one pooled connection; times are wall times (epoch seconds)."""

    connected_at: float | None = None
    last_message_at: float | None = None
    messages: int = 0
    reconnects: int = 0
    handshakes: int = 0


@attrs.frozen
class ConnectionHealth:
    """One connection of the client, as `client.health.connections` shows it."""

    endpoint: str
    """"public" or "private"."""
    index: int
    """Its number on the endpoint: 1 for the first, never reused while the client lives."""
    state: str
    """"waiting" (for its backoff or the budget), "connecting", "open", "closing" (emptied),
    or "stopped" (disconnected or given up: it waits for the endpoint's next use)."""
    connected: bool
    channels: int
    """Channels placed on it."""
    messages: int
    last_message_at: float | None
    connected_at: float | None
    reconnects: int


class PooledSession(WeexSession):
    """A `WeexSession` that is one connection of a `SessionPool`: it reports its attempts
    and their ends to the pool, and counts its own health."""

    def __init__(
        self,
        owner: SessionPool,
        index: int,
        config: WeexConfig,
        *,
        private: bool,
        options: ConnectionOptions,
        rng: random.Random,
        retry: RetrySettings,
        subscriptions: SubscriptionBook,
    ) -> None:
        super().__init__(
            config,
            private=private,
            options=options,
            rng=rng,
            max_retries=retry.max_retries,
            backoff_base=retry.backoff_base,
            backoff_max=retry.backoff_max,
            fail_fast=retry.fail_fast,
            subscriptions=subscriptions,
        )
        self.index = index
        self.stats = ConnectionStats()
        self._owner = owner

    def __repr__(self) -> str:
        kind = "private" if self.private else "public"
        return (
            f"<PooledSession {kind} #{self.index} {self.state.value} "
            f"channels={len(self.subscriptions.desired)}>"
        )

    def start_attempt(self, now: float, *, wall_time: float | None = None) -> WeexConnection:
        self._owner._attempt_started(self, now)
        return super().start_attempt(now, wall_time=wall_time)

    def connected(self, now: float) -> None:
        super().connected(now)
        self.stats.handshakes += 1
        self._owner._opened(self, now)

    def server_reached(self) -> bool:
        """Any connection of the endpoint opened: a later one failing is not a wrong URL."""
        return self.reached or self._owner.reached

    def transport_failed(self, now: float, error: BaseException) -> Decision:
        return self._owner._ended(self, now, super().transport_failed(now, error))

    def connection_closed(self, now: float, event: ConnectionClosed) -> Decision:
        return self._owner._ended(self, now, super().connection_closed(now, event))

    def revive(self, now: float) -> None:
        """Stopped (the user disconnected) or given up: run again, with a fresh retry count
        after giving up (an explicit new use starts afresh). A connection still closing from
        the disconnect is replaced without a backoff: once its socket is gone it waits in the
        pool, and its attempt goes when the shared budget grants it (at once if it can)."""
        if self.state not in (SessionState.STOPPED, SessionState.FAILED):
            return
        if self.state is SessionState.FAILED:
            self.policy.reset()
            self.error = None
        connection = self.connection
        if connection is None:
            self.state = SessionState.IDLE
            return
        opened = connection.opened_at is not None
        self.state = SessionState.CONNECTED if opened else SessionState.CONNECTING
        self.restart(now)


class SessionPool:
    """The sessions of one endpoint, one per connection of its `ConnectionPool`."""

    def __init__(
        self,
        config: WeexConfig,
        *,
        private: bool,
        options: ConnectionOptions,
        rng: random.Random,
        retry: RetrySettings,
        budget: ConnectionBudget,
        max_channels: int = 100,
        max_operations: int = 240,
        window: float = 3600.0,
    ) -> None:
        if private:
            config.require_credentials()
        self.config = config
        self.private = private
        self.options = options
        self.rng = rng
        self.retry = retry
        self.pool = ConnectionPool(
            budget, max_channels=max_channels, max_operations=max_operations, window=window
        )
        self._sessions: dict[int, PooledSession] = {}  # by pool id, oldest first
        self._primary: int | None = None
        self._past_attempts = 0  # attempts of connections that are gone
        self.reached = False
        """True once any connection of the endpoint has opened."""

    def __repr__(self) -> str:
        kind = "private" if self.private else "public"
        return f"<SessionPool {kind} sessions={len(self._sessions)} {self.pool!r}>"

    # --- what is known ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "private" if self.private else "public"

    @property
    def sessions(self) -> tuple[PooledSession, ...]:
        """Every connection's session, oldest first (retired ones still closing included)."""
        return tuple(self._sessions.values())

    def session_of(self, channel: str) -> PooledSession | None:
        """The session of the connection `channel` is placed on, or None if it is not wanted."""
        connection = self.pool.connection_of(channel)
        return None if connection is None else self._sessions.get(connection)

    @property
    def desired(self) -> frozenset[str]:
        """Every channel wanted on any connection of the endpoint."""
        channels: set[str] = set()
        for session in self._sessions.values():
            channels.update(session.subscriptions.desired)
        return frozenset(channels)

    @property
    def connection_attempts(self) -> int:
        return self._past_attempts + sum(s.connection_attempts for s in self._sessions.values())

    def owns(self, session: WeexSession) -> bool:
        return isinstance(session, PooledSession) and self._sessions.get(session.index) is session

    def wanted(self, session: WeexSession) -> bool:
        """Should `session` be kept connected? False once it is retired, parked or stopped."""
        if not self.owns(session) or session.state in (SessionState.STOPPED, SessionState.FAILED):
            return False
        assert isinstance(session, PooledSession)
        return self.pool.state_of(session.index) is not PooledState.CLOSING

    def granted(self, session: WeexSession) -> bool:
        """May `session` start its next attempt now (the pool handed out its `Connect`)?"""
        if not self.owns(session):
            return False
        assert isinstance(session, PooledSession)
        return self.pool.granted(session.index)

    def next_deadline(self) -> float | None:
        """When `poll` must next be called, or None when no connection waits for a time."""
        return self.pool.next_deadline()

    def health(self) -> tuple[ConnectionHealth, ...]:
        result = []
        for index, session in self._sessions.items():
            stats = session.stats
            connection = session.connection
            state = self.pool.state_of(index).value
            if session.state in (SessionState.STOPPED, SessionState.FAILED):
                state = "stopped" if state == "waiting" else state
            result.append(
                ConnectionHealth(
                    endpoint=self.name,
                    index=index,
                    state=state,
                    connected=connection is not None and connection.is_open,
                    channels=len(session.subscriptions.desired),
                    messages=stats.messages,
                    last_message_at=stats.last_message_at,
                    connected_at=stats.connected_at,
                    reconnects=stats.reconnects,
                )
            )
        return tuple(result)

    # --- what the user asks for -------------------------------------------------------------

    def primary(self) -> PooledSession:
        """The endpoint's held first connection (made if there is none: it waits for `poll`)."""
        if self._primary is None or self._primary not in self._sessions:
            self._primary = self.pool.hold()
            self._sync()
        return self._sessions[self._primary]

    def subscribe(self, channel: str, now: float) -> PooledSession:
        """Want `channel`: placed on a connection with room (opening one if needed), and sent
        at once if that connection is open. Returns its session.

        Raises `SubscriptionLimitError`, changing nothing, past WEEX's limits."""
        self.primary()  # channels fill the held connection first
        self._carry_out(self.pool.subscribe(channel, now), now)
        self._carry_out(self.pool.poll(now), now)  # the held one may be new too
        session = self.session_of(channel)
        assert session is not None
        return session

    def unsubscribe(self, channel: str, now: float) -> PooledSession | None:
        """Stop wanting `channel`; a connection left without channels is closed (not the held
        one). Returns the session whose connection may have bytes to flush, if any."""
        session = self.session_of(channel)
        if session is None:
            return None
        self._carry_out(self.pool.unsubscribe(channel, now), now)
        return session

    def unsubscribe_many(
        self, channels: Iterable[str], now: float
    ) -> tuple[list[PooledSession], list[tuple[str, SubscriptionLimitError]]]:
        """Stop wanting all of `channels` (a stream that ends): a connection they leave empty
        is closed without an unsubscribe spent. Returns the sessions with bytes to flush, and
        the channels that stay subscribed because their connection has no operation left."""
        channels = list(channels)
        sessions = {s: None for c in channels if (s := self.session_of(c)) is not None}
        actions, rest = self.pool.unsubscribe_emptying(channels, now)
        self._carry_out(actions, now)
        refused: list[tuple[str, SubscriptionLimitError]] = []
        for channel in rest:
            try:
                self._carry_out(self.pool.unsubscribe(channel, now), now)
            except SubscriptionLimitError as exc:
                refused.append((channel, exc))
        return list(sessions), refused

    def poll(self, now: float) -> bool:
        """Hand out the `Connect`s due at `now`; True if there were any."""
        actions = self.pool.poll(now)
        self._carry_out(actions, now)
        return bool(actions)

    def resume(self, now: float) -> None:
        """The endpoint is in use again: connections parked by a disconnect or a give-up go
        again, and the endpoint gets its first connection back if it had none."""
        self.primary()
        for session in self.sessions:
            if not self.owns(session):
                continue  # forgotten meanwhile
            if session.state in (SessionState.STOPPED, SessionState.FAILED) and (
                self.pool.state_of(session.index) is not PooledState.CLOSING
            ):
                session.revive(now)
                self._carry_out(self.pool.retry_now(session.index, now), now)
        self._carry_out(self.pool.poll(now), now)

    def restart(self, now: float) -> None:
        """Replace every connection now (the user asked): each skips its backoff, and the
        shared budget paces them."""
        for session in self.sessions:
            if not self.wanted(session):
                continue
            session.restart(now)
            if session.connection is None:  # waiting: it may go at once
                self._carry_out(self.pool.retry_now(session.index, now), now)

    def stop(self, now: float) -> None:
        """Close every connection and reconnect none (the user disconnected): each is parked
        with its channels once its socket is gone, until `resume()`."""
        for session in self.sessions:
            if not self.owns(session):
                continue  # forgotten meanwhile
            session.stop(now)
            if session.connection is None:  # no socket: park it now
                self.pool.withdraw_grant(session.index)  # a grant it had will not be used
                self._carry_out(self.pool.connection_lost(session.index, now, retry_at=PARKED), now)

    # --- what the sessions report -----------------------------------------------------------

    def _attempt_started(self, session: PooledSession, now: float) -> None:
        """Every attempt is counted by the shared budget, at the time it starts: a granted
        one's reserved request, or a waiting one opened by a caller that paces itself. Any
        other (connecting or open already, or closing) is refused before it goes out."""
        if not self.owns(session):
            raise RuntimeError(f"{session!r} is no longer a connection of this endpoint")
        self.pool.attempt_started(session.index, now)

    def _opened(self, session: PooledSession, now: float) -> None:
        self.reached = True
        if self.owns(session):
            self._carry_out(self.pool.connected(session.index, now), now)

    def _ended(self, session: PooledSession, now: float, decision: Decision) -> Decision:
        if not self.owns(session):
            return decision
        if isinstance(decision, Reconnect):
            session.stats.reconnects += 1
            retry_at = now + decision.delay
        else:
            retry_at = PARKED  # stopped or given up; a retired one is forgotten instead
        self._carry_out(self.pool.connection_lost(session.index, now, retry_at=retry_at), now)
        return decision

    # --- carrying out the pool's actions ----------------------------------------------------

    def _carry_out(self, actions: list[PoolAction], now: float) -> None:
        self._sync()
        for action in actions:  # a `Connect` is kept by the pool, which `granted()` asks
            if isinstance(action, Send):
                connection = self._sessions[action.connection].connection
                if connection is not None and connection.is_open:
                    connection.send_request(action.operation, action.channel)
            elif isinstance(action, Close):
                self._close(action.connection, now)
        self._sync()

    def _close(self, index: int, now: float) -> None:
        """The pool emptied this connection: close it for good."""
        session = self._sessions[index]
        self.pool.withdraw_grant(index)  # a grant it had will not be used
        session.stop(now)  # a clean close if open; its end makes the pool forget it
        if session.connection is None:  # no socket to wait for
            self._carry_out(self.pool.connection_lost(index, now), now)

    def _sync(self) -> None:
        """One session per living pool connection: new ones get theirs, gone ones lose it."""
        living = self.pool.connection_ids
        for index in living:
            if index not in self._sessions:
                self._sessions[index] = PooledSession(
                    self,
                    index,
                    self.config,
                    private=self.private,
                    options=self.options,
                    rng=self.rng,
                    retry=self.retry,
                    subscriptions=self.pool.book(index),
                )
        if len(self._sessions) != len(living):
            for index in [i for i in self._sessions if i not in living]:
                session = self._sessions.pop(index)
                self._past_attempts += session.connection_attempts
                if session.state is not SessionState.FAILED:
                    session.stop()  # its runner, if waiting, sees it is not wanted
