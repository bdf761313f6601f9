"""Memory over a long run: RSS while `weex_anyio` consumes a flood of ticker pushes.

    .venv/bin/python bench/bench_memory.py [--messages 10000000] [--slow-messages 1000000]

The loopback server of `bench_throughput.py` (a child process) floods ticker pushes, then one
marked `"end"`. Three runs, each sampling this process's resident set (`/proc/self/statm`)
every `--sample-every` messages:

* steady: `async for` over `stream_tickers`, reading `message.data.get("last")`, `--messages`
  pushes. Reported: RSS at the first sample, peak and end, and the slope over the second half
  (least squares), which is what says whether memory stays flat;
* slow consumer: the same loop, sleeping 1 ms every 20 messages, so the stream's buffer
  (`buffer_size`, 1024) fills and drops the oldest: memory stays bounded, and the messages lost
  are counted and flagged (`message.gap`);
* stalled handler: a sync handler that blocks the event loop for 50 ms every 10,000 messages,
  so nothing reads the socket meanwhile and TCP holds the server back (the kernel's buffers
  fill; the transport's own high-water mark is for a loop that runs while its reader does not,
  and is checked in tests/test_asyncio_stream.py). Nothing is lost.

The slow consumer samples every 20 messages it gets (it gets few); the others every
`--sample-every` (default: 200 samples a run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from collections.abc import Callable, Coroutine
from typing import Any

import attrs
from bench_throughput import SYMBOL, start_server, weex_config

import weex_anyio
from weex_proto.events import WebSocketMessage

CHANNEL = f"ticker.{SYMBOL}"
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20
FLAT = 1.0
"""MiB the resident set may grow over the second half of a run and still count as flat."""


def rss() -> int:
    """This process's resident set now, in bytes."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE
    except OSError:  # not Linux: the peak so far is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@attrs.define
class Run:
    """One run's samples: (messages consumed so far, RSS)."""

    name: str
    sample_every: int
    samples: list[tuple[int, int]] = attrs.field(factory=list)
    consumed: int = 0
    gaps: int = 0
    seconds: float = 0.0

    def consume(self, message: WebSocketMessage[Any]) -> bool:
        """Count one message; True at the end marker."""
        assert message.data.get("last")
        self.consumed += 1
        self.gaps += message.gap
        if self.consumed % self.sample_every == 0:
            self.samples.append((self.consumed, rss()))
        return bool(message.frame.get("end"))

    def second_half_growth(self) -> float:
        """RSS growth over the second half of the run (least-squares slope x its length), MiB."""
        half = self.samples[len(self.samples) // 2 :]
        if len(half) < 2:
            return 0.0
        xs = [float(x) for x, _ in half]
        ys = [float(y) for _, y in half]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - mean_x) ** 2 for x in xs)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
        return slope * (xs[-1] - xs[0]) / MIB


def client(port: int, **options: Any) -> weex_anyio.WeexWebSocketClient:
    return weex_anyio.WeexWebSocketClient(weex_config(port), ping_interval=None, **options)


async def steady(port: int, run: Run) -> None:
    async with client(port) as weex:
        async for message in weex.stream_tickers([SYMBOL]):
            if run.consume(message):
                break


async def slow_consumer(port: int, run: Run) -> None:
    async with client(port) as weex:
        async for message in weex.stream_tickers([SYMBOL]):
            if run.consume(message):
                break
            if run.consumed % 20 == 0:
                await asyncio.sleep(0.001)


async def stalled_handler(port: int, run: Run) -> None:
    done = asyncio.Event()
    weex = client(port)

    def on_ticker(message: WebSocketMessage[Any]) -> None:
        if run.consume(message):
            done.set()
        if run.consumed % 10_000 == 0:
            time.sleep(0.05)  # blocks the loop: nothing reads the socket meanwhile

    async with weex:
        weex.add_message_handler(CHANNEL, on_ticker)
        await weex.subscribe(CHANNEL)
        await done.wait()


Consumer = Callable[[int, Run], Coroutine[Any, Any, None]]


def measure(name: str, consumer: Consumer, messages: int, sample_every: int) -> Run:
    server, port = start_server(messages, end_marker=True)
    run = Run(name, sample_every)
    try:
        start = time.perf_counter()
        asyncio.run(consumer(port, run))
        run.seconds = time.perf_counter() - start
    finally:
        server.terminate()
        server.join()
    return run


def report(run: Run, sent: int) -> None:
    mib = [value / MIB for _, value in run.samples] or [rss() / MIB]
    growth = run.second_half_growth()
    verdict = "flat" if growth < FLAT else "GROWING"
    print(f"{run.name}: {run.consumed:,} of {sent + 1:,} pushes in {run.seconds:.0f} s")
    print(
        f"  RSS start {mib[0]:.1f} MiB, peak {max(mib):.1f} MiB, end {mib[-1]:.1f} MiB; "
        f"second half {growth:+.2f} MiB ({verdict}, {len(run.samples)} samples)"
    )
    if run.gaps or run.consumed <= sent:
        print(f"  dropped {sent + 1 - run.consumed:,} (oldest first), {run.gaps:,} gaps flagged")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000_000, help="steady run's pushes")
    parser.add_argument("--slow-messages", type=int, default=1_000_000, help="each slow run's")
    parser.add_argument("--sample-every", type=int, default=0, help="default: 200 samples a run")
    parser.add_argument("--skip-slow", action="store_true", help="only the steady run")
    args = parser.parse_args()

    def every(messages: int) -> int:
        return args.sample_every or max(1, messages // 200)

    runs = [("steady (async for)", steady, args.messages, every(args.messages))]
    if not args.skip_slow:
        slow = args.slow_messages
        runs += [
            ("slow consumer (async for, 1 ms sleep every 20)", slow_consumer, slow, 20),
            ("stalled sync handler (50 ms every 10,000)", stalled_handler, slow, every(slow)),
        ]
    for name, consumer, messages, sample_every in runs:
        report(measure(name, consumer, messages, sample_every), messages)


if __name__ == "__main__":
    main()
