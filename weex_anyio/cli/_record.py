"""`weex-ws record SYMBOL... --out FILE`: raw frames with receive times, nothing lost.

Frames are taken by a synchronous frame handler, which the client calls inline as each frame
is decoded, so the file holds them in exactly the order (and with the timestamps) they arrived
and a slow disk can never make the client drop one. They queue in memory and a single writer
task hands them to a worker thread in batches. Stopping (`--duration`, `--count`, Ctrl-C,
SIGTERM) first closes the connection, then writes whatever is queued and closes the file; only
then is the summary printed, so its count is what is on disk.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import anyio
import anyio.to_thread

from weex_proto import channels
from weex_proto.channels import build_channel
from weex_proto.errors import WeexError
from weex_proto.events import PushFrame
from weex_proto.replay import RecordedFrame

from ..client import WeexWebSocketClient
from ._recordings import RecordingWriter, open_writer, sidecar_files
from ._runtime import Stopper, client_options
from ._streams import Stream, config_for

BATCH_INTERVAL = 0.1
"""Seconds the writer lets frames accumulate between batches (one transaction each)."""
ACK_TIMEOUT = 10.0
"""Seconds to wait for the server to accept or refuse each recorded channel."""


class RecordingFailed(WeexError):
    """Writing the recording failed (disk full, file removed, ...)."""


class Recorder:
    """The queue between the client's handler and the file, and the writer task behind it."""

    def __init__(
        self,
        writer: RecordingWriter,
        *,
        limit: int | None = None,
        on_stop: Callable[[], None] = lambda: None,
    ) -> None:
        self.writer = writer
        self.limit = limit
        self.on_stop = on_stop
        self.received = 0
        self.written = 0
        self.bytes = 0
        self.channels: set[str] = set()
        self.error: BaseException | None = None
        self._queue: list[RecordedFrame] = []
        self._wake = anyio.Event()
        self._closing = False
        self._done = anyio.Event()

    def take(self, message: PushFrame) -> None:
        """The frame handler: queue the frame exactly as received."""
        if self._closing or (self.limit is not None and self.received >= self.limit):
            return
        raw = message.raw or json.dumps(message.frame, separators=(",", ":"))
        self._queue.append(RecordedFrame(message.timestamp, message.channel, raw))
        self.received += 1
        self.bytes += len(raw.encode())
        self.channels.add(message.channel)
        self._wake.set()
        if self.limit is not None and self.received >= self.limit:
            self.on_stop()

    async def run_writer(self) -> None:
        """Write batches until `finish()`; shielded, so a stop never cuts a batch short."""
        with anyio.CancelScope(shield=True):
            try:
                while True:
                    if not self._queue:
                        if self._closing:
                            break
                        await self._wake.wait()
                        self._wake = anyio.Event()
                        continue
                    batch, self._queue = self._queue, []
                    await anyio.to_thread.run_sync(self.writer.write, batch)
                    self.written += len(batch)
                    if not self._closing:
                        with anyio.move_on_after(BATCH_INTERVAL):
                            await self._stopping()
            except Exception as exc:
                self.error = exc
                self.on_stop()
            finally:
                with contextlib.suppress(Exception):
                    await anyio.to_thread.run_sync(self.writer.close)
                self._done.set()

    async def _stopping(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake = anyio.Event()

    async def finish(self) -> None:
        """Write everything queued, close the file; raises if writing failed."""
        self._closing = True
        self._wake.set()
        with anyio.CancelScope(shield=True):
            await self._done.wait()
        if self.error is not None:
            raise RecordingFailed(
                f"could not write {self.writer.path}: {self.error}"
            ) from self.error


def record_channels(args: argparse.Namespace) -> list[str]:
    names = []
    for symbol in dict.fromkeys(args.symbols):
        for kind in args.channels:
            params = {"level": args.depth} if kind == "depth" else {}
            names.append(build_channel(kind, symbol, **params))
    return names


def watchdog(client: WeexWebSocketClient, names: Sequence[str]) -> Stream:
    """A stream on a recorded channel, read only for how it ends.

    Handlers are not told when the client gives up reconnecting; streams end with that error.
    This one shares its subscription with the recorded channel, so nothing extra goes on the
    wire (a ticker or trades stream where possible: those are plain frames, not books).
    """
    specs = [channels.parse_channel(name) for name in names]
    for spec in specs:
        if isinstance(spec, channels.Ticker):
            return client.stream_tickers(spec.symbol)
    for spec in specs:
        if isinstance(spec, channels.Trades):
            return client.stream_trades(spec.symbol)
    for spec in specs:
        if isinstance(spec, channels.Depth):
            return client.stream_order_book(spec.symbol, level=spec.level)
    raise AssertionError("record always has at least one channel")  # pragma: no cover


async def _subscribe(client: WeexWebSocketClient, name: str) -> None:
    """Subscribe and wait for the answer: the server's refusal is raised, silence is not."""
    with contextlib.suppress(TimeoutError):  # no ack, but perhaps data: keep recording
        await client.subscribe(name, ack_timeout=ACK_TIMEOUT)


async def _until_it_fails(stream: Stream) -> None:
    async with contextlib.aclosing(stream):
        async for _ in stream:
            pass


def _size(nbytes: int) -> str:
    if nbytes < 1024:
        return f"{nbytes} B"
    size = nbytes / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _rate(messages: int, elapsed: float) -> str:
    return f"{messages / elapsed if elapsed > 0 else 0.0:.1f} msg/s"


def progress_text(recorder: Recorder, elapsed: float) -> str:
    return (
        f"recording: {recorder.received} messages, {_size(recorder.bytes)}, "
        f"{_rate(recorder.received, elapsed)}, {len(recorder.channels)} channels"
    )


async def show_progress(recorder: Recorder, stderr: TextIO, started: float) -> None:
    """A progress line on stderr: redrawn each second on a terminal, every 10 s otherwise."""
    tty = stderr.isatty()
    while True:
        await anyio.sleep(1.0 if tty else 10.0)
        text = progress_text(recorder, anyio.current_time() - started)
        stderr.write(f"\r{text}\x1b[K" if tty else text + "\n")
        stderr.flush()


def summary(recorder: Recorder, elapsed: float) -> str:
    """The last line: what is on disk (printed only once the file is closed)."""
    return (
        f"weex-ws: recorded {recorder.written} messages "
        f"({_size(recorder.bytes)}, {_rate(recorder.written, elapsed)}) "
        f"on {len(recorder.channels)} channels to {recorder.writer.path} in {elapsed:.1f}s"
    )


async def run_record(args: argparse.Namespace, stopper: Stopper, stderr: TextIO) -> int:
    config = config_for(args)
    names = record_channels(args)
    path = Path(args.out)
    created = not (args.append and await anyio.Path(path).exists())
    writer = await anyio.to_thread.run_sync(
        functools.partial(open_writer, path, append=args.append, dialect=config.api_version)
    )
    recorder = Recorder(writer, limit=args.count, on_stop=stopper.stop)
    started = anyio.current_time()
    succeeded = under_way = False
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(recorder.run_writer)
        task_group.start_soon(show_progress, recorder, stderr, started)
        try:
            async with WeexWebSocketClient(config, **client_options(args)) as client:
                for name in names:
                    client.add_frame_handler(name, recorder.take)
                # Inside the client, so that stopping still closes the connection cleanly.
                with stopper.scope:
                    await client.connect()  # raises if the server cannot be reached
                    async with anyio.create_task_group() as subscribing:
                        for name in names:  # a refused channel (unknown symbol) ends it here
                            subscribing.start_soon(_subscribe, client, name)
                    under_way = True
                    await _until_it_fails(watchdog(client, names))
            succeeded = True
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await recorder.finish()
                finally:
                    task_group.cancel_scope.cancel()
                    clear = "\r\x1b[K" if stderr.isatty() else ""  # the progress line
                    if succeeded or (under_way and recorder.written):
                        elapsed = anyio.current_time() - started
                        stderr.write(f"{clear}{summary(recorder, elapsed)}\n")
                    else:
                        # Failed before it was under way (unreachable, a refused symbol): the
                        # few frames of the start are no recording; leave nothing to block
                        # the retry.
                        stderr.write(clear)
                        if created:
                            await anyio.to_thread.run_sync(remove_recording, path)
                    stderr.flush()
    return 0


def remove_recording(path: Path) -> None:
    """Delete a recording this run created, with SQLite's files beside it."""
    for leftover in (path, *sidecar_files(path)):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
