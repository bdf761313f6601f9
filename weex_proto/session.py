"""`WeexSession`: what outlives a single connection, and every reconnect decision.

The client keeps one session per connection (an endpoint, public or private, has as many
connections as its channels need: see sessionpool.py). The session owns the
subscription book and the reconnect policy, makes a fresh `WeexConnection` (freshly signed) for
each attempt, and when a connection ends says what to do next: reconnect after a delay, give up
with a typed error, or stop because the user asked to. Adapters only carry the answer out.

With `fail_fast`, a first attempt that cannot reach the server (TCP or TLS could not be set
up: refused, a name that does not resolve, unreachable, timed out) gives up at once with
`UnreachableError` instead of retrying: for command lines, where a wrong URL or no network
should be one line at once, not a minute of retries. Once a connection of the session has
opened, failures are retried as always.

Giving up always says why: refused credentials (`AuthenticationError`), upgrades refused with
a status that will not change (`HandshakeRejectedError` with `retryable=False`, e.g. 404) and
proxy failures that will not change (`ProxyError` with `retryable=False`, e.g. a 407) end
the session at once; otherwise `ReconnectExhaustedError.last_error` is the last attempt's
problem, or, when nothing better is known, a `ConnectionClosedError` made from its close.
"""

from __future__ import annotations

import enum
import random

import attrs

from . import error_codes
from .backoff import ReconnectPolicy
from .config import Endpoint, WeexConfig
from .connection import NORMAL_CLOSURE, ConnectionOptions, WeexConnection
from .errors import (
    AuthenticationError,
    ConnectionClosedError,
    ErrorKind,
    HandshakeRejectedError,
    ProxyError,
    ReconnectExhaustedError,
    UnreachableError,
    WeexError,
    describe,
    explain_error,
)
from .events import CloseInitiator, ConnectionClosed, ConnectionRejected
from .subscriptions import SubscriptionBook


class SessionState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    WAITING = "waiting"  # backing off before the next attempt
    STOPPED = "stopped"  # the user closed it
    FAILED = "failed"  # gave up; `error` says why


@attrs.frozen
class Reconnect:
    """Try again after `delay` seconds. `gap` names channels whose data may have been missed.

    `attempt` numbers the reconnection attempts of the current run from 1 (the count that
    `max_retries` bounds); 0 for a reconnect the user asked for, which is not counted.
    """

    delay: float
    attempt: int
    reason: str
    gap: tuple[str, ...] = ()


@attrs.frozen
class GiveUp:
    error: WeexError
    gap: tuple[str, ...] = ()


@attrs.frozen
class Stop:
    gap: tuple[str, ...] = ()


Decision = Reconnect | GiveUp | Stop


class WeexSession:
    def __init__(
        self,
        config: WeexConfig,
        *,
        private: bool = False,
        options: ConnectionOptions | None = None,
        max_retries: int | None = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        fail_fast: bool = False,
        rng: random.Random,
        subscriptions: SubscriptionBook | None = None,
    ) -> None:
        if private:
            config.require_credentials()
        self.config = config
        self.private = private
        self.options = options if options is not None else ConnectionOptions()
        self.subscriptions = subscriptions if subscriptions is not None else SubscriptionBook()
        self.policy = ReconnectPolicy(
            base=backoff_base, maximum=backoff_max, max_retries=max_retries, rng=rng
        )
        self.fail_fast = fail_fast
        self.reached = False
        """True once a connection of this session has opened: the server exists."""
        self.connection: WeexConnection | None = None
        self.state = SessionState.IDLE
        self.error: WeexError | None = None
        self._last_problem: WeexError | None = None
        self._retry_after: float | None = None
        self._restart = False

    def __repr__(self) -> str:
        kind = "private" if self.private else "public"
        return f"<WeexSession {kind} {self.state.value} attempts={self.policy.total_attempts}>"

    @property
    def endpoint(self) -> Endpoint:
        return self.config.endpoint(self.private)

    @property
    def connection_attempts(self) -> int:
        return self.policy.total_attempts

    def start_attempt(self, now: float, *, wall_time: float | None = None) -> WeexConnection:
        """A new connection for the next attempt, with its handshake already queued (a private
        one signed at `wall_time`, epoch seconds read just now: WEEX allows 30 s of skew)."""
        self.policy.on_connect_attempt()
        self.connection = WeexConnection(
            self.config,
            private=self.private,
            subscriptions=self.subscriptions,
            options=self.options,
        )
        self.connection.initiate(now, wall_time=wall_time)
        self.state = SessionState.CONNECTING
        self._last_problem = None
        self._retry_after = None
        self._restart = False  # a restart asked for while waiting is this attempt
        return self.connection

    def server_reached(self) -> bool:
        """Has the server ever answered us? (`fail_fast` gives up only before it has.)"""
        return self.reached

    def connected(self, now: float) -> None:
        """The current connection finished its handshake (the adapter saw `Connected`)."""
        self.state = SessionState.CONNECTED
        self.reached = True
        self.policy.on_connected(now)

    def delivered(self) -> None:
        """The server sent something usable (a push, an ack, an application ping) on the open
        connection: it works, so the reconnection attempts in a row start counting afresh, and
        an auth error frame before this was not the connection's end (see `error_received`)."""
        self.policy.on_useful()
        self._last_problem = None

    def rejected(self, event: ConnectionRejected) -> None:
        """Remember why the server refused us; the decision comes with `ConnectionClosed`."""
        if event.kind is ErrorKind.RATE_LIMIT:
            self._retry_after = error_codes.DEFAULT_RATE_LIMIT_RETRY_AFTER
        self._last_problem = error_codes.rejection_exception(
            event.status_code, event.reason, event.kind
        )

    def error_received(self, kind: ErrorKind, code: str | None, message: str) -> None:
        """An error frame on an open connection. An auth error followed by the close is why
        the server closed (credentials refused: no retry); if anything usable arrives in
        between, the connection outlived it and a later close is an ordinary drop."""
        if kind is ErrorKind.AUTH:
            self._last_problem = error_codes.exception_for(kind, code, message)

    def subscribe(self, channel: str, now: float) -> None:
        """Want `channel`: sent now if a connection is open, else on the next connect."""
        if self.connection is not None:
            self.connection.subscribe(channel, now)
        else:
            self.subscriptions.subscribe(channel, now)

    def unsubscribe(self, channel: str, now: float) -> None:
        if self.connection is not None:
            self.connection.unsubscribe(channel, now)
        else:
            self.subscriptions.unsubscribe(channel, now)

    def stop(self, now: float | None = None) -> None:
        """The user closed the session: start a clean close, and never reconnect.

        Without `now` only the decision is recorded (the connection is left to end by itself).
        """
        self.state = SessionState.STOPPED
        if now is not None and self.connection is not None:
            self.connection.close(now, NORMAL_CLOSURE, "client closed")

    def restart(self, now: float) -> None:
        """The user asked for a fresh connection now: close this one and skip the backoff."""
        if self.state in (SessionState.STOPPED, SessionState.FAILED):
            return
        self._restart = True
        if self.connection is not None:
            self.connection.close(now, NORMAL_CLOSURE, "client reconnect")

    def transport_failed(self, now: float, error: BaseException) -> Decision:
        """TCP or TLS could not be set up (refused, DNS, certificate, timeout)."""
        self.connection = None
        self.subscriptions.connection_lost()
        problem = self._last_problem = _as_weex_error(error)
        reason = _reason_of(problem)
        return self._decide(now, was_connected=False, reason=reason, unreachable=True)

    def connection_closed(self, now: float, event: ConnectionClosed) -> Decision:
        was_connected = self.state is SessionState.CONNECTED
        self.connection = None
        gap = self.subscriptions.desired if was_connected else ()
        reason = event.reason or f"closed ({event.initiator.value})"
        if event.initiator is CloseInitiator.LOCAL and self.state is SessionState.STOPPED:
            return Stop(gap)
        if self._last_problem is None:
            self._last_problem = ConnectionClosedError(event.code, reason)
        return self._decide(now, was_connected=was_connected, reason=reason, gap=gap)

    def _decide(
        self,
        now: float,
        *,
        was_connected: bool,
        reason: str,
        gap: tuple[str, ...] = (),
        unreachable: bool = False,
    ) -> Decision:
        if self.state is SessionState.STOPPED:
            return Stop(gap)
        if self._restart:
            self._restart = False
            self.state = SessionState.WAITING
            return Reconnect(0.0, 0, "reconnect requested", gap)
        problem = self._last_problem
        if isinstance(problem, AuthenticationError) or (
            isinstance(problem, HandshakeRejectedError | ProxyError) and not problem.retryable
        ):
            return self._fail(problem, gap)
        if unreachable and problem is not None and self.fail_fast and not self.server_reached():
            return self._fail(UnreachableError(problem), gap)
        if was_connected:
            delay = self.policy.on_disconnected(now)
        else:
            delay = self.policy.on_connect_failed(now)
        if delay is None:
            policy = self.policy
            error = ReconnectExhaustedError(policy.attempts, problem, failures=policy.failures)
            return self._fail(error, gap)
        if self._retry_after is not None:
            delay = max(delay, self._retry_after)
        self.state = SessionState.WAITING
        return Reconnect(delay, self.policy.attempts, reason, gap)

    def _fail(self, error: WeexError, gap: tuple[str, ...]) -> GiveUp:
        self.state = SessionState.FAILED
        self.error = error
        return GiveUp(error, gap)


def _as_weex_error(error: BaseException) -> WeexError:
    """A transport failure as a `WeexError` whose message names the real cause.

    Event loops wrap the interesting error: trio's `BrokenResourceError` (empty message) has the
    `ssl.SSLCertVerificationError` as its `__cause__`, anyio's "All connection attempts failed"
    the refused connect. So the text follows `__cause__`/`__context__` (and the first member of
    an exception group) down the chain; `__cause__` of the result is the original error.
    """
    if isinstance(error, WeexError):
        return error
    wrapped = ConnectionClosedError(None, explain_error(error))
    wrapped.__cause__ = error
    return wrapped


def _reason_of(problem: WeexError) -> str:
    if isinstance(problem, ConnectionClosedError) and problem.reason:
        return problem.reason
    return describe(problem)
