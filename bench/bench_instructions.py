"""Instructions per received message, counted by callgrind: `bench_peers.py` without the noise.

    .venv/bin/python bench/bench_instructions.py [--messages 20000]

Wall-clock ratios on a shared 2-core machine move by ±20% from run to run. Instruction counts
do not: each client of `bench_peers.py` runs under `valgrind --tool=callgrind` (the loopback
server outside it, in this process's child), once with N and once with 3N ticker pushes; the
difference divided by 2N is what one more message costs that client, start-up and connect
cancelled out. Reported per client, and as a ratio to `websockets` + orjson.

Instructions are not time: C code such as orjson runs more instructions per cycle than the
interpreter does, and waiting (a scheduler that sleeps between reads) costs time but no
instructions, so a client whose count is low but whose `bench_peers.py` rate is also low is
waiting, not working. Needs `valgrind` on PATH; each client takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from bench_peers import (
    available,
    run_picows,
    run_trio_websocket,
    run_websockets,
    run_weex_anyio_handler,
    run_weex_anyio_stream,
    run_weex_trio,
)
from bench_throughput import start_server, ticker_frame
from callgrind import instructions, require_valgrind

CLIENTS: dict[str, tuple[Callable[[int, int], Any], str]] = {
    "websockets + orjson": (run_websockets, "asyncio"),
    "picows + orjson": (run_picows, "asyncio"),
    "weex_anyio: async for": (run_weex_anyio_stream, "asyncio"),
    "weex_anyio: sync handler": (run_weex_anyio_handler, "asyncio"),
    "weex_trio: async for": (run_weex_trio, "trio"),
    "trio-websocket + orjson": (run_trio_websocket, "trio"),
}
NEEDS = {"picows + orjson": "picows", "trio-websocket + orjson": "trio_websocket"}


def run_client(name: str, port: int, messages: int) -> None:
    """The client side, inside valgrind: receive `messages` pushes from the server at `port`."""
    run, loop = CLIENTS[name]
    if loop == "trio":
        trio.run(run, port, messages)
    else:
        asyncio.run(run(port, messages))


def client_instructions(name: str, port: int, messages: int) -> int:
    """Instructions the client process ran, start to exit, for `messages` pushes."""
    arguments = [__file__, "--client", name, "--port", str(port), "--messages", str(messages)]
    bench = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([bench, os.environ.get("PYTHONPATH", "")])}
    return instructions(arguments, name, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        run_client(args.client, args.port, args.messages)
        return
    require_valgrind("bench_instructions.py")
    names = [name for name in CLIENTS if available(NEEDS.get(name, "asyncio"))]
    small, large = args.messages, 3 * args.messages
    per_message: dict[str, float] = {}
    for name in names:
        counts = []
        for messages in (small, large):
            server, port = start_server(messages)
            try:
                counts.append(client_instructions(name, port, messages))
            finally:
                server.terminate()
                server.join()
        per_message[name] = (counts[1] - counts[0]) / (large - small)
        print(f"  {name:<28} {per_message[name]:>9,.0f} instructions/msg", flush=True)
    baseline = per_message["websockets + orjson"]
    size = len(ticker_frame(0))
    print(f"ticker pushes of {size} bytes; ratio = websockets+orjson's count / the client's")
    for name, count in per_message.items():
        print(f"  {name:<28} {count:>9,.0f}   {baseline / count:5.2f}x")


if __name__ == "__main__":
    main()
