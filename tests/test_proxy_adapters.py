"""Streams through a real proxy (pproxy on loopback), on every adapter.

HTTP CONNECT, SOCKS5 and SOCKS5h, with and without a login, for the public and the private
endpoint, `ws://` and `wss://` (TLS inside the tunnel, checked against the exchange's name);
the environment's proxy and NO_PROXY; and the failures: a refused login is a typed error that
is not retried, a proxy that is down is retried and named in the final error. Replies pproxy
never sends (a 20 KiB header, a SOCKS5 "no acceptable methods") come from `scripted_proxy`.
The proxy's credentials must show up nowhere: not in logs, errors or reprs.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import anyio.abc
import attrs
import pytest
import trustme

from tests.adapters import BOTH_DIALECTS, Client, Harness, eventually, on_every_adapter, take
from tests.proxyserver import RunningProxy, free_port, pproxy_server
from tests.test_adapters import BTC, causes, generator, server_context_signed_by, tls_front
from weex_proto.errors import (
    ProxyAuthenticationError,
    ProxyConnectionError,
    ProxyProtocolError,
    ReconnectExhaustedError,
)

LOGIN = "trader:s3cr%40t-pw"  # percent-encoded '@' in the password
PASSWORD = "s3cr@t-pw"
SECRETS = (PASSWORD, "s3cr%40t-pw", "dHJhZGVy")  # also base64 of the user name, to be safe


@pytest.fixture(scope="module")
def open_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with pproxy_server(tmp_path_factory.mktemp("proxy")) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def login_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with pproxy_server(tmp_path_factory.mktemp("proxy"), login=LOGIN.replace("%40", "@")) as proxy:
        yield proxy


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_public_stream_through_every_kind_of_proxy(
    h: Harness, open_proxy: RunningProxy, login_proxy: RunningProxy
) -> None:
    cases = [
        (proxy, scheme)
        for proxy in (open_proxy, login_proxy)
        for scheme in ("http", "socks5", "socks5h")
    ]
    for number, (proxy, scheme) in enumerate(cases, start=1):
        before = proxy.tunnels_to(h.server.port)
        async with h.client(proxy=proxy.url(scheme, LOGIN if proxy.login else "")) as client:
            stream = generator(client.stream_tickers("BTCUSDT"))
            message = await take(stream)
            await stream.aclose()
        assert message.channel == BTC
        assert h.server.stats.accepted == number
        assert proxy.tunnels_to(h.server.port) == before + 1, (scheme, proxy.login)


@on_every_adapter(trade_interval=None, dialects=BOTH_DIALECTS)
async def test_private_stream_through_proxies(
    h: Harness, open_proxy: RunningProxy, login_proxy: RunningProxy
) -> None:
    received: list[str] = []

    async def consume(client: Client) -> None:
        stream = generator(client.stream_orders())
        received.append((await take(stream)).channel)
        await stream.aclose()

    for proxy in (login_proxy.url("http", LOGIN), open_proxy.url("socks5h")):
        received.clear()
        async with h.client(proxy=proxy) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume, client)
                await h.server.wait_for_subscription("orders")
                await h.server.simulate_trade("cmt_btcusdt", "BUY", "0.001")
            assert [info.private for info in h.server.connections] == [True]
        assert received == ["orders"]
    assert login_proxy.tunnels_to(h.server.port) >= 1
    assert open_proxy.tunnels_to(h.server.port) >= 1


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_wss_through_a_proxy_verifies_the_exchange_certificate(
    h: Harness, login_proxy: RunningProxy
) -> None:
    """TLS runs inside the tunnel and is checked against the exchange's name ("localhost"),
    not the proxy's address (127.0.0.1, which the certificate does not cover)."""
    ca = trustme.CA()
    server_context = server_context_signed_by(ca)
    ca.issue_cert("localhost").configure_cert(server_context)  # replace: localhost only
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async with tls_front(h.server.port, server_context) as (port, failures):
        path = h.server.public_url.split("/", 3)[3]  # the simulator's dialect's path
        config = h.config(public_url=f"wss://localhost:{port}/{path}")
        for scheme in ("http", "socks5h"):
            proxy = login_proxy.url(scheme, LOGIN)
            async with h.client(config, proxy=proxy, ssl_context=trusting) as client:
                stream = generator(client.stream_tickers("BTCUSDT"))
                assert (await take(stream)).channel == BTC
                await stream.aclose()
        assert failures == []

        untrusting = ssl.create_default_context()  # system CAs only
        proxy = login_proxy.url("http", LOGIN)
        async with h.client(config, proxy=proxy, ssl_context=untrusting, max_retries=0) as other:
            with pytest.raises(ReconnectExhaustedError) as caught:
                await other.connect()
        assert any(
            isinstance(error, ssl.SSLCertVerificationError) for error in causes(caught.value)
        )
        await eventually(lambda: len(failures) == 1)
    assert h.server.stats.accepted == 2


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_proxy_from_the_environment_and_no_proxy(
    h: Harness, open_proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ws_proxy", "wss_proxy", "all_proxy", "no_proxy", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", open_proxy.url("http"))
    before = open_proxy.tunnels_to(h.server.port)
    async with h.client() as client:
        stream = generator(client.stream_tickers("BTCUSDT"))
        assert (await take(stream)).channel == BTC
        await stream.aclose()
    assert open_proxy.tunnels_to(h.server.port) == before + 1

    # NO_PROXY wins over a proxy that would not work anyway (nothing listens on its port).
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", f"example.com, 127.0.0.1:{h.server.port}")
    async with h.client(max_retries=0) as client:
        stream = generator(client.stream_tickers("BTCUSDT"))
        assert (await take(stream)).channel == BTC
        await stream.aclose()
    assert open_proxy.tunnels_to(h.server.port) == before + 1
    assert h.server.stats.accepted == 2

    # proxy=False ignores the environment; an explicit proxy= ignores NO_PROXY.
    async with h.client(proxy=False, max_retries=0) as client:
        await client.connect()
    async with h.client(proxy=open_proxy.url("socks5")) as client:
        await client.connect()
    assert open_proxy.tunnels_to(h.server.port) == before + 2


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_a_refused_proxy_login_is_a_typed_error_and_not_retried(
    h: Harness, login_proxy: RunningProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for scheme in ("http", "socks5h"):
        proxy = login_proxy.url(scheme, "trader:wrong-s3cr%40t-pw")
        async with h.client(proxy=proxy, max_retries=5) as client:
            with pytest.raises(ProxyAuthenticationError) as caught:
                await client.connect()
            assert client.connection_attempts == 1
        error = caught.value
        assert not error.retryable
        assert error.proxy == f"{scheme}://127.0.0.1:{login_proxy.port}"
        assert_no_secret(str(error), repr(error), repr(client), repr(client.config))
        assert "wrong" not in str(error)
    # no login at all: HTTP answers 407, this SOCKS5 server hangs up: both are auth failures
    async with h.client(proxy=login_proxy.url("http", ""), max_retries=5) as client:
        with pytest.raises(ProxyAuthenticationError, match="user:password@"):
            await client.connect()
    for scheme in ("socks5", "socks5h"):
        async with h.client(proxy=login_proxy.url(scheme, ""), max_retries=5) as client:
            with pytest.raises(ProxyAuthenticationError, match=f"{scheme}://user:pass@host:port"):
                await client.connect()
            assert client.connection_attempts == 1
    assert h.server.stats.accepted == 0
    assert_no_secret(caplog.text)
    assert "wrong" not in caplog.text


@attrs.define
class ScriptedProxy:
    """A proxy on loopback that answers every connection with `answer` (see `scripted_proxy`)."""

    port: int
    received: list[bytes] = attrs.field(factory=list)
    """What each connection sent it before its answer, one entry per connection."""

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"


Answer = Callable[[anyio.abc.SocketStream, list[bytes]], Awaitable[None]]
"""Reads the client's opening, appends it to the list (before replying), replies."""


@contextlib.asynccontextmanager
async def scripted_proxy(answer: Answer) -> AsyncIterator[ScriptedProxy]:
    """A hostile or picky proxy in the test's own event loop: `answer` reads the client's
    opening and replies; the connection then stays open until the client hangs up, so a client
    that gave up did so on the reply, not on a closed socket."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    proxy = ScriptedProxy(listener.extra(anyio.abc.SocketAttribute.local_port))  # noqa: S610

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            with contextlib.suppress(
                anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError
            ):
                await answer(client, proxy.received)
                async for _ in client:
                    pass

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield proxy
        tg.cancel_scope.cancel()


async def read_until(client: anyio.abc.SocketStream, done: Callable[[bytes], bool]) -> bytes:
    data = b""
    while not done(data):
        data += await client.receive()
    return data


def huge_header_answer(headers: int, reads: int) -> Answer:
    """A `200 OK` with 20 KiB of headers spread over `headers` headers, sent in `reads` writes."""

    async def answer(client: anyio.abc.SocketStream, received: list[bytes]) -> None:
        received.append(await read_until(client, lambda data: b"\r\n\r\n" in data))
        value = b"a" * (20 * 1024 // headers)
        reply = b"HTTP/1.1 200 OK\r\n"
        reply += b"".join(b"X-Pad-%d: %s\r\n" % (number, value) for number in range(headers))
        reply += b"\r\n"
        size = -(-len(reply) // reads)
        for start in range(0, len(reply), size):
            await client.send(reply[start : start + size])

    return answer


def whole_greeting(data: bytes) -> bool:
    """A SOCKS5 method offer is in: version, count, that many methods."""
    return len(data) >= 2 and len(data) >= 2 + data[1]


async def socks_no_acceptable_method(client: anyio.abc.SocketStream, received: list[bytes]) -> None:
    received.append(await read_until(client, whole_greeting))
    await client.send(b"\x05\xff")


async def socks_hang_up_on_greeting(client: anyio.abc.SocketStream, received: list[bytes]) -> None:
    received.append(await read_until(client, whole_greeting))
    await client.aclose()


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_a_reply_with_headers_over_16_kib_is_refused_at_once(h: Harness) -> None:
    for headers, reads in ((1, 1), (1, 5), (400, 1), (400, 7)):
        async with scripted_proxy(huge_header_answer(headers, reads)) as proxy:
            async with h.client(proxy=proxy.url("http"), max_retries=5) as client:
                with pytest.raises(ProxyProtocolError, match="headers over 16384 bytes") as caught:
                    await client.connect()
                assert client.connection_attempts == 1
            assert not caught.value.retryable
            assert len(proxy.received) == 1  # no second connection
            assert proxy.received[0].startswith(b"CONNECT 127.0.0.1:")
    assert h.server.stats.accepted == 0


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_a_socks5_proxy_wanting_a_login_we_lack_is_an_auth_error_at_once(h: Harness) -> None:
    for answer in (socks_hang_up_on_greeting, socks_no_acceptable_method):
        async with scripted_proxy(answer) as proxy:
            for scheme in ("socks5", "socks5h"):
                async with h.client(proxy=proxy.url(scheme), max_retries=5) as client:
                    with pytest.raises(ProxyAuthenticationError) as caught:
                        await client.connect()
                    assert client.connection_attempts == 1
                assert not caught.value.retryable
                assert "requires a username and password" in str(caught.value)
                assert f"{scheme}://user:pass@host:port" in str(caught.value)
            assert proxy.received == [b"\x05\x01\x00"] * 2  # one connection each, no login
    assert h.server.stats.accepted == 0


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_a_proxy_that_is_down_is_retried_then_named_in_the_error(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    for scheme in ("http", "socks5"):
        proxy = f"{scheme}://{LOGIN}@127.0.0.1:{port}"
        async with h.client(proxy=proxy, max_retries=2) as client:
            with pytest.raises(ReconnectExhaustedError) as caught:
                await client.connect()
            assert client.connection_attempts == 3
        last = caught.value.last_error
        assert isinstance(last, ProxyConnectionError)
        assert last.retryable
        assert f"{scheme}://127.0.0.1:{port}" in str(caught.value)
        assert "cannot connect" in str(caught.value)
        assert_no_secret(str(caught.value), repr(caught.value), repr(client))
    assert h.server.stats.accepted == 0
    assert "could not connect" in caplog.text
    assert_no_secret(caplog.text)


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_proxy_credentials_stay_out_of_logs_on_success(
    h: Harness, login_proxy: RunningProxy, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    for scheme in ("http", "socks5"):
        async with h.client(proxy=login_proxy.url(scheme, LOGIN)) as client:
            stream = generator(client.stream_tickers("BTCUSDT"))
            await take(stream)
            await stream.aclose()
            assert_no_secret(repr(client), repr(client.config))
    assert caplog.records  # something was logged, and none of it holds the secret
    assert_no_secret(caplog.text)
