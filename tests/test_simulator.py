"""The WEEX simulator, checked from the outside with third-party and hand-made clients.

`websockets` (asyncio only) plays a typical third-party client; a tiny wsproto client over
`anyio.connect_tcp` runs under both asyncio and trio. Expected values come from the protocol
reference (docs/weex-protocol.md) or are computed here independently (signatures via hmac).

A test that takes the `wire` fixture runs on WEEX's v2 and v3 alike: `Wire` holds what differs
(paths, requests and their answers, push shapes), and reads each push back as the v2 frame it
carries, so one body checks the same facts on both; v3's own facts are in test_v3_simulator.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Literal

import anyio
import anyio.abc
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from tests.adapters import BOTH_DIALECTS
from weex_anyio.testing import SimulatedWeexServer, run_simulator
from weex_anyio.testing._channels import PublicChannel
from weex_anyio.testing._market import Market
from weex_proto.v3wire import push_to_v2, wire_channel

BOTH_BACKENDS = pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
TICKER_KEYS = [
    "symbol",
    "priceChange",
    "priceChangePercent",
    "trades",
    "size",
    "value",
    "high",
    "low",
    "lastPrice",
    "markPrice",
]
Json = dict[str, Any]
_REQUEST_IDS = itertools.count(1)
_V2_REFUSALS = {"40019": "Parameter cannot be empty", "40020": "Parameter channel is invalid"}


@attrs.frozen
class Wire:
    """One dialect as a hand-made client speaks it (docs/weex-protocol.md for v2,
    docs/protocol-v3.md for v3). Channels are named as v2 names them; `name` is the wire's."""

    api: Literal["v2", "v3"]

    def path(self, private: bool = False) -> str:
        return f"/{self.api}/ws/{'private' if private else 'public'}"

    def name(self, channel: str) -> str:
        """`ticker.cmt_btcusdt`, or v3's `BTCUSDT@ticker` (a name v3 lacks stays as it is)."""
        return channel if self.api == "v2" else wire_channel(channel)

    def request(self, channel: str, operation: str = "subscribe") -> Json:
        return self.request_named(self.name(channel), operation)

    def request_named(self, name: str, operation: str = "subscribe") -> Json:
        """A request for `name` as the wire spells it (a v3 name on v3)."""
        if self.api == "v2":
            return {"event": operation, "channel": name}
        return {"method": operation.upper(), "params": [name], "id": next(_REQUEST_IDS)}

    def answer(self, request: Json) -> Json:
        """The acknowledgement of a request that succeeds."""
        if self.api == "v2":
            return {"event": request["event"] + "d", "channel": request["channel"]}
        return {"id": request["id"], "result": True}

    def refusal(self, request: Json, code: str) -> Json:
        """The answer to a request refused with `code` (429: over a limit)."""
        if self.api == "v2":
            msg = "Too many requests" if code == "429" else _V2_REFUSALS[code]
            return {"event": "error", "code": code, "msg": msg, "channel": request["channel"]}
        if code == "429":
            return {
                "result": False,
                "id": request["id"],
                "msg": "RESOURCE_EXHAUSTED: Too many requests",
            }
        name = request["params"][0]
        return {
            "result": False,
            "id": request["id"],
            "msg": f"INVALID_ARGUMENT: invalid symbol : {name}",
        }

    def answers(self, request: Json) -> Callable[[Any], bool]:
        """Whether a message is the answer (ack or refusal) to `request`."""
        if self.api == "v2":
            events = ("subscribed", "unsubscribed", "error")
            return lambda m: m.get("event") in events and m.get("channel") == request["channel"]
        return lambda m: m.get("id") == request["id"] and "result" in m

    def push(self, message: Any) -> Json | None:
        """A data push as the v2 frame it carries (v3's through weex_proto's reading of it,
        which test_v3_simulator checks against captured frames); None for anything else."""
        if not isinstance(message, dict):
            return None
        if self.api == "v2":
            return message if message.get("event") == "payload" else None
        frame = push_to_v2(message) if "e" in message else None
        return frame if isinstance(frame, dict) else None

    def on_channel(self, channel: str) -> Callable[[Any], bool]:
        def matches(message: Any) -> bool:
            frame = self.push(message)
            return frame is not None and frame["channel"] == channel

        return matches

    def is_ping(self, message: Any, key: str = "event") -> bool:
        return isinstance(message, dict) and message.get(key) == "ping"

    def pong(self, ping: Json, key: str = "event") -> Json:
        """The answer to a server ping: v2 echoes its time, v3 sends a PONG request."""
        if self.api == "v2":
            return {key: "pong", "time": ping["time"]}
        return {"id": next(_REQUEST_IDS), "method": "PONG"}


V2 = Wire("v2")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BOTH_DIALECTS)
def wire(request: pytest.FixtureRequest) -> Wire:
    return Wire(request.param)


def fast_server(wire: Wire = V2, **options: Any) -> SimulatedWeexServer:
    options.setdefault("tick_interval", 0.02)
    options.setdefault("trade_interval", None)
    options.setdefault("api", wire.api)
    return SimulatedWeexServer(**options)


def weex_sign(secret: str, timestamp: str, prehash_path: str = "/v2/ws/private") -> str:
    """The documented rule, written out independently of the simulator."""
    mac = hmac.new(secret.encode(), (timestamp + prehash_path).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def private_headers(server: SimulatedWeexServer, **override: str | None) -> dict[str, str]:
    """Upgrade headers for the server's private path, signed over the timestamp (the one in
    `override`, if any) unless `override` gives a signature."""
    creds = server.credentials
    headers: dict[str, str | None] = {
        "ACCESS-KEY": creds.api_key,
        "ACCESS-PASSPHRASE": creds.passphrase,
        "ACCESS-TIMESTAMP": str(int(time.time() * 1000)),
    }
    headers.update(override)
    if "ACCESS-SIGN" not in override:
        stamp = headers["ACCESS-TIMESTAMP"] or ""
        headers["ACCESS-SIGN"] = weex_sign(creds.secret_key, stamp, f"/{server.api}/ws/private")
    return {k: v for k, v in headers.items() if v is not None}


# -- a websockets client ----------------------------------------------------------------------


@asynccontextmanager
async def ws_connect(url: str, **kwargs: Any) -> AsyncIterator[ClientConnection]:
    """A `websockets` connection; on v3, past the greeting every v3 socket opens with."""
    kwargs.setdefault("user_agent_header", "weex-ws-tests/1.0")
    async with connect(url, proxy=None, open_timeout=3, close_timeout=2, **kwargs) as ws:
        if "/v3/" in url:
            assert (await recv_json(ws))["event"] == "connected"
        yield ws


async def recv_json(ws: ClientConnection, within: float = 3) -> Any:
    with anyio.fail_after(within):
        return json.loads(await ws.recv())


async def recv_until(
    ws: ClientConnection, predicate: Callable[[Any], bool], within: float = 3
) -> Any:
    """Skip unrelated pushes until one matches."""
    with anyio.fail_after(within):
        while True:
            message = json.loads(await ws.recv())
            if predicate(message):
                return message


async def request(
    ws: ClientConnection, wire: Wire, channel: str, operation: str = "subscribe"
) -> tuple[Json, Any]:
    """Send a (un)subscribe for `channel`; the request and its answer (pushes skipped)."""
    sent = wire.request(channel, operation)
    await ws.send(json.dumps(sent))
    return sent, await recv_until(ws, wire.answers(sent))


async def subscribe(ws: ClientConnection, channel: str, wire: Wire) -> None:
    sent, answer = await request(ws, wire, channel)
    assert answer == wire.answer(sent)


async def recv_push(ws: ClientConnection, wire: Wire, channel: str) -> Json:
    """The next push on `channel`, as the v2 frame it carries."""
    frame = wire.push(await recv_until(ws, wire.on_channel(channel)))
    assert frame is not None
    return frame


# -- a raw wsproto client that runs on asyncio and trio ---------------------------------------


class Rejected(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class RawClient:
    """Just enough of a WebSocket client to see every frame the server sends."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()
        self._text: list[str] = []

    async def _pump(self) -> None:
        try:
            data: bytes | None = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            data = None
        self.ws.receive_data(data)
        self._events.extend(self.ws.events())

    async def next_event(self) -> Event:
        while not self._events:
            await self._pump()
        return self._events.popleft()

    async def handshake(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        """Open the WebSocket (on v3, past the greeting every v3 socket opens with)."""
        await self.stream.send(
            self.ws.send(Request(host="127.0.0.1", target=path, extra_headers=headers))
        )
        event = await self.next_event()
        if isinstance(event, AcceptConnection):
            if path.startswith("/v3/"):
                assert (await self.recv())["event"] == "connected"
            return
        assert isinstance(event, RejectConnection)
        body = b""
        while True:
            chunk = await self.next_event()
            assert isinstance(chunk, RejectData)
            body += chunk.data
            if chunk.body_finished:
                raise Rejected(event.status_code, body)

    async def recv(self, within: float = 3) -> Any:
        """The next JSON message; answers protocol pings; raises on close."""
        with anyio.fail_after(within):
            while True:
                event = await self.next_event()
                if isinstance(event, TextMessage):
                    self._text.append(event.data)
                    if event.message_finished:
                        text, self._text = "".join(self._text), []
                        return json.loads(text)
                elif isinstance(event, Ping):
                    await self.stream.send(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    raise ServerClosed(event.code, event.reason)

    async def recv_until(self, predicate: Callable[[Any], bool], within: float = 3) -> Any:
        with anyio.fail_after(within):
            while True:
                message = await self.recv(within)
                if predicate(message):
                    return message

    async def recv_push(self, wire: Wire, channel: str, within: float = 3) -> Json:
        """The next push on `channel`, as the v2 frame it carries."""
        frame = wire.push(await self.recv_until(wire.on_channel(channel), within))
        assert frame is not None
        return frame

    async def send(self, message: Any) -> None:
        await self.stream.send(self.ws.send(TextMessage(json.dumps(message))))


async def read_until_closed(client: RawClient, within: float = 3) -> tuple[int, list[Any]]:
    """Collect messages until the server closes; return the close code and the messages."""
    messages: list[Any] = []
    with anyio.fail_after(within):
        try:
            while True:
                messages.append(await client.recv(within))
        except ServerClosed as closed:
            return closed.code, messages


class ServerClosed(Exception):
    def __init__(self, code: int, reason: str | None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


@asynccontextmanager
async def raw_client(
    server: SimulatedWeexServer,
    path: str | None = None,
    headers: dict[str, str] | None = None,
    user_agent: str | None = "raw-wsproto-test",
) -> AsyncIterator[RawClient]:
    """A connected `RawClient`, by default on the public path of the server's dialect."""
    path = f"/{server.api}/ws/public" if path is None else path
    all_headers = dict(headers or {})
    if user_agent is not None:
        all_headers["User-Agent"] = user_agent
    encoded = [(k.encode(), v.encode()) for k, v in all_headers.items()]
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        client = RawClient(stream)
        await client.handshake(path, encoded)
        yield client


# -- public channels --------------------------------------------------------------------------


def assert_v3_shape(push: Json, kind: str) -> None:
    """A v3 push has the keys of the frame Weex.Net captured (tests/data/v3), and their types."""
    from tests.test_v3_simulator import captured, shape

    assert shape(push) == shape(captured(kind))


@pytest.mark.anyio
async def test_ticker_subscribe_ack_and_push_shape(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await subscribe(ws, "ticker.cmt_btcusdt", wire)
        raw = await recv_until(ws, wire.on_channel("ticker.cmt_btcusdt"))
        if wire.api == "v2":
            assert list(raw) == ["event", "channel", "data"]
            assert list(raw["data"][0]) == TICKER_KEYS
            assert all(isinstance(v, str) for v in raw["data"][0].values())
        else:
            assert_v3_shape(raw, "Ticker")
            assert raw["s"] == "BTCUSDT"
        push = wire.push(raw)
        assert push is not None
        [row] = push["data"]
        assert row["symbol"] == "cmt_btcusdt"
        for key in ("lastPrice", "markPrice", "high", "low"):
            assert Decimal(row[key]) > 0
            assert len(row[key].split(".")[1]) == 1  # BTC prices have one decimal
        assert Decimal(row["low"]) <= Decimal(row["lastPrice"]) <= Decimal(row["high"])
        change = Decimal(row["lastPrice"]) - Decimal(row["priceChange"])
        assert abs(
            Decimal(row["priceChange"]) / change - Decimal(row["priceChangePercent"])
        ) < Decimal("0.000001")


@pytest.mark.anyio
async def test_unsubscribe_acks_and_stops_pushes(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await subscribe(ws, "trades.cmt_ethusdt", wire)
        await recv_push(ws, wire, "trades.cmt_ethusdt")
        sent, ack = await request(ws, wire, "trades.cmt_ethusdt", "unsubscribe")
        assert ack == wire.answer(sent)
        assert server.connections[0].subscriptions == frozenset()
        with anyio.move_on_after(0.2):  # many ticks: nothing more may arrive
            message = await recv_json(ws)
            pytest.fail(f"unexpected push after unsubscribe: {message}")
        assert server.stats.unsubscribe_ops == 1


@pytest.mark.anyio
async def test_trades_push_shape(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await subscribe(ws, "trades.cmt_solusdt", wire)
        raw = await recv_until(ws, wire.on_channel("trades.cmt_solusdt"))
        if wire.api == "v3":
            assert_v3_shape(raw, "Trades")
            assert all(isinstance(row["T"], int) for row in raw["d"])
        push = wire.push(raw)
        assert push is not None and push["data"]
        for row in push["data"]:
            if wire.api == "v2":
                assert list(row) == ["time", "price", "size", "value", "buyerMaker"]
                assert isinstance(row["time"], str)
            assert isinstance(row["buyerMaker"], bool)
            assert all(isinstance(row[k], str) for k in ("price", "size", "value"))
            price, size = Decimal(row["price"]), Decimal(row["size"])
            assert Decimal(row["value"]) == (price * size).quantize(Decimal("0.000001"))
            assert row["value"].split(".")[1].__len__() == 6
            assert abs(int(row["time"]) / 1000 - time.time()) < 60


@pytest.mark.anyio
async def test_kline_snapshot_then_changes(wire: Wire) -> None:
    channel = "kline.MARK_PRICE.cmt_btcusdt.MINUTE_1"
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await subscribe(ws, channel, wire)
        raw = await recv_until(ws, wire.on_channel(channel))
        if wire.api == "v2":
            assert list(raw) == ["event", "type", "channel", "data"]
        else:
            assert raw["e"] == "klineSnapshot"
            assert (raw["s"], raw["p"], raw["d"][0]["i"]) == ("BTCUSDT", "MARK_PRICE", "1m")
        assert (wire.push(raw) or {})["type"] == "snapshot"
        for _ in range(3):
            raw = await recv_until(ws, wire.on_channel(channel))
            if wire.api == "v3":
                assert_v3_shape(raw, "Kline")
                assert raw["e"] == "kline"
            change = wire.push(raw)
            assert change is not None and change["type"] == "change"
            [row] = change["data"]
            keys = ["symbol", "klineTime", "size", "value", "high", "low", "open", "close"]
            if wire.api == "v2":
                assert list(row) == keys
            else:
                assert set(keys) <= set(row)
                assert row["symbol"] == "cmt_btcusdt"
                assert row["closeTime"] == row["klineTime"] + 60_000
            assert int(row["klineTime"]) % 60_000 == 0
            low, high = Decimal(row["low"]), Decimal(row["high"])
            assert low <= Decimal(row["open"]) <= high
            assert low <= Decimal(row["close"]) <= high


def apply_depth(book: dict[str, dict[Decimal, str]], frame: Json, levels: int) -> None:
    for side in ("asks", "bids"):
        for level in frame[side]:
            price = Decimal(level["price"])
            if Decimal(level["size"]) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = level["size"]
    book["asks"] = dict(sorted(book["asks"].items())[:levels])
    book["bids"] = dict(sorted(book["bids"].items(), reverse=True)[:levels])


def book_of(frame: Json) -> dict[str, dict[Decimal, str]]:
    return {
        side: {Decimal(lv["price"]): lv["size"] for lv in frame[side]} for side in ("asks", "bids")
    }


@BOTH_BACKENDS
@pytest.mark.anyio
@pytest.mark.parametrize("levels", [15, 200])
async def test_depth_snapshot_then_continuous_changed_frames(levels: int, wire: Wire) -> None:
    channel = f"depth.cmt_btcusdt.{levels}"
    version = str if wire.api == "v2" else int  # "startVersion": "123" on v2, "U": 123 on v3
    async with fast_server(wire) as server, raw_client(server) as client:
        sent = wire.request(channel)
        await client.send(sent)
        assert await client.recv() == wire.answer(sent)
        [snapshot] = (await client.recv_push(wire, channel))["data"]
        assert snapshot["depthType"] == "SNAPSHOT"
        assert snapshot["level"] == levels
        assert isinstance(snapshot["startVersion"], version)
        assert isinstance(snapshot["endVersion"], version)
        assert len(snapshot["asks"]) == len(snapshot["bids"]) == levels
        asks = [Decimal(lv["price"]) for lv in snapshot["asks"]]
        bids = [Decimal(lv["price"]) for lv in snapshot["bids"]]
        assert asks == sorted(asks)
        assert bids == sorted(bids, reverse=True)
        assert bids[0] < asks[0]
        book = book_of(snapshot)
        previous_end = int(snapshot["endVersion"])
        saw_removal = False
        for _ in range(12):
            [frame] = (await client.recv_push(wire, channel))["data"]
            assert frame["depthType"] == "CHANGED"
            assert int(frame["startVersion"]) == previous_end + 1
            assert int(frame["endVersion"]) >= int(frame["startVersion"])
            previous_end = int(frame["endVersion"])
            saw_removal |= any(lv["size"] == "0" for lv in frame["asks"] + frame["bids"])
            apply_depth(book, frame, levels)
            assert max(book["bids"]) < min(book["asks"])
        assert saw_removal
        # Freeze the market: a fresh snapshot must equal the book we kept from the diffs.
        server.pause_market()
        await anyio.sleep(0.1)
        while True:  # drain any step that was already queued
            with anyio.move_on_after(0.1) as idle:
                [frame] = (await client.recv_push(wire, channel))["data"]
                apply_depth(book, frame, levels)
                previous_end = int(frame["endVersion"])
            if idle.cancelled_caught:
                break
        await client.send(wire.request(channel))
        [fresh] = (await client.recv_push(wire, channel))["data"]
        assert fresh["depthType"] == "SNAPSHOT"
        assert int(fresh["endVersion"]) == previous_end
        assert book_of(fresh) == book


@pytest.mark.anyio
async def test_two_depth_channels_of_one_symbol_stay_in_step(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await subscribe(ws, "depth.cmt_ethusdt.15", wire)
        await subscribe(ws, "depth.cmt_ethusdt.200", wire)
        # Frames that precede the second ack were skipped by subscribe(), so from here on
        # every step reaches both channels.
        seen: dict[str, list[int]] = {"depth.cmt_ethusdt.15": [], "depth.cmt_ethusdt.200": []}
        while min(len(v) for v in seen.values()) < 4:
            raw = await recv_until(ws, lambda m: (wire.push(m) or {}).get("channel") in seen)
            message = wire.push(raw)
            assert message is not None
            [frame] = message["data"]
            if frame["depthType"] == "CHANGED":
                seen[message["channel"]].append(int(frame["endVersion"]))
        assert seen["depth.cmt_ethusdt.15"][:3] == seen["depth.cmt_ethusdt.200"][:3]


BAD_CHANNELS = {
    "v2": [
        "ticker.cmt_dogeusdt",
        "ticker.BTCUSDT",
        "depth.cmt_btcusdt.50",
        "kline.INDEX.cmt_btcusdt.MINUTE_1",
        "kline.LAST_PRICE.cmt_btcusdt.MINUTE_2",
        "tickers",
        "account",  # private channel on the public endpoint
    ],
    "v3": [
        "DOGEUSDT@ticker",
        "cmt_btcusdt@ticker",
        "BTCUSDT@depth50",
        "BTCUSDT@kline_1m_INDEX",
        "BTCUSDT@kline_2m_LAST_PRICE",
        "ticker.cmt_btcusdt",  # a v2 name
        "account",  # private channel on the public endpoint
    ],
}
"""Names each dialect's public endpoint refuses, the same mistakes in each one's spelling."""
MALFORMED: dict[str, list[tuple[Json, str]]] = {
    "v2": [({"event": "subscribe"}, "40019"), ({"event": "dance", "channel": "x"}, "40020")],
    "v3": [
        ({"method": "SUBSCRIBE", "id": 1}, "request"),
        ({"method": "DANCE", "id": 2}, "request"),
    ],
}
"""Requests that name no channel, or ask for no known operation, and the code or name refused."""


@pytest.mark.anyio
async def test_channel_validation_errors(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        for name in BAD_CHANNELS[wire.api]:
            sent = wire.request_named(name)
            await ws.send(json.dumps(sent))
            assert await recv_json(ws) == wire.refusal(sent, "40020")
        for sent, refused in MALFORMED[wire.api]:
            await ws.send(json.dumps(sent))
            error = await recv_json(ws)
            if wire.api == "v2":
                assert (error["event"], error["code"]) == ("error", refused)
            else:
                assert error == wire.refusal({**sent, "params": [refused]}, "40020")
        assert server.connections[0].subscriptions == frozenset()


@pytest.mark.anyio
async def test_invalid_json_gets_an_error_and_the_connection_stays_up(wire: Wire) -> None:
    # No v3 source shows an answer to what is not a request: v3 gets v2's error event too.
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        for garbage in ("{not json", "ping", "[1, 2]", '"text"'):
            await ws.send(garbage)
            error = await recv_json(ws)
            assert error["event"] == "error"
            assert isinstance(error["code"], str)
        await ws.send(b"\x00\x01binary")
        error = await recv_json(ws)
        assert error["event"] == "error"
        sent, answer = await request(ws, wire, "ticker.cmt_solusdt")
        assert answer == wire.answer(sent)
        assert server.connections[0].messages_received == 6
        assert [1, 2] in server.received
        assert sent in server.received


# -- limits -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_channel_limit_per_connection(wire: Wire) -> None:
    server = fast_server(wire, max_channels=3)
    async with server, ws_connect(server.public_url) as ws:
        for symbol in ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt"):
            await subscribe(ws, f"ticker.{symbol}", wire)
        await subscribe(ws, "ticker.cmt_btcusdt", wire)  # already subscribed: no new channel
        sent, error = await request(ws, wire, "trades.cmt_btcusdt")
        assert error == wire.refusal(sent, "429")
        assert len(server.connections[0].subscriptions) == 3


@pytest.mark.anyio
async def test_operation_limit_per_connection(wire: Wire) -> None:
    async with fast_server(wire, max_operations_per_hour=4) as server:
        async with ws_connect(server.public_url) as ws:
            await subscribe(ws, "ticker.cmt_btcusdt", wire)
            sent, ack = await request(ws, wire, "ticker.cmt_btcusdt", "unsubscribe")
            assert ack == wire.answer(sent)
            await subscribe(ws, "ticker.cmt_btcusdt", wire)
            sent, error = await request(ws, wire, "nonsense")  # counts as an operation
            assert error == wire.refusal(sent, "40020")
            sent, error = await request(ws, wire, "trades.cmt_btcusdt")
            assert error == wire.refusal(sent, "429")
        async with ws_connect(server.public_url) as ws:  # the budget is per connection
            await subscribe(ws, "trades.cmt_btcusdt", wire)


@pytest.mark.anyio
async def test_oversized_message_closes_with_1009_and_server_survives(wire: Wire) -> None:
    async with fast_server(wire, max_message_size=1000) as server:
        async with ws_connect(server.public_url) as ws:
            await ws.send("x" * 5000)
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(ws)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1009
        async with ws_connect(server.public_url) as ws:
            await subscribe(ws, "ticker.cmt_btcusdt", wire)


# -- handshake --------------------------------------------------------------------------------


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_handshake_needs_user_agent_and_a_known_path(wire: Wire) -> None:
    v = wire.api
    async with fast_server(wire) as server:
        with pytest.raises(Rejected) as info:
            async with raw_client(server, user_agent=None):
                pass
        assert info.value.status == 403
        with pytest.raises(Rejected) as info:
            async with raw_client(server, user_agent=""):
                pass
        assert info.value.status == 403
        for path in (f"/{v}/ws", f"/{v}/ws/public/", "/v4/ws/public", "/"):
            with pytest.raises(Rejected) as info:
                async with raw_client(server, path=path):
                    pass
            assert info.value.status == 404
        async with raw_client(server, path=f"/{v}/ws/public?x=1") as client:
            sent = wire.request("ticker.cmt_btcusdt")
            await client.send(sent)
            assert await client.recv() == wire.answer(sent)
        assert server.stats.rejected == 6
        assert server.stats.accepted == 1


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_user_agent_can_be_optional(wire: Wire) -> None:
    server = fast_server(wire, require_user_agent=False)
    async with server, raw_client(server, user_agent=None):
        [info] = await server.wait_for_connections(1)
        assert info.user_agent == ""
        assert info.path == wire.path()


@pytest.mark.anyio
async def test_private_auth_success_and_connection_snapshot(wire: Wire) -> None:
    async with fast_server(wire) as server:
        headers = private_headers(server)
        async with ws_connect(server.private_url, additional_headers=headers) as ws:
            await subscribe(ws, "orders", wire)
            [info] = server.connections
            assert info.path == wire.path(private=True)
            assert info.private is True
            assert info.user_agent == "weex-ws-tests/1.0"
            assert info.subscriptions == frozenset({"orders"})
            for channel in ("ticker.cmt_btcusdt", "position", "trade"):
                sent = wire.request(channel)
                await ws.send(json.dumps(sent))
                assert await recv_json(ws) == wire.refusal(sent, "40020")


def expected_rejections() -> list[tuple[dict[str, str | None], int, str]]:
    """Header overrides (signed over their timestamp unless they name a signature), and the
    HTTP status and WEEX code each is refused with."""
    old = str(int(time.time() * 1000) - 60_000)
    return [
        ({"ACCESS-KEY": None}, 400, "40001"),
        ({"ACCESS-SIGN": None}, 400, "40002"),
        ({"ACCESS-TIMESTAMP": None}, 400, "40003"),
        ({"ACCESS-PASSPHRASE": None}, 400, "40011"),
        ({"ACCESS-TIMESTAMP": "yesterday"}, 401, "40005"),
        ({"ACCESS-TIMESTAMP": old}, 401, "40008"),
        ({"ACCESS-KEY": "someone-else"}, 401, "40006"),
        ({"ACCESS-PASSPHRASE": "wrong"}, 401, "40012"),
        ({"ACCESS-SIGN": "bm90IGEgc2lnbmF0dXJl"}, 401, "40009"),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(("override", "status", "code"), expected_rejections())
async def test_private_auth_rejections(
    override: dict[str, str | None], status: int, code: str, wire: Wire
) -> None:
    async with fast_server(wire) as server:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(
                server.private_url, additional_headers=private_headers(server, **override)
            ):
                pass
        response = info.value.response
        assert response.status_code == status
        body = json.loads(response.body)
        assert body["code"] == code
        assert isinstance(body["msg"], str)
        assert body["data"] is None
        assert abs(body["requestTime"] / 1000 - time.time()) < 60
        assert server.connections == ()
        assert server.stats.rejected == 1


@pytest.mark.anyio
async def test_signature_with_http_method_is_rejected(wire: Wire) -> None:
    """weex-client 0.2.3 signs timestamp + "GET" + path; the documented rule has no method."""
    async with fast_server(wire) as server:
        stamp = str(int(time.time() * 1000))
        wrong = weex_sign(server.credentials.secret_key, stamp, "GET" + wire.path(private=True))
        headers = private_headers(server, **{"ACCESS-TIMESTAMP": stamp, "ACCESS-SIGN": wrong})
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(server.private_url, additional_headers=headers):
                pass
        assert info.value.response.status_code == 401
        assert json.loads(info.value.response.body)["msg"] == "API verification failed"


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_private_auth_over_raw_client(wire: Wire) -> None:
    async with fast_server(wire) as server:
        path = wire.path(private=True)
        async with raw_client(server, path, private_headers(server)) as client:
            sent = wire.request("fill")
            await client.send(sent)
            assert await client.recv() == wire.answer(sent)
        bad = private_headers(server, **{"ACCESS-PASSPHRASE": "nope"})
        with pytest.raises(Rejected) as info:
            async with raw_client(server, path, bad):
                pass
        assert info.value.status == 401
        assert json.loads(info.value.body)["code"] == "40012"


def test_credentials_are_not_in_repr() -> None:
    server = SimulatedWeexServer(api_key="AK-visible?", secret_key="SK-secret", passphrase="PP-x")
    for text in (repr(server), repr(server.credentials), str(server.credentials)):
        assert "SK-secret" not in text
        assert "PP-x" not in text
        assert "AK-visible?" not in text


def test_non_loopback_hosts_are_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatedWeexServer(host="0.0.0.0")  # noqa: S104 - the point of the test


# -- private channels -------------------------------------------------------------------------


async def recv_private(ws: ClientConnection, wire: Wire) -> Json:
    """The next message, a private push, as the v2 frame it carries (v3's checked for the
    keys of v3's private frames and `E`, `v` as numbers)."""
    raw = await recv_json(ws)
    if wire.api == "v3":
        assert list(raw) == ["e", "E", "v", "msgEvent", "d"]
        assert isinstance(raw["E"], int) and isinstance(raw["v"], int)
    push = wire.push(raw)
    assert push is not None, raw
    return push


@pytest.mark.anyio
async def test_simulated_trade_pushes_orders_fill_positions_account(wire: Wire) -> None:
    async with fast_server(wire) as server:
        async with ws_connect(server.private_url, additional_headers=private_headers(server)) as ws:
            for channel in ("orders", "fill", "positions", "account"):
                await subscribe(ws, channel, wire)
            trade = await server.simulate_trade("cmt_ethusdt", "SELL", "0.5")
            pushes = [await recv_private(ws, wire) for _ in range(5)]
        assert [p["channel"] for p in pushes] == [
            "orders",
            "fill",
            "orders",
            "positions",
            "account",
        ]
        versions = [p["msg"]["version"] for p in pushes]
        assert versions == sorted(versions)
        assert len(set(versions)) == 5
        assert tuple(versions) == trade.versions
        for push in pushes:
            if wire.api == "v2":  # (v3's keys are checked in recv_private)
                assert list(push) == ["type", "channel", "event", "msg"]
                assert list(push["msg"]) == ["msgEvent", "version", "data", "time"]
            assert (push["type"], push["event"]) == ("trade-event", "payload")
            assert push["msg"].keys() == {"msgEvent", "version", "data", "time"}
            assert isinstance(push["msg"]["time"], int)
        pending = pushes[0]["msg"]["data"]["order"][0]
        assert pending["status"] == "PENDING"
        assert (pending["orderSide"], pending["contractId"]) == ("SELL", "cmt_ethusdt")
        assert pending["id"] == trade.order_id
        assert isinstance(pending["reduceOnly"], bool)
        fill = pushes[1]["msg"]["data"]["orderFillTransaction"][0]
        assert fill["orderId"] == trade.order_id
        assert Decimal(fill["fillSize"]) == Decimal("0.5")
        price = Decimal(trade.price)
        assert Decimal(fill["fillValue"]) == Decimal("0.5") * price
        assert Decimal(fill["fillFee"]) == (Decimal("0.5") * price * Decimal("0.0006")).quantize(
            Decimal("0.000001")
        )
        assert fill["direction"] in ("MAKER", "TAKER")
        filled = pushes[2]["msg"]["data"]["order"][0]
        assert (filled["id"], filled["cumFillSize"]) == (trade.order_id, fill["fillSize"])
        position = pushes[3]["msg"]["data"]["position"][0]
        assert (position["contractId"], position["side"]) == ("cmt_ethusdt", "SHORT")
        assert Decimal(position["size"]) == Decimal("0.5")
        assert isinstance(position["autoAppendIsolatedMargin"], bool)
        collateral = pushes[4]["msg"]["data"]["collateral"][0]
        assert collateral["coinId"] == "USDT"
        assert isinstance(collateral["liquidating"], bool)


@pytest.mark.anyio
async def test_closing_trade_realises_pnl_and_flattens_the_position(wire: Wire) -> None:
    async with fast_server(wire) as server:
        async with ws_connect(server.private_url, additional_headers=private_headers(server)) as ws:
            await subscribe(ws, "positions", wire)
            await subscribe(ws, "account", wire)
            first = await server.simulate_trade("cmt_btcusdt", "BUY", "0.02")
            await recv_private(ws, wire)
            account = await recv_private(ws, wire)
            before = Decimal(account["msg"]["data"]["collateral"][0]["amount"])
            await anyio.sleep(0.1)  # let the price move
            second = await server.simulate_trade("cmt_btcusdt", "SELL", "0.02")
            position = (await recv_private(ws, wire))["msg"]["data"]["position"][0]
            account = await recv_private(ws, wire)
            after = Decimal(account["msg"]["data"]["collateral"][0]["amount"])
        assert Decimal(position["size"]) == 0
        expected_pnl = (Decimal(second.price) - Decimal(first.price)) * Decimal("0.02")
        assert Decimal(second.realized_pnl) == expected_pnl.quantize(Decimal("0.000001"))
        assert after - before == Decimal(second.realized_pnl) - Decimal(second.fill_fee)


@pytest.mark.anyio
async def test_background_trading_pushes_fills(wire: Wire) -> None:
    async with fast_server(wire, trade_interval=0.02) as server:
        async with ws_connect(server.private_url, additional_headers=private_headers(server)) as ws:
            await subscribe(ws, "fill", wire)
            a = await recv_push(ws, wire, "fill")
            b = await recv_push(ws, wire, "fill")
        assert b["msg"]["version"] > a["msg"]["version"]


@pytest.mark.anyio
async def test_simulate_trade_validates_its_arguments() -> None:
    async with fast_server() as server:
        with pytest.raises(ValueError, match="symbol"):
            await server.simulate_trade("cmt_dogeusdt")
        with pytest.raises(ValueError, match="side"):
            await server.simulate_trade(side="LONG")
        for size in ("0", "-1", "abc", "0.000001"):
            with pytest.raises(ValueError, match="size"):
                await server.simulate_trade(size=size)


# -- heartbeat --------------------------------------------------------------------------------


@BOTH_BACKENDS
@pytest.mark.anyio
@pytest.mark.parametrize("private", [False, True])
async def test_answered_pings_keep_the_connection(private: bool, wire: Wire) -> None:
    async with fast_server(wire, ping_interval=0.03, private_ping_key="type") as server:
        headers = private_headers(server) if private else None
        key = "type" if private else "event"  # on v3 always so (docs/protocol-v3.md §3)
        async with raw_client(server, wire.path(private), headers) as client:
            for _ in range(10):  # well past 5 missed intervals
                ping = await client.recv_until(lambda m: wire.is_ping(m, key))
                assert list(ping) == [key, "time"]
                assert isinstance(ping["time"], str)
                assert abs(int(ping["time"]) / 1000 - time.time()) < 60
                pong = wire.pong(ping, key)
                await client.send(pong)
                if wire.api == "v3" and not private:  # only v3's public socket answers PONGs
                    assert await client.recv_until(lambda m: "id" in m) == wire.answer(pong)
            [info] = server.connections
            assert info.pings_sent >= 10
            assert info.pongs_received >= 9
            await server.wait_until(lambda: server.connections[0].pongs_received == 10)
            assert server.connections[0].outstanding_pings <= 1


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_unanswered_pings_close_the_connection(wire: Wire) -> None:
    async with fast_server(wire, ping_interval=0.03, max_missed_pongs=3) as server:
        async with raw_client(server) as client:
            code, messages = await read_until_closed(client)
            assert code == 1000
            pings = [m for m in messages if m.get("event") == "ping"]
            assert len(pings) == 4  # "more than max_missed_pongs" unanswered, then the close
        await server.wait_for_connections(0, exact=True)


@pytest.mark.anyio
async def test_pong_with_unknown_time_does_not_count() -> None:
    # v2 only: a v3 PONG names no ping (it carries no time), so it cannot name a wrong one.
    async with fast_server(ping_interval=0.03, max_missed_pongs=2) as server:
        async with ws_connect(server.public_url) as ws:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    message = await recv_json(ws)
                    if message.get("event") == "ping":
                        await ws.send(json.dumps({"event": "pong", "time": "12345"}))
            assert ws.close_code == 1000
        # Pongs did arrive (at least one per allowed miss), yet the connection was closed.
        assert server.received.count({"event": "pong", "time": "12345"}) >= 2


@pytest.mark.anyio
async def test_protocol_ping_frames_are_answered(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        waiter = await ws.ping(b"are you there")
        with anyio.fail_after(3):
            await waiter


# -- fault injection --------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("reset", [False, True])
async def test_drop_connections_closes_without_a_close_frame(reset: bool, wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await server.wait_for_connections(1)
        assert await server.drop_connections(reset=reset) == 1
        with pytest.raises(ConnectionClosed) as info:
            await recv_json(ws)
        assert info.value.rcvd is None
        assert server.connections == ()


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_drop_connections_seen_by_raw_client(wire: Wire) -> None:
    async with fast_server(wire) as server, raw_client(server) as client:
        await server.wait_for_connections(1)
        await server.drop_connections()
        with pytest.raises(ServerClosed) as info:
            await client.recv()
        assert info.value.code == 1006  # wsproto: TCP gone without a close frame


@pytest.mark.anyio
async def test_close_connections_sends_a_close_frame(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await server.wait_for_connections(1)
        assert await server.close_connections(4001, "maintenance") == 1
        with pytest.raises(ConnectionClosed) as info:
            await recv_json(ws)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "maintenance")
        assert info.value.rcvd_then_sent  # the server spoke first, the client answered


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_stall_stops_pings_and_pushes_until_resume(wire: Wire) -> None:
    async with fast_server(wire, ping_interval=0.03) as server, raw_client(server) as client:
        await client.send(wire.request("ticker.cmt_btcusdt"))
        await client.recv_push(wire, "ticker.cmt_btcusdt")
        server.stall()
        await anyio.sleep(0.05)  # let anything already on its way arrive
        with anyio.move_on_after(0.05):
            while True:
                await client.recv()
        with anyio.move_on_after(0.25) as quiet:
            message = await client.recv()
            pytest.fail(f"received {message} while stalled")
        assert quiet.cancelled_caught
        sent = wire.request("trades.cmt_btcusdt")
        await client.send(sent)
        server.resume()
        assert await client.recv_until(wire.answers(sent)) == wire.answer(sent)
        await client.recv_until(wire.is_ping)


@pytest.mark.anyio
async def test_timed_stall_ends_by_itself(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await server.wait_for_connections(1)
        server.stall(0.2)
        started = anyio.current_time()
        await subscribe(ws, "ticker.cmt_btcusdt", wire)
        assert anyio.current_time() - started >= 0.15


@pytest.mark.anyio
async def test_stall_freezes_new_handshakes(wire: Wire) -> None:
    async with fast_server(wire) as server:
        server.stall()
        with pytest.raises(TimeoutError):
            async with connect(server.public_url, proxy=None, open_timeout=0.2):
                pass
        server.resume()
        async with ws_connect(server.public_url) as ws:
            await subscribe(ws, "ticker.cmt_btcusdt", wire)


@pytest.mark.anyio
async def test_set_delay_holds_back_every_message(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await server.wait_for_connections(1)
        server.set_delay(0.3)
        sent = wire.request("ticker.cmt_btcusdt")
        await ws.send(json.dumps(sent))
        with anyio.move_on_after(0.15):
            message = await recv_json(ws)
            pytest.fail(f"{message} arrived before the delay")
        assert await recv_json(ws) == wire.answer(sent)
        server.set_delay(0)
        await recv_push(ws, wire, "ticker.cmt_btcusdt")


@pytest.mark.anyio
async def test_send_raw_text_and_binary(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await server.wait_for_connections(1)
        await server.send_raw("{oops")
        assert await ws.recv() == "{oops"
        await server.send_raw(b"\x01\x02", binary=True)
        assert await ws.recv() == b"\x01\x02"
        await server.send_raw("text as bytes", binary=True)
        assert await ws.recv() == b"text as bytes"
        await server.send_raw(b"\xff\xfe not utf-8")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.sent is not None
        assert info.value.sent.code == 1007  # the client refuses invalid UTF-8 in a text frame


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_send_raw_bytes_goes_below_websocket_framing(wire: Wire) -> None:
    async with fast_server(wire) as server, raw_client(server) as client:
        await server.wait_for_connections(1)
        frame = b"\x81\x05hello"  # a hand-made unmasked text frame
        await server.send_raw_bytes(frame)
        event = await client.next_event()
        assert isinstance(event, TextMessage)
        assert event.data == "hello"
        await server.send_raw_bytes(b"\x8f\x00")  # reserved opcode: a broken stream
        event = await client.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1002


@pytest.mark.anyio
async def test_send_error(wire: Wire) -> None:
    # The fault is v2's error event on either dialect: a client must survive it on v3 too.
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await server.wait_for_connections(1)
        await server.send_error(40015, "System error")
        assert await recv_json(ws) == {"event": "error", "code": "40015", "msg": "System error"}
        await server.send_error("429", "Too many requests", channel="ticker.cmt_btcusdt")
        error = await recv_json(ws)
        assert error["channel"] == "ticker.cmt_btcusdt"


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_inject_depth_gap_skips_versions_once(wire: Wire) -> None:
    channel = "depth.cmt_solusdt.15"
    async with fast_server(wire) as server, raw_client(server) as client:
        await client.send(wire.request(channel))
        [snapshot] = (await client.recv_push(wire, channel))["data"]
        end = int(snapshot["endVersion"])
        [frame] = (await client.recv_push(wire, channel))["data"]
        assert int(frame["startVersion"]) == end + 1
        server.inject_depth_gap("cmt_solusdt", skipped=7)
        end = int(frame["endVersion"])
        gaps = []
        for _ in range(4):
            [frame] = (await client.recv_push(wire, channel))["data"]
            gaps.append(int(frame["startVersion"]) - end - 1)
            end = int(frame["endVersion"])
        assert sorted(gaps) == [0, 0, 0, 7]
        with pytest.raises(ValueError, match="symbol"):
            server.inject_depth_gap("cmt_nope")


@pytest.mark.anyio
async def test_reject_handshakes_then_accept(wire: Wire) -> None:
    async with fast_server(wire) as server:
        server.reject_handshakes(2, status=503)
        for _ in range(2):
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(server.public_url):
                    pass
            assert info.value.response.status_code == 503
        async with ws_connect(server.public_url) as ws:
            await subscribe(ws, "ticker.cmt_btcusdt", wire)
        assert (server.stats.rejected, server.stats.accepted) == (2, 1)


@pytest.mark.anyio
async def test_pause_and_resume_market(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await subscribe(ws, "ticker.cmt_btcusdt", wire)
        await recv_push(ws, wire, "ticker.cmt_btcusdt")
        server.pause_market()
        await anyio.sleep(0.05)
        with anyio.move_on_after(0.05):
            while True:
                await recv_json(ws)
        with anyio.move_on_after(0.2):
            message = await recv_json(ws)
            pytest.fail(f"{message} pushed while the market was paused")
        await subscribe(ws, "depth.cmt_btcusdt.15", wire)  # snapshots still answer subscribes
        snapshot = wire.push(await recv_json(ws))
        assert snapshot is not None and snapshot["data"][0]["depthType"] == "SNAPSHOT"
        server.resume_market()
        await recv_push(ws, wire, "ticker.cmt_btcusdt")


# -- robustness and lifecycle -----------------------------------------------------------------


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_garbage_from_clients_never_hurts_the_server(wire: Wire) -> None:
    async def reply_to(request: bytes) -> bytes:
        reply = b""
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            await stream.send(request)
            with anyio.fail_after(2):
                try:
                    while True:
                        reply += await stream.receive()
                except anyio.EndOfStream:
                    return reply

    async with fast_server(wire) as server:
        assert (await reply_to(b"\x00\xffnot http at all\r\n\r\n")).startswith(b"HTTP/1.1 4")
        path = wire.path().encode()
        plain_get = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n"
        assert (await reply_to(plain_get)).startswith(b"HTTP/1.1 4")  # not an upgrade
        async with raw_client(server) as client:
            await client.stream.send(b"\x81\x85garbage-after-the-handshake")
            code, _ = await read_until_closed(client)
            assert code == 1002  # masked-frame garbage is a protocol error
        async with await anyio.connect_tcp("127.0.0.1", server.port):
            pass  # connect and leave at once
        async with raw_client(server) as client:
            sent = wire.request("ticker.cmt_btcusdt")
            await client.send(sent)
            assert await client.recv() == wire.answer(sent)


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_client_close_handshake_is_answered(wire: Wire) -> None:
    async with fast_server(wire) as server, raw_client(server) as client:
        await server.wait_for_connections(1)
        await client.stream.send(client.ws.send(CloseConnection(1000, "bye")))
        event = await client.next_event()
        while isinstance(event, TextMessage | BytesMessage):
            event = await client.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1000
        await server.wait_for_connections(0, exact=True)


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_shutdown_closes_clients_and_stops_listening(wire: Wire) -> None:
    close_codes: list[int] = []

    async def watch(client: RawClient) -> None:
        try:
            while True:
                await client.recv(within=5)
        except ServerClosed as closed:
            close_codes.append(closed.code)
            await client.stream.send(client.ws.send(CloseConnection(closed.code)))

    stream: anyio.abc.SocketStream | None = None
    try:
        async with (
            anyio.create_task_group() as tg,
            fast_server(wire, ping_interval=0.05, trade_interval=0.02) as server,
        ):
            port = server.port
            stream = await anyio.connect_tcp("127.0.0.1", port)
            client = RawClient(stream)
            await client.handshake(wire.path(), [(b"user-agent", b"shutdown-test")])
            await client.send(wire.request("depth.cmt_btcusdt.200"))
            await client.recv_push(wire, "depth.cmt_btcusdt.200")
            await server.wait_for_subscription("depth.cmt_btcusdt.200")
            tg.start_soon(watch, client)
    finally:
        if stream is not None:
            await stream.aclose()
    assert close_codes == [1001]
    with pytest.raises(OSError, match="connection attempts failed"):
        await anyio.connect_tcp("127.0.0.1", port)


@pytest.mark.anyio
async def test_wait_helpers_time_out() -> None:
    async with fast_server() as server:
        with pytest.raises(TimeoutError):
            await server.wait_for_connections(1, timeout=0.05)
        with pytest.raises(TimeoutError):
            await server.wait_for_subscription("ticker.cmt_btcusdt", timeout=0.05)


@pytest.mark.anyio
async def test_stats_count_traffic(wire: Wire) -> None:
    async with fast_server(wire) as server, ws_connect(server.public_url) as ws:
        await subscribe(ws, "ticker.cmt_btcusdt", wire)
        await recv_push(ws, wire, "ticker.cmt_btcusdt")
        stats = server.stats
        assert stats.accepted == 1
        assert stats.subscribe_ops == 1
        assert stats.messages_sent >= 2
        assert stats.bytes_sent > 100


@BOTH_BACKENDS
@pytest.mark.anyio
async def test_run_simulator_entry_point(wire: Wire) -> None:
    async with anyio.create_task_group() as tg:
        server: SimulatedWeexServer = await tg.start(
            functools.partial(run_simulator, "127.0.0.1", 0, api=wire.api)
        )
        assert server.public_url.endswith(wire.path())
        async with raw_client(server) as client:
            sent = wire.request("ticker.cmt_ethusdt")
            await client.send(sent)
            assert await client.recv() == wire.answer(sent)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_same_seed_same_market(wire: Wire) -> None:
    async def first_snapshot(seed: int) -> Json:
        async with fast_server(wire, seed=seed, tick_interval=60) as server:
            server.pause_market()  # no step may run before the snapshot
            async with ws_connect(server.public_url) as ws:
                await subscribe(ws, "depth.cmt_btcusdt.15", wire)
                push = wire.push(await recv_json(ws))
                assert push is not None
                frame: Json = push["data"][0]  # (v3's event time `E` is in the frame, not here)
                return frame

    assert await first_snapshot(7) == await first_snapshot(7)
    assert await first_snapshot(7) != await first_snapshot(8)


# -- the market model on its own --------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 30), levels=st.sampled_from([15, 200]))
def test_market_diffs_rebuild_the_next_snapshot(seed: int, steps: int, levels: int) -> None:
    market = Market(["cmt_btcusdt", "cmt_xyzusdt"], random.Random(seed), 1_747_000_000.0)
    for symbol in ("cmt_btcusdt", "cmt_xyzusdt"):
        channel = PublicChannel(f"depth.{symbol}.{levels}", "depth", symbol, levels=levels)
        [first] = market.initial_messages(channel)
        book = book_of(first["data"][0])
        end = int(first["data"][0]["endVersion"])
        for _ in range(steps):
            market.step(1_747_000_000.0)
            update = market.update_message(channel)
            assert update is not None
            [frame] = update["data"]
            assert int(frame["startVersion"]) == end + 1
            end = int(frame["endVersion"])
            apply_depth(book, frame, levels)
        [fresh] = market.initial_messages(channel)
        assert book_of(fresh["data"][0]) == book
        assert int(fresh["data"][0]["endVersion"]) == end
        assert max(book["bids"]) < min(book["asks"])
