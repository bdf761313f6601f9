"""Driving a proxy handshake over any byte stream: the loop both adapters share.

The adapter opens TCP to the proxy and passes its stream's send and receive; this loop moves the
bytes until the tunnel is up and returns what the proxy sent after its reply (the exchange's
first bytes, not to be lost). Stream failures on the way become `ProxyConnectionError`, so a
refused or broken proxy is retried like any transport failure and says it was the proxy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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


async def establish_tunnel(
    handshake: ProxyHandshake,
    proxy: ProxyURL,
    send: Callable[[bytes], Awaitable[None]],
    receive: Callable[[], Awaitable[bytes]],
    stream_errors: tuple[type[BaseException], ...],
) -> bytes:
    """Run `handshake` over a stream (`receive` returns b"" at its end); the trailing bytes.

    Raises the handshake's `ProxyError`, or `ProxyConnectionError` if the stream breaks.
    """
    try:
        while True:
            outgoing = handshake.data_to_send()
            if outgoing:
                await send(outgoing)
            event = handshake.receive_data(await receive())
            if event is not None:
                return event.trailing_data
    except stream_errors as exc:
        raise ProxyConnectionError(
            str(proxy), f"the connection broke during the handshake: {explain_error(exc)}"
        ) from None
