"""A busy stream shares the event loop: other tasks keep running while a flood is consumed.

The receive loop hands a large read to the core a slice (`FEED_SIZE` bytes) at a time and
checkpoints between slices, and a stream's consumer waits, yielding, only once its buffer is
empty. So a consumer drains at most a few slices' messages between two turns of any other task,
never a whole read's worth, however fast the pushes come.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import weex_anyio._backend
import weex_trio._backend
from tests import fixtures_messages as fixtures
from tests.adapters import BOTH_DIALECTS, Harness, on_every_adapter
from weex_anyio.testing._connection import text_frame
from weex_proto.connection import WeexConnection
from weex_proto.events import WebSocketMessage
from weex_proto.messages import Ticker
from weex_proto.runtime.runner import (
    FEED_SIZE,
    MIN_FEED_SIZE,
    RECEIVE_SIZE,
    ROUND_BUDGET,
    _next_feed_size,
)
from weex_proto.strategies import v3_frame

BTC = "ticker.cmt_btcusdt"
FLOOD_PRICE = "1.5"


def flood_frame(api: str) -> bytes:
    """One BTC ticker push in the words of WEEX's `api`, as a text frame, marked by its last
    price."""
    push = copy.deepcopy(fixtures.TICKER_PUSH)
    push["data"][0]["lastPrice"] = FLOOD_PRICE
    return text_frame(json.dumps(v3_frame(push) if api == "v3" else push).encode())


@on_every_adapter(tick_interval=1000.0, dialects=BOTH_DIALECTS)  # the flood: all the traffic
async def test_other_tasks_run_between_slices_of_a_flooded_stream(h: Harness) -> None:
    frame = flood_frame(h.server.api)
    flood = 3 * RECEIVE_SIZE // len(frame)  # several full reads' worth, in one write
    per_slice = FEED_SIZE // len(frame) + 1  # a slice may also end a frame the last one began
    consumed = 0
    turns: list[int] = []  # how many flood messages were consumed at each turn of the other task

    async def other_task() -> None:
        while True:
            turns.append(consumed)
            await anyio.lowlevel.checkpoint()

    async with (
        h.client(buffer_size=flood) as client,
        contextlib.aclosing(client.stream_tickers("BTCUSDT")) as stream,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(other_task)

        async def send_flood() -> None:
            await h.server.wait_for_subscription(BTC)
            await h.server.send_raw_bytes(frame * flood)

        tg.start_soon(send_flood)
        with anyio.fail_after(30):
            async for message in stream:
                assert isinstance(message.record, Ticker)
                if str(message.record.last_price) == FLOOD_PRICE:
                    consumed += 1
                    if consumed == flood:
                        break
        tg.cancel_scope.cancel()

    during = sorted(set(turns))
    assert during[0] == 0 and during[-1] < flood  # it ran before, and all along
    steps = [b - a for a, b in itertools.pairwise(during)]
    # On trio the ready tasks run in batches, in either order: the consumer may drain the
    # slices of two turns of the receive loop at once, and the other task may run just before
    # one pass of the consumer and just after the next: four slices, not a read (~850 here).
    assert max(steps) <= 4 * per_slice
    assert 4 * per_slice < RECEIVE_SIZE // len(frame)


async def turns_while_a_sync_handler_takes(
    h: Harness,
    frame: bytes,
    flood: int,
    *,
    cost: Callable[[], None] | None = None,
    guard: float = 30,
) -> list[int]:
    """Send `frame` `flood` times in one write to a client whose sync handler (calling `cost`
    for each message) takes them inline, beside a task that notes at each of its turns how
    many flood messages the handler has had so far; those notes."""
    handled = 0
    turns: list[int] = []  # handler calls made so far, at each turn of the other task
    done = anyio.Event()

    def on_ticker(message: WebSocketMessage[Any]) -> None:
        nonlocal handled
        if cost is not None:
            cost()
        if str(message.record.last_price) == FLOOD_PRICE:
            handled += 1
            if handled == flood:
                done.set()

    async with h.client() as client, anyio.create_task_group() as tg:
        client.add_message_handler(BTC, on_ticker)
        await client.subscribe("ticker", symbol="BTCUSDT")

        async def other_task() -> None:
            while True:
                turns.append(handled)
                await anyio.lowlevel.checkpoint()

        tg.start_soon(other_task)
        await h.server.wait_for_subscription(BTC)
        await h.server.send_raw_bytes(frame * flood)
        with anyio.fail_after(guard):
            await done.wait()
        tg.cancel_scope.cancel()
    return turns


@on_every_adapter(tick_interval=1000.0, dialects=BOTH_DIALECTS)
async def test_other_tasks_run_while_a_sync_handler_takes_a_flood(h: Harness) -> None:
    """A sync handler is called inline by the receive loop (the relay's way): the loop still
    hands control back after each slice, so the program's other tasks make progress all
    through a flood, not only after it."""
    frame = flood_frame(h.server.api)
    flood = 3 * RECEIVE_SIZE // len(frame)
    per_slice = FEED_SIZE // len(frame) + 1
    turns = await turns_while_a_sync_handler_takes(h, frame, flood)

    during = sorted({*turns, flood})
    assert during[0] == 0  # it ran before the flood, and (below) all along it
    steps = [b - a for a, b in itertools.pairwise(during)]
    assert max(steps) <= 2 * per_slice  # a slice or two between its turns, never a read
    assert 2 * per_slice < RECEIVE_SIZE // len(frame)


@on_every_adapter(tick_interval=1000.0, dialects=BOTH_DIALECTS)
async def test_costly_handlers_shrink_the_slices_not_the_other_tasks_turns(h: Harness) -> None:
    """A sync handler that takes a millisecond per message: a 16 KiB slice of such messages
    would hold the event loop for tens of milliseconds. The receive loop times its slices and
    makes them smaller once one outlasts its share of the round (`ROUND_BUDGET`), down to
    `MIN_FEED_SIZE`: after the first slices, the other task runs every few messages."""
    frame = flood_frame(h.server.api)
    flood = 2 * FEED_SIZE // len(frame)
    per_small_slice = MIN_FEED_SIZE // len(frame) + 1
    assert 4 * per_small_slice < FEED_SIZE // len(frame)  # the sizes tell the two apart

    def costly() -> None:
        spin_until = time.perf_counter() + ROUND_BUDGET / 2  # CPU work, not a sleep
        while time.perf_counter() < spin_until:
            pass

    turns = await turns_while_a_sync_handler_takes(h, frame, flood, cost=costly, guard=60)

    during = sorted({*turns, flood})
    steps = [b - a for a, b in itertools.pairwise(during) if a > 0]
    # The first slice (16 KiB) is handled before any slice has been timed; the slices after it
    # are small. Trio may run the other task just before one pass and just after the next.
    assert steps and max(steps[1:] or steps) <= 2 * per_small_slice, steps


def test_the_next_slice_fits_the_turn() -> None:
    """Over its turn: scaled down to fit (never below `MIN_FEED_SIZE`); well under it with a
    full slice: doubled back (never above `FEED_SIZE`); a short read changes nothing."""
    turn = ROUND_BUDGET / 4
    assert _next_feed_size(FEED_SIZE, FEED_SIZE, 2 * turn, turn) == FEED_SIZE // 2
    assert _next_feed_size(FEED_SIZE, FEED_SIZE, 1000 * turn, turn) == MIN_FEED_SIZE
    assert _next_feed_size(4096, 4096, turn / 4, turn) == 8192
    assert _next_feed_size(FEED_SIZE, FEED_SIZE, 0.0, turn) == FEED_SIZE
    assert _next_feed_size(4096, 100, 0.0, turn) == 4096
    assert _next_feed_size(8192, 8192, ROUND_BUDGET / 2, ROUND_BUDGET) == 8192
    assert _next_feed_size(8192, 8192, ROUND_BUDGET / 2, ROUND_BUDGET / 4) == 4096


def feed_turns(h: Harness) -> Any:
    """The event loop's receive-turn lock, as the adapter under test keeps it."""
    if h.adapter.client_class is weex_trio.WeexWebSocketClient:
        return weex_trio._backend._FEED_TURNS.get()
    return weex_anyio._backend._FEED_TURNS.get()


@on_every_adapter(tick_interval=1000.0, dialects=BOTH_DIALECTS)
async def test_connections_flooding_at_once_take_one_slice_per_turn(h: Harness) -> None:
    """Three clients (one connection each) flooded at the same moment: the receive loops of
    an event loop take turns, first come first served, so between two turns of any other task
    one slice is decoded, not one per connection. The other task sees the three floods'
    messages come a slice at a time (`FEED_SIZE`: the slices are fast here), all through."""
    frame = flood_frame(h.server.api)
    flood = RECEIVE_SIZE // len(frame)  # a full read's worth for each connection
    per_slice = FEED_SIZE // len(frame) + 1
    clients = 3
    handled = 0
    turns: list[int] = []
    done = anyio.Event()

    def on_ticker(message: WebSocketMessage[Any]) -> None:
        nonlocal handled
        if str(message.record.last_price) == FLOOD_PRICE:
            handled += 1
            if handled == clients * flood:
                done.set()

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(clients):
            client: Any = await stack.enter_async_context(h.client())
            client.add_message_handler(BTC, on_ticker)
            await client.subscribe("ticker", symbol="BTCUSDT")
        with anyio.fail_after(30):
            while sum(BTC in c.subscriptions for c in h.server.connections) < clients:  # noqa: ASYNC110 - the server's count
                await anyio.sleep(0.01)
        tg = await stack.enter_async_context(anyio.create_task_group())

        async def other_task() -> None:
            while True:
                turns.append(handled)
                await anyio.lowlevel.checkpoint()

        tg.start_soon(other_task)
        await h.server.send_raw_bytes(frame * flood)  # to every connection at once
        with anyio.fail_after(30):
            await done.wait()
        tg.cancel_scope.cancel()
        assert not feed_turns(h).locked()

    during = sorted({*turns, clients * flood})
    steps = [b - a for a, b in itertools.pairwise(during)]
    # Trio may run the other task just before one receive turn and just after the next; a
    # slice per connection would be three between two turns.
    assert max(steps) <= 2 * per_slice, steps


@on_every_adapter(tick_interval=1000.0, dialects=BOTH_DIALECTS)
async def test_the_receive_turn_is_free_once_the_flood_is_read(h: Harness) -> None:
    """No receive loop keeps the event loop's turn after a flood, also when the client is
    closed in the middle of one: the next client's flood is read."""
    frame = flood_frame(h.server.api)
    for _ in range(2):
        seen = anyio.Event()

        def first(message: WebSocketMessage[Any], seen: anyio.Event = seen) -> None:
            seen.set()

        async with h.client() as client:
            client.add_message_handler(BTC, first)
            await client.subscribe("ticker", symbol="BTCUSDT")
            await h.server.wait_for_subscription(BTC)
            await h.server.send_raw_bytes(frame * (3 * RECEIVE_SIZE // len(frame)))
            with anyio.fail_after(30):
                await seen.wait()
        assert not feed_turns(h).locked()


def work_turns(h: Harness) -> Any:
    """The event loop's work-turn lock, from the adapter under test's public API."""
    if h.adapter.client_class is weex_trio.WeexWebSocketClient:
        return weex_trio.work_turns()
    return weex_anyio.work_turns()


@on_every_adapter(tick_interval=1000.0, dialects=BOTH_DIALECTS)
async def test_a_bulk_worker_and_a_flooded_stream_take_their_steps_in_turn(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task doing bulk work of its own takes each step holding the event loop's work turn,
    as the relay's publisher does; a flooded receive loop decodes each slice holding it too.
    So the two take their steps in alternate rounds of the loop: a light task waits for one
    heavy step between two of its turns, not for a slice and a bulk step, and neither of the
    two heavy tasks is starved."""
    frame = flood_frame(h.server.api)
    flood = 3 * RECEIVE_SIZE // len(frame)
    work = work_turns(h)
    handled = slices = steps = turns = 0
    flooding = False
    done = anyio.Event()

    real_receive_data = WeexConnection.receive_data

    def count_slices(conn: WeexConnection, data: bytes | None, *args: Any, **kw: Any) -> None:
        nonlocal slices
        slices += flooding and data is not None and len(data) >= MIN_FEED_SIZE
        real_receive_data(conn, data, *args, **kw)

    monkeypatch.setattr(WeexConnection, "receive_data", count_slices)

    def on_ticker(message: WebSocketMessage[Any]) -> None:
        nonlocal handled, flooding
        if str(message.record.last_price) == FLOOD_PRICE:
            handled += 1
            flooding = handled < flood
            if not flooding:
                done.set()

    async def bulk_worker() -> None:
        nonlocal steps
        while True:
            async with work:
                steps += flooding

    async def light_task() -> None:
        nonlocal turns
        while True:
            turns += flooding
            await anyio.lowlevel.checkpoint()

    async with h.client() as client, anyio.create_task_group() as tg:
        client.add_message_handler(BTC, on_ticker)
        await client.subscribe("ticker", symbol="BTCUSDT")
        await h.server.wait_for_subscription(BTC)
        tg.start_soon(bulk_worker)
        tg.start_soon(light_task)
        await h.server.send_raw_bytes(frame * flood)
        with anyio.fail_after(30):
            await done.wait()
        tg.cancel_scope.cancel()

    assert slices >= 3 and steps >= slices // 2, (slices, steps)  # both made progress
    # One heavy step per round: a slice and a bulk step in the same round would be two.
    assert slices + steps <= 1.5 * turns, (slices, steps, turns)
