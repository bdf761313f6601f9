"""The relay's publishing connection to NATS: `weex_proto.nats_protocol` over an anyio stream.

The relay's hot path (a publish per record, an ack per record) goes through this lean
connection; nats-py is used for the stream's management only. The link moves bytes: the
protocol core decides what they mean.
"""

from __future__ import annotations

import ssl
import urllib.parse
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from weex_proto.errors import WeexError
from weex_proto.nats_protocol import (
    Connected,
    NatsConnection,
    NatsEvent,
    NatsProtocolError,
    ServerError,
    ServerInfo,
)

DEFAULT_PORT = 4222
RECEIVE_SIZE = 8192
"""Bytes read at a time: a hundred-odd acks, so one read is a short turn."""


class NatsUnavailableError(WeexError):
    """The NATS server could not be reached (or refused the connection)."""


def without_credentials(url: str) -> str:
    """The URL as it may be shown: any `user:password@` taken out."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class NatsLink:
    """One NATS connection: its protocol state and its byte stream. Sends are serialised
    (the publisher and the reader's `PONG` share the stream)."""

    def __init__(self, stream: anyio.abc.ByteStream, conn: NatsConnection) -> None:
        self.stream = stream
        self.conn = conn
        self.closed = False
        self._sending = anyio.Lock()

    async def flush(self) -> None:
        """Send what the protocol core has queued."""
        data = self.conn.data_to_send()
        if data:
            async with self._sending:
                await self.stream.send(data)

    async def receive(self) -> list[NatsEvent]:
        """The events of the next bytes received (`anyio.EndOfStream` when it closed)."""
        return self.conn.receive_data(await self.stream.receive(RECEIVE_SIZE))

    async def aclose(self) -> None:
        self.closed = True
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()


async def open_link(url: str, timeout: float, *, name: str = "weex-ws relay") -> NatsLink:  # noqa: ASYNC109
    """A connected link to the server at `url` (`nats://` or `tls://`, optionally with
    `user:password@` or `token@`); TLS when the URL or the server asks for it, with the
    certificate checked. `NatsUnavailableError` in one line if that fails within `timeout`."""
    shown = without_credentials(url)
    parts = urllib.parse.urlsplit(url if "://" in url else f"nats://{url}")
    if parts.scheme not in ("nats", "tls"):
        raise NatsUnavailableError(f"{shown}: a NATS URL starts with nats:// or tls://")
    host = parts.hostname or "127.0.0.1"
    user, password = _unquoted(parts.username), _unquoted(parts.password)
    token = user if password is None else None
    conn = NatsConnection(user=None if token else user, password=password, token=token, name=name)
    stream: anyio.abc.ByteStream | None = None
    try:
        with anyio.fail_after(timeout):
            stream = await anyio.connect_tcp(host, parts.port or DEFAULT_PORT)
            info = await _until(stream, conn, ServerInfo)
            if parts.scheme == "tls" or info.tls_required:
                context = ssl.create_default_context()
                stream = await TLSStream.wrap(
                    stream, hostname=host, ssl_context=context, standard_compatible=False
                )
            if not info.headers:
                raise NatsUnavailableError(
                    f"{shown}: the server does not take message headers (nats-server 2.2 or "
                    "newer is needed for JetStream's Nats-Msg-Id)"
                )
            conn.connect()
            await stream.send(conn.data_to_send())
            await _until(stream, conn, Connected)
    except NatsUnavailableError:
        await _close(stream)
        raise
    except (OSError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
        await _close(stream)
        reason = str(exc) or type(exc).__name__
        raise NatsUnavailableError(f"{shown}: cannot reach NATS: {reason}") from None
    except NatsProtocolError as exc:
        await _close(stream)
        raise NatsUnavailableError(f"{shown}: not a NATS server: {exc}") from None
    return NatsLink(stream, conn)


async def _until(stream: anyio.abc.ByteStream, conn: NatsConnection, wanted: type[Any]) -> Any:
    """Read until the protocol gives a `wanted` event; a fatal server error is an error."""
    while True:
        for event in conn.receive_data(await stream.receive(RECEIVE_SIZE)):
            if isinstance(event, wanted):
                return event
            if isinstance(event, ServerError) and event.fatal:
                raise NatsUnavailableError(f"NATS refused the connection: {event.text}")
        pending = conn.data_to_send()  # a PONG for the server's PING
        if pending:
            await stream.send(pending)


async def _close(stream: anyio.abc.ByteStream | None) -> None:
    if stream is not None:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


def _unquoted(text: str | None) -> str | None:
    return None if text is None else urllib.parse.unquote(text)
