"""Opening the byte stream under a connection: TCP, TLS, or whatever the user plugs in.

A transport is any `async (Endpoint) -> anyio.abc.ByteStream`. The default connects over TCP and
wraps TLS with certificate verification on, through a proxy when `proxies` names one for the
endpoint; replay files and simulators plug in here.

On asyncio the default reads through an `asyncio.Protocol` (`_asyncio_stream`): every byte that
has arrived is handed over in one `receive`, with no per-read pause and resume of the socket.
`asyncio_protocol=False` keeps anyio's own streams there too; on trio they are always used.
"""

from __future__ import annotations

import ssl

import anyio
import anyio.abc

from weex_proto.config import Endpoint
from weex_proto.proxy import ProxyRoutes
from weex_proto.runtime.tls import default_ssl_context

from ._asyncio_stream import on_asyncio, open_protocol_stream
from ._interface import Transport
from ._proxy import connect_through


def tcp_transport(
    ssl_context: ssl.SSLContext | None = None,
    proxies: ProxyRoutes | None = None,
    *,
    user_agent: str | None = None,
    asyncio_protocol: bool = True,
) -> Transport:
    """The default transport: TCP, plus TLS (verified) for `wss://` URLs, directly or through
    the proxy `proxies` picks (`user_agent` is sent to HTTP proxies). On asyncio it reads
    through an `asyncio.Protocol` unless `asyncio_protocol` is False."""
    routes = proxies if proxies is not None else ProxyRoutes.direct()

    async def open_stream(endpoint: Endpoint) -> anyio.abc.ByteStream:
        use_protocol = asyncio_protocol and on_asyncio()
        proxy = routes.for_endpoint(endpoint)
        if proxy is not None:
            return await connect_through(
                proxy, endpoint, ssl_context, user_agent, asyncio_protocol=use_protocol
            )
        if use_protocol:
            return await open_protocol_stream(
                endpoint.host,
                endpoint.port,
                ssl_context=(ssl_context or default_ssl_context()) if endpoint.secure else None,
                server_hostname=endpoint.host,
            )
        if endpoint.secure:
            return await anyio.connect_tcp(
                endpoint.host,
                endpoint.port,
                tls=True,
                ssl_context=ssl_context or default_ssl_context(),
                tls_hostname=endpoint.host,
                # Exchanges often drop TCP without a TLS close_notify; that is just EOF to us.
                tls_standard_compatible=False,
            )
        return await anyio.connect_tcp(endpoint.host, endpoint.port)

    return open_stream
