"""`WeexWebSocketClient` against a WEEX look-alike built on the third-party `websockets` library.

The server (tests/thirdparty_server.py) gets its HTTP, framing, pings and closes from
`websockets`, so these tests check the whole client stack against code we did not write.
Expected values come from the protocol reference (/work/shared/weex-protocol.md), never from
the client's own output.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from tests.thirdparty_server import (
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
TAKE_LIMIT = 5.0  # seconds; a message that has not come by then is not coming


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets.asyncio is asyncio-only


@pytest.fixture
async def server() -> AsyncIterator[ThirdPartyWeexServer]:
    async with ThirdPartyWeexServer(
        api_key=API_KEY, secret_key=SECRET_KEY, passphrase=PASSPHRASE
    ) as running:
        yield running


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
        await server.push(channel, ticker_push(symbol, f"feed-{n}"))
        await anyio.sleep(0.01)


# 1 ----------------------------------------------------------------------------------------------


async def test_stream_tickers_yields_pushed_frames_in_order(server: ThirdPartyWeexServer) -> None:
    pushes = [ticker_push("cmt_btcusdt", str(100 + n)) for n in range(5)]
    server.on_subscribe[BTC] = list(pushes)
    received: list[WebSocketMessage[Any]] = []
    async with make_client(server) as client:
        stream = generator(client.stream_tickers(["BTCUSDT"]))
        with anyio.fail_after(5):
            async for message in stream:
                received.append(message)
                if len(received) == len(pushes):
                    break
        await stream.aclose()

    assert [m.frame for m in received] == pushes
    assert all(m.channel == BTC for m in received)
    assert not any(m.gap for m in received)
    assert all(abs(m.timestamp - time.time()) < 60 for m in received)
    (handshake,) = server.handshakes
    assert handshake.path == "/v2/ws/public"
    assert handshake.headers["user-agent"] == USER_AGENT
    assert not any(name.startswith("access-") for name in handshake.headers)
    # Doc §3.1: exactly {"event":"subscribe","channel":"ticker.cmt_btcusdt"}, nothing else.
    assert server.peers[0].received[0] == {"event": "subscribe", "channel": BTC}


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

        assert peer.received == [
            {key: "pong", "time": "1693208170000"},
            {key: "pong", "time": "1693208175000"},
        ]
        assert client.health.endpoints["public"].pings_answered == 2


# 3 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["tcp drop", "close 1012"])
async def test_lost_connection_is_resumed_with_the_same_subscriptions(
    server: ThirdPartyWeexServer, ending: str
) -> None:
    server.on_subscribe[BTC] = [ticker_push("cmt_btcusdt", "1")]
    server.on_subscribe[ETH] = [ticker_push("cmt_ethusdt", "2")]
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
        assert sorted(first.channels("subscribe")) == sorted([BTC, ETH])
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
    server.on_subscribe[BTC] = [ticker_push("cmt_btcusdt", "1")]
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
    server.on_subscribe["orders"] = list(pushes)
    async with make_client(server) as client:
        await client.connect(private=True)
        stream = generator(client.stream_orders())
        got = [await take(stream), await take(stream)]
        await stream.aclose()

    assert [m.frame for m in got] == pushes
    assert [m.channel for m in got] == ["orders", "orders"]
    assert [m.data["order_id"] for m in got] == ["617414920861909658", "617414920861909659"]
    (handshake,) = server.handshakes
    assert handshake.status == 101
    assert handshake.path == "/v2/ws/private"
    headers = handshake.headers
    assert headers["user-agent"] == USER_AGENT
    assert headers["access-key"] == API_KEY
    assert headers["access-passphrase"] == PASSPHRASE
    assert abs(int(headers["access-timestamp"]) - time.time() * 1000) < 30_000
    assert headers["access-sign"] == expected_signature(SECRET_KEY, headers["access-timestamp"])
    assert server.peers[0].received[0] == {"event": "subscribe", "channel": "orders"}


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
    server.on_subscribe[BTC] = [ticker_push("cmt_btcusdt", "1")]
    async with make_client(server) as client:
        stream = generator(client.stream_tickers(["BTCUSDT"]))
        assert last_price(await take(stream)) == "1"
        (peer,) = server.open_peers()
        for frame in junk:
            await peer.send(frame)
        await peer.send({"event": "error", "code": "429", "msg": "Too many requests"})
        await server.push(BTC, ticker_push("cmt_btcusdt", "2"))

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
    channel = "trades.cmt_btcusdt"
    server.subscribe_errors[channel] = {
        "event": "error",
        "code": "40020",
        "msg": "Parameter is invalid",
        "channel": channel,
    }
    server.on_subscribe[BTC] = [ticker_push("cmt_btcusdt", "1")]
    async with make_client(server) as client:
        tickers = generator(client.stream_tickers(["BTCUSDT"]))
        await take(tickers)
        trades = generator(client.stream_trades("BTCUSDT"))
        with anyio.fail_after(5), pytest.raises(ServerError) as caught:
            await take(trades)
        assert caught.value.code == "40020"

        # The other stream and the connection are untouched.
        await server.push(BTC, ticker_push("cmt_btcusdt", "2"))
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
        await server.wait_subscribed(BTC)
        await server.wait_subscribed(ETH)

        await server.push(BTC, ticker_push("cmt_btcusdt", "1"))
        await server.push(ETH, ticker_push("cmt_ethusdt", "2"))
        await eventually(lambda: seen["async"] == ["1"] and seen["eth_async"] == ["2"])
        assert seen["exact"] == ["1"]
        assert seen["pattern"] == [f"{BTC}:1", f"{ETH}:2"]
        failures = [r for r in caplog.records if r.name.startswith("weex") and r.exc_info]
        assert len(failures) == 1
        assert failures[0].levelno >= logging.ERROR
        assert isinstance(failures[0].exc_info[1], RuntimeError)  # type: ignore[index]

        client.remove_message_handler(BTC, exact)
        client.remove_message_handler(BTC, recorder.on_message)
        await server.push(BTC, ticker_push("cmt_btcusdt", "3"))
        await server.push(ETH, ticker_push("cmt_ethusdt", "4"))
        await eventually(lambda: len(seen["pattern"]) == 4 and seen["eth_async"] == ["2", "4"])
        await anyio.sleep(0.05)  # room for a wrongly kept async handler to run
        assert seen["exact"] == ["1"]
        assert seen["async"] == ["1"]

        # Removing every handler of one channel leaves other channels' handlers alone.
        client.remove_message_handler(BTC)
        await server.push(ETH, ticker_push("cmt_ethusdt", "5"))
        await eventually(lambda: seen["eth_async"] == ["2", "4", "5"])


# 8 ----------------------------------------------------------------------------------------------


async def test_silent_server_is_declared_dead_and_replaced(server: ThirdPartyWeexServer) -> None:
    interval, timeout = 0.2, 0.2
    server.on_subscribe[BTC] = [ticker_push("cmt_btcusdt", "1")]
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
        assert server.peers[1].channels("subscribe") == [BTC]
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
        await eventually(lambda: BTC not in peer.subscriptions)
        await anyio.sleep(0.05)  # room for a duplicate unsubscribe
        assert peer.channels("subscribe") == [BTC]
        assert peer.channels("unsubscribe") == [BTC]
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
        await server.wait_subscribed("depth.cmt_ethusdt.200")
        await server.wait_subscribed(BTC)
        (peer,) = server.open_peers()

        await client.unsubscribe("ticker", symbol="BTCUSDT")
        assert client.subscriptions == {"depth.cmt_ethusdt.200"}
        await eventually(lambda: BTC not in peer.subscriptions)
        await client.unsubscribe("ticker", symbol="BTCUSDT")  # not subscribed: nothing sent
        await client.subscribe("depth", symbol="ETHUSDT", level=200)
        await anyio.sleep(0.05)

    requests = [f for f in peer.received if isinstance(f, dict) and "subscribe" in f["event"]]
    assert sorted(requests[:2], key=str) == sorted(
        [
            {"event": "subscribe", "channel": BTC},
            {"event": "subscribe", "channel": "depth.cmt_ethusdt.200"},
        ],
        key=str,
    )
    assert requests[2:] == [{"event": "unsubscribe", "channel": BTC}]


# 11 ---------------------------------------------------------------------------------------------


async def test_secrets_never_reach_the_logs(
    server: ThirdPartyWeexServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.on_subscribe["orders"] = [order_push("1", 1)]
    async with make_client(server) as client:
        stream = generator(client.stream_orders())
        await take(stream)
        server.peers[0].drop()  # a reconnect signs a second handshake
        await take(stream)
        await client.send_message({"event": "subscribe", "channel": "fill"}, private=True)
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
    server.on_subscribe[BTC] = [ticker_push("cmt_btcusdt", "0")]
    async with make_client(server, buffer_size=size) as client:
        stream = generator(client.stream_tickers(["BTCUSDT"]))
        await take(stream)
        for n in range(1, 21):
            await server.push(BTC, ticker_push("cmt_btcusdt", str(n)))
        await eventually(lambda: client.health.messages == 21)
        await server.push(BTC, ticker_push("cmt_btcusdt", "21"))
        await eventually(lambda: client.health.messages == 22)

        held = [await take(stream) for _ in range(size)]
        assert [last_price(m) for m in held] == ["17", "18", "19", "20", "21"]
        assert [m.gap for m in held] == [True, False, False, False, False]
        # Nothing else was held back: the next push is the next message.
        await server.push(BTC, ticker_push("cmt_btcusdt", "22"))
        newest = await take(stream)
        assert last_price(newest) == "22"
        assert not newest.gap
        await stream.aclose()


async def test_slow_private_consumer_gets_overflow_error(server: ThirdPartyWeexServer) -> None:
    size = 5
    server.on_subscribe["orders"] = [order_push("0", 1)]
    async with make_client(server, buffer_size=size) as client:
        stream = generator(client.stream_orders())
        await take(stream)
        for n in range(size + 1):
            await server.push("orders", order_push(str(n + 1), n + 2))
        await eventually(lambda: client.health.messages == size + 2)
        with pytest.raises(StreamOverflowError):
            await take(stream)
        assert client.is_connected


# subscribe(ack_timeout=...) ------------------------------------------------------------------


async def test_subscribe_can_wait_for_the_servers_answer(server: ThirdPartyWeexServer) -> None:
    refused = "ticker.cmt_nosuchusdt"
    server.subscribe_errors[refused] = {
        "event": "error",
        "code": "40020",
        "msg": "Parameter channel is invalid",
        "channel": refused,
    }
    server.subscribe_errors["ticker.cmt_silentusdt"] = {"event": "payload", "channel": "x"}
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
        assert peer.channels("subscribe").count(BTC) == 1
