"""A transport that plays a recording back to the client as if it were the exchange.

    transport = ReplayTransport(frames, speed=1.0)
    client = WeexWebSocketClient(config, transport=transport, wall_clock=transport.clock,
                                 ping_interval=None)

The client connects through `transport` and gets an in-memory `anyio.abc.ByteStream` whose far
end is a `weex_proto.replay.ReplayServer`: the upgrade is answered with 101, subscriptions are
acknowledged, and the recorded frames follow in order, paced by their receive times (`speed`
1.0), faster (`2.0`) or with no waiting at all (`None`). `transport.clock` is the receive time of
the frame being served, so the client stamps every message with its recorded time and a replay
gives the same result every time. Deadlines keep the loop's own clock. Heartbeats are best off
(`ping_interval=None`): at `speed=None` nothing is paced, and a silent stretch of the recording is
not a dead connection.

At the end `finished` is set; then the server closes the connection (`close_at_end=True`) or
waits for the client to close it. A recording is served once: another connection attempt fails.

`frames` may be any iterable, read one frame at a time as they are served (a file being
streamed, say), if `channels` names the recording's channels up front; a sequence needs no
`channels`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import anyio
import anyio.abc
import anyio.lowlevel

from weex_proto.config import Endpoint
from weex_proto.errors import ConnectionClosedError
from weex_proto.replay import RecordedFrame, ReplayServer, ReplayState, channels_of, due_at


class ReplayTransport:
    """An `async (Endpoint) -> ByteStream` serving `frames` once; see the module docstring."""

    def __init__(
        self,
        frames: Iterable[RecordedFrame],
        *,
        speed: float | None = 1.0,
        close_at_end: bool = True,
        channels: Sequence[str] | None = None,
    ) -> None:
        if speed is not None and not (math.isfinite(speed) and speed > 0):
            raise ValueError("speed must be a positive number, or None for no waiting")
        if channels is None:
            if not isinstance(frames, Sequence):
                raise TypeError("channels= is needed when frames is not a sequence")
            channels = channels_of(frames)
        self.channels = tuple(channels)
        self.speed = speed
        self.close_at_end = close_at_end
        self.finished = anyio.Event()
        """Set once every frame has been handed to the client (and it asked for more)."""
        self.served = 0
        self._frames: Iterator[RecordedFrame] = iter(frames)
        self._upcoming = next(self._frames, None)
        self.first_time = self._upcoming.received_at if self._upcoming is not None else 0.0
        """The receive time of the recording's first frame."""
        self._now = self.first_time
        self._stream: ReplayStream | None = None
        self._ended = anyio.Event()
        self._early_close: str | None = None

    def clock(self) -> float:
        """The replay's time: the receive time of the latest frame served."""
        return self._now

    async def __call__(self, endpoint: Endpoint) -> anyio.abc.ByteStream:
        if self._stream is not None:
            raise ConnectionRefusedError("the recording has already been replayed")
        self._stream = ReplayStream(self)
        return self._stream

    async def wait_finished(self) -> None:
        """Until every frame was served; raises `ConnectionClosedError` if the client's
        connection ended before that."""
        await self._ended.wait()
        if self._early_close is not None:
            raise ConnectionClosedError(None, self._early_close)

    def _peek(self) -> RecordedFrame | None:
        """The next frame to serve, None at the end of the recording."""
        return self._upcoming

    def _advance(self) -> RecordedFrame:
        frame = self._upcoming
        assert frame is not None
        self._upcoming = next(self._frames, None)
        self._now = frame.received_at
        self.served += 1
        return frame

    def _release(self) -> None:
        """Let go of the frame source (a file being read) once nothing more will be served."""
        self._upcoming = None
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def _finish(self) -> None:
        self._release()
        self.finished.set()
        self._ended.set()

    def _closed_early(self, reason: str) -> None:
        if not self._ended.is_set():
            self._release()
            self._early_close = reason
            self._ended.set()


class ReplayStream(anyio.abc.ByteStream):
    """The client's end of the replayed connection; the server end runs inside `receive`."""

    def __init__(self, transport: ReplayTransport) -> None:
        self._transport = transport
        self._server = ReplayServer(transport.channels)
        self._pending = bytearray()
        self._started: float | None = None
        self._client_spoke = anyio.Event()
        self._closed = False

    async def send(self, item: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        self._server.receive_data(bytes(item))
        self._pending += self._server.data_to_send()
        self._client_spoke.set()
        await anyio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        self._server.receive_data(None)
        self._client_spoke.set()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._server.receive_data(None)
            self._client_spoke.set()
            self._transport._closed_early("the client closed the connection mid-recording")
        await anyio.lowlevel.checkpoint()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        transport = self._transport
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            if self._pending:
                # One frame per read at most, so each message gets its own recorded time.
                data = bytes(self._pending[:max_bytes])
                del self._pending[:max_bytes]
                return data
            if self._server.state is ReplayState.CLOSED:
                raise anyio.EndOfStream
            if not self._server.ready:
                await self._wait_for_client(None)
                continue
            upcoming = transport._peek()
            if upcoming is not None:
                if await self._wait_until_due(upcoming):
                    continue  # the client said something first; answer it, then come back
                frame = transport._advance()
                self._server.send_frame(frame.raw)
                self._pending += self._server.data_to_send()
                continue
            if not self._transport.finished.is_set():
                # The client asked for more after the last frame: it has handled them all.
                self._transport._finish()
                if self._transport.close_at_end:
                    self._server.close()
                    self._pending += self._server.data_to_send()
                    continue
            await self._wait_for_client(None)

    async def _wait_until_due(self, frame: RecordedFrame) -> bool:
        """Sleep until `frame` is due; True if the client sent something meanwhile."""
        first = self._transport.first_time
        if self._started is None:
            self._started = anyio.current_time()
        due = due_at(frame.received_at, first, self._started, self._transport.speed)
        if due is None:
            await anyio.lowlevel.checkpoint()  # let the consumers run between frames
            return bool(self._pending)
        delay = due - anyio.current_time()
        if delay <= 0:
            await anyio.lowlevel.checkpoint()
            return bool(self._pending)
        return await self._wait_for_client(delay)

    async def _wait_for_client(self, delay: float | None) -> bool:
        """Until the client sends something (True) or `delay` seconds pass (False)."""
        with anyio.move_on_after(delay):
            await self._client_spoke.wait()
        spoke = self._client_spoke.is_set()
        self._client_spoke = anyio.Event()
        return spoke or bool(self._pending)
