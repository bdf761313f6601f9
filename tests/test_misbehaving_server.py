"""A server that misbehaves in ways that must never leave a stream silent or end a healthy one.

Every body runs on each adapter (tests/adapters.py) against the simulator, with one of its
faults switched on: an error frame naming a channel that another connection holds, depth
subscribes acked without a snapshot, depth versions that restart below the live book, and
subscribes that are never answered. What each checks is what the reader of a stream sees.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anyio
import pytest

from tests.adapters import BOTH_DIALECTS, Harness, eventually, on_every_adapter, operations, take
from weex_proto.errors import OrderBookError, ServerError
from weex_proto.events import WebSocketMessage
from weex_proto.orderbook import MAX_STALE_DELTAS
from weex_proto.runtime.books import MAX_RESYNCS_WITHOUT_SNAPSHOT

SYMBOLS = [f"cmt_sym{i}usdt" for i in range(120)]
"""More than fit on one connection (100 channels): the client opens two."""
SYMBOL = "cmt_btcusdt"
BOOK = f"depth.{SYMBOL}.15"


def generator(stream: Any) -> AsyncGenerator[WebSocketMessage[Any], None]:
    assert isinstance(stream, AsyncGenerator)
    return stream


async def next_book(stream: AsyncGenerator[WebSocketMessage[Any], None]) -> Any:
    """The next book that is not a resync notice."""
    while True:
        message = await take(stream)
        if not message.data["resyncing"]:
            return message.data


def subscribes_of(h: Harness, channel: str) -> int:
    return operations(h.server, channel).count("subscribe")


# --------------------------------------------------------------------------- stray error frames


@on_every_adapter(
    symbols=[*SYMBOLS, SYMBOL], tick_interval=0.05, virtual_time=True, dialects=BOTH_DIALECTS
)
async def test_an_error_frame_naming_another_connections_channel_ends_no_stream(
    h: Harness,
) -> None:
    async with h.client(buffer_size=100_000) as client:
        book = generator(client.stream_order_book(SYMBOL, level=5))
        await next_book(book)
        tickers = generator(client.stream_tickers(SYMBOLS))
        await take(tickers)
        await h.server.wait_until(
            lambda: sum(len(c.subscriptions) for c in h.server.connections) == len(SYMBOLS) + 1
        )
        holder = await h.server.wait_for_subscription(BOOK)
        other = next(c for c in h.server.connections if not c.private and c.id != holder.id)
        ticker = next(iter(other.subscriptions))
        # Every connection gets both frames: each names a channel that one connection holds
        # and the other never asked for. Neither answers a subscribe of the one receiving it.
        await h.server.send_error("40020", "Parameter channel is invalid", channel=BOOK)
        await h.server.send_error("40020", "Parameter channel is invalid", channel=ticker)
        for _ in range(3):
            await next_book(book)
        seen: set[str] = set()
        while ticker not in seen:
            seen.add((await take(tickers)).channel)
        assert BOOK in client.subscriptions and ticker in client.subscriptions
        await book.aclose()
        await tickers.aclose()


@on_every_adapter(
    symbols=[*SYMBOLS, SYMBOL], tick_interval=0.05, virtual_time=True, dialects=BOTH_DIALECTS
)
async def test_a_refused_subscribe_still_ends_the_stream_that_asked(h: Harness) -> None:
    """The other half of the rule: an error answering this connection's own subscribe of a
    channel never served is its refusal, on any connection of the pool."""
    async with h.client(buffer_size=100_000) as client:
        tickers = generator(client.stream_tickers(SYMBOLS))
        await take(tickers)
        await h.server.wait_for_connections(2)
        h.server.ignore_subscribes(1)  # the book's subscribe stays pending...
        book = generator(client.stream_order_book(SYMBOL, level=5))
        reading = anyio.Event()

        async def read_book() -> None:
            reading.set()
            with pytest.raises(ServerError, match="40020"):
                await next_book(book)

        async with anyio.create_task_group() as group:
            group.start_soon(read_book)
            await reading.wait()
            await eventually(lambda: subscribes_of(h, BOOK) == 1)
            # ...and is answered with an error on the connection that sent it.
            await h.server.send_error("40020", "Parameter channel is invalid", channel=BOOK)
        await book.aclose()
        assert BOOK not in client.subscriptions
        await take(tickers)  # the other streams go on
        await tickers.aclose()


# --------------------------------------------------------------------------- snapshots


@on_every_adapter(tick_interval=0.05, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_a_book_whose_snapshot_never_comes_resyncs_then_ends_with_order_book_error(
    h: Harness,
) -> None:
    h.server.withhold_snapshots(None)  # acked, then only CHANGED deltas, every time
    async with h.client(snapshot_timeout=1.0) as client:
        book = generator(client.stream_order_book(SYMBOL, level=5))
        with pytest.raises(OrderBookError, match="no snapshot within 1s"):
            await take_within(book, 30.0)  # nothing at all is yielded: no book to show
    # Each deadline missed asked again: the first subscribe and one per resync allowed.
    assert subscribes_of(h, BOOK) == 1 + MAX_RESYNCS_WITHOUT_SNAPSHOT
    assert client.health.book_resyncs == MAX_RESYNCS_WITHOUT_SNAPSHOT + 1


@on_every_adapter(tick_interval=0.05, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_a_missed_snapshot_is_asked_for_again_and_the_book_goes_on(h: Harness) -> None:
    h.server.withhold_snapshots(2)
    async with h.client(snapshot_timeout=1.0) as client:
        book = generator(client.stream_order_book(SYMBOL, level=5))
        first = await take_within_book(book, 30.0)
        assert first["bids"] and first["asks"]
        assert subscribes_of(h, BOOK) == 3  # two went unanswered by a snapshot
        second = await next_book(book)
        assert second["version"] > first["version"]
        await book.aclose()


# --------------------------------------------------------------------------- versions


@on_every_adapter(tick_interval=0.05, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_depth_versions_that_go_backwards_resync_the_book(h: Harness) -> None:
    async with h.client() as client:
        book = generator(client.stream_order_book(SYMBOL, level=5))
        before = await next_book(book)
        assert before["version"] > 1_000_000
        h.server.restart_depth_versions(SYMBOL, 100)
        notice = None
        while notice is None:
            message = await take(book)
            if message.data["resyncing"]:
                notice = message
            else:  # books of deltas sent before the restart
                assert message.data["version"] > 1_000_000
        assert "versions went backwards" in notice.data["reason"]
        assert notice.gap
        after = await next_book(book)
        assert after["version"] < before["version"]  # the server's new sequence
        assert after["version"] > 100 + MAX_STALE_DELTAS
        assert client.health.book_resyncs == 1
        await book.aclose()


# --------------------------------------------------------------------------- unanswered subscribes


@on_every_adapter(tick_interval=0.05, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_stale_timeout_replaces_a_connection_whose_subscribe_is_never_answered(
    h: Harness,
) -> None:
    h.server.ignore_subscribes(1)  # answers pings, never acks this one
    async with h.client(stale_timeout=2.0) as client:
        tickers = generator(client.stream_tickers([SYMBOL]))
        message = await take_within(tickers, 30.0)
        assert message.channel == f"ticker.{SYMBOL}"
        assert h.server.stats.accepted == 2  # the silent connection was replaced
        assert subscribes_of(h, f"ticker.{SYMBOL}") == 2
        await tickers.aclose()


async def take_within(
    stream: AsyncGenerator[WebSocketMessage[Any], None], limit: float
) -> WebSocketMessage[Any]:
    """`take`, with a longer limit for scenarios made of several deadlines."""
    with anyio.fail_after(limit):
        return await anext(stream)


async def take_within_book(
    stream: AsyncGenerator[WebSocketMessage[Any], None], limit: float
) -> Any:
    with anyio.fail_after(limit):
        while True:
            message = await anext(stream)
            if not message.data["resyncing"]:
                return message.data
