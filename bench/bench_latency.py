"""Server-to-consumer latency at a steady rate: p50/p90/p99 for each client, side by side.

    .venv/bin/python bench/bench_latency.py [--rate 5000] [--messages 20000] [--repeat 3]

The loopback server of `bench_throughput.py` (a child process) paces ticker pushes at `--rate`
a second (not a flood: every client keeps up), each stamped with `time.monotonic_ns()` just before
it is written. CLOCK_MONOTONIC is one clock for the whole machine, so the consumer's own
`time.monotonic_ns()` when the message reaches it, minus the stamp, is the time the push took
from the server's `send` to the consumer's code: kernel, event loop, framing, JSON, routing and
(for a stream) the buffer and task switch.

* `websockets` (asyncio): `recv()` + `orjson.loads`, the yardstick;
* `weex_anyio` on asyncio through `async for` over `stream_tickers`, and through a sync handler
  (`add_message_handler`), each reading `message.data.get("last")`;
* `weex_trio` through `async for`;
* with `--anyio-streams`, both `weex_anyio` cases again on anyio's socket streams
  (`tcp_transport(asyncio_protocol=False)`) instead of the default `asyncio.Protocol` reader.

The first `--warmup` pushes of each run are not counted. Repetitions alternate between clients;
the percentiles are over every counted push of every repetition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import orjson
import trio
import websockets.asyncio.client
from bench_throughput import SYMBOL, start_server, weex_config

import weex_anyio
import weex_trio
from weex_proto.events import WebSocketMessage

CHANNEL = f"ticker.{SYMBOL}"
SUBSCRIBE = json.dumps({"event": "subscribe", "channel": CHANNEL})
SLACK = 30.0  # seconds past the paced duration after which a run gives up on missing pushes


class Latencies:
    """Receive time minus send stamp, in nanoseconds, for each push after the warm-up."""

    def __init__(self, messages: int, warmup: int) -> None:
        self.messages = messages
        self.warmup = warmup
        self.seen = 0
        self.samples: list[int] = []

    def record(self, stamp: int) -> bool:
        """Count one push stamped `stamp`; True when the last one has arrived."""
        now = time.monotonic_ns()
        self.seen += 1
        if self.seen > self.warmup:
            self.samples.append(now - stamp)
        return self.seen >= self.messages


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/v2/ws/public"


async def run_websockets(port: int, latencies: Latencies) -> None:
    async with websockets.asyncio.client.connect(
        url(port), ping_interval=None, max_size=None, compression=None
    ) as ws:
        await ws.send(SUBSCRIBE)
        await ws.recv()  # the ack
        while True:
            frame = orjson.loads(await ws.recv())
            assert frame["data"][0].get("lastPrice")
            if latencies.record(frame["ts"]):
                break


def anyio_client(port: int, protocol: bool) -> weex_anyio.WeexWebSocketClient:
    transport = None if protocol else weex_anyio.tcp_transport(asyncio_protocol=False)
    return weex_anyio.WeexWebSocketClient(
        weex_config(port), ping_interval=None, transport=transport
    )


async def run_weex_anyio_stream(port: int, latencies: Latencies, protocol: bool = True) -> None:
    async with anyio_client(port, protocol) as client:
        async for message in client.stream_tickers([SYMBOL]):
            assert message.data.get("last")
            if latencies.record(message.frame["ts"]):
                break


async def run_weex_anyio_handler(port: int, latencies: Latencies, protocol: bool = True) -> None:
    done = anyio.Event()

    def on_ticker(message: WebSocketMessage[Any]) -> None:
        assert message.data.get("last")
        if latencies.record(message.frame["ts"]):
            done.set()

    async with anyio_client(port, protocol) as client:
        client.add_message_handler(CHANNEL, on_ticker)
        await client.subscribe(CHANNEL)
        await done.wait()


async def run_weex_trio(port: int, latencies: Latencies) -> None:
    async with weex_trio.WeexWebSocketClient(weex_config(port), ping_interval=None) as client:
        async for message in client.stream_tickers([SYMBOL]):
            assert message.data.get("last")
            if latencies.record(message.frame["ts"]):
                break


def percentile(ordered: list[int], fraction: float) -> float:
    """The `fraction` quantile of sorted samples (nearest rank), in microseconds."""
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="pushes per second")
    parser.add_argument("--messages", type=int, default=20_000, help="pushes per run")
    parser.add_argument("--warmup", type=int, default=1000, help="pushes not counted per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--anyio-streams", action="store_true", help="also weex_anyio on anyio's socket streams"
    )
    args = parser.parse_args()
    messages, rate = args.messages, args.rate
    limit = messages / rate + SLACK

    Run = Callable[[int, Latencies], Any]

    def on_asyncio(run: Run) -> Callable[[Latencies], None]:
        async def bounded(latencies: Latencies) -> None:
            async with asyncio.timeout(limit):
                await run(port, latencies)

        return lambda latencies: asyncio.run(bounded(latencies))

    def on_trio(run: Run) -> Callable[[Latencies], None]:
        async def bounded(latencies: Latencies) -> None:
            with trio.fail_after(limit):
                await run(port, latencies)

        return lambda latencies: trio.run(bounded, latencies)

    cases: list[tuple[str, Callable[[Latencies], None]]] = [
        ("websockets + orjson", on_asyncio(run_websockets)),
        ("weex_anyio: async for", on_asyncio(run_weex_anyio_stream)),
        ("weex_anyio: sync handler", on_asyncio(run_weex_anyio_handler)),
        ("weex_trio: async for", on_trio(run_weex_trio)),
    ]
    if args.anyio_streams:
        cases += [
            (
                "weex_anyio: async for, anyio",
                on_asyncio(lambda p, lat: run_weex_anyio_stream(p, lat, False)),
            ),
            (
                "weex_anyio: handler, anyio",
                on_asyncio(lambda p, lat: run_weex_anyio_handler(p, lat, False)),
            ),
        ]
    samples: dict[str, list[int]] = {name: [] for name, _ in cases}
    server, port = start_server(messages, rate=rate)
    try:
        for _ in range(args.repeat):  # alternate: every client once per round
            for name, run in cases:
                latencies = Latencies(messages, args.warmup)
                run(latencies)
                samples[name] += latencies.samples
    finally:
        server.terminate()
        server.join()
    print(
        f"{messages:,} stamped ticker pushes at {rate:,.0f}/s per run, first {args.warmup:,} "
        f"not counted, {args.repeat} alternating runs; server send -> consumer, microseconds"
    )
    print(f"  {'client':<30} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>9}")
    for name, values in samples.items():
        ordered = sorted(values)
        p50, p90, p99 = (percentile(ordered, q) for q in (0.50, 0.90, 0.99))
        print(f"  {name:<30} {p50:>8.0f} {p90:>8.0f} {p99:>8.0f} {ordered[-1] / 1000:>9.0f}")


if __name__ == "__main__":
    main()
