"""What every proxy handshake offers: bytes to send, bytes in, an event when the tunnel is up."""

from __future__ import annotations

from typing import Protocol

import attrs


@attrs.frozen
class TunnelEstablished:
    """The proxy has connected us to the exchange: from now on the bytes are the exchange's.

    `trailing_data` is what arrived after the proxy's reply, in the same read: the first bytes
    from the exchange. The adapter must hand them to whatever reads the stream next.
    """

    trailing_data: bytes = b""


class ProxyHandshake(Protocol):
    """A sans-IO proxy handshake (`HttpConnectHandshake`, `Socks5Handshake`).

    Send `data_to_send()`, feed each read to `receive_data` (b"" at end of stream), repeat until
    it returns `TunnelEstablished`. Every failure is raised as a `ProxyError` subclass; no
    exception text holds the proxy's credentials.
    """

    def data_to_send(self) -> bytes: ...

    def receive_data(self, data: bytes) -> TunnelEstablished | None: ...


def printable(data: bytes, limit: int = 80) -> str:
    """Bytes from the proxy as a short, safe text for an error message."""
    text = data[:limit].decode("latin-1")
    text = "".join(char if " " <= char <= "~" else "?" for char in text)
    return text + ("..." if len(data) > limit else "")
