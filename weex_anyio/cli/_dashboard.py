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
import datetime as dt
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import anyio
import attrs

from weex_proto.config import WeexConfig
from weex_proto.events import WebSocketMessage
from weex_proto.health import Health
from weex_proto.messages import PayloadError, Ticker, Trade

from ..client import WeexWebSocketClient
from ..testing import SimulatedWeexServer
from ._output import describe, is_book
from ._runtime import Output, Stopper, client_options
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


def render(
    state: DashboardState,
    health: Health,
    *,
    connected: bool,
    rate: float,
    source: str,
    now: float,
) -> list[str]:
    """The whole screen as lines (not yet cut to the terminal's size)."""
    stamp = dt.datetime.fromtimestamp(now).strftime("%H:%M:%S")
    lines = [f"weex-ws demo  {source}  {stamp}  (Ctrl-C to quit)", ""]

    lines.append("TICKERS")
    lines.append(
        f"{'SYMBOL':<15}{'LAST':>14}{'MARK':>14}{'24H CHANGE':>12}"
        f"{'24H HIGH':>14}{'24H LOW':>14}{'24H VOLUME':>16}"
    )
    for symbol in state.symbols:
        ticker = state.tickers.get(symbol)
        if ticker is None:
            lines.append(f"{symbol:<15}{'waiting...':>14}")
            continue
        change = f"{ticker.price_change_percent * 100:+.2f}%"
        lines.append(
            f"{symbol:<15}{_fmt(ticker.last_price, 14)}{_fmt(ticker.mark_price, 14)}"
            f"{change:>12}{_fmt(ticker.high, 14)}{_fmt(ticker.low, 14)}{_fmt(ticker.size, 16)}"
        )
    lines.append("")
    lines.extend(_ladder(state))
    lines.append("")
    lines.extend(_trades(state))
    lines.append("")
    lines.append(_health_line(health, connected=connected, rate=rate))
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


def _health_line(health: Health, *, connected: bool, rate: float) -> str:
    public = health.endpoints.get("public")
    rtt = public.round_trip if public is not None else None
    rtt_text = f"{rtt * 1000:.2f} ms" if rtt is not None else "n/a"
    pings = public.pings_answered if public is not None else 0
    state = "connected" if connected else "DISCONNECTED"
    return (
        f"HEALTH  {state} | rtt {rtt_text} | pings answered {pings} | "
        f"reconnects {health.reconnects} | {rate:.1f} msg/s | {health.messages} messages | "
        f"book resyncs {health.book_resyncs} | errors {health.errors}"
    )


# --------------------------------------------------------------------------- terminal


class AnsiScreen:
    """Redraws whole frames in place: cursor home, each line cleared to its end, rest cleared."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def open(self) -> None:
        self.stream.write("\x1b[?25l\x1b[2J\x1b[H")  # hide the cursor, clear the screen
        self.stream.flush()

    def draw(self, lines: Sequence[str]) -> None:
        size = shutil.get_terminal_size()
        shown = [line[: size.columns] for line in lines[: max(1, size.lines - 1)]]
        self.stream.write("\x1b[H" + "".join(f"{line}\x1b[K\n" for line in shown) + "\x1b[J")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\x1b[?25h")  # the last frame stays on screen, the cursor below it
        self.stream.flush()


def wants_redraw(out: Output) -> bool:
    return out.is_tty and os.environ.get("TERM", "") != "dumb"


# --------------------------------------------------------------------------- the command


async def run_demo(args: argparse.Namespace, stopper: Stopper, out: Output) -> int:
    symbols = tuple(dict.fromkeys(args.symbols))
    state = DashboardState(symbols, depth=args.depth)
    if args.live:
        config = WeexConfig.from_env()
        source = f"WEEX live {config.public_url}"
        await _show(args, config, source, LIVE_CLIENT_PING, state, stopper, out)
        return 0
    async with SimulatedWeexServer(
        symbols=symbols,
        tick_interval=SIMULATOR_TICK,
        ping_interval=SIMULATOR_SERVER_PING,
        trade_interval=None,
    ) as server:
        config = WeexConfig(public_url=server.public_url, private_url=server.private_url)
        source = f"simulator {server.public_url}"
        await _show(args, config, source, SIMULATOR_CLIENT_PING, state, stopper, out)
    return 0


async def _show(
    args: argparse.Namespace,
    config: WeexConfig,
    source: str,
    ping_interval: float,
    state: DashboardState,
    stopper: Stopper,
    out: Output,
) -> None:
    redraw = wants_redraw(out)
    meter = RateMeter()
    if not redraw:
        out.line(f"streaming from the {source} (Ctrl-C to stop)")

    async with WeexWebSocketClient(
        config, ping_interval=ping_interval, **client_options(args)
    ) as client:

        def take(message: WebSocketMessage[Any]) -> None:
            if args.count is not None and state.messages >= args.count:
                return  # stopping; messages already buffered are not shown
            state.update(message)
            if not redraw:
                out.line(describe(message))
            if args.count is not None and state.messages >= args.count:
                stopper.stop()

        def screen_lines() -> list[str]:
            now = anyio.current_time()
            meter.add(now, client.health.messages)
            return render(
                state,
                client.health,
                connected=client.is_connected,
                rate=meter.rate,
                source=source,
                now=time.time(),
            )

        streams: list[Stream] = [
            client.stream_tickers(state.symbols),
            client.stream_order_book(state.symbols[0], level=state.depth),
            *(client.stream_trades(symbol) for symbol in state.symbols),
        ]
        # Inside the client, so that stopping still closes the connection cleanly.
        with stopper.scope:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(pump, streams, take)
                if redraw:
                    await _redraw(AnsiScreen(out.stream), screen_lines)
                else:
                    while True:
                        await anyio.sleep(PLAIN_HEALTH_INTERVAL)
                        out.line(screen_lines()[-1].lower())


async def _redraw(screen: AnsiScreen, lines: Callable[[], list[str]]) -> None:
    screen.open()
    try:
        while True:
            screen.draw(lines())
            await anyio.sleep(REDRAW_INTERVAL)
    finally:
        screen.draw(lines())  # the final state stays on screen
        screen.close()
