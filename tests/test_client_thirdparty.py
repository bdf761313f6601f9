"""`WeexWebSocketClient` against a WEEX look-alike built on the third-party `websockets` library.

The server (tests/thirdparty_server.py) gets its HTTP, framing, pings and closes from
`websockets`, so these tests check the whole client stack against code we did not write.
Expected values come from the protocol reference (/work/shared/weex-protocol.md, and
docs/protocol-v3.md for v3), never from the client's own output. Every test runs on v2 and v3:
the server then speaks the dialect's words (names, requests, pushes), written out here.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from tests.adapters import BOTH_DIALECTS
from tests.dialect_peer import pong, v3_push
from tests.thirdparty_server import (
    Peer,
    ThirdPartyWeexServer,
    eventually,
    expected_signature,
    order_push,
    ticker_push,
)
from weex_anyio import (
    AuthenticationError,
    HandshakeRejectedError,
    ReconnectExhaustedError,
    ServerError,
    StreamOverflowError,
    WebSocketMessage,
    WeexConfig,
    WeexWebSocketClient,
)

pytestmark = pytest.mark.anyio

USER_AGENT = "weex-ws-thirdparty-tests/1.0"
API_KEY = "ak-7f3e9c1d2b"
SECRET_KEY = "sk-4a8b0c6e1f-very-secret"
PASSPHRASE = "pp-correct-horse"
BTC = "ticker.cmt_btcusdt"
ETH = "ticker.cmt_ethusdt"
TRADES = "trades.cmt_btcusdt"
DEPTH = "depth.cmt_ethusdt.200"
REFUSED = "ticker.cmt_nosuchusdt"
SILENT = "ticker.cmt_silentusdt"
V3_NAMES = {
    BTC: "BTCUSDT@ticker",
    ETH: "ETHUSDT@ticker",
    TRADES: "BTCUSDT@trade",
    DEPTH: "ETHUSDT@depth200",
    REFUSED: "NOSUCHUSDT@ticker",
    SILENT: "SILENTUSDT@ticker",
    "orders": "orders",
    "fill": "fill",
}
"""The client's (v2) channel names as v3 names them on the wire (docs/protocol-v3.md §4)."""
TAKE_LIMIT = 5.0  # seconds; a message that has not come by then is not coming


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets.asyncio is asyncio-only


@pytest.fixture(params=BOTH_DIALECTS)
async def server(request: pytest.FixtureRequest) -> AsyncIterator[ThirdPartyWeexServer]:
    async with ThirdPartyWeexServer(
        api_key=API_KEY, secret_key=SECRET_KEY, passphrase=PASSPHRASE, api=request.param
    ) as running:
        yield running


def wire(server: ThirdPartyWeexServer, channel: str) -> str:
    """`channel` as the server's dialect names it (what the server's script is keyed by)."""
    return channel if server.api == "v2" else V3_NAMES[channel]


def wire_push(server: ThirdPartyWeexServer, frame: dict[str, Any]) -> dict[str, Any]:
    """A v2 push as the server's dialect sends it."""
    return frame if server.api == "v2" else v3_push(frame)


def as_read(server: ThirdPartyWeexServer, frame: dict[str, Any]) -> dict[str, Any]:
    """The v2 frame a message carries for the push `frame`: on v3, a public push's `E` becomes
    its `time` (docs/protocol-v3.md §6; a private push keeps `msg.time`)."""
    if server.api == "v2" or "msg" in frame:
        return frame
    return {**frame, "time": wire_push(server, frame)["E"]}


def request(server: ThirdPartyWeexServer, operation: str, channel: str) -> dict[str, Any]:
    """The (un)subscribe request of `channel`, exactly, as the dialect writes it (v3: its id
    is checked and removed by `sent`)."""
    if server.api == "v2":
        return {"event": operation, "channel": channel}
    return {"method": operation.upper(), "params": [V3_NAMES[channel]]}


def sent(server: ThirdPartyWeexServer, peer: Peer) -> list[Any]:
    """What the client sent on `peer`; on v3 its request ids are checked to count 1, 2, ...
    on the connection (PONGs included), then removed so each request compares with `request`."""
    if server.api == "v2":
        return list(peer.received)
    ids = [frame.get("id") for frame in peer.received if isinstance(frame, dict)]
    assert ids == list(range(1, len(ids) + 1)), ids
    return [
        {key: value for key, value in frame.items() if key != "id"}
        if isinstance(frame, dict)
        else frame
        for frame in peer.received
    ]


def make_client(
    server: ThirdPartyWeexServer, *, secret_key: str = SECRET_KEY, **options: Any
) -> WeexWebSocketClient:
    config = WeexConfig(
        api_key=API_KEY,
        secret_key=secret_key,
        passphrase=PASSPHRASE,
        public_url=server.public_url,
        private_url=server.private_url,
        user_agent=USER_AGENT,
    )
    settings: dict[str, Any] = {
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "connect_timeout": 2.0,
        "ping_interval": 5.0,
        "ping_timeout": 5.0,
        "rng": random.Random(7),
    }
    settings.update(options)
    return WeexWebSocketClient(config, **settings)


def generator(
    stream: AsyncIterator[WebSocketMessage[Any]],
) -> AsyncGenerator[WebSocketMessage[Any], None]:
    """The streams are async generators; say so, so tests may `aclose()` them."""
    assert isinstance(stream, AsyncGenerator)
    return stream


async def take(stream: AsyncIterator[WebSocketMessage[Any]]) -> WebSocketMessage[Any]:
    """The next message, failing the test instead of hanging when none comes."""
    with anyio.fail_after(TAKE_LIMIT):
        return await anext(stream)


def last_price(message: WebSocketMessage[Any]) -> str:
    price = message.frame["data"][0]["lastPrice"]
    assert isinstance(price, str)
    return price


async def feed(server: ThirdPartyWeexServer, channel: str, symbol: str) -> None:
    """Push a ticker every few milliseconds until cancelled."""
    n = 0
    while True:
        n += 1
        await server.push(
            wire(server, channel), wire_push(server, ticker_push(symbol, f"feed-{n}"))
        )
        await anyio.sleep(0.01)


# 1 ----------------------------------------------------------------------------------------------


async def test_stream_tickers_yields_pushed_frames_in_order(server: ThirdPartyWeexServer) -> None:
    pushes = [ticker_push("cmt_btcusdt", str(100 + n)) for n in range(5)]
    server.on_subscribe[wire(server, BTC)] = [wire_push(server, push) for push in pushes]
    received: list[WebSocketMessage[Any]] = []
    async with make_client(server) as client:
        stream = generator(client.stream_tickers(["BTCUSDT"]))
        with anyio.fail_after(5):
            async for message in stream:
                received.append(message)
                if len(received) == len(pushes):
                    break
        await stream.aclose()

    # The server's frames to the byte, read as the v2 frames they carry.
    assert [json.loads(m.raw) for m in received] == [wire_push(server, p) for p in pushes]
    assert [m.frame for m in received] == [as_read(server, p) for p in pushes]
    assert all(m.channel == BTC for m in received)
    assert not any(m.gap for m in received)
    assert all(abs(m.timestamp - time.time()) < 60 for m in received)
    (handshake,) = server.handshakes
    assert handshake.path == f"/{server.api}/ws/public"
    assert handshake.headers["user-agent"] == USER_AGENT
    assert not any(name.startswith("access-") for name in handshake.headers)
    # Doc §3.1: exactly {"event":"subscribe","channel":"ticker.cmt_btcusdt"}, nothing else;
    # v3 (docs/protocol-v3.md §2): {"method":"SUBSCRIBE","params":["BTCUSDT@ticker"],"id":1}.
    assert sent(server, server.peers[0])[0] == request(server, "subscribe", BTC)


# 2 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["event", "type"])
async def test_application_ping_is_answered_with_the_same_key_and_time(
    server: ThirdPartyWeexServer, key: str
) -> None:
    async with make_client(server) as client:
        await client.connect()
        await eventually(lambda: len(server.open_peers()) == 1)
        (peer,) = server.open_peers()
        await peer.ping("1693208170000", key=key)
        await peer.ping("1693208175000", key=key)
        await eventually(lambda: len(peer.received) >= 2)

        # v2 echoes `time` under the ping's key; v3 sends PONG requests with fresh ids.
        assert peer.received == [
            pong(server.api, key, "1693208170000", 1),
            pong(server.api, key, "1693208175000", 2),
        ]
        assert client.health.endpoints["public"].pings_answered == 2


# 3 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["tcp drop", "close 1012"])
async def test_lost_connection_is_resumed_with_the_same_subscriptions(
    server: ThirdPartyWeexServer, ending: str
) -> None:
    server.on_subscribe[wire(server, BTC)] = [wire_push(server, ticker_push("cmt_btcusdt", "1"))]
    server.on_subscribe[wire(server, ETH)] = [wire_push(server, ticker_push("cmt_ethusdt", "2"))]
    gaps: list[tuple[str, tuple[str, ...]]] = []
    async with make_client(server, on_gap=lambda name, chans: gaps.append((name, chans))) as client:
        stream = generator(client.stream_tickers(["BTCUSDT", "ETHUSDT"]))
        before = [await take(stream), await take(stream)]
        first = server.peers[0]
        if ending == "tcp drop":
            first.drop()
        else:
            await first.close(1012, "service restart")
        after = [await take(stream), await take(stream)]

        second = server.peers[1]
        assert sorted(first.channels("subscribe")) == sorted([wire(server, BTC), wire(server, ETH)])
        assert sorted(second.channels("subscribe")) == sorted(first.channels("subscribe"))
        assert [m.gap for m in before] == [False, False]
        assert {m.channel for m in after} == {BTC, ETH}
        assert [m.gap for m in after] == [True, True]  # the first of each channel since
        assert client.connection_attempts == 2
        assert len(server.handshakes) == 2
        assert [(name, sorted(chans)) for name, chans in gaps] == [("public", sorted([BTC, ETH]))]
        await stream.aclose()


# 4 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("refusal", ["http 503", "listener closed"])
async def test_exhausted_retries_end_the_stream_and_connect(
    server: ThirdPartyWeexServer, refusal: str
) -> None:
    max_retries = 2
    server.on_subscribe[wire(server, BTC)] = [wire_push(server, ticker_push("cmt_btcusdt", "1"))]
    async with make_client(server, max_retries=max_retries) as client:
        stream = generator(client.stream_tickers(["BTCUSDT"]))
        await take(stream)
        if refusal == "http 503":
            server.refuse_status = 503
        else:
            server.stop_listening()
        server.peers[0].drop()

        with pytest.raises(ReconnectExhaustedError) as from_stream:
            await take(stream)
        # The drop, then `max_retries` retries that all fail.
        assert client.connection_attempts == 1 + max_retries
        with pytest.raises(ReconnectExhaustedError):
            await client.connect()
        # A fresh connect(): one attempt plus `max_retries` retries.
        assert client.connection_attempts == 1 + max_retries + 1 + max_retries
        assert not client.is_connected

    if refusal == "http 503":
        last = from_stream.value.last_error
        assert isinstance(last, HandshakeRejectedError)
        assert last.status_code == 503
        assert [h.status for h in server.handshakes] == [101] + [503] * (2 * max_retries + 1)


@pytest.mark.parametrize(
    ("status", "private", "expected"),
    [
        (404, False, HandshakeRejectedError),
        (403, False, HandshakeRejectedError),  # public: no credentials involved
        (410, True, HandshakeRejectedError),
        (403, True, AuthenticationError),  # private: our credentials were refused
    ],
)
async def test_permanent_refusals_fail_at_once_with_a_typed_error(
    server: ThirdPartyWeexServer, status: int, private: bool, expected: type[Exception]
) -> None:
    server.refuse_status = status
    async with make_client(server, max_retries=5) as client:
        with anyio.fail_after(5), pytest.raises(expected) as caught:
            await client.connect(private=private)
        assert client.connection_attempts == 1
    assert [h.status for h in server.handshakes] == [status]
    if expected is HandshakeRejectedError:
        assert not isinstance(caught.value, AuthenticationError)
        assert isinstance(caught.value, HandshakeRejectedError)
        assert (caught.value.status_code, caught.value.permanent) == (status, True)


# 5 ----------------------------------------------------------------------------------------------


async def test_private_connection_with_good_credentials_streams_orders(
    server: ThirdPartyWeexServer,
) -> None:
    pushes = [order_push("617414920861909658", 46654), order_push("617414920861909659", 46655)]
    server.on_subscribe["orders"] = [wire_push(server, push) for push in pushes]
    async with make_client(server) as client:
        await client.connect(private=True)
        stream = generator(client.stream_orders())
        got = [await take(stream), await take(stream)]
        await stream.aclose()

    assert [json.loads(m.raw) for m in got] == [wire_push(server, p) for p in pushes]
    assert [m.frame for m in got] == [as_read(server, p) for p in pushes]
    assert [m.channel for m in got] == ["orders", "orders"]
    assert [m.data["order_id"] for m in got] == ["617414920861909658", "617414920861909659"]
    (handshake,) = server.handshakes
    assert handshake.status == 101
    assert handshake.path == f"/{server.api}/ws/private"
    headers = handshake.headers
    assert headers["user-agent"] == USER_AGENT
    assert headers["access-key"] == API_KEY
    assert headers["access-passphrase"] == PASSPHRASE
    assert abs(int(headers["access-timestamp"]) - time.time() * 1000) < 30_000
    # Signed over the dialect's own path (v3: "/v3/ws/private", docs/protocol-v3.md §1).
    signed = expected_signature(SECRET_KEY, headers["access-timestamp"], handshake.path)
    assert headers["access-sign"] == signed
    assert sent(server, server.peers[0])[0] == request(server, "subscribe", "orders")


async def test_wrong_secret_fails_at_once_with_authentication_error(
    server: ThirdPartyWeexServer,
) -> None:
    async with make_client(server, secret_key="not-the-secret", max_retries=5) as client:
        with anyio.fail_after(5), pytest.raises(AuthenticationError) as caught:
            await client.connect(private=True)
        assert client.connection_attempts == 1
        assert not client.is_connected
    assert [h.status for h in server.handshakes] == [401]
    assert "not-the-secret" not in str(caught.value)


# 6 ----------------------------------------------------------------------------------------------


async def test_junk_frames_are_skipped_and_errors_do_not_kill_the_connection(
    server: ThirdPartyWeexServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    junk: list[str | bytes] = [
        "this is not json {",
        b"\x00\x01binary",
        "[1, 2, 3]",
        '{"event":"mystery","channel":"ticker.cmt_btcusdt"}',
    ]
    server.on_subscribe[wire(server, BTC)] = [wire_push(server, ticker_push("cmt_btcusdt", "1"))]
    async with make_client(server) as client:
        stream = generator(client.stream_tickers(["BTCUSDT"]))
        assert last_price(await take(stream)) == "1"
        (peer,) = server.open_peers()
        for frame in junk:
            await peer.send(frame)
        # v3's sources show no rate-limit frame: both dialects get v2's (assumed, doc §3.4).
        await peer.send({"event": "error", "code": "429", "msg": "Too many requests"})
        await server.push(wire(server, BTC), wire_push(server, ticker_push("cmt_btcusdt", "2")))

        message = await take(stream)
        assert last_price(message) == "2"
        assert not message.gap
        assert client.health.skipped == len(junk)
        assert client.connection_attempts == 1
        assert client.is_connected
        assert not peer.closed
        rate_limited = [
            r for r in caplog.records if r.name.startswith("weex") and "429" in r.getMessage()
        ]
        assert [r.levelno for r in rate_limited] == [logging.WARNING]
        await stream.aclose()


async def test_error_naming_a_streams_channel_ends_that_stream(
    server: ThirdPartyWeexServer,
) -> None:
    channel = TRADES
    server.subscribe_errors[wire(server, channel)] = {
        "event": "error",
        "code": "40020",
        "msg": "Parameter is invalid",
        "channel": channel,
    }
    server.on_subscribe[wire(server, BTC)] = [wire_push(server, ticker_push("cmt_btcusdt", "1"))]
    async with make_client(server) as client:
        tickers = generator(client.stream_tickers(["BTCUSDT"]))
        await take(tickers)
        trades = generator(client.stream_trades("BTCUSDT"))
        with anyio.fail_after(5), pytest.raises(ServerError) as caught:
            await take(trades)
        # v3's refusal `{"result":false,"id":N,"msg":...}` carries no code (protocol-v3.md §2).
        assert caught.value.code == {"v2": "40020", "v3": None}[server.api]
        assert "Parameter is invalid" in str(caught.value)

        # The other stream and the connection are untouched.
        await server.push(wire(server, BTC), wire_push(server, ticker_push("cmt_btcusdt", "2")))
        assert last_price(await take(tickers)) == "2"
        assert client.connection_attempts == 1
        assert channel not in client.subscriptions
        await tickers.aclose()


# 7 ----------------------------------------------------------------------------------------------


async def test_message_handlers(
    server: ThirdPartyWeexServer, caplog: pytest.LogCaptureFixture
) -> None:
    seen: dict[str, list[str]] = {"exact": [], "pattern": [], "async": [], "eth_async": []}

    def broken(message: WebSocketMessage[Any]) -> None:
        raise RuntimeError("handler bug")

    def exact(message: WebSocketMessage[Any]) -> None:
        seen["exact"].append(last_price(message))

    def pattern(message: WebSocketMessage[Any]) -> None:
        seen["pattern"].append(f"{message.channel}:{last_price(message)}")

    class Recorder:
        async def on_message(self, message: WebSocketMessage[Any]) -> None:
            await anyio.lowlevel.checkpoint()
            seen["async"].append(last_price(message))

    recorder = Recorder()  # a bound method: a new object, but an equal one, on every access

    async def eth_slow(message: WebSocketMessage[Any]) -> None:
        seen["eth_async"].append(last_price(message))

    async with make_client(server) as client:
        client.add_message_handler(BTC, broken)
        client.add_message_handler(BTC, exact)
        client.add_message_handler("ticker.*", pattern)
        client.add_message_handler(BTC, recorder.on_message)
        client.add_message_handler(ETH, eth_slow)
        await client.subscribe("ticker", symbol="BTCUSDT")
        await client.subscribe("ticker", symbol="ETHUSDT")
        await server.wait_subscribed(wire(server, BTC))
        await server.wait_subscribed(wire(server, ETH))

        await server.push(wire(server, BTC), wire_push(server, ticker_push("cmt_btcusdt", "1")))
        await server.push(wire(server, ETH), wire_push(server, ticker_push("cmt_ethusdt", "2")))
        await eventually(lambda: seen["async"] == ["1"] and seen["eth_async"] == ["2"])
        assert seen["exact"] == ["1"]
        assert seen["pattern"] == [f"{BTC}:1", f"{ETH}:2"]
        failures = [r for r in caplog.records if r.name.startswith("weex") and r.exc_info]
        assert len(failures) == 1
        assert failures[0].levelno >= logging.ERROR
        assert isinstance(failures[0].exc_info[1], RuntimeError)  # type: ignore[index]

        client.remove_message_handler(BTC, exact)
        client.remove_message_handler(BTC, recorder.on_message)
        await server.push(wire(server, BTC), wire_push(server, ticker_push("cmt_btcusdt", "3")))
        await server.push(wire(server, ETH), wire_push(server, ticker_push("cmt_ethusdt", "4")))
        await eventually(lambda: len(seen["pattern"]) == 4 and seen["eth_async"] == ["2", "4"])
        await anyio.sleep(0.05)  # room for a wrongly kept async handler to run
        assert seen["exact"] == ["1"]
        assert seen["async"] == ["1"]

        # Removing every handler of one channel leaves other channels' handlers alone.
        client.remove_message_handler(BTC)
        await server.push(wire(server, ETH), wire_push(server, ticker_push("cmt_ethusdt", "5")))
        await eventually(lambda: seen["eth_async"] == ["2", "4", "5"])


# 8 ----------------------------------------------------------------------------------------------


async def test_silent_server_is_declared_dead_and_replaced(server: ThirdPartyWeexServer) -> None:
    interval, timeout = 0.2, 0.2
    server.on_subscribe[wire(server, BTC)] = [wire_push(server, ticker_push("cmt_btcusdt", "1"))]
    async with make_client(server, ping_interval=interval, ping_timeout=timeout) as client:
        stream = generator(client.stream_tickers(["BTCUSDT"]))
        await take(stream)
        # websockets answers our RFC 6455 pings while the server is healthy.
        await eventually(lambda: client.health.endpoints["public"].round_trip is not None)
        assert client.connection_attempts == 1

        first = server.peers[0]
        first.stall()
        message = await take(stream)
        reconnected_at = anyio.current_time()

        assert message.gap
        assert client.connection_attempts == 2
        assert server.peers[1].channels("subscribe") == [wire(server, BTC)]
        assert first.last_sent_at is not None
        # Not declared dead before ping_interval + ping_timeout of silence.
        assert reconnected_at - first.last_sent_at >= interval + timeout
        await stream.aclose()


# 9 ----------------------------------------------------------------------------------------------


async def test_two_streams_share_one_subscription(server: ThirdPartyWeexServer) -> None:
    async with make_client(server) as client, anyio.create_task_group() as tg:
        tg.start_soon(feed, server, BTC, "cmt_btcusdt")
        one = generator(client.stream_tickers(["BTCUSDT"]))
        two = generator(client.stream_tickers(["BTCUSDT"]))
        await take(one)
        await take(two)
        (peer,) = server.open_peers()

        await one.aclose()
        seen_after_close = await take(two)
        await take(two)
        assert seen_after_close.channel == BTC
        assert peer.channels("unsubscribe") == []

        await two.aclose()
        await eventually(lambda: wire(server, BTC) not in peer.subscriptions)
        await anyio.sleep(0.05)  # room for a duplicate unsubscribe
        assert peer.channels("subscribe") == [wire(server, BTC)]
        assert peer.channels("unsubscribe") == [wire(server, BTC)]
        assert BTC not in client.subscriptions
        tg.cancel_scope.cancel()


# 10 ---------------------------------------------------------------------------------------------


async def test_explicit_subscribe_and_unsubscribe(server: ThirdPartyWeexServer) -> None:
    async with make_client(server) as client:
        assert client.subscriptions == frozenset()
        assert await client.subscribe("ticker", symbol="BTCUSDT") == BTC
        assert (
            await client.subscribe("depth", symbol="ETHUSDT", level=200) == "depth.cmt_ethusdt.200"
        )
        assert await client.subscribe(BTC) == BTC  # already subscribed: nothing new is sent
        assert client.subscriptions == {BTC, "depth.cmt_ethusdt.200"}
        await server.wait_subscribed(wire(server, DEPTH))
        await server.wait_subscribed(wire(server, BTC))
        (peer,) = server.open_peers()

        await client.unsubscribe("ticker", symbol="BTCUSDT")
        assert client.subscriptions == {"depth.cmt_ethusdt.200"}
        await eventually(lambda: wire(server, BTC) not in peer.subscriptions)
        await client.unsubscribe("ticker", symbol="BTCUSDT")  # not subscribed: nothing sent
        await client.subscribe("depth", symbol="ETHUSDT", level=200)
        await anyio.sleep(0.05)

    requests = sent(server, peer)
    assert sorted(requests[:2], key=str) == sorted(
        [request(server, "subscribe", BTC), request(server, "subscribe", DEPTH)], key=str
    )
    assert requests[2:] == [request(server, "unsubscribe", BTC)]


# 11 ---------------------------------------------------------------------------------------------


async def test_secrets_never_reach_the_logs(
    server: ThirdPartyWeexServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.on_subscribe["orders"] = [wire_push(server, order_push("1", 1))]
    async with make_client(server) as client:
        stream = generator(client.stream_orders())
        await take(stream)
        server.peers[0].drop()  # a reconnect signs a second handshake
        await take(stream)
        raw = request(server, "subscribe", "fill") | ({} if server.api == "v2" else {"id": 1000})
        await client.send_message(raw, private=True)
        await stream.aclose()
        rejected = make_client(server, secret_key="wrong-" + SECRET_KEY)
        async with rejected:
            with pytest.raises(AuthenticationError):
                await rejected.connect(private=True)
        assert SECRET_KEY not in repr(client) + repr(client.config)

    signatures = [h.headers["access-sign"] for h in server.handshakes]
    assert len(signatures) == 3
    secrets = [SECRET_KEY, PASSPHRASE, API_KEY, *signatures]
    client_records = [r for r in caplog.records if not r.name.startswith("tests.")]
    assert client_records, "the client logged nothing at DEBUG: the check would be vacuous"
    for record in client_records:
        text = record.getMessage() + repr(record.__dict__)
        if record.exc_info:
            text += repr(record.exc_info[1])
        for secret in secrets:
            assert secret not in text, f"secret leaked in log record {record.name}"


# 12 ---------------------------------------------------------------------------------------------


async def test_slow_ticker_consumer_keeps_only_the_newest(server: ThirdPartyWeexServer) -> None:
    size = 5
    server.on_subscribe[wire(server, BTC)] = [wire_push(server, ticker_push("cmt_btcusdt", "0"))]
    async with make_client(server, buffer_size=size) as client:
        stream = generator(client.stream_tickers(["BTCUSDT"]))
        await take(stream)
        for n in range(1, 21):
            await server.push(
                wire(server, BTC), wire_push(server, ticker_push("cmt_btcusdt", str(n)))
            )
        await eventually(lambda: client.health.messages == 21)
        await server.push(wire(server, BTC), wire_push(server, ticker_push("cmt_btcusdt", "21")))
        await eventually(lambda: client.health.messages == 22)

        held = [await take(stream) for _ in range(size)]
        assert [last_price(m) for m in held] == ["17", "18", "19", "20", "21"]
        assert [m.gap for m in held] == [True, False, False, False, False]
        # Nothing else was held back: the next push is the next message.
        await server.push(wire(server, BTC), wire_push(server, ticker_push("cmt_btcusdt", "22")))
        newest = await take(stream)
        assert last_price(newest) == "22"
        assert not newest.gap
        await stream.aclose()


async def test_slow_private_consumer_gets_overflow_error(server: ThirdPartyWeexServer) -> None:
    size = 5
    server.on_subscribe["orders"] = [wire_push(server, order_push("0", 1))]
    async with make_client(server, buffer_size=size) as client:
        stream = generator(client.stream_orders())
        await take(stream)
        for n in range(size + 1):
            await server.push("orders", wire_push(server, order_push(str(n + 1), n + 2)))
        await eventually(lambda: client.health.messages == size + 2)
        with pytest.raises(StreamOverflowError):
            await take(stream)
        assert client.is_connected


# subscribe(ack_timeout=...) ------------------------------------------------------------------


async def test_subscribe_can_wait_for_the_servers_answer(server: ThirdPartyWeexServer) -> None:
    refused = REFUSED
    server.subscribe_errors[wire(server, refused)] = {
        "event": "error",
        "code": "40020",
        "msg": "Parameter channel is invalid",
        "channel": refused,
    }
    server.unanswered.add(wire(server, SILENT))
    async with make_client(server) as client:
        assert await client.subscribe("ticker", symbol="BTCUSDT", ack_timeout=5) == BTC
        assert BTC in client.subscriptions
        assert await client.subscribe("ticker", symbol="BTCUSDT", ack_timeout=5) == BTC  # acked
        with pytest.raises(ServerError, match="Parameter channel is invalid"):
            await client.subscribe(refused, ack_timeout=5)
        assert refused not in client.subscriptions
        with pytest.raises(TimeoutError, match="cmt_silentusdt"):
            await client.subscribe("ticker", symbol="SILENTUSDT", ack_timeout=0.2)
        (peer,) = server.open_peers()
        assert peer.channels("subscribe").count(wire(server, BTC)) == 1
