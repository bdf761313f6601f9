"""Receive throughput against peer libraries, in one run: ratios to `websockets` + orjson.

    .venv/bin/python bench/bench_peers.py [--messages 100000] [--repeat 5]

The loopback server of `bench_throughput.py` (a child process) streams N ticker pushes of 289
bytes to each client in turn. Every client connects, subscribes, decodes each push with orjson
and reads its last price, the way its own documentation would:

* `websockets` (asyncio): `recv()` + `orjson.loads`, the yardstick;
* `picows` (the `bench` extra): a listener's `on_ws_frame` + `orjson.loads`;
* `weex_anyio` on asyncio through `async for` over `stream_tickers`, reading
  `message.data.get("last")` as the README does;
* `weex_anyio` through a sync handler (`add_message_handler`), same read;
* `weex_trio` through `async for`, same read;
* `trio-websocket` with `get_message()` + `orjson.loads`, when installed;
* with `--anyio-streams`, both `weex_anyio` cases again on anyio's socket streams
  (`tcp_transport(asyncio_protocol=False)`) instead of the default `asyncio.Protocol` reader.

Repetitions alternate between the clients (so a noisy neighbour hurts all of them alike) and
the median of each is reported, as messages per second and as a ratio to the yardstick.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from collections.abc import Callable
from typing import Any

import orjson
import trio
import websockets.asyncio.client
from bench_throughput import SYMBOL, Counter, start_server, ticker_frame, weex_config

import weex_anyio
import weex_trio
from weex_proto.events import WebSocketMessage

CHANNEL = f"ticker.{SYMBOL}"
SUBSCRIBE = json.dumps({"event": "subscribe", "channel": CHANNEL})


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/v2/ws/public"


async def run_websockets(port: int, messages: int) -> float:
    counter = Counter(messages)
    async with websockets.asyncio.client.connect(
        url(port), ping_interval=None, max_size=None, compression=None
    ) as ws:
        await ws.send(SUBSCRIBE)
        await ws.recv()  # the ack
        while True:
            frame = orjson.loads(await ws.recv())
            assert frame["data"][0].get("lastPrice")
            if counter.tick():
                break
    return counter.rate


async def run_picows(port: int, messages: int) -> float:
    import picows

    counter = Counter(messages)
    done = asyncio.get_running_loop().create_future()

    class Listener(picows.WSListener):
        acked = False

        def on_ws_connected(self, transport: Any) -> None:
            transport.send(picows.WSMsgType.TEXT, SUBSCRIBE.encode())

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type != picows.WSMsgType.TEXT:
                return
            decoded = orjson.loads(frame.get_payload_as_bytes())
            if not self.acked:
                self.acked = True
                return
            assert decoded["data"][0].get("lastPrice")
            if counter.tick() and not done.done():
                done.set_result(None)

    transport, _ = await picows.ws_connect(Listener, url(port))
    try:
        await done
    finally:
        transport.send_close(picows.WSCloseCode.OK)
        transport.disconnect()
        await transport.wait_disconnected()
    return counter.rate


def anyio_client(port: int, protocol: bool) -> weex_anyio.WeexWebSocketClient:
    """The client under test: the default transport, or anyio's streams (`protocol` False)."""
    transport = None if protocol else weex_anyio.tcp_transport(asyncio_protocol=False)
    return weex_anyio.WeexWebSocketClient(
        weex_config(port), ping_interval=None, transport=transport
    )


async def run_weex_anyio_stream(port: int, messages: int, protocol: bool = True) -> float:
    counter = Counter(messages)
    async with anyio_client(port, protocol) as client:
        async for message in client.stream_tickers([SYMBOL]):
            assert message.data.get("last")
            if counter.tick():
                break
    return counter.rate


async def run_weex_anyio_handler(port: int, messages: int, protocol: bool = True) -> float:
    counter = Counter(messages)
    done = asyncio.Event()

    def on_ticker(message: WebSocketMessage[Any]) -> None:
        assert message.data.get("last")
        if counter.tick():
            done.set()

    async with anyio_client(port, protocol) as client:
        client.add_message_handler(CHANNEL, on_ticker)
        await client.subscribe(CHANNEL)
        await done.wait()
    return counter.rate


async def run_weex_trio(port: int, messages: int) -> float:
    counter = Counter(messages)
    async with weex_trio.WeexWebSocketClient(weex_config(port), ping_interval=None) as client:
        async for message in client.stream_tickers([SYMBOL]):
            assert message.data.get("last")
            if counter.tick():
                break
    return counter.rate


async def run_trio_websocket(port: int, messages: int) -> float:
    import trio_websocket

    counter = Counter(messages)
    async with trio_websocket.open_websocket_url(url(port)) as ws:
        await ws.send_message(SUBSCRIBE)
        await ws.get_message()  # the ack
        while True:
            frame = orjson.loads(await ws.get_message())
            assert frame["data"][0].get("lastPrice")
            if counter.tick():
                break
    return counter.rate


def available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--anyio-streams", action="store_true", help="also weex_anyio on anyio's socket streams"
    )
    args = parser.parse_args()
    messages, repeat = args.messages, args.repeat

    server, port = start_server(messages)

    def on_asyncio(run: Callable[[int, int], Any]) -> Callable[[], float]:
        return lambda: asyncio.run(run(port, messages))

    def on_trio(run: Callable[[int, int], Any]) -> Callable[[], float]:
        return lambda: trio.run(run, port, messages)

    cases: list[tuple[str, Callable[[], float]]] = [
        ("websockets + orjson", on_asyncio(run_websockets)),
        ("weex_anyio: async for", on_asyncio(run_weex_anyio_stream)),
        ("weex_anyio: sync handler", on_asyncio(run_weex_anyio_handler)),
        ("weex_trio: async for", on_trio(run_weex_trio)),
    ]
    if args.anyio_streams:
        cases += [
            (
                "weex_anyio: async for, anyio",
                lambda: asyncio.run(run_weex_anyio_stream(port, messages, False)),
            ),
            (
                "weex_anyio: handler, anyio",
                lambda: asyncio.run(run_weex_anyio_handler(port, messages, False)),
            ),
        ]
    if available("picows"):
        cases.insert(1, ("picows + orjson", on_asyncio(run_picows)))
    if available("trio_websocket"):
        cases.append(("trio-websocket + orjson", on_trio(run_trio_websocket)))
    rates: dict[str, list[float]] = {name: [] for name, _ in cases}
    try:
        for _ in range(repeat):  # alternate: every client once per round
            for name, run in cases:
                rates[name].append(run())
    finally:
        server.terminate()
        server.join()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = medians["websockets + orjson"]
    print(
        f"{messages:,} ticker pushes of {len(ticker_frame(0))} bytes, "
        f"median of {repeat} alternating runs"
    )
    for name, rate in medians.items():
        spread = f"{min(rates[name]):,.0f}..{max(rates[name]):,.0f}"
        print(f"  {name:<30} {rate:>10,.0f} msg/s  {rate / baseline:5.2f}x   ({spread})")
    trio_ws = medians.get("trio-websocket + orjson")
    if trio_ws:
        print(f"  weex_trio / trio-websocket: {medians['weex_trio: async for'] / trio_ws:.2f}x")


if __name__ == "__main__":
    main()
