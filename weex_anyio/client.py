"""`WeexWebSocketClient` for asyncio (and trio through anyio).

    async with WeexWebSocketClient(WeexConfig.from_env()) as client:
        async for message in client.stream_tickers(["BTCUSDT"]):
            print(message.data)

Background work (one runner per endpoint, async handler workers) lives in a task group owned by
the client: entered with `async with`, or, on asyncio only, in a hidden task started by
`connect()` for code that cannot use a context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any

import anyio
import anyio.abc

from weex_proto import error_codes
from weex_proto.channels import build_channel, is_private_channel, normalize_symbol
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, PongKey
from weex_proto.errors import ErrorKind, LocalProtocolError, WeexError
from weex_proto.events import (
    Connected,
    ConnectionClosed,
    ConnectionRejected,
    ErrorReceived,
    Event,
    MessageReceived,
    MessageSkipped,
    PingAnswered,
    PongReceived,
    Subscribed,
    Unsubscribed,
    WebSocketMessage,
)
from weex_proto.fanout import BufferClosed, ChannelRefs, MessageBuffer, OverflowPolicy, Router
from weex_proto.session import Reconnect, WeexSession

from ._health import Health
from ._runner import EndpointRunner
from ._transport import Transport, WallClock, default_ssl_context, tcp_transport
from ._waiting import AsyncBuffer

log = logging.getLogger("weex_anyio")

Handler = Callable[[WebSocketMessage], Any]
DEFAULT_TICKER_SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt")


class WeexWebSocketClient:
    """The WEEX futures WebSocket client. See the README for a tour."""

    def __init__(
        self,
        config: WeexConfig | None = None,
        *,
        max_retries: int | None = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 10.0,
        pong_key: PongKey = "mirror",
        max_message_size: int = 1 << 20,
        connect_timeout: float = 10.0,
        buffer_size: int = 1024,
        transport: Transport | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        on_gap: Callable[[str, tuple[str, ...]], Any] | None = None,
    ) -> None:
        self.config = config if config is not None else WeexConfig.from_env()
        self._options = ConnectionOptions(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            pong_key=pong_key,
            max_message_size=max_message_size,
            handshake_timeout=connect_timeout,
        )
        self._retry = {
            "max_retries": max_retries,
            "backoff_base": backoff_base,
            "backoff_max": backoff_max,
        }
        self._connect_timeout = connect_timeout
        self._buffer_size = buffer_size
        self._transport = transport or tcp_transport(default_ssl_context(self.config.verify_tls))
        self._rng = rng if rng is not None else random.Random()  # jitter only, not security
        self._clock = clock if clock is not None else WallClock()
        self._on_gap = on_gap
        self._routers = {False: Router(), True: Router()}
        self._refs = ChannelRefs()
        self._user_channels: set[str] = set()
        self._runners: dict[bool, EndpointRunner] = {}
        self._sessions: dict[bool, WeexSession] = {}
        self._waiters: dict[int, AsyncBuffer] = {}
        self._async_handlers: dict[int, AsyncBuffer] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._pending_workers: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._host_task: asyncio.Task[None] | None = None
        self._host_done: anyio.Event | None = None
        self._closing = False
        self.health = Health()

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<WeexWebSocketClient {state} channels={len(self.subscriptions)}>"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> WeexWebSocketClient:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._closing = False
        self._start_pending_workers()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        try:
            await self.disconnect()
        finally:
            task_group, self._task_group = self._task_group, None
            assert task_group is not None
            task_group.cancel_scope.cancel()
            result = await task_group.__aexit__(*exc_info)
        return result

    async def _ensure_task_group(self) -> anyio.abc.TaskGroup:
        if self._task_group is not None:
            return self._task_group
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise LocalProtocolError(
                "outside 'async with WeexWebSocketClient(...)' background tasks can only be "
                "started on asyncio; use the client as an async context manager"
            ) from None
        ready = anyio.Event()
        self._host_done = done = anyio.Event()

        async def host() -> None:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                ready.set()
                await done.wait()
                task_group.cancel_scope.cancel()
            self._task_group = None

        self._host_task = loop.create_task(host())
        await ready.wait()
        assert self._task_group is not None
        self._start_pending_workers()
        return self._task_group

    def _session(self, private: bool) -> WeexSession:
        session = self._sessions.get(private)
        if session is None:
            session = self._sessions[private] = WeexSession(
                self.config,
                private=private,
                options=self._options,
                rng=self._rng,
                **self._retry,  # type: ignore[arg-type]
            )
        return session

    async def _runner(self, private: bool) -> EndpointRunner:
        """The endpoint's runner, started if it is not running."""
        runner = self._runners.get(private)
        if runner is not None and runner.running:
            return runner
        if self._closing:
            raise LocalProtocolError("the client is closed")
        session = self._session(private)
        if runner is not None and runner.error is not None:
            session.policy.reset()
        runner = self._runners[private] = EndpointRunner(
            session,
            transport=self._transport,
            clock=self._clock,
            dispatcher=self,
            connect_timeout=self._connect_timeout,
        )
        task_group = await self._ensure_task_group()
        runner.running = True
        task_group.start_soon(runner.run, name=f"weex-{runner.name}")
        return runner

    async def connect(self, private: bool = False) -> None:
        """Connect (public, or private with credentials) and wait until the socket is open.

        Raises `AuthenticationError` for refused credentials, `ReconnectExhaustedError` when
        every retry failed, `ConfigError` for a private connection without credentials.
        """
        if private:
            self.config.require_credentials()
        runner = await self._runner(private)
        await runner.wait_connected()

    async def disconnect(self) -> None:
        """Close both connections (clean close handshake) and end every open stream."""
        for runner in list(self._runners.values()):
            await runner.close()
        with anyio.move_on_after(self._options.close_timeout + 1):
            for runner in list(self._runners.values()):
                await runner.done.wait()
        self._runners.clear()
        for waiter in list(self._waiters.values()):
            waiter.close()

    async def reconnect(self, private: bool = False) -> None:
        """Drop the connection and connect again now; subscriptions and streams carry on."""
        runner = self._runners.get(private)
        if runner is None or not runner.running:
            await self.connect(private)
            return
        await runner.reconnect()
        await runner.wait_connected()

    async def close(self) -> None:
        """Disconnect and release the background tasks. The client cannot be reused."""
        self._closing = True
        await self.disconnect()
        if self._host_done is not None:
            self._host_done.set()
            self._host_done = None

    # ------------------------------------------------------------------ properties

    @property
    def is_connected(self) -> bool:
        return any(runner.is_connected for runner in self._runners.values())

    @property
    def subscriptions(self) -> frozenset[str]:
        """Every channel wanted on either connection (acknowledged or about to be)."""
        channels: set[str] = set()
        for session in self._sessions.values():
            channels.update(session.subscriptions.desired)
        return frozenset(channels)

    @property
    def connection_attempts(self) -> int:
        return sum(session.connection_attempts for session in self._sessions.values())

    # ------------------------------------------------------------------ sending

    async def subscribe(self, channel: str, *, symbol: str | None = None, **params: Any) -> str:
        """Subscribe (connecting if needed) and return the wire channel name.

        `subscribe("ticker", symbol="BTCUSDT")`, `subscribe("depth", symbol="ETHUSDT",
        level=200)`, `subscribe("orders")` or a full name like `subscribe("ticker.cmt_btcusdt")`.
        """
        name = build_channel(channel, symbol, **params)
        if name not in self._user_channels:
            self._user_channels.add(name)
            await self._acquire(name)
        return name

    async def unsubscribe(self, channel: str, *, symbol: str | None = None, **params: Any) -> None:
        name = build_channel(channel, symbol, **params)
        if name in self._user_channels:
            self._user_channels.discard(name)
            await self._release(name)

    async def send_message(self, message: dict[str, Any] | str, *, private: bool = False) -> None:
        runner = await self._runner(private)
        await runner.wait_connected()
        assert runner.connection is not None
        runner.connection.send_message(message)
        await runner.flush()

    async def send_pong(self, time: str, *, private: bool = False, key: str = "event") -> None:
        """Answer an application ping by hand; the client already answers them itself."""
        if key not in ("event", "type"):
            raise ValueError("key must be 'event' or 'type'")
        runner = await self._runner(private)
        await runner.wait_connected()
        assert runner.connection is not None
        runner.connection.send_pong(time, key="event" if key == "event" else "type")
        await runner.flush()

    async def _acquire(self, channel: str) -> None:
        if self._refs.acquire(channel):
            private = is_private_channel(channel)
            if private:
                self.config.require_credentials()
            runner = await self._runner(private)
            assert runner.session is not None
            runner.session.subscriptions.subscribe(channel, self._clock())
            await self._send_pending(runner, channel, subscribe=True)

    async def _release(self, channel: str) -> None:
        if self._refs.release(channel):
            runner = self._runners.get(is_private_channel(channel))
            session = self._sessions.get(is_private_channel(channel))
            if session is None:
                return
            session.subscriptions.unsubscribe(channel, self._clock())
            if runner is not None:
                await self._send_pending(runner, channel, subscribe=False)

    async def _send_pending(self, runner: EndpointRunner, channel: str, *, subscribe: bool) -> None:
        """The book decided; if a connection is open, put the request on the wire now."""
        conn = runner.connection
        if conn is not None and conn.is_open:
            request = {"event": "subscribe" if subscribe else "unsubscribe", "channel": channel}
            conn.send_message(request)
            await runner.flush()

    # ------------------------------------------------------------------ handlers

    def add_message_handler(self, channel: str, handler: Handler) -> None:
        """Call `handler(message)` for every push on `channel` (exact name or `ticker.*`).

        Sync handlers run inline and must be quick; async handlers run in their own task with a
        bounded backlog, so a slow one never holds up the connection. Exceptions are logged.
        """
        if inspect.iscoroutinefunction(handler):
            buffer = AsyncBuffer(
                MessageBuffer(f"handler {handler!r}", self._buffer_size, OverflowPolicy.KEEP_LATEST)
            )
            self._async_handlers[id(handler)] = buffer
            for router in self._routers.values():
                router.add_buffer([channel], buffer.buffer)
            self._waiters[id(buffer.buffer)] = buffer
            self._start_handler_worker(handler, buffer)
        else:
            for router in self._routers.values():
                router.add_handler(channel, handler)

    def remove_message_handler(self, channel: str, handler: Handler | None = None) -> None:
        for router in self._routers.values():
            router.remove_handler(channel, handler)
        for key, buffer in list(self._async_handlers.items()):
            if handler is None or key == id(handler):
                for router in self._routers.values():
                    router.remove_buffer(buffer.buffer)
                buffer.close()
                del self._async_handlers[key]

    def _start_handler_worker(self, handler: Handler, buffer: AsyncBuffer) -> None:
        async def work() -> None:
            while True:
                try:
                    message = await buffer.get()
                except BufferClosed:
                    return
                try:
                    await handler(message)
                except Exception:
                    log.exception(
                        "message handler failed",
                        extra={"weex_event": "handler_error", "channel": message.channel},
                    )

        self._pending_workers.append(work)
        self._start_pending_workers()

    def _start_pending_workers(self) -> None:
        """Async handler workers wait for the task group; start them once it exists."""
        if self._task_group is not None:
            for work in self._pending_workers:
                self._task_group.start_soon(work)
            self._pending_workers.clear()

    # ------------------------------------------------------------------ streams

    async def _stream(
        self,
        channels: Iterable[str],
        *,
        private: bool,
        policy: OverflowPolicy,
        patterns: Iterable[str] = (),
    ) -> AsyncIterator[WebSocketMessage]:
        names = list(dict.fromkeys(channels))
        routes = [*names, *patterns]
        buffer = AsyncBuffer(MessageBuffer(",".join(routes), self._buffer_size, policy))
        router = self._routers[private]
        router.add_buffer(routes, buffer.buffer)
        self._waiters[id(buffer.buffer)] = buffer
        acquired: list[str] = []
        try:
            for name in names:
                await self._acquire(name)
                acquired.append(name)
            while True:
                try:
                    message = await buffer.get()
                except BufferClosed:
                    return
                yield message
        finally:
            router.remove_buffer(buffer.buffer)
            self._waiters.pop(id(buffer.buffer), None)
            with anyio.CancelScope(shield=True):
                for name in acquired:
                    with contextlib.suppress(WeexError):
                        await self._release(name)

    def stream_tickers(
        self, symbols: Iterable[str] | None = None
    ) -> AsyncIterator[WebSocketMessage]:
        """Ticker pushes for `symbols`; with None, every ticker channel the client receives
        (subscribing to BTC and ETH if nothing else asks for tickers)."""
        if symbols is None:
            return self._stream(
                [f"ticker.{s}" for s in DEFAULT_TICKER_SYMBOLS],
                private=False,
                policy=OverflowPolicy.KEEP_LATEST,
                patterns=["ticker.*"],
            )
        names = [
            build_channel("ticker", s) for s in ([symbols] if isinstance(symbols, str) else symbols)
        ]
        return self._stream(names, private=False, policy=OverflowPolicy.KEEP_LATEST)

    def stream_order_book(self, symbol: str, *, level: int = 15) -> AsyncIterator[WebSocketMessage]:
        """Depth pushes for `symbol`; level 15 or 200 (WEEX's two depth channels).

        A level of 5 (the classic default) is served from the 15-level channel.
        """
        wire_level = 15 if level <= 15 else 200
        name = build_channel("depth", symbol, level=wire_level)
        return self._stream([name], private=False, policy=OverflowPolicy.KEEP_LATEST)

    def stream_trades(self, symbol: str) -> AsyncIterator[WebSocketMessage]:
        name = build_channel("trades", normalize_symbol(symbol))
        return self._stream([name], private=False, policy=OverflowPolicy.KEEP_LATEST)

    def stream_account(self) -> AsyncIterator[WebSocketMessage]:
        return self._stream(["account"], private=True, policy=OverflowPolicy.RAISE)

    def stream_positions(self) -> AsyncIterator[WebSocketMessage]:
        return self._stream(["positions"], private=True, policy=OverflowPolicy.RAISE)

    def stream_orders(self) -> AsyncIterator[WebSocketMessage]:
        return self._stream(["orders"], private=True, policy=OverflowPolicy.RAISE)

    def stream_fills(self) -> AsyncIterator[WebSocketMessage]:
        return self._stream(["fill"], private=True, policy=OverflowPolicy.RAISE)

    # ------------------------------------------------------------------ dispatcher (runner side)

    def dispatch(self, runner: EndpointRunner, event: Event) -> None:
        now = self._clock()
        if isinstance(event, MessageReceived):
            message = event.message
            self.health.message(runner.name, now)
            handlers, buffers = self._routers[runner.session.private].route(message.channel)
            for buffer in buffers:
                buffer.put(message)
                waiter = self._waiters.get(id(buffer))
                if waiter is not None:
                    waiter.notify()
            for handler in handlers:
                try:
                    handler(message)
                except Exception:
                    log.exception(
                        "message handler failed",
                        extra={"weex_event": "handler_error", "channel": message.channel},
                    )
        elif isinstance(event, PingAnswered):
            self.health.ping(runner.name, event, now)
        elif isinstance(event, PongReceived):
            self.health.pong(runner.name, event.round_trip)
        elif isinstance(event, Subscribed | Unsubscribed):
            log.debug(
                "%s %s",
                type(event).__name__.lower(),
                event.channel,
                extra={
                    "weex_event": type(event).__name__.lower(),
                    "channel": event.channel,
                    "endpoint": runner.name,
                },
            )
        elif isinstance(event, ErrorReceived):
            self._error_event(runner, event)
        elif isinstance(event, MessageSkipped):
            self.health.skipped += 1
            log.warning(
                "skipped a frame: %s",
                event.reason,
                extra={"weex_event": "skipped", "endpoint": runner.name, "raw": event.raw[:200]},
            )
        elif isinstance(event, Connected):
            self.health.connected(runner.name, now)
            log.info(
                "connected",
                extra={
                    "weex_event": "connected",
                    "endpoint": runner.name,
                    "resubscribed": list(event.resubscribed),
                },
            )
        elif isinstance(event, ConnectionRejected):
            log.warning(
                "handshake rejected: HTTP %s %s",
                event.status_code,
                event.reason,
                extra={
                    "weex_event": "rejected",
                    "endpoint": runner.name,
                    "status": event.status_code,
                    "kind": event.kind.value,
                },
            )
        elif isinstance(event, ConnectionClosed):
            log.info(
                "connection closed: %s",
                event.reason or event.code,
                extra={
                    "weex_event": "closed",
                    "endpoint": runner.name,
                    "code": event.code,
                    "initiator": event.initiator.value,
                },
            )

    def _error_event(self, runner: EndpointRunner, event: ErrorReceived) -> None:
        self.health.errors += 1
        level = logging.WARNING if event.kind is ErrorKind.RATE_LIMIT else logging.ERROR
        log.log(
            level,
            "server error %s: %s",
            event.code,
            event.message,
            extra={
                "weex_event": "server_error",
                "endpoint": runner.name,
                "code": event.code,
                "kind": event.kind.value,
                "channel": event.channel,
            },
        )
        if event.channel is None:
            return
        error = error_codes.exception_for(event.kind, event.code, event.message)
        # A stream that asked for exactly this channel cannot get data; tell it why.
        for buffer in self._routers[runner.session.private].route(event.channel)[1]:
            if buffer.name == event.channel:
                waiter = self._waiters.get(id(buffer))
                if waiter is not None:
                    waiter.close(error)
        self._refs.release(event.channel)

    def reconnecting(self, runner: EndpointRunner, decision: Reconnect) -> None:
        self.health.reconnects += 1
        for buffer in self._routers[runner.session.private].buffers:
            buffer.mark_gap()
        log.warning(
            "reconnecting in %.2fs (attempt %d): %s",
            decision.delay,
            decision.attempt,
            decision.reason,
            extra={
                "weex_event": "reconnecting",
                "endpoint": runner.name,
                "delay": decision.delay,
                "attempt": decision.attempt,
            },
        )
        if self._on_gap is not None and decision.gap:
            try:
                self._on_gap(runner.name, decision.gap)
            except Exception:
                log.exception("on_gap callback failed", extra={"weex_event": "handler_error"})

    def failed(self, runner: EndpointRunner, error: WeexError) -> None:
        log.error(
            "giving up on the %s connection: %s",
            runner.name,
            error,
            extra={"weex_event": "gave_up", "endpoint": runner.name},
        )
        for buffer in self._routers[runner.session.private].buffers:
            waiter = self._waiters.get(id(buffer))
            if waiter is not None:
                waiter.close(error)
