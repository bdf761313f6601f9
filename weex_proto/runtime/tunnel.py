"""Driving a proxy handshake over any byte stream: the loop both adapters share.

The adapter opens TCP to the proxy and passes its stream's send and receive; this loop moves the
bytes until the tunnel is up and returns what the proxy sent after its reply (the exchange's
first bytes, not to be lost). Stream failures on the way become `ProxyConnectionError`, so a
refused or broken proxy is retried like any transport failure and says it was the proxy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import ProxyConnectionError, explain_error
from ..proxy import ProxyHandshake, ProxyURL


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
