"""A byte stream read by an `asyncio.Protocol`: the default transport's stream on asyncio.

anyio's socket stream resumes reading for each `receive`, pauses it again after (two
`epoll_ctl` calls), and hands over one chunk per call. Here the protocol keeps reading while
the client works: `data_received` appends to a buffer, and one `receive` returns everything that
has accumulated (up to `max_bytes`) without waiting when anything is there. Memory stays bounded:
past `HIGH_WATER` unread bytes the protocol pauses reading (TCP's window then holds the server
back) and resumes below `LOW_WATER`.

TLS is asyncio's own (`create_connection(ssl=...)`, or `start_tls` inside a proxy tunnel).
On trio, anyio's streams are used as before: this module is asyncio only.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections import deque
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

HIGH_WATER = 1 << 20
"""Unread bytes at which reading pauses: four of asyncio's 256 KiB socket reads."""
LOW_WATER = 1 << 18
"""Unread bytes at which a paused stream reads again."""
HAPPY_EYEBALLS_DELAY = 0.25  # seconds before trying the next address, as anyio.connect_tcp does


class _ReadProtocol(asyncio.Protocol):
    """Buffers what the socket delivers and wakes the one waiting reader."""

    def __init__(self, high_water: int, low_water: int) -> None:
        self.high_water = high_water
        self.low_water = low_water
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.reading_paused = False
        self.at_eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.tls = False
        self._reader: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # A send returns once the kernel has the bytes, as anyio's does, so closing by abort()
        # never discards a close frame the client has already sent.
        transport.set_write_buffer_limits(0)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= self.high_water and not self.reading_paused:
            self.reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.at_eof = True
        self._wake_reader()
        # Keep a plain TCP stream half-open (our close frame may still have to go out); asyncio's
        # TLS ignores the answer and warns if it is true.
        return not self.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.at_eof = self.lost = True
        self.error = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    def _wake_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _wake_writer(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    async def readable(self) -> None:
        """Until data, EOF or loss arrives (cancellable)."""
        self._reader = reader = asyncio.get_running_loop().create_future()
        try:
            await reader
        finally:
            if self._reader is reader:
                self._reader = None

    async def writable(self) -> None:
        """Until the transport's write buffer has drained (or the connection is lost)."""
        if self._writable is not None:
            await asyncio.shield(self._writable)

    def take(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` of the buffered bytes (there is at least one chunk)."""
        chunks = self.chunks
        data = chunks.popleft()
        if len(data) > max_bytes:
            chunks.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        elif chunks and len(data) < max_bytes:
            parts, size = [data], len(data)
            while chunks and size < max_bytes:
                piece = chunks.popleft()
                room = max_bytes - size
                if len(piece) > room:
                    chunks.appendleft(piece[room:])
                    piece = piece[:room]
                parts.append(piece)
                size += len(piece)
            data = b"".join(parts)
        self.buffered -= len(data)
        if self.reading_paused and self.buffered <= self.low_water and not self.lost:
            self.reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        return data


class ProtocolStream(anyio.abc.ByteStream):
    """One connection's bytes, read by `_ReadProtocol`; errors are anyio's, like its streams.

    `receive` returns at once, without a checkpoint, when bytes are buffered: the client's
    receive loop yields on every pass anyway (its flush), and timers it must not miss it
    handles before reading. It waits only when the buffer is empty.
    """

    def __init__(self, transport: asyncio.Transport, protocol: _ReadProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closed = False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read."""
        return self._protocol.buffered

    @property
    def reading_paused(self) -> bool:
        """True while the unread bytes are past the high-water mark and reading waits."""
        return self._protocol.reading_paused

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        protocol = self._protocol
        while not protocol.chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.at_eof:
                if protocol.error is not None:
                    raise anyio.BrokenResourceError from protocol.error
                raise anyio.EndOfStream
            await protocol.readable()
        return protocol.take(max_bytes)

    async def send(self, item: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from protocol.error
        self._transport.write(item)
        await protocol.writable()
        if protocol.lost and protocol.error is not None:
            raise anyio.BrokenResourceError from protocol.error

    async def send_eof(self) -> None:
        if self._transport.can_write_eof():
            self._transport.write_eof()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.abort()  # sends have drained already; no TLS close_notify, as anyio
        await anyio.lowlevel.checkpoint()

    def unread(self, data: bytes) -> None:
        """Put `data` back in front of what is buffered (bytes a proxy sent after its reply)."""
        if data:
            self._protocol.chunks.appendleft(data)
            self._protocol.buffered += len(data)

    async def start_tls(self, ssl_context: ssl.SSLContext, hostname: str) -> None:
        """Switch this (tunnelled) connection to TLS, verifying `hostname`; nothing may be
        buffered unread (it would bypass TLS)."""
        assert not self._protocol.chunks, "unread bytes before the TLS handshake"
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            self._transport, self._protocol, ssl_context, server_hostname=hostname
        )
        assert isinstance(transport, asyncio.Transport)
        self._transport = self._protocol.transport = transport
        self._protocol.tls = True
        transport.set_write_buffer_limits(0)

    @property
    def extra_attributes(self) -> Mapping[Any, Any]:
        transport = self._transport
        return {
            anyio.abc.SocketAttribute.raw_socket: lambda: transport.get_extra_info("socket"),
            anyio.abc.SocketAttribute.remote_address: lambda: transport.get_extra_info("peername"),
            anyio.abc.SocketAttribute.local_address: lambda: transport.get_extra_info("sockname"),
        }


async def open_protocol_stream(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    high_water: int = HIGH_WATER,
    low_water: int = LOW_WATER,
) -> ProtocolStream:
    """TCP to `host:port` (TLS with `ssl_context`, verified for `server_hostname`)."""
    if not 0 <= low_water <= high_water or high_water < 1:
        raise ValueError("need 0 <= low_water <= high_water and high_water >= 1")
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_connection(
            lambda: _ReadProtocol(high_water, low_water),
            host,
            port,
            ssl=ssl_context,
            server_hostname=server_hostname if ssl_context is not None else None,
            happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY,
        )
    except OSError as exc:
        if exc.errno is None or isinstance(exc, ssl.SSLError | socket.gaierror):
            raise  # a resolver's error says its reason itself ("Name or service not known")
        # asyncio says "Connect call failed (address)"; the reason itself ("Connection
        # refused") is what a person needs to read, as anyio's streams give it.
        raise OSError(exc.errno, os.strerror(exc.errno)) from exc
    protocol.tls = ssl_context is not None
    return ProtocolStream(transport, protocol)


def on_asyncio() -> bool:
    """True when running on an asyncio event loop (not trio, with or without anyio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
