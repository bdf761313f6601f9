"""The simulator's whole-exchange feed (`full_feed=N`, `flood=True`, `weex-ws simulate
--contracts N [--flood]`): its frames keep a consistent book, and it serves a real client on
many connections, flooding one without starving another; its sent log (`on_push=SentLog(...)`,
`--sent-log FILE`) says what it sent.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.abc
import pytest
import wsproto
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import events as ws

from tests.adapters import BOTH_DIALECTS
from tests.test_cli import PYTHON, ROOT, cli_env, json_lines, one_error_line
from tests.test_first_run import simulate_process
from tests.test_v3_simulator import captured, shape
from weex_anyio import WeexWebSocketClient
from weex_anyio.cli import main
from weex_anyio.cli._relay import contracts_from
from weex_anyio.testing import (
    FeedRates,
    SentLog,
    SimulatedWeexServer,
    _v3,
    read_sent_log,
    record_digest,
)
from weex_anyio.testing._feed import FeedMarket, generated_symbols
from weex_proto.config import WeexConfig
from weex_proto.v3wire import push_to_v2

Api = Literal["v2", "v3"]
NOW_MS = 1_775_000_000_000
"""The clock the v3 edge stamps pushes with here (`E`, a ticker's window)."""
HANG_GUARD = 60.0
TICKER_KEYS = [
    "symbol", "priceChange", "priceChangePercent", "trades", "size", "value", "high", "low",
    "lastPrice", "markPrice",
]  # fmt: skip
TRADE_KEYS = ["time", "price", "size", "value", "buyerMaker"]


class _Recorder:
    """Stands in for a connection of `api`: `raw` holds each push as sent (v3's through the
    simulator's v3 edge), `texts` as the v2 frame a client reads it back as."""

    def __init__(self, api: Api = "v2") -> None:
        self.api = api
        self.raw: list[Any] = []
        self.texts: list[Any] = []

    def send_push(self, text: str) -> None:
        self.texts.append(self.read(text))

    def read(self, text: str) -> Any:
        frame = json.loads(text)
        if self.api == "v2":
            self.raw.append(frame)
            return frame
        self.raw.append(_v3.push(frame, NOW_MS))
        read = push_to_v2(self.raw[-1])
        assert isinstance(read, dict), read
        return read


def _apply(book: dict[str, dict[Decimal, str]], frame: dict[str, Any], levels: int) -> None:
    for side in ("asks", "bids"):
        for level in frame[side]:
            price = Decimal(level["price"])
            if Decimal(level["size"]) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = level["size"]
    book["asks"] = dict(sorted(book["asks"].items())[:levels])
    book["bids"] = dict(sorted(book["bids"].items(), reverse=True)[:levels])


def _book_of(frame: dict[str, Any]) -> dict[str, dict[Decimal, str]]:
    sides = ("asks", "bids")
    return {side: {Decimal(lv["price"]): lv["size"] for lv in frame[side]} for side in sides}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 400), api=st.sampled_from(BOTH_DIALECTS))
def test_depth_deltas_rebuild_the_next_snapshot(seed: int, steps: int, api: Api) -> None:
    """Both depth views: continuous versions, an uncrossed book, and the deltas applied to the
    first snapshot give exactly the snapshot a later subscriber gets (as read on v2 and v3)."""
    symbol = "cmt_btcusdt" if seed % 2 else "cmt_c0001usdt"
    feed = FeedMarket([symbol], random.Random(seed), 0.0, FeedRates(), time.time)
    recorders = {levels: _Recorder(api) for levels in (15, 200)}
    subscribers = {f"depth.{symbol}.{n}": [recorder] for n, recorder in recorders.items()}
    channel = next(iter(subscribers)).replace(".15", ".{}")
    firsts = {
        n: recorder.read(feed._contracts[symbol].depth_snapshot(n))["data"][0]
        for n, recorder in recorders.items()
    }
    feed.watch(subscribers, 0.0)
    feed.run_events(steps)
    for levels, recorder in recorders.items():
        book = _book_of(firsts[levels])
        end = int(firsts[levels]["endVersion"])
        for message in recorder.texts:
            assert message["channel"] == channel.format(levels)
            [frame] = message["data"]
            assert frame["depthType"] == "CHANGED"
            assert frame["level"] == levels
            assert int(frame["startVersion"]) == end + 1
            assert int(frame["endVersion"]) >= int(frame["startVersion"])
            end = int(frame["endVersion"])
            _apply(book, frame, levels)
            assert max(book["bids"]) < min(book["asks"])
        fresh = recorder.read(feed._contracts[symbol].depth_snapshot(levels))["data"][0]
        assert int(fresh["endVersion"]) == end
        assert _book_of(fresh) == book
        assert len(fresh["asks"]) == len(fresh["bids"]) == levels
    # One version counter: both channels got the same steps.
    ends = [[m["data"][0]["endVersion"] for m in r.texts] for r in recorders.values()]
    assert ends[0] == ends[1]


@pytest.mark.parametrize("api", BOTH_DIALECTS)
def test_tickers_and_trades_have_the_documented_shape(api: Api) -> None:
    symbols = generated_symbols(["cmt_btcusdt"], 3)
    assert symbols == ("cmt_btcusdt", "cmt_c0001usdt", "cmt_c0002usdt")
    feed = FeedMarket(symbols, random.Random(1), 0.0, FeedRates(), time.time)
    recorder = _Recorder(api)
    feed.watch({f"{kind}.{s}": [recorder] for s in symbols for kind in ("ticker", "trades")}, 0.0)
    feed.run_events(500)
    kinds = {m["channel"].split(".")[0] for m in recorder.texts}
    assert kinds == {"ticker", "trades"}
    for message, raw in zip(recorder.texts, recorder.raw, strict=True):
        assert message["event"] == "payload"
        rows = message["data"]
        if api == "v3":  # the keys and types of the frames Weex.Net captured
            assert shape(raw) == shape(captured("Ticker" if raw["e"] == "ticker" else "Trades"))
            assert raw["s"] == message["channel"].split(".")[1].removeprefix("cmt_").upper()
        if message["channel"].startswith("ticker."):
            [row] = rows
            assert api == "v3" or list(row) == TICKER_KEYS  # (v3's checked above)
            assert row["symbol"] == message["channel"].split(".")[1]
            assert Decimal(row["low"]) <= Decimal(row["lastPrice"]) <= Decimal(row["high"])
        else:
            assert 1 <= len(rows) <= 3
            for row in rows:
                assert api == "v3" or list(row) == TRADE_KEYS
                assert isinstance(row["buyerMaker"], bool)
                value = Decimal(row["price"]) * Decimal(row["size"])
                assert abs(Decimal(row["value"]) - value) < Decimal("0.000001")


def test_an_unwatched_contract_does_not_move() -> None:
    symbols = ["cmt_c0001usdt", "cmt_c0002usdt"]
    feed = FeedMarket(symbols, random.Random(2), 0.0, FeedRates(), time.time)
    recorder = _Recorder()
    feed.watch({"ticker.cmt_c0001usdt": [recorder]}, 0.0)
    before = feed.depth_version("cmt_c0002usdt")
    feed.run_events(300)
    assert feed.depth_version("cmt_c0002usdt") == before
    assert recorder.texts
    feed.watch({}, feed.now)  # the last subscriber left: nothing is scheduled any more
    feed.run_events(300)
    assert feed.next_due() is None


def test_a_full_feed_names_its_contracts_and_refuses_nonsense() -> None:
    server = SimulatedWeexServer(full_feed=5)
    assert server.symbols[:3] == ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt")
    assert len(set(server.symbols)) == 5
    assert SimulatedWeexServer(full_feed=2).symbols == ("cmt_btcusdt", "cmt_ethusdt")
    with pytest.raises(ValueError, match="full_feed"):
        SimulatedWeexServer(full_feed=0)
    with pytest.raises(ValueError, match="positive"):
        FeedRates(depth=0)
    with pytest.raises(ValueError, match="full_feed=N"):
        SimulatedWeexServer(feed_rates=FeedRates())


# --------------------------------------------------------------------------- end to end


def _config(server: SimulatedWeexServer) -> WeexConfig:
    return WeexConfig(public_url=server.public_url)  # the URL says which dialect


@pytest.mark.parametrize("api", BOTH_DIALECTS)
def test_every_channel_of_a_full_feed_reaches_a_client_on_three_connections(api: Api) -> None:
    async def main() -> None:
        server = SimulatedWeexServer(
            full_feed=260, trade_interval=None, ping_interval=None, api=api
        )
        async with server, WeexWebSocketClient(_config(server)) as client:
            symbols = server.symbols
            assert len(symbols) == 260
            channels = [f"ticker.{s}" for s in symbols]
            channels += [f"trades.{s}" for s in symbols[:20]]
            channels += [f"depth.{s}.15" for s in symbols[-10:]]
            channels += [f"depth.{s}.200" for s in symbols[:5]]
            channels += [f"kline.LAST_PRICE.{symbols[-1]}.MINUTE_1"]
            got: dict[str, list[Any]] = {channel: [] for channel in channels}
            done = anyio.Event()

            def on_message(message: Any) -> None:
                got[message.channel].append(message)
                if all(len(v) >= 2 for v in got.values()):
                    done.set()

            for channel in channels:
                client.add_message_handler(channel, on_message)
                await client.subscribe(channel)
            with anyio.fail_after(HANG_GUARD):
                await done.wait()
            public = [c for c in server.connections if c.subscriptions]
        assert {c.path for c in public} == {f"/{api}/ws/public"}
        assert len(public) == 3  # 296 channels, at most 100 a connection
        assert sorted(len(c.subscriptions) for c in public) == [96, 100, 100]
        for channel in channels:  # a snapshot, then deltas
            if channel.startswith("depth."):
                kinds = [m.data["depthType"] for m in got[channel][:2]]
                assert kinds == ["SNAPSHOT", "CHANGED"], channel
        assert not any(m.gap for records in got.values() for m in records[1:])

    anyio.run(main, backend="asyncio")


def _single(server: SimulatedWeexServer) -> list[Any]:
    """The connections holding exactly one channel."""
    return [c for c in server.connections if len(c.subscriptions) == 1]


@pytest.mark.parametrize(
    ("backend", "api"), [("asyncio", "v2"), ("trio", "v2"), ("trio", "v3")]
)  # v3 on one backend: the dialect and the event loop are independent, and this one is slow
def test_a_flood_is_fast_and_leaves_other_connections_served(backend: str, api: Api) -> None:
    """Rates slow enough that nothing would arrive without the flood; the flooded client gets
    thousands of pushes while a second connection still has its pings answered and pushes."""
    slow = FeedRates(ticker=1000.0, depth=1000.0, trade_bursts=1000.0)

    async def main() -> None:
        server = SimulatedWeexServer(
            full_feed=20, flood=True, feed_rates=slow, trade_interval=None, ping_interval=0.1,
            api=api,
        )  # fmt: skip
        async with server, WeexWebSocketClient(_config(server)) as flooded:
            counts = {"flooded": 0, "other": 0}
            plenty = anyio.Event()

            def count(name: str) -> None:
                counts[name] += 1
                if counts["flooded"] >= 5000:
                    plenty.set()

            symbols = server.symbols
            for symbol in symbols:
                for channel in (f"ticker.{symbol}", f"trades.{symbol}", f"depth.{symbol}.15"):
                    flooded.add_message_handler(channel, lambda _: count("flooded"))
                    await flooded.subscribe(channel)
            async with WeexWebSocketClient(_config(server)) as other:
                other.add_message_handler(f"ticker.{symbols[0]}", lambda _: count("other"))
                await other.subscribe(f"ticker.{symbols[0]}")
                with anyio.fail_after(HANG_GUARD):
                    await server.wait_until(lambda: len(_single(server)) == 1, HANG_GUARD)
                    [mine] = _single(server)
                    await plenty.wait()
                    pongs = mine.pongs_received
                    await server.wait_until(
                        lambda: any(c.pongs_received >= pongs + 3 for c in _single(server)),
                        HANG_GUARD,
                    )
                assert counts["other"] > 0
                assert [c.id for c in _single(server)] == [mine.id]  # still open

    anyio.run(main, backend=backend)


def test_simulate_contracts_lists_them_for_relay_all() -> None:
    # v2 only: v3's full feed is checked in-process above (a client on three v3 connections),
    # and `simulate --api v3` in test_v3_cli; this one adds two processes' start-up (3 s).
    with simulate_process("--contracts", "250") as (_, banner):
        symbols = contracts_from(banner["symbols"])
        assert len(symbols) == 250
        assert symbols[0] == "cmt_btcusdt"
        last = symbols[-1]
        tickers = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "-m", "weex_anyio", "tickers", last, "--url", banner["public URL"],
             "--json", "--count", "2"],
            capture_output=True, text=True, cwd=ROOT, env=cli_env(), check=False,
            timeout=HANG_GUARD,
        )  # fmt: skip
        assert tickers.returncode == 0, tickers.stderr
        assert [r["channel"] for r in json_lines(tickers.stdout)] == [f"ticker.{last}"] * 2


# --------------------------------------------------------------------------- the sent log
# v2 only: the log holds digests of the v2 records the feed makes, which is what a v2 client
# receives; a v3 client receives other records (v3's names, numbers and event times), which
# no line of the log describes, so there is nothing on v3 to check the log against.


def _log_lines(messages: list[Any]) -> list[str]:
    """What a sent log says of these pushes."""
    lines = []
    for message in messages:
        for row in message["data"]:
            depth = f" {row['depthType']}:{row['endVersion']}" if "depthType" in row else ""
            lines.append(f"{message['channel']} {record_digest(row)}{depth}")
    return lines


def test_a_sent_log_has_each_record_of_each_push_once() -> None:
    symbols = generated_symbols([], 2)
    log = io.StringIO()
    feed = FeedMarket(symbols, random.Random(3), 0.0, FeedRates(), time.time, SentLog(log))
    first, second = _Recorder(), _Recorder()
    channels = [f"{kind}.{s}" for s in symbols for kind in ("ticker", "trades")]
    channels += [f"depth.{s}.15" for s in symbols]
    feed.watch({channel: [first, second] for channel in channels}, 0.0)
    feed.run_events(400)
    assert first.texts == second.texts  # every push to both, logged once
    lines = log.getvalue().splitlines()
    assert lines == _log_lines(first.texts)
    assert {line.split()[0] for line in lines} == set(channels)
    assert any(line.split()[-1].startswith("CHANGED:") for line in lines)
    assert any(message["channel"].startswith("trades.") and len(message["data"]) > 1
               for message in first.texts)  # fmt: skip
    parsed = list(read_sent_log(io.StringIO(log.getvalue() + "ticker.torn_li")))
    assert [f"{r.channel} {r.digest}" for r in parsed] == [" ".join(ln.split()[:2]) for ln in lines]
    assert record_digest({"b": "1", "a": [True]}) == record_digest({"a": [True], "b": "1"})
    assert record_digest({"a": "1"}) != record_digest({"a": "1.0"})


class _SilentClient:
    """A raw WebSocket client that reads every frame but never answers the server's close, so
    the server closes it only after its close timeout."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.messages: list[Any] = []
        self.accepted = anyio.Event()
        self.closed = anyio.Event()
        self._more = anyio.Event()

    async def open(self, host: str, channels: list[str]) -> None:
        """The handshake, then a subscribe per channel (`read` must be running)."""
        agent = [(b"user-agent", b"test")]
        request = ws.Request(host=host, target="/v2/ws/public", extra_headers=agent)
        await self.stream.send(self.ws.send(request))
        with anyio.fail_after(HANG_GUARD):
            await self.accepted.wait()
        for channel in channels:
            message = json.dumps({"event": "subscribe", "channel": channel})
            await self.stream.send(self.ws.send(ws.Message(data=message)))

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(HANG_GUARD):
            while len(self.messages) < count:
                self._more = anyio.Event()
                await self._more.wait()

    async def read(self) -> None:
        text = ""
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while True:
                self.ws.receive_data(await self.stream.receive())
                for event in self.ws.events():
                    if isinstance(event, ws.AcceptConnection):
                        self.accepted.set()
                    elif isinstance(event, ws.TextMessage):
                        text += event.data
                        if event.message_finished:
                            message = json.loads(text)
                            text = ""
                            if message.get("event") == "payload":
                                self.messages.append(message)
                                self._more.set()
                    elif isinstance(event, ws.CloseConnection):
                        self.closed.set()  # and no answer


async def _handshake_status(host: str, port: int) -> int:
    """The HTTP status a WebSocket upgrade to the public endpoint is answered with."""
    async with await anyio.connect_tcp(host, port) as stream:
        conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        agent = [(b"user-agent", b"test")]
        request = ws.Request(host=f"{host}:{port}", target="/v2/ws/public", extra_headers=agent)
        await stream.send(conn.send(request))
        with anyio.fail_after(HANG_GUARD):
            while True:
                conn.receive_data(await stream.receive())
                for event in conn.events():
                    if isinstance(event, ws.AcceptConnection):
                        return 101
                    if isinstance(event, ws.RejectConnection):
                        return event.status_code


def test_everything_a_sent_log_has_reached_a_subscriber_that_held_up_the_close() -> None:
    """The subscribe's snapshot is logged, and the feed stops before the server closes its
    connections: while it waits for a close answer, nothing more is logged and not sent, and
    nobody new connects (and is sent a snapshot)."""

    async def main() -> None:
        log = io.StringIO()
        server = SimulatedWeexServer(
            full_feed=3, trade_interval=None, ping_interval=None, on_push=SentLog(log)
        )
        symbols = server.symbols
        channels = [f"{kind}.{s}" for s in symbols for kind in ("ticker", "trades")]
        channels += [f"depth.{s}.15" for s in symbols]
        statuses: list[int] = []

        async def knock(client: _SilentClient) -> None:
            await client.closed.wait()  # the server is closing its connections
            statuses.append(await _handshake_status(server.host, server.port))

        async with anyio.create_task_group() as tg:
            async with server:
                client = _SilentClient(await anyio.connect_tcp(server.host, server.port))
                tg.start_soon(client.read)
                await client.open(f"{server.host}:{server.port}", channels)
                await client.wait_for(100)
                tg.start_soon(knock, client)
            assert client.closed.is_set()  # the server closed the connection while pushing
            await client.stream.aclose()
        assert statuses == [503]
        assert log.getvalue().splitlines() == _log_lines(client.messages)
        assert sum(" SNAPSHOT:" in line for line in log.getvalue().splitlines()) == 3

    anyio.run(main, backend="asyncio")


def test_simulate_sent_log_needs_the_full_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--sent-log", str(tmp_path / "sent.log")]) == 2
    assert "--contracts" in one_error_line(capsys.readouterr().err)
    missing = str(tmp_path / "no" / "sent.log")
    assert main(["simulate", "--contracts", "2", "--sent-log", missing]) == 2
    assert missing in one_error_line(capsys.readouterr().err)


def test_simulate_sent_log_has_what_a_client_received(tmp_path: Path) -> None:
    path = tmp_path / "sent.log"

    async def main() -> list[Any]:
        with simulate_process("--contracts", "3", "--sent-log", str(path)) as (process, banner):
            symbol = contracts_from(banner["symbols"])[-1]
            host, port = banner["public URL"].split("/")[2].split(":")
            async with (
                await anyio.connect_tcp(host, int(port)) as stream,
                anyio.create_task_group() as tg,
            ):
                client = _SilentClient(stream)
                tg.start_soon(client.read)
                await client.open(f"{host}:{port}", [f"ticker.{symbol}", f"depth.{symbol}.15"])
                await client.wait_for(20)
                process.terminate()  # a clean stop writes the log out
                with anyio.fail_after(HANG_GUARD):
                    await client.closed.wait()
                tg.cancel_scope.cancel()
            assert await anyio.to_thread.run_sync(process.wait) == 0
        return client.messages

    received = anyio.run(main, backend="asyncio")
    assert path.read_text().splitlines() == _log_lines(received)
