"""How consumers' failures and the client's own tasks leave the client.

An async handler that cannot keep private data ends the client with `StreamOverflowError`, as a
private stream does; a KeyboardInterrupt (or any BaseException) from a handler leaves the event
loop at once and bare; and `close()` outside `async with` returns only once every task of the
client has ended.
"""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest

from tests.adapters import (
    ADAPTERS,
    BOTH_DIALECTS,
    TAKE_LIMIT,
    Harness,
    eventually,
    on_every_adapter,
)
from weex_anyio import WeexWebSocketClient
from weex_anyio.testing import SimulatedWeexServer
from weex_proto.config import WeexConfig
from weex_proto.errors import StreamOverflowError
from weex_proto.events import WebSocketMessage

ROOT = Path(__file__).resolve().parent.parent
BTC = "ticker.cmt_btcusdt"

# --------------------------------------------------------------------------- slow async handlers


@on_every_adapter(dialects=BOTH_DIALECTS)
async def test_async_handler_that_cannot_keep_private_data_ends_the_client(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="weex_ws")
    size = 3
    handled: list[WebSocketMessage[Any]] = []
    never = anyio.Event()

    async def on_order(message: WebSocketMessage[Any]) -> None:
        handled.append(message)
        await never.wait()  # far slower than the feed

    async def use_client() -> None:
        async with h.client(buffer_size=size) as client:
            client.add_message_handler("orders", on_order)
            await client.subscribe("orders", ack_timeout=TAKE_LIMIT)
            for _ in range(size):  # two `orders` pushes each: more than the handler can keep
                await h.server.simulate_trade("cmt_btcusdt", "BUY", "0.001")
            with anyio.fail_after(TAKE_LIMIT):
                await anyio.sleep_forever()  # the client's failure ends the block first

    with pytest.raises(StreamOverflowError) as raised:
        await use_client()

    error = raised.value
    assert type(error) is StreamOverflowError  # bare, not inside an ExceptionGroup
    assert (error.channel, error.maxsize) == ("orders", size)
    assert "on_order" in str(error)
    assert len(handled) <= 1  # at most the first (the rest came in one read), then no more
    records = [r for r in caplog.records if getattr(r, "weex_event", None) == "handler_overflow"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert "on_order" in records[0].getMessage()
    assert "'orders'" in records[0].getMessage()


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_public_flood_never_pushes_private_data_out_of_an_async_handler(h: Harness) -> None:
    size = 4
    handled: list[WebSocketMessage[Any]] = []
    busy, release = anyio.Event(), anyio.Event()

    async def on_anything(message: WebSocketMessage[Any]) -> None:
        handled.append(message)
        busy.set()
        await release.wait()

    async with h.client(buffer_size=size) as client:
        client.add_message_handler("*", on_anything)
        await client.subscribe("orders", ack_timeout=TAKE_LIMIT)
        await client.subscribe("ticker", symbol="BTCUSDT")
        with anyio.fail_after(TAKE_LIMIT):
            await busy.wait()  # stuck on its first message from now on
        await h.server.simulate_trade("cmt_btcusdt", "BUY", "0.001")  # two `orders` pushes
        public = client.health.endpoints["public"]
        flooded = public.messages + 3 * size
        await eventually(lambda: public.messages >= flooded)  # the public backlog overflowed
        release.set()

        def orders() -> list[WebSocketMessage[Any]]:
            return [m for m in handled if m.channel == "orders"]

        await eventually(lambda: len(orders()) == 2)
        await eventually(lambda: sum(m.channel == BTC for m in handled) > size)
        assert client.is_connected  # public data kept the latest: nothing failed

    assert [m.record.status for m in orders()] == ["PENDING", "FILLED"]
    tickers = [m for m in handled if m.channel == BTC]
    assert any(m.gap for m in tickers)  # the public backlog dropped its oldest, and said so


# --------------------------------------------------------------------------- BaseExceptions


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        ("KeyboardInterrupt", "message"),
        ("KeyboardInterrupt", "frame"),
        ("SystemExit", "message"),
        ("BaseException", "frame"),
    ],
)
@pytest.mark.parametrize("flavour", [adapter.name for adapter in ADAPTERS])
def test_base_exception_from_a_sync_handler_leaves_the_loop_bare(
    flavour: str, exception: str, kind: str
) -> None:
    command = [sys.executable, "-m", "tests.handler_interrupt", flavour, exception, kind]
    done = subprocess.run(  # noqa: S603 - our own script; run() kills and reaps it on timeout
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "LEFT BARE" in done.stdout, output
    # Nothing was started while the client was dying, and nothing was left behind.
    assert "never awaited" not in done.stderr, output
    assert "Task was destroyed" not in done.stderr, output
    assert "unhandled exception" not in done.stderr, output


# --------------------------------------------------------------------------- close() outside it


@contextmanager
def simulator_in_a_thread(**options: Any) -> Iterator[SimulatedWeexServer]:
    """A simulator on its own event loop, so the test's loop holds only its own tasks and the
    client's."""
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        simulator = SimulatedWeexServer(**options)
        with portal.wrap_async_context_manager(simulator) as server:
            yield server


def simulator_config(server: SimulatedWeexServer) -> WeexConfig:
    credentials = server.credentials
    return WeexConfig(
        api_key=credentials.api_key,
        secret_key=credentials.secret_key,
        passphrase=credentials.passphrase,
        public_url=server.public_url,
        private_url=server.private_url,
    )


def test_close_outside_async_with_returns_once_every_client_task_has_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")

    async def handler(message: WebSocketMessage[Any]) -> None:
        await asyncio.sleep(0)

    async def main(server: SimulatedWeexServer) -> None:
        ours = {asyncio.current_task()}
        client = WeexWebSocketClient(
            simulator_config(server), backoff_base=0.01, rng=random.Random(7)
        )
        client.add_message_handler("ticker.*", handler)  # a worker task too
        await client.connect()
        await client.connect(private=True)
        await client.subscribe("ticker", symbol="BTCUSDT")
        assert asyncio.all_tasks() != ours  # the client runs tasks of its own
        await client.close()
        assert asyncio.all_tasks() == ours  # ...and none of them is left

    with simulator_in_a_thread(tick_interval=0.02, trade_interval=None) as server:
        asyncio.run(main(server))
    assert not [r for r in caplog.records if r.name == "asyncio"]


def test_close_outside_async_with_raises_an_async_handlers_overflow() -> None:
    size = 2

    async def on_order(message: WebSocketMessage[Any]) -> None:
        await asyncio.Event().wait()  # never done

    async def main(server: SimulatedWeexServer, portal: anyio.from_thread.BlockingPortal) -> None:
        client = WeexWebSocketClient(
            simulator_config(server), buffer_size=size, backoff_base=0.01, rng=random.Random(7)
        )
        client.add_message_handler("orders", on_order)
        await client.connect(private=True)
        await client.subscribe("orders", ack_timeout=TAKE_LIMIT)
        tickers = client.stream_tickers("BTCUSDT")
        await anext(tickers)
        for _ in range(size):  # two `orders` pushes each
            await anyio.to_thread.run_sync(
                portal.call, server.simulate_trade, "cmt_btcusdt", "BUY", "0.001"
            )
        with pytest.raises(StreamOverflowError), anyio.fail_after(TAKE_LIMIT):
            async for _message in tickers:  # open streams end with the error
                pass
        with pytest.raises(StreamOverflowError):
            await client.close()

    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        simulator = SimulatedWeexServer(tick_interval=0.02, trade_interval=None)
        with portal.wrap_async_context_manager(simulator) as server:
            asyncio.run(main(server, portal))
