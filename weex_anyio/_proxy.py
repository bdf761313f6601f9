"""Connecting through a proxy with anyio: TCP to the proxy, its handshake, then TLS in the tunnel.

The handshake itself is `weex_proto.proxy`'s; this module only moves its bytes. Bytes the proxy
sent after its reply are the exchange's, so they are put back in front of the stream. On asyncio
the tunnel is a `ProtocolStream`, and TLS inside it is asyncio's `start_tls`.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from weex_proto.config import Endpoint
from weex_proto.proxy import ProxyURL, proxy_handshake, unreachable
from weex_proto.runtime.tls import default_ssl_context
from weex_proto.runtime.tunnel import establish_tunnel

from ._asyncio_stream import ProtocolStream, open_protocol_stream

STREAM_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


async def connect_through(
    proxy: ProxyURL,
    endpoint: Endpoint,
    ssl_context: ssl.SSLContext | None,
    user_agent: str | None,
    *,
    asyncio_protocol: bool = False,
) -> anyio.abc.ByteStream:
    """A stream to `endpoint` through `proxy`, TLS-wrapped (verified for the exchange's name)
    for `wss://`; with `asyncio_protocol` (on asyncio only) a `ProtocolStream`."""
    tcp: anyio.abc.ByteStream
    try:
        if asyncio_protocol:
            tcp = await open_protocol_stream(proxy.host, proxy.port)
        else:
            tcp = await anyio.connect_tcp(proxy.host, proxy.port)
    except OSError as exc:
        raise unreachable(proxy, exc) from None
    try:
        host = endpoint.host if proxy.remote_dns else await _resolve(endpoint)
        handshake = proxy_handshake(proxy, host, endpoint.port, user_agent=user_agent)

        async def receive() -> bytes:
            try:
                return await tcp.receive()
            except anyio.EndOfStream:
                return b""

        trailing = await establish_tunnel(handshake, proxy, tcp.send, receive, STREAM_ERRORS)
        stream: anyio.abc.ByteStream
        if isinstance(tcp, ProtocolStream):
            tcp.unread(trailing)
            if endpoint.secure and not trailing:
                await tcp.start_tls(ssl_context or default_ssl_context(), endpoint.host)
                return tcp
            stream = tcp  # bytes already here before TLS must pass through it: anyio's below
        else:
            stream = tcp if not trailing else PrefixedStream(tcp, trailing)
        if not endpoint.secure:
            return stream
        return await TLSStream.wrap(
            stream,
            hostname=endpoint.host,
            ssl_context=ssl_context or default_ssl_context(),
            # Exchanges often drop TCP without a TLS close_notify; that is just EOF to us.
            standard_compatible=False,
        )
    except BaseException:
        await anyio.aclose_forcefully(tcp)
        raise


async def _resolve(endpoint: Endpoint) -> str:
    """The exchange's address, looked up here (socks5://, unlike socks5h://)."""
    infos = await anyio.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


class PrefixedStream(anyio.abc.ByteStream):
    """`stream`, with `prefix` received before anything it receives itself."""

    def __init__(self, stream: anyio.abc.ByteStream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix[:max_bytes], self._prefix[max_bytes:]
            return data
        return await self._stream.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Any]:
        return self._stream.extra_attributes
