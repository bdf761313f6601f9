"""One endpoint (public or private) kept connected: the loop around the core's session.

Every decision is the hub's or the session's; this file only moves bytes, sleeps until the
core's deadlines and wakes whoever waits for the connection.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable

import anyio
import anyio.abc

from weex_proto.connection import ConnectionState, WeexConnection
from weex_proto.errors import ConnectionClosedError, WeexError
from weex_proto.hub import ClientHub
from weex_proto.session import Decision, GiveUp, Reconnect, SessionState, WeexSession

from ._transport import Transport

RECEIVE_SIZE = 65536
TRANSPORT_ERRORS = (
    OSError,
    ssl.SSLError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    TimeoutError,
)


class EndpointRunner:
    def __init__(
        self,
        hub: ClientHub,
        session: WeexSession,
        *,
        transport: Transport,
        clock: Callable[[], float],
        connect_timeout: float,
    ) -> None:
        self.hub = hub
        self.session = session
        self._transport = transport
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._stream: anyio.abc.ByteStream | None = None
        self._receive_scope = anyio.CancelScope()
        self._send_lock = anyio.Lock()
        self._changed = anyio.Event()
        self._wake = anyio.Event()
        self.done = anyio.Event()
        self.running = True
        self.error: WeexError | None = None

    @property
    def is_connected(self) -> bool:
        conn = self.session.connection
        return conn is not None and conn.state is ConnectionState.OPEN

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_connected(self) -> None:
        """Until the endpoint is open; raises the reason if it gave up or was closed."""
        while not self.is_connected:
            if self.error is not None:
                raise self.error
            if not self.running:
                raise ConnectionClosedError(None, "the connection was closed")
            await self._changed.wait()

    async def run(self) -> None:
        try:
            while True:
                conn = self.hub.start_attempt(self.session, self._clock())
                try:
                    with anyio.fail_after(self._connect_timeout):
                        stream = await self._transport(self.session.endpoint)
                except TRANSPORT_ERRORS as exc:
                    decision = self.hub.transport_failed(self.session, self._clock(), exc)
                else:
                    decision = await self._pump(stream, conn)
                self.hub.decided(self.session, decision)
                if isinstance(decision, GiveUp):
                    self.error = decision.error
                if not isinstance(decision, Reconnect):
                    return
                self._notify()
                with anyio.move_on_after(decision.delay):
                    await self._wake.wait()
                self._wake = anyio.Event()
                if self.session.state is SessionState.STOPPED:
                    return
        finally:
            self.running = False
            self.done.set()
            self._notify()

    async def _pump(self, stream: anyio.abc.ByteStream, conn: WeexConnection) -> Decision:
        self._stream = stream
        try:
            await self.flush()
            while True:
                deadline = conn.next_deadline()
                delay = None if deadline is None else max(0.0, deadline - self._clock())
                data = b""
                with anyio.move_on_after(delay) as self._receive_scope:
                    with contextlib.suppress(*TRANSPORT_ERRORS):
                        data = await stream.receive(RECEIVE_SIZE)
                now = self._clock()
                was_open = conn.is_open
                if self._receive_scope.cancelled_caught:  # a deadline, or `_interrupt()`
                    conn.handle_timer(now)
                else:
                    conn.receive_data(data, now)
                decision = self.hub.handle_events(self.session, conn, now)
                await self.flush()
                if conn.is_open != was_open or decision is not None:
                    self._notify()
                if decision is not None:
                    return decision
        finally:
            self._stream = None
            with anyio.CancelScope(shield=True), contextlib.suppress(*TRANSPORT_ERRORS):
                await stream.aclose()

    async def flush(self) -> None:
        """Write what the core has queued; a broken socket is reported to the core as EOF."""
        conn, stream = self.session.connection, self._stream
        if conn is None or stream is None:
            return
        async with self._send_lock:
            data = conn.data_to_send()
            if data:
                try:
                    await stream.send(data)
                except TRANSPORT_ERRORS:
                    conn.receive_data(None, self._clock())
        if conn.state is ConnectionState.CLOSED:
            self._receive_scope.cancel()  # let the pump collect the close without waiting

    async def close(self) -> None:
        """Stop for good: a clean close handshake if open, and no more reconnects."""
        self.session.stop(self._clock())
        self._wake.set()
        await self.flush()

    async def reconnect(self) -> None:
        """Replace the connection now (no backoff); streams carry on with a gap flag."""
        self.session.restart(self._clock())
        self._wake.set()
        await self.flush()
