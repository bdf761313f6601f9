"""More than 100 channels on an endpoint: the real client spreads them over several connections.

Every body runs on each adapter (tests/adapters.py) against the simulator, which enforces
WEEX's limits (100 channels per connection; per IP, concurrent connections and connection
requests per window, refused with HTTP 429). What is expected is derived from those limits
and from what the simulator reports it saw, never from the client's own bookkeeping.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.adapters import (
    BOTH_DIALECTS,
    TAKE_LIMIT,
    Harness,
    eventually,
    on_every_adapter,
    operations,
    take,
)
from weex_anyio.testing import ConnectionInfo
from weex_proto.errors import ServerError
from weex_proto.events import WebSocketMessage
from weex_proto.pool import ConnectionBudget

SYMBOLS = [f"cmt_sym{i}usdt" for i in range(350)]
PER_CONNECTION = 100  # WEEX's documented channel limit, the simulator's default
BUFFER = 100_000
"""Stream buffers big enough that no gap flag can come from a slow consumer, only from a
reconnect."""
LIMIT = 40.0
"""Seconds for a whole scenario that spans several connections and reconnects."""


def tickers(symbols: list[str]) -> list[str]:
    return [f"ticker.{symbol}" for symbol in symbols]


def groups(symbols: list[str]) -> list[list[str]]:
    """The symbols in runs of at most 100: what fits on one connection each."""
    return [symbols[i : i + PER_CONNECTION] for i in range(0, len(symbols), PER_CONNECTION)]


def generator(
    stream: AsyncIterator[WebSocketMessage[Any]],
) -> AsyncGenerator[WebSocketMessage[Any], None]:
    assert isinstance(stream, AsyncGenerator)
    return stream


def public(h: Harness) -> list[ConnectionInfo]:
    return [c for c in h.server.connections if not c.private]


def serving(h: Harness, wanted: list[set[str]]) -> Callable[[], bool]:
    """The server holds exactly these public connections' subscriptions (in any order)."""

    def check() -> bool:
        held = sorted((sorted(c.subscriptions) for c in public(h)), key=str)
        return held == sorted((sorted(w) for w in wanted), key=str)

    return check


def subscribes_since(h: Harness, start: int) -> list[str]:
    """The ticker channels the server was asked for since `start`, as v2 names (a v3
    request's `BTCUSDT@ticker` is `ticker.cmt_btcusdt`)."""
    channels = []
    for frame in h.server.received[start:]:
        if not isinstance(frame, dict):
            continue
        if frame.get("event") == "subscribe":
            channels.append(frame["channel"])
        elif frame.get("method") == "SUBSCRIBE":
            for name in frame["params"]:
                symbol, _, kind = name.partition("@")
                assert kind == "ticker", name
                channels.append(f"ticker.cmt_{symbol.lower()}")
    return channels


class Feed:
    """A ticker stream read by a task of its own, into `messages`; `close()` ends the stream."""

    def __init__(self, stream: AsyncGenerator[WebSocketMessage[Any], None]) -> None:
        self.stream = stream
        self.messages: list[WebSocketMessage[Any]] = []
        self.scope = anyio.CancelScope()
        self.closed = anyio.Event()

    async def run(self) -> None:
        try:
            with self.scope:
                async with contextlib.aclosing(self.stream) as messages:
                    async for message in messages:
                        self.messages.append(message)
        finally:
            self.closed.set()

    async def close(self) -> None:
        self.scope.cancel()
        with anyio.fail_after(TAKE_LIMIT):
            await self.closed.wait()

    def since(self, start: int) -> list[WebSocketMessage[Any]]:
        return self.messages[start:]


async def open_feeds(
    client: Any, tg: anyio.abc.TaskGroup, symbol_groups: list[list[str]]
) -> list[Feed]:
    """One ticker stream per group, each subscribed (so placed) before the next is opened:
    with 100 symbols a group, each fills a connection of its own."""
    feeds = []
    for group in symbol_groups:
        feed = Feed(generator(client.stream_tickers(group)))
        tg.start_soon(feed.run)
        channels = set(tickers(group))
        await eventually(lambda: channels <= client.subscriptions)  # noqa: B023 - awaited here
        feeds.append(feed)
    return feeds


# --------------------------------------------------------------------------- spreading


@on_every_adapter(symbols=SYMBOLS, tick_interval=1.0, dialects=BOTH_DIALECTS)
async def test_350_tickers_stream_over_four_connections_of_at_most_100(h: Harness) -> None:
    async with h.client(buffer_size=BUFFER) as client:
        stream = generator(client.stream_tickers(SYMBOLS))
        seen: set[str] = set()
        with anyio.fail_after(LIMIT):
            while len(seen) < len(SYMBOLS):
                message = await anext(stream)
                assert not message.gap
                assert message.record.symbol in SYMBOLS
                seen.add(message.channel)
        assert seen == set(tickers(SYMBOLS))  # every symbol's pushes arrive

        connections = public(h)
        assert len(connections) == math.ceil(len(SYMBOLS) / PER_CONNECTION) == 4
        assert all(len(c.subscriptions) <= PER_CONNECTION for c in connections)
        assert set().union(*(c.subscriptions for c in connections)) == set(tickers(SYMBOLS))
        stats = h.server.stats
        assert (stats.accepted, stats.rejected, stats.rate_limited) == (4, 0, 0)
        assert stats.subscribe_ops == len(SYMBOLS)  # each channel subscribed once, nowhere twice
        assert client.connection_attempts == 4
        assert client.subscriptions == set(tickers(SYMBOLS))

        health = client.health.connections
        assert [(c.endpoint, c.index, c.channels, c.connected) for c in health] == [
            ("public", 1, 100, True),
            ("public", 2, 100, True),
            ("public", 3, 100, True),
            ("public", 4, 50, True),
        ]
        assert all(c.messages > 0 and c.last_message_at is not None for c in health)
        assert all(c.connected_at is not None and c.reconnects == 0 for c in health)
        assert sum(c.messages for c in health) == client.health.endpoints["public"].messages
        await stream.aclose()


@on_every_adapter(symbols=SYMBOLS, tick_interval=1.0, dialects=BOTH_DIALECTS)
async def test_one_dropped_connection_resubscribes_only_its_channels_and_only_its_streams_gap(
    h: Harness,
) -> None:
    symbol_groups = groups(SYMBOLS)
    wanted = [set(tickers(group)) for group in symbol_groups]
    gaps: list[tuple[str, tuple[str, ...]]] = []
    options: dict[str, Any] = {"buffer_size": BUFFER, "on_gap": lambda *gap: gaps.append(gap)}
    async with h.client(**options) as client, anyio.create_task_group() as tg:
        feeds = await open_feeds(client, tg, symbol_groups)
        await h.server.wait_until(serving(h, wanted), timeout=LIMIT)
        [victim] = [c for c in public(h) if c.subscriptions == wanted[1]]
        received_before = len(h.server.received)
        subscribe_ops = h.server.stats.subscribe_ops
        await eventually(lambda: all(feed.messages for feed in feeds), limit=LIMIT)
        read_before = [len(feed.messages) for feed in feeds]

        assert await h.server.drop_connections(ids=[victim.id]) == 1

        def resumed() -> bool:
            """The dropped stream had its gap, and every channel of it came back since."""
            after = feeds[1].since(read_before[1])
            gap = next((n for n, m in enumerate(after) if m.gap), None)
            return gap is not None and {m.channel for m in after[gap:]} == wanted[1]

        await eventually(resumed, limit=LIMIT)
        grown = list(zip(feeds, read_before, strict=True))
        await eventually(lambda: all(len(feed.messages) > n for feed, n in grown))
        after = feeds[1].since(read_before[1])
        # Once per channel of the dropped connection: its first record after the reconnect.
        assert sorted(m.channel for m in after if m.gap) == sorted(wanted[1])
        for n in (0, 2, 3):  # kept streaming, never flagged
            assert len(feeds[n].messages) > read_before[n]
            assert not any(m.gap for m in feeds[n].messages)

        # Exactly the dropped connection's channels were subscribed again, each once.
        assert sorted(subscribes_since(h, received_before)) == sorted(wanted[1])
        assert h.server.stats.subscribe_ops == subscribe_ops + len(wanted[1])
        assert h.server.stats.accepted == 5
        assert client.connection_attempts == 5
        assert [(name, set(channels)) for name, channels in gaps] == [("public", wanted[1])]
        assert [c.reconnects for c in client.health.connections] == [0, 1, 0, 0]
        await h.server.wait_until(serving(h, wanted))
        tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- pacing


def all_open(h: Harness) -> Callable[[], bool]:
    return lambda: len(public(h)) == 4


def holding(h: Harness, wanted: set[str]) -> Callable[[], bool]:
    """Every wanted channel is subscribed on some public connection."""
    return lambda: set().union(*(c.subscriptions for c in public(h))) == wanted


QUIET_MARKET = 1000.0  # seconds between market steps: only subscriptions matter here


@on_every_adapter(
    virtual_time=True,
    symbols=SYMBOLS,
    tick_interval=QUIET_MARKET,
    max_connection_requests=6,
    connection_request_window=2.0,
    dialects=BOTH_DIALECTS,
)
async def test_mass_drops_reconnect_paced_within_the_servers_limits(h: Harness) -> None:
    # The server takes 6 connection requests per 2 s. The client's budget allows 6 per 3 s
    # (a margin for the time a request takes to arrive). Two mass drops in a row need 8
    # reconnects at once on top of the 4 first connects: the budget must hold some back.
    budget = ConnectionBudget(max_requests=6, window=3.0, burst=6)
    wanted = set(tickers(SYMBOLS))
    async with h.client(connection_budget=budget) as client, anyio.create_task_group() as tg:
        tg.start_soon(Feed(generator(client.stream_tickers(SYMBOLS))).run)
        await h.server.wait_until(holding(h, wanted), timeout=LIMIT)
        for _ in range(2):
            assert await h.server.drop_connections() == 4
            await h.server.wait_until(all_open(h), timeout=LIMIT)
        await h.server.wait_until(holding(h, wanted), timeout=LIMIT)

        stats = h.server.stats
        assert stats.rate_limited == 0  # never refused: the reconnects were paced...
        assert stats.accepted == 12 > 6  # ...though far more than one window's worth went out
        assert client.connection_attempts == 12
        assert all(c.connected for c in client.health.connections)
        tg.cancel_scope.cancel()


@on_every_adapter(
    virtual_time=True,
    symbols=SYMBOLS,
    tick_interval=QUIET_MARKET,
    max_connection_requests=6,
    connection_request_window=2.0,
    dialects=BOTH_DIALECTS,
)
async def test_without_a_budget_within_the_limits_the_same_drops_get_http_429(
    h: Harness,
) -> None:
    # The control for the test above: the default budget (a burst of 20) does not know this
    # server's lower limit, so the same mass reconnects are refused.
    def refused() -> bool:
        return h.server.stats.rate_limited > 0

    def open_or_refused() -> bool:
        return all_open(h)() or refused()

    async with h.client() as client, anyio.create_task_group() as tg:
        tg.start_soon(Feed(generator(client.stream_tickers(SYMBOLS))).run)
        await h.server.wait_until(holding(h, set(tickers(SYMBOLS))), timeout=LIMIT)
        for _ in range(3):
            await h.server.wait_until(open_or_refused, timeout=LIMIT)
            if refused():
                break
            await h.server.drop_connections()
        await h.server.wait_until(refused, timeout=LIMIT)
        tg.cancel_scope.cancel()


@on_every_adapter(
    virtual_time=True,
    symbols=SYMBOLS[:250],
    tick_interval=QUIET_MARKET,
    max_connection_requests=2,
    connection_request_window=2.0,
)
async def test_used_again_with_more_connections_than_the_window_allows_all_come_back_paced(
    h: Harness,
) -> None:
    # 250 tickers need three connections; the budget allows 2 requests per 3 s (the server 2
    # per 2 s). Used again after a disconnect, the first two are granted at once and hold the
    # window until their attempts start: no time frees it for the third, only those starts do
    # (its turn counts from them), in whatever order the loop runs the connections' tasks.
    budget = ConnectionBudget(max_requests=2, window=3.0, burst=2)
    wanted = set(tickers(SYMBOLS[:250]))
    async with h.client(connection_budget=budget) as client:
        for channel in sorted(wanted):
            await client.subscribe(channel)
        await h.server.wait_until(holding(h, wanted), timeout=LIMIT)
        await client.disconnect()
        await h.server.wait_for_connections(0, exact=True)
        await anyio.sleep(5.0)  # the window is empty again
        await client.connect()
        await h.server.wait_until(holding(h, wanted), timeout=LIMIT)
        assert len(public(h)) == 3
        stats = h.server.stats
        assert stats.rate_limited == 0 and stats.accepted == 6
        assert client.connection_attempts == 6


# --------------------------------------------------------------------------- coming and going


@on_every_adapter(symbols=SYMBOLS[:250], tick_interval=1.0, dialects=BOTH_DIALECTS)
async def test_closing_streams_closes_the_connections_they_emptied(h: Harness) -> None:
    symbol_groups = groups(SYMBOLS[:250])
    wanted = [set(tickers(group)) for group in symbol_groups]
    async with h.client(buffer_size=BUFFER) as client, anyio.create_task_group() as tg:
        feeds = await open_feeds(client, tg, symbol_groups)
        await h.server.wait_until(serving(h, wanted), timeout=LIMIT)
        unsubscribes = h.server.stats.unsubscribe_ops

        await feeds[2].close()  # the 50 on the third connection
        await h.server.wait_until(serving(h, wanted[:2]))
        await feeds[1].close()
        await h.server.wait_until(serving(h, wanted[:1]))
        # Closed, not emptied one unsubscribe at a time: no operation was spent on them.
        assert h.server.stats.unsubscribe_ops == unsubscribes
        assert [c.index for c in client.health.connections] == [1]

        await feeds[0].close()
        # The endpoint's first connection stays, as it always did: its channels unsubscribed.
        await h.server.wait_until(serving(h, [set()]))
        assert h.server.stats.unsubscribe_ops == unsubscribes + len(wanted[0])
        assert client.is_connected
        assert client.subscriptions == frozenset()
        assert client.connection_attempts == 3
        assert h.server.stats.accepted == 3


@on_every_adapter(symbols=SYMBOLS[:150], tick_interval=0.5, dialects=BOTH_DIALECTS)
async def test_reconnect_replaces_every_connection_of_the_endpoint(h: Harness) -> None:
    symbol_groups = groups(SYMBOLS[:150])
    async with h.client(buffer_size=BUFFER) as client:
        stream = generator(client.stream_tickers(SYMBOLS[:150]))
        await take(stream)
        wanted = [set(tickers(group)) for group in symbol_groups]
        await h.server.wait_until(serving(h, wanted), timeout=LIMIT)
        await client.reconnect()
        assert client.is_connected
        assert all(c.connected for c in client.health.connections)
        assert client.connection_attempts == 4
        await h.server.wait_until(serving(h, wanted), timeout=LIMIT)
        assert h.server.stats.accepted == 4
        message = await take(stream)
        while not message.gap:
            message = await take(stream)
        await stream.aclose()


@on_every_adapter(symbols=SYMBOLS[:100], tick_interval=0.25, dialects=BOTH_DIALECTS)
async def test_a_book_on_the_second_connection_resyncs_there(h: Harness) -> None:
    async with h.client(buffer_size=BUFFER) as client:
        ticker_stream = generator(client.stream_tickers(SYMBOLS[:100]))  # fills connection 1
        await take(ticker_stream)
        book = generator(client.stream_order_book(SYMBOLS[0], level=15))
        depth = f"depth.{SYMBOLS[0]}.15"
        await take(book)
        [second] = [c for c in public(h) if depth in c.subscriptions]
        assert second.subscriptions == {depth}
        h.server.inject_depth_gap(SYMBOLS[0], skipped=5)
        with anyio.fail_after(LIMIT):
            message = await anext(book)
            while not message.data["resyncing"]:
                message = await anext(book)
            message = await anext(book)
        assert not message.data["resyncing"] and message.data["bids"]
        assert client.health.book_resyncs == 1
        assert operations(h.server, depth) == ["subscribe", "unsubscribe", "subscribe"]
        assert h.server.stats.accepted == 2  # resubscribed on its connection, no reconnect
        assert not (await take(ticker_stream)).gap
        await book.aclose()
        await ticker_stream.aclose()


@on_every_adapter(symbols=SYMBOLS[:100], tick_interval=0.5, dialects=BOTH_DIALECTS)
async def test_a_channel_refused_on_a_new_connection_closes_it_again(h: Harness) -> None:
    async with h.client(buffer_size=BUFFER) as client:
        stream = generator(client.stream_tickers(SYMBOLS[:100]))
        await take(stream)
        with pytest.raises(ServerError):
            await client.subscribe("ticker.cmt_nosuchusdt", ack_timeout=TAKE_LIMIT)
        await h.server.wait_until(lambda: len(public(h)) == 1)  # its connection had no other
        trades = generator(client.stream_trades("NOSUCHUSDT"))
        with anyio.fail_after(TAKE_LIMIT), pytest.raises(ServerError):
            await anext(trades)
        await h.server.wait_until(lambda: len(public(h)) == 1)
        assert h.server.stats.accepted == 3
        assert [c.index for c in client.health.connections] == [1]
        assert not (await take(stream)).gap  # the first connection never noticed
        await stream.aclose()
