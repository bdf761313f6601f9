"""The client side of the NATS text protocol, as much as a publisher needs: sans-IO.

The relay publishes every record with a reply subject of its own and reads JetStream's acks
from one subscription. A general-purpose client pays for its generality on each of those
(a header dict encoded per publish, a message object, a queue and a task switch per ack);
this one writes each publish as one `HPUB` line and reads a whole received buffer of acks
in one pass. It keeps to the protocol's published grammar (docs.nats.io, "Client
Protocol"): `INFO`, `CONNECT`, `PING`/`PONG`, `+OK`/`-ERR`, `SUB`, `HPUB`, `MSG`, `HMSG`.

States, top to bottom:

    AWAITING_INFO --INFO--> INFO_RECEIVED --connect()--> CONNECTING --PONG--> READY
    any state --a -ERR the server closes after, or bytes that are not NATS--> CLOSED

TLS is the transport's business: when the first `INFO` says `tls_required` (or the URL
asked for it), the adapter wraps its stream before calling `connect()`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any, Final

import attrs

from ._version import __version__
from .errors import WeexError

__all__ = [
    "Connected",
    "NatsConnection",
    "NatsProtocolError",
    "NatsState",
    "Reply",
    "ServerError",
    "ServerInfo",
    "msg_id_headers",
]

MAX_CONTROL_LINE: Final = 32 * 1024
"""Bytes a control line may take, whether or not its end has arrived: a bound on what waits
in the buffer. Past nats-server's 4096 for what clients send, as its `INFO` lists the URLs of
a whole cluster."""
DEFAULT_MAX_PAYLOAD: Final = 1024 * 1024
"""nats-server's default, used until the server's `INFO` says otherwise."""
LARGEST_MAX_PAYLOAD: Final = 64 * 1024 * 1024
"""The most nats-server can be configured to take: an `INFO` saying more is not to be
believed (the receive buffer is bounded by it)."""

_CRLF: Final = b"\r\n"
_PONG: Final = b"PONG\r\n"
_PING: Final = b"PING\r\n"
# An -ERR after which the server keeps the connection open (the others close it).
_SOFT_ERRORS: Final = ("'permissions violation", "'invalid subject", "'invalid publish subject")


class NatsState(Enum):
    AWAITING_INFO = "awaiting info"
    INFO_RECEIVED = "info received"
    CONNECTING = "connecting"
    READY = "ready"
    CLOSED = "closed"


class NatsProtocolError(WeexError):
    """The peer sent something that is not the NATS protocol (or breaks its limits)."""


@attrs.frozen
class ServerInfo:
    """The server's `INFO`: what a publisher must respect."""

    max_payload: int
    tls_required: bool
    headers: bool
    server_id: str
    tls_available: bool = False
    """TLS offered but not required (a `tls://` URL may ask for it)."""


@attrs.frozen
class Connected:
    """The server answered our `PING` after `CONNECT`: it took the connection."""


@attrs.frozen
class Reply:
    """A message on one of our subscriptions (for the relay: a JetStream ack). `status` is
    the code of a header-only reply (`"503"`: no responders), else None."""

    subject: str
    data: bytes
    status: str | None = None


@attrs.frozen
class ServerError:
    """`-ERR '<text>'`. `fatal`: the server closes the connection after it."""

    text: str
    fatal: bool


NatsEvent = ServerInfo | Connected | Reply | ServerError


def msg_id_headers(msg_id: str) -> bytes:
    """The header block of a publish carrying `Nats-Msg-Id` (JetStream's dedup key)."""
    return b"NATS/1.0\r\nNats-Msg-Id: " + msg_id.encode() + b"\r\n\r\n"


class _Secret(bytes):
    """Bytes holding credentials (a queued `CONNECT`): its repr does not show them."""

    def __repr__(self) -> str:
        return "<CONNECT, credentials hidden>"


@attrs.define(repr=False)
class _Credentials:
    user: str | None = None
    password: str | None = None
    token: str | None = None

    def connect_fields(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        if self.token is not None:
            fields["auth_token"] = self.token
        if self.user is not None:
            fields["user"] = self.user
        if self.password is not None:
            fields["pass"] = self.password
        return fields

    def __repr__(self) -> str:
        return "_Credentials(<hidden>)"


class NatsConnection:
    """One NATS client connection's protocol state: bytes in, events out, bytes to send.

    `receive_data(data)` returns the events in `data` (with whatever an earlier call left
    incomplete); `data_to_send()` takes what is queued (`CONNECT`, `SUB`, publishes, the
    `PONG` answering a server `PING`). Credentials go into `CONNECT` and nowhere else.
    """

    def __init__(
        self,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        name: str = "weex-ws",
    ) -> None:
        self.state = NatsState.AWAITING_INFO
        self.info: ServerInfo | None = None
        self.name = name
        self._credentials = _Credentials(user, password, token)
        self._buffer = b""
        self._out: list[bytes] = []
        self._next_sid = 1
        self.pong_queued = False
        """A `PONG` answering the server's `PING` waits in what is to be sent: a reader that
        sends nothing else knows to send it."""

    def __repr__(self) -> str:
        return f"<NatsConnection {self.state.value}>"

    @property
    def max_payload(self) -> int:
        """The largest publish (headers and body) the server takes."""
        return self.info.max_payload if self.info is not None else DEFAULT_MAX_PAYLOAD

    # -- what we send ------------------------------------------------------------------------

    def connect(self) -> None:
        """Queue `CONNECT` and a `PING`; the `PONG` that answers it is `Connected`."""
        if self.state is not NatsState.INFO_RECEIVED:
            raise NatsProtocolError(f"connect() in state {self.state.value}")
        options: dict[str, Any] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python",
            "version": __version__,
            "name": self.name,
        }
        options.update(self._credentials.connect_fields())
        self._out.append(_Secret(b"CONNECT " + json.dumps(options).encode() + _CRLF + _PING))
        self.state = NatsState.CONNECTING

    def subscribe(self, subject: str) -> int:
        """Queue `SUB subject sid`; the sid."""
        _check_subject(subject)
        sid = self._next_sid
        self._next_sid += 1
        self._out.append(f"SUB {subject} {sid}\r\n".encode())
        return sid

    def unsubscribe(self, sid: int) -> None:
        self._out.append(b"UNSUB %d\r\n" % sid)

    def publish(
        self, subject: str, payload: bytes, *, reply: str = "", headers: bytes = b""
    ) -> None:
        """Queue one `HPUB` (`PUB` without headers); `headers` is a whole header block
        (`msg_id_headers`). The caller keeps publishes within `max_payload` (the server
        closes the connection on a larger one) and checks its subjects once, not here."""
        size = len(headers)
        to = b"%s %s" % (subject.encode(), reply.encode()) if reply else subject.encode()
        if size:
            self._out.append(
                b"HPUB %s %d %d\r\n%s%s\r\n" % (to, size, size + len(payload), headers, payload)
            )
        else:
            self._out.append(b"PUB %s %d\r\n%s\r\n" % (to, len(payload), payload))

    def ping(self) -> None:
        self._out.append(_PING)

    def data_to_send(self) -> bytes:
        """Everything queued, oldest first, as one buffer (empty if nothing is)."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        self.pong_queued = False
        return out

    # -- what we receive ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[NatsEvent]:
        """The events in `data`, in order. Raises `NatsProtocolError` (and the connection is
        closed) for bytes that are not NATS."""
        if self.state is NatsState.CLOSED:
            return []
        buffer = self._buffer + data if self._buffer else data
        events: list[NatsEvent] = []
        pos = 0
        size = len(buffer)
        try:
            while pos < size:
                end = buffer.find(_CRLF, pos)
                if end < 0:
                    if size - pos > MAX_CONTROL_LINE:
                        raise NatsProtocolError("a control line longer than the limit")
                    break
                if end - pos > MAX_CONTROL_LINE:  # the same line, whole or in pieces
                    raise NatsProtocolError("a control line longer than the limit")
                head = buffer[pos : pos + 4]
                if head == b"MSG ":
                    pos = self._message(buffer, pos + 4, end, events)
                elif head == b"HMSG" and buffer[pos + 4 : pos + 5] == b" ":
                    pos = self._header_message(buffer, pos + 5, end, events)
                else:
                    self._control(buffer[pos:end], events)
                    pos = end + 2
                if pos < 0:  # a message whose payload has not all arrived
                    pos = -pos - 1
                    break
        except (ValueError, IndexError, RecursionError) as exc:
            self.state = NatsState.CLOSED
            raise NatsProtocolError(f"not the NATS protocol: {exc}") from None
        except NatsProtocolError:
            self.state = NatsState.CLOSED
            raise
        self._buffer = buffer[pos:]
        return events

    def _message(self, buffer: bytes, start: int, end: int, events: list[NatsEvent]) -> int:
        """`MSG <subject> <sid> [reply] <size>`: the position after it, or `-start - 1` of
        this line if its payload is not all here yet."""
        fields = buffer[start:end].split()
        if not 3 <= len(fields) <= 4:
            raise NatsProtocolError(f"MSG with {len(fields)} fields")
        payload = end + 2
        stop = payload + self._size(fields[-1])
        if stop + 2 > len(buffer):
            return -(start - 4) - 1
        events.append(Reply(fields[0].decode(), buffer[payload:stop]))
        return stop + 2

    def _header_message(self, buffer: bytes, start: int, end: int, events: list[NatsEvent]) -> int:
        """`HMSG <subject> <sid> [reply] <header size> <total size>`, as `_message`."""
        fields = buffer[start:end].split()
        if not 4 <= len(fields) <= 5:
            raise NatsProtocolError(f"HMSG with {len(fields)} fields")
        payload = end + 2
        headers_end = payload + self._size(fields[-2])
        stop = payload + self._size(fields[-1])
        if headers_end > stop:
            raise NatsProtocolError("HMSG headers longer than the whole message")
        if stop + 2 > len(buffer):
            return -(start - 5) - 1
        line_end = buffer.find(_CRLF, payload, headers_end)
        status_line = buffer[payload:line_end] if line_end >= 0 else b""
        code = status_line[9:12]  # b"NATS/1.0 503" -> b"503"
        status = code.decode() if code.isdigit() else None
        events.append(Reply(fields[0].decode(), buffer[headers_end:stop], status))
        return stop + 2

    def _size(self, text: bytes) -> int:
        if not text.isdigit():  # ASCII digits only: int() would take "+4", "1_0", " 4"
            raise NatsProtocolError(f"a size of {text[:20]!r}")
        size = int(text)
        if not 0 <= size <= self.max_payload + MAX_CONTROL_LINE:
            raise NatsProtocolError(f"a message of {size} bytes, past the server's own limit")
        return size

    def _control(self, line: bytes, events: list[NatsEvent]) -> None:
        verb = line.split(b" ", 1)[0].upper()
        if verb == b"PING":
            self._out.append(_PONG)
            self.pong_queued = True
        elif verb == b"PONG":
            if self.state is NatsState.CONNECTING:
                self.state = NatsState.READY
                events.append(Connected())
        elif verb == b"+OK":
            pass
        elif verb == b"-ERR":
            text = line[4:].strip().decode(errors="replace")
            fatal = not text.lower().startswith(_SOFT_ERRORS)
            if fatal:
                self.state = NatsState.CLOSED
            events.append(ServerError(text.strip("'")[:300], fatal))
        elif verb == b"INFO":
            info = self._info(line[5:])
            if self.state is NatsState.AWAITING_INFO:
                self.state = NatsState.INFO_RECEIVED
                events.append(info)
        else:
            raise NatsProtocolError(f"unknown operation {line[:40]!r}")

    def _info(self, text: bytes) -> ServerInfo:
        fields = json.loads(text)
        if not isinstance(fields, Mapping):
            raise ValueError("INFO is not a JSON object")
        max_payload = fields.get("max_payload", DEFAULT_MAX_PAYLOAD)
        if type(max_payload) is not int or not 0 < max_payload <= LARGEST_MAX_PAYLOAD:
            raise NatsProtocolError(f"INFO with max_payload {str(max_payload)[:20]!r}")
        info = ServerInfo(
            max_payload=max_payload,
            tls_required=bool(fields.get("tls_required", False)),
            headers=bool(fields.get("headers", False)),
            server_id=str(fields.get("server_id", ""))[:100],
            tls_available=bool(fields.get("tls_available", False)),
        )
        if self.info is None or self.state is NatsState.AWAITING_INFO:
            self.info = info
        return info


def _check_subject(subject: str) -> None:
    if not subject or any(character in subject for character in " \t\r\n"):
        raise ValueError(f"{subject[:80]!r} is not a NATS subject")
