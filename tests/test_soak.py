"""Soak: the anyio client under a storm of faults for several seconds, then a full audit.

Four streams run against the simulator (tickers for three symbols, an order book, trades, and
the private orders stream fed by `simulate_trade`) while a `random.Random(seed)` picks faults:
dropped TCP connections (FIN and RST), short and long stalls (a long one makes the client
declare the connection dead), garbage text, invalid JSON, raw bytes below the WebSocket
framing, error events and order-book version gaps. One consumer is deliberately slow, so its
bounded buffer overflows. Afterwards:

* no task leaked: the loop has exactly the tasks it had before the client started;
* no subscription lost or duplicated: each server connection got every channel once (the book's
  resyncs excepted, which must alternate unsubscribe/subscribe), and once the storm is over the
  server's subscriptions are exactly the client's;
* memory stayed flat (tracemalloc, second half against first half) and no stream buffer ever
  held more than `buffer_size` messages;
* every gap was reported: after each reconnect, the first message of every stream that kept
  receiving has `.gap`, and `health.reconnects` equals the reconnects the server saw.

Loopback only; bounded by a deadline of a few seconds and by the fault loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
import tracemalloc
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import anyio
import attrs
import pytest

from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_anyio.testing import SimulatedWeexServer
from weex_anyio.testing._connection import ServerConnection
from weex_proto.events import WebSocketMessage
from weex_proto.fanout import MessageBuffer

SEED = 20240607
STORM_SECONDS = 9.0
SETTLE_SECONDS = 6.0
BUFFER_SIZE = 16
SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt")
BOOK = "depth.cmt_btcusdt.15"
PUBLIC_CHANNELS = frozenset({*(f"ticker.{s}" for s in SYMBOLS), BOOK, "trades.cmt_btcusdt"})
PRIVATE_CHANNELS = frozenset({"orders"})
INITIAL_CONNECTIONS = 2  # public and private
ERROR_CODES: tuple[str | int, ...] = ("40020", "30001", 50000)  # errors that are not fatal


@attrs.define
class Received:
    timestamp: float
    gap: bool


@attrs.define
class Audit:
    """What the test watches while the storm runs."""

    streams: dict[str, list[Received]] = attrs.field(factory=dict)
    decisions: list[tuple[float, str]] = attrs.field(factory=list)  # (time, endpoint)
    operations: list[tuple[int, bool, object]] = attrs.field(factory=list)
    faults: dict[str, int] = attrs.field(factory=dict)
    largest_buffer: int = 0
    memory: list[tuple[float, int]] = attrs.field(factory=list)

    def on_gap(self, endpoint: str, channels: tuple[str, ...]) -> None:
        self.decisions.append((time.time(), endpoint))


@contextmanager
def watched(audit: Audit) -> Iterator[None]:
    """Record every subscribe/unsubscribe the server handles, per connection, and the largest
    any stream buffer ever got; keep the client's and the simulator's logs out of memory."""
    handle_operation = ServerConnection._on_operation
    put = MessageBuffer.put

    def record_operation(self: ServerConnection, subscribe: bool, channel: object) -> None:
        audit.operations.append((self.id, subscribe, channel))
        handle_operation(self, subscribe, channel)

    def checked_put(self: MessageBuffer, message: WebSocketMessage) -> None:
        put(self, message)
        audit.largest_buffer = max(audit.largest_buffer, len(self))
        assert len(self) <= self.maxsize

    quiet = [logging.getLogger(name) for name in ("weex_ws", "weex_anyio.testing")]
    previous = [logger.disabled for logger in quiet]
    with (
        mock.patch.object(ServerConnection, "_on_operation", record_operation),
        mock.patch.object(MessageBuffer, "put", checked_put),
    ):
        for logger in quiet:
            logger.disabled = True
        try:
            yield
        finally:
            for logger, was in zip(quiet, previous, strict=True):
                logger.disabled = was


async def consume(
    name: str,
    stream: AsyncGenerator[WebSocketMessage, None],
    audit: Audit,
    delay: float = 0.0,
) -> None:
    log = audit.streams.setdefault(name, [])
    async for message in stream:
        log.append(Received(message.timestamp, message.gap))
        if delay:
            await anyio.sleep(delay)  # a slow consumer: its buffer overflows


async def storm(server: SimulatedWeexServer, rng: random.Random, audit: Audit) -> None:
    """Faults, one at a time, until the storm's deadline; trades keep the private stream busy."""

    async def stall(seconds: float) -> None:
        server.stall(seconds)
        await anyio.sleep(seconds + 0.05)

    async def raw_bytes() -> None:
        # Below the framing: a first byte no WebSocket frame may start with, then noise.
        first = rng.choice([0x83, 0x87, 0x8B, 0xC1, 0xF1])
        await server.send_raw_bytes(bytes([first]) + rng.randbytes(rng.randrange(1, 40)))

    faults: dict[str, Callable[[], Any]] = {
        "drop": lambda: server.drop_connections(),
        "reset": lambda: server.drop_connections(reset=True),
        "short_stall": lambda: stall(rng.uniform(0.05, 0.25)),
        "long_stall": lambda: stall(rng.uniform(0.9, 1.3)),
        "garbage_text": lambda: server.send_raw("".join(rng.choices("{}[]:,ab\"'\\ ", k=30))),
        "invalid_json": lambda: server.send_raw('{"event":"payload","channel":"ticker.'),
        "raw_bytes": raw_bytes,
        "error": lambda: server.send_error(
            rng.choice(ERROR_CODES),
            "Parameter channel is invalid",
            rng.choice([None, "ticker.cmt_dogeusdt"]),
        ),
        "depth_gap": lambda: server.inject_depth_gap("cmt_btcusdt", rng.randint(1, 20)),
    }
    deck: list[str] = []  # every fault once per round, in a random order
    deadline = anyio.current_time() + STORM_SECONDS
    while anyio.current_time() < deadline:
        await anyio.sleep(rng.uniform(0.1, 0.35))
        if not deck:
            deck = sorted(faults)
            rng.shuffle(deck)
        name = deck.pop()
        audit.faults[name] = audit.faults.get(name, 0) + 1
        outcome = faults[name]()
        if outcome is not None:
            await outcome
        await server.simulate_trade(rng.choice(SYMBOLS), rng.choice(["BUY", "SELL"]), "0.01")


def traced_memory() -> int:
    """Bytes allocated and still alive, leaving out this file's own records of the run."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, __file__), tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def sample_memory(audit: Audit) -> None:
    start = anyio.current_time()
    while True:
        audit.memory.append((anyio.current_time() - start, traced_memory()))
        await anyio.sleep(0.5)


def synced(server: SimulatedWeexServer, client: WeexWebSocketClient) -> bool:
    connections = server.connections
    by_kind = {c.private: c.subscriptions for c in connections}
    return (
        len(connections) == INITIAL_CONNECTIONS
        and by_kind == {False: PUBLIC_CHANNELS, True: PRIVATE_CHANNELS}
        and client.subscriptions == PUBLIC_CHANNELS | PRIVATE_CHANNELS
        and client.is_connected
    )


async def soak(audit: Audit) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    rng = random.Random(SEED)
    async with SimulatedWeexServer(
        seed=SEED, tick_interval=0.05, trade_interval=None, ping_interval=None
    ) as server:
        await anyio.sleep(0.1)  # the listener starts its per-socket tasks on its first turn
        tasks_before = len(asyncio.all_tasks())
        credentials = server.credentials
        config = WeexConfig(
            api_key=credentials.api_key,
            secret_key=credentials.secret_key,
            passphrase=credentials.passphrase,
            public_url=server.public_url,
            private_url=server.private_url,
        )
        client = WeexWebSocketClient(
            config,
            ping_interval=0.3,
            ping_timeout=0.3,
            backoff_base=0.02,
            backoff_max=0.1,
            max_retries=None,
            buffer_size=BUFFER_SIZE,
            clock=time.time,
            rng=random.Random(SEED + 1),
            on_gap=audit.on_gap,
        )
        async with client, anyio.create_task_group() as streams:
            streams.start_soon(
                consume, "tickers", client.stream_tickers(list(SYMBOLS)), audit, 0.03
            )
            streams.start_soon(
                consume, "book", client.stream_order_book("BTCUSDT", level=15), audit
            )
            streams.start_soon(consume, "trades", client.stream_trades("BTCUSDT"), audit)
            streams.start_soon(consume, "orders", client.stream_orders(), audit)
            with anyio.fail_after(5):
                await server.wait_until(lambda: synced(server, client))
            streams.start_soon(sample_memory, audit)
            await storm(server, rng, audit)
            with anyio.fail_after(SETTLE_SECONDS):
                await server.wait_until(lambda: synced(server, client))
            facts["operations"] = list(audit.operations)
            facts["reconnects"] = client.health.reconnects
            facts["accepted"] = server.stats.accepted
            streams.cancel_scope.cancel()
        with anyio.fail_after(5):
            await server.wait_for_connections(0, exact=True)
        await anyio.sleep(0.1)  # let the server's per-connection tasks finish unwinding
        facts["tasks_before"] = tasks_before
        facts["tasks_after"] = len(asyncio.all_tasks())
    return facts


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


@pytest.mark.usefixtures("traced")
def test_soak_under_random_faults() -> None:
    audit = Audit()
    with watched(audit):
        facts = anyio.run(soak, audit, backend="asyncio")

    # The storm was a storm: every kind of fault happened, and the client reconnected often.
    assert set(audit.faults) == {
        "drop",
        "reset",
        "short_stall",
        "long_stall",
        "garbage_text",
        "invalid_json",
        "raw_bytes",
        "error",
        "depth_gap",
    }
    assert facts["reconnects"] >= 10

    # No task leaked.
    assert facts["tasks_after"] == facts["tasks_before"]

    # Every reconnect the client counted is one the server saw (and nothing else).
    assert facts["reconnects"] == facts["accepted"] - INITIAL_CONNECTIONS

    # No subscription duplicated or lost on any connection.
    per_connection: dict[int, dict[object, list[bool]]] = {}
    for connection, subscribe, channel in facts["operations"]:
        per_connection.setdefault(connection, {}).setdefault(channel, []).append(subscribe)
    assert len(per_connection) >= 10
    for connection, channels in per_connection.items():
        for channel, operations in channels.items():
            expected = [index % 2 == 0 for index in range(len(operations))]
            assert operations == expected, (connection, channel, operations)
            if channel != BOOK:  # only the book resubscribes (for a fresh snapshot)
                assert operations == [True], (connection, channel, operations)

    # Bounded buffers, and the slow consumer really did fill its buffer.
    assert audit.largest_buffer == BUFFER_SIZE

    # Memory flat: the second half of the storm does not grow past the first.
    half = max(t for t, _ in audit.memory) / 2
    first = max(size for t, size in audit.memory if t <= half)
    second = max(size for t, size in audit.memory if t > half)
    assert second <= first + 256 * 1024, (first, second)

    # Every gap reported: after each reconnect, each stream's first message has `.gap`.
    endpoints = {"tickers": "public", "book": "public", "trades": "public", "orders": "private"}
    checked = 0
    for name, log in audit.streams.items():
        assert log, f"stream {name} received nothing"
        for decided_at, endpoint in audit.decisions:
            if endpoint != endpoints[name]:
                continue
            after = [m for m in log if m.timestamp > decided_at]
            if after:
                assert after[0].gap, (name, decided_at)
                checked += 1
    assert checked >= 20
