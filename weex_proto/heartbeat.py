"""Liveness timing for one connection: when to ping, and when to give up on a silent peer.

The rule is the one `websockets` uses and our public API promises: after `interval` seconds
without receiving anything we send a WebSocket ping; if still nothing has arrived `timeout`
seconds later the connection is dead. Any received byte counts as traffic, because WEEX pushes
and its own application pings prove the peer is alive just as well as a pong does.

So on a busy feed no ping ever goes out, and no round trip is measured. `rtt_interval` (off by
default) sends one at least that often anyway, while no earlier ping is still unanswered, for
a caller that shows the round trip (the dashboard).
"""

from __future__ import annotations

import enum


class HeartbeatAction(enum.Enum):
    NOTHING = "nothing"
    SEND_PING = "send_ping"
    DEAD = "dead"


class Heartbeat:
    """Pure timer bookkeeping; the connection turns its answers into frames and events."""

    def __init__(
        self,
        *,
        interval: float | None,
        timeout: float,
        send_pings: bool,
        rtt_interval: float | None = None,
    ) -> None:
        if interval is not None and interval <= 0:
            raise ValueError("ping_interval must be positive (or None to disable heartbeats)")
        if rtt_interval is not None and rtt_interval <= 0:
            raise ValueError("rtt_interval must be positive (or None)")
        if timeout <= 0:
            raise ValueError("ping_timeout must be positive")
        self.interval = interval
        self.timeout = timeout
        self.send_pings = send_pings
        self.rtt_interval = rtt_interval
        self._last_ping_at = 0.0
        self._last_traffic: float | None = None
        self._pinged = False
        self._ping_payloads: dict[bytes, float] = {}
        self._ping_counter = 0

    def start(self, now: float) -> None:
        self._last_traffic = now
        self._last_ping_at = now
        self._pinged = False
        self._ping_payloads.clear()

    def stop(self) -> None:
        self._last_traffic = None

    def traffic(self, now: float) -> None:
        """Something arrived from the peer."""
        if self._last_traffic is not None:
            self._last_traffic = now
            self._pinged = False

    @property
    def last_traffic(self) -> float | None:
        return self._last_traffic

    def _dead_at(self) -> float | None:
        if self._last_traffic is None or self.interval is None:
            return None
        return self._last_traffic + self.interval + self.timeout

    def _measure_at(self) -> float | None:
        """When the next `rtt_interval` ping is due (None: off, or a ping is unanswered)."""
        if self.rtt_interval is None or self.interval is None or not self.send_pings:
            return None
        if self._last_traffic is None or self._ping_payloads:
            return None
        return self._last_ping_at + self.rtt_interval

    def next_deadline(self) -> float | None:
        measure_at = self._measure_at()
        deadline = self._liveness_deadline()
        if measure_at is None or deadline is None:
            return deadline if measure_at is None else measure_at
        return min(deadline, measure_at)

    def _liveness_deadline(self) -> float | None:
        dead_at = self._dead_at()
        if dead_at is None or self.interval is None or self._last_traffic is None:
            return None
        if self.send_pings and not self._pinged:
            return self._last_traffic + self.interval
        return dead_at

    def poll(self, now: float) -> HeartbeatAction:
        dead_at = self._dead_at()
        if dead_at is None or self.interval is None or self._last_traffic is None:
            return HeartbeatAction.NOTHING
        if now >= dead_at:
            return HeartbeatAction.DEAD
        if self.send_pings and not self._pinged and now >= self._last_traffic + self.interval:
            return HeartbeatAction.SEND_PING
        measure_at = self._measure_at()
        if measure_at is not None and now >= measure_at:
            return HeartbeatAction.SEND_PING
        return HeartbeatAction.NOTHING

    def ping_payload(self, now: float) -> bytes:
        """Record that we are sending a ping now and return its (unique) payload."""
        self._pinged = True
        self._last_ping_at = now
        self._ping_counter += 1
        payload = b"weex-ws:%d" % self._ping_counter
        self._ping_payloads[payload] = now
        return payload

    def pong(self, payload: bytes, now: float) -> float | None:
        """Round trip of the ping this pong answers, or None if it answers none of ours."""
        sent_at = self._ping_payloads.pop(payload, None)
        if sent_at is None:
            return None
        # A pong also acknowledges every older ping (RFC 6455 allows coalescing).
        for older in [p for p, t in self._ping_payloads.items() if t <= sent_at]:
            del self._ping_payloads[older]
        return max(0.0, now - sent_at)
