"""Opening the byte stream under a connection with trio: TCP, TLS, or whatever the user plugs in.

A transport is any `async (Endpoint) -> trio.abc.Stream`. The default connects with
`trio.open_tcp_stream` and wraps `trio.SSLStream` (certificate verification on) for `wss://`.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

import trio

from weex_proto.config import Endpoint
from weex_proto.tls import default_ssl_context

Transport = Callable[[Endpoint], Awaitable[trio.abc.Stream]]


def tcp_transport(ssl_context: ssl.SSLContext | None = None) -> Transport:
    async def open_stream(endpoint: Endpoint) -> trio.abc.Stream:
        tcp = await trio.open_tcp_stream(endpoint.host, endpoint.port)
        if not endpoint.secure:
            return tcp
        tls = trio.SSLStream(
            tcp,
            ssl_context or default_ssl_context(),
            server_hostname=endpoint.host,
            # Exchanges often drop TCP without a TLS close_notify; that is just EOF to us.
            https_compatible=True,
        )
        try:
            await tls.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(tcp)
            raise
        return tls

    return open_stream
