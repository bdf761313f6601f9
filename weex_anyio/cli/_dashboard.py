"""`weex-ws demo`: a live terminal dashboard, from the built-in simulator or (`--live`) WEEX.

On a terminal the screen is redrawn in place a few times a second with plain ANSI sequences
(cursor home, clear to end of line): a ticker table, the order book ladder of the first symbol,
recent trades and a connection health line. When stdout is not a terminal (a pipe, a file, a
test, `TERM=dumb`) every message is printed as a plain line instead, with a health line every
few seconds, so the same command is pipeable.

The state (`DashboardState`) and the drawing (`render`) are plain functions of the data, so
they are tested without a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TextIO

import anyio
import attrs

from weex_proto.config import WeexConfig
from weex_proto.events import WebSocketMessage
from weex_proto.messages import PayloadError, Ticker, Trade
from weex_proto.runtime.health import Health

from ..client import WeexWebSocketClient
from ..testing import SimulatedWeexServer
from ._output import describe, is_book
from ._runtime import Output, Stopper, client_options, simulator_api
from ._streams import Stream, pump

REDRAW_INTERVAL = 0.25
PLAIN_HEALTH_INTERVAL = 2.0
RECENT_TRADES = 8
RATE_WINDOW = 3.0

# The simulator pauses between market steps; pinging in every pause measures the round trip
# all the time. Against WEEX, whose feed rarely pauses, a ping goes out after 5 quiet seconds.
SIMULATOR_TICK = 0.25
SIMULATOR_CLIENT_PING = 0.15
SIMULATOR_SERVER_PING = 2.0
LIVE_CLIENT_PING = 5.0
OTHER_SERVER_CLIENT_PING = 1.0  # --url: often a simulator, so measure the round trip now and then
RTT_INTERVAL = 1.0  # a busy feed never pauses for those pings: measure the round trip anyway


class RateMeter:
    """Messages per second over the last few seconds, from (time, running total) samples."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> None:
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
            self._samples.popleft()

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


@attrs.define
class DashboardState:
    """What the dashboard shows, updated from each message."""

    symbols: tuple[str, ...]
    depth: int = 10
    tickers: dict[str, Ticker] = attrs.field(factory=dict)
    book: Mapping[str, Any] | None = None
    trades: deque[Trade] = attrs.field(factory=lambda: deque(maxlen=RECENT_TRADES))
    messages: int = 0

    def update(self, message: WebSocketMessage[Any]) -> None:
        self.messages += 1
        if is_book(message):
            self.book = message.data
            return
        try:
            record = message.record
        except PayloadError:
            return
        if isinstance(record, Ticker):
            self.tickers[record.symbol] = record
        elif isinstance(record, Trade):
            self.trades.appendleft(record)


def _fmt(value: object, width: int) -> str:
    return f"{value!s:>{width}}"


TICKER_COLUMNS: tuple[tuple[str, int], ...] = (
    ("LAST", 13),
    ("MARK", 13),
    ("24H CHANGE", 11),
    ("24H HIGH", 13),
    ("24H LOW", 13),
    ("24H VOLUME", 15),
)
SYMBOL_WIDTH = 13
UNLIMITED = 1_000_000


def render(
    state: DashboardState,
    health: Health,
    *,
    connected: bool,
    rate: float,
    source: str,
    now: float,
    width: int | None = None,
    height: int | None = None,
    note: str | None = None,
) -> list[str]:
    """The whole screen as lines, fitted to `width` x `height` when given; `note` (the latest
    warning, see `LatestWarning`) ends the health lines.

    What matters most stays when space is short: the title, the tickers and the health line
    first, then the book's best levels and the latest trades, then the deeper levels and
    older trades, and blank lines between sections last. Ticker columns are dropped from the
    right when the screen is narrow. Lines may still be longer than `width` (the screen
    cuts them).
    """
    columns = width or UNLIMITED
    rows = height or UNLIMITED
    stamp = dt.datetime.fromtimestamp(now).strftime("%H:%M:%S")
    title = f"weex-ws demo  {stamp}  {source}"  # the source's tail is what a narrow screen cuts
    if len(title) + 19 <= columns:
        title += "  (Ctrl-C to quit)"
    tickers = _tickers(state, columns)
    health_lines = _health_lines(health, connected=connected, rate=rate, width=columns)
    if note:
        health_lines.append(f"        {note}"[:columns])
    book = _ladder(state)
    trades = _trades(state)

    essential = 1 + len(tickers) + len(health_lines)
    if rows < essential:  # not even the tickers fit: title, health, as many tickers as fit
        room = max(0, rows - 1 - len(health_lines))
        return ([title, *tickers[:room], *health_lines])[: max(rows, 1)]
    spare = rows - essential
    shown_book = shown_trades = 0  # lines of each section, headings included
    if spare >= 3:
        shown_book, spare = 3, spare - 3
    if spare >= 3:
        shown_trades, spare = 3, spare - 3
    grew = True
    while spare > 0 and grew:  # a level more, a trade more, in turn
        grew = False
        if shown_book and shown_book < len(book):
            shown_book, spare, grew = shown_book + 1, spare - 1, True
        if spare > 0 and shown_trades and shown_trades < len(trades):
            shown_trades, spare, grew = shown_trades + 1, spare - 1, True
    gaps = min(spare, 4)  # blank lines: after the title, the tickers, the book, the trades

    def gap(index: int) -> list[str]:
        return [""] if index < gaps else []

    lines = [title, *gap(0), *tickers, *gap(1)]
    if shown_book:
        lines += [*book[:shown_book], *gap(2)]
    if shown_trades:
        lines += [*trades[:shown_trades], *gap(3)]
    return [*lines, *health_lines]


def _tickers(state: DashboardState, width: int) -> list[str]:
    columns = list(TICKER_COLUMNS)
    while columns and SYMBOL_WIDTH + sum(size for _, size in columns) > width:
        columns.pop()
    lines = [
        "TICKERS",
        f"{'SYMBOL':<{SYMBOL_WIDTH}}" + "".join(f"{name:>{size}}" for name, size in columns),
    ]
    for symbol in state.symbols:
        ticker = state.tickers.get(symbol)
        if ticker is None:
            lines.append(f"{symbol:<{SYMBOL_WIDTH}}{'waiting...':>13}")
            continue
        values = (
            ticker.last_price,
            ticker.mark_price,
            f"{ticker.price_change_percent * 100:+.2f}%",
            ticker.high,
            ticker.low,
            ticker.size,
        )
        lines.append(
            f"{symbol:<{SYMBOL_WIDTH}}"
            + "".join(_fmt(value, size) for value, (_, size) in zip(values, columns, strict=False))
        )
    return lines


def _ladder(state: DashboardState) -> list[str]:
    book = state.book
    symbol = state.symbols[0]
    if book is None:
        return [f"ORDER BOOK {symbol}", "  waiting for the first snapshot..."]
    if book["resyncing"]:
        return [f"ORDER BOOK {symbol}", f"  resyncing: {book.get('reason', '')}"]
    bids: Sequence[tuple[Any, Any]] = book["bids"]
    asks: Sequence[tuple[Any, Any]] = book["asks"]
    spread = f"spread {asks[0][0] - bids[0][0]}" if bids and asks else "one side empty"
    lines = [
        f"ORDER BOOK {book['symbol']}  version {book['version']}  {spread}",
        f"{'BID SIZE':>14}{'BID':>14}  |  {'ASK':<14}{'ASK SIZE':<14}",
    ]
    for level in range(min(state.depth, max(len(bids), len(asks)))):
        bid = bids[level] if level < len(bids) else ("", "")
        ask = asks[level] if level < len(asks) else ("", "")
        lines.append(f"{bid[1]!s:>14}{bid[0]!s:>14}  |  {ask[0]!s:<14}{ask[1]!s:<14}")
    return lines


def _trades(state: DashboardState) -> list[str]:
    lines = ["RECENT TRADES", f"{'TIME':<14}{'SYMBOL':<15}{'SIDE':<6}{'PRICE':>14}{'SIZE':>14}"]
    if not state.trades:
        lines.append("  waiting for trades...")
    for trade in state.trades:
        when = dt.datetime.fromtimestamp(trade.time / 1000).strftime("%H:%M:%S.%f")[:-3]
        side = "sell" if trade.buyer_maker else "buy"
        lines.append(
            f"{when:<14}{trade.symbol:<15}{side:<6}{_fmt(trade.price, 14)}{trade.size!s:>14}"
        )
    return lines


def _health_lines(health: Health, *, connected: bool, rate: float, width: int) -> list[str]:
    """`HEALTH  connected | rtt ... | ...`, wrapped at a ` | ` to fit `width`."""
    # The public endpoint's (a WEEX client's), or the one endpoint of another source (NATS).
    public = health.endpoints.get("public") or next(iter(health.endpoints.values()), None)
    rtt = public.round_trip if public is not None else None
    rtt_text = f"{rtt * 1000:.2f} ms" if rtt is not None else "n/a"
    pings = public.pings_answered if public is not None else 0
    parts = [
        f"HEALTH  {'connected' if connected else 'DISCONNECTED'}",
        f"rtt {rtt_text}",
        f"pings answered {pings}",
        f"reconnects {health.reconnects}",
        f"{rate:.1f} msg/s",
        f"{health.messages} messages",
        f"book resyncs {health.book_resyncs}",
        f"errors {health.errors}",
    ]
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += f" | {part}"
        else:
            lines.append(f"        {part}")
    return lines


# --------------------------------------------------------------------------- terminal


class AnsiScreen:
    """Redraws whole frames in place: cursor home, each line cleared to its end, rest cleared."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._drawn_size: tuple[int, int] | None = None

    def open(self) -> None:
        self.stream.write("\x1b[?25l\x1b[2J\x1b[H")  # hide the cursor, clear the screen
        self.stream.flush()

    def size(self) -> os.terminal_size:
        """The terminal's size now (asked each frame, so a resize shows at the next one)."""
        try:
            return os.get_terminal_size(self.stream.fileno())
        except (AttributeError, ValueError, OSError):
            return shutil.get_terminal_size()

    def draw(self, lines: Callable[[int, int], Sequence[str]]) -> None:
        """Draw the lines made for the current size; the last row stays free (no scrolling)."""
        columns, rows = self.size()
        if (columns, rows) != self._drawn_size:
            self.stream.write("\x1b[2J")  # resized: nothing of the old layout may remain
            self._drawn_size = (columns, rows)
        height = max(1, rows - 1)
        shown = [line[:columns] for line in lines(columns, height)[:height]]
        self.stream.write("\x1b[H" + "".join(f"{line}\x1b[K\n" for line in shown) + "\x1b[J")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\x1b[?25h")  # the last frame stays on screen, the cursor below it
        self.stream.flush()


def wants_redraw(out: Output) -> bool:
    return out.is_tty and os.environ.get("TERM", "") != "dumb"


class LatestWarning(logging.Filter):
    """While the dashboard redraws the terminal, a log line written to that terminal would
    flash over it: the log handlers writing to a terminal keep quiet instead, and the latest
    warning (a reconnect, say) is shown on the dashboard's last line. Logs that go to a file or
    a pipe are left alone."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: str | None = None
        self._muted: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.latest = f"{record.levelname.lower()}: {record.getMessage()}"
        return False

    def __enter__(self) -> LatestWarning:
        for handler in logging.getLogger().handlers:
            stream = getattr(handler, "stream", None)
            isatty = getattr(stream, "isatty", None)
            if isatty is not None and isatty():
                handler.addFilter(self)
                self._muted.append(handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handler in self._muted:
            handler.removeFilter(self)
        self._muted.clear()


# --------------------------------------------------------------------------- the command


async def run_demo(args: argparse.Namespace, stopper: Stopper, out: Output) -> int:
    symbols = tuple(dict.fromkeys(args.symbols))
    state = DashboardState(symbols, depth=args.depth)
    if getattr(args, "nats", None):
        await _show_nats(args, state, stopper, out)
        return 0
    if args.live or args.url:
        overrides = {"public_url": args.url} if args.url else {}
        if args.api:
            overrides["api"] = args.api
        config = WeexConfig.from_env(**overrides)
        source = f"{'WEEX live' if args.live else 'server'} {config.url(False)}"
        ping = LIVE_CLIENT_PING if args.live else OTHER_SERVER_CLIENT_PING
        await _show(args, config, source, ping, state, stopper, out)
        return 0
    api = simulator_api(args.api)
    async with SimulatedWeexServer(
        symbols=symbols,
        tick_interval=SIMULATOR_TICK,
        ping_interval=SIMULATOR_SERVER_PING,
        trade_interval=None,
        api=api,
    ) as server:
        config = WeexConfig(public_url=server.public_url, private_url=server.private_url, api=api)
        source = f"simulator {server.public_url}"
        await _show(args, config, source, SIMULATOR_CLIENT_PING, state, stopper, out)
    return 0


@attrs.frozen
class Source:
    """Where the dashboard's messages come from: a description, the feed (which calls
    `deliver` with each message until it ends), and its health and connection state."""

    name: str
    feed: Callable[[Callable[[WebSocketMessage[Any]], None]], Coroutine[Any, Any, None]]
    health: Callable[[], Health]
    connected: Callable[[], bool]


async def _show(
    args: argparse.Namespace,
    config: WeexConfig,
    source: str,
    ping_interval: float,
    state: DashboardState,
    stopper: Stopper,
    out: Output,
) -> None:
    async with WeexWebSocketClient(
        config, ping_interval=ping_interval, rtt_interval=RTT_INTERVAL, **client_options(args)
    ) as client:
        streams: list[Stream] = [
            *(client.stream_tickers(symbol) for symbol in state.symbols),  # see _streams
            client.stream_order_book(state.symbols[0], level=state.depth),
            *(client.stream_trades(symbol) for symbol in state.symbols),
        ]

        async def feed(deliver: Callable[[WebSocketMessage[Any]], None]) -> None:
            await pump(streams, deliver)

        shown = Source(source, feed, lambda: client.health, lambda: client.is_connected)
        # Inside the client, so that stopping still closes the connection cleanly.
        await _present(shown, args, state, stopper, out)


async def _show_nats(
    args: argparse.Namespace, state: DashboardState, stopper: Stopper, out: Output
) -> None:
    from ._nats_feed import DashboardFeed
    from ._nats_link import without_credentials
    from ._relay import close_nats, connect_nats

    nc = await connect_nats(args.nats)
    try:
        feed = DashboardFeed(
            nc, state.symbols, depth=state.depth, prefix=args.prefix, lookback=args.lookback
        )
        name = f"NATS {without_credentials(args.nats)} ({args.prefix}.>)"
        shown = Source(name, feed.run, lambda: feed.health, lambda: feed.is_connected)
        await _present(shown, args, state, stopper, out)
    finally:
        await close_nats(nc)


async def _present(
    source: Source, args: argparse.Namespace, state: DashboardState, stopper: Stopper, out: Output
) -> None:
    redraw = wants_redraw(out)
    warnings = LatestWarning()
    meter = RateMeter()
    if not redraw:
        out.line(f"streaming from the {source.name} (Ctrl-C to stop)")

    def take(message: WebSocketMessage[Any]) -> None:
        if args.count is not None and state.messages >= args.count:
            return  # stopping; messages already buffered are not shown
        state.update(message)
        if not redraw:
            out.line(describe(message, book_levels=1))
        if args.count is not None and state.messages >= args.count:
            stopper.stop()

    def screen_lines(width: int | None = None, height: int | None = None) -> list[str]:
        health = source.health()
        meter.add(anyio.current_time(), health.messages)
        return render(
            state,
            health,
            connected=source.connected(),
            rate=meter.rate,
            source=source.name,
            now=time.time(),
            width=width,
            height=height,
            note=warnings.latest,
        )

    with stopper.scope, warnings if redraw else contextlib.nullcontext():
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(source.feed, take)
            if redraw:
                await _redraw(AnsiScreen(out.stream), screen_lines)
            else:
                while True:
                    await anyio.sleep(PLAIN_HEALTH_INTERVAL)
                    out.line(screen_lines()[-1].lower())


async def _redraw(screen: AnsiScreen, lines: Callable[[int, int], list[str]]) -> None:
    screen.open()
    try:
        while True:
            screen.draw(lines)
            await anyio.sleep(REDRAW_INTERVAL)
    finally:
        screen.draw(lines)  # the final state stays on screen
        screen.close()
