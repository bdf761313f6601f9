"""`WeexWebSocketClient` for asyncio (and trio through anyio).

    async with WeexWebSocketClient(WeexConfig.from_env()) as client:
        async for message in client.stream_tickers(["BTCUSDT"]):
            print(message.data)

The client's logic is `weex_proto.hub.ClientHub`; this file adds the anyio parts: a task group
for the endpoint loops and async handler workers, and awaiting buffers. The task group is entered
with `async with`, or on asyncio only, kept in a hidden task started by `connect()` for code that
cannot use a context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable
from typing import Any, Literal

import anyio
import anyio.abc

from weex_proto.channels import build_channel
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, PongKey
from weex_proto.errors import LocalProtocolError, WeexError
from weex_proto.events import WebSocketMessage
from weex_proto.fanout import BufferClosed
from weex_proto.health import Health
from weex_proto.hub import (
    ClientHub,
    GapCallback,
    Handler,
    StreamPlan,
    plan_order_book,
    plan_private,
    plan_tickers,
    plan_trades,
)
from weex_proto.session import WeexSession

from ._runner import EndpointRunner
from ._transport import Transport, WallClock, default_ssl_context, tcp_transport
from ._waiting import AsyncBuffer


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
        stale_timeout: float | None = None,
        max_message_size: int = 1 << 20,
        connect_timeout: float = 10.0,
        buffer_size: int = 1024,
        transport: Transport | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        on_gap: GapCallback | None = None,
    ) -> None:
        self.config = config if config is not None else WeexConfig.from_env()
        options = ConnectionOptions(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            pong_key=pong_key,
            stale_timeout=stale_timeout,
            max_message_size=max_message_size,
            handshake_timeout=connect_timeout,
        )
        self._hub = ClientHub(
            self.config,
            options=options,
            rng=rng if rng is not None else random.Random(),  # jitter only, not security
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            buffer_size=buffer_size,
            on_gap=on_gap,
        )
        self._connect_timeout = connect_timeout
        self._transport = transport or tcp_transport(default_ssl_context(self.config.verify_tls))
        self._clock = clock if clock is not None else WallClock()
        self._runners: dict[bool, EndpointRunner] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._pending_workers: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._host_done: anyio.Event | None = None
        self._host_task: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<WeexWebSocketClient {state} channels={len(self.subscriptions)}>"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> WeexWebSocketClient:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._start_pending_workers()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self.disconnect()
        finally:
            task_group, self._task_group = self._task_group, None
            assert task_group is not None
            task_group.cancel_scope.cancel()
            # The body's own exception is not the task group's business: keeping it out means
            # it propagates unchanged instead of inside an ExceptionGroup.
            await task_group.__aexit__(None, None, None)

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

    async def _runner(self, private: bool) -> EndpointRunner:
        """The endpoint's runner, started if it is not running."""
        runner = self._runners.get(private)
        if runner is not None and runner.running:
            return runner
        if self._closed:
            raise LocalProtocolError("the client is closed")
        session = self._hub.session(private)
        if runner is not None and runner.error is not None:
            session.policy.reset()  # an explicit new connect after giving up starts afresh
        task_group = await self._ensure_task_group()
        runner = self._runners[private] = EndpointRunner(
            self._hub,
            session,
            transport=self._transport,
            clock=self._clock,
            connect_timeout=self._connect_timeout,
        )
        task_group.start_soon(runner.run, name=f"weex-{'private' if private else 'public'}")
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
        runners = list(self._runners.values())
        self._runners.clear()
        for runner in runners:
            await runner.close()
        with anyio.move_on_after(self._hub.options.close_timeout + 1):
            for runner in runners:
                await runner.done.wait()
        self._hub.end_all_streams()

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
        self._closed = True
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
        return self._hub.subscriptions

    @property
    def connection_attempts(self) -> int:
        return self._hub.connection_attempts

    @property
    def health(self) -> Health:
        return self._hub.health

    # ------------------------------------------------------------------ sending

    async def _flush(self, session: WeexSession | None) -> None:
        """Put whatever the core queued for `session` on the wire (starting it if needed)."""
        if session is not None:
            runner = await self._runner(session.private)
            await runner.flush()

    async def subscribe(self, channel: str, *, symbol: str | None = None, **params: Any) -> str:
        """Subscribe (connecting if needed) and return the wire channel name.

        `subscribe("ticker", symbol="BTCUSDT")`, `subscribe("depth", symbol="ETHUSDT",
        level=200)`, `subscribe("orders")` or a full name like `subscribe("ticker.cmt_btcusdt")`.
        """
        name = build_channel(channel, symbol, **params)
        await self._flush(self._hub.user_subscribe(name, self._clock()))
        return name

    async def unsubscribe(self, channel: str, *, symbol: str | None = None, **params: Any) -> None:
        name = build_channel(channel, symbol, **params)
        await self._flush(self._hub.user_unsubscribe(name, self._clock()))

    async def _open_connection(self, private: bool) -> EndpointRunner:
        runner = await self._runner(private)
        await runner.wait_connected()
        return runner

    async def send_message(self, message: dict[str, Any] | str, *, private: bool = False) -> None:
        """Send any JSON object (or raw text) on the public or private connection."""
        runner = await self._open_connection(private)
        assert runner.session.connection is not None
        runner.session.connection.send_message(message)
        await runner.flush()

    async def send_pong(
        self, time: str, *, private: bool = False, key: Literal["event", "type"] = "event"
    ) -> None:
        """Answer an application ping by hand; the client already answers them itself."""
        runner = await self._open_connection(private)
        assert runner.session.connection is not None
        runner.session.connection.send_pong(time, key=key)
        await runner.flush()

    # ------------------------------------------------------------------ handlers

    def add_message_handler(self, channel: str, handler: Handler) -> None:
        """Call `handler(message)` for every push on `channel` (exact name or `ticker.*`).

        Sync handlers run inline and must be quick; async handlers run in their own task with a
        bounded backlog, so a slow one never holds up the connection. Exceptions are logged.
        """
        buffer = self._hub.add_handler(channel, handler)
        if buffer is not None:
            self._pending_workers.append(_handler_worker(handler, AsyncBuffer(buffer)))
            self._start_pending_workers()

    def remove_message_handler(self, channel: str, handler: Handler | None = None) -> None:
        self._hub.remove_handler(channel, handler)

    def _start_pending_workers(self) -> None:
        if self._task_group is not None:
            for work in self._pending_workers:
                self._task_group.start_soon(work)
            self._pending_workers.clear()

    # ------------------------------------------------------------------ streams

    async def _stream(self, plan: StreamPlan) -> AsyncGenerator[WebSocketMessage, None]:
        buffer = self._hub.open_stream(plan)
        waiting = AsyncBuffer(buffer)
        acquired: list[str] = []
        try:
            for channel in plan.channels:
                session = self._hub.acquire(channel, self._clock())
                acquired.append(channel)
                await self._flush(session)
            while True:
                try:
                    message = await waiting.get()
                except BufferClosed:
                    return
                yield message
        finally:
            self._hub.close_stream(plan, buffer)
            with anyio.CancelScope(shield=True):
                for channel in acquired:
                    released = self._hub.release(channel, self._clock())
                    runner = self._runners.get(plan.private)
                    if released is not None and runner is not None:
                        with contextlib.suppress(WeexError):
                            await runner.flush()

    def stream_tickers(
        self, symbols: Iterable[str] | str | None = None
    ) -> AsyncGenerator[WebSocketMessage, None]:
        """Ticker pushes for `symbols`; with None, every ticker channel the client receives
        (subscribing to BTC and ETH if nothing else asks for tickers)."""
        return self._stream(plan_tickers(symbols))

    def stream_order_book(
        self, symbol: str, *, level: int = 5
    ) -> AsyncGenerator[WebSocketMessage, None]:
        """Depth pushes for `symbol` (WEEX serves 15 and 200 levels; 5 uses the 15 channel)."""
        return self._stream(plan_order_book(symbol, level))

    def stream_trades(self, symbol: str) -> AsyncGenerator[WebSocketMessage, None]:
        return self._stream(plan_trades(symbol))

    def stream_account(self) -> AsyncGenerator[WebSocketMessage, None]:
        return self._stream(plan_private("account"))

    def stream_positions(self) -> AsyncGenerator[WebSocketMessage, None]:
        return self._stream(plan_private("positions"))

    def stream_orders(self) -> AsyncGenerator[WebSocketMessage, None]:
        return self._stream(plan_private("orders"))

    def stream_fills(self) -> AsyncGenerator[WebSocketMessage, None]:
        return self._stream(plan_private("fill"))


def _handler_worker(
    handler: Handler, buffer: AsyncBuffer
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def work() -> None:
        while True:
            try:
                message = await buffer.get()
            except BufferClosed:
                return
            try:
                await handler(message)
            except Exception:
                ClientHub.handler_failed(message)

    return work
