"""The examples in `examples/`, run against a fast embedded simulator.

Each example's `run(...)` is called in-process and its result checked against facts computed
here independently: moving averages and crossovers by brute force, PnL by the cash-flow
identity, trade tallies from the raw JSON frames, private events against what the simulator
reports it did, the SQLite file read back with the standard `sqlite3` module. A last test runs
every script as `python examples/NAME.py` and checks its exit code and output. Everything that
talks to the simulator runs on both of WEEX's protocol generations (the `api` fixture): the
raw frames are read with the v2 or v3 names of `RAW`.
"""

from __future__ import annotations

import ast
import importlib.metadata
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples import (
    _common,
    batching,
    filtering,
    heartbeat_checker,
    moving_average,
    multi_symbol_taskgroup,
    order_book_monitor,
    paper_trading,
    private_monitor,
    reconnect_loop,
    sqlite_recorder,
    ticker_monitor,
    trade_monitor,
)
from weex_anyio import WebSocketMessage
from weex_anyio.testing import SimulatedWeexServer
from weex_anyio.testing._v3 import v2_channel
from weex_proto.messages import PriceLevel, Ticker

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["v2", "v3"])
def api(request: pytest.FixtureRequest) -> str:
    """The protocol generation the simulator speaks (the example follows its URLs)."""
    param: str = request.param
    return param


@asynccontextmanager
async def fast_simulator(api: str, **options: Any) -> AsyncIterator[_common.Exchange]:
    options.setdefault("tick_interval", 0.02)
    options.setdefault("ping_interval", 0.2)
    async with _common.simulator(api=api, **options) as exchange:
        assert exchange.config.api_version == api
        yield exchange


RAW = {
    "v2": {"buyer_maker": "buyerMaker", "size": "size", "value": "value", "rows": "data"},
    "v3": {"buyer_maker": "m", "size": "q", "value": "v", "rows": "d"},
}
"""Where a raw push keeps a trade's fields and its rows, by protocol generation."""
V3_STREAMS = {"ticker": "ticker", "trade": "trade", "depth": "depth", "depthSnapshot": "depth"}


def raw_channel(frame: dict[str, Any], api: str) -> str | None:
    """The (v2) channel a raw push belongs to: v2 names it, v3 names its event and symbol."""
    if api == "v2":
        channel: str = frame["channel"]
        return channel
    stream = V3_STREAMS[frame["e"]] + (str(frame["l"]) if frame["e"].startswith("depth") else "")
    return v2_channel(f"{frame['s']}@{stream}", {"cmt_" + frame["s"].lower()})


def server_of(exchange: _common.Exchange) -> SimulatedWeexServer:
    assert exchange.server is not None
    return exchange.server


# -- brute-force references -------------------------------------------------------------------


def naive_sma(prices: Sequence[Decimal], window: int) -> list[Decimal | None]:
    return [
        sum(prices[i + 1 - window : i + 1], Decimal(0)) / window if i + 1 >= window else None
        for i in range(len(prices))
    ]


def naive_signals(
    prices: Sequence[Decimal], short: int, long: int
) -> list[tuple[int, Literal["buy", "sell"]]]:
    """Where short - long goes from <= 0 to > 0 (buy) or from >= 0 to < 0 (sell)."""
    diffs = [
        None if s is None or g is None else s - g
        for s, g in zip(naive_sma(prices, short), naive_sma(prices, long), strict=True)
    ]
    signals: list[tuple[int, Literal["buy", "sell"]]] = []
    for i in range(1, len(diffs)):
        before, now = diffs[i - 1], diffs[i]
        if before is None or now is None:
            continue
        if before <= 0 < now:
            signals.append((i, "buy"))
        elif before >= 0 > now:
            signals.append((i, "sell"))
    return signals


decimal_prices = st.lists(
    st.integers(min_value=1, max_value=10**8).map(lambda n: Decimal(n).scaleb(-3)),
    max_size=60,
)


# -- pure parts of the examples ---------------------------------------------------------------


@given(prices=decimal_prices, windows=st.tuples(st.integers(1, 6), st.integers(1, 6)))
@settings(max_examples=150, deadline=None)
def test_crossover_detector_matches_brute_force(
    prices: list[Decimal], windows: tuple[int, int]
) -> None:
    short, long = sorted(windows)
    if short == long:
        long += 1
    detector = moving_average.CrossoverDetector(short, long)
    outputs = [detector.update(price) for price in prices]
    assert [out[0] for out in outputs] == naive_sma(prices, short)
    assert [out[1] for out in outputs] == naive_sma(prices, long)
    signals = [(out[2].index, out[2].kind) for out in outputs if out[2] is not None]
    assert signals == naive_signals(prices, short, long)


fills = st.lists(
    st.tuples(
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 500).map(lambda n: Decimal(n).scaleb(-2)),
        st.integers(1, 10**7).map(lambda n: Decimal(n).scaleb(-1)),
    ),
    min_size=1,
    max_size=30,
)


@given(fills=fills, mark=st.integers(1, 10**7).map(lambda n: Decimal(n).scaleb(-1)))
@settings(max_examples=150, deadline=None)
def test_paper_account_pnl_is_the_cash_flow(
    fills: list[tuple[Literal["BUY", "SELL"], Decimal, Decimal]], mark: Decimal
) -> None:
    """Realised + unrealised PnL = cash paid and received + what the position is worth."""
    account = paper_trading.PaperAccount()
    cash = Decimal(0)
    position = Decimal(0)
    for index, (side, size, price) in enumerate(fills):
        account.fill(side, size, price, index)
        signed = size if side == "BUY" else -size
        cash -= signed * price
        position += signed
    assert account.position == position
    assert (account.entry_price is None) == (position == 0)
    total = account.realized_pnl + account.unrealized_pnl(mark)
    # Averaging entry prices divides, so allow for rounding at Decimal's 28 digits.
    assert abs(total - (cash + position * mark)) < Decimal("1e-12")
    assert sum((fill.realized_pnl for fill in account.fills), Decimal(0)) == account.realized_pnl


def fake_message(number: int) -> WebSocketMessage[Any]:
    return WebSocketMessage("ticker.cmt_btcusdt", {"n": number}, float(number))


@given(total=st.integers(0, 40), max_size=st.integers(1, 7))
@settings(max_examples=60, deadline=None)
def test_batcher_cuts_full_batches_and_a_final_partial_one(total: int, max_size: int) -> None:
    async def cut() -> list[batching.Batch]:
        send, receive = anyio.create_memory_object_stream[WebSocketMessage[Any]](total + 1)
        for number in range(total):
            send.send_nowait(fake_message(number))
        send.close()
        batches = []
        with receive:
            batcher = batching.Batcher(receive, max_size=max_size, max_wait=60)
            while (batch := await batcher.next_batch()) is not None:
                batches.append(batch)
        return batches

    batches = anyio.run(cut)
    assert [m.data["n"] for b in batches for m in b.messages] == list(range(total))
    full, rest = divmod(total, max_size)
    assert [len(b.messages) for b in batches] == [max_size] * full + ([rest] if rest else [])
    assert [b.reason for b in batches] == ["size"] * full + (["end"] if rest else [])


# -- the examples against the simulator -------------------------------------------------------


@pytest.mark.anyio
async def test_ticker_monitor_keeps_the_latest_ticker_of_each_symbol(api: str) -> None:
    async with fast_simulator(api) as exchange:
        report = await ticker_monitor.run(exchange.config, ["BTCUSDT", "eth-usdt"], count=20)
    assert report.messages == 20
    assert set(report.latest) == {"cmt_btcusdt", "cmt_ethusdt"}
    assert sum(report.updates.values()) >= 20
    for symbol, ticker in report.latest.items():
        assert ticker.symbol == symbol
        assert ticker.low <= ticker.last_price <= ticker.high


@pytest.mark.anyio
async def test_order_book_monitor_follows_versions_and_resyncs_after_a_gap(api: str) -> None:
    reports: list[order_book_monitor.BookReport] = []
    async with fast_simulator(api) as exchange, anyio.create_task_group() as tasks:

        async def monitor() -> None:
            reports.append(await order_book_monitor.run(exchange.config, "BTCUSDT", count=25))

        tasks.start_soon(monitor)
        server = server_of(exchange)
        await server.wait_for_subscription("depth.cmt_btcusdt.15")
        server.inject_depth_gap("cmt_btcusdt", skipped=5)
    [report] = reports

    assert report.resyncs >= 1
    assert len(report.quotes) >= 25
    assert all(q.spread == q.best_ask - q.best_bid > 0 for q in report.quotes)
    # Replay the raw frames into a book of our own: every quote the client's book gave must be
    # the top 15 levels of our book at that version.
    books: dict[int, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]] = {}
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    version: int | None = None
    for update in report.frames:
        if update.depth_type == "SNAPSHOT":
            bids, asks = {}, {}
        elif version is None or update.start_version != version + 1:
            version = None  # a gap: this replay is unusable until the next snapshot
            continue
        for book, levels in ((bids, update.bids), (asks, update.asks)):
            level: PriceLevel
            for level in levels:
                book[level.price] = level.size
                if level.size == 0:
                    del book[level.price]
        version = update.end_version
        books[version] = (
            sorted(bids.items(), reverse=True)[:15],
            sorted(asks.items())[:15],
        )
    checked = [q for q in report.quotes if q.version in books]
    assert len(checked) >= 20
    for quote in checked:
        assert (list(quote.bids), list(quote.asks)) == books[quote.version]


@pytest.mark.anyio
async def test_trade_monitor_tally_matches_the_raw_frames(api: str) -> None:
    async with fast_simulator(api) as exchange:
        tally = await trade_monitor.run(exchange.config, "BTCUSDT", count=30)
    buys = sells = 0
    volume = {"buy": Decimal(0), "sell": Decimal(0)}
    value = {"buy": Decimal(0), "sell": Decimal(0)}
    for message in tally.messages:
        frame = json.loads(message.raw)  # one message per trade: row `index` of its frame
        assert raw_channel(frame, api) == "trades.cmt_btcusdt"
        key = RAW[api]
        row = frame[key["rows"]][message.index]
        seller_took = row[key["buyer_maker"]] in (True, "true")
        side = "sell" if seller_took else "buy"
        assert message.data["side"] == side
        buys += not seller_took
        sells += seller_took
        volume[side] += Decimal(str(row[key["size"]]))
        value[side] += Decimal(str(row[key["value"]]))
    assert tally.trades >= 30
    assert (tally.buys, tally.sells) == (buys, sells)
    assert (tally.buy_volume, tally.sell_volume) == (volume["buy"], volume["sell"])
    assert (tally.buy_value, tally.sell_value) == (value["buy"], value["sell"])
    assert tally.vwap == (value["buy"] + value["sell"]) / (volume["buy"] + volume["sell"])


@pytest.mark.anyio
async def test_private_monitor_sees_orders_fills_positions_and_account(api: str) -> None:
    async with fast_simulator(api) as exchange:
        report = await private_monitor.run(exchange.config, count=3, server=exchange.server)
    trades = report.trades
    # The plan: buy 0.010, buy 0.005, sell 0.020 of BTC.
    assert [(t.side, Decimal(t.size)) for t in trades] == [
        ("BUY", Decimal("0.010")),
        ("BUY", Decimal("0.005")),
        ("SELL", Decimal("0.020")),
    ]
    assert [fill.id for fill in report.fills] == [t.fill_id for t in trades]
    for fill, trade in zip(report.fills, trades, strict=True):
        assert fill.order_id == trade.order_id
        assert fill.fill_size == Decimal(trade.size)
        assert fill.fill_value == Decimal(trade.size) * Decimal(trade.price)
        assert fill.fill_fee == Decimal(trade.fill_fee)
        statuses = [o.status for o in report.orders if o.id == trade.order_id]
        assert statuses == ["PENDING", "FILLED"]

    p1, p2, p3 = (Decimal(t.price) for t in trades)
    entry = (Decimal("0.010") * p1 + Decimal("0.005") * p2) / Decimal("0.015")
    closing_pnl = ((p3 - entry) * Decimal("0.015")).quantize(Decimal("0.000001"))
    assert [fill.realize_pnl for fill in report.fills] == [0, 0, closing_pnl]

    assert [(p.side, p.size) for p in report.positions] == [
        ("LONG", Decimal("0.010")),
        ("LONG", Decimal("0.015")),
        ("SHORT", Decimal("0.005")),  # net +0.010 + 0.005 - 0.020
    ]
    assert report.positions[1].entry_price == entry
    assert report.positions[2].entry_price == p3

    amounts = [collateral.amount for collateral in report.account]
    assert len(amounts) == 3
    for before, after, fill in zip(amounts, amounts[1:], report.fills[1:], strict=False):
        assert after - before == fill.realize_pnl - fill.fill_fee


@pytest.mark.anyio
async def test_multi_symbol_tasks_each_see_only_their_symbol(api: str) -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    async with fast_simulator(api) as exchange:
        summaries = await multi_symbol_taskgroup.run(exchange.config, symbols, per_symbol=5)
    assert set(summaries) == {"cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt"}
    for symbol, summary in summaries.items():
        assert len(summary.tickers) >= 5
        assert {ticker.symbol for ticker in summary.tickers} == {symbol}
        assert summary.low <= summary.prices[-1] <= summary.high
        assert summary.change == summary.prices[-1] - summary.prices[0]


@pytest.mark.anyio
async def test_moving_averages_equal_a_brute_force_recomputation(api: str) -> None:
    async with fast_simulator(api) as exchange:
        report = await moving_average.run(exchange.config, count=60, short=3, long=8)
    prices = list(report.prices)
    assert len(prices) == 60
    assert list(report.short_sma) == naive_sma(prices, 3)
    assert list(report.long_sma) == naive_sma(prices, 8)
    assert [(s.index, s.kind) for s in report.signals] == naive_signals(prices, 3, 8)
    for signal in report.signals:
        assert signal.price == prices[signal.index]


@pytest.mark.anyio
async def test_paper_trading_fills_and_pnl_match_an_independent_recomputation(api: str) -> None:
    size = Decimal("0.01")
    async with fast_simulator(api) as exchange:
        report = await paper_trading.run(exchange.config, count=100, short=3, long=8, size=size)
    prices = list(report.prices)
    assert len(prices) == 100

    # Which fills the strategy must have made: move to +size on "buy", -size on "sell".
    expected = []
    position = Decimal(0)
    for index, kind in naive_signals(prices, 3, 8):
        target = size if kind == "buy" else -size
        if target != position:
            side = "BUY" if target > position else "SELL"
            expected.append((index, side, abs(target - position), prices[index]))
            position = target
    assert expected, "the simulated walk should cross at least once in 100 ticks"
    assert [(f.index, f.side, f.size, f.price) for f in report.fills] == expected
    assert report.position == position

    # PnL by the cash-flow identity: what was paid and received, plus the position's value.
    cash = sum(
        (-(f.size if f.side == "BUY" else -f.size) * f.price for f in report.fills), Decimal(0)
    )
    last = prices[-1]
    assert report.total_pnl == cash + report.position * last
    # Every fill leaves a one-lot position opened at that fill's price.
    assert report.entry_price == report.fills[-1].price
    assert report.unrealized_pnl == (last - report.fills[-1].price) * report.position
    assert report.fills[0].realized_pnl == 0
    for before, fill in itertools.pairwise(report.fills):
        closed_long = before.side == "BUY"
        move = fill.price - before.price
        assert fill.realized_pnl == (move if closed_long else -move) * size


@pytest.mark.anyio
async def test_reconnect_loop_flags_gaps_after_forced_drops(api: str) -> None:
    async with fast_simulator(api) as exchange:
        server = server_of(exchange)
        report = await reconnect_loop.run(
            exchange.config,
            count=60,
            server=server,
            drop_every=0.25,
            give_up_every=None,
            max_retries=None,
            backoff_base=0.05,
        )
        accepted = server.stats.accepted
    assert report.messages == 60
    assert report.clients == 1 and report.gave_up == 0
    assert report.reconnects >= 1 and accepted >= 2
    assert report.gap_messages >= 1
    assert report.gap_messages <= report.reconnects
    assert report.on_gap_calls
    assert set(report.on_gap_calls) == {("public", ("ticker.cmt_btcusdt",))}


@pytest.mark.anyio
async def test_reconnect_loop_starts_a_new_client_after_the_old_one_gives_up(api: str) -> None:
    async with fast_simulator(api) as exchange:
        report = await reconnect_loop.run(
            exchange.config,
            count=40,
            server=server_of(exchange),
            drop_every=0.3,
            give_up_every=1,
            max_retries=2,
            backoff_base=0.05,
            restart_delay=0.05,
        )
    assert report.messages == 40
    assert report.gave_up >= 1
    assert report.clients == report.gave_up + 1


@pytest.mark.anyio
async def test_filtering_passes_watched_symbols_that_moved_enough(api: str) -> None:
    min_move = Decimal("0.00002")
    async with fast_simulator(api) as exchange:
        report = await filtering.run(
            exchange.config,
            ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
            watch=["BTCUSDT", "eth-usdt"],
            min_move=min_move,
            count=90,
        )
    assert len(report.seen) >= 90
    assert {t.symbol for t in report.seen} == {"cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt"}
    reference: dict[str, Decimal] = {}
    expected: list[Ticker] = []
    for ticker in report.seen:
        if ticker.symbol == "cmt_solusdt":
            continue
        last = reference.get(ticker.symbol)
        if last is None or abs(ticker.last_price - last) >= min_move * last:
            expected.append(ticker)
            reference[ticker.symbol] = ticker.last_price
    assert list(report.passed) == expected
    watched = [t for t in report.seen if t.symbol != "cmt_solusdt"]
    assert 2 <= len(report.passed) < len(watched)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("max_size", "max_wait", "reason"),
    [(5, 30.0, "size"), (10_000, 0.05, "time")],
)
async def test_batching_respects_size_and_time_limits(
    max_size: int, max_wait: float, reason: str, api: str
) -> None:
    async with fast_simulator(api) as exchange:
        batches = await batching.run(
            exchange.config, ["BTCUSDT", "ETHUSDT"], count=4, max_size=max_size, max_wait=max_wait
        )
    assert len(batches) == 4
    assert {b.reason for b in batches} == {reason}
    for batch in batches:
        assert 1 <= len(batch.messages) <= max_size
        assert (len(batch.messages) == max_size) == (batch.reason == "size")
        assert batch.opened_at <= batch.closed_at
    messages = [m for b in batches for m in b.messages]
    stamps = [m.timestamp for m in messages]
    assert stamps == sorted(stamps)  # in arrival order, none repeated or lost in between
    assert {m.channel for m in messages} <= {"ticker.cmt_btcusdt", "ticker.cmt_ethusdt"}


@pytest.mark.anyio
async def test_heartbeat_checker_reports_staleness_while_the_market_is_paused(api: str) -> None:
    async with fast_simulator(api) as exchange:
        samples = await heartbeat_checker.run(
            exchange.config,
            duration=2.0,
            every=0.1,
            stale_after=0.4,
            ping_interval=0.1,
            server=exchange.server,
        )
    assert len(samples) >= 5
    stale = [s for s in samples if s.stale]
    assert stale and len(stale) < len(samples)
    counts = [s.messages for s in samples]
    assert counts == sorted(counts)
    for before, after in itertools.pairwise(samples):
        if after.stale and after.last_message_age is not None:
            assert after.messages == before.messages  # nothing arrived: that is what stale means
    assert samples[-1].pings_answered >= 1
    assert samples[-1].reconnects == 0


@pytest.mark.anyio
async def test_sqlite_recorder_file_holds_exactly_the_reported_rows(
    tmp_path: Path, api: str
) -> None:
    path = tmp_path / "messages.sqlite"
    async with fast_simulator(api) as exchange:
        first = await sqlite_recorder.run(
            exchange.config, path, ["BTCUSDT", "ETHUSDT"], count=40, commit_every=15
        )
        # A run cut short by its duration must still commit every row it counted.
        second = await sqlite_recorder.run(
            exchange.config, path, ["BTCUSDT", "ETHUSDT"], count=None, duration=0.3, append=True
        )
        with pytest.raises(FileExistsError):  # a third run without --append touches nothing
            await sqlite_recorder.run(exchange.config, path, ["BTCUSDT"], count=1)
    assert first.rows == 40 and second.rows > 0
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT channel, received_at, raw FROM frames ORDER BY id").fetchall()
    assert len(rows) == first.rows + second.rows
    allowed = {
        "ticker.cmt_btcusdt",
        "ticker.cmt_ethusdt",
        "trades.cmt_btcusdt",
        "depth.cmt_btcusdt.15",
    }
    for channel, received_at, raw in rows:
        assert channel in allowed
        assert raw_channel(json.loads(raw), api) == channel
        assert received_at > 1e9
    assert Counter(channel for channel, _, _ in rows[: first.rows]) == first.by_channel
    assert Counter(channel for channel, _, _ in rows[first.rows :]) == second.by_channel
    # One row per frame: a push of several trades is several messages, but one frame.
    assert len(set(rows)) == len(rows)


# -- the scripts ------------------------------------------------------------------------------

FAST = ("--tick-interval", "0.02")
SCRIPTS: list[tuple[str, tuple[str, ...], str]] = [
    ("ticker_monitor", ("--count", "5"), "5 ticker messages"),
    ("order_book_monitor", ("ETHUSDT", "--count", "5"), "5 quotes"),
    ("trade_monitor", ("--count", "10"), "VWAP"),
    ("private_monitor", ("--count", "2"), "2 fills"),
    ("multi_symbol_taskgroup", ("BTCUSDT", "SOLUSDT", "--count", "3"), "cmt_solusdt"),
    ("moving_average", ("--count", "30", "--short", "3", "--long", "8"), "30 prices"),
    ("paper_trading", ("--count", "40"), "fills over 40 prices"),
    (
        "reconnect_loop",
        ("--count", "40", "--drop-every", "0.3", "--give-up-every", "0", "--max-retries", "-1"),
        "40 messages",
    ),
    ("filtering", ("--count", "30"), "of 30 tickers passed"),
    ("batching", ("--count", "3", "--max-size", "5"), "3 batches, 15 messages"),
    ("heartbeat_checker", ("--duration", "1.5", "--every", "0.25"), "samples"),
    ("sqlite_recorder", ("--count", "20", "--db", "recorded.sqlite"), "wrote 20 rows"),
]


V3_SCRIPTS = {"ticker_monitor", "order_book_monitor", "trade_monitor", "private_monitor"}
"""The scripts also run on v3 (`WEEX_API=v3`): enough to show the embedded simulator and the
client follow it on both sockets; the in-process tests above run every example on v3."""

HANG_LIMIT = 180.0
"""Seconds after which a script that has not finished is taken to hang (12 run at once)."""


def test_every_script_runs_and_reports(tmp_path: Path, api: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEEX_")}
    env["WEEX_API"] = api  # the embedded simulator, and so the client, speak this generation
    scripts = [script for script in SCRIPTS if api == "v2" or script[0] in V3_SCRIPTS]
    commands = {
        name: [sys.executable, str(EXAMPLES / f"{name}.py"), *args, *FAST]
        for name, args, _ in scripts
    }
    if api == "v2":  # what follows is the same on v3: the command line, not the wire
        # --live for a private example, without credentials: a clear error, no connection.
        private_live = [sys.executable, str(EXAMPLES / "private_monitor.py"), "--live"]
        commands["private --live"] = private_live
        # As a first-time user runs it: no option at all.
        commands["reconnect_loop as is"] = [sys.executable, str(EXAMPLES / "reconnect_loop.py")]
    runs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            runs[name] = subprocess.Popen(  # noqa: S603 - our own scripts
                command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        # The timeout only turns a hung script into a failure; they all run side by side.
        results = {name: process.communicate(timeout=HANG_LIMIT) for name, process in runs.items()}
    finally:
        for process in runs.values():  # a failure above must not leave scripts running
            if process.poll() is None:
                process.kill()
            process.communicate()

    for name, _, expected in scripts:
        out, err = (stream.decode() for stream in results[name])
        assert runs[name].returncode == 0, f"{name} failed:\n{out}\n{err}"
        assert "embedded simulator" in out
        assert ("/v3/" in out) == (api == "v3"), out  # it prints the URL it serves
        assert expected in out, f"{name} printed:\n{out}"
    if api == "v3":
        return  # the rest checks the scripts only v2 runs
    assert (tmp_path / "recorded.sqlite").exists()

    out, err = (stream.decode() for stream in results["private --live"])
    assert runs["private --live"].returncode == 2
    assert "WEEX_API_KEY" in err

    out, err = (stream.decode() for stream in results["reconnect_loop as is"])
    assert runs["reconnect_loop as is"].returncode == 0, err
    assert "gave up" in out and "-- on_gap:" in out and out.rstrip().endswith("times")
    assert err == ""  # it prints each drop and give-up itself: no log line per reconnect


# -- what the README says makes them runnable ---------------------------------------------------

FIRST_PARTY = {"examples", "weex_anyio", "weex_proto", "weex_trio"}
SETUP_INSTALLS = ("dependencies", "dev")
"""The pyproject.toml lists `python3 dev.py setup` installs (`-e .[dev]`: checked by
tests/test_first_run.py's dev.py tests)."""


def imported_distributions(script: Path) -> set[tuple[str, str]]:
    """(module, distribution) of every third-party import of `script`."""
    providers = importlib.metadata.packages_distributions()
    found = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        for module in (name.split(".")[0] for name in modules):
            if module in sys.stdlib_module_names or module in FIRST_PARTY:
                continue
            for distribution in providers.get(module, [module]):
                found.add((module, distribution))
    return found


def canonical(requirement: str) -> str:
    name = re.split(r"[^A-Za-z0-9_.-]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_readme_names_a_command_after_which_every_example_runs() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("\n## Examples\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`python3 dev\.py (\w+)`[^.]*?every\s+example runs", section))
    assert named == {"setup"}, "the Examples section names the command that makes all runnable"
    project = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())["project"]
    lists = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
    installed = {canonical(req) for key in SETUP_INSTALLS for req in lists[key]}
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) > 15
    missing = [
        (script.name, module)
        for script in scripts
        for module, distribution in imported_distributions(script)
        if canonical(distribution) not in installed
    ]
    assert missing == []
