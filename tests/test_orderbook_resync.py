"""Order book streams under pressure, on every adapter: resyncs past the subscription budget
and hostile depth pushes. The book must keep yielding consistent data, never go silent, and
never raise into the user's task group.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from tests.adapters import BOTH_DIALECTS, Harness, on_every_adapter, operations, take
from weex_proto.errors import RateLimitError
from weex_proto.events import WebSocketMessage
from weex_proto.subscriptions import MAX_REFUSED_RESUBSCRIBES

SYMBOL = "cmt_btcusdt"
BOOK = f"depth.{SYMBOL}.15"
BUDGET = 240  # the documented subscribe/unsubscribe operations per connection per hour


def assert_consistent(data: Any, levels: int) -> None:
    bids, asks = data["bids"], data["asks"]
    assert 0 < len(bids) <= levels and 0 < len(asks) <= levels
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0]
    assert all(x > 0 for level in bids + asks for x in level)


def book_operations(h: Harness) -> list[str]:
    return operations(h.server, BOOK)


async def next_book(stream: AsyncGenerator[WebSocketMessage[Any], None], levels: int) -> Any:
    """The next book that is not a resync notice, checked for consistency."""
    while True:
        message = await take(stream)
        if not message.data["resyncing"]:
            assert_consistent(message.data, levels)
            return message.data


@on_every_adapter(tick_interval=0.005, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_book_keeps_yielding_when_gaps_use_up_the_subscription_budget(h: Harness) -> None:
    async with h.client() as client:
        stream = client.stream_order_book("BTCUSDT", level=5)
        assert isinstance(stream, AsyncGenerator)
        versions: list[int] = []
        notices = 0
        while h.server.stats.accepted < 2:  # until the client replaced the connection
            message = await take(stream)
            if message.data["resyncing"]:
                notices += 1
                continue
            assert_consistent(message.data, 5)
            versions.append(message.data["version"])
            h.server.inject_depth_gap(SYMBOL, skipped=3)  # the next CHANGED frame loses data
            assert notices <= BUDGET, "the subscription budget never ran out"
        after = [(await next_book(stream, 5))["version"] for _ in range(5)]
        await stream.aclose()
    assert versions + after == sorted(set(versions + after))  # never an older book
    # The server (with the same documented budget) never had to refuse an operation: one it
    # refused would have been sent but not acknowledged.
    operations = book_operations(h)
    assert h.server.stats.subscribe_ops + h.server.stats.unsubscribe_ops == len(operations)
    assert len(operations) > BUDGET
    assert client.health.book_resyncs >= (BUDGET - 1) // 2


def depth_push(kind: str, start: int, **row: Any) -> str:
    data = {
        "startVersion": str(start),
        "endVersion": str(start),
        "level": 15,
        "depthType": kind,
        "symbol": SYMBOL,
        "asks": [{"price": "1", "size": "1"}],
        "bids": [{"price": "0.5", "size": "1"}],
        **row,
    }
    return json.dumps({"event": "payload", "channel": BOOK, "data": [data]})


def hostile_pushes(bid: str, ask: str) -> list[tuple[str, dict[str, Any]]]:
    """Pushes no book may take in, at the live book's own best prices where that matters.

    The default levels of `depth_push` (0.5 / 1) are far from the market, so a foreign or
    outdated snapshot that got in would show."""
    return [
        ("CHANGED", {"bids": [{"price": bid, "size": "-5"}]}),
        ("CHANGED", {"asks": [{"price": ask, "size": "-0.1"}]}),
        ("CHANGED", {"asks": [{"price": "0", "size": "1"}]}),
        ("CHANGED", {"bids": [{"price": "-3", "size": "1"}]}),
        ("CHANGED", {"startVersion": "999999999999", "bids": [{"price": bid, "size": "7"}]}),
        ("SNAPSHOT", {"symbol": "cmt_ethusdt"}),  # another contract's book
        ("CHANGED", {"symbol": "cmt_ethusdt", "bids": [{"price": bid, "size": "0"}]}),
        ("SNAPSHOT", {"startVersion": "1", "endVersion": "1"}),  # older than the live book
        ("SNAPSHOT", {"depthType": "x"}),
    ]


@on_every_adapter(tick_interval=0.01, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_hostile_depth_pushes_never_corrupt_the_book_or_kill_the_client(
    h: Harness,
) -> None:
    async with h.client() as client:
        stream = client.stream_order_book("BTCUSDT", level=15)
        assert isinstance(stream, AsyncGenerator)
        first = await next_book(stream, 15)
        (best_bid, _), (best_ask, _) = first["bids"][0], first["asks"][0]
        versions = [first["version"]]
        for kind, fields in hostile_pushes(str(best_bid), str(best_ask)):
            live = h.server.depth_version(SYMBOL)
            await h.server.send_raw(depth_push(kind, live + 1, **fields))
            # Consistent books keep coming; one newer than `live` was sent after the push,
            # so the client has dealt with the push by the time it arrives.
            while versions[-1] <= live:
                book = await next_book(stream, 15)
                assert book["symbol"] == SYMBOL
                assert book["bids"][0][0] > best_bid / 2  # still this market's book
                assert book["asks"][0][0] < best_ask * 2
                versions.append(book["version"])
        await stream.aclose()
        assert client.is_connected
    assert versions == sorted(versions)  # never a book from an older snapshot


async def read_to_the_end(stream: AsyncGenerator[WebSocketMessage[Any], None]) -> None:
    while True:
        await take(stream)


@on_every_adapter(
    tick_interval=0.01, virtual_time=True, max_operations_per_hour=2, dialects=BOTH_DIALECTS
)
async def test_a_resync_the_server_keeps_refusing_is_asked_again_then_ends_the_book(
    h: Harness,
) -> None:
    """The server served the channel, so its refusal of the resync's subscribe (here its
    tighter operation limit) is taken as a refusal of that request: asked again a bounded
    number of times, then the book's readers get the server's typed error, never silence."""
    async with h.client() as client:
        stream = client.stream_order_book("BTCUSDT", level=5)
        assert isinstance(stream, AsyncGenerator)
        await next_book(stream, 5)
        h.server.inject_depth_gap(SYMBOL, skipped=3)
        with pytest.raises(RateLimitError):
            await read_to_the_end(stream)
        assert client.is_connected  # the other channels' connection lives on
    retries = ["subscribe"] * MAX_REFUSED_RESUBSCRIBES
    assert book_operations(h) == ["subscribe", "unsubscribe", "subscribe", *retries]
