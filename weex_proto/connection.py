"""`WeexConnection`: one WebSocket connection to WEEX, as a state machine with no I/O.

Feed it what the socket gave you with `receive_data(data, now)`, send what `data_to_send()`
returns, sleep until `next_deadline()` and then call `handle_timer(now)`. Read what happened
from `next_event()`. It answers WebSocket pings and WEEX's application pings by itself, keeps the
subscription book in step with the server's acks, and declares a silent peer dead.

Lifecycle::

    IDLE --initiate()--> CONNECTING --101--> OPEN --close()/peer close--> CLOSING --> CLOSED
                              |                 \\--EOF / dead / protocol error--------> CLOSED
                              \\--HTTP 4xx/5xx, timeout, garbage------------------------> CLOSED

Two clocks come in, never mixed. `now` is a monotonic time (any origin: the event loop's clock)
and serves only deadlines: heartbeat, handshake, close and stale timers. `wall_time` is seconds
since the epoch, read fresh by the caller when the bytes arrived (or when the handshake is sent):
it signs the private handshake and stamps every message. A caller that has only one clock, and
it is the wall clock (a replay, a hand-driven test), may leave `wall_time` out: `now` is then
used for both.

wsproto does the handshake and every unusual frame. Once the connection is open, plain text
frames (nearly all WEEX sends) skip it through `fastframe.FastFrameReader`, with the same
result; `ConnectionOptions(fast_path=False)` sends everything through wsproto.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import attrs
import wsproto
from wsproto import events as ws
from wsproto.connection import ConnectionState as WsState
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from . import error_codes
from .auth import handshake_headers
from .config import WeexConfig
from .errors import ErrorKind, LocalProtocolError
from .events import (
    CloseInitiator,
    Connected,
    ConnectionClosed,
    ConnectionRejected,
    ErrorReceived,
    Event,
    MessageReceived,
    MessageSkipped,
    PingAnswered,
    PongReceived,
    PushFrame,
    Subscribed,
    Unsubscribed,
)
from .fastframe import (
    FastFrameReader,
    InvalidText,
    wsproto_between_frames,
    wsproto_pending_payload,
)
from .heartbeat import Heartbeat, HeartbeatAction
from .subscriptions import SubscriptionBook
from .wire import describe, encode_json, ping_server_time, text_of

PongKey = Literal["mirror", "event", "type"]
PushTuple = tuple[str, dict[str, Any], float, str]
"""A data push as `take_events()` gives it: `PushFrame`'s fields, `(channel, frame, timestamp,
raw)`, in a plain tuple."""
JsonLoads = Callable[[str], Any]


def _default_json_loads() -> JsonLoads:
    """orjson when installed (the `fast` extra): several times faster, and the same values as
    `json.loads` for what WEEX sends (prices arrive as strings, so decimals stay exact). It
    refuses NaN/Infinity and lone surrogates (the frame is then skipped as invalid JSON) and
    reads integers past 64 bits as floats."""
    try:
        import orjson
    except ImportError:
        return json.loads
    return orjson.loads


# Close codes (RFC 6455 §7.4.1).
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
ABNORMAL_CLOSURE = 1006
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011

_INVALID: Any = object()  # what `_handle_text` got from text that is not JSON
_SKIPPED_RAW_LIMIT = 512  # how much of a skipped frame we keep for the log
_PONG_IDS_KEPT = 16  # v3: answers to this many of our latest PONGs are taken silently
# An error frame's code and text go into logs and exceptions: a server can make them any size.
_ERROR_CODE_LIMIT = 40
_ERROR_TEXT_LIMIT = 500


class ConnectionState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@attrs.frozen
class ConnectionOptions:
    """Knobs for one connection. Defaults follow the public client's defaults."""

    ping_interval: float | None = 20.0
    ping_timeout: float = 10.0
    rtt_interval: float | None = None
    """Ping at least this often even while data flows, to keep the round trip measured."""
    send_protocol_pings: bool = True
    pong_key: PongKey = "mirror"
    max_message_size: int = 1 << 20
    handshake_timeout: float = 10.0
    close_timeout: float = 5.0
    stale_timeout: float | None = None
    """Close (and so reconnect) when no data push arrives for this long while subscribed,
    e.g. a feed stuck on the server side that still answers pings. None disables it."""
    json_loads: JsonLoads = attrs.field(factory=_default_json_loads, eq=False, repr=False)
    fast_path: bool = True
    """Read plain text frames without wsproto (see `fastframe`); off, wsproto reads them all."""

    def __attrs_post_init__(self) -> None:
        if self.pong_key not in ("mirror", "event", "type"):
            raise ValueError("pong_key must be 'mirror', 'event' or 'type'")
        if self.stale_timeout is not None and self.stale_timeout <= 0:
            raise ValueError("stale_timeout must be positive (or None)")
        if self.max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
        if self.handshake_timeout <= 0 or self.close_timeout <= 0:
            raise ValueError("timeouts must be positive")


class WeexConnection:
    def __init__(
        self,
        config: WeexConfig,
        *,
        private: bool = False,
        subscriptions: SubscriptionBook | None = None,
        options: ConnectionOptions | None = None,
    ) -> None:
        self.config = config
        self.private = private
        self.subscriptions = subscriptions if subscriptions is not None else SubscriptionBook()
        self.options = options if options is not None else ConnectionOptions()
        self._endpoint = config.endpoint(private)
        self._dialect = config.dialect
        self._request_ids = 0  # the last id given to a request (v3 numbers its requests)
        self._requests: dict[str, tuple[str, str]] = {}  # id text -> (operation, channel)
        self._pong_ids: deque[str] = deque(maxlen=_PONG_IDS_KEPT)  # ids of our recent PONGs
        self._ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self._frames: FastFrameReader | None = None  # set once the handshake is done
        self._state = ConnectionState.IDLE
        self._events: deque[Event | PushTuple] = deque()  # a data push as a plain tuple
        self._outgoing = bytearray()
        self._heartbeat = Heartbeat(
            interval=self.options.ping_interval,
            timeout=self.options.ping_timeout,
            send_pings=self.options.send_protocol_pings,
            rtt_interval=self.options.rtt_interval,
        )
        self._handshake_deadline: float | None = None
        self._close_deadline: float | None = None
        self._fragments = bytearray()  # the message so far, as it came on the wire (UTF-8)
        self._reject: tuple[int, str, bytearray] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._ended_by: CloseInitiator | None = None
        self.opened_at: float | None = None
        """Monotonic `now` of the handshake's completion."""
        self.last_payload_at: float | None = None
        """Monotonic `now` of the latest data push (drives the stale-feed timer)."""
        self._wall_time = 0.0  # epoch seconds of the bytes being read: stamps messages

    def __repr__(self) -> str:
        kind = "private" if self.private else "public"
        return f"<WeexConnection {kind} {self._endpoint.path} {self._state.value}>"

    # ----------------------------------------------------------------- properties

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def is_open(self) -> bool:
        return self._state is ConnectionState.OPEN

    @property
    def expects_peer_close(self) -> bool:
        """Our Close frame went out unanswered and the peer still holds the socket.

        The peer may still be sending (say the rest of a message we refused), so the adapter
        should read and drop data until it hangs up (briefly) before closing the socket:
        closing with unread data makes the OS reset the connection, and the peer may then
        lose our Close. Not after a timeout (the peer is silent) or an EOF (it is gone).
        """
        return self._ws.state is WsState.LOCAL_CLOSING and self._ended_by not in (
            CloseInitiator.TIMEOUT,
            CloseInitiator.TRANSPORT,
        )

    # ----------------------------------------------------------------- output side

    @property
    def has_data_to_send(self) -> bool:
        """Whether `data_to_send()` would return anything (a cheap look, nothing taken)."""
        return bool(self._outgoing)

    def data_to_send(self) -> bytes:
        """Bytes the adapter must write to the socket now, in order."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def next_event(self) -> Event | None:
        if not self._events:
            return None
        event = self._events.popleft()
        return MessageReceived(PushFrame(*event)) if isinstance(event, tuple) else event

    def events(self) -> Iterator[Event]:
        """Drain the pending events."""
        while self._events:
            event = self._events.popleft()
            yield MessageReceived(PushFrame(*event)) if isinstance(event, tuple) else event

    def take_events(self) -> deque[Event | PushTuple]:
        """Drain the pending events at once, for a caller that handles a whole received buffer
        in one pass (the hub): what `events()` yields, except that a data push comes as the
        plain `PushTuple` of its `PushFrame`'s fields, `(channel, frame, timestamp, raw)`, with
        no object built around it (the hub builds a `PushFrame` only for those who read one)."""
        events, self._events = self._events, deque()
        return events

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next be called, or None if no timer is running."""
        if self._state is ConnectionState.CONNECTING:
            return self._handshake_deadline
        if self._state is ConnectionState.CLOSING:
            return self._close_deadline
        if self._state is ConnectionState.OPEN:
            heartbeat = self._heartbeat.next_deadline()
            stale = self._stale_deadline()
            if stale is None or heartbeat is None:
                return heartbeat if stale is None else stale
            return min(heartbeat, stale)
        return None

    def _stale_deadline(self) -> float | None:
        """With `stale_timeout`: when data last came plus the timeout, while subscribed, and
        when the oldest unanswered subscribe went out plus the timeout (a server that answers
        pings but never acks must not leave a stream waiting without bound)."""
        timeout = self.options.stale_timeout
        if timeout is None:
            return None
        deadline = None
        if self.last_payload_at is not None and self.subscriptions.active:
            deadline = self.last_payload_at + timeout
        unanswered = self.subscriptions.unanswered_since()
        if unanswered is not None and (deadline is None or unanswered[0] + timeout < deadline):
            deadline = unanswered[0] + timeout
        return deadline

    # ----------------------------------------------------------------- commands

    def initiate(self, now: float, *, wall_time: float | None = None) -> None:
        """Queue the HTTP upgrade request; a private one is signed at `wall_time`."""
        if self._state is not ConnectionState.IDLE:
            raise LocalProtocolError(f"cannot initiate a connection in state {self._state.value}")
        signed_at = now if wall_time is None else wall_time
        headers = handshake_headers(self.config, private=self.private, now=signed_at)
        request = ws.Request(
            host=self._endpoint.host_header,
            target=self._endpoint.path,
            extra_headers=[(name.encode(), value.encode()) for name, value in headers],
        )
        self._outgoing += self._ws.send(request)
        self._state = ConnectionState.CONNECTING
        self._handshake_deadline = now + self.options.handshake_timeout

    def subscribe(self, channel: str, now: float) -> None:
        """Ask for `channel`. Sent now if open, else on the next (re)connect.

        Raises `SubscriptionLimitError` when WEEX's documented limits would be broken.
        """
        request = self.subscriptions.subscribe(channel, now)
        if request is not None and self.is_open:
            self._send_request(request["event"], request["channel"])

    def unsubscribe(self, channel: str, now: float) -> None:
        request = self.subscriptions.unsubscribe(channel, now)
        if request is not None and self.is_open:
            self._send_request(request["event"], request["channel"])

    def send_request(self, operation: Literal["subscribe", "unsubscribe"], channel: str) -> None:
        """Send a subscribe/unsubscribe the subscription book has already counted (a pool
        that keeps the book itself), written as the dialect writes it."""
        self._require_open(f"send a {operation} request")
        self._send_request(operation, channel)

    def send_message(self, message: Mapping[str, Any] | str) -> None:
        """Send an arbitrary application message (a JSON object, or raw text)."""
        self._require_open("send a message")
        if isinstance(message, str):
            self._send_text(message)
        else:
            self._send_json(message)

    def send_pong(self, time: str, *, key: Literal["event", "type"] = "event") -> None:
        """Answer an application ping by hand (normally done automatically): on v3 a PONG
        request of its own id, which names neither `time` nor `key`."""
        self._require_open("send a pong")
        request_id = self._next_request_id()
        if self._dialect.request_ids:
            self._pong_ids.append(str(request_id))
        self._send_json(self._dialect.pong(key, time, request_id))

    def send_ping(self, now: float) -> None:
        """Send a WebSocket ping now; its pong arrives as `PongReceived` with the round trip."""
        self._require_open("send a ping")
        self._outgoing += self._ws.send(ws.Ping(payload=self._heartbeat.ping_payload(now)))

    def close(self, now: float, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the close handshake; `ConnectionClosed` follows when it completes or times out."""
        if self._state is ConnectionState.OPEN:
            self._outgoing += self._ws.send(ws.CloseConnection(code=code, reason=reason))
            self._state = ConnectionState.CLOSING
            self._close_deadline = now + self.options.close_timeout
            self.close_code, self.close_reason = code, reason
        elif self._state in (ConnectionState.IDLE, ConnectionState.CONNECTING):
            self._finish(
                code, reason or "closed before the handshake completed", CloseInitiator.LOCAL
            )

    # ----------------------------------------------------------------- input side

    def receive_data(
        self, data: bytes | None, now: float, *, wall_time: float | None = None
    ) -> None:
        """Bytes read from the socket; `None` (or b"") means the peer closed the TCP stream.

        Messages in `data` are stamped with `wall_time` (epoch seconds when it was read).
        """
        if self._state in (ConnectionState.CLOSED, ConnectionState.IDLE):
            return
        self._wall_time = now if wall_time is None else wall_time
        if not data:
            self._finish(ABNORMAL_CLOSURE, "connection lost", CloseInitiator.TRANSPORT)
            return
        self._heartbeat.traffic(now)
        try:
            if self._frames is not None:
                self._receive_frames(self._frames, data, now)
            else:
                self._receive_ws(data, now)
        except WsRemoteProtocolError as exc:
            self._finish(
                PROTOCOL_ERROR, f"invalid handshake response: {exc}", CloseInitiator.PROTOCOL_ERROR
            )
        except UnicodeDecodeError:  # wsproto decodes some 101 headers as ASCII without a guard
            reason = "invalid handshake response: a header is not ASCII"
            self._finish(PROTOCOL_ERROR, reason, CloseInitiator.PROTOCOL_ERROR)
        except WsLocalProtocolError as exc:  # e.g. answering a ping while our close is pending
            self._finish(
                INTERNAL_ERROR, f"internal protocol error: {exc}", CloseInitiator.PROTOCOL_ERROR
            )
        if (
            self._frames is None
            and self.options.fast_path
            and self._state is ConnectionState.OPEN
            and wsproto_between_frames(self._ws)
        ):
            self._frames = FastFrameReader(self.options.max_message_size)

    def _receive_frames(self, frames: FastFrameReader, data: bytes, now: float) -> None:
        """After the handshake: the fast path reads plain text frames, wsproto all the rest.

        One pass over the buffer: each data push is decoded and queued right here, as a plain
        `(channel, frame, wall_time, text)` tuple (what `_handle_text` does, without a call or
        an event object per frame); any other text goes to `_handle_other_text`."""
        loads, queue, wall_time = self.options.json_loads, self._events, self._wall_time
        pushed = False
        for piece in frames.feed(data):
            if type(piece) is str:
                try:
                    frame = loads(piece)
                except (ValueError, RecursionError):
                    frame = _INVALID
                if type(frame) is dict and frame.get("event") == "payload":
                    channel = frame.get("channel")
                    if type(channel) is str:
                        queue.append((channel, frame, wall_time, piece))
                        pushed = True
                        continue
                self._handle_other_text(piece, frame, now)
            elif isinstance(piece, InvalidText):
                close = CloseReason.INVALID_FRAME_PAYLOAD_DATA
                self._handle_close(ws.CloseConnection(code=close, reason=piece.reason))
            else:
                assert isinstance(piece, bytes)
                self._receive_ws(piece, now)
            if self._state is ConnectionState.CLOSED:
                break
        if pushed:
            self.last_payload_at = now

    def _receive_ws(self, data: bytes, now: float) -> None:
        self._ws.receive_data(data)
        for event in self._ws.events():
            self._handle_ws_event(event, now)
            if self.state is ConnectionState.CLOSED:
                return
        self._refuse_announced_oversize()

    def handle_timer(self, now: float) -> None:
        """Call when `next_deadline()` has passed (calling early is harmless)."""
        state = self._state
        if state is ConnectionState.CONNECTING:
            if self._handshake_deadline is not None and now >= self._handshake_deadline:
                self._finish(ABNORMAL_CLOSURE, "handshake timed out", CloseInitiator.TIMEOUT)
        elif state is ConnectionState.CLOSING:
            if self._close_deadline is not None and now >= self._close_deadline:
                self._finish(self.close_code, "close handshake timed out", CloseInitiator.TIMEOUT)
        elif state is ConnectionState.OPEN:
            stale = self._stale_deadline()
            if stale is not None and now >= stale:
                self.close(now, GOING_AWAY, self._stale_reason(now))
                return
            action = self._heartbeat.poll(now)
            if action is HeartbeatAction.SEND_PING:
                self.send_ping(now)
            elif action is HeartbeatAction.DEAD:
                timeout = self.options.ping_interval or 0.0
                timeout += self.options.ping_timeout
                self._finish(
                    ABNORMAL_CLOSURE, f"no traffic for {timeout:g}s", CloseInitiator.TIMEOUT
                )

    def _stale_reason(self, now: float) -> str:
        timeout = self.options.stale_timeout
        unanswered = self.subscriptions.unanswered_since()
        if unanswered is not None and timeout is not None and now >= unanswered[0] + timeout:
            return f"no answer to subscribe {unanswered[1]} for {timeout:g}s"
        return f"no data for {timeout:g}s"

    # ----------------------------------------------------------------- WebSocket events

    def _handle_ws_event(self, event: ws.Event, now: float) -> None:
        if isinstance(event, ws.TextMessage):
            text = self._collect(event.data, event.message_finished)
            if text is not None:
                assert isinstance(text, str)
                self._handle_text(text, now)
        elif isinstance(event, ws.BytesMessage):
            if self._collect(bytes(event.data), event.message_finished) is not None:
                self._emit(MessageSkipped("binary frame (WEEX sends text)", ""))
        elif isinstance(event, ws.Ping):
            self._outgoing += self._ws.send(event.response())
        elif isinstance(event, ws.Pong):
            round_trip = self._heartbeat.pong(bytes(event.payload), now)
            self._emit(PongReceived(round_trip))
        elif isinstance(event, ws.CloseConnection):
            self._handle_close(event)
        elif isinstance(event, ws.AcceptConnection):
            self._handle_accept(now)
        elif isinstance(event, ws.RejectConnection):
            self._reject = (event.status_code, f"HTTP {event.status_code}", bytearray())
            if not event.has_body:
                self._handle_reject_done()
        elif isinstance(event, ws.RejectData) and self._reject is not None:
            body = self._reject[2]
            if len(body) < self.options.max_message_size:
                body += event.data
            if event.body_finished:
                self._handle_reject_done()

    def _collect(self, chunk: str | bytes, finished: bool) -> str | bytes | None:
        """Reassemble fragmented messages, enforcing `max_message_size` in bytes as data arrives.

        wsproto hands over text already decoded, and `len()` of a str counts characters (up to
        four bytes each), so text is measured, and held, as UTF-8 again: one bytearray, where a
        list of small str fragments cost many times their size.
        """
        limit = self.options.max_message_size
        if finished and not self._fragments:
            if _over(chunk, limit):
                self._too_big(_byte_size(chunk))
                return None
            return chunk
        self._fragments += chunk.encode() if isinstance(chunk, str) else chunk
        if len(self._fragments) > limit:
            self._too_big(len(self._fragments))
            return None
        if not finished:
            return None
        message, self._fragments = bytes(self._fragments), bytearray()
        return message.decode() if isinstance(chunk, str) else message

    def _refuse_announced_oversize(self) -> None:
        """Refuse a message as soon as a frame header says it will pass the limit, rather than
        reading up to the limit first (wsproto has read the header, not yet the payload)."""
        pending = wsproto_pending_payload(self._ws)
        if pending and len(self._fragments) + pending > self.options.max_message_size:
            self._too_big(len(self._fragments) + pending)

    def _too_big(self, size: int) -> None:
        self._fragments = bytearray()
        limit = self.options.max_message_size
        reason = f"message of {size}+ bytes exceeds limit of {limit}"
        if self._ws.state is WsState.OPEN:  # else our Close is already out
            self._outgoing += self._ws.send(ws.CloseConnection(code=MESSAGE_TOO_BIG, reason=reason))
        self._finish(MESSAGE_TOO_BIG, reason, CloseInitiator.PROTOCOL_ERROR)

    def _handle_accept(self, now: float) -> None:
        self._state = ConnectionState.OPEN
        self.opened_at = self.last_payload_at = now
        self._handshake_deadline = None
        self._heartbeat.start(now)
        requests = self.subscriptions.connection_opened(now)
        for request in requests:
            self._send_request(request["event"], request["channel"])
        resubscribed = tuple(r["channel"] for r in requests)
        self._emit(Connected(self.private, resubscribed, opened_at=self._wall_time))

    def _handle_reject_done(self) -> None:
        assert self._reject is not None
        status, reason, body = self._reject
        code, message = _error_from_body(bytes(body))
        kind = error_codes.classify(code, message or reason, status)
        if kind is ErrorKind.AUTH and not self.private:
            kind = ErrorKind.OTHER  # no credentials were sent: a refusal, not an auth failure
        self._emit(ConnectionRejected(status, message or reason, kind, bytes(body)))
        self._finish(None, message or reason, CloseInitiator.REMOTE)

    def _handle_close(self, event: ws.CloseConnection) -> None:
        code, reason = event.code, event.reason or ""
        if self._ws.state is WsState.REMOTE_CLOSING:
            # The peer started the close handshake: answer it, then we are done.
            self._outgoing += self._ws.send(event.response())
            self._finish(code, reason, CloseInitiator.REMOTE)
        elif self._ws.state is WsState.CLOSED and self._state is ConnectionState.CLOSING:
            self._finish(self.close_code, self.close_reason, CloseInitiator.LOCAL)
        elif self._ws.state is WsState.OPEN:
            # wsproto reports a frame it could not parse as a close event with the code to use.
            self._outgoing += self._ws.send(ws.CloseConnection(code=code, reason=reason))
            self._finish(code, reason, CloseInitiator.PROTOCOL_ERROR)
        else:
            self._finish(code, reason, CloseInitiator.TRANSPORT)

    # ----------------------------------------------------------------- WEEX messages

    def _handle_text(self, text: str, now: float) -> None:
        try:
            frame = self.options.json_loads(text)
        except (ValueError, RecursionError):
            frame = _INVALID
        if type(frame) is dict and frame.get("event") == "payload":  # nearly every frame
            channel = frame.get("channel")
            if type(channel) is str:
                self.last_payload_at = now
                self._events.append((channel, frame, self._wall_time, text))
                return
        self._handle_other_text(text, frame, now)

    def _handle_other_text(self, text: str, frame: Any, now: float) -> None:
        """Everything but a well-formed data push: pings, acks, errors, bad frames."""
        if frame is _INVALID:
            if text.strip() == "ping":  # Bitget-style bare ping; cheap to answer
                if self._state is ConnectionState.OPEN:
                    self._send_text("pong")
                return
            self._emit(MessageSkipped("invalid JSON", text[:_SKIPPED_RAW_LIMIT]))
            return
        if not isinstance(frame, dict):
            self._emit(MessageSkipped("frame is not a JSON object", text[:_SKIPPED_RAW_LIMIT]))
            return
        if self._dialect.request_ids and self._handle_v3_text(text, frame, now):
            return
        event = frame.get("event")
        if event == "payload":
            channel = frame.get("channel")
            if isinstance(channel, str):
                self.last_payload_at = now
                self._events.append((channel, frame, self._wall_time, text))
            else:
                self._emit(MessageSkipped("payload without a channel", text[:_SKIPPED_RAW_LIMIT]))
        elif event == "ping" or (event is None and frame.get("type") == "ping"):
            self._answer_ping(frame, "event" if event == "ping" else "type", now)
        elif event == "subscribed" or event == "unsubscribed":
            self._handle_ack(event, frame.get("channel"), text, now)
        elif event == "error" or (event is None and "code" in frame):
            self._handle_error(frame, text, now)
        elif event == "pong" or frame.get("type") == "pong":
            pass  # traffic already counted by the heartbeat
        else:
            reason = f"unknown event {describe(event)}"
            self._emit(MessageSkipped(reason, text[:_SKIPPED_RAW_LIMIT]))

    def _handle_v3_text(self, text: str, frame: dict[str, Any], now: float) -> bool:
        """A v3 push (`e`), an answer to one of our requests (`id` with `result`), or the
        `connected` greeting; False for anything else (pings go the common way)."""
        if "e" in frame:
            converted = self._dialect.push(frame) if self._dialect.push is not None else None
            if isinstance(converted, dict):
                self.last_payload_at = now
                self._events.append((converted["channel"], converted, self._wall_time, text))
            else:
                reason = converted or "push of another dialect"
                self._emit(MessageSkipped(reason, text[:_SKIPPED_RAW_LIMIT]))
            return True
        if "id" in frame and "result" in frame:
            self._handle_answer(frame, text, now)
            return True
        return frame.get("event") == "connected" or frame.get("type") == "connected"

    def _handle_answer(self, frame: dict[str, Any], text: str, now: float) -> None:
        """`{"result":true,"id":N}` acks request N; `{"result":false,"id":N,"msg":...}` refuses
        it, which is an error on the request's channel."""
        request_id = text_of(frame.get("id"))
        request = self._requests.pop(request_id, None)
        if request is None:
            if request_id not in self._pong_ids:
                reason = "answer to no request of ours"
                self._emit(MessageSkipped(reason, text[:_SKIPPED_RAW_LIMIT]))
            return
        operation, channel = request
        if frame.get("result") is True:
            ack = "subscribed" if operation == "subscribe" else "unsubscribed"
            self._handle_ack(ack, channel, text, now)
        else:
            refusal = {"code": frame.get("code"), "msg": frame.get("msg", ""), "channel": channel}
            self._handle_error(refusal, text, now)

    def _answer_ping(self, frame: Mapping[str, Any], key: str, now: float) -> None:
        if self._state is not ConnectionState.OPEN:
            return  # closing: a pong can no longer be sent, and no longer matters
        time = frame.get("time")
        time_text = "" if time is None else text_of(time)
        reply_key = key if self.options.pong_key == "mirror" else self.options.pong_key
        request_id = self._next_request_id()
        if self._dialect.request_ids:
            self._pong_ids.append(str(request_id))
        reply = self._dialect.pong(reply_key, time, request_id)  # v2 echoes `time` as sent
        encoded = encode_json(reply)
        if encoded is not None:
            self._send_text(encoded)
        else:  # only a `time` nested past the recursion limit cannot be echoed
            self._send_json({reply_key: "pong"})
        self._emit(PingAnswered(time_text, key, self._wall_time, ping_server_time(time)))

    def _handle_ack(self, event: str, channel: object, text: str, now: float) -> None:
        if not isinstance(channel, str):
            self._emit(MessageSkipped(f"{event} ack without a channel", text[:_SKIPPED_RAW_LIMIT]))
            return
        if event == "subscribed":
            if not self.subscriptions.active:
                self.last_payload_at = now  # the stale clock starts with the first subscription
            self.subscriptions.on_subscribed(channel)
            self._emit(Subscribed(channel))
        else:
            self.subscriptions.on_unsubscribed(channel)
            self._emit(Unsubscribed(channel))

    def _handle_error(self, frame: Mapping[str, Any], text: str, now: float) -> None:
        raw_code = frame.get("code")
        code = None if raw_code is None else _bounded(text_of(raw_code), _ERROR_CODE_LIMIT)
        message = _bounded(text_of(frame.get("msg", frame.get("message", ""))), _ERROR_TEXT_LIMIT)
        channel = frame.get("channel")
        channel = channel if isinstance(channel, str) else None
        kind = error_codes.classify(code, message)
        refused = False
        if (
            channel is not None
            and self._state is ConnectionState.OPEN  # else the pending request dies with it
            and self.subscriptions.pending.get(channel) == "subscribe"
        ):
            retry = self.subscriptions.on_refused(channel, now)
            if retry is not None:  # a channel it served before: ask again
                self._send_request(retry["event"], retry["channel"])
            else:
                refused = True
        raw = text[:_SKIPPED_RAW_LIMIT]
        self._emit(ErrorReceived(kind, code, message, channel, raw, refused=refused))

    # ----------------------------------------------------------------- helpers

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _require_open(self, what: str) -> None:
        if self._state is not ConnectionState.OPEN:
            raise LocalProtocolError(f"cannot {what}: connection is {self._state.value}")

    def _next_request_id(self) -> int:
        self._request_ids += 1
        return self._request_ids

    def _send_request(self, operation: str, channel: str) -> None:
        """A subscribe/unsubscribe of `channel` (a v2 name), in the dialect's words; an id the
        answer will name is remembered until it comes (or the connection ends)."""
        request_id = self._next_request_id()
        if self._dialect.request_ids:
            self._requests[str(request_id)] = (operation, channel)
        self._send_json(self._dialect.request(operation, channel, request_id))

    def _send_json(self, message: Mapping[str, Any]) -> None:
        self._send_text(json.dumps(message, separators=(",", ":")))

    def _send_text(self, text: str) -> None:
        self._outgoing += self._ws.send(ws.Message(data=text))

    def _finish(self, code: int | None, reason: str, initiator: CloseInitiator) -> None:
        if self._state is ConnectionState.CLOSED:
            return
        self._state = ConnectionState.CLOSED
        self.close_code, self.close_reason = code, reason
        self._ended_by = initiator
        self._heartbeat.stop()
        self._requests.clear()
        self._fragments = bytearray()
        self.subscriptions.connection_lost()
        self._emit(ConnectionClosed(code, reason, initiator))


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _byte_size(chunk: str | bytes) -> int:
    return len(chunk.encode()) if isinstance(chunk, str) else len(chunk)


def _over(chunk: str | bytes, limit: int) -> bool:
    """Whether `chunk` is more than `limit` bytes as UTF-8, encoding only when in doubt."""
    if isinstance(chunk, bytes) or len(chunk) > limit:
        return len(chunk) > limit
    return len(chunk) * 4 > limit and len(chunk.encode()) > limit


def _error_from_body(body: bytes) -> tuple[str | None, str]:
    """WEEX REST-style error bodies look like {"code":"40009","msg":"..."}; use them if present."""
    if not body:
        return None, ""
    try:
        decoded = json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None, body[:200].decode("utf-8", errors="replace").strip()
    if not isinstance(decoded, dict):
        return None, ""
    raw_code = decoded.get("code")
    code = None if raw_code is None else _bounded(text_of(raw_code), _ERROR_CODE_LIMIT)
    message = decoded.get("msg", decoded.get("message", ""))
    return code, _bounded(message, _ERROR_TEXT_LIMIT) if isinstance(message, str) else ""
