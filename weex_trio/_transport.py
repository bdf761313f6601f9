"""Opening the byte stream under a connection with trio: TCP, TLS, or whatever the user plugs in.

A transport is any `async (Endpoint) -> trio.abc.Stream`. The default connects with
`trio.open_tcp_stream` and wraps `trio.SSLStream` (certificate verification on) for `wss://`,
through a proxy when `proxies` names one for the endpoint.
"""

from __future__ import annotations

import ssl

import trio

from weex_proto.config import Endpoint
from weex_proto.proxy import ProxyRoutes
from weex_proto.runtime.tls import default_ssl_context

from ._interface import Transport
from ._proxy import connect_through


def tcp_transport(
    ssl_context: ssl.SSLContext | None = None,
    proxies: ProxyRoutes | None = None,
    *,
    user_agent: str | None = None,
) -> Transport:
    routes = proxies if proxies is not None else ProxyRoutes.direct()

    async def open_stream(endpoint: Endpoint) -> trio.abc.Stream:
        proxy = routes.for_endpoint(endpoint)
        if proxy is not None:
            return await connect_through(proxy, endpoint, ssl_context, user_agent)
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
