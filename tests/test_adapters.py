"""One behavioural suite for every adapter: weex_anyio on asyncio, on trio, and weex_trio.

Each test body below runs three times (see tests/adapters.py): the client is the same
`BaseClient` on three event loops, and these tests check that it behaves the same on each,
against the independent `SimulatedWeexServer`. Expected values come from the protocol reference
(/work/shared/weex-protocol.md), from what the simulator reports it did, or are computed here
(the backoff schedule), never copied from the client's output.

Timing tests (heartbeat, backoff) run the trio variants under `trio.testing.MockClock` with
autojump, so they take no real time and their timings are exact; asyncio has no virtual clock,
so its variant runs the same body in real time with short intervals and checks lower bounds.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import random
import ssl
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
import trustme
from anyio.streams.tls import TLSStream

from tests.adapters import (
    BOTH_DIALECTS,
    TAKE_LIMIT,
    USER_AGENT,
    Client,
    Harness,
    eventually,
    on_every_adapter,
    requests,
    take,
)
from tests.proxyserver import free_port
from weex_proto.config import Endpoint, WeexConfig
from weex_proto.errors import (
    AuthenticationError,
    ConnectionClosedError,
    HandshakeRejectedError,
    LocalProtocolError,
    ReconnectExhaustedError,
    StreamOverflowError,
    UnreachableError,
)
from weex_proto.events import WebSocketMessage
from weex_proto.messages import Fill, Order, Ticker

BTC = "ticker.cmt_btcusdt"
ETH = "ticker.cmt_ethusdt"
ETH_BOOK = "depth.cmt_ethusdt.200"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def operations(h: Harness) -> list[dict[str, str]]:
    """Subscribe/unsubscribe requests the server received, in order, in v2's words."""
    return requests(h.server)


def generator(
    stream: AsyncIterator[WebSocketMessage[Any]],
) -> AsyncGenerator[WebSocketMessage[Any], None]:
    """The streams are async generators; say so, so tests may `aclose()` them."""
    assert isinstance(stream, AsyncGenerator)
    return stream


CATCH_UP = "kline.LAST_PRICE.cmt_solusdt.MINUTE_1"


async def catch_up_with_server(client: Client) -> None:
    """Return once everything the server had queued for `client` has been delivered.

    The simulator answers a kline subscribe with a snapshot (doc §4.1.2) queued behind every
    push already waiting for that connection, so its arrival means they have all arrived.
    Once per client: a second subscribe to the same channel sends nothing.
    """
    arrived = anyio.Event()
    client.add_message_handler(CATCH_UP, lambda message: arrived.set())
    await client.subscribe(CATCH_UP)
    with anyio.fail_after(TAKE_LIMIT):
        await arrived.wait()
    client.remove_message_handler(CATCH_UP)


async def take_or_none(
    stream: AsyncIterator[WebSocketMessage[Any]], wait: float = 0.2
) -> WebSocketMessage[Any] | None:
    """The next message if one comes within `wait` seconds (for checking that none does).

    Giving up cancels the stream's generator, which ends it: use it last on a stream.
    """
    with anyio.move_on_after(wait):
        return await anext(stream)
    return None


# 1 ----------------------------------------------------------------------------------------------


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_stream_tickers_yields_parsed_tickers_after_documented_subscribes(
    h: Harness,
) -> None:
    async with h.client() as client:
        stream = generator(client.stream_tickers(["BTCUSDT", "eth-usdt"]))
        messages = [await take(stream) for _ in range(6)]
        while {m.channel for m in messages} != {BTC, ETH}:
            messages.append(await take(stream))
        await stream.aclose()

    for message in messages:
        assert message.frame["event"] == "payload"
        assert message.frame["channel"] == message.channel
        assert not message.gap
        ticker = message.record
        assert isinstance(ticker, Ticker)
        assert message.channel == f"ticker.{ticker.symbol}"
        raw = message.frame["data"][message.index]
        assert ticker.last_price == Decimal(raw["lastPrice"]) > 0
        assert ticker.mark_price == Decimal(raw["markPrice"])
        assert message.data["last"] == raw["lastPrice"] and message.data["volume"] == raw["size"]
    # Doc §3.1: one channel per request, exactly {"event":"subscribe","channel":...}.
    assert sorted(operations(h)[:2], key=str) == [
        {"event": "subscribe", "channel": BTC},
        {"event": "subscribe", "channel": ETH},
    ]
    # Closing the stream released both channels: one unsubscribe each, same documented shape.
    assert sorted(operations(h)[2:], key=str) == [
        {"event": "unsubscribe", "channel": BTC},
        {"event": "unsubscribe", "channel": ETH},
    ]
    assert h.server.stats.accepted == 1


# 2 ----------------------------------------------------------------------------------------------


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_dropped_connection_is_resumed_with_the_same_subscriptions(h: Harness) -> None:
    gaps: list[tuple[str, tuple[str, ...]]] = []
    delivered: list[WebSocketMessage[Any]] = []
    async with h.client(on_gap=lambda name, chans: gaps.append((name, chans))) as client:
        client.add_message_handler("ticker.*", delivered.append)
        stream = generator(client.stream_tickers(["BTCUSDT", "ETHUSDT"]))
        before = [await take(stream) for _ in range(4)]
        # Read everything sent before the drop, so the next message is the first one after it.
        h.server.pause_market()
        await catch_up_with_server(client)
        before += [await take(stream) for _ in range(len(delivered) - len(before))]

        assert await h.server.drop_connections() == 1
        h.server.resume_market()
        after = [await take(stream)]
        while len(after) < 6 or {m.channel for m in after} != {BTC, ETH}:
            after.append(await take(stream))

        assert not any(m.gap for m in before)
        # The first record of each channel after the drop is flagged, and only that one.
        firsts = {m.channel: m for m in reversed(after)}
        assert all(m.gap == (firsts[m.channel] is m) for m in after)
        wanted = {BTC, ETH, CATCH_UP}
        await h.server.wait_until(lambda: h.server.connections[0].subscriptions == wanted)
        subscribes = [op["channel"] for op in operations(h) if op["event"] == "subscribe"]
        assert sorted(subscribes) == sorted([*wanted, *wanted])  # each one resent exactly once
        assert client.connection_attempts == 2
        assert h.server.stats.accepted == 2
        assert [(name, sorted(chans)) for name, chans in gaps] == [("public", sorted(wanted))]
        await stream.aclose()


# 3 ----------------------------------------------------------------------------------------------


@on_every_adapter(dialects=BOTH_DIALECTS)
async def test_refused_handshakes_exhaust_the_retries(h: Harness) -> None:
    max_retries = 2
    h.server.reject_handshakes(100, status=503)
    async with h.client(max_retries=max_retries) as client:
        with anyio.fail_after(5), pytest.raises(ReconnectExhaustedError) as caught:
            await client.connect()
        assert client.connection_attempts == 1 + max_retries
        assert not client.is_connected
    last = caught.value.last_error
    assert isinstance(last, HandshakeRejectedError)
    assert last.status_code == 503
    assert (h.server.stats.rejected, h.server.stats.accepted) == (1 + max_retries, 0)


@on_every_adapter()
async def test_an_unreachable_server_is_retried_unless_fail_fast(h: Harness) -> None:
    """The documented policy by default; `fail_fast` (what the command line uses) gives up
    after the first attempt, saying why."""
    closed = h.config(public_url=f"ws://127.0.0.1:{free_port()}/v2/ws/public")
    async with h.client(closed, max_retries=2) as client:
        with anyio.fail_after(10), pytest.raises(ReconnectExhaustedError) as caught:
            await client.connect()
        assert client.connection_attempts == 3
    assert not isinstance(caught.value, UnreachableError)
    async with h.client(closed, max_retries=2, fail_fast=True) as client:
        with anyio.fail_after(10), pytest.raises(UnreachableError) as unreachable:
            await client.connect()
        assert client.connection_attempts == 1
    assert isinstance(unreachable.value.last_error, ConnectionClosedError)
    assert isinstance(unreachable.value.last_error.__cause__, OSError)
    assert str(unreachable.value).startswith("could not connect: ")


@on_every_adapter(tick_interval=0.02)
async def test_fail_fast_still_reconnects_once_the_server_was_reached(h: Harness) -> None:
    opened = 0
    tcp = h.adapter.tcp_transport(None)

    async def first_then_refused(endpoint: Endpoint) -> Any:
        nonlocal opened
        opened += 1
        if opened > 1:
            raise ConnectionRefusedError(111, "Connection refused")
        return await tcp(endpoint)

    async with h.client(max_retries=2, fail_fast=True, transport=first_then_refused) as client:
        stream = generator(client.stream_tickers("BTCUSDT"))
        await take(stream)
        await h.server.drop_connections()
        with anyio.fail_after(TAKE_LIMIT), pytest.raises(ReconnectExhaustedError) as caught:
            async for _ in stream:
                pass
    assert not isinstance(caught.value, UnreachableError)
    assert opened == 3  # the working connection, then max_retries attempts


@on_every_adapter(dialects=BOTH_DIALECTS)
async def test_wrong_secret_fails_at_once_with_authentication_error(h: Harness) -> None:
    config = h.config(secret_key="not-the-secret")
    async with h.client(config, max_retries=5) as client:
        with anyio.fail_after(5), pytest.raises(AuthenticationError) as caught:
            await client.connect(private=True)
        assert client.connection_attempts == 1
    assert (h.server.stats.rejected, h.server.stats.accepted) == (1, 0)
    assert "not-the-secret" not in str(caught.value)


def logged(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "weex_event", None) == event]


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_reconnects_that_deliver_data_never_use_up_the_retries(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="weex_ws")
    max_retries, drops = 2, 4
    async with h.client(max_retries=max_retries) as client:
        stream = generator(client.stream_tickers("BTCUSDT"))
        await take(stream)
        for _ in range(drops):
            assert await h.server.drop_connections() == 1
            message = await take(stream)
            while not message.gap:  # pushes that came before the drop
                message = await take(stream)
            # ...and this one came over the new connection, which resubscribed
        assert client.connection_attempts == 1 + drops
        assert client.is_connected
        await stream.aclose()
    assert h.server.stats.accepted == 1 + drops
    # Every drop ended a connection that worked: each time it is reconnection attempt 1.
    assert [getattr(r, "attempt", None) for r in logged(caplog, "reconnecting")] == [1] * drops
    assert logged(caplog, "gave_up") == []


@on_every_adapter(ping_interval=None, dialects=BOTH_DIALECTS)
async def test_connections_that_deliver_nothing_exhaust_the_retries_exactly(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="weex_ws")
    max_retries = 2

    def open_count(accepted: int) -> Callable[[], bool]:
        return lambda: h.server.stats.accepted == accepted and len(h.server.connections) == 1

    async with h.client(max_retries=max_retries) as client:
        await client.connect()  # no subscriptions, no pings: the server never says a thing
        for accepted in range(1, max_retries + 2):
            await h.server.wait_until(open_count(accepted))
            assert await h.server.drop_connections() == 1
        await eventually(lambda: bool(logged(caplog, "gave_up")))
        assert client.connection_attempts == 1 + max_retries
        assert not client.is_connected
    assert [getattr(r, "attempt", None) for r in logged(caplog, "reconnecting")] == [1, 2]
    (gave_up,) = logged(caplog, "gave_up")
    assert "gave up reconnecting after 2 attempts" in gave_up.getMessage()
    assert "connection lost" in gave_up.getMessage()  # why: the last close, not "None"


@on_every_adapter(dialects=BOTH_DIALECTS)
async def test_a_permanent_refusal_fails_at_once_with_its_status(h: Harness) -> None:
    for status in (404, 403, 400):  # 403 on the public endpoint: no credentials were involved
        h.server.reject_handshakes(100, status=status)
        async with h.client(max_retries=5) as client:
            with anyio.fail_after(5), pytest.raises(HandshakeRejectedError) as caught:
                await client.connect()
            assert client.connection_attempts == 1
        assert not isinstance(caught.value, AuthenticationError)
        assert (caught.value.status_code, caught.value.permanent) == (status, True)
        assert f"HTTP {status}" in str(caught.value)
    assert (h.server.stats.rejected, h.server.stats.accepted) == (3, 0)


@on_every_adapter(virtual_time=True, ping_interval=None, dialects=BOTH_DIALECTS)
async def test_handshake_timeouts_are_named_when_giving_up(h: Harness) -> None:
    h.server.stall()  # TCP connects, but the upgrade is never answered
    async with h.client(max_retries=1, connect_timeout=0.5) as client:
        with anyio.fail_after(30), pytest.raises(ReconnectExhaustedError) as caught:
            await client.connect()
        assert client.connection_attempts == 2
    h.server.resume()
    assert isinstance(caught.value.last_error, ConnectionClosedError)
    assert "handshake timed out" in str(caught.value.last_error)
    assert "handshake timed out" in str(caught.value)


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_a_message_too_big_is_the_last_error(h: Harness) -> None:
    async with h.client(max_retries=0, max_message_size=4096) as client:
        stream = generator(client.stream_tickers("BTCUSDT"))
        await take(stream)
        huge = {"event": "payload", "channel": BTC, "data": ["x" * 10_000]}
        await h.server.send_raw(json.dumps(huge))
        with anyio.fail_after(TAKE_LIMIT), pytest.raises(ReconnectExhaustedError) as caught:
            async for _ in stream:
                pass
    last = caught.value.last_error
    assert isinstance(last, ConnectionClosedError)
    assert last.code == 1009
    assert "1009" in str(caught.value)


# 4 ----------------------------------------------------------------------------------------------


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_handlers_sync_async_and_pattern_with_failing_ones_isolated(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="weex_ws")
    seen: dict[str, list[str]] = {"sync": [], "async": [], "pattern": [], "failing": []}

    def failing(message: WebSocketMessage[Any]) -> None:
        seen["failing"].append(message.channel)
        raise RuntimeError("sync handler bug")

    async def failing_async(message: WebSocketMessage[Any]) -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("async handler bug")

    def exact(message: WebSocketMessage[Any]) -> None:
        seen["sync"].append(message.channel)

    async def slow(message: WebSocketMessage[Any]) -> None:
        await anyio.lowlevel.checkpoint()
        seen["async"].append(message.channel)

    def pattern(message: WebSocketMessage[Any]) -> None:
        seen["pattern"].append(message.channel)

    async with h.client() as client:
        client.add_message_handler(BTC, failing)  # registered first: the others still run
        client.add_message_handler(BTC, failing_async)
        client.add_message_handler(BTC, exact)
        client.add_message_handler(BTC, slow)
        client.add_message_handler("ticker.*", pattern)
        await client.subscribe("ticker", symbol="BTCUSDT")
        await client.subscribe("ticker", symbol="ETHUSDT")
        await eventually(lambda: len(seen["async"]) >= 3 and ETH in seen["pattern"])

        assert set(seen["sync"]) == set(seen["async"]) == set(seen["failing"]) == {BTC}
        assert len(seen["failing"]) >= 3  # a failing handler stays registered
        assert set(seen["pattern"]) == {BTC, ETH}
        assert client.connection_attempts == 1
        assert client.is_connected

    failures = [r for r in caplog.records if r.name == "weex_ws" and r.exc_info]
    assert {type(r.exc_info[1]) for r in failures if r.exc_info} == {RuntimeError, ValueError}
    assert all(r.levelno == logging.ERROR and BTC in r.getMessage() for r in failures)


# 5 ----------------------------------------------------------------------------------------------


@on_every_adapter(tick_interval=0.01, dialects=BOTH_DIALECTS)
async def test_slow_ticker_consumer_keeps_only_the_newest_and_sees_a_gap(h: Harness) -> None:
    size = 4
    delivered: list[WebSocketMessage[Any]] = []
    async with h.client(buffer_size=size) as client:
        client.add_message_handler(BTC, delivered.append)  # sees every message, inline
        stream = generator(client.stream_tickers("BTCUSDT"))
        await take(stream)
        await eventually(lambda: len(delivered) >= 5 * size)  # ...while nobody reads
        h.server.pause_market()
        await catch_up_with_server(client)

        held = [await take(stream) for _ in range(size)]
        assert [m.raw for m in held] == [m.raw for m in delivered[-size:]]
        assert [m.gap for m in held] == [True] + [False] * (size - 1)
        assert await take_or_none(stream) is None  # nothing older was kept


@on_every_adapter(dialects=BOTH_DIALECTS)
async def test_slow_private_consumer_gets_stream_overflow_error(h: Harness) -> None:
    size = 3
    outcome: list[WebSocketMessage[Any] | StreamOverflowError] = []
    caught_up = anyio.Event()

    async with h.client(buffer_size=size) as client:

        async def consume() -> None:
            try:
                async for message in client.stream_orders():
                    outcome.append(message)
                    await caught_up.wait()  # a consumer far slower than the feed
            except StreamOverflowError as exc:
                outcome.append(exc)

        with anyio.fail_after(TAKE_LIMIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await h.server.wait_for_subscription("orders")
                for _ in range(size):  # two `orders` pushes each (PENDING, FILLED), doc §4.2
                    await h.server.simulate_trade("cmt_btcusdt", "BUY", "0.001")
                private = client.health.endpoints
                await eventually(lambda: private["private"].messages == 2 * size)
                caught_up.set()

        assert client.is_connected  # only the stream failed, not the connection
        assert client.connection_attempts == 1

    *messages, error = outcome
    assert isinstance(error, StreamOverflowError)
    assert error.maxsize == size
    assert len(messages) <= 1  # the slow consumer took at most the first before falling behind


# 6 ----------------------------------------------------------------------------------------------


@on_every_adapter(virtual_time=True, ping_interval=None, dialects=BOTH_DIALECTS)
async def test_silent_server_is_declared_dead_after_interval_plus_timeout(h: Harness) -> None:
    # Virtual seconds under MockClock (exact, instant); short real ones on asyncio.
    interval, timeout = (5.0, 5.0) if h.virtual_time else (0.2, 0.2)
    died = anyio.Event()
    died_at: list[float] = []

    def on_gap(name: str, channels: tuple[str, ...]) -> None:
        died_at.append(anyio.current_time())
        died.set()

    options: dict[str, Any] = {"ping_interval": interval, "ping_timeout": timeout, "on_gap": on_gap}
    async with h.client(**options) as client:
        stream = generator(client.stream_tickers("BTCUSDT"))
        await take(stream)
        h.server.stall()  # at once: in virtual time this is the instant the last data came
        silent_since = anyio.current_time()
        with anyio.fail_after(10 * (interval + timeout)):
            await died.wait()
        h.server.resume()
        message = await take(stream)

        assert message.gap
        assert client.connection_attempts == 2
        assert h.server.stats.accepted == 2
        silence = died_at[0] - silent_since
        if h.virtual_time:
            assert silence == pytest.approx(interval + timeout)
        else:
            assert silence >= interval + timeout - 0.01
        await stream.aclose()


@on_every_adapter(
    virtual_time=True, tick_interval=1000.0, dialects=BOTH_DIALECTS
)  # no market traffic needed
async def test_backoff_delays_follow_the_jittered_exponential_schedule(h: Harness) -> None:
    # Trio variants: the real numbers, in virtual time. asyncio: the same schedule, 1000x faster.
    scale = 1.0 if h.virtual_time else 0.001
    base, maximum, max_retries, seed = 10.0 * scale, 60.0 * scale, 5, 2024
    attempts: list[float] = []

    async def refusing(endpoint: Endpoint) -> Any:
        attempts.append(anyio.current_time())
        raise ConnectionRefusedError(f"nobody at {endpoint.host}:{endpoint.port}")

    options: dict[str, Any] = {
        "max_retries": max_retries,
        "backoff_base": base,
        "backoff_max": maximum,
        "rng": random.Random(seed),
        "transport": refusing,
    }
    async with h.client(**options) as client:
        with anyio.fail_after(10 * 130 * scale), pytest.raises(ReconnectExhaustedError):
            await client.connect()

    # backoff.py's documented rule, computed here from the same seed.
    rng = random.Random(seed)
    expected = [min(maximum, base * 2**n) * rng.uniform(0.5, 1.0) for n in range(max_retries)]
    observed = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(attempts) == max_retries + 1
    if h.virtual_time:
        assert observed == pytest.approx(expected, rel=1e-9)
    else:
        assert all(o >= e - 0.001 for o, e in zip(observed, expected, strict=True))


# 7 ----------------------------------------------------------------------------------------------


@on_every_adapter(dialects=BOTH_DIALECTS)
async def test_private_streams_receive_the_events_of_a_trade(h: Harness) -> None:
    wanted = {"orders": 2, "fill": 1, "positions": 1, "account": 1}  # per trade, doc §4.2
    got: dict[str, list[WebSocketMessage[Any]]] = {name: [] for name in wanted}

    async def collect(name: str, stream: AsyncIterator[WebSocketMessage[Any]]) -> None:
        async with contextlib.aclosing(generator(stream)) as messages:
            async for message in messages:
                got[name].append(message)
                if len(got[name]) == wanted[name]:
                    return

    async with h.client() as client, anyio.create_task_group() as tg:
        tg.start_soon(collect, "orders", client.stream_orders())
        tg.start_soon(collect, "fill", client.stream_fills())
        tg.start_soon(collect, "positions", client.stream_positions())
        tg.start_soon(collect, "account", client.stream_account())
        for name in wanted:
            await h.server.wait_for_subscription(name)
        trade = await h.server.simulate_trade("cmt_ethusdt", "SELL", "0.0125")
        with anyio.fail_after(5):
            await eventually(lambda: all(len(got[n]) == wanted[n] for n in wanted))

    # The simulator pushes orders, fill, orders, positions, account with one version sequence.
    versions = {
        name: [m.frame["msg"]["version"] for m in messages] for name, messages in got.items()
    }
    v = trade.versions
    assert versions == {
        "orders": [v[0], v[2]],
        "fill": [v[1]],
        "positions": [v[3]],
        "account": [v[4]],
    }
    orders = [m.record for m in got["orders"]]
    assert all(isinstance(o, Order) and o.id == trade.order_id for o in orders)
    assert [o.status for o in orders if isinstance(o, Order)] == ["PENDING", "FILLED"]
    assert [m.data["status"] for m in got["orders"]] == ["new", "filled"]
    assert [m.data["order_id"] for m in got["orders"]] == [trade.order_id] * 2
    (fill_message,) = got["fill"]
    fill = fill_message.record
    assert isinstance(fill, Fill)
    assert (fill.id, fill.order_id, fill.fill_size) == (
        trade.fill_id,
        trade.order_id,
        Decimal("0.0125"),
    )


# 8 ----------------------------------------------------------------------------------------------


RAW_FRAMES: dict[str, list[dict[str, Any]]] = {
    "v2": [{"event": "ping", "time": "1"}, {"event": "ping", "time": "2"}],
    "v3": [{"method": "PONG", "id": 1001}, {"method": "PONG", "id": 1002}],
}
"""Two frames `send_message` sends as they are, one given as a dict and one as its text: a
ping of the client's own on v2; on v3 (where the client never pings) PONGs of ids of its own."""


def expected_pongs(api: str) -> list[dict[str, Any]]:
    """What `send_pong("1693208170000")` and then `send_pong(..., key="type")` put on the wire,
    right after two subscribes on a fresh connection: v2 echoes the time under the key; v3
    sends PONG requests whose ids go on from the subscribes' 1 and 2 (docs/protocol-v3.md §3)."""
    if api == "v3":
        return [{"id": 3, "method": "PONG"}, {"id": 4, "method": "PONG"}]
    return [{"event": "pong", "time": "1693208170000"}, {"type": "pong", "time": "1693208175000"}]


# Server pings off: on v3 a PONG answering one would take an id the expected PONGs count on.
@on_every_adapter(tick_interval=0.02, ping_interval=None, dialects=BOTH_DIALECTS)
async def test_raw_sending_subscriptions_reconnect_and_disconnect(h: Harness) -> None:
    async with h.client() as client:
        assert await client.subscribe("ticker", symbol="BTCUSDT") == BTC
        assert await client.subscribe("depth", symbol="ETHUSDT", level=200) == ETH_BOOK
        assert await client.subscribe(BTC) == BTC  # already subscribed: nothing is sent
        assert client.subscriptions == {BTC, ETH_BOOK}
        await h.server.wait_for_subscription(BTC)
        await h.server.wait_for_subscription(ETH_BOOK)

        as_dict, as_text = RAW_FRAMES[h.server.api]
        await client.send_message(as_dict)
        await client.send_message(json.dumps(as_text))
        await client.send_pong("1693208170000")
        await client.send_pong("1693208175000", key="type")
        sent = [as_dict, as_text, *expected_pongs(h.server.api)]
        await h.server.wait_until(lambda: all(frame in h.server.received for frame in sent))
        assert [f for f in h.server.received if f in sent] == sent

        await client.unsubscribe("ticker", symbol="BTCUSDT")
        await client.unsubscribe("ticker", symbol="BTCUSDT")  # not subscribed: nothing is sent
        assert client.subscriptions == {ETH_BOOK}
        await h.server.wait_until(lambda: h.server.connections[0].subscriptions == {ETH_BOOK})

        await client.reconnect()
        assert client.is_connected
        assert client.connection_attempts == 2
        await h.server.wait_for_connections(1, exact=True)
        await h.server.wait_until(lambda: h.server.connections[0].subscriptions == {ETH_BOOK})

        trades = generator(client.stream_trades("SOLUSDT"))
        await take(trades)
        await client.disconnect()
        assert not client.is_connected
        with anyio.fail_after(5):
            rest = [message async for message in trades]  # the stream ends, not hangs
        assert all(m.channel == "trades.cmt_solusdt" for m in rest)
        await h.server.wait_for_connections(0, exact=True)
        await anyio.sleep(0.1)
        assert client.connection_attempts == 2  # disconnect() does not reconnect

    assert operations(h) == [
        {"event": "subscribe", "channel": BTC},
        {"event": "subscribe", "channel": ETH_BOOK},
        {"event": "unsubscribe", "channel": BTC},
        {"event": "subscribe", "channel": ETH_BOOK},  # resent on the new connection
        {"event": "subscribe", "channel": "trades.cmt_solusdt"},
    ]


# 9 ----------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def tls_front(
    target_port: int, context: ssl.SSLContext
) -> AsyncIterator[tuple[int, list[BaseException]]]:
    """A TLS terminator on loopback: decrypts and relays each connection to `target_port`.

    Yields the port it listens on and the list of failed TLS handshakes.
    """
    failures: list[BaseException] = []

    async def relay(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
        with contextlib.suppress(
            anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError
        ):
            async for chunk in source:
                await sink.send(chunk)
        with contextlib.suppress(Exception):
            await sink.aclose()

    async def handle(client: anyio.abc.SocketStream) -> None:
        try:
            tls = await TLSStream.wrap(
                client, server_side=True, ssl_context=context, standard_compatible=False
            )
        except (ssl.SSLError, OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            failures.append(exc)
            await anyio.aclose_forcefully(client)
            return
        upstream = await anyio.connect_tcp("127.0.0.1", target_port)
        async with tls, upstream, anyio.create_task_group() as tg:
            tg.start_soon(relay, tls, upstream)
            tg.start_soon(relay, upstream, tls)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield listener.extra(anyio.abc.SocketAttribute.local_port), failures  # noqa: S610
        tg.cancel_scope.cancel()


def tls_url(h: Harness, port: int) -> str:
    """The simulator's public URL (its dialect's path) as wss:// through `tls_front`'s port."""
    return f"wss://127.0.0.1:{port}{urlsplit(h.server.public_url).path}"


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_wss_verifies_certificates_by_default_and_trusts_a_given_ca(h: Harness) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async with tls_front(h.server.port, server_context) as (port, failures):
        config = h.config(public_url=tls_url(h, port))

        async with h.client(config, max_retries=0) as untrusting:
            with anyio.fail_after(5), pytest.raises(ReconnectExhaustedError) as caught:
                await untrusting.connect()
        assert untrusting.connection_attempts == 1
        assert any(isinstance(e, ssl.SSLCertVerificationError) for e in causes(caught.value))
        assert h.server.stats.accepted == 0  # nothing got past TLS
        await eventually(lambda: len(failures) == 1)  # the client walked away mid-handshake

        transport = h.adapter.tcp_transport(trusting)
        async with h.client(config, transport=transport, max_retries=0) as client:
            stream = generator(client.stream_tickers("BTCUSDT"))
            message = await take(stream)
            await stream.aclose()
        assert message.channel == BTC
        assert h.server.stats.accepted == 1
        assert len(failures) == 1


def server_context_signed_by(ca: trustme.CA) -> ssl.SSLContext:
    """A server context whose certificate for 127.0.0.1 is issued by `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_a_certificate_failure_is_spelled_out_in_the_error(h: Harness) -> None:
    server_context = server_context_signed_by(trustme.CA())
    not_trusting = ssl.create_default_context()  # the system's CAs, not this test CA

    async with tls_front(h.server.port, server_context) as (port, _):
        config = h.config(public_url=tls_url(h, port))
        transport = h.adapter.tcp_transport(not_trusting)
        async with h.client(config, transport=transport, max_retries=0) as client:
            with anyio.fail_after(5), pytest.raises(ReconnectExhaustedError) as caught:
                await client.connect()
    # trio hides it as the __cause__ of an empty BrokenResourceError; the text must not.
    last = caught.value.last_error
    assert last is not None
    for text in (str(caught.value), str(last)):
        assert "certificate verify failed" in text
        assert "SSLCertVerificationError" in text


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_ssl_context_option_trusts_a_custom_ca(h: Harness) -> None:
    ca = trustme.CA()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async with tls_front(h.server.port, server_context_signed_by(ca)) as (port, _):
        config = h.config(public_url=tls_url(h, port))
        system_only = ssl.create_default_context()
        async with h.client(config, ssl_context=system_only, max_retries=0) as untrusting:
            with anyio.fail_after(5), pytest.raises(ReconnectExhaustedError) as caught:
                await untrusting.connect()
        assert any(isinstance(e, ssl.SSLCertVerificationError) for e in causes(caught.value))
        assert h.server.stats.accepted == 0

        async with h.client(config, ssl_context=trusting, max_retries=0) as client:
            stream = generator(client.stream_tickers("BTCUSDT"))
            message = await take(stream)
            await stream.aclose()
        assert message.channel == BTC
        assert h.server.stats.accepted == 1


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_ca_file_from_the_environment_trusts_that_ca_only(h: Harness, tmp_path: Path) -> None:
    ca, other_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    other_ca.cert_pem.write_to_path(tmp_path / "other.pem")

    async with tls_front(h.server.port, server_context_signed_by(ca)) as (port, _):
        env = {
            "WEEX_WS_PUBLIC_URL": tls_url(h, port),
            "WEEX_USER_AGENT": USER_AGENT,
        }
        wrong = WeexConfig.from_env(env | {"WEEX_CA_FILE": str(tmp_path / "other.pem")})
        async with h.client(wrong, max_retries=0) as untrusting:
            with anyio.fail_after(5), pytest.raises(ReconnectExhaustedError) as caught:
                await untrusting.connect()
        assert any(isinstance(e, ssl.SSLCertVerificationError) for e in causes(caught.value))
        assert h.server.stats.accepted == 0

        config = WeexConfig.from_env(env | {"WEEX_CA_FILE": str(tmp_path / "ca.pem")})
        assert config.ca_file == str(tmp_path / "ca.pem")
        assert config.dialect.name == h.server.api  # the URL's path says which
        async with h.client(config, max_retries=0) as client:
            stream = generator(client.stream_tickers("BTCUSDT"))
            message = await take(stream)
            await stream.aclose()
        assert message.channel == BTC
        assert h.server.stats.accepted == 1


def causes(error: BaseException) -> list[BaseException]:
    """`error`, its `last_error` and their `__cause__`/`__context__` chain, nearest first."""
    chain: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or current in chain:
            continue
        chain.append(current)
        pending.extend(
            [current.__context__, current.__cause__, getattr(current, "last_error", None)]
        )
    return chain


# 10 ---------------------------------------------------------------------------------------------


@on_every_adapter(tick_interval=0.02)
async def test_use_outside_async_with_is_asyncio_only(h: Harness) -> None:
    client = h.client()
    if h.adapter.loop == "asyncio":
        await client.connect()
        stream = generator(client.stream_tickers("BTCUSDT"))
        assert (await take(stream)).channel == BTC
        await stream.aclose()
        await client.close()
        assert not client.is_connected
        await h.server.wait_for_connections(0, exact=True)
        with pytest.raises(LocalProtocolError, match="closed"):
            await client.connect()
        with pytest.raises(LocalProtocolError, match="closed"):
            await client.subscribe("ticker", symbol="ETHUSDT")
        assert client.subscriptions == frozenset()
        return
    with pytest.raises(LocalProtocolError, match="async with"):
        await client.connect()
    with pytest.raises(LocalProtocolError, match="async with"):
        await client.subscribe("ticker", symbol="BTCUSDT")
    with pytest.raises(LocalProtocolError, match="async with"):
        await anext(client.stream_tickers("ETHUSDT"))
    assert client.subscriptions == frozenset()  # refused calls changed nothing
    assert h.server.stats.accepted == 0
    # ...and left no half-started connection behind: the same client works once entered.
    async with client:
        stream = generator(client.stream_tickers("BTCUSDT"))
        assert (await take(stream)).channel == BTC
        await stream.aclose()


# the trio example ---------------------------------------------------------------------------


def test_trio_tickers_example_runs_against_the_simulator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEEX_")}
    command = [
        sys.executable,
        str(EXAMPLES / "trio_tickers.py"),
        "--count",
        "4",
        "--tick-interval",
        "0.02",
    ]
    done = subprocess.run(  # noqa: S603 - our own script
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "embedded simulator" in done.stdout
    assert "4 ticker messages on trio" in done.stdout
