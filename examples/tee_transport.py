"""A transport that tees every byte the client receives to a file, around the default one.

Shows how to wrap a transport: call the inner one (here the default TCP/TLS transport,
`tcp_transport()`), and return a stream that forwards every call to the stream it got,
looking at the bytes on the way. The file then holds exactly what came off the wire, HTTP
upgrade response and WebSocket frames included: a capture for debugging, or a corpus seed.

`anyio_tee(path)` wraps `weex_anyio`'s stream (`receive`/`send`/`aclose`), `trio_tee(path)`
wraps `weex_trio`'s (`receive_some`/`send_all`/`aclose`). Each connection appends to the
file. Writes are plain blocking file writes, fine for a capture; buffer them (or hand them to
a thread) on a hot feed.

Run:
    python examples/tee_transport.py capture.bin       # 5 tickers from the simulator
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import anyio.abc
import trio

import weex_anyio
import weex_trio
from weex_anyio.testing import SimulatedWeexServer
from weex_proto.config import Endpoint


class AnyioTeeStream(anyio.abc.ByteStream):
    def __init__(self, inner: anyio.abc.ByteStream, capture: BinaryIO) -> None:
        self._inner = inner
        self._capture = capture

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self._inner.receive(max_bytes)  # EndOfStream and errors pass through
        self._capture.write(data)
        return data

    async def send(self, item: bytes) -> None:
        await self._inner.send(item)

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._capture.close()


def anyio_tee(path: Path, inner: weex_anyio.Transport | None = None) -> weex_anyio.Transport:
    """A `weex_anyio` transport: `inner` (default: TCP, verified TLS for wss://), teed."""
    opener = inner if inner is not None else weex_anyio.tcp_transport()

    async def open_stream(endpoint: Endpoint) -> anyio.abc.ByteStream:
        stream = await opener(endpoint)
        assert isinstance(stream, anyio.abc.ByteStream)
        return AnyioTeeStream(stream, path.open("ab"))

    return open_stream


class TrioTeeStream(trio.abc.Stream):
    def __init__(self, inner: trio.abc.Stream, capture: BinaryIO) -> None:
        self._inner = inner
        self._capture = capture

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self._inner.receive_some(max_bytes)  # b"" at the end: nothing written
        self._capture.write(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._capture.close()


def trio_tee(path: Path, inner: weex_trio.Transport | None = None) -> weex_trio.Transport:
    """A `weex_trio` transport: `inner` (default: TCP, verified TLS for wss://), teed."""
    opener = inner if inner is not None else weex_trio.tcp_transport()

    async def open_stream(endpoint: Endpoint) -> trio.abc.Stream:
        stream = await opener(endpoint)
        assert isinstance(stream, trio.abc.Stream)
        return TrioTeeStream(stream, path.open("ab"))

    return open_stream


async def capture(path: Path, count: int = 5) -> int:
    """Stream `count` tickers from the simulator over TCP, teeing them to `path`."""
    async with SimulatedWeexServer(tick_interval=0.02, trade_interval=None) as server:
        config = weex_anyio.WeexConfig(public_url=server.public_url, user_agent="tee-example")
        received = 0
        async with weex_anyio.WeexWebSocketClient(config, transport=anyio_tee(path)) as client:
            async for _ in client.stream_tickers("BTCUSDT"):
                received += 1
                if received >= count:
                    break
        return received


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="file to append the received bytes to")
    args = parser.parse_args(argv)
    received = anyio.run(capture, args.path)
    print(f"{received} tickers; {args.path.stat().st_size} bytes received, teed to {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
