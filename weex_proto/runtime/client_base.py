"""The public client, written once for any event loop.

`BaseClient` is the whole `WeexWebSocketClient` API: lifecycle, subscriptions, handlers and
streams, plus the loop that keeps each endpoint connected. It imports no event-loop library:
what differs between asyncio/anyio and trio is a small `Backend` (events, locks, cancel scopes,
sockets, spawning tasks), and each adapter package provides one. So both adapters behave the
same by construction, and the decisions still come from `ClientHub` and `WeexSession`.

Each connection (an endpoint has as many as its channels need, see sessionpool.py) runs in a
`ConnectionRunner` task: it waits until the core lets it connect (its backoff, and the budget
of connection requests shared by all of them), then moves bytes until the connection ends.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import random
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Generic, Literal, TypeVar

from ..channels import KlineInterval, PriceType, build_channel
from ..config import WeexConfig
from ..connection import (
    ConnectionOptions,
    PongKey,
    WeexConnection,
)
from ..dialects import V2
from ..errors import ConnectionClosedError, LocalProtocolError, StreamOverflowError, WeexError
from ..events import PushFrame, WebSocketMessage
from ..messages import Candle, Collateral, Fill, Order, Position, Ticker, Trade
from ..pool import ConnectionBudget
from ..proxy import ProxyChoice, ProxyRoutes
from ..records import OrderBookSnapshot
from ..session import WeexSession
from ..sessionpool import SessionPool
from .backend import AsyncBuffer, Backend
from .books import LocalOrderBook
from .fanout import BufferClosed, Handler, HandlerBacklog
from .health import Health
from .hub import (
    ClientHub,
    GapCallback,
    StreamPlan,
    mark_channel_for,
    plan_klines,
    plan_order_book,
    plan_private,
    plan_tickers,
    plan_trades,
)
from .runner import ConnectionRunner
from .tls import default_ssl_context, warn_if_unverified

log = logging.getLogger("weex_ws")

# --------------------------------------------------------------------------- the public client


TransportT = TypeVar("TransportT")
"""The adapter's transport type (`weex_anyio.Transport`, `weex_trio.Transport`)."""


class _WeexUrl:
    """One of WEEX's URLs: the default generation's (v2) read on the client class, the
    client's own generation's read on a client, so a v3 client names v3's."""

    def __init__(self, *, private: bool) -> None:
        self.private = private

    def __get__(self, client: BaseClient[Any] | None, owner: type | None = None) -> str:
        dialect = V2 if client is None else client.config.dialect
        return dialect.private_url if self.private else dialect.public_url


class BaseClient(abc.ABC, Generic[TransportT]):
    """`WeexWebSocketClient` minus the event loop. Adapters add `__aenter__`/`__aexit__`
    (owning the task group or nursery) and say how to start a background task; they inherit
    this `__init__`, so every option is spelled out once and typed for each adapter."""

    PUBLIC_ENDPOINT = _WeexUrl(private=False)
    """WEEX's public (market data) URL: v2's on the class, the client's generation's on a
    client (`WeexConfig(api="v3")`); `WeexConfig(public_url=...)` points elsewhere."""
    PRIVATE_ENDPOINT = _WeexUrl(private=True)
    """WEEX's private (account) URL, as `PUBLIC_ENDPOINT`; `WeexConfig(private_url=...)`
    points elsewhere."""

    def __init__(
        self,
        config: WeexConfig | None = None,
        *,
        max_retries: int | None = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 10.0,
        fail_fast: bool = False,
        rtt_interval: float | None = None,
        pong_key: PongKey = "mirror",
        stale_timeout: float | None = None,
        snapshot_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
        connect_timeout: float = 10.0,
        buffer_size: int = 1024,
        transport: TransportT | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy: ProxyChoice = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] | None = None,
        on_gap: GapCallback | None = None,
        connection_budget: ConnectionBudget | None = None,
    ) -> None:
        """Build the client; nothing connects until a stream, `subscribe()` or `connect()`.

        `config` defaults to `WeexConfig.from_env()`. The options are described in the
        README: reconnecting (`max_retries`, `backoff_base`, `backoff_max`; `fail_fast` gives
        up at once when the first attempt cannot reach the server, as a command line wants),
        heartbeats (`ping_interval`, `ping_timeout`, `rtt_interval`, `pong_key`,
        `stale_timeout`), order books
        (`snapshot_timeout`), limits
        (`max_message_size`, `buffer_size`, `connect_timeout`) and `on_gap(endpoint, channels)`.

        `transport` is an async callable taking an `Endpoint` and returning a connected byte
        stream of the adapter's kind (see the adapter's `Transport`). `ssl_context` is the TLS
        context of the default transport (else one from `config.verify_tls` and
        `config.ca_file`). `proxy` is the default transport's proxy URL (`http://`,
        `socks5://`, `socks5h://`), False for none, or None for `config.proxy`, else the
        environment. `rng` draws the backoff jitter.

        Two clocks, never mixed: `clock` (default: the event loop's, so trio's MockClock works)
        times every deadline; `wall_clock` (default: `time.time`, read at each use) signs the
        private handshake and stamps messages. A replay passes its recorded times as the wall
        clock.

        Past 100 channels on an endpoint the client opens more connections to it.
        `connection_budget` is WEEX's per-IP connection limits that all of them share
        (default: `ConnectionBudget()`, the documented 100 connections and 300 requests per
        5 minutes, paced as a burst of 20 and then one a second); give a lower one when other
        programs connect from the same IP."""
        self.config = config if config is not None else WeexConfig.from_env()
        if transport is None:
            routes = ProxyRoutes.choose(proxy if proxy is not None else self.config.proxy)
            for private in (False, True):  # a bad proxy URL fails here, not at connect
                routes.for_endpoint(self.config.endpoint(private))
            transport = self._default_transport(
                self._ssl_context(ssl_context), routes, self.config.user_agent
            )
        elif ssl_context is not None:
            raise ValueError("pass ssl_context= or transport=, not both (a transport does its TLS)")
        elif proxy:
            raise ValueError("pass proxy= or transport=, not both (a transport does its proxying)")
        options = ConnectionOptions(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            rtt_interval=rtt_interval,
            pong_key=pong_key,
            stale_timeout=stale_timeout,
            max_message_size=max_message_size,
            handshake_timeout=connect_timeout,
        )
        self._hub = ClientHub(
            self.config,
            options=options,
            rng=rng if rng is not None else self._default_rng(),
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            fail_fast=fail_fast,
            buffer_size=buffer_size,
            on_gap=on_gap,
            budget=connection_budget,
            snapshot_timeout=snapshot_timeout,
        )
        self._backend = self._make_backend(self.config, transport)
        self._clock = clock if clock is not None else self._backend.loop_time
        self._wall_clock = wall_clock if wall_clock is not None else self._backend.wall_time
        self._connect_timeout = connect_timeout
        self._runners: dict[WeexSession, ConnectionRunner] = {}
        """The running connections, by session (several per endpoint past 100 channels)."""
        self._pending_workers: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._closed = False
        self._failure: BaseException | None = None
        """What ended the client from one of its tasks (see `_fail`)."""

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<{type(self).__name__} {state} channels={len(self.subscriptions)}>"

    # ------------------------------------------------------------------ adapter hooks

    @staticmethod
    @abc.abstractmethod
    def _default_rng() -> random.Random:
        """Backoff jitter when the user injects none: the adapter seeds it (the core never does)."""

    @abc.abstractmethod
    def _default_transport(
        self, ssl_context: ssl.SSLContext, proxies: ProxyRoutes, user_agent: str
    ) -> TransportT:
        """The adapter's TCP transport, wrapping `wss://` connections in `ssl_context`, through
        the proxy `proxies` names for each endpoint (`user_agent` goes to HTTP proxies)."""

    def _ssl_context(self, given: ssl.SSLContext | None) -> ssl.SSLContext:
        if given is None:
            return default_ssl_context(self.config.verify_tls, self.config.ca_file)
        warn_if_unverified(given)
        return given

    @abc.abstractmethod
    def _make_backend(self, config: WeexConfig, transport: TransportT) -> Backend:
        """The loop's primitives (and its clocks)."""

    @abc.abstractmethod
    def _start_soon(self, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> bool:
        """Start `work` in the client's task group or nursery; False if there is none yet."""

    @abc.abstractmethod
    async def _ensure_task_host(self) -> None:
        """Make sure `_start_soon` will work (or raise a clear error saying how to use us)."""

    @abc.abstractmethod
    def _cancel_tasks(self) -> None:
        """Cancel the task group or nursery: every task of the client, and the `async with`
        body, which then leaves with the failure `__aexit__` raises (`_raise_failure`)."""

    def _start_task(self, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> bool:
        """`_start_soon`, with whatever escapes `work` (but a cancellation) ending the client
        instead of the task group: see `_fail`."""

        async def guarded() -> None:
            try:
                await work()
            except BaseException as exc:
                if isinstance(exc, self._backend.cancelled_exc_class()):
                    raise
                self._fail(exc)

        return self._start_soon(guarded, name)

    def _fail(self, error: BaseException) -> None:
        """A task of the client died of `error`: a handler's KeyboardInterrupt or SystemExit,
        an async handler's `StreamOverflowError`. The client is done: every task is cancelled,
        open streams end with the error, and `async with` (or, outside it, `close()`) raises it
        as it is. Left to the task group it would come out inside an ExceptionGroup, and on
        asyncio a KeyboardInterrupt would leave the event loop at once, past every cleanup."""
        if self._failure is not None:
            log.error(
                "after the client failed, another task failed too",
                exc_info=error,
                extra={"weex_event": "task_failed"},
            )
            return
        self._failure = error
        self._closed = True  # nothing new starts
        if isinstance(error, Exception):
            self._hub.end_all_streams(error)
        self._cancel_tasks()

    def _raise_failure(self) -> None:
        """Raise what ended the client from one of its tasks, if anything did."""
        if self._failure is not None:
            raise self._failure

    def _start_pending_workers(self) -> None:
        """Async handler workers registered before the task group existed start with it."""
        while self._pending_workers and self._start_task(self._pending_workers[0], "handler"):
            self._pending_workers.pop(0)

    # ------------------------------------------------------------------ lifecycle

    async def _endpoint_in_use(self, private: bool) -> SessionPool:
        """The endpoint's connections, each with its runner: parked ones (after a disconnect or
        a give-up) go again, and the endpoint has its first connection."""
        if self._closed:
            raise LocalProtocolError("the client is closed") from self._failure
        await self._ensure_task_host()  # may refuse: then no runner is left registered
        endpoint = self._hub.connections.endpoint(private)
        now = self._clock()
        endpoint.resume(now)
        self._hub.connections.poll(now)
        self._start_runners()
        return endpoint

    def _start_runners(self) -> None:
        """A runner for every connection the core wants and none runs for yet; then wake them
        all, since grants or retirements may concern any of them."""
        for session in self._hub.connections.sessions():
            runner = self._runners.get(session)
            if (runner is None or not runner.running) and self._hub.connections.wanted(session):
                runner = ConnectionRunner(
                    self._hub,
                    session,
                    self._backend,
                    clock=self._clock,
                    wall_clock=self._wall_clock,
                    connect_timeout=self._connect_timeout,
                    kick=self._kick,
                )
                if not self._start_task(self._run_runner(runner), runner.name):
                    break  # no task host (yet): started on the next use
                self._runners[session] = runner
        for runner in list(self._runners.values()):
            runner.wake()

    def _run_runner(self, runner: ConnectionRunner) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            try:
                await runner.run()
            finally:
                if self._runners.get(runner.session) is runner:
                    del self._runners[runner.session]

        return run

    def _kick(self) -> None:
        """Something changed in the core (a connection ended, a grant is due): runners look
        again, and new connections get theirs."""
        if not self._closed:
            self._start_runners()
        else:
            for runner in list(self._runners.values()):
                runner.wake()

    def _primary_runner(self, private: bool) -> ConnectionRunner:
        runner = self._runners.get(self._hub.session(private))
        if runner is None:
            raise ConnectionClosedError(None, "the connection was closed")
        return runner

    async def connect(self, private: bool = False) -> None:
        """Connect (public, or private with credentials) and wait until the socket is open.

        Raises `AuthenticationError` for refused credentials, `HandshakeRejectedError` for a
        refusal that retrying cannot change (e.g. HTTP 404), `ReconnectExhaustedError` when
        every retry failed, `ConfigError` for a private connection without credentials.
        """
        if private:
            self.config.require_credentials()
        await self._endpoint_in_use(private)
        await self._primary_runner(private).wait_connected()

    async def disconnect(self) -> None:
        """Close every connection (clean close handshakes) and end every open stream."""
        runners = list(self._runners.values())
        now = self._clock()
        for endpoint in self._hub.connections.endpoints.values():
            endpoint.stop(now)
        for runner in runners:
            runner.wake()
            await runner.flush()
        with self._backend.move_on_after(self._hub.options.close_timeout + 1):
            for runner in runners:
                await runner.done.wait()
        self._hub.end_all_streams()

    async def reconnect(self, private: bool = False) -> None:
        """Replace the endpoint's connections now (no backoff, paced by the connection
        budget); subscriptions and streams carry on. Returns once they are open again."""
        endpoint = self._hub.connections.endpoints.get(private)
        running = any(r.session.private == private for r in self._runners.values())
        if endpoint is None or not running:
            await self.connect(private)
            return
        endpoint.restart(self._clock())
        await self._endpoint_in_use(private)  # given-up ones go again too, as after connect()
        runners = [r for r in self._runners.values() if r.session.private == private]
        for runner in runners:
            await runner.flush()
        await self._primary_runner(private).wait_connected()
        for runner in runners:
            await runner.wait_settled()

    async def close(self) -> None:
        """Disconnect for good; the client cannot be reused."""
        self._closed = True
        await self.disconnect()

    # ------------------------------------------------------------------ properties

    @property
    def is_connected(self) -> bool:
        """True while at least one connection (public or private) is open."""
        return any(runner.is_connected for runner in self._runners.values())

    @property
    def subscriptions(self) -> frozenset[str]:
        """Every channel wanted on any connection (acknowledged or about to be)."""
        return self._hub.subscriptions

    @property
    def connection_attempts(self) -> int:
        """Connection attempts made so far, on every connection of both endpoints together."""
        return self._hub.connection_attempts

    @property
    def health(self) -> Health:
        """Round trips, message counts, reconnects, resyncs and skipped frames per endpoint,
        and each connection on its own in `health.connections`."""
        return self._hub.health

    # ------------------------------------------------------------------ sending

    async def _flush(self, session: WeexSession | None) -> None:
        """Put whatever the core queued for `session` on the wire (starting it if needed)."""
        if session is not None:
            await self._endpoint_in_use(session.private)
            runner = self._runners.get(session)
            if runner is not None:
                await runner.flush()

    async def _flush_released(self, session: WeexSession | None) -> None:
        """After a release: flush the session's runner (an unsubscribe, or the close of a
        connection left empty) without restarting anything."""
        if session is None:
            return
        runner = self._runners.get(session)
        if runner is not None:
            with contextlib.suppress(WeexError):
                await runner.flush()
        self._kick()

    async def subscribe(
        self,
        channel: str,
        *,
        symbol: str | None = None,
        ack_timeout: float | None = None,
        **params: Any,
    ) -> str:
        """Subscribe (connecting if needed) and return the wire channel name.

        `subscribe("ticker", symbol="BTCUSDT")`, `subscribe("depth", symbol="ETHUSDT",
        level=200)`, `subscribe("orders")` or a full name like `subscribe("ticker.cmt_btcusdt")`;
        the documentation's names work too: `subscribe("tickers", symbol=...)` and
        `subscribe("orderbook", symbol=..., level=5)` (a level up to 15 uses the 15 channel).
        With `ack_timeout`, also wait that long for the server's answer: its error (e.g.
        `ServerError` for an unknown channel) is raised, and `TimeoutError` if none comes.
        """
        name = build_channel(channel, symbol, **params)
        if self._closed:
            raise LocalProtocolError("the client is closed") from self._failure
        await self._ensure_task_host()  # refuse before the channel is recorded as wanted
        if ack_timeout is None:
            await self._flush(self._hub.user_subscribe(name, self._clock()))
            return name
        answer: list[WeexError | None] = []
        answered = self._backend.event()

        def on_answer(error: WeexError | None) -> None:
            answer.append(error)
            answered.set()

        stop_listening = self._hub.listen_for_ack(name, on_answer)  # before the request goes out
        try:
            session = self._hub.user_subscribe(name, self._clock())
            await self._flush(session)
            if self._hub.connections.is_active(name):
                return name  # already acknowledged earlier: no new answer will come
            with self._backend.move_on_after(ack_timeout):
                await answered.wait()
        finally:
            stop_listening()
        if not answer:
            raise TimeoutError(f"no answer to subscribing {name!r} within {ack_timeout:g}s")
        if answer[0] is not None:
            # Refused: it is not wanted any more (and a connection it was alone on closes).
            await self._flush_released(self._hub.user_unsubscribe(name, self._clock()))
            raise answer[0]
        return name

    async def unsubscribe(self, channel: str, *, symbol: str | None = None, **params: Any) -> None:
        """Drop an explicit `subscribe()` (same arguments); streams on the channel keep it."""
        name = build_channel(channel, symbol, **params)
        await self._flush(self._hub.user_unsubscribe(name, self._clock()))

    async def _open_connection(self, private: bool) -> tuple[ConnectionRunner, WeexConnection]:
        """The endpoint's first connection, once open: raw messages go there."""
        await self._endpoint_in_use(private)
        runner = self._primary_runner(private)
        await runner.wait_connected()
        assert runner.session.connection is not None
        return runner, runner.session.connection

    async def send_message(self, message: dict[str, Any] | str, *, private: bool = False) -> None:
        """Send any JSON object (or raw text) on the public or private endpoint's first
        connection."""
        runner, conn = await self._open_connection(private)
        conn.send_message(message)
        await runner.flush()

    async def send_pong(
        self, time: str, *, private: bool = False, key: Literal["event", "type"] = "event"
    ) -> None:
        """Answer an application ping by hand; the client already answers them itself."""
        runner, conn = await self._open_connection(private)
        conn.send_pong(time, key=key)
        await runner.flush()

    # ------------------------------------------------------------------ handlers

    def add_message_handler(self, channel: str, handler: Handler) -> None:
        """Call `handler(message)` for every push on `channel` (exact name or `ticker.*`).

        Like a stream, a handler gets one message per record (ticker, trade, candle, order,
        ...); on a depth channel, one per depth update as WEEX sent it (handlers keep no local
        book: use `stream_order_book` for one). Sync handlers run inline, called by the receive
        loop itself with no buffer or task switch between: the fastest way to consume, and so
        they must be quick; async handlers run in their own task with a bounded backlog, so a
        slow one never holds up the connection. An `Exception` from a handler is logged; a
        `KeyboardInterrupt`, `SystemExit` or other `BaseException` ends the client and comes
        out of `async with` as it is.

        A slow async handler is held to the rule of streams: on public data it keeps the
        latest (the oldest is dropped, the next message flagged `gap`); private data it cannot
        keep stops it, and the client, with `StreamOverflowError`, raised from `async with`.
        """
        backlog = self._hub.add_handler(channel, handler)
        if backlog is not None:
            worker = _handler_worker(handler, backlog, self._backend, self._fail)
            self._pending_workers.append(worker)
            self._start_pending_workers()

    def add_frame_handler(self, channel: str, handler: Callable[[PushFrame], Any]) -> None:
        """Call the sync `handler(frame)` with every whole push on `channel` (exact name or
        pattern), exactly as received and before it is split into records: for recorders,
        which must keep each frame once, including ones that carry no records."""
        if not isinstance(channel, str) or not channel:
            raise ValueError("a channel name or pattern must be a non-empty string")
        self._hub.frame_handlers.append((channel, handler))

    def remove_frame_handler(self, channel: str, handler: Callable[[PushFrame], Any]) -> None:
        """Remove a frame handler added with `add_frame_handler(channel, handler)`."""
        self._hub.frame_handlers = [
            entry for entry in self._hub.frame_handlers if entry != (channel, handler)
        ]

    def remove_message_handler(self, channel: str, handler: Handler | None = None) -> None:
        """Remove `handler` (or every handler) registered for exactly `channel`."""
        self._hub.remove_handler(channel, handler)

    # ------------------------------------------------------------------ streams

    async def _stream(self, plan: StreamPlan) -> AsyncGenerator[WebSocketMessage[Any], None]:
        buffer = self._hub.open_stream(plan)
        waiting = AsyncBuffer(buffer, self._backend)
        acquired: list[str] = []
        try:
            for channel in plan.channels:
                session = self._hub.acquire(channel, self._clock())
                acquired.append(channel)
                await self._flush(session)
            pending = buffer.pending
            take = pending.popleft
            while True:
                if pending:  # straight from the buffer while it has messages
                    message = take()
                else:  # waits only when it is empty
                    try:
                        message = await waiting.get()
                    except BufferClosed:
                        return
                if plan.follow_marks:
                    await self._follow_mark(message, acquired)
                yield message
        finally:
            self._hub.close_stream(plan, buffer)
            await self._release_all(acquired)

    async def _release_all(self, channels: list[str]) -> None:
        """Let go of what a stream or a held book acquired, even while it is being cancelled."""
        with self._backend.shield():
            for session in self._hub.release_all(channels, self._clock()):
                await self._flush_released(session)

    async def _follow_mark(self, message: WebSocketMessage[Any], acquired: list[str]) -> None:
        """Subscribe the ticker of a position's contract, so later records of it carry an
        unrealized PnL; a ticker that cannot be had only means no PnL, so it is logged."""
        channel = mark_channel_for(message)
        if channel is None or channel in acquired:
            return
        try:
            session = self._hub.acquire(channel, self._clock())
        except WeexError as exc:
            log.warning(
                "no mark prices for %s: %s",
                channel,
                exc,
                extra={"weex_event": "mark_unavailable", "channel": channel},
            )
            return
        acquired.append(channel)
        with contextlib.suppress(WeexError):
            await self._flush(session)

    @contextlib.asynccontextmanager
    async def order_book(self, symbol: str, level: int = 15) -> AsyncIterator[LocalOrderBook]:
        """A local book of `symbol`'s top `level` levels, kept up to date while the block runs
        and read when you like (`book.snapshot()`), rather than one message per update.

        The same book as `stream_order_book` (snapshot, deltas, resyncs, gap handling), for
        code that looks at the book now and then: nothing is copied or queued per update. A
        book that cannot be kept raises its `OrderBookError` on the next read."""
        plan = plan_order_book(symbol, level)
        (channel,) = plan.channels
        book = self._hub.hold_book(channel, level)
        acquired = False
        try:
            session = self._hub.acquire(channel, self._clock())
            acquired = True
            await self._flush(session)
            yield book
        finally:
            self._hub.let_go_book(book)
            await self._release_all([channel] if acquired else [])

    def stream_tickers(
        self, symbols: Iterable[str] | str | None = None
    ) -> AsyncGenerator[WebSocketMessage[Ticker], None]:
        """One message per ticker record for `symbols`; with None, every ticker channel the
        client receives (subscribing to BTC and ETH if nothing else asks for tickers)."""
        return self._stream(plan_tickers(symbols))

    def stream_order_book(
        self, symbol: str, *, level: int = 5
    ) -> AsyncGenerator[WebSocketMessage[OrderBookSnapshot], None]:
        """The top `level` levels of a local book kept from `symbol`'s depth pushes, one
        consistent book per message (WEEX serves 15 and 200 levels; 5 uses the 15 channel)."""
        return self._stream(plan_order_book(symbol, level))

    def stream_trades(self, symbol: str) -> AsyncGenerator[WebSocketMessage[Trade], None]:
        """One message per public trade of `symbol`."""
        return self._stream(plan_trades(symbol))

    def stream_klines(
        self,
        symbol: str,
        interval: KlineInterval | str = "MINUTE_1",
        price_type: PriceType | str = "LAST_PRICE",
    ) -> AsyncGenerator[WebSocketMessage[Candle], None]:
        """One message per candle update of `symbol`; `record.closed` (`data["closed"]`) is
        True once a later candle has arrived, and the open candle is then sent again, closed."""
        return self._stream(plan_klines(symbol, interval, price_type))

    def stream_account(self) -> AsyncGenerator[WebSocketMessage[Collateral], None]:
        """One message per collateral record of the account channel (needs credentials)."""
        return self._stream(plan_private("account"))

    def stream_positions(
        self, *, mark_prices: bool = True
    ) -> AsyncGenerator[WebSocketMessage[Position], None]:
        """One message per position record (needs credentials).

        With `mark_prices` (the default) the stream also subscribes the ticker of every
        contract it sees on the public connection, so records carry `unrealized_pnl` from the
        latest mark price as soon as one has arrived (records before that lack it).
        """
        return self._stream(plan_private("positions", follow_marks=mark_prices))

    def stream_orders(self) -> AsyncGenerator[WebSocketMessage[Order], None]:
        """One message per order record (needs credentials)."""
        return self._stream(plan_private("orders"))

    def stream_fills(self) -> AsyncGenerator[WebSocketMessage[Fill], None]:
        """One message per fill of your own orders (needs credentials)."""
        return self._stream(plan_private("fill"))


def _handler_worker(
    handler: Handler,
    backlog: HandlerBacklog,
    backend: Backend,
    fail: Callable[[BaseException], None],
) -> Callable[[], Coroutine[Any, Any, None]]:
    """The task that calls an async handler with its backlog's messages, one at a time.

    A private message the backlog cannot keep ends the client (`fail`) as soon as it arrives,
    whatever the handler is doing: it may be stuck in the call that made it fall behind."""
    waiting = AsyncBuffer(backlog, backend)

    def overflowed(error: StreamOverflowError) -> None:
        log.error(
            "%s; it is called no more, and the client stops with this error",
            error,
            extra={
                "weex_event": "handler_overflow",
                "handler": backlog.name,
                "channel": error.channel,
            },
        )
        fail(error)

    backlog.on_overflow = overflowed

    async def work() -> None:
        while True:
            try:
                message = await waiting.get()
            except (BufferClosed, StreamOverflowError):
                return  # the handler was removed, or it overflowed (the client is failing)
            try:
                await handler(message)
            except Exception:
                ClientHub.handler_failed(message)

    return work
