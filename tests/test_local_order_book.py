"""`client.order_book(...)`: a local book the client keeps and the user reads when they like.

On every adapter and both dialects: it holds what `stream_order_book` yields at the same
version, resyncs the same way (and says so while it waits), ends loudly when it cannot be
kept, and lets go of its channel when the block ends.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anyio
import pytest

from tests.adapters import BOTH_DIALECTS, Harness, eventually, on_every_adapter, operations, take
from weex_anyio import LocalOrderBook, OrderBookError
from weex_proto.runtime.books import MAX_RESYNCS_WITHOUT_SNAPSHOT

SYMBOL = "cmt_btcusdt"
BOOK = f"depth.{SYMBOL}.15"


async def book_at(
    stream: AsyncGenerator[Any, None], latest: dict[str, Any] | None, version: int
) -> dict[str, Any]:
    """The stream's book at `version` (the last one it has taken, or a later one)."""
    while latest is None or latest["resyncing"] or latest["version"] < version:
        latest = dict((await take(stream)).data)
    return latest


@on_every_adapter(tick_interval=0.01, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_the_held_book_is_the_book_a_stream_yields_at_the_same_version(h: Harness) -> None:
    async with h.client() as client, client.order_book("BTCUSDT", level=5) as book:
        assert isinstance(book, LocalOrderBook)
        assert book.channel == BOOK and book.symbol == SYMBOL
        stream = client.stream_order_book("BTCUSDT", level=15)
        assert isinstance(stream, AsyncGenerator)
        latest: dict[str, Any] | None = None
        for _ in range(3):  # while the market moves, then once it stands still
            latest = await book_at(stream, latest, 0)
            h.server.pause_market()
            target = h.server.depth_version(SYMBOL)
            latest = await book_at(stream, latest, target)
            await eventually(lambda: book.version == target)  # noqa: B023
            held = book.snapshot()
            assert not held.resyncing and held.reason is None
            assert held.version == latest["version"] == target
            assert held.bids == latest["bids"][:5] and held.asks == latest["asks"][:5]
            wide = book.snapshot(15)
            assert (wide.bids, wide.asks) == (latest["bids"], latest["asks"])
            whole = book.depth_levels()
            assert whole is not None
            version, bids, asks = whole
            assert version == target
            assert (tuple(bids[:15]), tuple(asks[:15])) == (latest["bids"], latest["asks"])
            h.server.resume_market()
            await anyio.sleep(0.2)
        await stream.aclose()
    # One subscription served both readers.
    assert operations(h.server, BOOK).count("subscribe") == 1


@on_every_adapter(tick_interval=0.01, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_a_held_book_resyncs_after_a_gap_and_says_so_while_it_waits(h: Harness) -> None:
    async with h.client() as client, client.order_book("BTCUSDT", level=15) as book:
        await eventually(lambda: book.live)
        before = book.version
        assert before is not None
        h.server.withhold_snapshots(1)  # the resubscribe brings no snapshot: the wait shows
        h.server.inject_depth_gap(SYMBOL, skipped=3)
        await eventually(lambda: not book.live)
        waiting = book.snapshot()
        assert waiting.resyncing and waiting.version is None and book.version is None
        assert waiting.bids == () and waiting.asks == ()
        assert waiting.reason is not None and "gap" in waiting.reason
        assert book.depth_levels() is None
        # The snapshot deadline asks again, and the book comes back, newer than before.
        await eventually(lambda: book.live, limit=60)
        again = book.version
        assert again is not None and again > before
        assert client.health.book_resyncs >= 1
    assert operations(h.server, BOOK)[-1] == "unsubscribe"


@on_every_adapter(tick_interval=0.01, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_a_book_that_cannot_be_kept_raises_on_the_next_read(h: Harness) -> None:
    async with h.client(snapshot_timeout=1.0) as client:
        async with client.order_book("BTCUSDT", level=15) as book:
            await eventually(lambda: book.live)
            h.server.withhold_snapshots(None)  # no resubscribe ever brings a snapshot
            h.server.inject_depth_gap(SYMBOL, skipped=3)

            def ended() -> bool:
                try:
                    book.snapshot()
                except OrderBookError:
                    return True
                return False

            await eventually(ended, limit=120)
            for read in (book.snapshot, book.depth_levels, lambda: book.live):
                with pytest.raises(OrderBookError, match="cannot be rebuilt"):
                    read()
            assert client.health.book_resyncs > MAX_RESYNCS_WITHOUT_SNAPSHOT
            h.server.withhold_snapshots(0)
        # A new holder starts a new book, which the server can feed again.
        async with client.order_book("BTCUSDT", level=15) as fresh:
            await eventually(lambda: fresh.live)
            assert fresh.snapshot().bids


@on_every_adapter(tick_interval=0.01, dialects=BOTH_DIALECTS)
async def test_holders_share_the_channel_and_the_last_one_out_unsubscribes(h: Harness) -> None:
    async with h.client() as client:
        async with client.order_book("BTCUSDT", level=3) as first:
            async with client.order_book("BTCUSDT", level=15) as second:
                await eventually(lambda: first.live and second.live)
                assert len(first.snapshot().bids) <= 3 < len(second.snapshot().bids)
            assert operations(h.server, BOOK) == ["subscribe"]
            assert first.live  # the first holder keeps the book
        await eventually(lambda: operations(h.server, BOOK) == ["subscribe", "unsubscribe"])
