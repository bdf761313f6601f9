"""The client in v3 mode against a `websockets`-library server replaying Weex.Net's frames.

The server is not ours: the upgrade, framing and close handshake are `websockets`'; the v3
layer on top (docs/protocol-v3.md) is a few lines here, written without `weex_proto` and
without our simulator. It checks the User-Agent and the `/v3/ws/private` signature, greets
with `connected`, pings in the public form, answers each SUBSCRIBE by its id, and then sends
the captured frame of that channel (tests/data/v3) exactly as it is in the file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from weex_anyio import WebSocketMessage, WeexConfig, WeexWebSocketClient
from weex_proto.messages import Candle, Collateral, DepthUpdate, Fill, Order, Position, Ticker

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "data" / "v3"
SECRET = "v3-secret"
TAKE_LIMIT = 5.0
# v3 name the client sends -> fixture. The fixtures' own request lines say `order`, `position`
# and `..._1m_...` where the code (and the push) say `orders`, `positions` and `1d`.
REPLAYED = {
    "ETHUSDT@ticker": "Ticker",
    "ETHUSDT@depth15": "OrderBook",
    "ETHUSDT@trade": "Trades",
    "ETHUSDT@kline_1d_LAST_PRICE": "Kline",
    "account": "Account",
    "positions": "Position",
    "orders": "Order",
    "fill": "UserTrade",
}


def captured_text(name: str) -> str:
    return (DATA / f"{name}.txt").read_text().partition("\n= \n")[2].strip()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets.asyncio is asyncio-only


class ReplayServer:
    def __init__(self) -> None:
        self.received: list[Any] = []
        self.paths: list[str] = []
        self._server: Server | None = None
        self.port = 0

    async def __aenter__(self) -> ReplayServer:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._judge, ping_interval=None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with anyio.move_on_after(5):
            await self._server.wait_closed()

    def url(self, kind: str) -> str:
        return f"ws://127.0.0.1:{self.port}/v3/ws/{kind}"

    def _judge(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = {name.lower(): value for name, value in request.headers.raw_items()}
        self.paths.append(request.path)
        if request.path not in ("/v3/ws/public", "/v3/ws/private"):
            return connection.respond(404, "not found\n")
        if not headers.get("user-agent"):
            return connection.respond(403, "User-Agent required\n")
        if request.path.endswith("/private"):
            stamp = headers.get("access-timestamp", "")
            digest = hmac.new(SECRET.encode(), (stamp + request.path).encode(), hashlib.sha256)
            if headers.get("access-sign") != base64.b64encode(digest.digest()).decode():
                return connection.respond(401, '{"code":"40009","msg":"bad signature"}')
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"event": "connected", "timestamp": 1775120000000}))
        await ws.send(json.dumps({"event": "ping", "time": "1775120000001"}))
        try:
            async for text in ws:
                message = json.loads(text)
                self.received.append(message)
                if message.get("method") == "PONG":
                    await ws.send(json.dumps({"result": True, "id": message["id"]}))
                elif message.get("method") == "SUBSCRIBE":
                    (name,) = message["params"]
                    fixture = REPLAYED.get(name)
                    if fixture is None:
                        refusal = {"result": False, "id": message["id"], "msg": f"bad {name}"}
                        await ws.send(json.dumps(refusal))
                        continue
                    await ws.send(json.dumps({"id": message["id"], "result": True}))
                    await ws.send(captured_text(fixture))
        except ConnectionClosed:
            pass


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    async with ReplayServer() as running:
        yield running


def client_for(server: ReplayServer) -> WeexWebSocketClient:
    config = WeexConfig(
        api_key="k",
        secret_key=SECRET,
        passphrase="p",
        public_url=server.url("public"),
        private_url=server.url("private"),
    )
    return WeexWebSocketClient(config, max_retries=0, rng=random.Random(1), connect_timeout=2.0)


async def first(stream: AsyncIterator[WebSocketMessage[Any]]) -> WebSocketMessage[Any]:
    assert isinstance(stream, AsyncGenerator)
    async with contextlib.aclosing(stream):
        with anyio.fail_after(TAKE_LIMIT):
            return await anext(stream)


async def test_public_streams_read_the_replayed_frames(server: ReplayServer) -> None:
    async with client_for(server) as client:
        ticker = await first(client.stream_tickers(["ETHUSDT"]))
        assert isinstance(ticker.record, Ticker)
        assert ticker.raw == captured_text("Ticker")
        raw = json.loads(ticker.raw)["d"][0]
        assert ticker.record.last_price == Decimal(raw["c"])
        trade = await first(client.stream_trades("ETHUSDT"))
        assert trade.data["tradeId"] == json.loads(captured_text("Trades"))["d"][0]["t"]
        candle = await first(client.stream_klines("ETHUSDT", interval="DAY_1"))
        assert isinstance(candle.record, Candle)
        assert candle.channel == "kline.LAST_PRICE.cmt_ethusdt.DAY_1"
        updates: list[DepthUpdate] = []
        arrived = anyio.Event()

        def on_depth(message: WebSocketMessage[Any]) -> None:
            updates.append(message.record)
            arrived.set()

        client.add_message_handler("depth.cmt_ethusdt.15", on_depth)
        await client.subscribe("depth", symbol="ETHUSDT", level=15)
        with anyio.fail_after(TAKE_LIMIT):
            await arrived.wait()
        book = json.loads(captured_text("OrderBook"))
        assert (updates[0].start_version, updates[0].end_version) == (book["U"], book["u"])
    pongs = [m for m in server.received if m.get("method") == "PONG"]
    assert pongs and all(isinstance(m["id"], int) for m in pongs)
    subscribes = [m["params"][0] for m in server.received if m.get("method") == "SUBSCRIBE"]
    assert subscribes == [
        "ETHUSDT@ticker",
        "ETHUSDT@trade",
        "ETHUSDT@kline_1d_LAST_PRICE",
        "ETHUSDT@depth15",
    ]


async def test_private_streams_sign_v3_and_read_the_replayed_frames(server: ReplayServer) -> None:
    async with client_for(server) as client:
        account = await first(client.stream_account())
        assert isinstance(account.record, Collateral)
        positions = await first(client.stream_positions(mark_prices=False))
        assert isinstance(positions.record, Position)
        assert positions.record.contract_id == "cmt_btcusdt"
        orders = await first(client.stream_orders())
        assert isinstance(orders.record, Order)
        fills = await first(client.stream_fills())
        assert isinstance(fills.record, Fill)
        assert fills.record.order_id == orders.record.id  # the same trade, in both fixtures
    assert "/v3/ws/private" in server.paths
