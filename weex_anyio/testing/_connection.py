"""One client connection on the simulator: HTTP upgrade, then WEEX JSON over wsproto (server side).

Three tasks serve an accepted connection:

* the reader feeds bytes to wsproto and answers subscribe/unsubscribe/pong messages;
* the writer is the only task that touches the socket for output. Everything to send goes
  through one queue, so a depth snapshot can never overtake its ack or the CHANGED frames that
  follow it, and the fault switches (stall, delay) act in exactly one place. Messages queued
  back to back go out in one write (without a delay fault), which is what lets a full feed
  reach tens of thousands of pushes a second;
* the pinger sends the JSON heartbeat and gives up on clients that stop answering.

The connection ends when any of them calls `_finish()`; the socket is then closed by `run()`.
"""

from __future__ import annotations

import enum
import json
import logging
import socket
import struct
import time
from collections import deque
from typing import Any, Protocol

import anyio
import anyio.abc
import attrs
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from . import _v3
from ._auth import Admitted, Refused
from ._faults import FaultState

logger = logging.getLogger("weex_anyio.testing")

READ_CHUNK = 65536
CLOSE_TIMEOUT = 1.0
HANDSHAKE_TIMEOUT = 10.0
MAX_QUEUED_MESSAGES = 10_000
WRITE_BATCH = 256
"""Messages queued back to back go out in one socket write, up to this many."""


def encode(message: object) -> str:
    return json.dumps(message, separators=(",", ":"))


def error_message(code: str, msg: str, channel: object = None) -> str:
    """The error frame third-party clients expect (the exchange's own format is undocumented)."""
    body: dict[str, object] = {"event": "error", "code": code, "msg": msg}
    if channel is not None:
        body["channel"] = channel
    return encode(body)


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final TEXT frame holding any bytes at all (even invalid UTF-8)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


@attrs.frozen
class ConnectionSettings:
    ping_interval: float | None
    max_missed_pongs: int
    ping_key: dict[bool, str]
    max_message_size: int
    max_channels: int
    max_operations_per_hour: int
    operations_window: float = 3600.0


@attrs.frozen
class ConnectionInfo:
    """A read-only snapshot of one open connection, for tests to assert on."""

    id: int
    path: str
    private: bool
    user_agent: str
    subscriptions: frozenset[str]
    pings_sent: int
    pongs_received: int
    outstanding_pings: int
    messages_received: int


class ConnectionHost(Protocol):
    """What a connection needs from the server that owns it."""

    @property
    def faults(self) -> FaultState: ...

    def judge_handshake(self, request: Request, connection: ServerConnection) -> Admitted | Refused:
        """Decide the upgrade; an admitted `connection` counts as open from this moment."""
        ...

    def channel_allowed(self, channel: str, *, private: bool) -> bool: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    def v3_text(self, text: str) -> str:
        """A v2 push's text as v3's, the same for every connection it goes to."""
        ...

    def opened(self, connection: ServerConnection) -> None: ...

    def closed(self, connection: ServerConnection) -> None: ...

    def subscribed(self, connection: ServerConnection, channel: str) -> None: ...

    def record_received(self, message: Any) -> None: ...

    def record_sent(self, nbytes: int, *, message: bool) -> None: ...

    def record_operation(self, *, subscribe: bool) -> None: ...

    def record_handshake(self, *, accepted: bool) -> None: ...


class _After(enum.Enum):
    """What the writer does once an item is on the wire."""

    CONTINUE = enum.auto()
    AWAIT_CLOSE = enum.auto()  # our close frame is out: wait (bounded) for the client's reply
    FINISH = enum.auto()  # nothing more to say: end the connection


@attrs.frozen
class _Outgoing:
    at: float
    event: Event | None = None
    raw: bytes = b""
    after: _After = _After.CONTINUE


class ServerConnection:
    """The server side of one TCP connection."""

    def __init__(
        self,
        conn_id: int,
        stream: anyio.abc.ByteStream,
        host: ConnectionHost,
        settings: ConnectionSettings,
    ) -> None:
        self.id = conn_id
        self.path = ""
        self.private = False
        self.v3 = False
        """Opened on a `/v3/` path: speaks WEEX's v3 (requests by id, v3 names and pushes)."""
        self.user_agent = ""
        self.subscriptions: set[str] = set()
        self.pings_sent = 0
        self.pongs_received = 0
        self.messages_received = 0
        self.done = anyio.Event()
        self._stream = stream
        self._host = host
        self._settings = settings
        self._ws = WSConnection(ConnectionType.SERVER)
        self._outbox_in, self._outbox_out = anyio.create_memory_object_stream[_Outgoing](
            MAX_QUEUED_MESSAGES
        )
        self._finished = anyio.Event()
        self._closing = False
        self._reset = False
        self._outstanding_pings: dict[str, None] = {}
        self._operations: deque[float] = deque()
        self._partial: list[str | bytes] = []
        self._partial_size = 0
        self._last_ping_ms = 0
        self._drained: tuple[int, anyio.Event] | None = None  # (threshold, event) of `drained`

    def info(self) -> ConnectionInfo:
        return ConnectionInfo(
            id=self.id,
            path=self.path,
            private=self.private,
            user_agent=self.user_agent,
            subscriptions=frozenset(self.subscriptions),
            pings_sent=self.pings_sent,
            pongs_received=self.pongs_received,
            outstanding_pings=len(self._outstanding_pings),
            messages_received=self.messages_received,
        )

    @property
    def queued(self) -> int:
        """Messages waiting for the writer."""
        return self._outbox_out.statistics().current_buffer_used

    async def drained(self, threshold: int) -> None:
        """Wait until fewer than `threshold` messages are queued (or the connection ended)."""
        while self.queued >= threshold and not self._finished.is_set():
            if self._drained is None:
                self._drained = (threshold, anyio.Event())
            await self._drained[1].wait()

    def _signal_drained(self) -> None:
        if self._drained is not None and (
            self._finished.is_set() or self.queued < self._drained[0]
        ):
            self._drained[1].set()
            self._drained = None

    @property
    def is_open(self) -> bool:
        return not self._closing and not self._finished.is_set()

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it ends; always closes the socket."""
        try:
            try:
                if await self._handshake():
                    self._host.opened(self)
                    await self._serve()
            finally:
                # Also for one admitted whose 101 never went out: it no longer counts as open.
                self._host.closed(self)
        finally:
            self._outbox_in.close()
            self._outbox_out.close()
            if self._reset:
                self._arm_reset()
            try:
                await anyio.aclose_forcefully(self._stream)
            finally:  # even when a cancellation from outside interrupts the close
                self.done.set()

    async def _serve(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_loop)
            tg.start_soon(self._write_loop, tg)
            if self._settings.ping_interval is not None:
                tg.start_soon(self._ping_loop, self._settings.ping_interval)
            await self._finished.wait()
            tg.cancel_scope.cancel()

    def _finish(self) -> None:
        self._closing = True
        self._finished.set()
        self._signal_drained()

    def abort(self, *, reset: bool = False) -> None:
        """Drop the TCP connection without a close frame (RST instead of FIN when `reset`)."""
        self._reset = reset
        self._finish()

    def begin_close(self, code: int, reason: str) -> None:
        """Start the close handshake; the connection ends on the reply or after CLOSE_TIMEOUT."""
        if self._closing:
            return
        self._closing = True
        self._enqueue(
            _Outgoing(anyio.current_time(), CloseConnection(code, reason), after=_After.AWAIT_CLOSE)
        )

    def _arm_reset(self) -> None:
        try:
            raw = self._stream.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, anyio.TypedAttributeLookupError):  # pragma: no cover - best effort
            pass

    # -- queueing ---------------------------------------------------------------------------------

    def _enqueue(self, item: _Outgoing) -> None:
        try:
            self._outbox_in.send_nowait(item)
        except anyio.WouldBlock:
            logger.info("connection %d: send queue full, dropping the slow client", self.id)
            self._finish()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def send_text(self, text: str) -> None:
        """Queue one text message (ignored once the connection is closing)."""
        if self.is_open:
            self._enqueue(_Outgoing(anyio.current_time(), TextMessage(text)))

    def send_push(self, text: str) -> None:
        """Queue one data push, given as v2 text: as it is on v2, as its v3 frame on v3."""
        if self.v3 and self.is_open:
            text = self._host.v3_text(text)
        self.send_text(text)

    def send_binary(self, data: bytes) -> None:
        if self.is_open:
            self._enqueue(_Outgoing(anyio.current_time(), BytesMessage(data)))

    def send_raw(self, data: bytes) -> None:
        """Queue bytes written to the socket as they are, below the WebSocket framing."""
        if self.is_open:
            self._enqueue(_Outgoing(anyio.current_time(), raw=data))

    # -- handshake --------------------------------------------------------------------------------

    async def _handshake(self) -> bool:
        with anyio.move_on_after(HANDSHAKE_TIMEOUT):
            while True:
                await self._host.faults.wait_until_running()
                try:
                    data = await self._stream.receive(READ_CHUNK)
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return False
                try:
                    self._ws.receive_data(data)
                    events = list(self._ws.events())
                except RemoteProtocolError as exc:
                    await self._refuse_malformed(exc)
                    return False
                for event in events:
                    if isinstance(event, Request):
                        return await self._answer(event)
        return False

    async def _refuse_malformed(self, exc: RemoteProtocolError) -> None:
        self._host.record_handshake(accepted=False)
        hint = exc.event_hint
        if isinstance(hint, RejectConnection):
            try:
                await self._write(self._ws.send(hint))
            except Exception:  # the client may already be gone; nothing left to tell it
                logger.debug("connection %d: could not send the 400 answer", self.id)

    async def _answer(self, request: Request) -> bool:
        verdict = self._host.judge_handshake(request, self)
        if isinstance(verdict, Refused):
            logger.debug("connection %d: upgrade refused: %s", self.id, verdict.reason)
            headers = [
                (b"content-type", verdict.content_type.encode()),
                (b"content-length", str(len(verdict.body)).encode()),
            ]
            data = self._ws.send(RejectConnection(verdict.status, headers, has_body=True))
            data += self._ws.send(RejectData(verdict.body))
            self._host.record_handshake(accepted=False)
            await self._write(data)
            return False
        self.path = verdict.path
        self.private = verdict.private
        self.v3 = verdict.path.startswith("/v3/")
        self.user_agent = verdict.user_agent
        await self._write(self._ws.send(AcceptConnection()))
        if self.v3:
            self.send_text(_v3.connected(int(time.time() * 1000)))
        self._host.record_handshake(accepted=True)
        return True

    async def _write(self, data: bytes) -> None:
        await self._stream.send(data)
        self._host.record_sent(len(data), message=False)

    # -- writer -----------------------------------------------------------------------------------

    async def _write_loop(self, tg: anyio.abc.TaskGroup) -> None:
        faults = self._host.faults
        carried: _Outgoing | None = None
        try:
            while True:
                item = carried or await self._outbox_out.receive()
                carried = None
                await faults.wait_until_running()
                if faults.delay > 0:
                    await anyio.sleep_until(item.at + faults.delay)
                    await faults.wait_until_running()
                batch = [(item, self._serialise(item))]
                if item.after is _After.CONTINUE and faults.delay <= 0:
                    carried = self._take_batch(batch)
                data = b"".join(chunk for _, chunk in batch)
                if data:
                    await self._stream.send(data)
                    for sent, chunk in batch:
                        if chunk:
                            is_message = isinstance(sent.event, Message) or bool(sent.raw)
                            self._host.record_sent(len(chunk), message=is_message)
                self._signal_drained()
                if item.after is _After.FINISH:
                    break
                if item.after is _After.AWAIT_CLOSE:
                    if self._ws.state is ConnectionState.CLOSED:
                        break
                    tg.start_soon(self._expire_close)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass
        self._finish()

    def _take_batch(self, batch: list[tuple[_Outgoing, bytes]]) -> _Outgoing | None:
        """Add the plain messages queued right behind to `batch`, so they go out in one write;
        return the first item that must go on its own (a close), if one was taken."""
        while len(batch) < WRITE_BATCH:
            try:
                item = self._outbox_out.receive_nowait()
            except anyio.WouldBlock:
                return None
            if item.after is not _After.CONTINUE:
                return item
            batch.append((item, self._serialise(item)))
        return None

    def _serialise(self, item: _Outgoing) -> bytes:
        if item.event is None:
            return item.raw
        state = self._ws.state
        if type(item.event) is TextMessage and state is ConnectionState.OPEN:
            # What wsproto would write (no extension is ever negotiated), at a fraction of the
            # cost: the full feed sends tens of thousands of these a second.
            return text_frame(item.event.data.encode())
        if isinstance(item.event, CloseConnection):
            allowed = state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)
        else:
            allowed = state is ConnectionState.OPEN
        return self._ws.send(item.event) if allowed else b""

    async def _expire_close(self) -> None:
        await anyio.sleep(CLOSE_TIMEOUT)
        self._finish()

    # -- reader -----------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        faults = self._host.faults
        discard = False
        while True:
            await faults.wait_until_running()
            try:
                data = await self._stream.receive(READ_CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._finish()
                return
            if discard or self._ws.state is ConnectionState.CLOSED:
                continue
            self._ws.receive_data(data)
            for event in self._ws.events():
                outcome = self._on_event(event)
                if outcome == "stop":
                    return
                if outcome == "discard":
                    discard = True
                    break

    def _on_event(self, event: Event) -> str:
        """Handle one wsproto event; say whether to keep reading, stop, or ignore the rest."""
        if isinstance(event, TextMessage | BytesMessage):
            self._on_data(event)
        elif isinstance(event, Ping):
            self._enqueue(_Outgoing(anyio.current_time(), event.response()))
        elif isinstance(event, CloseConnection):
            state = self._ws.state
            if state is ConnectionState.CLOSED:  # the reply to our own close frame
                self._finish()
                return "stop"
            if state is ConnectionState.REMOTE_CLOSING:  # the client closes: answer and end
                self._closing = True
                response = _Outgoing(anyio.current_time(), event.response(), after=_After.FINISH)
                self._enqueue(response)
                return "stop"
            # wsproto reports a frame it could not parse as a close in state OPEN.
            self.begin_close(event.code, event.reason or "")
            return "discard"
        return "continue"

    def _on_data(self, event: TextMessage | BytesMessage) -> None:
        if self._closing:
            return
        chunk = event.data
        self._partial_size += len(chunk.encode()) if isinstance(chunk, str) else len(chunk)
        if self._partial_size > self._settings.max_message_size:
            self._partial.clear()
            self.begin_close(1009, "message too big")
            return
        self._partial.append(chunk if isinstance(chunk, str) else bytes(chunk))
        if not event.message_finished:
            return
        parts, self._partial, self._partial_size = self._partial, [], 0
        self.messages_received += 1
        if isinstance(event, BytesMessage):
            self.send_text(error_message("40017", "Parameter validation failed: binary frame"))
            return
        self._on_text("".join(p for p in parts if isinstance(p, str)))

    # -- the WEEX protocol ------------------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):  # nested past the limit: not JSON we can read
            self.send_text(error_message("40017", "Parameter validation failed: invalid JSON"))
            return
        self._host.record_received(message)
        if not isinstance(message, dict):
            self.send_text(error_message("40017", "Parameter validation failed"))
            return
        if self.v3:
            self._on_v3_request(message)
            return
        event, kind = message.get("event"), message.get("type")
        if event == "pong" or (event is None and kind == "pong"):
            self._on_pong(message)
        elif event == "ping" or (event is None and kind == "ping"):
            key = "event" if event == "ping" else "type"
            self.send_text(encode({key: "pong", "time": message.get("time")}))
        elif event in ("subscribe", "unsubscribe"):
            if event == "subscribe" and self._host.faults.take_ignored_subscribe():
                return  # a server that never answers (the request was recorded)
            self._on_operation(event == "subscribe", message.get("channel"))
        else:
            self.send_text(error_message("40020", "Parameter event is invalid"))

    def _on_pong(self, message: dict[str, Any]) -> None:
        self.pongs_received += 1
        stamp = message.get("time")
        if isinstance(stamp, int | str) and not isinstance(stamp, bool):
            self._outstanding_pings.pop(str(stamp), None)

    def _on_operation(self, subscribe: bool, channel: object) -> None:
        refused = self._operate(subscribe, channel)
        if refused is not None:
            self.send_text(error_message(*refused, channel))
            return
        event = "subscribed" if subscribe else "unsubscribed"
        self.send_text(encode({"event": event, "channel": channel}))
        if subscribe:
            assert isinstance(channel, str)
            self._host.subscribed(self, channel)

    def _operate(self, subscribe: bool, channel: object) -> tuple[str, str] | None:
        """Count and carry out one subscribe/unsubscribe; the refusal's (code, msg), if any.
        The caller answers, and then (a subscribe) calls `host.subscribed` for the snapshot."""
        now = anyio.current_time()
        while self._operations and self._operations[0] <= now - self._settings.operations_window:
            self._operations.popleft()
        if len(self._operations) >= self._settings.max_operations_per_hour:
            return ("429", "Too many requests")
        self._operations.append(now)
        if not isinstance(channel, str) or not channel:
            return ("40019", "Parameter cannot be empty")
        if not self._host.channel_allowed(channel, private=self.private):
            return ("40020", "Parameter channel is invalid")
        if not subscribe:
            self.subscriptions.discard(channel)
            self._host.record_operation(subscribe=False)
            return None
        if channel not in self.subscriptions and (
            len(self.subscriptions) >= self._settings.max_channels
        ):
            return ("429", "Too many requests")
        self.subscriptions.add(channel)
        self._host.record_operation(subscribe=True)
        return None

    def _on_v3_request(self, message: dict[str, Any]) -> None:
        """`{"method":"SUBSCRIBE"|"UNSUBSCRIBE","params":[...],"id":N}` answered by id (one
        refusal for the whole request if any name fails), or `{"method":"PONG","id":N}`."""
        method, request_id = message.get("method"), message.get("id")
        if method == "PONG":
            self.pongs_received += 1
            self._outstanding_pings.clear()  # a v3 PONG names no ping: it answers them all
            if not self.private:  # the private socket does not answer PONGs (Weex.Net)
                self.send_text(_v3.answer(request_id))
            return
        params = message.get("params")
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
            self.send_text(_v3.refusal(request_id, "request"))
            return
        subscribe = method == "SUBSCRIBE"
        if subscribe and self._host.faults.take_ignored_subscribe():
            return  # a server that never answers (the request was recorded)
        done: list[str] = []
        failed: tuple[object, str] | None = None  # the first name refused, and why
        for name in params:
            channel = _v3.v2_channel(name, self._host.symbols) if isinstance(name, str) else None
            refused = self._operate(subscribe, channel)
            if refused is None:
                assert channel is not None
                done.append(channel)
            elif failed is None:
                failed = (name, refused[0])
        if failed is None:
            self.send_text(_v3.answer(request_id))
        else:
            self.send_text(_v3.refusal(request_id, *failed))
        if subscribe:
            for channel in done:
                self._host.subscribed(self, channel)

    # -- heartbeat --------------------------------------------------------------------------------

    async def _ping_loop(self, interval: float) -> None:
        faults = self._host.faults
        key = self._settings.ping_key[self.private]
        while True:
            await anyio.sleep(interval)
            await faults.wait_until_running()
            if self._closing:
                return
            if len(self._outstanding_pings) > self._settings.max_missed_pongs:
                logger.info("connection %d: too many unanswered pings, closing", self.id)
                self.begin_close(1000, "ping timeout")
                return
            stamp = max(int(time.time() * 1000), self._last_ping_ms + 1)
            self._last_ping_ms = stamp
            self._outstanding_pings[str(stamp)] = None
            self.pings_sent += 1
            if self.v3:
                self.send_text(_v3.ping(self.private, str(stamp)))
            else:
                self.send_text(encode({key: "ping", "time": str(stamp)}))
