"""Replaying a recording through the client: the exchange's side of the wire, without I/O.

A recording is the text frames a client received, each with its receive time. To replay one
deterministically we do not feed messages into the client from the side: we play the *server*.
`ReplayServer` answers the client's HTTP upgrade (wsproto in server mode computes the
`Sec-WebSocket-Accept`), acknowledges its subscriptions from the recording, and encodes the
recorded frames as WebSocket messages; so the whole client, framing and routing included, runs
exactly as it does live. An adapter moves the bytes and decides *when* to serve the next frame
(`due_at`); the frames' receive times become the client's clock, so the output is the same on
every run.

Also here: the one-line JSON form of a recorded frame (the `.jsonl` recording format), the
header line that says which protocol generation a `.jsonl` recording holds, and their
validation, shared by whatever stores recordings.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import wsproto
from wsproto import events as ws
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from .channels import is_private_channel, parse_channel
from .errors import WeexError
from .v3wire import wire_channel

__all__ = [
    "RecordedFrame",
    "RecordingError",
    "ReplayServer",
    "ReplayState",
    "channels_of",
    "due_at",
    "frame_dialect",
    "header_dialect",
    "parse_speed",
    "recording_header",
    "subscribable_channels",
]

UNKNOWN_CHANNEL_CODE = "404"
END_OF_RECORDING = "end of recording"


class RecordingError(WeexError, ValueError):
    """A recording that cannot be replayed: not in a known format, or a frame is malformed.

    The message says where (file and line or row), never more than a short excerpt of the data.
    """


RECORDING_KEYS = ("received_at", "channel", "raw")
"""The fields of every frame line of a `.jsonl` recording."""
RECORDING_FORMAT = "weex-ws recording 1"
"""What a recording says it is: a SQLite one's `format` key, a `.jsonl` one's header line."""
DIALECTS = ("v2", "v3")


@attrs.frozen
class RecordedFrame:
    """One text frame as the client received it."""

    received_at: float
    """Seconds since the epoch, from the recording client's clock."""
    channel: str
    raw: str
    """The frame's text, exactly as received."""

    def to_json_line(self) -> str:
        """The frame as one line of a `.jsonl` recording (without the newline)."""
        record = {"received_at": self.received_at, "channel": self.channel, "raw": self.raw}
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json_line(cls, line: str, *, where: str = "line") -> RecordedFrame:
        """Parse one `.jsonl` line; `RecordingError` naming `where` if it is not a frame."""
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise RecordingError(f"{where}: not valid JSON") from None
        if not isinstance(record, dict):
            raise RecordingError(f"{where}: expected a JSON object")
        missing = [key for key in RECORDING_KEYS if key not in record]
        if missing:  # some other JSON lines (e.g. a command's --json output), not a recording
            shown = ", ".join(repr(key) for key in list(record)[:6]) or "nothing"
            raise RecordingError(
                f"{where}: not a weex-ws recording (each line of one has received_at, channel "
                f"and raw; this one has {shown})"
            )
        return cls.checked(
            record.get("received_at"), record.get("channel"), record.get("raw"), where
        )

    @classmethod
    def checked(
        cls, received_at: object, channel: object, raw: object, where: str
    ) -> RecordedFrame:
        """A frame from untrusted values (a file's fields or a database row), validated."""
        seconds = -1.0
        if isinstance(received_at, int | float) and not isinstance(received_at, bool):
            with contextlib.suppress(OverflowError):  # an integer beyond any float stays -1
                seconds = float(received_at)
        if not math.isfinite(seconds) or seconds < 0:
            raise RecordingError(f"{where}: received_at must be seconds since the epoch")
        if not isinstance(channel, str) or not channel:
            raise RecordingError(f"{where}: channel must be a non-empty string")
        if not isinstance(raw, str):
            raise RecordingError(f"{where}: raw must be the frame's text")
        return cls(seconds, channel, raw)


def recording_header(dialect: str) -> str:
    """The first line of a `.jsonl` recording (without the newline): the format and the
    protocol generation of its frames, stated once as a SQLite recording's table does."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
    return json.dumps({"format": RECORDING_FORMAT, "dialect": dialect}, separators=(",", ":"))


def header_dialect(line: str, *, where: str = "line 1") -> str | None:
    """The dialect a `.jsonl` recording's first line declares; None when that line is not a
    header (a file written without one: its frames tell). `RecordingError` for a header of
    another format or an unknown dialect."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None  # not a header; reading it as a frame says what is wrong
    if not isinstance(record, dict) or "format" not in record or "raw" in record:
        return None
    if record["format"] != RECORDING_FORMAT:
        shown = str(record["format"])[:40]
        raise RecordingError(f"{where}: a recording of format {shown!r}, not {RECORDING_FORMAT!r}")
    dialect = record.get("dialect")
    if dialect not in DIALECTS:
        raise RecordingError(f"{where}: dialect must be one of {', '.join(DIALECTS)}")
    return str(dialect)


def frame_dialect(raw: str) -> str | None:
    """Which protocol generation a recorded frame's text is: "v3" for a v3 push (an object
    with `e`), "v2" for a v2 one (`event`), None if it is neither."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(frame, dict):
        return None
    if "e" in frame:
        return "v3"
    return "v2" if "event" in frame else None


def subscribable_channels(channels: Iterable[str]) -> tuple[str, ...]:
    """The channels a client replaying these would subscribe to, first seen first.

    Public channels the protocol defines; private ones would need the private endpoint, and
    frames of any channel are served anyway (the client routes what it has handlers for).
    """
    found: dict[str, None] = {}
    for channel in channels:
        if parse_channel(channel) is not None and not is_private_channel(channel):
            found.setdefault(channel)
    return tuple(found)


def parse_speed(text: str) -> float | None:
    """`recorded` is 1.0, `max` is None (no waiting), `2` or `2x` is twice as fast."""
    cleaned = text.strip().lower()
    if cleaned == "recorded":
        return 1.0
    if cleaned == "max":
        return None
    try:
        factor = float(cleaned.removesuffix("x"))
    except ValueError:
        raise ValueError(
            f"speed must be 'recorded', 'max' or a factor like 2, not {text!r}"
        ) from None
    if not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"speed factor must be a positive number, not {text!r}")
    return factor


def due_at(recorded: float, first: float, started: float, speed: float | None) -> float | None:
    """When a frame received at `recorded` is served, on the replayer's clock.

    `first` is the recording's first receive time and `started` when it was served; None means
    at once. Out-of-order times never make a frame due before the start.
    """
    if speed is None:
        return None
    return started + max(0.0, recorded - first) / speed


class ReplayState(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class ReplayServer:
    """The server end of one replayed WebSocket connection.

    `channels` are those the recording has frames for: subscriptions to them are acknowledged,
    others get an error frame. The adapter serves frames once `ready` (the client has
    subscribed to every channel in `await_channels`, by default all subscribable ones), so no
    frame arrives before the client is listening for it.
    """

    def __init__(
        self, channels: Iterable[str], *, await_channels: Iterable[str] | None = None
    ) -> None:
        self.channels = frozenset(channels)
        awaited = subscribable_channels(self.channels) if await_channels is None else await_channels
        self.await_channels = frozenset(awaited)
        self.subscribed: set[str] = set()
        self.v3 = False
        """The client asked for a `/v3/` path: requests carry ids and are answered by id."""
        self._v3_names = {wire_channel(channel): channel for channel in self.channels}
        self.state = ReplayState.HANDSHAKE
        self._ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        self._outgoing = bytearray()
        self._text: list[str] = []

    def __repr__(self) -> str:
        return f"<ReplayServer {self.state.value} subscribed={len(self.subscribed)}>"

    @property
    def ready(self) -> bool:
        """Open, and every awaited channel is subscribed: frames may be served."""
        return self.state is ReplayState.OPEN and self.await_channels <= self.subscribed

    def data_to_send(self) -> bytes:
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def send_frame(self, raw: str) -> None:
        """Queue one recorded frame (only while open; dropped otherwise)."""
        if self.state is ReplayState.OPEN:
            self._outgoing += self._ws.send(ws.Message(data=raw))

    def close(self, reason: str = END_OF_RECORDING) -> None:
        """Start a clean close (code 1000); the client's answer completes it."""
        if self.state is ReplayState.OPEN:
            self._outgoing += self._ws.send(ws.CloseConnection(code=1000, reason=reason))
            self.state = ReplayState.CLOSING
        elif self.state is ReplayState.HANDSHAKE:
            self.state = ReplayState.CLOSED

    def receive_data(self, data: bytes | None) -> None:
        """Bytes the client sent; None (or b"") when it closed the stream."""
        if self.state is ReplayState.CLOSED:
            return
        if not data:
            self.state = ReplayState.CLOSED
            return
        try:
            self._ws.receive_data(data)
            for event in self._ws.events():
                self._handle(event)
        except (WsRemoteProtocolError, WsLocalProtocolError):
            self.state = ReplayState.CLOSED

    def _handle(self, event: ws.Event) -> None:
        if isinstance(event, ws.Request):
            self.v3 = event.target.startswith("/v3/")
            self._outgoing += self._ws.send(ws.AcceptConnection())
            self.state = ReplayState.OPEN
        elif isinstance(event, ws.TextMessage):
            self._text.append(event.data)
            if event.message_finished:
                text, self._text = "".join(self._text), []
                self._handle_text(text)
        elif isinstance(event, ws.Ping):
            self._outgoing += self._ws.send(event.response())
        elif isinstance(event, ws.CloseConnection):
            if self.state is ReplayState.OPEN:
                self._outgoing += self._ws.send(event.response())
            self.state = ReplayState.CLOSED

    def _handle_text(self, text: str) -> None:
        try:
            message: Any = json.loads(text)
        except (ValueError, RecursionError):
            return
        if not isinstance(message, dict):
            return
        if self.v3:
            self._handle_v3(message)
            return
        event, channel = message.get("event"), message.get("channel")
        if not isinstance(channel, str):
            return
        if event == "subscribe":
            if channel in self.channels:
                self.subscribed.add(channel)
                self._send_json({"event": "subscribed", "channel": channel})
            else:
                self._send_json(
                    {
                        "event": "error",
                        "code": UNKNOWN_CHANNEL_CODE,
                        "msg": "channel is not in the recording",
                        "channel": channel,
                    }
                )
        elif event == "unsubscribe":
            self.subscribed.discard(channel)
            self._send_json({"event": "unsubscribed", "channel": channel})

    def _handle_v3(self, message: dict[str, Any]) -> None:
        """`{"method":"SUBSCRIBE","params":[...],"id":N}` answered by id; the rest ignored."""
        method, names, request_id = message.get("method"), message.get("params"), message.get("id")
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(names, list):
            return
        channels = [self._v3_names.get(name) if isinstance(name, str) else None for name in names]
        if method == "UNSUBSCRIBE":
            self.subscribed.difference_update(c for c in channels if c is not None)
        elif None in channels:
            refusal = {"result": False, "id": request_id, "msg": "channel is not in the recording"}
            self._send_json(refusal)
            return
        else:
            self.subscribed.update(c for c in channels if c is not None)
        self._send_json({"id": request_id, "result": True})

    def _send_json(self, message: dict[str, Any]) -> None:
        self._outgoing += self._ws.send(ws.Message(data=json.dumps(message, separators=(",", ":"))))


def channels_of(frames: Sequence[RecordedFrame]) -> tuple[str, ...]:
    """Every channel in the recording, first seen first."""
    return tuple(dict.fromkeys(frame.channel for frame in frames))
