"""When to reconnect, and when to give up: exponential backoff with jitter.

The adapter reports what happened (attempt started, connected, dropped, failed) with the
current time; the policy answers with how long to wait, or None to stop. It never reads a
clock and never sleeps, so it stays sans-IO and tests can drive it step by step.

Attempt n (counting from 0) waits `min(maximum, base * 2**n)` scaled by a factor drawn from
`rng.uniform(0.5, 1.0)` ("equal jitter"): at least half the ceiling, so delays still grow,
with enough spread that many clients dropped together do not reconnect in lockstep. WEEX
allows 300 connection requests per IP per 5 minutes (protocol doc §5.1), which a tight
reconnect loop would burn through.

The count of failures in a row only resets after a connection that stayed up for
`stable_after` seconds: a server that accepts and drops at once must still push the delay
up and eventually exhaust `max_retries`.
"""

from __future__ import annotations

import math
import random


class ReconnectPolicy:
    """Mutable reconnect state for one logical connection (public or private)."""

    def __init__(
        self,
        *,
        base: float = 1.0,
        maximum: float = 30.0,
        max_retries: int | None = 5,
        rng: random.Random,
        stable_after: float = 10.0,
    ) -> None:
        if not math.isfinite(base) or base < 0:
            raise ValueError("base must be a finite number >= 0")
        if not math.isfinite(maximum) or maximum < base:
            raise ValueError("maximum must be a finite number >= base")
        if max_retries is not None and max_retries < 0:
            raise ValueError("max_retries must be >= 0, or None to retry forever")
        if not math.isfinite(stable_after) or stable_after < 0:
            raise ValueError("stable_after must be a finite number >= 0")
        self._base = base
        self._maximum = maximum
        self._max_retries = max_retries
        self._rng = rng
        self._stable_after = stable_after
        self._failures = 0
        self._total_attempts = 0
        self._connected_at: float | None = None

    @property
    def attempts(self) -> int:
        """Failed attempts and short-lived connections in a row since the last reset."""
        return self._failures

    @property
    def total_attempts(self) -> int:
        """Every connection attempt ever started, successful or not."""
        return self._total_attempts

    @property
    def exhausted(self) -> bool:
        """True once `max_retries` has been used up; only `reset()` brings it back."""
        return self._max_retries is not None and self._failures > self._max_retries

    def on_connect_attempt(self) -> None:
        """A new connection attempt is starting."""
        self._total_attempts += 1
        self._connected_at = None

    def on_connected(self, now: float) -> None:
        """The attempt succeeded; remember when, to judge later whether it was stable."""
        self._connected_at = now

    def on_disconnected(self, now: float) -> float | None:
        """An established connection dropped: seconds to wait before retrying, or None to stop."""
        if self._connected_at is not None and now - self._connected_at >= self._stable_after:
            self._failures = 0
        self._connected_at = None
        return self._next_delay()

    def on_connect_failed(self, now: float) -> float | None:
        """An attempt failed before connecting: seconds to wait, or None to stop.

        `now` is taken for symmetry with the other reports; a failed attempt never resets.
        """
        self._connected_at = None
        return self._next_delay()

    def reset(self) -> None:
        """Forget the failures in a row, e.g. when the user explicitly reconnects."""
        self._failures = 0
        self._connected_at = None

    def _next_delay(self) -> float | None:
        self._failures += 1
        if self.exhausted:
            return None
        ceiling = self._ceiling(self._failures - 1)
        delay = ceiling * self._rng.uniform(0.5, 1.0)
        return min(max(delay, 0.0), self._maximum)

    def _ceiling(self, n: int) -> float:
        """min(maximum, base * 2**n), without overflowing when n grows without bound."""
        try:
            return min(self._maximum, math.ldexp(self._base, n))
        except OverflowError:
            return self._maximum
