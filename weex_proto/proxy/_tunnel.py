"""Which handshake a proxy needs, and the error for a proxy that could not be reached.

The pure parts of opening a tunnel: the adapter opens TCP to the proxy, and
`weex_proto.runtime.tunnel.establish_tunnel` runs the handshake over that stream.
"""

from __future__ import annotations

from ..errors import ProxyConnectionError, explain_error
from ._handshake import ProxyHandshake
from ._http import HttpConnectHandshake
from ._socks import Socks5Handshake
from ._url import ProxyURL


def proxy_handshake(
    proxy: ProxyURL, host: str, port: int, *, user_agent: str | None = None
) -> ProxyHandshake:
    """The handshake for `proxy`'s scheme, asking for a tunnel to `host:port`.

    For `socks5://` the caller resolves the exchange's name first and passes an IP address;
    `socks5h://` and `http://` pass the name, for the proxy to resolve.
    """
    if proxy.scheme == "http":
        return HttpConnectHandshake(proxy, host, port, user_agent=user_agent)
    return Socks5Handshake(proxy, host, port)


def unreachable(proxy: ProxyURL, error: BaseException) -> ProxyConnectionError:
    """The error for a proxy we could not connect to (refused, DNS, network unreachable)."""
    return ProxyConnectionError(str(proxy), f"cannot connect: {explain_error(error)}")
