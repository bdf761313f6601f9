"""One endpoint (public or private) kept connected: the thin loop around `WeexSession`.

Everything this file decides is asked of the core; it only moves bytes, sleeps until the
core's deadlines, and hands events to the client's dispatcher.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Protocol

import anyio
import anyio.abc

from weex_proto.connection import ConnectionState, WeexConnection
from weex_proto.errors import ConnectionClosedError, WeexError
from weex_proto.events import Connected, ConnectionClosed, ConnectionRejected, ErrorReceived, Event
from weex_proto.session import Decision, GiveUp, Reconnect, SessionState, Stop, WeexSession

from ._transport import Transport

log = logging.getLogger("weex_anyio")

RECEIVE_SIZE = 65536
TRANSPORT_ERRORS = (
    OSError,
    ssl.SSLError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    TimeoutError,
)


class Dispatcher(Protocol):
    def dispatch(self, runner: EndpointRunner, event: Event) -> None: ...
    def reconnecting(self, runner: EndpointRunner, decision: Reconnect) -> None: ...
    def failed(self, runner: EndpointRunner, error: WeexError) -> None: ...


class EndpointRunner:
    def __init__(
        self,
        session: WeexSession,
        *,
        transport: Transport,
        clock: Callable[[], float],
        dispatcher: Dispatcher,
        connect_timeout: float,
    ) -> None:
        self.session = session
        self.name = "private" if session.private else "public"
        self._transport = transport
        self._clock = clock
        self._dispatcher = dispatcher
        self._connect_timeout = connect_timeout
        self._stream: anyio.abc.ByteStream | None = None
        self._send_lock = anyio.Lock()
        self._state_changed = anyio.Event()
        self._wake_from_backoff = anyio.Event()
        self._force_reconnect = False
        self.running = False
        self.done = anyio.Event()
        self.error: WeexError | None = None

    @property
    def connection(self) -> WeexConnection | None:
        return self.session.connection

    @property
    def is_connected(self) -> bool:
        conn = self.session.connection
        return conn is not None and conn.state is ConnectionState.OPEN

    def _changed(self) -> None:
        self._state_changed.set()
        self._state_changed = anyio.Event()

    async def wait_connected(self) -> None:
        """Until the endpoint is open; raises the session's error if it gave up."""
        while not self.is_connected:
            if self.error is not None:
                raise self.error
            if not self.running:
                raise ConnectionClosedError(None, f"{self.name} connection is not running")
            await self._state_changed.wait()

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        self.running = True
        try:
            await self._run()
        finally:
            self.running = False
            self.done.set()
            self._changed()

    async def _run(self) -> None:
        while True:
            self._force_reconnect = False
            conn = self.session.start_attempt(self._clock())
            log.info(
                "connecting",
                extra={
                    "weex_event": "connecting",
                    "endpoint": self.name,
                    "attempt": self.session.connection_attempts,
                },
            )
            try:
                with anyio.fail_after(self._connect_timeout):
                    stream = await self._transport(
                        self.session.config.endpoint(self.session.private)
                    )
            except TRANSPORT_ERRORS as exc:
                decision = self.session.transport_failed(self._clock(), exc)
                log.warning(
                    "connect failed: %s",
                    exc or type(exc).__name__,
                    extra={"weex_event": "connect_failed", "endpoint": self.name},
                )
            else:
                decision = await self._pump(stream, conn)
            if isinstance(decision, Reconnect):
                if self._force_reconnect:
                    decision = Reconnect(0.0, decision.attempt, "reconnect requested", decision.gap)
                self._dispatcher.reconnecting(self, decision)
                self._changed()
                with anyio.move_on_after(decision.delay):
                    await self._wake_from_backoff.wait()
                self._wake_from_backoff = anyio.Event()
                if self.session.state is SessionState.STOPPED:
                    return
            elif isinstance(decision, GiveUp):
                self.error = decision.error
                self._dispatcher.failed(self, decision.error)
                return
            else:
                assert isinstance(decision, Stop)
                return

    async def _pump(self, stream: anyio.abc.ByteStream, conn: WeexConnection) -> Decision:
        self._stream = stream
        try:
            await self.flush()
            while True:
                deadline = conn.next_deadline()
                delay = None if deadline is None else max(0.0, deadline - self._clock())
                data: bytes | None = None
                with anyio.move_on_after(delay) as scope:
                    try:
                        data = await stream.receive(RECEIVE_SIZE)
                    except TRANSPORT_ERRORS:
                        data = b""
                now = self._clock()
                if scope.cancelled_caught:
                    conn.handle_timer(now)
                else:
                    conn.receive_data(data, now)
                closed = self._handle_events(conn, now)
                await self.flush()
                if closed is not None:
                    return self.session.connection_closed(self._clock(), closed)
        finally:
            self._stream = None
            with anyio.CancelScope(shield=True), contextlib.suppress(*TRANSPORT_ERRORS):
                await stream.aclose()
            self._changed()

    def _handle_events(self, conn: WeexConnection, now: float) -> ConnectionClosed | None:
        closed = None
        for event in conn.events():
            if isinstance(event, Connected):
                self.session.connected(now)
                self._changed()
            elif isinstance(event, ConnectionRejected):
                self.session.rejected(event)
            elif isinstance(event, ErrorReceived):
                self.session.error_received(event.kind, event.code, event.message)
            elif isinstance(event, ConnectionClosed):
                closed = event
            self._dispatcher.dispatch(self, event)
        return closed

    # ------------------------------------------------------------------ commands

    async def flush(self) -> None:
        """Write whatever the core has queued. A broken socket is reported to the core as EOF."""
        conn = self.session.connection
        stream = self._stream
        if conn is None or stream is None:
            return
        async with self._send_lock:
            data = conn.data_to_send()
            if not data:
                return
            try:
                await stream.send(data)
            except TRANSPORT_ERRORS:
                conn.receive_data(None, self._clock())

    async def close(self) -> None:
        """Stop for good: close handshake if open, no more reconnects."""
        self.session.stop()
        self._wake_from_backoff.set()
        conn = self.session.connection
        if conn is not None and conn.state in (ConnectionState.OPEN, ConnectionState.CONNECTING):
            conn.close(self._clock())
            await self.flush()

    async def reconnect(self) -> None:
        """Drop the current connection and connect again right away."""
        self._force_reconnect = True
        self._wake_from_backoff.set()
        conn = self.session.connection
        if conn is not None and conn.state is ConnectionState.OPEN:
            conn.close(self._clock(), 1000, "client reconnect")
            await self.flush()
