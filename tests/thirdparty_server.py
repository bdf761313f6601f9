"""A WEEX-like server built on the third-party `websockets` library, scriptable per test.

Our own simulator (`weex_anyio.testing`) and the client share authors and could share their
mistakes. Here the HTTP upgrade, the framing, RFC 6455 pings and close handshakes all come
from `websockets`; only the WEEX layer on top is ours, written from
/work/shared/weex-protocol.md (§1.2 User-Agent, §1.3 signed handshake, §2 application pings,
§3 subscribe/ack/payload, §3.4 the assumed error frame) without importing `weex_proto`.
With `api="v3"` it serves `/v3/` paths and speaks v3's requests (docs/protocol-v3.md §1-3):
a `connected` greeting, `SUBSCRIBE`/`UNSUBSCRIBE`/`PONG` answered by id; channel names and
pushes are then v3's, as the test writes them (the server translates nothing).

    async with ThirdPartyWeexServer(secret_key="s") as server:
        server.on_subscribe["ticker.cmt_btcusdt"] = [ticker_push("cmt_btcusdt", "1")]
        ...point the client at server.public_url / server.private_url...
        await server.peers[0].drop()

asyncio only: `websockets.asyncio` runs on the asyncio event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import anyio
import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

PUBLIC_PATH = "/v2/ws/public"
PRIVATE_PATH = "/v2/ws/private"
TIMESTAMP_WINDOW_MS = 30_000  # doc §1.3: "expires after 30 seconds"

# Our own logger: `websockets` logs request headers at DEBUG, and the secret-leak test must be
# able to tell the server's log lines (which may hold credentials) from the client's.
server_log = logging.getLogger("tests.thirdparty_server")

Frame = Mapping[str, Any]


def paths(api: str) -> tuple[str, str]:
    """The public and private paths of WEEX's `api` ("v2" or "v3")."""
    return f"/{api}/ws/public", f"/{api}/ws/private"


def expected_signature(secret_key: str, timestamp: str, path: str = PRIVATE_PATH) -> str:
    """base64(HMAC-SHA256(secret, timestamp + requestPath)), doc §1.3, computed here by hand."""
    digest = hmac.new(secret_key.encode(), (timestamp + path).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# --- pushes shaped like the doc (§4.1.1, §4.2.3) ---------------------------------------


def ticker_push(symbol: str, last_price: str) -> dict[str, Any]:
    return {
        "event": "payload",
        "channel": f"ticker.{symbol}",
        "data": [
            {
                "symbol": symbol,
                "priceChange": "-2055.6",
                "priceChangePercent": "-0.019637",
                "trades": "28941",
                "size": "176145.66489",
                "value": "18115688543.1",
                "high": "104692.2",
                "low": "100709.6",
                "lastPrice": last_price,
                "markPrice": last_price,
            }
        ],
    }


def order_push(order_id: str, version: int) -> dict[str, Any]:
    return {
        "type": "trade-event",
        "channel": "orders",
        "event": "payload",
        "msg": {
            "msgEvent": "OrderUpdate",
            "version": version,
            "data": {
                "order": [
                    {
                        "id": order_id,
                        "coinId": "USDT",
                        "contractId": "cmt_btcusdt",
                        "positionSide": "LONG",
                        "orderSide": "BUY",
                        "price": "0.0",
                        "size": "0.10000",
                        "type": "MARKET",
                        "timeInForce": "IMMEDIATE_OR_CANCEL",
                        "reduceOnly": False,
                        "status": "PENDING",
                        "cumFillSize": "0",
                        "createdTime": "1747203188148",
                        "updatedTime": "1747203188148",
                    }
                ]
            },
            "time": 1747203188148,
        },
    }


# --- what the server saw --------------------------------------------------------------------


@attrs.define
class Handshake:
    """One upgrade request and how it was answered (101 when accepted)."""

    path: str
    headers: dict[str, str]  # lower-cased names
    status: int


@attrs.define(eq=False)
class Peer:
    """One accepted WebSocket connection, with everything the client sent on it."""

    connection: ServerConnection
    path: str
    headers: dict[str, str]
    received: list[Any] = attrs.field(factory=list)
    """Decoded JSON frames in arrival order; undecodable text and binary frames as they came."""
    subscriptions: set[str] = attrs.field(factory=set)
    stalled: bool = False
    closed: bool = False
    last_sent_at: float | None = None
    """Event-loop time of the last frame this server sent on the connection."""

    @property
    def private(self) -> bool:
        return self.path.endswith("/private")

    def frames(self, event: str) -> list[dict[str, Any]]:
        """Received JSON objects whose `event` is `event` (v3: whose `method` is it, upper case)."""
        return [
            f
            for f in self.received
            if isinstance(f, dict) and (f.get("event") == event or f.get("method") == event.upper())
        ]

    def channels(self, event: str) -> list[str]:
        """The names of the `event` ("subscribe"...) requests, in order (v3: each of `params`)."""
        names: list[str] = []
        for frame in self.frames(event):
            names.extend(frame["params"] if "method" in frame else [frame["channel"]])
        return names

    async def send(self, frame: Frame | str | bytes) -> None:
        """Send a JSON object, raw text or a binary frame; a closed connection is ignored."""
        data = frame if isinstance(frame, str | bytes) else json.dumps(frame)
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(data)
            self.last_sent_at = asyncio.get_running_loop().time()

    async def ping(self, time_ms: str, *, key: str = "event") -> None:
        """WEEX's application ping (doc §2.1; `type` is the variant of §2.2)."""
        await self.send({key: "ping", "time": time_ms})

    def drop(self) -> None:
        """Cut the TCP connection: no close frame, no FIN handshake."""
        self.connection.transport.abort()

    async def close(self, code: int, reason: str = "") -> None:
        """A clean WebSocket close with `code`."""
        await self.connection.close(code, reason)

    def stall(self) -> None:
        """Go silent: stop reading (so RFC 6455 pings get no pong) and stop pushing."""
        self.stalled = True
        self.connection.transport.pause_reading()


# --- the server -------------------------------------------------------------------------------


class ThirdPartyWeexServer:
    """Loopback WEEX v2 (or v3) look-alike. Attributes below are the per-test script."""

    def __init__(
        self, *, api_key: str = "", secret_key: str = "", passphrase: str = "", api: str = "v2"
    ) -> None:
        self.api = api
        self.public_path, self.private_path = paths(api)
        self.api_key = api_key
        self.secret_key = secret_key
        self.passphrase = passphrase
        self.handshakes: list[Handshake] = []
        self.peers: list[Peer] = []
        self.refuse_status: int | None = None
        """When set, every new upgrade is answered with this HTTP status (e.g. 503)."""
        self.on_subscribe: dict[str, list[Frame | str | bytes]] = {}
        """Frames sent right after each `subscribed` ack for the channel."""
        self.subscribe_errors: dict[str, Frame] = {}
        """Channels whose subscribe is answered with this error frame instead of an ack."""
        self.unanswered: set[str] = set()
        """Channels whose subscribe gets no answer at all (the request is only recorded)."""
        self.max_frame_size = 1 << 20
        self._server: Server | None = None
        self.port = 0

    async def __aenter__(self) -> ThirdPartyWeexServer:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            compression=None,
            ping_interval=None,  # the WEEX heartbeat is the application ping, sent by tests
            close_timeout=1,
            max_size=self.max_frame_size,
            logger=server_log,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.server.close()
        for peer in self.peers:
            if not peer.closed:
                peer.drop()
        self._server.close(close_connections=False)
        with anyio.move_on_after(5):
            await self._server.wait_closed()

    @property
    def public_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.public_path}"

    @property
    def private_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.private_path}"

    def stop_listening(self) -> None:
        """Close the listening socket: new connections are refused at TCP level."""
        assert self._server is not None
        self._server.server.close()

    # ------------------------------------------------------------------ scripting helpers

    def open_peers(self, *, private: bool | None = None) -> list[Peer]:
        return [p for p in self.peers if not p.closed and (private is None or p.private == private)]

    async def push(self, channel: str, frame: Frame | str | bytes) -> int:
        """Send `frame` on every live connection subscribed to `channel`; returns how many."""
        targets = [p for p in self.open_peers() if channel in p.subscriptions and not p.stalled]
        for peer in targets:
            await peer.send(frame)
        return len(targets)

    async def wait_subscribed(self, channel: str, *, peers: int = 1) -> None:
        """Until `peers` connections (ever) have acknowledged `channel`."""
        await eventually(
            lambda: (
                sum(channel in p.channels("subscribe") for p in self.peers) >= peers
                and any(channel in p.subscriptions for p in self.open_peers())
            ),
        )

    # ------------------------------------------------------------------ HTTP side

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = {name.lower(): value for name, value in request.headers.raw_items()}
        path = request.path
        response = self._judge(connection, path, headers)
        status = 101 if response is None else response.status_code
        self.handshakes.append(Handshake(path, headers, status))
        return response

    def _judge(
        self, connection: ServerConnection, path: str, headers: Mapping[str, str]
    ) -> Response | None:
        if path not in (self.public_path, self.private_path):
            return connection.respond(404, "not found\n")
        if not headers.get("user-agent", "").strip():
            return connection.respond(403, "User-Agent required\n")  # doc §1.2 (presumed)
        if self.refuse_status is not None:
            return connection.respond(self.refuse_status, "service unavailable\n")
        if path == self.private_path:
            return self._check_signature(connection, headers)
        return None

    def _check_signature(
        self, connection: ServerConnection, headers: Mapping[str, str]
    ) -> Response | None:
        """Doc §1.3; failures as REST-style bodies (§5.3 codes) on HTTP 401 (undocumented)."""

        def refuse(code: str, message: str) -> Response:
            return connection.respond(401, json.dumps({"code": code, "msg": message}))

        for header, code in (
            ("access-key", "40001"),
            ("access-sign", "40002"),
            ("access-timestamp", "40003"),
            ("access-passphrase", "40011"),
        ):
            if not headers.get(header):
                return refuse(code, f'Header "{header.upper().replace("-", "_")}" is required')
        timestamp = headers["access-timestamp"]
        if not timestamp.isdigit():
            return refuse("40005", "Invalid ACCESS_TIMESTAMP")
        if abs(int(timestamp) - int(time.time() * 1000)) > TIMESTAMP_WINDOW_MS:
            return refuse("40008", "Request timestamp expired")
        if not (
            hmac.compare_digest(headers["access-key"], self.api_key)
            and hmac.compare_digest(headers["access-passphrase"], self.passphrase)
        ):
            return refuse("40012", "Incorrect API key/Passphrase")
        wanted = expected_signature(self.secret_key, timestamp, self.private_path)
        if not hmac.compare_digest(headers["access-sign"], wanted):
            return refuse("40009", "API verification failed")
        return None

    # ------------------------------------------------------------------ WebSocket side

    async def _handle(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        headers = {name.lower(): value for name, value in request.headers.raw_items()}
        peer = Peer(connection, request.path, headers)
        self.peers.append(peer)
        if self.api == "v3":
            await peer.send({"event": "connected", "timestamp": int(time.time() * 1000)})
        try:
            async for message in connection:
                if isinstance(message, bytes):
                    peer.received.append(message)
                    continue
                try:
                    frame = json.loads(message)
                except ValueError:
                    peer.received.append(message)
                    continue
                peer.received.append(frame)
                if isinstance(frame, dict):
                    await self._react(peer, frame)
        except ConnectionClosed:
            pass
        finally:
            peer.closed = True

    async def _react(self, peer: Peer, frame: dict[str, Any]) -> None:
        if self.api == "v3":
            await self._react_v3(peer, frame)
            return
        event, channel = frame.get("event"), frame.get("channel")
        if not isinstance(channel, str):
            return
        if event == "subscribe" and channel in self.unanswered:
            return
        if event == "subscribe":
            error = self.subscribe_errors.get(channel)
            if error is not None:
                await peer.send(error)
                return
            peer.subscriptions.add(channel)
            await peer.send({"event": "subscribed", "channel": channel})
            for scripted in self.on_subscribe.get(channel, ()):
                await peer.send(scripted)
        elif event == "unsubscribe":
            peer.subscriptions.discard(channel)
            await peer.send({"event": "unsubscribed", "channel": channel})

    async def _react_v3(self, peer: Peer, frame: dict[str, Any]) -> None:
        """v3 requests, answered by id: `{"id":N,"result":true}`, or for a name in
        `subscribe_errors` `{"result":false,"id":N,"msg":...}` with that frame's `msg`."""
        method, request_id, params = frame.get("method"), frame.get("id"), frame.get("params")
        if method == "PONG":
            if not peer.private:  # the private socket does not answer PONGs (Weex.Net)
                await peer.send({"id": request_id, "result": True})
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
            return
        names = [name for name in params if isinstance(name, str)]
        if method == "SUBSCRIBE" and self.unanswered.intersection(names):
            return
        refused = [self.subscribe_errors[n] for n in names if n in self.subscribe_errors]
        if method == "SUBSCRIBE" and refused:
            await peer.send({"result": False, "id": request_id, "msg": refused[0].get("msg")})
            return
        if method == "UNSUBSCRIBE":
            peer.subscriptions.difference_update(names)
            await peer.send({"id": request_id, "result": True})
            return
        peer.subscriptions.update(names)
        await peer.send({"id": request_id, "result": True})
        for name in names:
            for scripted in self.on_subscribe.get(name, ()):
                await peer.send(scripted)


async def eventually(condition: Callable[[], bool], *, limit: float = 5.0) -> None:
    """Poll `condition` until true; fails the test with TimeoutError after `limit` seconds.

    Polling, not an event: the conditions read state that no one signals (a client's counters,
    what a peer received).
    """
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.005)
