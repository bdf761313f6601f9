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

* `weex_anyio` on anyio's socket streams (`tcp_transport(asyncio_protocol=False)`) rather than
  the default `asyncio.Protocol` reader.

Repetitions alternate between the clients (`--repeat` rounds); the median of each is reported, as
messages per second and as a ratio to the bare `websockets` loop (the ratio of the bests in
brackets). Loopback only; bounded by the message count. The same server also paces stamped
pushes for `bench_latency.py` and floods without end for `bench_memory.py`.
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
import statistics
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
    return text_frame(json.dumps(ticker_push(n), separators=(",", ":")).encode())


def ticker_push(n: int) -> dict[str, Any]:
    """The `n`th ticker push (trades and last price vary with `n`)."""
    return {
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


def serve_one(sock: socket.socket, send_pushes: Callable[[socket.socket], None]) -> None:
    """Answer the upgrade and the subscribe, `send_pushes`, then wait for the client's close."""
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
    sock.sendall(text_frame(ack))
    send_pushes(sock)
    while True:  # until the client closes: answer its close frame, ignore anything else
        opcode, body = read_client_frame(sock, buffer)
        if opcode == 0x8:
            sock.sendall(struct.pack("!BB", 0x88, len(body[:2])) + body[:2])
            return


@attrs.frozen
class Pushes:
    """What the server sends each client after the subscribe ack.

    `rate` None: `messages` ticker pushes as fast as the socket takes them (512 distinct frames,
    repeated, so memory does not grow with `messages`). With a `rate` (pushes per second): paced,
    each push stamped with `time.monotonic_ns()` as `"ts"` beside `"data"` just before it is
    written (CLOCK_MONOTONIC is one clock for every process on the machine). With `end_marker`,
    one more ticker push follows, with `"end": true`, for a client that cannot count on getting
    every push (a slow consumer whose buffer drops the oldest).
    """

    messages: int
    rate: float | None = None
    end_marker: bool = False

    def send(self, sock: socket.socket) -> None:
        if self.rate is None:
            batch = b"".join(ticker_frame(n) for n in range(BATCH))
            whole, rest = divmod(self.messages, BATCH)
            for _ in range(whole):
                sock.sendall(batch)
            sock.sendall(b"".join(ticker_frame(n) for n in range(rest)))
        else:
            send_paced(sock, self.messages, self.rate)
        if self.end_marker:
            sock.sendall(text_frame(ticker_payload(0, end=True)))


def ticker_payload(n: int, *, ts: int | None = None, end: bool = False) -> bytes:
    push = ticker_push(n)
    if ts is not None:
        push["ts"] = ts
    if end:
        push["end"] = True
    return json.dumps(push, separators=(",", ":")).encode()


def send_paced(sock: socket.socket, messages: int, rate: float) -> None:
    """`messages` stamped pushes at `rate` a second: each one's send time is its schedule (or
    later, when the server fell behind); the server sleeps between them, never spins."""
    head, tail = ticker_payload(0)[:-1].split(b',"data":', 1)
    start = time.monotonic()
    for n in range(messages):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stamp = str(time.monotonic_ns()).encode()
        sock.sendall(text_frame(head + b',"ts":' + stamp + b',"data":' + tail + b"}"))


def start_server(
    messages: int, *, rate: float | None = None, end_marker: bool = False
) -> tuple[multiprocessing.Process, int]:
    """`server_main` in a child process; returns it (terminate it when done) and its port."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    pushes = Pushes(messages, rate, end_marker)
    server = multiprocessing.Process(target=server_main, args=(sender, pushes), daemon=True)
    server.start()
    port: int = receiver.recv()
    return server, port


def server_main(port_out: multiprocessing.connection.Connection, pushes: Pushes) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port_out.send(listener.getsockname()[1])
    while True:
        sock, _ = listener.accept()
        # As a real server does: each paced push leaves at once, not held back by Nagle's
        # algorithm until the client's (delayed) ACK of the one before.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with sock, contextlib.suppress(ConnectionError, OSError):
            serve_one(sock, pushes.send)


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
    port: int,
    messages: int,
    *,
    fast_path: bool = True,
    json_loads: JsonLoads | None = None,
    asyncio_protocol: bool = True,
) -> float:
    counter = Counter(messages)
    transport = weex_anyio.tcp_transport(asyncio_protocol=False) if not asyncio_protocol else None
    client = weex_anyio.WeexWebSocketClient(
        weex_config(port), ping_interval=None, transport=transport
    )
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

    def on_asyncio(run: Callable[[], Coroutine[Any, Any, float]]) -> Callable[[], float]:
        return lambda: asyncio.run(run())

    cases: list[tuple[str, Callable[[], float]]] = [
        ("websockets: recv + json.loads", on_asyncio(lambda: run_websockets(port, messages))),
        ("weex_anyio on asyncio", on_asyncio(lambda: run_weex_anyio(port, messages))),
        (
            "weex_anyio, anyio's socket streams",
            on_asyncio(lambda: run_weex_anyio(port, messages, asyncio_protocol=False)),
        ),
        ("weex_trio", lambda: trio.run(run_weex_trio, port, messages)),
        (
            "weex_anyio, fast path, json.loads",
            on_asyncio(lambda: run_weex_anyio(port, messages, json_loads=json.loads)),
        ),
        (
            "weex_anyio, wsproto only, json.loads",
            on_asyncio(
                lambda: run_weex_anyio(port, messages, fast_path=False, json_loads=json.loads)
            ),
        ),
    ]
    if orjson is not None:
        cases.append(
            (
                "websockets: recv + orjson.loads",
                on_asyncio(lambda: run_websockets(port, messages, loads=orjson.loads)),
            )
        )
    rates: dict[str, list[float]] = {name: [] for name, _ in cases}
    try:
        for _ in range(repeat):  # alternate: every client once per round
            for name, run in cases:
                rates[name].append(run())
    finally:
        server.terminate()
        server.join()
    results = [Result(name, statistics.median(values)) for name, values in rates.items()]
    baseline = results[0].rate
    print(
        f"{messages:,} ticker pushes of {len(ticker_frame(0))} bytes, "
        f"median of {repeat} alternating runs (best in brackets)"
    )
    for result in results:
        best = max(rates[result.name])
        print(
            f"  {result.name:<38} {result.rate:>10,.0f} msg/s  {result.rate / baseline:5.2f}x"
            f"  ({best / max(rates[results[0].name]):.2f}x)"
        )


if __name__ == "__main__":
    main()
