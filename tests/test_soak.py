"""Soak: the anyio client under a storm of faults, then a full audit.

Four streams run against the simulator (tickers for three symbols, an order book, trades, and
the private orders stream fed by `simulate_trade`) while a `random.Random(seed)` deals faults:
dropped TCP connections (FIN and RST), short and long stalls (a long one makes the client
declare the connection dead), garbage text, invalid JSON, raw bytes below the WebSocket
framing, error events and order-book version gaps. One consumer is deliberately slow: it stops
reading until its bounded buffer has overflowed, then reads slowly.

The storm is a fixed number of faults (every kind `ROUNDS` times, each round in a random
order), not a duration, and every check below is an invariant of what actually happened, so a
slow or busy machine runs the same storm, only longer. Afterwards:

* no task leaked: the loop gets back to exactly the tasks it had before the client started;
* every reconnect is accounted for: each one started exactly one new attempt, every attempt
  reached the server, and every connection the server dropped was reconnected;
* no subscription lost or duplicated: each server connection got every channel at most once
  (the book's resyncs excepted, which must alternate unsubscribe/subscribe), and once the storm
  is over the server's subscriptions are exactly the client's;
* every gap was flagged: after each reconnect, the next message put into each of that
  endpoint's streams carries `.gap`, and every stream did receive one after the last reconnect;
* buffers stayed bounded (and the slow one really filled up); memory stayed flat from the first
  round of faults to the last (tracemalloc, sampled at the same quiet point of each round).

It runs on v2, and on v3 with fewer rounds (the same storm, shorter: it is the slowest test).

Loopback only. Timeouts here only turn a hang into a failure; they are never what is measured.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import tracemalloc
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal
from unittest import mock

import anyio
import attrs
import pytest

from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_anyio.testing import SimulatedWeexServer
from weex_anyio.testing._connection import ServerConnection
from weex_proto import messages, records
from weex_proto.events import WebSocketMessage
from weex_proto.runtime.fanout import MessageBuffer

SEED = 20240607
ROUNDS = 3
"""Each kind of fault happens exactly this many times (on v2; `V3_ROUNDS` on v3)."""
V3_ROUNDS = 2
HANG_LIMIT = 60.0
"""Seconds after which a wait that should end is taken to be a hang (never a measurement)."""
BUFFER_SIZE = 16
SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt")
BOOK = "depth.cmt_btcusdt.15"
PUBLIC_CHANNELS = frozenset({*(f"ticker.{s}" for s in SYMBOLS), BOOK, "trades.cmt_btcusdt"})
PRIVATE_CHANNELS = frozenset({"orders"})
STREAMS = {"tickers": "public", "book": "public", "trades": "public", "orders": "private"}
INITIAL_CONNECTIONS = 2  # public and private
ERROR_CODES: tuple[str | int, ...] = ("40020", "30001", 50000)  # errors that are not fatal
MEMORY_GROWTH_LIMIT = 256 * 1024
"""Bytes the live heap may grow from the first round to the last: far less than a leak of one
connection per reconnect would take, far more than allocator noise."""


def stream_of(channel: str) -> str:
    if channel.startswith("ticker."):
        return "tickers"
    if channel == BOOK:
        return "book"
    if channel.startswith("trades."):
        return "trades"
    return "orders"


@attrs.define(eq=False)
class Audit:
    """What the test watches while the storm runs."""

    received: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(STREAMS, 0))
    operations: list[tuple[int, bool, object]] = attrs.field(factory=list)
    faults: dict[str, int] = attrs.field(factory=dict)
    dropped: int = 0
    """Server connections the drop/reset faults closed."""
    buffers: dict[MessageBuffer, str] = attrs.field(factory=dict)
    """Each stream's buffer (by identity), learned from the first message put into it."""
    expect_gap: set[MessageBuffer] = attrs.field(factory=set)
    """Buffers whose endpoint reconnected since their last message: the next one needs .gap."""
    gaps_checked: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(STREAMS, 0))
    violations: list[str] = attrs.field(factory=list)
    largest_buffer: int = 0
    ticker_overflowed: anyio.Event = attrs.field(factory=anyio.Event)
    memory: list[int] = attrs.field(factory=list)

    def on_gap(self, endpoint: str, channels: tuple[str, ...]) -> None:
        self.expect_gap |= {b for b, stream in self.buffers.items() if STREAMS[stream] == endpoint}

    def put(self, buffer: MessageBuffer, message: WebSocketMessage[Any]) -> None:
        """After `MessageBuffer.put`: check the bound and the gap flag, keep counts."""
        stream = self.buffers.setdefault(buffer, stream_of(message.channel))
        self.largest_buffer = max(self.largest_buffer, len(buffer))
        if len(buffer) > buffer.maxsize:
            self.violations.append(f"{stream} buffer held {len(buffer)} > {buffer.maxsize}")
        if stream == "tickers" and buffer.dropped:
            self.ticker_overflowed.set()
        if buffer in self.expect_gap and not buffer.closed:
            self.expect_gap.discard(buffer)
            newest = buffer._items[-1]
            if newest.gap:
                self.gaps_checked[stream] += 1
            else:
                self.violations.append(f"{stream}: first message after a reconnect has no gap")


@contextmanager
def watched(audit: Audit) -> Iterator[None]:
    """Record every subscribe/unsubscribe the server handles, per connection (v2's and v3's
    requests alike), and audit every message put into a stream buffer; keep the client's and the
    simulator's logs out of memory."""
    operate = ServerConnection._operate
    put = MessageBuffer.put

    def record_operation(
        self: ServerConnection, subscribe: bool, channel: object
    ) -> tuple[str, str] | None:
        audit.operations.append((self.id, subscribe, channel))
        return operate(self, subscribe, channel)

    def audited_put(self: MessageBuffer, message: WebSocketMessage[Any]) -> None:
        put(self, message)
        audit.put(self, message)

    quiet = [logging.getLogger(name) for name in ("weex_ws", "weex_anyio.testing")]
    previous = [logger.disabled for logger in quiet]
    with (
        mock.patch.object(ServerConnection, "_operate", record_operation),
        mock.patch.object(MessageBuffer, "put", audited_put),
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
    stream: AsyncGenerator[WebSocketMessage[Any], None],
    audit: Audit,
    *,
    slow: bool = False,
) -> None:
    """Read a stream to its end. A slow reader stops after its first message (which made it
    subscribe) until its buffer has overflowed, then reads with a pause per message."""
    async for _ in stream:
        audit.received[name] += 1
        if slow:
            await audit.ticker_overflowed.wait()
            await anyio.sleep(0.03)


async def until(condition: Callable[[], bool]) -> None:
    """Poll state nobody signals (counters the consumers keep) until it holds."""
    with anyio.fail_after(HANG_LIMIT):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


def synced(server: SimulatedWeexServer, client: WeexWebSocketClient) -> bool:
    """Both endpoints open on both sides, with exactly the wanted subscriptions: no reconnect
    is in flight, so every reconnect so far has been followed by its new attempt."""
    connections = server.connections
    by_kind = {c.private: c.subscriptions for c in connections}
    runners = client._runners.values()
    return (
        len(connections) == INITIAL_CONNECTIONS
        and by_kind == {False: PUBLIC_CHANNELS, True: PRIVATE_CHANNELS}
        and client.subscriptions == PUBLIC_CHANNELS | PRIVATE_CHANNELS
        and len(runners) == INITIAL_CONNECTIONS
        and all(runner.is_connected for runner in runners)
    )


async def storm(
    server: SimulatedWeexServer,
    client: WeexWebSocketClient,
    rng: random.Random,
    audit: Audit,
    rounds: int,
) -> None:
    """`rounds` rounds of every fault once, in a random order; trades keep the private stream
    busy. Drops wait until both connections are up, so each one really drops two."""

    async def wait_synced() -> None:
        await server.wait_until(lambda: synced(server, client), timeout=HANG_LIMIT)

    async def drop(reset: bool) -> None:
        await wait_synced()
        audit.dropped += await server.drop_connections(reset=reset)

    async def stall(seconds: float) -> None:
        server.stall(seconds)
        await anyio.sleep(seconds + 0.05)

    async def raw_bytes() -> None:
        # Below the framing: a first byte no WebSocket frame may start with, then noise.
        first = rng.choice([0x83, 0x87, 0x8B, 0xC1, 0xF1])
        await server.send_raw_bytes(bytes([first]) + rng.randbytes(rng.randrange(1, 40)))

    faults: dict[str, Callable[[], Any]] = {
        "drop": lambda: drop(reset=False),
        "reset": lambda: drop(reset=True),
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
    for _ in range(rounds):
        deck = sorted(faults)
        rng.shuffle(deck)
        for name in deck:
            await anyio.sleep(rng.uniform(0.1, 0.35))
            audit.faults[name] = audit.faults.get(name, 0) + 1
            outcome = faults[name]()
            if outcome is not None:
                await outcome
            await server.simulate_trade(rng.choice(SYMBOLS), rng.choice(["BUY", "SELL"]), "0.01")
        await wait_synced()
        audit.memory.append(traced_memory(server))


def traced_memory(server: SimulatedWeexServer) -> int:
    """Bytes allocated and still alive, leaving out this file's own records of the run.

    The decimal caches, and the simulator's v3 texts of recent pushes, are emptied first: they
    fill with the price texts the market walks through, up to their bounds
    (tests/test_cache_bounds.py holds the decimal ones), and how far they have got by a given
    round depends on how many market steps a busy machine fitted in; what is left is what could
    leak."""
    server._v3_texts.clear()
    messages._decimals.clear()
    messages._level_decimals.clear()
    records._percents.clear()
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, __file__), tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def soak(audit: Audit, api: Literal["v2", "v3"], rounds: int) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    rng = random.Random(SEED)
    async with SimulatedWeexServer(
        seed=SEED, tick_interval=0.05, trade_interval=None, ping_interval=None, api=api
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
            rng=random.Random(SEED + 1),
            on_gap=audit.on_gap,
        )
        async with client, anyio.create_task_group() as streams:
            streams.start_soon(
                lambda: consume("tickers", client.stream_tickers(list(SYMBOLS)), audit, slow=True)
            )
            streams.start_soon(
                consume, "book", client.stream_order_book("BTCUSDT", level=15), audit
            )
            streams.start_soon(consume, "trades", client.stream_trades("BTCUSDT"), audit)
            streams.start_soon(consume, "orders", client.stream_orders(), audit)
            await server.wait_until(lambda: synced(server, client), timeout=HANG_LIMIT)
            await traffic_on_every_stream(server, audit, lambda: all(audit.received.values()))

            await storm(server, client, rng, audit, rounds)

            # Every stream gets a message after the last reconnect, so every gap is checked: a
            # stream left without one would hang here. (Garbage from the storm can still end a
            # connection later, once enough bytes have come to complete its bogus header: the
            # reconnect after that is checked too, when its message comes.)
            await traffic_on_every_stream(server, audit, lambda: not audit.expect_gap)
            await server.wait_until(lambda: synced(server, client), timeout=HANG_LIMIT)
            # No await from the synced check to here: the facts are one consistent moment.
            facts["operations"] = list(audit.operations)
            facts["reconnects"] = client.health.reconnects
            facts["attempts"] = client.connection_attempts
            facts["accepted"] = server.stats.accepted
            facts["rejected"] = server.stats.rejected
            facts["paths"] = {c.path for c in server.connections}
            streams.cancel_scope.cancel()
        await server.wait_for_connections(0, exact=True, timeout=HANG_LIMIT)
        # The server's per-connection tasks finish unwinding: back to where we started.
        await until(lambda: len(asyncio.all_tasks()) <= tasks_before)
        facts["tasks_before"] = tasks_before
        facts["tasks_after"] = len(asyncio.all_tasks())
    return facts


async def traffic_on_every_stream(
    server: SimulatedWeexServer, audit: Audit, done: Callable[[], bool]
) -> None:
    """Trades (for the trades and orders streams; tickers and the book tick anyway) until
    `done()`."""
    with anyio.fail_after(HANG_LIMIT):
        while not done():
            await server.simulate_trade("cmt_btcusdt", "BUY", "0.01")
            await anyio.sleep(0.05)


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize(("api", "rounds"), [("v2", ROUNDS), ("v3", V3_ROUNDS)])
def test_soak_under_random_faults(api: Literal["v2", "v3"], rounds: int) -> None:
    audit = Audit()
    with watched(audit):
        facts = anyio.run(soak, audit, api, rounds, backend="asyncio")
    assert facts["paths"] == {f"/{api}/ws/public", f"/{api}/ws/private"}

    # The storm was the storm we dealt: every kind of fault, `rounds` times each.
    assert audit.faults == {
        name: rounds
        for name in (
            "drop",
            "reset",
            "short_stall",
            "long_stall",
            "garbage_text",
            "invalid_json",
            "raw_bytes",
            "error",
            "depth_gap",
        )
    }

    # No task leaked.
    assert facts["tasks_after"] == facts["tasks_before"]

    # Every reconnect accounted for: each started one new attempt, every attempt was upgraded
    # by the server, and every connection the drops killed was replaced (both endpoints were
    # up before each drop, so each drop closed two).
    assert facts["attempts"] == INITIAL_CONNECTIONS + facts["reconnects"]
    assert (facts["accepted"], facts["rejected"]) == (facts["attempts"], 0)
    assert audit.dropped == INITIAL_CONNECTIONS * (audit.faults["drop"] + audit.faults["reset"])
    assert facts["reconnects"] >= audit.dropped

    # No subscription duplicated on any connection (and none lost: the end state was synced).
    per_connection: dict[int, dict[object, list[bool]]] = {}
    for connection, subscribe, channel in facts["operations"]:
        per_connection.setdefault(connection, {}).setdefault(channel, []).append(subscribe)
    assert INITIAL_CONNECTIONS + audit.dropped <= len(per_connection) <= facts["accepted"]
    for connection, channels in per_connection.items():
        for channel, operations in channels.items():
            expected = [index % 2 == 0 for index in range(len(operations))]
            assert operations == expected, (connection, channel, operations)
            if channel != BOOK:  # only the book resubscribes (for a fresh snapshot)
                assert operations == [True], (connection, channel, operations)

    # Every gap flagged, on every stream; buffers bounded, and the slow one really filled.
    assert audit.violations == []
    assert set(audit.buffers.values()) == set(STREAMS)
    assert all(audit.gaps_checked[name] >= 1 for name in STREAMS), audit.gaps_checked
    assert audit.largest_buffer == BUFFER_SIZE

    # Memory flat: the last round of faults ends no bigger than the first.
    assert len(audit.memory) == rounds
    assert audit.memory[-1] <= audit.memory[0] + MEMORY_GROWTH_LIMIT, audit.memory
