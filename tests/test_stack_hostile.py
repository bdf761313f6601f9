"""The real client, on every adapter, against a server that sends hypothesis-made hostile frames.

The simulator completes both handshakes and acknowledges the subscriptions; its market is paused,
so from then on the only frames are the ones a test sends: hostile ones (pings with odd times,
errors and acks of any JSON shape, pushes whose fields are the wrong type, text that is not JSON)
interleaved with valid ticker, trade, order-book and order pushes, each valid one marked. The user's
side holds streams, a sync and an async handler in its own task group. Asserted: no exception
reaches that task group or `async with client`, every marked push arrives, in order, on its
stream, the connections are never replaced, and the client closes cleanly. Each example speaks
one WEEX protocol generation, drawn with it: on v3 the valid pushes are v3 events, and the
hostile frames include v3's (tests/test_v3_hostile.py).

Virtual time on the trio variants; no assertion depends on how long anything took.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.adapters import (
    ADAPTERS,
    BOTH_DIALECTS,
    TAKE_LIMIT,
    TEST_LIMIT,
    VIRTUAL_TEST_LIMIT,
    Adapter,
    Harness,
    _sole_error,
    eventually,
)
from tests.fixtures_messages import ORDERS_PUSH
from tests.test_v3_hostile import HOSTILE_V3
from weex_anyio.testing import SimulatedWeexServer
from weex_proto import strategies
from weex_proto.events import WebSocketMessage

SYMBOL = "cmt_btcusdt"
TICKER, TRADES, BOOK = f"ticker.{SYMBOL}", f"trades.{SYMBOL}", f"depth.{SYMBOL}.15"


def ticker(mark: int) -> dict[str, Any]:
    row = {
        "symbol": SYMBOL,
        "priceChange": "1",
        "priceChangePercent": "0.01",
        "trades": "5",
        "size": "1",
        "value": "1",
        "high": "2",
        "low": "1",
        "lastPrice": f"{mark}.5",
        "markPrice": "1.5",
    }
    return {"event": "payload", "channel": TICKER, "data": [row]}


def trade(mark: int) -> dict[str, Any]:
    row = {"time": "1747131727502", "price": f"{mark}.5", "size": "1", "value": "1"}
    return {"event": "payload", "channel": TRADES, "data": [{**row, "buyerMaker": False}]}


def order(mark: int) -> dict[str, Any]:
    """One order record: a push with none would yield no message (one message per record)."""
    record = copy.deepcopy(ORDERS_PUSH["msg"]["data"]["order"][0])
    return {
        "type": "trade-event",
        "channel": "orders",
        "event": "payload",
        "msg": {"msgEvent": "OrderUpdate", "version": mark, "time": 1, "data": {"order": [record]}},
    }


def depth(version: int, kind: str = "CHANGED") -> dict[str, Any]:
    row = {
        "startVersion": str(version),
        "endVersion": str(version),
        "level": 15,
        "depthType": kind,
        "symbol": SYMBOL,
        "asks": [{"price": f"{101 + version % 7}", "size": "1"}],
        "bids": [{"price": "100", "size": "1"}],
    }
    return {"event": "payload", "channel": BOOK, "data": [row]}


BUILDERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "ticker": ticker,
    "trade": trade,
    "order": order,
    "depth": depth,
}
VALID = tuple(BUILDERS)
hostile_frames = strategies.hostile_frames()
"""Pings with odd times, errors and acks of any JSON shape, pushes with a field of the wrong
type, text that is not JSON, nesting past the recursion limit: see `weex_proto.strategies`."""
KILLERS = [json.dumps({"event": "ping", "time": time}) for time in ("²", "1" * 400, "1" * 5000)]
"""Pings that each ended the client with ExceptionGroup[ValueError] before they were validated."""
scripts = st.lists(
    st.one_of(hostile_frames, st.sampled_from(HOSTILE_V3), st.sampled_from(VALID)),
    min_size=1,
    max_size=14,
)


async def collect_marks(
    stream: AsyncIterator[WebSocketMessage[Any]], read: Any, last: int, into: list[int]
) -> None:
    """Read the marks of valid pushes (skipping hostile ones) until `last`."""
    async for message in stream:
        mark = read(message)
        if mark is not None:
            into.append(mark)
            if mark == last:
                return


FIRST_MARK = 1000


READ_MARK: dict[str, Callable[[Any], Any]] = {
    "ticker": lambda frame: frame["data"][0]["lastPrice"][:-2],
    "trade": lambda frame: frame["data"][0]["price"][:-2],
    "order": lambda frame: frame["msg"]["version"],
}
"""Where a valid push's mark is, in the (v2-shaped) frame a message carries."""


def marker(kind: str, texts: dict[int, str]) -> Callable[[WebSocketMessage[Any]], int | None]:
    """The mark of a message from a valid push of `kind` (exactly its text, `texts[mark]`)."""

    def mark_of(message: WebSocketMessage[Any]) -> int | None:
        try:
            mark = int(READ_MARK[kind](message.frame))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return None
        return mark if mark >= FIRST_MARK and message.raw == texts.get(mark) else None

    return mark_of


async def run_script(h: Harness, script: list[str]) -> None:
    h.server.pause_market()
    sent: dict[str, list[int]] = {kind: [] for kind in VALID}
    texts: dict[str, dict[int, str]] = {kind: {} for kind in VALID}
    got: dict[str, list[int]] = {kind: [] for kind in ("ticker", "trade", "order")}
    handler_ticks: set[int] = set()
    handler_trades: set[int] = set()
    frames: list[str] = []
    marks = iter(range(FIRST_MARK, 10**6))
    for step in [*script, "ticker", "trade", "order"]:  # every stream ends on a valid push
        if step not in VALID:
            frames.append(step)
            continue
        mark = next(marks)
        sent[step].append(mark)
        push = BUILDERS[step](mark)
        texts[step][mark] = json.dumps(strategies.v3_frame(push) if h.server.api == "v3" else push)
        frames.append(texts[step][mark])
    ticker_mark, trade_mark, order_mark = (marker(kind, texts[kind]) for kind in got)

    def on_ticker(message: WebSocketMessage[Any]) -> None:
        mark = ticker_mark(message)
        if mark is not None:
            handler_ticks.add(mark)

    async def on_trade(message: WebSocketMessage[Any]) -> None:
        mark = trade_mark(message)
        if mark is not None:
            handler_trades.add(mark)

    async with h.client(max_retries=None) as client:
        client.add_message_handler("ticker.*", on_ticker)
        client.add_message_handler("trades.*", on_trade)
        async with (
            contextlib.aclosing(client.stream_tickers("BTCUSDT")) as tickers,
            contextlib.aclosing(client.stream_trades("BTCUSDT")) as trades,
            contextlib.aclosing(client.stream_order_book("BTCUSDT")) as book,
            contextlib.aclosing(client.stream_orders()) as orders,
            anyio.create_task_group() as readers,
        ):
            readers.start_soon(
                collect_marks, tickers, ticker_mark, sent["ticker"][-1], got["ticker"]
            )
            readers.start_soon(collect_marks, trades, trade_mark, sent["trade"][-1], got["trade"])
            readers.start_soon(collect_marks, orders, order_mark, sent["order"][-1], got["order"])
            readers.start_soon(read_book, book)
            for channel in (TICKER, TRADES, BOOK, "orders"):
                await h.server.wait_for_subscription(channel)
            for frame in frames:
                await h.server.send_raw(frame)
            limit = TAKE_LIMIT * 6  # a hang guard: the pushes are already on their way
            await eventually(lambda: all(got[k][-1:] == sent[k][-1:] for k in got), limit=limit)
            await eventually(lambda: handler_ticks >= set(sent["ticker"]), limit=limit)
            await eventually(lambda: handler_trades >= set(sent["trade"]), limit=limit)
            readers.cancel_scope.cancel()  # only the book reader is still reading
    assert not client.is_connected
    for kind, marks_got in got.items():
        assert marks_got == sent[kind], kind  # every valid push, in order, none lost
    assert h.server.stats.accepted == 2  # neither connection was ever replaced


async def read_book(book: AsyncIterator[WebSocketMessage[Any]]) -> None:
    async for message in book:
        assert len(message.data["bids"]) <= 5 and len(message.data["asks"]) <= 5


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(script=scripts, api=st.sampled_from(BOTH_DIALECTS))
@example(script=[*KILLERS, "ticker", "depth", "trade"], api="v2")
@example(script=[*KILLERS, "ticker", "depth", "trade", *HOSTILE_V3[:4], "order"], api="v3")
@example(  # a bad depth push resyncs the book; an error naming its channel refused the resync
    script=[
        '{"event":"payload","channel":"depth.cmt_btcusdt.15","data":"\u00b2","msg":"\u00b2"}',
        '{"event":"error","code":"\u00b2","msg":"\u00b2","channel":"depth.cmt_btcusdt.15"}',
    ],
    api="v2",
)
def test_hostile_frames_never_reach_the_user_and_valid_pushes_keep_flowing(
    adapter: Adapter, script: list[str], api: str
) -> None:
    async def main() -> None:
        virtual = adapter.can_use_virtual_time
        with anyio.fail_after(VIRTUAL_TEST_LIMIT if virtual else TEST_LIMIT):
            options: dict[str, Any] = {"trade_interval": None, "ping_interval": None, "api": api}
            async with SimulatedWeexServer(**options) as server:
                await run_script(Harness(adapter, server, virtual), script)

    try:
        adapter.run(main, virtual_time=True)
    except BaseExceptionGroup as group:
        raise _sole_error(group) from None
