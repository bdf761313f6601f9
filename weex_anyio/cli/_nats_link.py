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
    NatsProtocolError,
    ServerError,
    ServerInfo,
)

DEFAULT_PORT = 4222
RECEIVE_SIZE = 4096
"""Bytes read at a time: some fifty acks, so taking them is a step of bulk work as short as a
receive slice (a burst of acks is taken over several steps)."""


class NatsUnavailableError(WeexError):
    """The NATS server could not be reached (or refused the connection)."""


def without_credentials(url: str) -> str:
    """The URL as it may be shown: any `user:password@` (or `token@`) taken out, with or
    without a scheme."""
    if "@" not in url:
        return url
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    return f"{scheme}{separator}{rest.rpartition('@')[2]}"  # a NATS URL has no path


def url_credentials(url: str) -> dict[str, str]:
    """The URL's credentials, percent-decoded: `{"user": ..., "password": ...}`, `{"token":
    ...}` (a user without a password) or `{}`. The keywords of `NatsConnection` and of
    nats-py's `connect` (which, given the URL alone, sends them still encoded)."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"nats://{url}")
    user, password = _unquoted(parts.username), _unquoted(parts.password)
    if user is None and password is None:
        return {}
    if password is None:
        return {"token": user or ""}
    return {"user": user or "", "password": password}


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

    async def receive_bytes(self) -> bytes:
        """The next bytes received, for `conn.receive_data` (`anyio.EndOfStream` when it
        closed)."""
        return await self.stream.receive(RECEIVE_SIZE)

    async def aclose(self) -> None:
        self.closed = True
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()


async def open_link(
    url: str,
    timeout: float,  # noqa: ASYNC109 - one deadline over TCP, TLS and the handshake
    *,
    name: str = "weex-ws relay",
    ssl_context: ssl.SSLContext | None = None,
) -> NatsLink:
    """A connected link to the server at `url` (`nats://` or `tls://`, optionally with
    `user:password@` or `token@`); TLS when the URL or the server asks for it, with the
    certificate checked (against the system's CAs unless `ssl_context` says otherwise).
    `NatsUnavailableError` in one line if that fails within `timeout`."""
    shown = without_credentials(url)
    parts = urllib.parse.urlsplit(url if "://" in url else f"nats://{url}")
    if parts.scheme not in ("nats", "tls"):
        raise NatsUnavailableError(f"{shown}: a NATS URL starts with nats:// or tls://")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise NatsUnavailableError(f"{shown}: the port is not a number from 1 to 65535") from None
    host = parts.hostname or "127.0.0.1"
    conn = NatsConnection(**url_credentials(url), name=name)
    stream: anyio.abc.ByteStream | None = None
    try:
        with anyio.fail_after(timeout):
            stream = await anyio.connect_tcp(host, port)
            info = await _until(stream, conn, ServerInfo, shown)
            if parts.scheme == "tls" and not (info.tls_required or info.tls_available):
                raise NatsUnavailableError(f"{shown}: the URL asks for TLS; the server has none")
            if parts.scheme == "tls" or info.tls_required:
                stream = await TLSStream.wrap(
                    stream,
                    hostname=host,
                    ssl_context=ssl_context or ssl.create_default_context(),
                    standard_compatible=False,
                )
            if not info.headers:
                raise NatsUnavailableError(
                    f"{shown}: the server does not take message headers (nats-server 2.2 or "
                    "newer is needed for JetStream's Nats-Msg-Id)"
                )
            conn.connect()
            await stream.send(conn.data_to_send())
            await _until(stream, conn, Connected, shown)
    except NatsUnavailableError:
        await _close(stream)
        raise
    except TimeoutError:
        await _close(stream)
        raise NatsUnavailableError(f"{shown}: no NATS handshake within {timeout:g}s") from None
    except ssl.SSLCertVerificationError as exc:
        await _close(stream)
        reason = _one_line(exc.verify_message or str(exc))
        raise NatsUnavailableError(
            f"{shown}: the server's TLS certificate is not trusted: {reason}"
        ) from None
    except ssl.SSLError as exc:
        await _close(stream)
        raise NatsUnavailableError(f"{shown}: TLS failed: {_one_line(str(exc))}") from None
    except (OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
        await _close(stream)
        reason = _one_line(str(exc) or type(exc).__name__)
        raise NatsUnavailableError(f"{shown}: cannot reach NATS: {reason}") from None
    except NatsProtocolError as exc:
        await _close(stream)
        raise NatsUnavailableError(f"{shown}: not a NATS server: {exc}") from None
    return NatsLink(stream, conn)


async def _until(
    stream: anyio.abc.ByteStream, conn: NatsConnection, wanted: type[Any], shown: str
) -> Any:
    """Read until the protocol gives a `wanted` event. A fatal server error is an error,
    even one arriving with the `wanted` event (an `INFO` and the `-ERR` of a server that
    takes no more connections, say)."""
    while True:
        found = None
        for event in conn.receive_data(await stream.receive(RECEIVE_SIZE)):
            if isinstance(event, ServerError) and event.fatal:
                raise NatsUnavailableError(f"{shown}: NATS refused the connection: {event.text}")
            if found is None and isinstance(event, wanted):
                found = event
        if found is not None:
            return found
        pending = conn.data_to_send()  # a PONG for the server's PING
        if pending:
            await stream.send(pending)


async def _close(stream: anyio.abc.ByteStream | None) -> None:
    if stream is not None:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _unquoted(text: str | None) -> str | None:
    return None if text is None else urllib.parse.unquote(text)
