"""`ClientConnections`: every connection of one client, public and private, under one budget.

Each endpoint has a `SessionPool` (its connections, as many as its channels need); both share
one `ConnectionBudget`, because WEEX counts connections and connection requests per IP, not
per endpoint. This is what the hub and the adapters ask about connections: where a channel
goes, which connection may connect now, when to look again, and what `client.health` shows.

Pure bookkeeping: no I/O, and time comes in as `now`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from ..channels import is_private_channel
from ..config import WeexConfig
from ..connection import ConnectionOptions
from ..errors import SubscriptionLimitError
from ..pool import ConnectionBudget
from ..session import WeexSession
from ..sessionpool import ConnectionHealth, PooledSession, RetrySettings, SessionPool

__all__ = ["ClientConnections", "connection_name"]


class ClientConnections:
    """Both endpoints' connections (each endpoint made on first use)."""

    def __init__(
        self,
        config: WeexConfig,
        *,
        options: ConnectionOptions,
        rng: random.Random,
        retry: RetrySettings,
        budget: ConnectionBudget | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.rng = rng
        self.retry = retry
        self.budget = budget if budget is not None else ConnectionBudget()
        """WEEX's per-IP connection limits, shared by both endpoints' connections."""
        self.endpoints: dict[bool, SessionPool] = {}

    def endpoint(self, private: bool) -> SessionPool:
        endpoint = self.endpoints.get(private)
        if endpoint is None:
            endpoint = self.endpoints[private] = SessionPool(
                self.config,
                private=private,
                options=self.options,
                rng=self.rng,
                retry=self.retry,
                budget=self.budget,
            )
        return endpoint

    def sessions(self) -> list[PooledSession]:
        """Every connection of both endpoints."""
        return [s for endpoint in self.endpoints.values() for s in endpoint.sessions]

    # --- channels ---------------------------------------------------------------------------

    def subscribe(self, channel: str, now: float) -> PooledSession:
        """Place `channel` on a connection of its endpoint (see `SessionPool.subscribe`)."""
        return self.endpoint(is_private_channel(channel)).subscribe(channel, now)

    def holder(self, channel: str) -> PooledSession | None:
        """The session of the connection `channel` is placed on, if it is wanted."""
        endpoint = self.endpoints.get(is_private_channel(channel))
        return None if endpoint is None else endpoint.session_of(channel)

    def unsubscribe(self, channel: str, now: float) -> PooledSession | None:
        endpoint = self.endpoints.get(is_private_channel(channel))
        return None if endpoint is None else endpoint.unsubscribe(channel, now)

    def unsubscribe_many(
        self, channels: Iterable[str], now: float
    ) -> tuple[list[PooledSession], list[tuple[str, SubscriptionLimitError]]]:
        """Let go of `channels` together (see `SessionPool.unsubscribe_many`)."""
        by_endpoint: dict[bool, list[str]] = {}
        for channel in channels:
            by_endpoint.setdefault(is_private_channel(channel), []).append(channel)
        sessions: list[PooledSession] = []
        refused: list[tuple[str, SubscriptionLimitError]] = []
        for private, gone in by_endpoint.items():
            endpoint = self.endpoints.get(private)
            if endpoint is not None:
                flushed, kept = endpoint.unsubscribe_many(gone, now)
                sessions += flushed
                refused += kept
        return sessions, refused

    @property
    def desired(self) -> frozenset[str]:
        """Every channel wanted on any connection."""
        channels: set[str] = set()
        for endpoint in self.endpoints.values():
            channels.update(endpoint.desired)
        return frozenset(channels)

    def is_active(self, channel: str) -> bool:
        """Has the server acknowledged `channel` on the connection it is placed on?"""
        session = self.holder(channel)
        return session is not None and channel in session.subscriptions.active

    # --- connecting -------------------------------------------------------------------------

    def wanted(self, session: WeexSession) -> bool:
        """Should the adapter keep `session` connected? False once it is retired or stopped."""
        return self.endpoint(session.private).wanted(session)

    def granted(self, session: WeexSession) -> bool:
        """May `session` start its next attempt now? (Its backoff and the budget allow it.)"""
        return self.endpoint(session.private).granted(session)

    def poll(self, now: float) -> bool:
        """Let waiting connections go as far as the shared budget allows; True if any may."""
        polled = [endpoint.poll(now) for endpoint in self.endpoints.values()]
        return any(polled)

    def next_deadline(self) -> float | None:
        """When `poll` must next be called, or None when no connection waits for a time."""
        deadlines = [endpoint.next_deadline() for endpoint in self.endpoints.values()]
        due = [deadline for deadline in deadlines if deadline is not None]
        return min(due) if due else None

    @property
    def connection_attempts(self) -> int:
        return sum(endpoint.connection_attempts for endpoint in self.endpoints.values())

    def health(self) -> tuple[ConnectionHealth, ...]:
        """Each connection now, public ones first, oldest first (`client.health.connections`)."""
        return tuple(c for endpoint in self.endpoints.values() for c in endpoint.health())


def connection_name(session: WeexSession) -> str:
    """For logs: the endpoint, and which of its connections when it is not the first."""
    index = session.index if isinstance(session, PooledSession) else 1
    name = "private" if session.private else "public"
    return name if index == 1 else f"{name} connection {index}"
