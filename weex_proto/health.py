"""Connection health as numbers a dashboard or a watchdog can read: `client.health`."""

from __future__ import annotations

import attrs

from .events import PingAnswered


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
