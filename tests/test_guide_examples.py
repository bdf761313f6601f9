"""The guide's example programs (`examples/guide/`), run as a user runs them, print real values.

Each test starts the simulator with its market paused, so nothing reaches the client but what
the test pushes; runs `python examples/guide/NAME.py` with the environment `WeexConfig.from_env()`
reads pointing at the simulator; waits until the program has subscribed; pushes frames of known
values (`send_push` with the protocol reference's example frames, or `simulate_trade`); and checks
that the lines the program prints, or the rows it stores, carry exactly those values: no `N/A`,
`None` or `$0.00` where the exchange sent a value. The guide's programs run until interrupted:
each test stops its program once it has read what it needs, and reaps it whatever happens.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from examples import _common
from tests import fixtures_messages as fixtures
from weex_anyio.testing import SimulatedTrade, SimulatedWeexServer

ROOT = Path(__file__).resolve().parent.parent
GUIDE_EXAMPLES = ROOT / "examples" / "guide"
GUIDE_NAME = "websocket-api-guide.txt"
"""The product documentation (not shipped in the repository): `WEEX_WS_GUIDE` names the file,
else a `shared/` folder beside the checkout or above it holds it."""
BEGIN = "# ---- the guide's code, verbatim "
END = "# ---- end of the guide's code "
CHANGED_IMPORT = "from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client"

HANG_LIMIT = 60.0
"""Seconds after which a program that has not printed what the test waits for is taken to hang.

Starting a Python process and connecting takes well under a second on an idle machine; the
margin is for a busy 2-core one. It only turns a hang into a failure, nothing is timed.
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["v2", "v3"])
def api(request: pytest.FixtureRequest) -> str:
    """Each guide example runs on both of WEEX's protocol generations: the simulator speaks
    the one asked for, the program reads its URLs from the environment (a `/v3/` URL chooses
    v3), and the test's v2 frames go out as v3 frames on v3 (`send_push`)."""
    param: str = request.param
    return param


# -- running one example ----------------------------------------------------------------------


class ProgramEnded(AssertionError):
    """The example exited (or closed its output) before printing what the test waited for."""


class Program:
    """A running guide example: its stdout read line by line, its stderr kept in a file."""

    def __init__(self, process: anyio.abc.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.output: list[str] = []
        self._pending = b""

    def report(self) -> str:
        """What the program printed so far, and its stderr, for failure messages."""
        errors = self.stderr.read_text(errors="replace") if self.stderr.exists() else ""
        return "stdout:\n" + "\n".join(self.output) + "\nstderr:\n" + errors

    async def _next_line(self) -> str:
        assert self.process.stdout is not None
        while b"\n" not in self._pending:
            try:
                self._pending += await self.process.stdout.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise ProgramEnded(f"the example ended early\n{self.report()}") from None
        line, self._pending = self._pending.split(b"\n", 1)
        text = line.decode()
        self.output.append(text)
        return text

    async def matches(self, pattern: re.Pattern[str], count: int = 1) -> list[re.Match[str]]:
        """Read lines until `count` of them match `pattern` (other lines stay in `output`)."""
        found: list[re.Match[str]] = []
        with anyio.move_on_after(HANG_LIMIT) as scope:
            while len(found) < count:
                match = pattern.fullmatch(await self._next_line())
                if match is not None:
                    found.append(match)
        if scope.cancelled_caught:
            raise AssertionError(
                f"{len(found)} of {count} lines matching {pattern.pattern!r}\n{self.report()}"
            )
        return found

    async def line(self, predicate: Callable[[str], bool]) -> str:
        """Read lines until one satisfies `predicate`; return it."""
        with anyio.move_on_after(HANG_LIMIT):
            while True:
                text = await self._next_line()
                if predicate(text):
                    return text
        raise AssertionError(f"no line the test waited for\n{self.report()}")


def example_environment(server: SimulatedWeexServer) -> dict[str, str]:
    """The caller's environment with `WeexConfig.from_env()` pointed at `server`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEEX_")}
    credentials = server.credentials
    env.update(
        WEEX_WS_PUBLIC_URL=server.public_url,
        WEEX_WS_PRIVATE_URL=server.private_url,
        WEEX_API_KEY=credentials.api_key,
        WEEX_SECRET_KEY=credentials.secret_key,
        WEEX_PASSPHRASE=credentials.passphrase,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",  # the guide's prints must reach the pipe as they happen
        PYTHONIOENCODING="utf-8",  # and its emoji must survive a C locale
    )
    return env


@asynccontextmanager
async def guide_example(
    name: str, cwd: Path, **simulator_options: Any
) -> AsyncIterator[tuple[Program, SimulatedWeexServer]]:
    """Run `examples/guide/NAME.py` against a paused simulator; kill and reap it on the way out.

    A failed check inside the block is re-raised after the simulator has stopped, so it reaches
    pytest as itself rather than inside the simulator's task-group exception group.
    """
    failure: Exception | None = None
    async with _common.simulator(**simulator_options) as exchange:
        server = exchange.server
        assert server is not None
        server.pause_market()  # no step has run yet: the client sees only what the test pushes
        stderr = cwd / f"{name}.stderr"
        with stderr.open("wb") as errors:
            process = await anyio.open_process(
                [sys.executable, str(GUIDE_EXAMPLES / f"{name}.py")],
                cwd=cwd,
                env=example_environment(server),
                stdout=subprocess.PIPE,
                stderr=errors,
            )
        try:
            yield Program(process, stderr), server
        except Exception as exc:
            failure = exc
        finally:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(ProcessLookupError):  # it may have just exited
                    process.kill()
                await process.wait()
                await process.aclose()
    if failure is not None:
        raise failure


async def subscribed(server: SimulatedWeexServer, *channels: str) -> None:
    for channel in channels:
        await server.wait_for_subscription(channel, timeout=HANG_LIMIT)


# -- frames of known values -------------------------------------------------------------------


def ticker_push(
    last: str,
    *,
    symbol: str = "cmt_btcusdt",
    size: str = "176145.66489",
    percent: str = "-0.019637",
    mark: str | None = None,
) -> str:
    """The reference's ticker push with the given values (`percent` is WEEX's fraction)."""
    frame = copy.deepcopy(fixtures.TICKER_PUSH)
    frame["channel"] = f"ticker.{symbol}"
    frame["data"][0].update(
        symbol=symbol,
        lastPrice=last,
        size=size,
        priceChangePercent=percent,
        markPrice=last if mark is None else mark,
    )
    return json.dumps(frame)


def percent_of(fraction: str) -> Decimal:
    return Decimal(fraction) * 100


def private_push(channel: str, key: str, record: dict[str, Any], version: int) -> str:
    frame = copy.deepcopy(fixtures.ALL_PUSHES[channel])
    frame["msg"]["version"] = version
    frame["msg"]["data"] = {key: [record]}
    return json.dumps(frame)


def stamp_between(text: str, before: float, after: float) -> None:
    """`message.timestamp` is the wall time the push arrived: inside the test's window."""
    assert before <= float(text) <= after


TS = r"(?P<ts>\d+\.\d+)"


# -- the examples -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_context_manager_prints_one_ticker_record_per_push(tmp_path: Path, api: str) -> None:
    async with guide_example("context_manager", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        await server.send_push(ticker_push("101234.5", size="1500.12345"))
        await server.send_push(ticker_push("101240.0", size="1500.22345"))
        lines = await program.matches(re.compile(r"Ticker: (?P<data>.*)"), count=2)
    for match, last, size in zip(
        lines, ["101234.5", "101240.0"], ["1500.12345", "1500.22345"], strict=True
    ):
        data = match["data"]
        # `message.data` is the ticker record (not the whole frame), with the guide's names.
        assert f"'last': '{last}'" in data
        assert f"'volume': '{size}'" in data
        assert "'symbol': 'cmt_btcusdt'" in data
        assert "'event'" not in data and "'channel'" not in data


MARKET_LINE = re.compile(
    TS + r": BTC/USDT = \$(?P<price>\S+) \| Volume: (?P<volume>\S+) \| Change: (?P<change>\S+)%"
)


@pytest.mark.anyio
async def test_market_monitoring_prints_last_volume_and_change_in_percent(
    tmp_path: Path,
    api: str,
) -> None:
    pushed = [
        ("101234.5", "176145.66489", "-0.019637"),
        ("101301.2", "176146.01000", "0.004500"),
        ("99999.9", "176150.00000", "0"),
    ]
    async with guide_example("market_monitoring", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        before = time.time()
        for last, size, percent in pushed:
            await server.send_push(ticker_push(last, size=size, percent=percent))
        lines = await program.matches(MARKET_LINE, count=len(pushed))
        after = time.time()
    assert program.output[0] == "📊 Monitoring BTC/USDT..."
    for match, (last, size, percent) in zip(lines, pushed, strict=True):
        stamp_between(match["ts"], before, after)
        assert match["price"] == last
        assert match["volume"] == size
        # WEEX's priceChangePercent is a fraction; the guide prints `change` followed by "%".
        assert Decimal(match["change"]) == percent_of(percent)


def depth_snapshot(
    version: int, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]
) -> str:
    frame = copy.deepcopy(fixtures.DEPTH_PUSH)
    frame["data"][0].update(
        startVersion=str(version),
        endVersion=str(version),
        depthType="SNAPSHOT",
        bids=[{"price": p, "size": s} for p, s in bids],
        asks=[{"price": p, "size": s} for p, s in asks],
    )
    return json.dumps(frame)


def depth_changed(
    start: int, end: int, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]
) -> str:
    frame = copy.deepcopy(fixtures.DEPTH_PUSH)
    frame["data"][0].update(
        startVersion=str(start),
        endVersion=str(end),
        bids=[{"price": p, "size": s} for p, s in bids],
        asks=[{"price": p, "size": s} for p, s in asks],
    )
    return json.dumps(frame)


def book_blocks(output: Sequence[str]) -> list[tuple[list[str], list[str]]]:
    """The (bid lines, ask lines) of every "Order Book Snapshot" the program printed."""
    blocks: list[tuple[list[str], list[str]]] = []
    side: list[str] | None = None
    for text in output:
        if text == "📊 Order Book Snapshot:":
            blocks.append(([], []))
        elif text == "Bids:" and blocks:
            side = blocks[-1][0]
        elif text == "Asks:" and blocks:
            side = blocks[-1][1]
        elif text.startswith("  ") and side is not None:
            side.append(text)
    return blocks


def ladder(levels: Sequence[tuple[str, str]]) -> list[str]:
    return [f"  {i}. ${price} - {size}" for i, (price, size) in enumerate(levels, 1)]


@pytest.mark.anyio
async def test_order_book_monitoring_prints_the_top_three_levels_of_the_pushed_book(
    tmp_path: Path,
    api: str,
) -> None:
    bids = [
        ("103435.9", "2.40500"),
        ("103435.6", "0.32700"),
        ("103435.1", "1.00000"),
        ("103434.0", "7.00000"),
    ]
    asks = [
        ("103436.1", "0.91500"),
        ("103436.3", "1.95800"),
        ("103436.6", "1.08300"),
        ("103437.0", "3.00000"),
    ]
    async with guide_example("order_book_monitoring", tmp_path, api=api) as (program, server):
        await subscribed(server, "depth.cmt_btcusdt.15")
        version = server.depth_version("cmt_btcusdt") + 1000  # newer than the simulator's book
        await server.send_push(depth_snapshot(version, bids, asks))
        # Then a delta: the best bid leaves, a better ask arrives, an ask changes size.
        await server.send_push(
            depth_changed(
                version + 1,
                version + 3,
                [("103435.9", "0")],
                [("103436.0", "0.50000"), ("103436.3", "0.00100")],
            )
        )
        await program.line(lambda text: text == "  3. $103436.3 - 0.00100")  # the delta's end
    blocks = book_blocks(program.output)
    # The first block is the simulator's own snapshot, sent when the program subscribed.
    assert blocks[-2] == (ladder(bids[:3]), ladder(asks[:3]))
    assert blocks[-1] == (
        ladder([bids[1], bids[2], bids[3]]),
        ladder([("103436.0", "0.50000"), ("103436.1", "0.91500"), ("103436.3", "0.00100")]),
    )


TRADE_LINE = re.compile(TS + r" (?P<emoji>\S+) (?P<size>\S+) BTC @ \$(?P<price>\S+)")


@pytest.mark.anyio
async def test_trade_monitoring_prints_every_trade_of_a_push_with_the_taker_side(
    tmp_path: Path,
    api: str,
) -> None:
    # buyerMaker true: the buyer was resting, so the taker sold.
    rows = [
        ("103337.5", "0.01600", True),
        ("103337.6", "0.20000", False),
        ("103337.4", "1.00000", True),
    ]
    frame = copy.deepcopy(fixtures.TRADES_PUSH)
    frame["data"] = [
        {"time": "1747131727502", "price": p, "size": s, "value": "0", "buyerMaker": maker}
        for p, s, maker in rows
    ]
    async with guide_example("trade_monitoring", tmp_path, api=api) as (program, server):
        await subscribed(server, "trades.cmt_btcusdt")
        await server.send_push(json.dumps(frame))
        lines = await program.matches(TRADE_LINE, count=len(rows))
    for match, (price, size, buyer_maker) in zip(lines, rows, strict=True):
        assert match["price"] == price
        assert match["size"] == size
        assert match["emoji"] == ("🔴" if buyer_maker else "🟢")


ACCOUNT_LINE = re.compile(
    TS + r": Balance: (?P<balance>\S+) \| Available: (?P<available>\S+) \| Frozen: (?P<frozen>\S+)"
)


@pytest.mark.anyio
async def test_account_updates_print_the_collateral_amount_as_balance(
    tmp_path: Path, api: str
) -> None:
    amounts = ["6625267.708162", "6625001.000000"]
    record = fixtures.ACCOUNT_PUSH["msg"]["data"]["collateral"][0]
    async with guide_example("account_updates", tmp_path, api=api) as (program, server):
        await subscribed(server, "account")
        for version, amount in enumerate(amounts, 50_000):
            await server.send_push(
                private_push("account", "collateral", {**record, "amount": amount}, version)
            )
        lines = await program.matches(ACCOUNT_LINE, count=len(amounts))
    for match, amount in zip(lines, amounts, strict=True):
        assert match["balance"] == amount
        # WEEX sends nothing that `available` or `frozen` could honestly mean, so the record
        # leaves them out and the guide's `.get(key, "N/A")` prints its default (see README).
        assert (match["available"], match["frozen"]) == ("N/A", "N/A")


POSITION_LINE = re.compile(
    TS + r": (?P<symbol>\S+) (?P<side>\S+) (?P<size>\S+) \| PnL: (?P<pnl>\S+)"
)


@pytest.mark.anyio
async def test_position_monitoring_prints_symbol_side_size_and_pnl(
    tmp_path: Path, api: str
) -> None:
    async with guide_example("position_monitoring", tmp_path, api=api) as (program, server):
        await subscribed(server, "positions")
        opened = await server.simulate_trade("cmt_btcusdt", "BUY", "0.02")
        [first] = await program.matches(POSITION_LINE)
        # The client follows the mark price of every contract it holds a position in.
        await subscribed(server, "ticker.cmt_btcusdt")
        mark = Decimal(opened.price) - 250
        await server.send_push(ticker_push(opened.price, mark=f"{mark}"))
        reduced = await server.simulate_trade("cmt_btcusdt", "SELL", "0.005")
        [second] = await program.matches(POSITION_LINE)
    assert (first["symbol"], first["side"], first["size"]) == ("cmt_btcusdt", "LONG", "0.02000")
    # No mark price was known yet when the first record came: the client leaves
    # `unrealized_pnl` out rather than guess it (README), and the guide prints its default.
    assert first["pnl"] == "N/A"
    assert (second["symbol"], second["side"], second["size"]) == ("cmt_btcusdt", "LONG", "0.01500")
    # Both fills were at the paused market's one price, so that is the entry price.
    assert reduced.price == opened.price
    assert Decimal(second["pnl"]) == (mark - Decimal(opened.price)) * Decimal("0.015")


ORDER_LINE = re.compile(
    TS + r" (?P<emoji>\S+) Order (?P<id>\S+): (?P<symbol>\S+) (?P<size>\S+) \((?P<status>\S+)\)"
)
STATUS_EMOJI = {
    "new": "🆕",
    "partially_filled": "⚡",
    "filled": "✅",
    "canceled": "❌",
    "rejected": "🚫",
}


@pytest.mark.anyio
async def test_order_updates_print_id_symbol_size_and_the_documented_status(
    tmp_path: Path,
    api: str,
) -> None:
    template = fixtures.ORDERS_PUSH["msg"]["data"]["order"][0]
    partial = {
        **template,
        "id": "617414920861909700",
        "status": "PENDING",
        "cumFillSize": "0.04000",
    }
    canceled = {**template, "id": "617414920861909701", "status": "CANCELED"}
    async with guide_example("order_updates", tmp_path, api=api) as (program, server):
        await subscribed(server, "orders")
        trade: SimulatedTrade = await server.simulate_trade("cmt_btcusdt", "BUY", "0.03")
        await server.send_push(private_push("orders", "order", partial, 60_000))
        await server.send_push(private_push("orders", "order", canceled, 60_001))
        lines = await program.matches(ORDER_LINE, count=4)
    expected = [
        (trade.order_id, "cmt_btcusdt", trade.size, "new"),  # WEEX's PENDING, nothing filled
        (trade.order_id, "cmt_btcusdt", trade.size, "filled"),
        (partial["id"], "cmt_btcusdt", "0.10000", "partially_filled"),
        (canceled["id"], "cmt_btcusdt", "0.10000", "canceled"),
    ]
    assert [(m["id"], m["symbol"], m["size"], m["status"]) for m in lines] == expected
    assert [m["emoji"] for m in lines] == [STATUS_EMOJI[status] for *_, status in expected]


@pytest.mark.anyio
async def test_multi_symbol_monitoring_prints_each_symbols_own_price(
    tmp_path: Path, api: str
) -> None:
    # The guide watches ADAUSDT too, which the simulator lists only when asked.
    symbols = ("cmt_btcusdt", "cmt_ethusdt", "cmt_adausdt")
    prices = {"cmt_btcusdt": "101234.5", "cmt_ethusdt": "2451.37", "cmt_adausdt": "0.7712"}
    async with guide_example("multi_symbol", tmp_path, symbols=symbols, api=api) as (
        program,
        server,
    ):
        await subscribed(server, *(f"ticker.{s}" for s in symbols))
        for symbol in symbols:
            await server.send_push(ticker_push(prices[symbol], symbol=symbol))
        lines = await program.matches(re.compile(r"(?P<name>\w+USDT): \$(?P<price>\S+)"), 3)
    printed = {m["name"]: m["price"] for m in lines}
    assert printed == {"BTCUSDT": "101234.5", "ETHUSDT": "2451.37", "ADAUSDT": "0.7712"}


ANALYSIS_LINE = re.compile(
    TS + r": \S+ (?P<kind>BUY signal|SELL signal|HOLD) - Price: \$(?P<price>\S+), "
    r"MA: \$(?P<ma>\S+)"
)


def guide_signals(prices: Sequence[float], period: int = 20) -> list[tuple[str, str, str]]:
    """What the guide's analysis must print for `prices`, recomputed here."""
    out = []
    for i in range(period - 1, len(prices)):
        window = prices[i + 1 - period : i + 1]
        average = sum(window) / len(window)
        price = prices[i]
        kind = (
            "BUY signal"
            if price > average * 1.02
            else "SELL signal"
            if price < average * 0.98
            else "HOLD"
        )
        out.append((kind, f"{price:.2f}", f"{average:.2f}"))
    return out


@pytest.mark.anyio
async def test_real_time_analysis_signals_follow_the_pushed_prices(
    tmp_path: Path, api: str
) -> None:
    texts = [f"{100000 + 10 * i}.5" for i in range(20)] + ["104000.0", "96000.0", "100100.0"]
    expected = guide_signals([float(t) for t in texts])
    assert {kind for kind, _, _ in expected} == {"BUY signal", "SELL signal", "HOLD"}
    async with guide_example("real_time_analysis", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        for text in texts:
            await server.send_push(ticker_push(text))
        lines = await program.matches(ANALYSIS_LINE, count=len(expected))
    assert [(m["kind"], m["price"], m["ma"]) for m in lines] == expected


@pytest.mark.anyio
async def test_risk_management_reports_breaches_of_the_pushed_positions(
    tmp_path: Path, api: str
) -> None:
    async with guide_example("risk_management", tmp_path, api=api) as (program, server):
        await subscribed(server, "positions")
        # 0.02 BTC at the example's stand-in price of 100000 is $2000 of exposure, over $1000.
        opened = await server.simulate_trade("cmt_btcusdt", "BUY", "0.02")
        await program.line(lambda text: text.startswith("(added helper)"))
        # With a mark 6000 below the entry, 0.021 BTC loses $126: over the $100 daily limit.
        await subscribed(server, "ticker.cmt_btcusdt")
        mark = Decimal(opened.price) - 6000
        await server.send_push(ticker_push(opened.price, mark=f"{mark}"))
        await server.simulate_trade("cmt_btcusdt", "BUY", "0.001")
        await program.line(lambda text: "emergency_close_all_positions" in text)
    assert program.output == [
        "🛡️ Starting risk-monitored trading...",
        "🚨 POSITION SIZE LIMIT BREACHED: $2000.00",
        "(added helper) emergency_reduce_positions called",
        "🚨 POSITION SIZE LIMIT BREACHED: $2100.00",
        "(added helper) emergency_reduce_positions called",
        "🚨 DAILY LOSS LIMIT BREACHED: $-126.00",
        "(added helper) emergency_close_all_positions called",
    ]


PORTFOLIO_LINE = re.compile(TS + r": Portfolio: \$(?P<value>\S+) \| Balance: \$(?P<balance>\S+)")
PAPER_FILL = re.compile(
    r"\S+ (?P<side>BUY|SELL): (?P<size>\S+) BTC @ \$(?P<price>\S+) "
    r"\((?:Cost|Revenue): \$(?P<amount>\S+)\)"
)


@pytest.mark.anyio
async def test_paper_trading_trades_and_values_at_the_pushed_prices(
    tmp_path: Path, api: str
) -> None:
    prices = [f"{100000 + 37 * i - 400 * (i % 3)}.5" for i in range(40)]
    async with guide_example("paper_trading", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        for text in prices:
            await server.send_push(ticker_push(text))
        await program.matches(PORTFOLIO_LINE, count=len(prices))

    # Replay the guide's engine on the pushed prices, taking its random signal from its output.
    balance, held = 10000.0, 0.0
    lines = iter(text for text in program.output if not text.startswith("🎯"))
    buys = 0
    for text in prices:
        price = float(text)
        line = next(lines)
        fill = PAPER_FILL.fullmatch(line)
        if fill is not None:
            assert fill["price"] == f"{price:.2f}"
            if fill["side"] == "BUY":
                assert balance > 100
                size = balance * 0.01 / price
                balance -= price * size
                held += size
                buys += 1
            else:
                assert held > 0  # the guide sells only while it holds BTC
                size = held
                balance += price * size
                held -= size
            assert (fill["size"], fill["amount"]) == (f"{size:.6f}", f"{price * size:.2f}")
            line = next(lines)
        portfolio = PORTFOLIO_LINE.fullmatch(line)
        assert portfolio is not None, line
        assert portfolio["value"] == f"{balance + held * price:.2f}"
        assert portfolio["balance"] == f"{balance:.2f}"
    # The signal is random.choice of three: no buy in 40 ticks has a chance of (2/3)**40 ~ 1e-7.
    assert buys >= 1


@pytest.mark.anyio
async def test_robust_client_keeps_printing_prices_across_a_dropped_connection(
    tmp_path: Path,
    api: str,
) -> None:
    async with guide_example("robust_client", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        await server.send_push(ticker_push("101234.5"))
        await program.line(lambda text: text == "Price: $101234.5")
        await server.drop_connections()
        # The client reconnects and resubscribes by itself: the guide's loop never sees an error.
        await server.wait_until(lambda: server.stats.accepted >= 2, timeout=HANG_LIMIT)
        await subscribed(server, "ticker.cmt_btcusdt")
        await server.send_push(ticker_push("101300.0"))
        await program.line(lambda text: text == "Price: $101300.0")
    assert program.output == ["🔌 Connected (attempt 1)", "Price: $101234.5", "Price: $101300.0"]


FILTER_LINE = re.compile(
    r"📈 Significant move: (?P<change>\S+)% \| Price: \$(?P<price>\S+) \| Volume: (?P<volume>\S+)"
)


@pytest.mark.anyio
async def test_filtered_streaming_prints_only_moves_over_a_tenth_of_a_percent(
    tmp_path: Path,
    api: str,
) -> None:
    pushed = [("101234.5", "0.012300"), ("101240.0", "0.000500"), ("101100.0", "-0.004200")]
    async with guide_example("filtered_streaming", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        for last, percent in pushed:
            await server.send_push(ticker_push(last, size="1234.50000", percent=percent))
        lines = await program.matches(FILTER_LINE, count=2)
    # The 0.05% move, pushed between the other two, was filtered out.
    for match, (last, percent) in zip(lines, [pushed[0], pushed[2]], strict=True):
        assert float(match["change"]) == float(percent_of(percent))
        assert match["price"] == last
        assert match["volume"] == "1234.50000"


@pytest.mark.anyio
async def test_memory_efficient_streaming_alerts_on_prices_over_50000(
    tmp_path: Path, api: str
) -> None:
    async with guide_example("memory_efficient", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        for last in ("101234.5", "49999.9", "50000.5"):
            await server.send_push(ticker_push(last))
        lines = await program.matches(re.compile(r"High price alert: \$(?P<price>\S+)"), 2)
    assert [m["price"] for m in lines] == ["101234.5", "50000.5"]  # 49999.9 stays quiet


BATCH_LINE = re.compile(r"Batch: Avg: \$(?P<avg>\S+) \| Max: \$(?P<max>\S+) \| Min: \$(?P<min>\S+)")


@pytest.mark.anyio
async def test_batch_processing_summarises_each_batch_of_ten_tickers(
    tmp_path: Path, api: str
) -> None:
    texts = [f"{101000 + 17 * i - 90 * (i % 4)}.5" for i in range(20)]
    async with guide_example("batch_processing", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        for text in texts:
            await server.send_push(ticker_push(text))
        lines = await program.matches(BATCH_LINE, count=2)
    for match, batch in zip(lines, [texts[:10], texts[10:]], strict=True):
        prices = [float(t) for t in batch]
        assert (match["avg"], match["max"], match["min"]) == (
            f"{sum(prices) / len(prices):.2f}",
            f"{max(prices):.2f}",
            f"{min(prices):.2f}",
        )


@pytest.mark.anyio
async def test_heartbeat_example_prints_each_pushed_price(tmp_path: Path, api: str) -> None:
    async with guide_example("heartbeat", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        for last in ("101234.5", "101235.0"):
            await server.send_push(ticker_push(last))
        lines = await program.matches(re.compile(r"💓 Message received: (?P<price>\S+)"), 2)
    assert [m["price"] for m in lines] == ["101234.5", "101235.0"]
    assert program.output[0] == "💓 Starting heartbeat..."


@pytest.mark.anyio
async def test_data_storage_stores_the_pushed_values(tmp_path: Path, api: str) -> None:
    pushed = [("101234.5", "176145.66489", "-0.019637"), ("101301.2", "176146.01", "0.0045")]
    database = tmp_path / "ticker_data.db"  # the guide writes it to the working directory

    def stored() -> list[tuple[Any, ...]]:
        if not database.exists():
            return []
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            try:
                return db.execute("SELECT * FROM tickers ORDER BY timestamp").fetchall()
            except sqlite3.OperationalError:  # the table is not there yet
                return []

    async with guide_example("data_storage", tmp_path, api=api) as (program, server):
        await subscribed(server, "ticker.cmt_btcusdt")
        before = time.time()
        for last, size, percent in pushed:
            await server.send_push(ticker_push(last, size=size, percent=percent))
        with anyio.fail_after(HANG_LIMIT):
            while len(rows := stored()) < len(pushed):  # noqa: ASYNC110 - another process writes
                await anyio.sleep(0.05)
        after = time.time()
        await program.line(lambda text: text == "💾 Storing ticker data...")
    assert program.output == ["💾 Storing ticker data..."]
    assert len(rows) == len(pushed)
    for (timestamp, symbol, price, volume, change), (last, size, percent) in zip(
        rows, pushed, strict=True
    ):
        assert before <= timestamp <= after
        assert symbol == "BTCUSDT"
        assert (price, volume) == (float(last), float(size))
        assert change == float(percent_of(percent))


# -- the files are the guide's code -----------------------------------------------------------


def verbatim_part(path: Path) -> tuple[list[str], list[str]]:
    """(the lines before the begin marker, the guide's code between the markers)."""
    lines = path.read_text().splitlines()
    begin = next(i for i, text in enumerate(lines) if text.startswith(BEGIN))
    end = next(i for i, text in enumerate(lines) if text.startswith(END))
    return lines[:begin], "\n".join(lines[begin + 1 : end]).strip("\n").splitlines()


GUIDE_FILES = sorted(GUIDE_EXAMPLES.glob("*.py"))


def test_every_guide_example_has_a_test() -> None:
    names = {path.stem for path in GUIDE_FILES}
    source = Path(__file__).read_text()
    assert len(names) == 17
    assert {name for name in names if f'guide_example("{name}"' not in source} == set()


@pytest.mark.parametrize("path", GUIDE_FILES, ids=lambda path: path.stem)
def test_a_guide_example_changes_only_the_import_line(path: Path) -> None:
    header, code = verbatim_part(path)
    assert code, "nothing between the markers"
    imports = [text for text in header if text.startswith(("import ", "from "))]
    # The guide's imports (asyncio; aiosqlite and json for the storage example) and the one
    # changed line; anything else the guide leaves undefined comes after the end marker.
    assert imports[-1] == CHANGED_IMPORT
    assert not any("weex_client" in text for text in code)
    assert all(text.startswith("import ") for text in imports[:-1])
    tail = path.read_text().split(END, 1)[1]
    assert "added" in tail  # at least the marked `if __name__ == "__main__":` runner


def find_guide() -> Path | None:
    named = os.environ.get("WEEX_WS_GUIDE")
    if named:
        return Path(named)  # given: a missing file is an error, not a skip
    for folder in ROOT.parents:
        candidate = folder / "shared" / GUIDE_NAME
        if candidate.is_file():
            return candidate
    return None


def guide_programs(text: str) -> list[list[str]]:
    """The guide's code blocks that are Python programs, each as its lines."""

    def is_code(line: str) -> bool:
        return not line or line.startswith(
            (" ", "async def ", "def ", "class ", "#", "import ", "from ")
        )

    blocks: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), "end"]:
        if is_code(line) and (current or line):
            current.append(line)
            continue
        while current and not current[-1]:
            current.pop()
        if current:
            try:
                tree = ast.parse("\n".join(current))
            except SyntaxError:  # a signature line of the class reference, not a program
                tree = None
            if tree is not None and any(
                isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef | ast.ClassDef)
                for node in tree.body
            ):
                blocks.append(current)
        current = []
    return blocks


def test_the_guide_examples_are_every_program_of_the_guide_verbatim() -> None:
    guide = find_guide()
    if guide is None:
        pytest.skip(f"{GUIDE_NAME} is not at hand (WEEX_WS_GUIDE=path names it)")
    programs = guide_programs(guide.read_text())
    ours = {path.stem: verbatim_part(path) for path in GUIDE_FILES}
    unmatched = dict(ours)
    for program in programs:
        imports = []
        while program and (program[0].startswith(("import ", "from ")) or not program[0]):
            imports.append(program.pop(0))
        name = next((n for n, (_, code) in unmatched.items() if code == program), None)
        assert name is not None, "no example holds this program of the guide:\n" + "\n".join(
            program[:3]
        )
        header, _ = unmatched.pop(name)
        for line in filter(None, imports):
            expected = CHANGED_IMPORT if "weex_client" in line else line
            assert expected in header, f"{name}: the guide's {line!r}"
    assert unmatched == {}, "examples that are not a program of the guide"
