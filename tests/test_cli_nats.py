"""`weex-ws dashboard --nats`: the dashboard fed from JetStream instead of WEEX.

A real `nats-server -js`, a real `weex-ws relay` in front of the simulator, and the dashboard
as a real process: as plain lines (every value checked against what a reference client got
from the same simulator) and on a pseudo-terminal read through pyte, like the WEEX dashboard
in test_cli.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.natsserver import (
    HANG_GUARD,
    ROOT,
    NatsServer,
    cli_env,
    reap,
    running_nats_server,
    weex_ws_command,
)
from tests.proxyserver import free_port
from tests.test_cli import terminal_session, wait_for_screen
from tests.test_first_run import simulate_process
from weex_anyio import WeexWebSocketClient
from weex_anyio.cli import run
from weex_anyio.cli._parser import build_parser
from weex_anyio.testing import SimulatedWeexServer
from weex_proto.config import WeexConfig
from weex_proto.messages import DepthUpdate, Ticker, Trade
from weex_proto.orderbook import Applied, OrderBook

SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt")
TICKER_LINE = re.compile(r"  ticker (\S+)\s+last\s+(\S+)\s+mark\s+(\S+)\s+24h")
TRADE_LINE = re.compile(r"  trade  (\S+)\s+(buy|sell)\s+(\S+) @ (\S+)$")
BOOK_LINE = re.compile(r"  book   (\S+)\s+bid\s+(\S+) x (\S+)\s+ask\s+(\S+) x (\S+)\s+spread")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats_server(tmp_path)


class Seen:
    """Everything a plain client got from the simulator: tickers, trades, and its own book's
    best levels at every version."""

    def __init__(self) -> None:
        self.tickers: set[tuple[str, str, str]] = set()
        self.trades: set[tuple[str, str, str, str]] = set()
        self.books: set[tuple[str, str, str, str]] = set()
        self.book = OrderBook(SYMBOLS[0], 15)
        self.depth_records = 0
        self.marked = False
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        with anyio.fail_after(HANG_GUARD):
            while not predicate():
                self._changed = anyio.Event()
                await self._changed.wait()

    def on_message(self, message: Any) -> None:
        self._changed.set()
        if message.data.get("marker"):
            self.marked = True
            return
        record = message.record
        if isinstance(record, Ticker):
            self.tickers.add((record.symbol, str(record.last_price), str(record.mark_price)))
        elif isinstance(record, Trade):
            side = "sell" if record.buyer_maker else "buy"
            self.trades.add((record.symbol, side, str(record.size), str(record.price)))
        elif isinstance(record, DepthUpdate) and record.symbol == SYMBOLS[0]:
            self.depth_records += 1
            if isinstance(self.book.apply(record), Applied):
                (bid, bid_size), (ask, ask_size) = self.book.bids(1)[0], self.book.asks(1)[0]
                self.books.add((str(bid), str(bid_size), str(ask), str(ask_size)))


def test_the_dashboard_prints_what_the_relay_published(nats_server: NatsServer) -> None:
    async def main() -> None:
        async with SimulatedWeexServer(
            symbols=SYMBOLS, tick_interval=0.05, trade_interval=None, ping_interval=None
        ) as sim, anyio.create_task_group() as tg:  # fmt: skip
            sim.pause_market()
            relay = anyio.CancelScope()
            args = build_parser().parse_args(
                ["relay", *SYMBOLS, "--url", sim.public_url, "--nats", nats_server.url,
                 "--snapshot-interval", "0.5"]
            )  # fmt: skip
            tg.start_soon(_relay, args, relay)
            seen = Seen()
            async with WeexWebSocketClient(WeexConfig(public_url=sim.public_url)) as client:
                channels = [f"{kind}.{s}" for s in SYMBOLS for kind in ("ticker", "trades")]
                channels.append(f"depth.{SYMBOLS[0]}.15")
                for channel in channels:
                    client.add_message_handler(channel, seen.on_message)
                    await client.subscribe(channel)
                await sim.wait_until(  # by the relay and by this client
                    lambda: all(
                        sum(channel in c.subscriptions for c in sim.connections) == 2
                        for channel in channels
                    ),
                    HANG_GUARD,
                )
                sim.resume_market()
                await seen.wait_for(lambda: seen.depth_records >= 10)
                lines, code = await _dashboard_lines(
                    nats_server.url,
                    lambda lines: (
                        {"ticker", "trade", "book"} <= kinds_of(lines) and len(lines) > 40
                    ),
                )
                sim.pause_market()
                # What the dashboard printed came through the relay from pushes this client
                # got too: once it has a marker sent after the pause, it has all of them.
                row = {"symbol": SYMBOLS[0], "lastPrice": "1", "markPrice": "1", "marker": "1"}
                frame = {"event": "payload", "channel": f"ticker.{SYMBOLS[0]}", "data": [row]}
                await sim.send_raw(json.dumps(frame))
                await seen.wait_for(lambda: seen.marked)
            relay.cancel()
        assert code == 0
        assert lines[0].startswith(f"streaming from the NATS {nats_server.url} (weex.>)")
        checked = {"ticker": 0, "trade": 0, "book": 0}
        for line in lines[1:]:
            if found := TICKER_LINE.search(line):
                assert found.groups() in seen.tickers, line
                checked["ticker"] += 1
            elif found := TRADE_LINE.search(line):
                assert found.groups() in seen.trades, line
                checked["trade"] += 1
            elif found := BOOK_LINE.search(line):
                symbol, *best = found.groups()
                assert symbol == SYMBOLS[0] and tuple(best) in seen.books, line
                assert Decimal(best[0]) < Decimal(best[2])  # a real, uncrossed book
                checked["book"] += 1
            else:
                assert line.startswith("health "), line  # the plain health line
        assert all(checked.values()), checked

    anyio.run(main, backend="asyncio")


async def _relay(args: Any, scope: anyio.CancelScope) -> None:
    with scope:
        await run(args, io.StringIO(), io.StringIO())


def kinds_of(lines: list[str]) -> set[str]:
    """The kinds of record line among `lines` (`ticker`, `trade`, `book`)."""
    return {line.split()[1] for line in lines[1:] if len(line.split()) > 1}


async def _dashboard_lines(
    nats_url: str, enough: Callable[[list[str]], bool]
) -> tuple[list[str], int | None]:
    """`weex-ws dashboard --nats URL` as a process, its lines read until `enough`; then a
    SIGTERM, which it answers with exit code 0."""
    command = weex_ws_command("dashboard", *SYMBOLS, "--nats", nats_url)
    lines: list[str] = []
    process = await anyio.open_process(command, cwd=ROOT, env=cli_env(), stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        pending = b""
        with anyio.fail_after(HANG_GUARD):
            async for chunk in process.stdout:
                *complete, pending = (pending + chunk).split(b"\n")
                lines.extend(line.decode() for line in complete)
                if enough(lines):
                    break
        process.terminate()
        with anyio.fail_after(HANG_GUARD):
            await process.wait()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()
    return lines, process.returncode


# --------------------------------------------------------------------------- on a terminal


def test_the_dashboard_from_nats_redraws_in_a_terminal(nats_server: NatsServer) -> None:
    with simulate_process("BTCUSDT", "ETHUSDT", "SOLUSDT") as (_, banner):
        relay = subprocess.Popen(  # noqa: S603 - our own command
            weex_ws_command(
                "relay", "BTCUSDT", "ETHUSDT", "SOLUSDT", "--url", banner["public URL"],
                "--nats", nats_server.url, "--snapshot-interval", "1",
            ),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=cli_env(),
        )  # fmt: skip
        try:
            anyio.run(_wait_for_a_trade, nats_server.url, backend="asyncio")
            _check_terminal_dashboard(nats_server.url)
        finally:
            reap(relay)


async def _wait_for_a_trade(nats_url: str) -> None:
    """Until the relay has published a trade (its book snapshot is older): a hang guard."""
    import nats
    from nats.js.api import DeliverPolicy

    with anyio.fail_after(HANG_GUARD):
        while True:  # the stream appears once the relay is connected
            nc = await nats.connect(nats_url)
            try:
                js = nc.jetstream()
                try:
                    sub = await js.subscribe(
                        "weex.trades.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
                    )
                except nats.js.errors.NotFoundError:
                    await anyio.sleep(0.1)
                    continue
                await sub.next_msg(timeout=HANG_GUARD)
                await sub.unsubscribe()
                return
            finally:
                await nc.close()


def _check_terminal_dashboard(nats_url: str) -> None:
    dashboard = shlex.join(weex_ws_command("dashboard", "--nats", nats_url, "--duration", "8"))
    command = f"{dashboard}; echo EXIT=$?; sleep 60"
    trade_row = r"\d{2}:\d{2}:\d{2}\.\d{3}\s+cmt_\w+\s+(buy|sell)"
    health_line = (
        r"HEALTH\s+connected \| rtt [\d.]+ ms \| pings answered \d+ \| reconnects 0 \|"
        r" [\d.]+ msg/s"
    )
    ladder_row = r"\s+[\d.]+\s+[\d.]+\s+\|\s+[\d.]+\s+[\d.]+\s*"
    with terminal_session(command) as capture:

        def ready(screen: str) -> bool:
            rows = [line for line in screen.splitlines() if line.startswith("cmt_")]
            return bool(
                re.search(trade_row, screen)
                and re.search(health_line, screen)
                and re.search(ladder_row, screen)
                and len(rows) >= 3
                and "waiting" not in screen
            )

        screen = wait_for_screen(capture, ready)
        lines = screen.splitlines()
        assert screen.count("TICKERS") == 1  # redrawn in place, not scrolled
        assert f"NATS {nats_url} (weex.>)" in lines[0]
        for symbol in ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt"):
            row = next(line for line in lines if line.startswith(symbol))
            assert Decimal(row.split()[1]) > 0
        assert "ORDER BOOK cmt_btcusdt" in screen
        ladder = [
            [Decimal(v) for v in re.findall(r"[\d.]+", line)]
            for line in lines
            if re.fullmatch(ladder_row, line)
        ]
        assert ladder and ladder[0][1] < ladder[0][2]  # best bid below best ask
        assert "RECENT TRADES" in screen
        assert re.search(health_line, screen)
        finished = wait_for_screen(capture, lambda s: "EXIT=" in s)
        assert "EXIT=0" in finished


def test_the_dashboard_without_nats_fails_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("nats", reason="nats-py is not installed (pip install 'weex-ws[nats]')")
    from weex_anyio.cli import _relay, main

    monkeypatch.setattr(_relay, "CONNECT_TIMEOUT", 0.5)
    url = f"nats://someone:s3cret@127.0.0.1:{free_port()}"
    assert main(["dashboard", "--nats", url, "--count", "1"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach NATS" in err and "s3cret" not in err
    assert len(err.strip().splitlines()) == 1
