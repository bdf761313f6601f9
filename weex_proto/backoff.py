"""When to reconnect, and when to give up: exponential backoff with jitter.

The adapter reports what happened (attempt started, connected, proved useful, dropped, failed)
with the current time; the policy answers with how long to wait, or None to stop. It never reads
a clock and never sleeps, so it stays sans-IO and tests can drive it step by step. Times are
only ever compared with each other (a monotonic clock is all it needs).

Two counts, two jobs:

* The retry budget counts reconnection attempts in a row that got nowhere. `max_retries` is the
  documented "maximum reconnection attempts": after a connection ends, at most that many new
  attempts are made before giving up, unless one of them *proves useful*, which starts the
  count afresh. So a link that keeps dropping but works in between reconnects forever, and
  `attempts` (the number in "reconnecting (attempt N)" and in `ReconnectExhaustedError`) is
  exact: attempt 1 is the first reconnection, and giving up means `max_retries` were made.
* The backoff step decides the delay. Attempt n of a run of reconnects (counting from 0) waits
  `min(maximum, base * 2**n)` scaled by `rng.uniform(0.5, 1.0)` ("equal jitter": at least half
  the ceiling, so delays still grow, with enough spread that clients dropped together do not
  reconnect in lockstep). The step only goes back to 0 after a connection that stayed up for
  `stable_after` seconds, so a server that delivers a little and drops at once still slows us
  down: WEEX allows 300 connection requests per IP per 5 minutes (protocol doc §5.1).

A connection *proves useful* once, after its handshake completed, either when the server
delivers something the client can use (a data push, a subscribe/unsubscribe ack, an application
ping; the adapter reports it with `on_useful()`), or by staying open for `stable_after` seconds.
WebSocket-level pongs, error frames and skipped garbage do not count. A server that accepts and
drops at once without delivering anything therefore still pushes the delay up and exhausts
`max_retries`, and so does one that answers the upgrade and then says nothing but errors.
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
        self._retries = 0
        self._failures = 0
        self._step = 0
        self._exhausted = False
        self._total_attempts = 0
        self._connected_at: float | None = None
        self._useful = False

    @property
    def attempts(self) -> int:
        """Reconnection attempts granted since the last useful connection (or start, or reset).

        After a `Reconnect` decision it is the number of the attempt about to be made; once
        exhausted, the number made before giving up (`max_retries`).
        """
        return self._retries

    @property
    def failures(self) -> int:
        """Connection attempts in a row that ended without proving useful."""
        return self._failures

    @property
    def total_attempts(self) -> int:
        """Every connection attempt ever started, successful or not."""
        return self._total_attempts

    @property
    def exhausted(self) -> bool:
        """True once `max_retries` has been used up; only `reset()` brings it back."""
        return self._exhausted

    def on_connect_attempt(self) -> None:
        """A new connection attempt is starting."""
        self._total_attempts += 1
        self._connected_at = None
        self._useful = False

    def on_connected(self, now: float) -> None:
        """The handshake completed; remember when, to judge later whether it was stable."""
        self._connected_at = now

    def on_useful(self) -> None:
        """The server delivered something usable on the open connection: the run of failures
        is over, and a later drop starts a fresh budget of `max_retries` reconnects."""
        if self._connected_at is None or self._useful or self._exhausted:
            return
        self._useful = True
        self._retries = 0
        self._failures = 0

    def on_disconnected(self, now: float) -> float | None:
        """An established connection dropped: seconds to wait before retrying, or None to stop."""
        if self._connected_at is not None and now - self._connected_at >= self._stable_after:
            self.on_useful()
            self._step = 0
        if not self._useful:
            self._failures += 1
        self._connected_at = None
        self._useful = False
        return self._next_delay()

    def on_connect_failed(self, now: float) -> float | None:
        """An attempt failed before connecting: seconds to wait, or None to stop.

        `now` is taken for symmetry with the other reports; a failed attempt never resets.
        """
        self._failures += 1
        self._connected_at = None
        self._useful = False
        return self._next_delay()

    def reset(self) -> None:
        """Forget the attempts in a row, e.g. when the user explicitly reconnects."""
        self._retries = 0
        self._failures = 0
        self._step = 0
        self._exhausted = False
        self._connected_at = None
        self._useful = False

    def _next_delay(self) -> float | None:
        if self._exhausted or (
            self._max_retries is not None and self._retries >= self._max_retries
        ):
            self._exhausted = True
            return None
        self._retries += 1
        ceiling = self._ceiling(self._step)
        self._step += 1
        delay = ceiling * self._rng.uniform(0.5, 1.0)
        return min(max(delay, 0.0), self._maximum)

    def _ceiling(self, n: int) -> float:
        """min(maximum, base * 2**n), without overflowing when n grows without bound."""
        try:
            return min(self._maximum, math.ldexp(self._base, n))
        except OverflowError:
            return self._maximum
