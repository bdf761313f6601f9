"""Custom transports: the public interface, and the two examples on every adapter.

* `examples/memory_transport.py`: the client reaches the simulator through an in-memory stream
  pair. The config's URLs name a port where nothing listens, so any socket use would fail.
  Public and private streams flow, and a dropped connection is reopened through the transport.
* `examples/tee_transport.py`: around the default TCP transport, every received byte goes to a
  file. The simulator serves the connection through a listener of ours that records every byte
  the server writes; the file must equal that record exactly.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

import weex_anyio
import weex_trio
from examples import memory_transport, tee_transport
from tests.adapters import BOTH_DIALECTS, Harness, eventually, on_every_adapter, take
from weex_anyio.cli.replay import ReplayTransport
from weex_anyio.testing import memory_stream_pair
from weex_proto.messages import Order, Ticker

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOWHERE = "ws://127.0.0.1:9"  # the discard port: nothing listens there in the test machines


def _replay_is_a_transport() -> weex_anyio.Transport:
    """Checked by mypy: the replay plugs in through the same interface."""
    return ReplayTransport([])


def memory_transport_for(h: Harness) -> Any:
    if h.adapter.client_class is weex_trio.WeexWebSocketClient:
        return memory_transport.trio_transport(h.server)
    return memory_transport.anyio_transport(h.server)


@on_every_adapter(virtual_time=True, tick_interval=0.05, dialects=BOTH_DIALECTS)
async def test_memory_transport_serves_public_and_private_streams_without_sockets(
    h: Harness,
) -> None:
    api = h.server.api
    config = h.config(
        public_url=f"{NOWHERE}/{api}/ws/public", private_url=f"{NOWHERE}/{api}/ws/private"
    )
    updates: list[object] = []
    async with (
        h.client(config, transport=memory_transport_for(h), max_retries=3) as client,
        contextlib.aclosing(client.stream_tickers("BTCUSDT")) as tickers,
        contextlib.aclosing(client.stream_orders()) as orders,
        anyio.create_task_group() as tg,
    ):

        async def read_orders() -> None:
            async for message in orders:  # the stream subscribes when first read
                updates.append(message.record)

        tg.start_soon(read_orders)
        first = await take(tickers)
        assert isinstance(first.record, Ticker)
        await h.server.wait_for_subscription("orders")
        await h.server.simulate_trade("cmt_btcusdt", "BUY", "0.01")
        await eventually(lambda: bool(updates))
        assert all(isinstance(u, Order) for u in updates)
        assert h.server.stats.accepted == 2  # both handshakes went over memory
        await h.server.drop_connections()
        while not (message := await take(tickers)).gap:
            pass
        assert message.channel == "ticker.cmt_btcusdt"
        await eventually(lambda: h.server.stats.accepted >= 4)
        tg.cancel_scope.cancel()


class RecordingStream(anyio.abc.ByteStream):
    """The server's side of a TCP connection, keeping a copy of every byte it sends."""

    def __init__(self, inner: anyio.abc.ByteStream, sent: bytearray) -> None:
        self._inner, self.sent = inner, sent

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._inner.send(item)
        self.sent += item

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_tee_transport_file_holds_exactly_the_bytes_the_server_sent(
    h: Harness, tmp_path: Path
) -> None:
    sent = bytearray()
    capture = tmp_path / "received.bin"

    async def serve(stream: anyio.abc.SocketStream) -> None:
        await h.server.serve_stream(RecordingStream(stream, sent))

    is_trio = h.adapter.client_class is weex_trio.WeexWebSocketClient
    transport = tee_transport.trio_tee(capture) if is_trio else tee_transport.anyio_tee(capture)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        config = h.config(public_url=f"ws://127.0.0.1:{port}/{h.server.api}/ws/public")
        async with (
            h.client(config, transport=transport) as client,
            contextlib.aclosing(client.stream_tickers(["BTCUSDT", "ETHUSDT"])) as tickers,
        ):
            for _ in range(10):
                await take(tickers)
        await h.server.wait_for_connections(0, exact=True)
        tg.cancel_scope.cancel()
    received = capture.read_bytes()
    assert received.startswith(b"HTTP/1.1 101 ")
    marker = b'"s":"BTCUSDT"' if h.server.api == "v3" else b'"channel":"ticker.cmt_btcusdt"'
    assert marker in received  # the server's own frames, in its dialect
    assert received == bytes(sent)


def test_tcp_transports_and_interfaces_are_public() -> None:
    for package in (weex_anyio, weex_trio):
        for name in ("Transport", "TransportStream", "Endpoint", "tcp_transport"):
            assert name in package.__all__, (package.__name__, name)
        assert package.Transport.__doc__ and "connect_timeout" in package.Transport.__doc__
    assert "EndOfStream" in (weex_anyio.TransportStream.__doc__ or "")
    assert 'b""' in (weex_trio.TransportStream.__doc__ or "")


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
def test_memory_stream_pair_behaves_like_a_socket_pair(anyio_backend: str) -> None:
    async def main() -> None:
        a, b = memory_stream_pair()
        await a.send(b"hello world")
        assert await b.receive(5) == b"hello"
        assert await b.receive() == b" world"
        await b.send(b"back")
        assert await a.receive() == b"back"
        await a.send(b"last")
        await a.send_eof()
        assert await b.receive() == b"last"  # what was sent before the FIN still arrives
        with pytest.raises(anyio.EndOfStream):
            await b.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await a.send(b"after our own EOF")
        c, d = memory_stream_pair()
        await d.aclose()
        with pytest.raises(anyio.BrokenResourceError):
            await c.send(b"nobody reads this")
        with pytest.raises(anyio.EndOfStream):
            await c.receive()
        for stream in (a, b, c):
            await stream.aclose()

    anyio.run(main, backend=anyio_backend)


@pytest.mark.parametrize(
    "args", [["memory_transport.py"], ["memory_transport.py", "--trio"], ["tee_transport.py"]]
)
def test_example_scripts_run(args: list[str], tmp_path: Path) -> None:
    extra = [str(tmp_path / "capture.bin")] if args[0] == "tee_transport.py" else []
    result = subprocess.run(  # noqa: S603 - our own scripts
        [sys.executable, str(EXAMPLES / args[0]), *args[1:], *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "tickers; " in result.stdout or "over an in-memory transport: " in result.stdout
    if extra:
        assert (tmp_path / "capture.bin").read_bytes().startswith(b"HTTP/1.1 101 ")
