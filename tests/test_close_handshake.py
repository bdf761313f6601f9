"""Close handshakes (RFC 6455 §5.5.1, §7) against a server we did not write, on every adapter.

The `websockets` server (tests/thirdparty_server.py) records the Close frame it *received*, so
these tests see what the client really put on the wire before its socket closed: the answer to
a server's Close, the Close of a connection the client fails (1009, 1007, 1002), and the Close
of the client's own clean shutdown.

`websockets.asyncio` needs an asyncio loop, and the trio variants run on trio, so the server
runs on its own asyncio loop in a thread (`ServerThread`); test bodies reach it with `call`.
Real time throughout: a virtual clock would jump while the server thread works. Every test
runs on WEEX's v2 and v3 (the server's paths, and so the client's dialect).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import pytest
from websockets.exceptions import ConnectionClosed

from tests.adapters import ADAPTERS, BOTH_DIALECTS, TEST_LIMIT, Adapter, Client
from tests.thirdparty_server import Peer, ThirdPartyWeexServer, eventually
from weex_anyio import WeexConfig

T = TypeVar("T")

USER_AGENT = "weex-ws-close-tests/1.0"


class ServerThread:
    """A `ThirdPartyWeexServer` on its own asyncio loop in a background thread."""

    def __init__(self, api: str = "v2") -> None:
        self.server = ThirdPartyWeexServer(api=api)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="websockets-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(TEST_LIMIT)
        if self._failure is not None or self._loop is None:
            self._thread.join(TEST_LIMIT)
            raise RuntimeError("the websockets server did not start") from self._failure
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(TEST_LIMIT)
        assert not self._thread.is_alive(), "the websockets server thread did not stop"

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by __enter__ (or lost if it failed later)
            self._failure = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.server:
            self._ready.set()
            await self._stop.wait()

    async def call(self, work: Callable[[ThirdPartyWeexServer], Awaitable[T]]) -> T:
        """Run `work(server)` on the server's loop and wait for it from the client's loop."""
        assert self._loop is not None

        async def job() -> T:
            return await work(self.server)

        # In an empty context: the caller's (e.g. sniffio's "trio") must not leak into the
        # server's loop, where anyio would then take asyncio for trio.
        submit = asyncio.run_coroutine_threadsafe
        future = contextvars.Context().run(submit, job(), self._loop)
        try:
            return await anyio.to_thread.run_sync(future.result, TEST_LIMIT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def client(self, adapter: Adapter, **options: Any) -> Client:
        config = WeexConfig(
            public_url=self.server.public_url,
            private_url=self.server.private_url,
            user_agent=USER_AGENT,
        )
        settings: dict[str, Any] = {
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "connect_timeout": 5.0,
            "ping_interval": None,
        }
        settings.update(options)
        return adapter.client_class(config, **settings)


@pytest.fixture(params=BOTH_DIALECTS)
def server_thread(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    with ServerThread(request.param) as running:
        yield running


def run(adapter: Adapter, body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        with anyio.fail_after(TEST_LIMIT):
            await body()

    adapter.run(main)


async def first_peer(server: ThirdPartyWeexServer) -> Peer:
    await eventually(lambda: bool(server.peers))
    return server.peers[0]


def close_received(peer: Peer) -> tuple[int, str] | None:
    """The Close frame the server received on this connection (None: it got none)."""
    frame = peer.connection.protocol.close_rcvd
    return None if frame is None else (frame.code, frame.reason)


async def close_seen_by_server(server_thread: ServerThread) -> tuple[int, str] | None:
    """Wait until the server's first connection has ended; the Close it got, if any."""

    async def ended(server: ThirdPartyWeexServer) -> tuple[int, str] | None:
        peer = await first_peer(server)
        await eventually(lambda: peer.closed)
        return close_received(peer)

    return await server_thread.call(ended)


def closes_logged(caplog: pytest.LogCaptureFixture) -> list[tuple[Any, Any]]:
    """(code, initiator) of every connection end the client logged."""
    return [
        (record.code, record.initiator)  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "weex_event", None) == "closed"
    ]


# --------------------------------------------------------------------------- the server closes


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
def test_server_close_is_answered_with_our_close(
    adapter: Adapter, server_thread: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="weex_ws")

    async def body() -> None:
        async with server_thread.client(adapter) as client:
            await client.connect()

            async def going_away(server: ThirdPartyWeexServer) -> None:
                peer = await first_peer(server)
                await peer.close(1001, "maintenance")  # waits for our answer (or 1 s)

            await server_thread.call(going_away)
            assert await close_seen_by_server(server_thread) == (1001, "maintenance")
            await eventually(lambda: client.is_connected and client.connection_attempts == 2)

    run(adapter, body)
    assert (1001, "remote") in closes_logged(caplog)


# --------------------------------------------------------------------------- we fail the connection


def _raw(first: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes([first, len(payload)]) + payload


async def _send_too_big_text(peer: Peer) -> None:
    await peer.connection.send("x" * 2000)


async def _send_too_big_emoji(peer: Peer) -> None:
    await peer.connection.send("\N{GRINNING FACE}" * 300)  # 300 characters, 1200 bytes


async def _send_too_big_fragments(peer: Peer) -> None:
    with contextlib.suppress(ConnectionClosed):  # the client may hang up before the last one
        await peer.connection.send(["y" * 100] * 50)  # 5000 bytes in 50 frames


async def _send_invalid_utf8(peer: Peer) -> None:
    await peer.connection.send(b'{"a":"\xc3\x28"}', text=True)


async def _send_invalid_utf8_fragments(peer: Peer) -> None:
    peer.connection.transport.write(_raw(0x01, b'{"a":"') + _raw(0x80, b'\xff\xfe"}'))


async def _send_reserved_bits(peer: Peer) -> None:
    peer.connection.transport.write(_raw(0xC1, b"{}"))  # RSV1 without a negotiated extension


FAILURES = {
    "too big": (_send_too_big_text, 1009),
    "too big in bytes, not characters": (_send_too_big_emoji, 1009),
    "too big across fragments": (_send_too_big_fragments, 1009),
    "invalid utf-8": (_send_invalid_utf8, 1007),
    "invalid utf-8 in a fragment": (_send_invalid_utf8_fragments, 1007),
    "reserved bits": (_send_reserved_bits, 1002),
}


@pytest.mark.parametrize("failure", list(FAILURES), ids=str)
@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
def test_a_connection_we_fail_sends_its_close_code_first(
    adapter: Adapter, failure: str, server_thread: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="weex_ws")
    send_bad_frame, code = FAILURES[failure]

    async def body() -> None:
        async with server_thread.client(adapter, max_message_size=1000) as client:
            await client.connect()

            async def misbehave(server: ThirdPartyWeexServer) -> None:
                await send_bad_frame(await first_peer(server))

            await server_thread.call(misbehave)
            received = await close_seen_by_server(server_thread)
            assert received is not None, "the client closed the socket without a Close frame"
            assert received[0] == code
            await eventually(lambda: client.is_connected and client.connection_attempts == 2)

    run(adapter, body)
    assert (code, "protocol_error") in closes_logged(caplog)


# --------------------------------------------------------------------------- we close


@pytest.mark.parametrize("how", ["close", "disconnect"])
@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
def test_our_close_sends_1000_and_waits_for_the_servers_answer(
    adapter: Adapter, how: str, server_thread: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="weex_ws")

    async def body() -> None:
        async with server_thread.client(adapter) as client:
            await client.connect()
            await client.close() if how == "close" else await client.disconnect()
            assert not client.is_connected
            assert await close_seen_by_server(server_thread) == (1000, "client closed")

            async def server_answered(server: ThirdPartyWeexServer) -> bool:
                protocol = server.peers[0].connection.protocol
                return protocol.close_rcvd_then_sent is True and protocol.close_sent is not None

            assert await server_thread.call(server_answered)  # ours came first, then theirs

    run(adapter, body)
    # The handshake completed (our Close, then theirs), rather than timing out.
    assert closes_logged(caplog) == [(1000, "local")]
