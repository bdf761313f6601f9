"""Memory over a long run: does the client's heap level off?

    .venv/bin/python bench/bench_memory.py cycles [--cycles 1000] [--every 50]
    .venv/bin/python bench/bench_memory.py soak [--seconds 300] [--reconnects 2]
    .venv/bin/python bench/bench_memory.py flood [--messages 10000000] [--slow-messages 1000000]

`cycles` and `soak` run against `weex_anyio.testing.SimulatedWeexServer` in a child process
(`simulator_process.py`), so every figure is this process's: the client, its event loop and
the benchmark. Each sample follows a full `gc.collect()` and reads the resident set
(`/proc/self/statm`), the C heap in use (glibc's main arena, `mallinfo2`: OpenSSL's memory is
there, and tracemalloc does not see it), what `tracemalloc` holds live (leaving out its own
records and this file's), all of it and the part allocated by a line of `weex_proto`,
`weex_anyio` or `weex_trio`, and tracemalloc's own tables (in the RSS, not in the traced
figure). The verdict compares the traced growth over the second half of the samples with the
first half's (the RSS's with `--no-trace`): a heap that levels off fills its caches early and
then stays flat.

* cycles: `--cycles` times `async with WeexWebSocketClient(...)`, each reading `--reads`
  tickers of two contracts, then `--reads` order books (the README's `async for ... break`),
  and closing; a sample every `--every` cycles (and one before the first);
* soak: one client streams tickers of `--symbols` contracts and, for each, an order book and
  trades, for `--seconds`, while the simulator drops every connection `--reconnects` times
  (evenly spaced); a sample every `--seconds / 20`, each with the market paused for half a
  second first, so the client has drained what was in flight.

`--top N` prints the N allocation sites (`--frames` deep) that grew most between the middle
sample and the last: where to look when the verdict says the heap keeps growing.

`--no-trace` leaves `tracemalloc` off (it slows the client and adds its own tables to the
resident set): the RSS and C heap only, the figures a user's process sees.

`flood` uses the loopback server of `bench_throughput.py` (a child process), which floods
ticker pushes, then one marked `"end"`. Three runs, each sampling the resident set every
`--sample-every` messages:

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
import ctypes
import gc
import logging
import os
import random
import resource
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import attrs
from bench_throughput import SYMBOL, start_server, weex_config
from simulator_process import SimulatorProcess

import weex_anyio
import weex_proto
import weex_trio
from weex_proto.config import WeexConfig
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


# --------------------------------------------------------------------------- cycles and soak

LIBRARY_DIRS = tuple(
    str(Path(package.__file__ or "").parent) + os.sep
    for package in (weex_proto, weex_anyio, weex_trio)
)
LEVELS_OFF = 0.25
"""MiB the traced heap may grow over the second half of the samples and still level off
(with `--no-trace`, the resident set may grow `FLAT`)."""
CYCLE_SYMBOLS = ("BTCUSDT", "ETHUSDT")
SOAK_SAMPLES = 20
QUIET = 0.5
"""Seconds the soak lets the client drain its streams before a sample."""
SOAK_SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt", "cmt_xrpusdt", "cmt_dogeusdt")


def malloc_in_use() -> int | None:
    """Bytes glibc's main arena has handed out and not had back (`mallinfo2`): the C heap,
    OpenSSL's included, which tracemalloc does not see; None without glibc 2.33+."""
    if _mallinfo2 is None:
        return None
    return int(_mallinfo2().uordblks)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
            *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


def _find_mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    function.restype = _MallInfo2
    function.argtypes = []
    found: Callable[[], _MallInfo2] = function
    return found


_mallinfo2 = _find_mallinfo2()


@attrs.frozen
class Sample:
    at: float
    """The cycle, or the seconds since the start."""
    rss: int
    malloc: int | None
    traced: int
    library: int
    """Of `traced`, what a line of weex_proto, weex_anyio or weex_trio allocated."""
    bookkeeping: int
    """tracemalloc's own tables (part of the RSS, not of `traced`)."""


@attrs.define
class Sampler:
    """Samples after a full collection; with `--top`, the middle and last snapshots too."""

    trace: bool
    frames: int
    samples: list[Sample] = attrs.field(factory=list)
    snapshots: list[tracemalloc.Snapshot] = attrs.field(factory=list)
    keep: set[int] = attrs.field(factory=set)
    """Indexes of the samples whose snapshot is kept (for `--top`)."""

    def keep_middle_and_last(self, samples: int) -> None:
        self.keep = {samples // 2, samples - 1}

    def start(self) -> None:
        if self.trace:
            tracemalloc.start(self.frames)

    def sample(self, at: float) -> None:
        gc.collect()
        traced = library = 0
        if self.trace:
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [
                    tracemalloc.Filter(False, tracemalloc.__file__),
                    tracemalloc.Filter(False, __file__),
                ]
            )
            for stat in snapshot.statistics("filename"):
                traced += stat.size
                if stat.traceback[0].filename.startswith(LIBRARY_DIRS):
                    library += stat.size
            if len(self.samples) in self.keep:
                self.snapshots.append(snapshot)
        bookkeeping = tracemalloc.get_tracemalloc_memory() if self.trace else 0
        self.samples.append(Sample(at, rss(), malloc_in_use(), traced, library, bookkeeping))


def halves(values: list[int]) -> tuple[float, float]:
    """Growth (MiB) from the first sample to the middle one, and from the middle to the last."""
    middle = len(values) // 2
    return (values[middle] - values[0]) / MIB, (values[-1] - values[middle]) / MIB


def report_samples(sampler: Sampler, unit: str, top: int) -> None:
    samples = sampler.samples
    columns = ("RSS MiB", "malloc MiB", "traced MiB", "library MiB", "tracemalloc MiB")
    print(f"{unit:>8}  " + "  ".join(columns))
    for sample in samples:
        figures = [
            f"{sample.rss / MIB:7.1f}",
            "-" if sample.malloc is None else f"{sample.malloc / MIB:.1f}",
        ]
        if sampler.trace:
            figures += [
                f"{sample.traced / MIB:.2f}",
                f"{sample.library / MIB:.3f}",
                f"{sample.bookkeeping / MIB:.1f}",
            ]
        else:
            figures += ["-", "-", "-"]
        print(
            f"{sample.at:8.0f}  "
            + "  ".join(f"{f:>{len(c)}}" for f, c in zip(figures, columns, strict=True))
        )
    rss_first, rss_second = halves([sample.rss for sample in samples])
    middle = samples[len(samples) // 2].at
    print(
        f"RSS growth: {rss_first:+.2f} MiB up to {unit} {middle:.0f}, {rss_second:+.2f} MiB after"
    )
    if not sampler.trace:  # the resident set is all there is to judge by
        verdict = "levels off" if rss_second < FLAT else "KEEPS GROWING"
        print(
            f"verdict: {verdict} (RSS {rss_first:+.2f} MiB in the first half, "
            f"{rss_second:+.2f} MiB in the second; limit {FLAT})"
        )
        return
    first, second = halves([sample.traced for sample in samples])
    lib_first, lib_second = halves([sample.library for sample in samples])
    print(
        f"traced growth: {first:+.2f} MiB up to {unit} {middle:.0f}, {second:+.2f} MiB after "
        f"(library lines: {lib_first:+.3f}, {lib_second:+.3f})"
    )
    verdict = "levels off" if second < LEVELS_OFF else "KEEPS GROWING"
    print(
        f"verdict: {verdict} (traced heap {first:+.2f} MiB in the first half, {second:+.2f} MiB "
        f"in the second; limit {LEVELS_OFF})"
    )
    if top and len(sampler.snapshots) == 2:
        middle_snapshot, last = sampler.snapshots
        print(f"largest growth from {unit} {middle:.0f} to the end:")
        for stat in last.compare_to(middle_snapshot, "traceback")[:top]:
            where = " <- ".join(f"{f.filename}:{f.lineno}" for f in stat.traceback)
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {where}")


def cycle_client(config: WeexConfig) -> weex_anyio.WeexWebSocketClient:
    return weex_anyio.WeexWebSocketClient(
        config, ping_interval=None, backoff_base=0.01, backoff_max=0.05, rng=random.Random(1)
    )


async def one_cycle(config: WeexConfig, reads: int) -> None:
    """What a short-lived user of the client does (the README's tour, in small)."""
    async with cycle_client(config) as weex:
        seen = 0
        async for message in weex.stream_tickers(list(CYCLE_SYMBOLS)):
            assert message.record.last_price
            seen += 1
            if seen == reads:
                break
        seen = 0
        async for book in weex.stream_order_book(CYCLE_SYMBOLS[0], level=15):
            assert book.record.bids
            seen += 1
            if seen == reads:
                break


async def run_cycles(
    sim: SimulatorProcess, sampler: Sampler, cycles: int, every: int, reads: int
) -> None:
    config = sim.config()
    sampler.sample(0)
    for cycle in range(1, cycles + 1):
        await one_cycle(config, reads)
        if cycle % every == 0 or cycle == cycles:
            sampler.sample(cycle)


async def consume(stream: AsyncIterator[WebSocketMessage[Any]], counts: list[int]) -> None:
    async for _ in stream:
        counts[0] += 1


async def quiet_sample(sim: SimulatorProcess, sampler: Sampler, at: float) -> None:
    """Sample with the market paused and the streams drained, so what is in flight at that
    instant (a 256 KiB socket read, a full buffer) does not count as growth."""
    await sim.apause_market()
    await anyio.sleep(QUIET)
    sampler.sample(at)
    await sim.aresume_market()


async def run_soak(
    sim: SimulatorProcess, sampler: Sampler, seconds: float, reconnects: int, symbols: int
) -> tuple[int, int]:
    """Stream for `seconds`, dropping every connection `reconnects` times; messages read and
    reconnects the client made."""
    chosen = SOAK_SYMBOLS[:symbols]
    counts = [0]
    weex = weex_anyio.WeexWebSocketClient(
        sim.config(),
        ping_interval=5.0,
        backoff_base=0.05,
        backoff_max=0.2,
        max_retries=None,
        rng=random.Random(1),
    )
    step = seconds / SOAK_SAMPLES
    drops = {round((i + 1) * SOAK_SAMPLES / (reconnects + 1)) for i in range(reconnects)}
    async with weex, anyio.create_task_group() as streams:
        streams.start_soon(consume, weex.stream_tickers(list(chosen)), counts)
        for symbol in chosen:
            streams.start_soon(consume, weex.stream_order_book(symbol, level=15), counts)
            streams.start_soon(consume, weex.stream_trades(symbol), counts)
        start = anyio.current_time()
        await quiet_sample(sim, sampler, 0)
        for index in range(1, SOAK_SAMPLES + 1):
            await anyio.sleep_until(start + index * step)
            if index in drops:
                await sim.adrop_connections()
            await quiet_sample(sim, sampler, anyio.current_time() - start)
        streams.cancel_scope.cancel()
    return counts[0], weex.health.reconnects


def measure_heap(args: argparse.Namespace) -> None:
    sampler = Sampler(trace=not args.no_trace, frames=args.frames)
    # The simulator steps the market often, so a cycle's reads do not wait long.
    options: dict[str, Any] = {
        "tick_interval": args.tick,
        "trade_interval": None,
        "ping_interval": None,
        "max_connection_requests": 1 << 30,  # one process connects many times from one IP
        "symbols": SOAK_SYMBOLS,
    }
    logging.getLogger("weex_ws").setLevel(logging.ERROR)  # the injected drops are expected
    with SimulatorProcess(**options) as sim:
        sampler.start()
        begin = time.perf_counter()
        if args.mode == "cycles":
            every = args.every or max(1, args.cycles // 20)
            if args.top:
                sampler.keep_middle_and_last(1 + -(-args.cycles // every))
            asyncio.run(run_cycles(sim, sampler, args.cycles, every, args.reads))
            unit, what = "cycle", f"{args.cycles:,} open/close cycles"
        else:
            if args.top:
                sampler.keep_middle_and_last(1 + SOAK_SAMPLES)
            read, reconnected = asyncio.run(
                run_soak(sim, sampler, args.seconds, args.reconnects, args.symbols)
            )
            unit, what = "second", f"{read:,} messages, {reconnected} reconnects"
        elapsed = time.perf_counter() - begin
    tracing = f"tracemalloc {args.frames} frame(s)" if sampler.trace else "no tracemalloc"
    print(
        f"{args.mode}: {what} in {elapsed:.0f} s ({tracing}; the simulator runs in a child "
        "process, outside these figures)"
    )
    report_samples(sampler, unit, args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "mode",
        nargs="?",
        choices=("flood", "cycles", "soak"),
        default="flood",
        help="default: flood",
    )
    flood = parser.add_argument_group("flood")
    flood.add_argument("--messages", type=int, default=10_000_000, help="steady run's pushes")
    flood.add_argument("--slow-messages", type=int, default=1_000_000, help="each slow run's")
    flood.add_argument("--sample-every", type=int, default=0, help="default: 200 samples a run")
    flood.add_argument("--skip-slow", action="store_true", help="only the steady run")
    heap = parser.add_argument_group("cycles and soak")
    heap.add_argument("--cycles", type=int, default=1000, help="open/close cycles")
    heap.add_argument("--every", type=int, default=0, help="cycles a sample (default: 20 samples)")
    heap.add_argument("--reads", type=int, default=3, help="messages read from each stream")
    heap.add_argument("--seconds", type=float, default=300.0, help="the soak's duration")
    heap.add_argument("--reconnects", type=int, default=2, help="connection drops in the soak")
    heap.add_argument("--symbols", type=int, default=len(SOAK_SYMBOLS), help="soak contracts")
    heap.add_argument("--tick", type=float, default=0.02, help="the simulator's market step, s")
    heap.add_argument("--top", type=int, default=0, help="print the N sites that grew most")
    heap.add_argument("--frames", type=int, default=1, help="tracemalloc frames for --top")
    heap.add_argument("--no-trace", action="store_true", help="RSS only, no tracemalloc")
    args = parser.parse_args()
    if args.mode != "flood":
        measure_heap(args)
        return

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
