"""Lifecycle edges: cancellation from outside the client, async handlers after a give-up.

Each runs against a `websockets` server speaking WEEX's v2 or v3 (a subscribe is acked and
one ticker push follows, in the dialect's words).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.adapters import BOTH_DIALECTS
from tests.thirdparty_server import eventually
from weex_anyio import ReconnectExhaustedError, TransportStream, WeexConfig, WeexWebSocketClient
from weex_anyio._transport import tcp_transport
from weex_proto.config import Endpoint
from weex_proto.events import WebSocketMessage

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    def __init__(self) -> None:
        self.close_codes: list[int | None] = []
        self.url = ""


def answer_v2(message: Any) -> list[Any]:
    """A v2 subscribe's ack, then one push on its channel."""
    if message.get("event") != "subscribe":
        return []
    channel = message["channel"]
    return [
        {"event": "subscribed", "channel": channel},
        {"event": "payload", "channel": channel, "data": [{}]},
    ]


def answer_v3(message: Any) -> list[Any]:
    """A v3 SUBSCRIBE's answer by id, then one push for each `<SYMBOL>@ticker` it names."""
    if message.get("method") != "SUBSCRIBE":
        return []
    pushes = [
        {"e": "ticker", "E": 1, "s": name.partition("@")[0], "d": [{}]}
        for name in message["params"]
        if name.endswith("@ticker")
    ]
    return [{"id": message["id"], "result": True}, *pushes]


ANSWERS = {"v2": answer_v2, "v3": answer_v3}


@pytest.fixture(params=BOTH_DIALECTS)
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    answer = ANSWERS[request.param]

    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            for reply in answer(json.loads(raw)):
                await ws.send(json.dumps(reply))
        recorder.close_codes.append(ws.close_code)

    async with serve(handler, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        recorder.url = f"ws://127.0.0.1:{port}/{request.param}/ws/public"
        yield recorder


async def test_cancel_scope_around_the_client_still_sends_a_close_frame(server: Recorder) -> None:
    with anyio.CancelScope() as outside:
        async with WeexWebSocketClient(WeexConfig(public_url=server.url)) as client:
            await client.connect()
            outside.cancel()  # once connected, however long that took
            await anyio.sleep(30)
    assert outside.cancelled_caught
    await eventually(lambda: bool(server.close_codes))
    assert server.close_codes == [1000]  # a clean close, not 1006 (dropped without a frame)


async def test_async_handler_outlives_a_give_up_without_crashing_the_client(
    server: Recorder,
) -> None:
    seen: list[str] = []
    attempts = 0
    real = tcp_transport()

    async def first_time_only(endpoint: Endpoint) -> TransportStream:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            raise ConnectionRefusedError("the exchange went away")
        return await real(endpoint)

    async def handler(message: WebSocketMessage[Any]) -> None:
        seen.append(message.channel)

    config = WeexConfig(public_url=server.url)
    client = WeexWebSocketClient(config, max_retries=0, transport=first_time_only)
    async with client:
        client.add_message_handler("ticker.*", handler)
        await client.subscribe("ticker", symbol="BTCUSDT")
        await eventually(lambda: bool(seen))
        with pytest.raises(ReconnectExhaustedError):
            await client.reconnect()
        await anyio.sleep(0.05)  # the handler's worker must still be alive, not crashed
    assert seen == ["ticker.cmt_btcusdt"]
    assert attempts == 2
