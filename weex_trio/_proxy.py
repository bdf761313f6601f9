"""Connecting through a proxy with trio: TCP to the proxy, its handshake, then TLS in the tunnel.

The handshake itself is `weex_proto.proxy`'s; this module only moves its bytes. Bytes the proxy
sent after its reply are the exchange's, so they are put back in front of the stream.
"""

from __future__ import annotations

import socket
import ssl

import trio

from weex_proto.config import Endpoint
from weex_proto.proxy import ProxyURL, proxy_handshake, unreachable
from weex_proto.runtime.tls import default_ssl_context
from weex_proto.runtime.tunnel import establish_tunnel

STREAM_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)
RECEIVE_SIZE = 65536


async def connect_through(
    proxy: ProxyURL,
    endpoint: Endpoint,
    ssl_context: ssl.SSLContext | None,
    user_agent: str | None,
) -> trio.abc.Stream:
    """A stream to `endpoint` through `proxy`, wrapped in `trio.SSLStream` (verified for the
    exchange's name) for `wss://`."""
    try:
        tcp = await trio.open_tcp_stream(proxy.host, proxy.port)
    except OSError as exc:
        raise unreachable(proxy, exc) from None
    try:
        host = endpoint.host if proxy.remote_dns else await _resolve(endpoint)
        handshake = proxy_handshake(proxy, host, endpoint.port, user_agent=user_agent)

        async def receive() -> bytes:
            return await tcp.receive_some(RECEIVE_SIZE)

        trailing = await establish_tunnel(handshake, proxy, tcp.send_all, receive, STREAM_ERRORS)
        stream: trio.abc.Stream = tcp if not trailing else PrefixedStream(tcp, trailing)
        if not endpoint.secure:
            return stream
        tls = trio.SSLStream(
            stream,
            ssl_context or default_ssl_context(),
            server_hostname=endpoint.host,
            # Exchanges often drop TCP without a TLS close_notify; that is just EOF to us.
            https_compatible=True,
        )
        await tls.do_handshake()
        return tls
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise


async def _resolve(endpoint: Endpoint) -> str:
    """The exchange's address, looked up here (socks5://, unlike socks5h://)."""
    infos = await trio.socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


class PrefixedStream(trio.abc.Stream):
    """`stream`, with `prefix` received before anything it receives itself."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            await trio.lowlevel.checkpoint()
            return data
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()
