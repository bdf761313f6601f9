"""Connection health as numbers a dashboard or a watchdog can read: `client.health`.

`endpoints` sums up each endpoint ("public", "private") over all of its connections;
`connections` shows each connection on its own (the client opens several per endpoint when
it needs more than 100 channels there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from ..events import PingAnswered

if TYPE_CHECKING:
    from ..sessionpool import ConnectionHealth


def _no_connections() -> tuple[ConnectionHealth, ...]:
    return ()


@attrs.define
class EndpointHealth:
    """One endpoint's numbers; every time here is wall time (epoch seconds), as on messages."""

    connected_at: float | None = None
    last_message_at: float | None = None
    messages: int = 0
    pings_answered: int = 0
    round_trip: float | None = None
    """Latest WebSocket ping round trip, seconds."""
    server_clock_offset: float | None = None
    """Our clock minus the server's ping timestamp: one-way latency plus clock skew, seconds."""


@attrs.define
class Health:
    endpoints: dict[str, EndpointHealth] = attrs.field(factory=dict)
    reconnects: int = 0
    skipped: int = 0
    errors: int = 0
    book_resyncs: int = 0
    connections_of: Callable[[], tuple[ConnectionHealth, ...]] = attrs.field(
        default=_no_connections, repr=False, eq=False
    )
    """Where `connections` comes from (the client's hub)."""

    @property
    def connections(self) -> tuple[ConnectionHealth, ...]:
        """Each connection of the client as it is now, public ones first, oldest first:
        endpoint, index, state, connected, channels, messages, last message and connect
        times, reconnects."""
        return self.connections_of()

    def endpoint(self, name: str) -> EndpointHealth:
        """The numbers of endpoint `name` (made on first use)."""
        return self._of(name)

    def _of(self, endpoint: str) -> EndpointHealth:
        found = self.endpoints.get(endpoint)
        if found is None:
            found = self.endpoints[endpoint] = EndpointHealth()
        return found

    def connected(self, endpoint: str, now: float) -> None:
        self._of(endpoint).connected_at = now

    def message(self, endpoint: str, now: float) -> None:
        health = self._of(endpoint)
        health.messages += 1
        health.last_message_at = now

    def messages_received(self, endpoint: str, count: int, now: float) -> None:
        """`count` messages, the last of them at `now` (a whole received buffer at once)."""
        health = self._of(endpoint)
        health.messages += count
        health.last_message_at = now

    def ping(self, endpoint: str, event: PingAnswered, now: float) -> None:
        health = self._of(endpoint)
        health.pings_answered += 1
        if event.server_time is not None:  # validated where it was read: see `wire`
            health.server_clock_offset = now - event.server_time

    def pong(self, endpoint: str, round_trip: float | None) -> None:
        if round_trip is not None:
            self._of(endpoint).round_trip = round_trip

    @property
    def messages(self) -> int:
        return sum(h.messages for h in self.endpoints.values())
