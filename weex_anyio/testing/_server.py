"""`SimulatedWeexServer`: a local stand-in for the WEEX futures WebSocket v2 server.

It is written from the protocol reference alone (it does not import `weex_proto`), so tests
that run our client against it check the client against an independent reading of the docs.
It listens on loopback only, on an ephemeral port by default, and runs under asyncio and trio.

    async with SimulatedWeexServer() as server:
        ...connect to server.public_url / server.private_url...
        await server.drop_connections()        # and the other fault switches below

Where the docs are silent (error frames, auth failures, limits) the simulator picks the shape
third-party clients assume; each such choice is described on the method that makes it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
from wsproto.events import Request

from ._auth import (
    PRIVATE_PATH,
    PUBLIC_PATH,
    V3_PRIVATE_PATH,
    V3_PUBLIC_PATH,
    Admitted,
    Credentials,
    Refused,
    judge,
    refuse_too_many,
    sign,
)
from ._auth import refuse_with_status as _refuse_with_status
from ._channels import channel_allowed, parse_public_channel
from ._connection import (
    CLOSE_TIMEOUT,
    ConnectionInfo,
    ConnectionSettings,
    ServerConnection,
    encode,
    error_message,
    text_frame,
)
from ._faults import FaultState
from ._feed import FeedMarket, FeedRates, generated_symbols
from ._market import Market
from ._private import SimulatedAccount, SimulatedTrade
from ._v3 import push_text

logger = logging.getLogger("weex_anyio.testing")

DEFAULT_SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt")
SHUTDOWN_GRACE = 1.0
_RECEIVED_LOG_SIZE = 10_000
FEED_GRANULARITY = 0.005
"""The full feed's loop sleeps at least this long: pushes due closer together go out together."""
FEED_IDLE = 0.05
FLOOD_WINDOW = 512
"""A flood adds pushes only while every subscribed connection has fewer than this queued."""
FLOOD_BATCH = 64
FLOOD_PATIENCE = 5.0
"""A connection that drains nothing for this long stops holding the flood back (it is then
dropped as a slow client once its queue is full, as WEEX would)."""


@attrs.frozen
class ServerStats:
    """Counters since the server started.

    `accepted`/`rejected` count upgrade requests, and `rate_limited` those of the rejected that
    the per-IP limits refused (HTTP 429); `subscribe_ops`/`unsubscribe_ops` count
    acknowledged operations; `bytes_sent` counts every byte written (handshakes included) and
    `messages_sent` every WebSocket data message and raw write.
    """

    accepted: int = 0
    rejected: int = 0
    rate_limited: int = 0
    subscribe_ops: int = 0
    unsubscribe_ops: int = 0
    bytes_sent: int = 0
    messages_sent: int = 0


@attrs.define
class _Counters:
    accepted: int = 0
    rejected: int = 0
    rate_limited: int = 0
    subscribe_ops: int = 0
    unsubscribe_ops: int = 0
    bytes_sent: int = 0
    messages_sent: int = 0


_V3_TEXTS_KEPT = 1024
"""v2 push texts whose v3 text the server keeps (then it starts afresh): bounded memory."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SimulatedWeexServer:
    """A faithful-as-documented WEEX contract WebSocket v2 server for tests and demos.

    Options (all keyword-only):

    * `host`, `port`: where to listen; loopback only, port 0 picks a free port.
    * `api_key`, `secret_key`, `passphrase`: the one account the private endpoint accepts.
    * `symbols`: contracts that exist; channels for other symbols are rejected.
    * `seed`: seeds the price walk, the order book and the simulated account.
    * `tick_interval`: seconds between market steps (each step pushes ticker, depth CHANGED,
      trades and kline change frames to subscribers).
    * `trade_interval`: seconds between the account's own fake trades (None: only
      `simulate_trade()` trades).
    * `ping_interval`: seconds between JSON pings (None: no heartbeat). The connection is closed
      (code 1000, "ping timeout") when more than `max_missed_pongs` pings are unanswered.
    * `public_ping_key` / `private_ping_key`: "event" or "type", the key of the ping message.
    * `require_user_agent`: refuse upgrades without a User-Agent with HTTP 403.
    * `timestamp_tolerance`: allowed clock skew of ACCESS-TIMESTAMP, in seconds.
    * `max_channels`, `max_operations_per_hour`: the documented per-connection limits (100
      channels; 240 subscribe/unsubscribe requests per `operations_window` seconds, an hour).
      Going over them answers `{"event":"error","code":"429","msg":"Too many requests",
      "channel":...}` and changes nothing; the connection stays open. Every subscribe or
      unsubscribe request counts, refused ones included.
    * `max_connections`, `max_connection_requests`: the documented per-IP limits (100
      concurrent connections; 300 connection requests per `connection_request_window`
      seconds, five minutes). All clients count as one IP (the simulator is on loopback).
      Every upgrade request counts, refused ones included, as an exchange's rate limiter
      would; one over either limit is refused with HTTP 429 and the REST error body
      `{"code":"429","msg":"Too many requests",...}` (counted in `stats.rate_limited`).
    * `max_message_size`: larger client messages end the connection with close code 1009.
    * `full_feed`: a whole-exchange feed of this many contracts: `symbols` first, then made-up
      ones (`cmt_c0001usdt`, ...). Each channel kind has its own WEEX-like rate (`feed_rates`,
      a `FeedRates`; `tick_interval` is not used), a contract is stepped only while some
      channel of it has a subscriber, and pushes are formatted once per subscribed channel.
    * `api`: "v2" (the default) or "v3", the protocol generation `public_url`, `private_url`
      and `signed_headers` are for. Both are served whichever it is, by path (`/v2/ws/...`,
      `/v3/ws/...`): the same market and faults, v3 connections with v3 names, requests
      answered by id, pings answered by `PONG`, and pushes shaped like WEEX's v3 frames
      (docs/protocol-v3.md). Pings on v3 are `{"event":"ping"}` (public) and `{"type":"ping"}`
      (private) whatever the ping keys say.
    * `flood`: push the full feed (of `full_feed` contracts, or of `symbols`) as fast as the
      subscribed connections drain, ignoring the rates: the feed waits while any of them has
      `FLOOD_WINDOW` messages queued, so other connections, pings and acks stay served.
    * `on_push`: called with the text of every push of the full feed, once however many
      connections it goes to (a subscribe's snapshot: once per subscriber), e.g. a `SentLog`.
      The feed stops, and new connections are refused (HTTP 503), before the server closes
      its connections, so everything it was called with was queued ahead of a close frame.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sim-api-key",
        secret_key: str = "sim-secret-key",  # noqa: S107 - a fake account
        passphrase: str = "sim-passphrase",  # noqa: S107 - a fake account
        symbols: Iterable[str] = DEFAULT_SYMBOLS,
        seed: int = 0,
        tick_interval: float = 0.25,
        trade_interval: float | None = 2.0,
        ping_interval: float | None = 10.0,
        max_missed_pongs: int = 5,
        public_ping_key: Literal["event", "type"] = "event",
        private_ping_key: Literal["event", "type"] = "event",
        require_user_agent: bool = True,
        timestamp_tolerance: float = 30.0,
        max_channels: int = 100,
        max_operations_per_hour: int = 240,
        operations_window: float = 3600.0,
        max_connections: int = 100,
        max_connection_requests: int = 300,
        connection_request_window: float = 300.0,
        max_message_size: int = 1 << 20,
        full_feed: int | None = None,
        feed_rates: FeedRates | None = None,
        flood: bool = False,
        api: Literal["v2", "v3"] = "v2",
        on_push: Callable[[str], None] | None = None,
    ) -> None:
        if api not in ("v2", "v3"):
            raise ValueError('api must be "v2" or "v3"')
        self._api = api
        if not _is_loopback(host):
            raise ValueError("the simulator only listens on loopback addresses")
        for key in (public_ping_key, private_ping_key):
            if key not in ("event", "type"):
                raise ValueError('ping keys must be "event" or "type"')
        self._symbols = tuple(symbols)
        if feed_rates is not None and full_feed is None and not flood:
            raise ValueError("feed_rates apply to a full feed: give full_feed=N (or flood=True)")
        if on_push is not None and full_feed is None and not flood:
            raise ValueError("on_push applies to a full feed: give full_feed=N (or flood=True)")
        if full_feed is not None:
            if full_feed < 1:
                raise ValueError("full_feed must be a number of contracts >= 1")
            self._symbols = generated_symbols(self._symbols[:full_feed], full_feed)
        if not self._symbols:
            raise ValueError("at least one symbol is needed")
        if tick_interval <= 0 or (trade_interval is not None and trade_interval <= 0):
            raise ValueError("tick_interval and trade_interval must be positive")
        if ping_interval is not None and ping_interval <= 0:
            raise ValueError("ping_interval must be positive or None")
        limits = (max_channels, max_operations_per_hour, max_connections, max_connection_requests)
        if min(limits) < 1:
            raise ValueError("connection and subscription limits must be >= 1")
        if operations_window <= 0 or connection_request_window <= 0:
            raise ValueError("limit windows must be positive")
        self._max_connections = max_connections
        self._max_connection_requests = max_connection_requests
        self._connection_request_window = connection_request_window
        self._connection_requests: deque[float] = deque()  # times, within the window
        self._admitted: dict[int, ServerConnection] = {}  # 101 on its way, not serving yet
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._credentials = Credentials(api_key, secret_key, passphrase)
        self._tick_interval = tick_interval
        self._trade_interval = trade_interval
        self._require_user_agent = require_user_agent
        self._timestamp_tolerance = timestamp_tolerance
        self._settings = ConnectionSettings(
            ping_interval=ping_interval,
            max_missed_pongs=max_missed_pongs,
            ping_key={False: public_ping_key, True: private_ping_key},
            max_message_size=max_message_size,
            max_channels=max_channels,
            max_operations_per_hour=max_operations_per_hour,
            operations_window=operations_window,
        )
        self._faults = FaultState()
        self._v3_texts: dict[str, str] = {}  # v2 push text -> its v3 text (see `v3_text`)
        self._flood = flood
        self._market: Market | FeedMarket
        if full_feed is not None or flood:
            self._market = FeedMarket(
                self._symbols,
                random.Random(seed),
                0.0,  # the feed's clock starts with its first `watch`
                feed_rates or FeedRates(),
                time.time,
                on_push,
            )
        else:
            self._market = Market(self._symbols, random.Random(seed), time.time())
        self._epoch = 0  # counts subscription changes, to know when to rebuild the index
        self._index: dict[str, list[ServerConnection]] = {}
        self._targets: dict[int, ServerConnection] = {}  # the connections in the index
        self._index_epoch = -1
        self._stuck: set[int] = set()  # ids of connections that stopped holding the flood back
        self._watched = False  # the feed knows the current index
        self._account = SimulatedAccount(random.Random(f"{seed}/account"), int(time.time() * 1000))
        self._trade_rng = random.Random(f"{seed}/trading")
        self._ids = itertools.count(1)
        self._open: dict[int, ServerConnection] = {}
        self._received: deque[Any] = deque(maxlen=_RECEIVED_LOG_SIZE)
        self._counters = _Counters()
        self._changed: anyio.Event | None = None
        self._lifespan: contextlib.AbstractAsyncContextManager[None] | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._used = False
        self._stopping = False

    def __repr__(self) -> str:
        return f"SimulatedWeexServer(host={self._host!r}, port={self._port!r})"

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> SimulatedWeexServer:
        if self._used:
            raise RuntimeError("a SimulatedWeexServer can only be started once")
        self._used = True
        self._lifespan = self._run()
        await self._lifespan.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._lifespan is not None
        return await self._lifespan.__aexit__(exc_type, exc, tb)

    @contextlib.asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        listener = await anyio.create_tcp_listener(
            local_host=self._host, local_port=self._requested_port
        )
        async with listener, anyio.create_task_group() as tg:
            self._port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610
            self._task_group = tg
            tg.start_soon(listener.serve, self._handle, tg)
            if isinstance(self._market, FeedMarket):
                loop = self._flood_loop if self._flood else self._feed_loop
                tg.start_soon(loop, self._market)
            else:
                tg.start_soon(self._market_loop, self._market)
            if self._trade_interval is not None:
                tg.start_soon(self._trading_loop, self._trade_interval)
            try:
                yield
            finally:
                # Nothing more is sent once the close frames are queued, and nobody new
                # connects (and is sent a snapshot) while the connections close.
                self.pause_market()
                self._stopping = True
                if not self._faults.stalled:
                    with anyio.move_on_after(SHUTDOWN_GRACE, shield=True):
                        await self.close_connections(1001, "server shutting down")
                self._task_group = None
                tg.cancel_scope.cancel()

    async def serve_forever(self) -> None:
        """Keep serving until cancelled (use inside `async with`)."""
        await anyio.sleep_forever()

    def attach(self, stream: anyio.abc.ByteStream) -> None:
        """Serve one more client connection on `stream`, any anyio byte stream, as if it had
        been accepted on the listening socket; it runs in the background until it ends.

        This is how the simulator plugs into a client's `transport=` with no socket at all:
        make a `memory_stream_pair()`, attach one end here, return the other from the
        transport (`examples/memory_transport.py`). Every fault injection works the same,
        except that `drop_connections(reset=True)` can only end an in-memory stream with a FIN.
        """
        if self._task_group is None:
            raise RuntimeError("the server is not running; use `async with`")
        self._task_group.start_soon(self._handle, stream)

    async def serve_stream(self, stream: anyio.abc.ByteStream) -> None:
        """Serve one client connection on `stream` until it ends, in the caller's task (`attach`
        without the background task: for a listener of your own that wraps its streams)."""
        await self._handle(stream)

    async def _handle(self, stream: anyio.abc.ByteStream) -> None:
        connection = ServerConnection(next(self._ids), stream, self, self._settings)
        try:
            await connection.run()
        except Exception:
            # A misbehaving client must never take the server down with it.
            logger.warning("connection %d failed", connection.id, exc_info=True)

    # -- addresses --------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not running; use `async with`")
        return self._port

    @property
    def _authority(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self.port}"

    @property
    def api(self) -> Literal["v2", "v3"]:
        """The protocol generation of `public_url` and `private_url` (both are served)."""
        return self._api

    @property
    def public_url(self) -> str:
        return f"ws://{self._authority}{V3_PUBLIC_PATH if self._api == 'v3' else PUBLIC_PATH}"

    @property
    def private_url(self) -> str:
        return f"ws://{self._authority}{V3_PRIVATE_PATH if self._api == 'v3' else PRIVATE_PATH}"

    @property
    def credentials(self) -> Credentials:
        return self._credentials

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def signed_headers(
        self, *, user_agent: str = "weex-simulator-client", timestamp_ms: int | None = None
    ) -> dict[str, str]:
        """Valid private upgrade headers, for callers that do not test the signing itself."""
        stamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        creds = self._credentials
        return {
            "User-Agent": user_agent,
            "ACCESS-KEY": creds.api_key,
            "ACCESS-PASSPHRASE": creds.passphrase,
            "ACCESS-TIMESTAMP": stamp,
            "ACCESS-SIGN": sign(
                creds.secret_key, stamp, V3_PRIVATE_PATH if self._api == "v3" else PRIVATE_PATH
            ),
        }

    # -- observability ----------------------------------------------------------------------------

    @property
    def connections(self) -> tuple[ConnectionInfo, ...]:
        """Snapshots of the open (upgraded) connections, oldest first."""
        return tuple(c.info() for c in self._open.values())

    @property
    def stats(self) -> ServerStats:
        return ServerStats(**attrs.asdict(self._counters))

    @property
    def received(self) -> tuple[Any, ...]:
        """Every JSON message clients sent (parsed), oldest first, pongs included."""
        return tuple(self._received)

    def depth_version(self, symbol: str) -> int:
        """The current order-book version of `symbol` (the endVersion of its last frame)."""
        return self._market.depth_version(self._known(symbol))

    async def wait_for_connections(
        self,
        n: int,
        timeout: float = 5,  # noqa: ASYNC109 - part of the documented test API
        *,
        exact: bool = False,
    ) -> tuple[ConnectionInfo, ...]:
        """Wait until at least `n` (or exactly `n`) connections are open; TimeoutError if not."""

        def ready() -> bool:
            return len(self._open) == n if exact else len(self._open) >= n

        await self.wait_until(ready, timeout)
        return self.connections

    async def wait_for_subscription(
        self,
        channel: str,
        timeout: float = 5,  # noqa: ASYNC109 - part of the documented test API
    ) -> ConnectionInfo:
        """Wait until some open connection is subscribed to `channel`; return it."""

        def subscribers() -> list[ServerConnection]:
            return [c for c in self._open.values() if channel in c.subscriptions]

        await self.wait_until(lambda: bool(subscribers()), timeout)
        return subscribers()[0].info()

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5,  # noqa: ASYNC109 - part of the documented test API
    ) -> None:
        """Wait until `predicate()` is true; it is re-checked whenever a connection opens or
        closes, subscribes or unsubscribes, or sends a message. TimeoutError if it stays false.
        """
        with anyio.fail_after(timeout):
            while not predicate():
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # -- fault injection --------------------------------------------------------------------------

    async def drop_connections(
        self, *, reset: bool = False, ids: Iterable[int] | None = None
    ) -> int:
        """Close every open connection's TCP socket without a close frame; return how many.

        With `reset=True` the socket is closed with an RST instead of a FIN. With `ids`, only
        the open connections with those ids (`ConnectionInfo.id`, see `connections`) drop.
        """
        victims = list(self._open.values())
        if ids is not None:
            chosen = set(ids)
            victims = [connection for connection in victims if connection.id in chosen]
        for connection in victims:
            connection.abort(reset=reset)
        for connection in victims:
            await connection.done.wait()
        return len(victims)

    async def close_connections(self, code: int = 1001, reason: str = "") -> int:
        """Send a close frame to every open connection and wait for them to end; return how many.

        A client that does not answer the close frame is cut off after a short timeout.
        """
        victims = list(self._open.values())
        for connection in victims:
            connection.begin_close(code, reason)
        with anyio.move_on_after(CLOSE_TIMEOUT + 1.0):
            for connection in victims:
                await connection.done.wait()
        for connection in victims:
            connection.abort()
            await connection.done.wait()
        return len(victims)

    def stall(self, seconds: float | None = None) -> None:
        """Freeze the server: nothing is sent (pings included) and nothing is read.

        Lasts `seconds`, or until `resume()` when None. Handshakes of new connections freeze
        too. The market keeps moving; its pushes queue up and flow once the stall ends.
        """
        self._faults.stall(seconds)

    def resume(self) -> None:
        self._faults.resume()

    def set_delay(self, seconds: float) -> None:
        """Deliver every outgoing message `seconds` after it was produced (latency, not rate)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self._faults.delay = seconds

    async def send_raw(self, data: str | bytes, *, binary: bool = False) -> None:
        """Send one WebSocket data message to every open connection.

        A str goes out as a text frame (or binary when `binary`). Bytes go out as a binary frame
        when `binary`, otherwise as a text frame holding those exact bytes, even invalid UTF-8.
        """
        for connection in list(self._open.values()):
            if binary:
                connection.send_binary(data.encode() if isinstance(data, str) else data)
            elif isinstance(data, str):
                connection.send_text(data)
            else:
                connection.send_raw(text_frame(data))
        await anyio.lowlevel.checkpoint()

    async def send_push(self, text: str) -> None:
        """Send one data push, given as v2 text, to every open connection: as it is on v2
        connections, as the v3 frame that carries it on v3 ones (whatever their subscriptions:
        like `send_raw`). The frame must have the documented v2 shape."""
        for connection in list(self._open.values()):
            connection.send_push(text)
        await anyio.lowlevel.checkpoint()

    async def send_raw_bytes(self, data: bytes) -> None:
        """Write `data` straight to every open TCP stream, below the WebSocket framing."""
        for connection in list(self._open.values()):
            connection.send_raw(data)
        await anyio.lowlevel.checkpoint()

    async def send_error(self, code: str | int, msg: str, channel: str | None = None) -> None:
        """Push `{"event":"error","code":...,"msg":...[,"channel":...]}` to every connection."""
        text = error_message(str(code), msg, channel)
        for connection in list(self._open.values()):
            connection.send_text(text)
        await anyio.lowlevel.checkpoint()

    def inject_depth_gap(self, symbol: str, skipped: int = 10) -> None:
        """Make the next CHANGED frame of `symbol` skip `skipped` versions (a lost update)."""
        if skipped < 1:
            raise ValueError("skipped must be >= 1")
        self._market.inject_gap(self._known(symbol), skipped)

    def withhold_snapshots(self, count: int | None = None) -> None:
        """Ack the next `count` depth subscribes (None: every one, until called with 0) but
        send no SNAPSHOT after them: only the CHANGED deltas follow."""
        self._faults.withhold_snapshots(count)

    def ignore_subscribes(self, count: int | None = None) -> None:
        """Leave the next `count` subscribe requests (None: every one, until called with 0)
        unanswered: no ack, no error, no data. Pings are still answered."""
        self._faults.ignore_subscribes(count)

    def restart_depth_versions(self, symbol: str, version: int = 100) -> None:
        """Make `symbol`'s depth versions start again at `version`, as a restarted server
        would: the next CHANGED frames of every depth channel of it run from `version + 1`."""
        if version < 0:
            raise ValueError("version must be >= 0")
        self._market.restart_versions(self._known(symbol), version)

    def reject_handshakes(self, count: int, status: int = 503) -> None:
        """Refuse the next `count` upgrade requests with HTTP `status`."""
        self._faults.reject_handshakes(count, status)

    def pause_market(self) -> None:
        """Stop market steps and the account's own trading (snapshots still answer subscribes)."""
        self._faults.market_paused = True

    def resume_market(self) -> None:
        self._faults.market_paused = False

    # -- the simulated account --------------------------------------------------------------------

    async def simulate_trade(
        self, symbol: str = "cmt_btcusdt", side: str = "BUY", size: str | Decimal = "0.01"
    ) -> SimulatedTrade:
        """Fill a market order now; push orders, fill, orders, positions and account updates."""
        symbol = self._known(symbol)
        if side not in ("BUY", "SELL"):
            raise ValueError('side must be "BUY" or "SELL"')
        decimals = self._market.spec(symbol).size_decimals
        try:
            amount = Decimal(size)
        except InvalidOperation:
            raise ValueError(f"size {size!r} is not a decimal number") from None
        if not amount.is_finite() or amount <= 0:
            raise ValueError("size must be a positive number")
        if amount != amount.quantize(Decimal(1).scaleb(-decimals)):
            raise ValueError(f"size of {symbol} has at most {decimals} decimals")
        report = self._execute_trade(symbol, "BUY" if side == "BUY" else "SELL", amount)
        await anyio.lowlevel.checkpoint()
        return report

    def _execute_trade(
        self, symbol: str, side: Literal["BUY", "SELL"], size: Decimal
    ) -> SimulatedTrade:
        decimals = self._market.spec(symbol).size_decimals
        price = self._market.last_price(symbol)
        now_ms = int(time.time() * 1000)
        report, pushes = self._account.trade(symbol, side, size, price, decimals, now_ms)
        for channel, message in pushes:
            text = encode(message)
            for connection in list(self._open.values()):
                if connection.private and channel in connection.subscriptions:
                    connection.send_push(text)
        return report

    async def _trading_loop(self, interval: float) -> None:
        rng = self._trade_rng
        while True:
            await anyio.sleep(interval)
            if self._faults.market_paused:
                continue
            symbol = rng.choice(self._symbols)
            decimals = self._market.spec(symbol).size_decimals
            unit = 10 ** max(decimals - 3, 0)
            size = Decimal(rng.randint(1, 100) * unit).scaleb(-decimals)
            self._execute_trade(symbol, rng.choice(("BUY", "SELL")), size)

    # -- market data ------------------------------------------------------------------------------

    async def _market_loop(self, market: Market) -> None:
        while True:
            await anyio.sleep(self._tick_interval)
            if self._faults.market_paused:
                continue
            market.step(time.time())
            self._broadcast_market(market)

    def _broadcast_market(self, market: Market) -> None:
        cache: dict[str, str | None] = {}
        for connection in list(self._open.values()):
            if connection.private:
                continue
            for channel in list(connection.subscriptions):
                if channel not in cache:
                    parsed = parse_public_channel(channel, self._symbols)
                    message = market.update_message(parsed) if parsed else None
                    cache[channel] = None if message is None else encode(message)
                text = cache[channel]
                if text is not None:
                    connection.send_push(text)

    # -- the full feed ----------------------------------------------------------------------------

    def _subscribers(self) -> dict[str, list[ServerConnection]]:
        """Channel -> the public connections subscribed to it (rebuilt after any change)."""
        if self._index_epoch != self._epoch:
            index: dict[str, list[ServerConnection]] = {}
            for connection in self._open.values():
                if not connection.private:
                    for channel in connection.subscriptions:
                        index.setdefault(channel, []).append(connection)
            self._index = index
            self._targets = {c.id: c for conns in index.values() for c in conns}
            self._index_epoch = self._epoch
            self._watched = False
        return self._index

    def _watch(self, feed: FeedMarket, now: float) -> dict[str, list[ServerConnection]]:
        subscribers = self._subscribers()
        if not self._watched:
            feed.watch(subscribers, now)
            self._watched = True
        return subscribers

    async def _feed_loop(self, feed: FeedMarket) -> None:
        while True:
            due = feed.next_due()
            wait = FEED_IDLE if due is None else due - anyio.current_time()
            await anyio.sleep(min(max(wait, FEED_GRANULARITY), FEED_IDLE))
            if self._faults.market_paused:
                continue
            now = anyio.current_time()
            self._watch(feed, now)
            feed.advance(now)

    async def _flood_loop(self, feed: FeedMarket) -> None:
        while True:
            await anyio.lowlevel.checkpoint()  # the other connections' turn
            if self._faults.market_paused:
                await anyio.sleep(FEED_IDLE)
                continue
            self._watch(feed, feed.now)
            targets = self._targets
            self._stuck &= targets.keys()
            slow = [
                c for c in targets.values() if c.id not in self._stuck and c.queued >= FLOOD_WINDOW
            ]
            if slow:
                with anyio.move_on_after(FLOOD_PATIENCE) as waited:
                    await slow[0].drained(FLOOD_WINDOW // 2)
                if waited.cancelled_caught:
                    logger.info("connection %d drains nothing: the flood goes on", slow[0].id)
                    self._stuck.add(slow[0].id)
                continue
            if not targets or not feed.run_events(FLOOD_BATCH):
                await anyio.sleep(FEED_IDLE)

    def _known(self, symbol: str) -> str:
        if symbol not in self._symbols:
            raise ValueError(f"unknown symbol {symbol!r}; known: {', '.join(self._symbols)}")
        return symbol

    # -- ConnectionHost: called by the connections ------------------------------------------------

    @property
    def faults(self) -> FaultState:
        return self._faults

    def judge_handshake(self, request: Request, connection: ServerConnection) -> Admitted | Refused:
        if self._stopping:
            return _refuse_with_status(503, "server shutting down")
        status = self._faults.take_rejection()
        if status is not None:
            return _refuse_with_status(status, "handshake refused by fault injection")
        limited = self._over_ip_limits()
        if limited is not None:
            self._counters.rate_limited += 1
            return refuse_too_many(limited, time.time())
        headers: Mapping[str, str] = {
            bytes(name).decode("latin-1").lower(): bytes(value).decode("latin-1")
            for name, value in request.extra_headers
        }
        verdict = judge(
            request.target,
            headers,
            credentials=self._credentials,
            require_user_agent=self._require_user_agent,
            timestamp_tolerance=self._timestamp_tolerance,
            now=time.time(),
        )
        if isinstance(verdict, Admitted):
            # Counted as open at once, so handshakes racing each other cannot pass the cap.
            self._admitted[connection.id] = connection
        return verdict

    def _over_ip_limits(self) -> str | None:
        """Count this upgrade request; say which per-IP limit it breaks, if any."""
        now = anyio.current_time()
        requests = self._connection_requests
        while requests and requests[0] <= now - self._connection_request_window:
            requests.popleft()
        requests.append(now)
        if len(requests) > self._max_connection_requests:
            return (
                f"more than {self._max_connection_requests} connection requests in "
                f"{self._connection_request_window:g} s"
            )
        if len(self._open) + len(self._admitted) >= self._max_connections:
            return f"already {self._max_connections} connections open"
        return None

    def channel_allowed(self, channel: str, *, private: bool) -> bool:
        return channel_allowed(channel, private=private, symbols=self._symbols)

    def v3_text(self, text: str) -> str:
        """A push goes to its connections one by one: each v3 one gets the same v3 frame
        (one event time), converted once."""
        converted = self._v3_texts.get(text)
        if converted is None:
            if len(self._v3_texts) >= _V3_TEXTS_KEPT:
                self._v3_texts.clear()
            converted = self._v3_texts[text] = push_text(text, int(time.time() * 1000))
        return converted

    def opened(self, connection: ServerConnection) -> None:
        self._admitted.pop(connection.id, None)
        self._open[connection.id] = connection
        self._epoch += 1
        self._notify()

    def closed(self, connection: ServerConnection) -> None:
        self._admitted.pop(connection.id, None)
        self._open.pop(connection.id, None)
        self._epoch += 1
        self._notify()

    def subscribed(self, connection: ServerConnection, channel: str) -> None:
        self._epoch += 1
        parsed = None if connection.private else parse_public_channel(channel, self._symbols)
        if parsed is not None:
            if parsed.kind == "depth" and self._faults.take_withheld_snapshot():
                self._notify()
                return
            if isinstance(self._market, FeedMarket):
                on_push = self._market.on_push
                for text in self._market.initial_texts(parsed):
                    connection.send_push(text)
                    if on_push is not None:
                        on_push(text)
            else:
                for message in self._market.initial_messages(parsed):
                    connection.send_push(encode(message))
        self._notify()

    def record_received(self, message: Any) -> None:
        self._received.append(message)
        self._notify()

    def record_sent(self, nbytes: int, *, message: bool) -> None:
        self._counters.bytes_sent += nbytes
        self._counters.messages_sent += int(message)

    def record_operation(self, *, subscribe: bool) -> None:
        self._epoch += 1
        if subscribe:
            self._counters.subscribe_ops += 1
        else:
            self._counters.unsubscribe_ops += 1
        self._notify()

    def record_handshake(self, *, accepted: bool) -> None:
        if accepted:
            self._counters.accepted += 1
        else:
            self._counters.rejected += 1


async def run_simulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: anyio.abc.TaskStatus[SimulatedWeexServer] = anyio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a simulator until cancelled. `await tg.start(run_simulator)` returns the server."""
    async with SimulatedWeexServer(host=host, port=port, **options) as server:
        logger.info("WEEX simulator listening: %s and %s", server.public_url, server.private_url)
        task_status.started(server)
        await server.serve_forever()
