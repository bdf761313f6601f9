"""End-to-end receive throughput: ticker pushes per second from a local server to a consumer.

    .venv/bin/python bench/bench_throughput.py [--messages 200000] [--repeat 3]

A server in a child process (so it does not compete with the clients for the GIL) answers the
WebSocket upgrade, waits for the client's first message (the subscribe), then writes N small,
pre-encoded ticker frames as fast as the loopback socket takes them. Each client does the same
work: connect, subscribe, receive every frame, decode its JSON and hand it to a consumer.

* a bare `websockets` asyncio client: `recv()` + `json.loads` in a loop, the yardstick (and,
  with orjson installed, the same loop with `orjson.loads`);
* `weex_anyio` on asyncio: `stream_tickers` (framing, JSON, routing, a bounded stream buffer),
  with its defaults: the frame fast path and orjson when installed;
* `weex_trio`: the same client on native trio;
* `weex_anyio` with the standard-library `json`, with the fast path on and off (off: wsproto
  parses every frame, as before the fast path existed).

The best of `--repeat` runs is reported for each, as messages per second and as a ratio to the
bare `websockets` loop. Loopback only; bounded by the message count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any

import attrs
import trio
import websockets.asyncio.client

import weex_anyio
import weex_trio
from weex_proto.config import WeexConfig

try:
    import orjson
except ImportError:  # the `fast` extra is optional
    orjson = None  # type: ignore[assignment]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BATCH = 512  # frames per socket write
SYMBOL = "cmt_btcusdt"


# --------------------------------------------------------------------------- the server


def ticker_frame(n: int) -> bytes:
    """One unmasked text frame holding a ticker push shaped like the reference's example."""
    push = {
        "event": "payload",
        "channel": f"ticker.{SYMBOL}",
        "data": [
            {
                "symbol": SYMBOL,
                "priceChange": "-2055.6",
                "priceChangePercent": "-0.019637",
                "trades": str(28941 + n),
                "size": "176145.66489",
                "value": "18115688543.1",
                "high": "104692.2",
                "low": "100709.6",
                "lastPrice": f"{102623.9 + n % 100 / 10:.1f}",
                "markPrice": "102623.9",
            }
        ],
    }
    return text_frame(json.dumps(push, separators=(",", ":")).encode())


def text_frame(payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        return struct.pack("!BB", 0x81, length) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, length) + payload
    return struct.pack("!BBQ", 0x81, 127, length) + payload


def read_until(sock: socket.socket, buffer: bytearray, marker: bytes) -> int:
    while (index := buffer.find(marker)) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("client went away")
        buffer += chunk
    return index + len(marker)


def read_client_frame(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    """One masked client frame: (opcode, payload)."""

    def need(n: int) -> None:
        while len(buffer) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("client went away")
            buffer.extend(chunk)

    need(2)
    opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
    if length == 126:
        need(4)
        (length,) = struct.unpack_from("!H", buffer, 2)
        offset = 4
    elif length == 127:
        need(10)
        (length,) = struct.unpack_from("!Q", buffer, 2)
        offset = 10
    need(offset + 4 + length)
    mask = buffer[offset : offset + 4]
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(buffer[offset + 4 : offset + 4 + length]))
    del buffer[: offset + 4 + length]
    return opcode, body


def serve_one(sock: socket.socket, blob: bytes) -> None:
    buffer = bytearray()
    end = read_until(sock, buffer, b"\r\n\r\n")
    request = bytes(buffer[:end]).decode("latin-1")
    del buffer[:end]
    key = next(
        line.split(":", 1)[1].strip()
        for line in request.split("\r\n")
        if line.lower().startswith("sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()  # noqa: S324
    sock.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode()
    )
    read_client_frame(sock, buffer)  # the subscribe
    ack = json.dumps({"event": "subscribed", "channel": f"ticker.{SYMBOL}"}).encode()
    sock.sendall(text_frame(ack) + blob)
    while True:  # until the client closes: answer its close frame, ignore anything else
        opcode, body = read_client_frame(sock, buffer)
        if opcode == 0x8:
            sock.sendall(struct.pack("!BB", 0x88, len(body[:2])) + body[:2])
            return


def start_server(messages: int) -> tuple[multiprocessing.Process, int]:
    """`server_main` in a child process; returns it (terminate it when done) and its port."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=server_main, args=(sender, messages), daemon=True)
    server.start()
    port: int = receiver.recv()
    return server, port


def server_main(port_out: multiprocessing.connection.Connection, messages: int) -> None:
    frames = [ticker_frame(n) for n in range(BATCH)]
    blob = b"".join(frames[n % BATCH] for n in range(messages))
    listener = socket.create_server(("127.0.0.1", 0))
    port_out.send(listener.getsockname()[1])
    while True:
        sock, _ = listener.accept()
        with sock, contextlib.suppress(ConnectionError, OSError):
            serve_one(sock, blob)


# --------------------------------------------------------------------------- the clients


@attrs.frozen
class Result:
    name: str
    rate: float


class Counter:
    """Counts messages and times the stretch from the first to the last."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def tick(self) -> bool:
        """Count one message; True when all have arrived."""
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
        if self.count == self.expected:
            self.last = time.perf_counter()
            return True
        return False

    @property
    def rate(self) -> float:
        return (self.count - 1) / (self.last - self.first)


def weex_config(port: int) -> WeexConfig:
    return WeexConfig(public_url=f"ws://127.0.0.1:{port}/v2/ws/public")


JsonLoads = Callable[[str], Any]


async def run_weex_anyio(
    port: int, messages: int, *, fast_path: bool = True, json_loads: JsonLoads | None = None
) -> float:
    counter = Counter(messages)
    client = weex_anyio.WeexWebSocketClient(weex_config(port), ping_interval=None)
    if not fast_path or json_loads is not None:
        # Not public API: the connection options, changed before the first session exists.
        hub = client._hub
        hub.options = attrs.evolve(
            hub.options, fast_path=fast_path, json_loads=json_loads or hub.options.json_loads
        )
    async with client:
        async for message in client.stream_tickers([SYMBOL]):
            assert message.frame["channel"] == f"ticker.{SYMBOL}"
            if counter.tick():
                break
    return counter.rate


async def run_weex_trio(port: int, messages: int) -> float:
    counter = Counter(messages)
    async with weex_trio.WeexWebSocketClient(weex_config(port), ping_interval=None) as client:
        async for message in client.stream_tickers([SYMBOL]):
            assert message.frame["channel"] == f"ticker.{SYMBOL}"
            if counter.tick():
                break
    return counter.rate


async def run_websockets(
    port: int, messages: int, *, loads: Callable[[str | bytes], Any] = json.loads
) -> float:
    counter = Counter(messages)
    url = f"ws://127.0.0.1:{port}/v2/ws/public"
    async with websockets.asyncio.client.connect(
        url, ping_interval=None, max_size=None, compression=None
    ) as ws:
        await ws.send(json.dumps({"event": "subscribe", "channel": f"ticker.{SYMBOL}"}))
        loads(await ws.recv())  # the ack
        while True:
            frame = loads(await ws.recv())
            assert frame["channel"] == f"ticker.{SYMBOL}"
            if counter.tick():
                break
    return counter.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    messages, repeat = args.messages, args.repeat

    server, port = start_server(messages)

    def asyncio_best(run: Callable[[], Coroutine[Any, Any, float]]) -> float:
        return max(asyncio.run(run()) for _ in range(repeat))

    cases: list[tuple[str, Callable[[], float]]] = [
        (
            "websockets: recv + json.loads",
            lambda: asyncio_best(lambda: run_websockets(port, messages)),
        ),
        ("weex_anyio on asyncio", lambda: asyncio_best(lambda: run_weex_anyio(port, messages))),
        ("weex_trio", lambda: max(trio.run(run_weex_trio, port, messages) for _ in range(repeat))),
        (
            "weex_anyio, fast path, json.loads",
            lambda: asyncio_best(lambda: run_weex_anyio(port, messages, json_loads=json.loads)),
        ),
        (
            "weex_anyio, wsproto only, json.loads",
            lambda: asyncio_best(
                lambda: run_weex_anyio(port, messages, fast_path=False, json_loads=json.loads)
            ),
        ),
    ]
    if orjson is not None:
        cases.append(
            (
                "websockets: recv + orjson.loads",
                lambda: asyncio_best(lambda: run_websockets(port, messages, loads=orjson.loads)),
            )
        )
    try:
        results = [Result(name, run()) for name, run in cases]
    finally:
        server.terminate()
    baseline = results[0].rate
    print(f"{messages:,} ticker pushes of {len(ticker_frame(0))} bytes, best of {repeat}")
    for result in results:
        print(f"  {result.name:<38} {result.rate:>10,.0f} msg/s  {result.rate / baseline:5.2f}x")


if __name__ == "__main__":
    main()
