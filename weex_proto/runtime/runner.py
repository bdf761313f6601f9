"""`ConnectionRunner`: the task that keeps one connection of an endpoint going.

It waits until the core lets it connect (its backoff, and the budget of connection requests
shared by all connections of the client), then moves bytes between the socket and the core and
sleeps until the core's deadlines, until the connection ends. Every decision is the core's
(`ClientHub`, `WeexSession`); this is the I/O around them, written once for any event loop.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..connection import NORMAL_CLOSURE, ConnectionState, WeexConnection
from ..errors import ConnectionClosedError, WeexError
from ..session import Decision, GiveUp, Reconnect, WeexSession
from .backend import Backend, ScopeLike
from .hub import ClientHub

log = logging.getLogger("weex_ws")

RECEIVE_SIZE = 262144
"""Bytes asked of the stream per read: as much as asyncio buffers at once (256 KiB), so a busy
feed is read in few large reads rather than many small ones."""
FEED_SIZE = 16384
"""Bytes of a read handed to the core at a time, with a turn of the other tasks between, so
the consumers drain each slice's messages (some fifty tickers) before the next is decoded.
Decoding a whole read first would hold its thousand messages alive at once: enough
allocations to set off Python's cyclic garbage collector several times per read, whose passes
over the whole heap then cost more than the decoding itself. A slice's messages are freed as
they are consumed."""
MIN_FEED_SIZE = 1024
"""The smallest slice: a frame or so, however slow the handlers."""
ROUND_BUDGET = 0.001
"""Seconds of decoding and delivery between two turns of any other task. The receive loops of
an event loop (every client's) take turns at decoding a slice, first come first served
(`Backend.feed_turns`): one slice per turn of the other tasks, however many connections
flood at once. A slice that took longer than this makes the next ones smaller (down to
`MIN_FEED_SIZE`): what a message costs is mostly the consumers' (a sync handler runs inline),
which bytes cannot tell. So whatever the feeds and their handlers do, the program's other
tasks wait about this long, plus their own turns (and a step of any other bulk work that takes
`Backend.work_turns`, in a round of its own)."""
CLOSE_ON_CANCEL_TIMEOUT = 1.0  # seconds to get our close frame out (and the peer to hang up)


class ConnectionRunner:
    """Keeps one connection of an endpoint going: waits for its turn to connect, moves bytes,
    sleeps until the core's deadlines. Ends when the core no longer wants the connection
    (retired, the client disconnected, or it gave up)."""

    def __init__(
        self,
        hub: ClientHub,
        session: WeexSession,
        backend: Backend,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        connect_timeout: float,
        kick: Callable[[], None],
    ) -> None:
        self.hub = hub
        self.session = session
        self._backend = backend
        self._clock = clock
        self._wall_clock = wall_clock
        self._connect_timeout = connect_timeout
        self._kick = kick
        self._stream: Any = None
        self._conn: WeexConnection | None = None  # the connection `_stream` carries
        self._send_lock = backend.lock()
        self._changed = backend.event()
        self._wake = backend.event()
        self._receive_scope: ScopeLike | None = None
        self._feed_size = FEED_SIZE
        """Bytes handed to the core at a time: `FEED_SIZE`, less while slices outlast the
        `ROUND_BUDGET`."""
        self.done = backend.event()
        self.running = True
        self.error: WeexError | None = None

    @property
    def is_connected(self) -> bool:
        conn = self.session.connection
        return conn is not None and conn.state is ConnectionState.OPEN

    @property
    def name(self) -> str:
        return f"weex-{'private' if self.session.private else 'public'}-{self.session_index}"

    @property
    def session_index(self) -> int:
        index: int = getattr(self.session, "index", 1)
        return index

    def _notify(self) -> None:
        self._changed.set()
        self._changed = self._backend.event()

    def wake(self) -> None:
        """Look again whether it may connect, or must stop (its state in the core changed)."""
        self._wake.set()

    async def wait_connected(self) -> None:
        """Until the connection is open; raises the reason if it gave up or was closed."""
        while not self.is_connected:
            if self.error is not None:
                raise self.error
            if not self.running:
                raise ConnectionClosedError(None, "the connection was closed")
            await self._changed.wait()

    async def wait_settled(self) -> None:
        """Until the connection is open or has ended without an error (it was retired)."""
        while self.running and not self.is_connected:
            await self._changed.wait()
        if self.error is not None:
            raise self.error

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.running = False
            self.done.set()
            self._notify()
        # Only a runner that ended normally kicks the others (its end may let them connect, or
        # a new one take its place). One dying of an error (a handler's KeyboardInterrupt) or a
        # cancellation takes the client down: whatever it started would be killed unborn.
        self._kick()

    async def _run(self) -> None:
        while await self._wait_for_turn():
            conn = self.hub.start_attempt(self.session, self._clock(), wall_time=self._wall_clock())
            self._kick()  # its request counts from now, not its grant: others may go sooner
            stream = None
            with self._backend.move_on_after(self._connect_timeout) as timer:
                try:
                    stream = await self._backend.open_stream(self.session.endpoint)
                except self._backend.connect_errors as exc:
                    failure: BaseException = exc
            if timer.cancelled_caught:
                failure = TimeoutError(f"no connection within {self._connect_timeout:g}s")
            if stream is None:
                decision = self.hub.transport_failed(self.session, self._clock(), failure)
            else:
                decision = await self._pump(stream, conn)
            self.hub.decided(self.session, decision)
            self._kick()  # its end may let others connect (or change what they wait for)
            if isinstance(decision, GiveUp):
                self.error = decision.error
            if not isinstance(decision, Reconnect):
                return
            self._notify()

    async def _wait_for_turn(self) -> bool:
        """Until the core lets this connection start an attempt: its backoff is over and the
        shared connection budget allows a request. False when it is no longer wanted."""
        connections, session = self.hub.connections, self.session
        while connections.wanted(session):
            if connections.granted(session):
                return True
            if connections.poll(self._clock()):  # grants are due: ours, or other connections'
                self._kick()
                continue
            deadline = connections.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - self._clock())
            with self._backend.move_on_after(delay):
                await self._wake.wait()
            self._wake = self._backend.event()
        return False

    async def _pump(self, stream: Any, conn: WeexConnection) -> Decision:
        backend = self._backend
        self._stream, self._conn = stream, conn
        try:
            await self.flush()
            hub, session = self.hub, self.session
            while True:
                deadline = conn.next_deadline()
                books = hub.next_deadline(session)
                if books is not None and (deadline is None or books < deadline):
                    deadline = books
                delay = None if deadline is None else deadline - self._clock()
                data = b""
                if conn.state is ConnectionState.CLOSED:
                    delay = 0.0  # closed while the socket was being opened: nothing to read
                timed_out = delay is not None and delay <= 0
                if not timed_out:  # a timer already due is handled without reading first,
                    # so a stream that returns buffered bytes without waiting cannot starve it
                    self._receive_scope = scope = backend.move_on_after(delay)
                    with scope, contextlib.suppress(*backend.transport_errors):
                        data = await backend.receive(stream, RECEIVE_SIZE)
                    timed_out = scope.cancelled_caught  # a deadline, or flush() saw a close
                now = self._clock()
                was_open = conn.is_open
                if timed_out:
                    conn.handle_timer(now)
                    hub.handle_timer(session, now)
                    decision = hub.read_events(session, conn, now)
                else:
                    decision = await self._feed(conn, data, now)
                if conn.has_data_to_send or conn.state is ConnectionState.CLOSED:
                    await self.flush()
                # A stream with bytes waiting returns them at once: without this, a flood would
                # be read and handled pass after pass with no other task of the program run.
                await backend.checkpoint()
                if conn.is_open != was_open or decision is not None:
                    self._notify()
                if decision is not None:
                    return decision
        finally:
            if conn.is_open:  # cancelled from outside: still say goodbye
                conn.close(self._clock(), NORMAL_CLOSURE, "client closed")
            # Whatever is queued (our close frame) or being sent by another task goes out
            # before the socket closes; the send lock makes us wait for the latter. Then, if
            # the peer has yet to answer our close, let it hang up first (see the core's
            # `expects_peer_close`).
            with backend.shield(), backend.move_on_after(CLOSE_ON_CANCEL_TIMEOUT):
                await self.flush()
                if conn.expects_peer_close:
                    await self._read_until_hangup(stream)
            self._stream = self._conn = None
            self._receive_scope = None
            with backend.shield(), contextlib.suppress(*backend.transport_errors):
                await backend.close_stream(stream)

    async def _feed(self, conn: WeexConnection, data: bytes, now: float) -> Decision | None:
        """Hand one read to the core, `FEED_SIZE` bytes at a time; a decision once it has closed.

        Each slice is decoded holding the event loop's receive turn (`Backend.feed_turns`),
        and taking it for the next slice yields: the tasks a slice's messages woke (stream
        consumers, async handlers) run and drop them before the next slice is decoded, and
        every other task of the program gets a turn between two slices of all the flooded
        connections together. A busy feed is still handled in few passes, but with a slice, not
        a whole read, of messages alive. The slice is also a step of bulk work
        (`Backend.work_turns`): while another bulk worker takes its step, the slice waits for
        the next round.
        """
        wall_time = self._wall_clock()  # every slice was read at once
        step = self._feed_size
        if len(data) < MIN_FEED_SIZE:  # nearly every read of a quiet feed; b"" is the end
            conn.receive_data(data, now, wall_time=wall_time)
            return self.hub.read_events(self.session, conn, now)
        start, size, clock = 0, len(data), self._clock
        turns, work = self._backend.feed_turns(), self._backend.work_turns()
        while True:
            stop = start + step
            if start == 0 and not turns.locked():
                turns.acquire_nowait()  # the pump yielded just before this read
            else:
                await turns.acquire()  # yields: the other tasks, then any loop waiting first
            try:
                if work.locked():
                    await work.acquire()  # another bulk worker's step comes first
                else:
                    work.acquire_nowait()  # this task has just yielded
                try:
                    began = clock()
                    conn.receive_data(data[start:stop], now, wall_time=wall_time)
                    decision = self.hub.read_events(self.session, conn, now)
                finally:
                    work.release()
            finally:
                turns.release()
            step = _next_feed_size(step, min(stop, size) - start, clock() - began, ROUND_BUDGET)
            self._feed_size = step
            if decision is not None or stop >= size:
                return decision
            start = stop

    async def _read_until_hangup(self, stream: Any) -> None:
        """Drop what the peer still sends until it closes the stream (the caller bounds it)."""
        with contextlib.suppress(*self._backend.transport_errors):
            while await self._backend.receive(stream, RECEIVE_SIZE):
                pass

    async def flush(self) -> None:
        """Write what the core has queued; a broken socket is reported to the core as EOF.

        It writes for the connection on the socket, not `session.connection`: the session lets go
        of a connection as soon as it has closed, and the last bytes it queued (our answer to the
        server's Close, or the Close of a connection we failed) must still go out.
        """
        conn, stream = self._conn, self._stream
        if conn is None or stream is None:
            return
        async with self._send_lock:
            data = conn.data_to_send()
            if data:
                try:
                    await self._backend.send(stream, data)
                except self._backend.transport_errors:
                    conn.receive_data(None, self._clock())
        if conn.state is ConnectionState.CLOSED and self._receive_scope is not None:
            self._receive_scope.cancel()  # let the pump collect the close without waiting


def _next_feed_size(step: int, fed: int, spent: float, turn: float) -> int:
    """The next slice's size, after `fed` bytes (of a slice of `step`) took `spent` seconds
    of a `turn`: scaled down to fit the turn when it ran over, doubled back towards
    `FEED_SIZE` when a full slice took less than half of it."""
    if spent > turn:
        return max(MIN_FEED_SIZE, min(step, int(fed * turn / spent)))
    if fed >= step and spent < turn / 2:
        return min(FEED_SIZE, step * 2)
    return step
