"""Reaching the exchange through an HTTP CONNECT or SOCKS5 proxy, sans-IO like the rest.

`ProxyRoutes` says which proxy each endpoint uses (the `proxy=` option or the environment);
`HttpConnectHandshake` and `Socks5Handshake` are the handshakes as state machines (bytes in,
bytes out, `TunnelEstablished` or a `ProxyError`); `weex_proto.runtime.tunnel.establish_tunnel`
is the loop an adapter runs them with. TLS for `wss://` starts inside the tunnel, checked
against the exchange's name.
"""

import importlib
import warnings
from typing import Any

from ._handshake import ProxyHandshake, TunnelEstablished
from ._http import MAX_REPLY_SIZE, HttpConnectHandshake
from ._routes import ProxyChoice, ProxyRoutes
from ._socks import Socks5Handshake
from ._tunnel import proxy_handshake, unreachable
from ._url import ProxyScheme, ProxyURL, parse_proxy_url

__all__ = [
    "MAX_REPLY_SIZE",
    "HttpConnectHandshake",
    "ProxyChoice",
    "ProxyHandshake",
    "ProxyRoutes",
    "ProxyScheme",
    "ProxyURL",
    "Socks5Handshake",
    "TunnelEstablished",
    "parse_proxy_url",
    "proxy_handshake",
    "unreachable",
]


def __getattr__(name: str) -> Any:
    """`weex_proto.proxy.establish_tunnel`, the path it had before the runtime got a package
    of its own, still works (with a `DeprecationWarning` naming the new one). It is looked up
    when asked for, so importing the proxy package never imports the runtime."""
    if name == "establish_tunnel":
        warnings.warn(
            "weex_proto.proxy.establish_tunnel is weex_proto.runtime.tunnel.establish_tunnel",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module("weex_proto.runtime.tunnel").establish_tunnel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
