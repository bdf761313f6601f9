"""How many pushes the simulator's full feed generates: `weex-ws simulate --contracts N` in a
child process, drained by raw WebSocket readers in this one.

    .venv/bin/python bench/bench_simulator.py [--contracts 300] [--seconds 10] [--flood]

The readers subscribe ticker, depth15 and trades of every contract (100 channels per
connection, as WEEX allows) and only count frames, so the figure is the simulator's, not a
client's. Without `--flood` the feed runs at its WEEX-like rates and the report says what
share of one core the simulator needed for them; with `--flood` it pushes as fast as the
readers drain, and the rate is the most it can generate (one core for the simulator, the
other for the readers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import struct
import subprocess
import sys
import time

CHANNELS_PER_CONNECTION = 100


def _masked(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    return header + mask + body


async def _reader(port: int, channels: list[str], counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /v2/ws/public HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nUser-Agent: bench-simulator\r\n\r\n"
        ).encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    for channel in channels:
        writer.write(_masked(json.dumps({"event": "subscribe", "channel": channel})))
    await writer.drain()
    buffer = b""
    slot = len(counts)
    counts.append(0)
    while True:
        data = await reader.read(1 << 20)
        if not data:
            return
        buffer += data
        at, frames = 0, 0
        while len(buffer) - at >= 2:
            length = buffer[at + 1] & 0x7F
            head = 2
            if length == 126:
                if len(buffer) - at < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, at + 2)
                head = 4
            elif length == 127:
                if len(buffer) - at < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, at + 2)
                head = 10
            if len(buffer) - at < head + length:
                break
            at += head + length
            frames += 1
        buffer = buffer[at:]
        counts[slot] += frames


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(port: int, symbols: list[str], pid: int, options: argparse.Namespace) -> None:
    channels = [f"{kind}.{symbol}" for symbol in symbols for kind in ("ticker", "depth", "trades")]
    channels = [f"{c}.15" if c.startswith("depth.") else c for c in channels]
    counts: list[int] = []
    groups = [
        channels[start : start + CHANNELS_PER_CONNECTION]
        for start in range(0, len(channels), CHANNELS_PER_CONNECTION)
    ]
    tasks = [asyncio.create_task(_reader(port, group, counts)) for group in groups]
    await asyncio.sleep(options.warmup)
    first, cpu, start = sum(counts), _cpu_seconds(pid), time.perf_counter()
    mine = time.process_time()
    await asyncio.sleep(options.seconds)
    pushes, used = sum(counts) - first, _cpu_seconds(pid) - cpu
    elapsed = time.perf_counter() - start
    reading = time.process_time() - mine
    for task in tasks:
        task.cancel()
    mode = "flood" if options.flood else "WEEX-like rates"
    print(
        f"{options.contracts} contracts x (ticker + depth15 + trades), {mode}, "
        f"{len(groups)} connections: {pushes / elapsed:,.0f} pushes/s; the simulator used "
        f"{used / elapsed:.0%} of a core ({used / max(pushes, 1) * 1e6:.1f} us per push), "
        f"the readers {reading / elapsed:.0%}; load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--flood", action="store_true")
    options = parser.parse_args()
    command = [sys.executable, "-m", "weex_anyio", "simulate", "--port", "0"]
    command += ["--contracts", str(options.contracts)] + (["--flood"] if options.flood else [])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert process.stdout is not None
        port = symbols = None
        while port is None or symbols is None:
            line = process.stdout.readline()
            if not line:
                raise SystemExit("the simulator did not start")
            if match := re.search(r"listening on [^ ]+:(\d+)", line):
                port = int(match.group(1))
            if line.strip().startswith("symbols"):
                symbols = line.split()[1:]
        asyncio.run(measure(port, symbols, process.pid, options))
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
