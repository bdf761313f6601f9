"""Fault switches shared by every connection of one simulator.

Tests flip these from outside (`server.stall(2)`, `server.set_delay(0.1)`, ...). Connections read
them on every send and receive, so a change takes effect at once for open connections and for
any that arrive later.
"""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel


class FaultState:
    """Stall, delay, handshake refusals, depth gaps and the market pause switch."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.market_paused = False
        self.reject_remaining = 0
        self.reject_status = 503
        self.depth_gaps: set[str] = set()
        self.withheld_snapshots: int | None = 0
        """Depth subscribes still to be acked without their snapshot (None: every one)."""
        self.ignored_subscribes: int | None = 0
        """Subscribe requests still to go unanswered (None: every one)."""
        self._stalled_until: float | None = None
        self._resumed: anyio.Event | None = None

    # -- stall / resume -------------------------------------------------------------------------

    def stall(self, seconds: float | None) -> None:
        """Freeze all I/O for `seconds` (None: until `resume()`)."""
        if seconds is not None and seconds < 0:
            raise ValueError("stall duration must be >= 0 or None")
        self._stalled_until = math.inf if seconds is None else anyio.current_time() + seconds

    def resume(self) -> None:
        self._stalled_until = None
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None

    @property
    def stalled(self) -> bool:
        until = self._stalled_until
        return until is not None and anyio.current_time() < until

    async def wait_until_running(self) -> None:
        """Return at once unless stalled; otherwise wait for the stall to end."""
        while True:
            until = self._stalled_until
            if until is None or anyio.current_time() >= until:
                await anyio.lowlevel.checkpoint()
                return
            if self._resumed is None:
                self._resumed = anyio.Event()
            with anyio.CancelScope(deadline=until):
                await self._resumed.wait()

    # -- handshake refusals ---------------------------------------------------------------------

    def reject_handshakes(self, count: int, status: int) -> None:
        if count < 0:
            raise ValueError("count must be >= 0")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        self.reject_remaining = count
        self.reject_status = status

    def take_rejection(self) -> int | None:
        """The status to refuse the next upgrade with, or None to judge it normally."""
        if self.reject_remaining <= 0:
            return None
        self.reject_remaining -= 1
        return self.reject_status

    # -- answers withheld -----------------------------------------------------------------------

    def withhold_snapshots(self, count: int | None) -> None:
        if count is not None and count < 0:
            raise ValueError("count must be >= 0 or None")
        self.withheld_snapshots = count

    def take_withheld_snapshot(self) -> bool:
        """Whether the snapshot of the depth subscribe being acked is to be left out."""
        return _take(self, "withheld_snapshots")

    def ignore_subscribes(self, count: int | None) -> None:
        if count is not None and count < 0:
            raise ValueError("count must be >= 0 or None")
        self.ignored_subscribes = count

    def take_ignored_subscribe(self) -> bool:
        """Whether the subscribe request being read is to go unanswered."""
        return _take(self, "ignored_subscribes")


def _take(faults: FaultState, name: str) -> bool:
    """Use up one of a countdown switch (None: unlimited); False once it is at 0."""
    left = getattr(faults, name)
    if left is None:
        return True
    if left <= 0:
        return False
    setattr(faults, name, left - 1)
    return True
