"""The asyncio `Protocol` reader under `weex_anyio`'s default transport, against real sockets.

Every test starts a loopback server of its own (asyncio's, the third-party `websockets` one, or
pproxy for tunnels) and checks what the stream, or the whole client on top of it, makes of it:
bytes cut anywhere come out whole and in order, everything that has piled up comes in one
`receive`, a frame bigger than every buffer arrives intact, EOF and a reset are what the
client's `TransportStream` contract says, a reader that stops reading stops the socket being
read (the buffer stays bounded) and picks up where it left off, TLS verifies (directly and
inside a proxy tunnel), a cancelled receive loses nothing, and on trio anyio's streams stay.
The suite's other asyncio tests run on this stream too, since it is the default.

The stream tests carry bytes and speak no WEEX protocol; the whole-client tests at the end run
on WEEX's v2 and v3 (the server's path, subscribe and pushes in the dialect's words).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import random
import socket
import ssl
import struct
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme

import weex_anyio
from tests.adapters import BOTH_DIALECTS, eventually
from tests.proxyserver import RunningProxy, pproxy_server
from tests.thirdparty_server import ThirdPartyWeexServer, ticker_push
from tests.wspeer import ServerPeer
from weex_anyio._asyncio_stream import ProtocolStream, open_protocol_stream
from weex_anyio._backend import AnyioBackend
from weex_proto.config import Endpoint, WeexConfig
from weex_proto.proxy import ProxyRoutes

TEST_LIMIT = 60.0  # seconds a test body may take before it fails instead of hanging
MAX_READ = 256 * 1024  # the most asyncio's socket transport reads at once
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(TEST_LIMIT):
            await body()

    asyncio.run(bounded())


def collect_unfinished_server_handshakes() -> None:
    """asyncio's TLS server never hands its handler a connection whose handshake has not
    finished (one the client gave up on), and leaves it open when the loop ends: on a busy
    machine it is garbage then, and its ResourceWarning would land in a later test. It is
    the test server's, not the client's: collected here, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@contextlib.asynccontextmanager
async def serving(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """A loopback asyncio server running `handler` per connection; yields its port and, on
    the way out, waits for every handler (they must end) and closes it."""
    tasks: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
        await asyncio.gather(*tasks)
    finally:
        server.close()
        await server.wait_closed()


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def endpoint(port: int, *, secure: bool = False, host: str = "127.0.0.1") -> Endpoint:
    return Endpoint("wss" if secure else "ws", host, port, "/", secure)


async def read_all(stream: anyio.abc.ByteStream, max_bytes: int = MAX_READ) -> bytes:
    received = bytearray()
    with contextlib.suppress(anyio.EndOfStream):
        while True:
            received += await stream.receive(max_bytes)
    return bytes(received)


# --------------------------------------------------------------------------- bytes


def test_bytes_cut_anywhere_come_out_whole_in_order_and_within_max_bytes() -> None:
    sent = payload(300_000)
    rng = random.Random(11)
    cuts = sorted(rng.sample(range(1, len(sent)), 400))

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for start, end in zip([0, *cuts], [*cuts, len(sent)], strict=True):
            writer.write(sent[start:end])
            await writer.drain()
            if rng.random() < 0.3:
                await asyncio.sleep(0)  # some pieces alone on the wire, some together

    async def body() -> None:
        async with serving(server) as port:
            stream = await open_protocol_stream("127.0.0.1", port)
            received = bytearray()
            sizes = random.Random(5)
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    max_bytes = sizes.choice([1, 7, 100, 4096, 65536, 1 << 20])
                    data = await stream.receive(max_bytes)
                    assert 0 < len(data) <= max_bytes
                    received += data
            assert bytes(received) == sent
            with pytest.raises(anyio.EndOfStream):  # and again: the end stays the end
                await stream.receive()
            await stream.aclose()

    run(body)


def test_everything_that_piled_up_comes_in_one_receive() -> None:
    pieces = [payload(1000 + n, seed=n) for n in range(12)]
    sent_all = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.001)  # separate segments, separate data_received calls
        sent_all.set()
        await reader.read()  # until the client closes

    async def body() -> None:
        async with serving(server) as port:
            stream = await open_protocol_stream("127.0.0.1", port)
            await sent_all.wait()
            expected = b"".join(pieces)
            await eventually(lambda: stream.buffered == len(expected))
            assert await stream.receive(1 << 20) == expected
            assert stream.buffered == 0
            await stream.aclose()

    run(body)


def test_eof_after_data_then_the_half_open_stream_still_sends() -> None:
    heard: list[bytes] = []

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"last words")
        writer.write_eof()
        heard.append(await reader.read())  # until the client's side ends too

    async def body() -> None:
        async with serving(server) as port:
            stream = await open_protocol_stream("127.0.0.1", port)
            assert await read_all(stream) == b"last words"
            await stream.send(b"goodbye")  # e.g. our answer to the server's close frame
            await stream.send_eof()
            await eventually(lambda: bool(heard))
            await stream.aclose()
        assert heard == [b"goodbye"]

    run(body)


def test_a_reset_is_a_broken_stream_for_receive_and_send() -> None:
    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # linger 0: RST, not FIN

    async def body() -> None:
        async with serving(server) as port:
            stream = await open_protocol_stream("127.0.0.1", port)
            with pytest.raises(anyio.BrokenResourceError) as received:
                await stream.receive()
            assert isinstance(received.value.__cause__, ConnectionResetError)
            with pytest.raises(anyio.BrokenResourceError):
                await stream.send(b"anyone there?")
            # Both are errors the client treats as a lost connection (and reconnects).
            assert isinstance(received.value, AnyioBackend.transport_errors)
            await stream.aclose()
            with pytest.raises(anyio.ClosedResourceError):
                await stream.receive()

    run(body)


def test_a_stalled_reader_stops_reading_within_bounds_and_resumes_losing_nothing() -> None:
    sent = payload(8 << 20)
    high, low = 128 * 1024, 32 * 1024

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for start in range(0, len(sent), 65536):
            writer.write(sent[start : start + 65536])
            await writer.drain()

    async def body() -> None:
        async with serving(server) as port:
            stream = await open_protocol_stream("127.0.0.1", port, high_water=high, low_water=low)
            await eventually(lambda: stream.reading_paused)  # nobody reads: it stops reading
            assert high <= stream.buffered < high + MAX_READ
            await asyncio.sleep(0.2)  # a stalled consumer: the socket is not read meanwhile
            assert stream.reading_paused
            assert high <= stream.buffered < high + MAX_READ
            received, resumed = bytearray(), False
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    received += await stream.receive(16 * 1024)
                    assert stream.buffered < high + MAX_READ
                    resumed = resumed or not stream.reading_paused
                    await asyncio.sleep(0)
            assert resumed
            assert bytes(received) == sent
            await stream.aclose()

    run(body)


def test_a_cancelled_receive_loses_nothing_and_the_stream_reads_on() -> None:
    go = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        writer.write(b"later")
        await writer.drain()

    async def body() -> None:
        async with serving(server) as port:
            stream = await open_protocol_stream("127.0.0.1", port)
            with anyio.move_on_after(0.05) as scope:  # nothing comes: the wait is cancelled
                await stream.receive()
            assert scope.cancelled_caught
            with anyio.CancelScope() as scope:
                scope.cancel()  # cancelled before it waits at all
                await stream.receive()
            go.set()
            assert await read_all(stream) == b"later"
            await stream.aclose()

    run(body)


def test_bad_water_marks_are_refused() -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="water"):
            await open_protocol_stream("127.0.0.1", 9, high_water=10, low_water=20)

    run(body)


# --------------------------------------------------------------------------- which stream


def test_the_default_transport_picks_the_protocol_stream_on_asyncio_only() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(5))
        await writer.drain()

    async def open_and_echo(port: int, transport: weex_anyio.Transport) -> Any:
        stream = await transport(endpoint(port))
        try:
            await stream.send(b"hello")
            assert await stream.receive() == b"hello"
        finally:
            await stream.aclose()
        return stream

    async def body() -> None:
        async with serving(echo) as port:
            default = await open_and_echo(port, weex_anyio.tcp_transport())
            assert isinstance(default, ProtocolStream)
            anyio_stream = await open_and_echo(
                port, weex_anyio.tcp_transport(asyncio_protocol=False)
            )
            assert not isinstance(anyio_stream, ProtocolStream)
            assert isinstance(anyio_stream, anyio.abc.SocketStream)

    run(body)

    def trio_side(port: int) -> None:
        async def main() -> None:
            stream = await open_and_echo(port, weex_anyio.tcp_transport())
            assert isinstance(stream, anyio.abc.SocketStream)  # anyio's own, on trio

        anyio.run(main, backend="trio")

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve_once() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(5))

        thread = threading.Thread(target=serve_once)
        thread.start()
        try:
            trio_side(port)
        finally:
            thread.join(TEST_LIMIT)


# --------------------------------------------------------------------------- TLS and proxies


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def tls_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


async def echo_round_trip(stream: anyio.abc.ByteStream, data: bytes) -> bytes:
    await stream.send(data)
    received = bytearray()
    while len(received) < len(data):
        received += await stream.receive()
    return bytes(received)


def test_tls_verifies_the_certificate_and_the_name_and_carries_large_data(ca: trustme.CA) -> None:
    big = payload(3 << 20)

    async def body() -> None:
        async with serving(tls_echo, tls_server_context(ca, "127.0.0.1")) as port:
            stream = await weex_anyio.tcp_transport(trusting(ca))(endpoint(port, secure=True))
            assert isinstance(stream, ProtocolStream)
            assert await echo_round_trip(stream, big) == big
            await stream.aclose()
            # Verification is on by default: a certificate from an unknown CA is refused.
            with pytest.raises(ssl.SSLCertVerificationError):
                await weex_anyio.tcp_transport()(endpoint(port, secure=True))
        async with serving(tls_echo, tls_server_context(ca, "exchange.test")) as port:
            # A trusted CA but another name: refused too.
            with pytest.raises(ssl.SSLCertVerificationError):
                await weex_anyio.tcp_transport(trusting(ca))(endpoint(port, secure=True))

    run(body)
    collect_unfinished_server_handshakes()  # the refused handshakes' server sides


def test_a_tls_peer_dropping_tcp_without_close_notify_is_an_ordinary_end(ca: trustme.CA) -> None:
    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        raw = writer.get_extra_info("socket")
        raw.shutdown(socket.SHUT_RDWR)  # TCP ends under TLS: no close_notify

    async def body() -> None:
        async with serving(server, tls_server_context(ca, "127.0.0.1")) as port:
            stream = await weex_anyio.tcp_transport(trusting(ca))(endpoint(port, secure=True))
            received = bytearray()
            ended: BaseException | None = None
            while ended is None:
                try:
                    received += await stream.receive()
                except AnyioBackend.transport_errors as exc:
                    ended = exc
            assert received == b"bye"
            await stream.aclose()

    run(body)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with pproxy_server(tmp_path_factory.mktemp("proxy")) as running:
        yield running


@pytest.mark.parametrize("scheme", ["http", "socks5", "socks5h"])
def test_tls_inside_a_proxy_tunnel_on_the_protocol_stream(
    ca: trustme.CA, proxy: RunningProxy, scheme: str
) -> None:
    routes = ProxyRoutes.choose(proxy.url(scheme))
    data = payload(600_000)

    async def body() -> None:
        async with serving(tls_echo, tls_server_context(ca, "127.0.0.1")) as port:
            transport = weex_anyio.tcp_transport(trusting(ca), routes)
            stream = await transport(endpoint(port, secure=True))
            assert isinstance(stream, ProtocolStream)
            assert await echo_round_trip(stream, data) == data
            await stream.aclose()
            assert proxy.tunnels_to(port) >= 1
            with pytest.raises(ssl.SSLCertVerificationError):  # the exchange's name is checked
                await weex_anyio.tcp_transport(None, routes)(endpoint(port, secure=True))
            plain = await weex_anyio.tcp_transport(None, routes)(endpoint(port))
            assert isinstance(plain, ProtocolStream)
            await plain.aclose()

    run(body)
    collect_unfinished_server_handshakes()  # the refused and plain ones' server sides


# --------------------------------------------------------------------------- the whole client

DIALECTS = pytest.mark.parametrize("api", BOTH_DIALECTS)
V3_TICKER = {
    "priceChange": "p",
    "priceChangePercent": "P",
    "trades": "n",
    "size": "v",
    "value": "q",
    "high": "h",
    "low": "l",
    "lastPrice": "c",
    "markPrice": "m",
}
"""v2 ticker fields -> v3's (docs/protocol-v3.md §5.1)."""


def btc_ticker(api: str, last_price: str, **extra: str) -> tuple[str, dict[str, Any]]:
    """BTCUSDT's ticker channel as `api` names it on the wire, and a push of it (`extra` fields
    added to its row), in `api`'s words."""
    v2 = ticker_push("cmt_btcusdt", last_price)
    (row,) = v2["data"]
    if api == "v2":
        row.update(extra)
        return "ticker.cmt_btcusdt", v2
    v3_row: dict[str, Any] = {
        V3_TICKER[key]: value for key, value in row.items() if key in V3_TICKER
    }
    v3_row["n"] = int(v3_row["n"])  # a count is a number on v3
    v3_row.update(extra)
    return "BTCUSDT@ticker", {"e": "ticker", "E": 1747203188148, "s": "BTCUSDT", "d": [v3_row]}


@DIALECTS
def test_a_frame_larger_than_every_buffer_reaches_the_consumer_intact(api: str) -> None:
    padding = "x" * (3 << 20)  # > RECEIVE_SIZE and > the high-water mark
    channel, big = btc_ticker(api, "101.5", padding=padding)

    async def body() -> None:
        async with ThirdPartyWeexServer(api=api) as server:
            server.max_frame_size = 8 << 20
            server.on_subscribe[channel] = [big, btc_ticker(api, "102")[1]]
            config = WeexConfig(public_url=server.public_url)
            async with (
                weex_anyio.WeexWebSocketClient(config, max_message_size=8 << 20) as client,
                contextlib.aclosing(client.stream_tickers("BTCUSDT")) as tickers,
            ):
                first = await anext(tickers)
                second = await anext(tickers)
            assert first.raw == json.dumps(big)  # the server's text, to the last byte
            assert first.frame["data"][0]["padding"] == padding
            assert str(first.record.last_price) == "101.5"
            assert str(second.record.last_price) == "102"

    run(body)


@DIALECTS
def test_closing_while_the_server_floods_and_never_answers_ends_by_the_close_timeout(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The close deadline fires although a `receive` never has to wait for data (without the
    receive loop handling a due timer first, the client would end only when `disconnect`
    gives up on it and cancels: no close is reported then)."""
    caplog.set_level(logging.INFO, logger="weex_ws")
    closes: list[tuple[int, str | None]] = []
    push = json.dumps(btc_ticker(api, "1")[1])

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = ServerPeer()
        while peer.request is None:
            peer.receive(await reader.read(65536))
        writer.write(peer.accept())
        frames = b"".join(peer.text(push) for _ in range(200))

        async def read_client() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    peer.receive(data)
                    closes.extend(peer.closes[len(closes) :])

        reading = asyncio.create_task(read_client())
        with contextlib.suppress(ConnectionError):
            while not reading.done():  # pushes without pause, our close never answered
                writer.write(frames)
                await writer.drain()
        await reading

    async def body() -> None:
        async with serving(server) as port:
            config = WeexConfig(public_url=f"ws://127.0.0.1:{port}/{api}/ws/public")
            client = weex_anyio.WeexWebSocketClient(config, ping_interval=None)
            async with client, contextlib.aclosing(client.stream_tickers("BTCUSDT")) as tickers:
                for _ in range(500):
                    await anext(tickers)
            assert not client.is_connected

    run(body)
    assert closes and closes[0][0] == 1000
    reported = [r for r in caplog.records if getattr(r, "weex_event", None) == "closed"]
    assert [r.getMessage() for r in reported] == [
        "public connection closed: close handshake timed out"
    ]


@DIALECTS
def test_the_client_on_the_protocol_stream_through_a_stalled_sync_handler(api: str) -> None:
    """A sync handler that blocks the loop stops all reading; nothing is lost or reordered."""
    channel, _ = btc_ticker(api, "0")
    pushes = [btc_ticker(api, str(100 + n))[1] for n in range(3000)]
    seen: list[str] = []

    async def body() -> None:
        async with ThirdPartyWeexServer(api=api) as server:
            server.on_subscribe[channel] = list(pushes)
            config = WeexConfig(public_url=server.public_url)
            done = anyio.Event()

            def on_ticker(message: weex_anyio.WebSocketMessage[Any]) -> None:
                seen.append(message.data["last"])
                if len(seen) % 500 == 0:
                    time.sleep(0.02)  # the whole loop stops, the transport included
                if len(seen) == len(pushes):
                    done.set()

            async with weex_anyio.WeexWebSocketClient(config, buffer_size=10) as client:
                client.add_message_handler("ticker.cmt_btcusdt", on_ticker)
                await client.subscribe("ticker.cmt_btcusdt")
                await done.wait()

    run(body)
    assert seen == [str(100 + n) for n in range(3000)]
