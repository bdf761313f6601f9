"""An in-memory transport for tests: the client talks to the simulator with no socket at all.

Shows the shape of a custom transport (`transport=`): an async callable that gets the
`Endpoint` being opened and returns a connected byte stream. Here each call makes an in-memory
stream pair, hands one end to an in-process peer (the simulator's connection handler, through
`SimulatedWeexServer.attach`) and returns the other. Nothing listens, nothing can collide on a
port, and trio's virtual clock sees no I/O at all.

* `anyio_transport(server)` is for `weex_anyio` (on asyncio, or on trio through anyio): the
  stream is an `anyio.abc.ByteStream`.
* `trio_transport(server)` is for `weex_trio`: the stream must be a trio stream, so the anyio
  end is wrapped, which shows exactly what trio's interface expects (`b""` at end of stream,
  trio's own `BrokenResourceError`/`ClosedResourceError` for a broken one).

The simulator's URLs still go into the config: the endpoint's path says public or private, and
the host and port are never dialled.

Run:
    python examples/memory_transport.py            # asyncio, 5 tickers over memory
    python examples/memory_transport.py --trio     # the same with weex_trio
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import anyio.abc
import trio

import weex_anyio
import weex_trio
from weex_anyio.testing import SimulatedWeexServer, memory_stream_pair
from weex_proto.config import Endpoint


def anyio_transport(server: SimulatedWeexServer) -> weex_anyio.Transport:
    """A `weex_anyio` transport whose every connection is served by `server`, in memory."""

    async def open_stream(endpoint: Endpoint) -> anyio.abc.ByteStream:
        client_end, server_end = memory_stream_pair()
        server.attach(server_end)
        return client_end

    return open_stream


class TrioStream(trio.abc.Stream):
    """An anyio byte stream seen as a `trio.abc.Stream` (run inside `trio.run`)."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self._inner = inner

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            return await self._inner.receive(max_bytes or 65536)
        except anyio.EndOfStream:
            return b""  # trio's end of stream
        except anyio.BrokenResourceError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        except anyio.ClosedResourceError as exc:
            raise trio.ClosedResourceError(str(exc)) from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._inner.send(bytes(data))
        except anyio.BrokenResourceError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        except anyio.ClosedResourceError as exc:
            raise trio.ClosedResourceError(str(exc)) from exc

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await self._inner.aclose()


def trio_transport(server: SimulatedWeexServer) -> weex_trio.Transport:
    """A `weex_trio` transport whose every connection is served by `server`, in memory."""

    async def open_stream(endpoint: Endpoint) -> trio.abc.Stream:
        client_end, server_end = memory_stream_pair()
        server.attach(server_end)
        return TrioStream(client_end)

    return open_stream


async def last_prices(use_trio: bool, count: int = 5) -> list[str]:
    """`count` BTC ticker prices from a simulator reached only through memory."""
    async with SimulatedWeexServer(tick_interval=0.02, trade_interval=None) as server:
        config = weex_anyio.WeexConfig(public_url=server.public_url, user_agent="memory-example")
        client: weex_anyio.WeexWebSocketClient | weex_trio.WeexWebSocketClient
        if use_trio:
            client = weex_trio.WeexWebSocketClient(config, transport=trio_transport(server))
        else:
            client = weex_anyio.WeexWebSocketClient(config, transport=anyio_transport(server))
        prices: list[str] = []
        async with client:
            async for message in client.stream_tickers("BTCUSDT"):
                prices.append(str(message.record.last_price))
                if len(prices) >= count:
                    break
        return prices


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trio", action="store_true", help="use weex_trio under trio.run")
    args = parser.parse_args(argv)
    prices = trio.run(last_prices, True) if args.trio else anyio.run(last_prices, False)
    print("BTC last prices over an in-memory transport:", ", ".join(prices))
    return 0


if __name__ == "__main__":
    sys.exit(main())
