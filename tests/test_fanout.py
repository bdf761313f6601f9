"""Routing and bounded buffering shared by both adapters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weex_proto.errors import StreamOverflowError
from weex_proto.events import WebSocketMessage
from weex_proto.runtime.fanout import (
    ROUTE_CACHE_SIZE,
    BufferClosed,
    ChannelRefs,
    HandlerBacklog,
    MessageBuffer,
    OverflowPolicy,
    Router,
)


def msg(channel: str, n: int) -> WebSocketMessage[Any]:
    return WebSocketMessage(channel, {"n": n}, float(n))


def drain(buffer: MessageBuffer) -> list[WebSocketMessage[Any]]:
    out = []
    while (item := buffer.get()) is not None:
        out.append(item)
    return out


def test_keep_latest_drops_oldest_and_flags_the_gap() -> None:
    buffer = MessageBuffer("ticker", 3, OverflowPolicy.KEEP_LATEST)
    for n in range(5):
        buffer.put(msg("t", n))
    got = drain(buffer)
    assert [m.data["n"] for m in got] == [2, 3, 4]
    assert buffer.dropped == 2
    # data is missing right before the oldest message kept, so that one carries the flag
    assert [m.gap for m in got] == [True, False, False]


@given(st.integers(min_value=1, max_value=20), st.integers(min_value=0, max_value=100))
def test_keep_latest_never_exceeds_maxsize_and_keeps_the_newest(maxsize: int, count: int) -> None:
    buffer = MessageBuffer("b", maxsize, OverflowPolicy.KEEP_LATEST)
    for n in range(count):
        buffer.put(msg("t", n))
        assert len(buffer) <= maxsize
    kept = drain(buffer)
    assert [m.data["n"] for m in kept] == list(range(max(0, count - maxsize), count))
    assert buffer.dropped == max(0, count - maxsize)
    assert [m.gap for m in kept][:1] == ([buffer.dropped > 0] if kept else [])
    assert not any(m.gap for m in kept[1:])


def test_raise_policy_fails_the_stream_instead_of_losing_data() -> None:
    buffer = MessageBuffer("orders", 2, OverflowPolicy.RAISE)
    buffer.put(msg("orders", 1))
    buffer.put(msg("orders", 2))
    buffer.put(msg("orders", 3))
    with pytest.raises(StreamOverflowError) as info:
        buffer.get()
    assert info.value.channel == "orders"
    buffer.put(msg("orders", 4))  # ignored once closed
    with pytest.raises(StreamOverflowError):
        buffer.get()


def test_gap_marker_applies_to_the_next_message_only() -> None:
    buffer = MessageBuffer("b", 10, OverflowPolicy.KEEP_LATEST)
    buffer.put(msg("t", 1))
    buffer.mark_gap()
    buffer.put(msg("t", 2))
    buffer.put(msg("t", 3))
    assert [m.gap for m in drain(buffer)] == [False, True, False]


def test_close_delivers_buffered_messages_then_ends_or_raises() -> None:
    buffer = MessageBuffer("b", 10, OverflowPolicy.KEEP_LATEST)
    buffer.put(msg("t", 1))
    buffer.close()
    assert buffer.get() == msg("t", 1)
    with pytest.raises(BufferClosed):
        buffer.get()
    failing = MessageBuffer("c", 10, OverflowPolicy.KEEP_LATEST)
    failing.put(msg("t", 1))
    failing.close(RuntimeError("gone"))
    assert failing.get() is not None
    with pytest.raises(RuntimeError, match="gone"):
        failing.get()


def test_public_flood_never_pushes_private_data_out_of_a_handler_backlog() -> None:
    backlog = HandlerBacklog("async handler 'h'", 2)
    backlog.buffer(private=True).put(msg("orders", 0))
    for n in range(1, 6):
        backlog.buffer(private=False).put(msg("ticker.cmt_btcusdt", n))
    got = [backlog.get() for _ in range(3)]
    assert [(m.channel, m.data["n"], m.gap) for m in got if m is not None] == [
        ("orders", 0, False),  # private first, and kept
        ("ticker.cmt_btcusdt", 4, True),  # public kept the latest and flagged the gap
        ("ticker.cmt_btcusdt", 5, False),
    ]
    assert backlog.get() is None
    assert backlog.failure is None


def test_handler_backlog_fails_as_soon_as_private_data_overflows() -> None:
    failures: list[StreamOverflowError] = []
    backlog = HandlerBacklog("async handler 'on_order'", 2)
    backlog.on_overflow = failures.append
    backlog.buffer(private=False).put(msg("ticker.cmt_btcusdt", 0))
    for n in range(3):
        backlog.buffer(private=True).put(msg("orders", n))
    # Told at the put that lost data, without anyone asking for a message.
    assert failures == [backlog.failure]
    error = failures[0]
    assert (error.channel, error.maxsize) == ("orders", 2)
    assert str(error).startswith("async handler 'on_order' for 'orders' overflowed")
    with pytest.raises(StreamOverflowError) as raised:
        backlog.get()  # not even the public message: the handler is done
    assert raised.value is error
    assert backlog.closed


def test_removed_handler_backlog_drains_both_then_ends() -> None:
    backlog = HandlerBacklog("async handler 'h'", 4)
    backlog.buffer(private=False).put(msg("ticker.cmt_btcusdt", 1))
    backlog.buffer(private=True).put(msg("orders", 2))
    backlog.close()
    assert [m.data["n"] for m in (backlog.get(), backlog.get()) if m is not None] == [2, 1]
    with pytest.raises(BufferClosed):
        backlog.get()
    assert backlog.failure is None


def test_router_matches_exact_names_and_patterns() -> None:
    router = Router()
    seen: list[str] = []

    def exact(m: WebSocketMessage[Any]) -> None:
        seen.append("exact")

    def every_ticker(m: WebSocketMessage[Any]) -> None:
        seen.append("pattern")

    router.add_handler("ticker.cmt_btcusdt", exact)
    router.add_handler("ticker.*", every_ticker)
    btc = MessageBuffer("btc", 5, OverflowPolicy.KEEP_LATEST)
    router.add_buffer(["ticker.cmt_btcusdt", "ticker.*"], btc)  # two routes, one delivery
    for handler in router.deliver(msg("ticker.cmt_btcusdt", 1)):
        handler(msg("ticker.cmt_btcusdt", 1))
    assert seen == ["exact", "pattern"]
    assert len(btc) == 1
    assert [h.__name__ for h in router.deliver(msg("ticker.cmt_ethusdt", 2))] == ["every_ticker"]
    assert router.deliver(msg("trades.cmt_btcusdt", 3)) == []
    assert router.remove_handler("ticker.*", every_ticker) == 1
    assert router.deliver(msg("ticker.cmt_ethusdt", 4)) == []
    router.remove_buffer(btc)
    router.deliver(msg("ticker.cmt_btcusdt", 5))
    assert len(btc) == 3  # messages 1, 2 and 4; 5 came after the buffer was removed


@pytest.mark.parametrize("pattern", ["", " ticker.x"])
def test_router_rejects_bad_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match="channel"):
        Router().add_handler(pattern, print)


def test_channel_refs_share_one_subscription() -> None:
    refs = ChannelRefs()
    assert refs.acquire("ticker.a") is True
    assert refs.acquire("ticker.a") is False
    assert refs.release("ticker.a") is False
    assert refs.release("ticker.a") is True
    assert refs.release("ticker.a") is False
    assert refs.count("ticker.a") == 0


def test_route_cache_stays_bounded_under_a_flood_of_server_chosen_names() -> None:
    router = Router(cache_size=64)
    hot = MessageBuffer("hot", 10_000, OverflowPolicy.KEEP_LATEST)
    every = MessageBuffer("every", 10_000, OverflowPolicy.KEEP_LATEST)
    router.add_buffer(["ticker.cmt_btcusdt"], hot)
    router.add_buffer(["ticker.*"], every)
    for index in range(5_000):
        router.deliver(msg(f"ticker.junk{index}", index))
        assert router.cached_channels <= 64
        if index % 100 == 0:
            router.deliver(msg("ticker.cmt_btcusdt", index))
    assert router.cached_channels == 64
    # Routing is unaffected by evictions: every name still reaches exactly its buffers.
    assert len(hot) == 50
    assert len(every) == 5_050
    assert router.route("ticker.cmt_btcusdt") == ([], [hot, every])
    assert router.route("ticker.junk0") == ([], [every])
    assert router.route("trades.cmt_btcusdt") == ([], [])


def test_default_route_cache_is_bounded() -> None:
    router = Router()
    for index in range(ROUTE_CACHE_SIZE + 500):
        router.route(f"depth.junk{index}.15")
    assert router.cached_channels == ROUTE_CACHE_SIZE


def test_router_rejects_an_empty_cache() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        Router(cache_size=0)
