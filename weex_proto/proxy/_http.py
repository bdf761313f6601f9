"""HTTP CONNECT (RFC 9110 §9.3.6) as a sans-IO state machine, on h11.

We send `CONNECT host:port`, with `Proxy-Authorization: Basic` when the proxy URL has
credentials (sent up front, as curl does: a second round trip after a 407 would reveal nothing
more). A 2xx reply opens the tunnel; whatever followed the reply's blank line is already the
exchange's and comes back in `TunnelEstablished.trailing_data`. Any other status is a typed
error: 407 is an authentication failure, the rest a refusal, retryable or not by status.

The proxy's status lines and headers are held to `MAX_REPLY_SIZE` bytes, counted here: h11's
`max_incomplete_event_size` looks only at a head still incomplete, so a whole reply of any size
arriving in one read would pass it. The verdict depends on the reply, not on how it was split.
"""

from __future__ import annotations

import base64
import sys

import h11

from ..errors import (
    RETRYABLE_STATUSES,
    LocalProtocolError,
    ProxyAuthenticationError,
    ProxyConnectionError,
    ProxyError,
    ProxyProtocolError,
    ProxyTunnelRefusedError,
)
from ._handshake import TunnelEstablished, printable
from ._url import ProxyURL

MAX_REPLY_SIZE = 16384
"""Bytes of status lines and headers, up to the blank line ending the final reply (interim 1xx
replies included), we accept from the proxy before calling it hostile."""

_UNBOUNDED = sys.maxsize
"""h11's own limit, off: we count the head ourselves, so an h11 error always means "not HTTP"."""


class HttpConnectHandshake:
    """Open a tunnel to `host:port` through the HTTP proxy `proxy`."""

    def __init__(
        self, proxy: ProxyURL, host: str, port: int, *, user_agent: str | None = None
    ) -> None:
        self._proxy = str(proxy)
        self._sent_credentials = proxy.has_credentials
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_UNBOUNDED)
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        headers = [("Host", authority)]
        if user_agent:
            headers.append(("User-Agent", user_agent))
        if proxy.has_credentials:
            login = f"{proxy.username}:{proxy.password}".encode()
            headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(login).decode()))
        request = h11.Request(method="CONNECT", target=authority, headers=headers)
        self._outgoing = self._h11.send(request) + self._h11.send(h11.EndOfMessage())
        self._first_bytes = b""  # to recognise a SOCKS server behind an http:// URL
        self._received = 0  # bytes from the proxy: all of them head, until the final reply
        self._finished = False

    def data_to_send(self) -> bytes:
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes) -> TunnelEstablished | None:
        if self._finished:
            raise LocalProtocolError("the proxy handshake is over")
        if len(self._first_bytes) < 2:
            self._first_bytes += data[: 2 - len(self._first_bytes)]
        try:
            return self._receive(data)
        except ProxyError:
            self._finished = True
            raise

    def _receive(self, data: bytes) -> TunnelEstablished | None:
        self._h11.receive_data(data)
        self._received += len(data)
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                raise self._garbage(at_end=not data) from None
            if event is h11.NEED_DATA:
                # The head is not over yet, so it will be at least one byte more than this.
                if self._received >= MAX_REPLY_SIZE:
                    raise self._oversized()
                return None
            if isinstance(event, h11.ConnectionClosed):
                raise ProxyConnectionError(
                    self._proxy, "closed the connection without answering our CONNECT"
                )
            # What h11 has not parsed yet is not head: the next reply, or the exchange's bytes.
            if self._received - len(self._h11.trailing_data[0]) > MAX_REPLY_SIZE:
                raise self._oversized()
            if isinstance(event, h11.Response):
                if 200 <= event.status_code < 300:
                    self._finished = True
                    trailing, _ = self._h11.trailing_data
                    return TunnelEstablished(bytes(trailing))
                raise self._refusal(event)
            # an InformationalResponse (1xx): the real answer is still to come

    def _refusal(self, response: h11.Response) -> ProxyError:
        status = response.status_code
        reason = printable(bytes(response.reason))
        shown = f"HTTP {status} {reason}".rstrip()
        if status == 407:
            return ProxyAuthenticationError(self._proxy, self._auth_advice(response, shown))
        retryable = status in RETRYABLE_STATUSES or 500 <= status <= 599
        return ProxyTunnelRefusedError(
            self._proxy,
            f"refused to open a tunnel to the exchange ({shown})",
            retryable=retryable,
            status_code=status,
        )

    def _auth_advice(self, response: h11.Response, shown: str) -> str:
        schemes = [
            printable(value.split(b" ", 1)[0], 20)
            for name, value in response.headers
            if name == b"proxy-authenticate"
        ]
        if schemes and not any(scheme.lower() == "basic" for scheme in schemes):
            return (
                f"requires {' or '.join(schemes)} authentication ({shown}); "
                "only Basic (user:password in the proxy URL) is supported"
            )
        if self._sent_credentials:
            return f"refused our credentials ({shown})"
        return f"requires authentication ({shown}); put user:password@ in the proxy URL"

    def _garbage(self, *, at_end: bool) -> ProxyError:
        if self._first_bytes[:1] == b"\x05":
            return ProxyProtocolError(
                self._proxy, "answered in SOCKS5, not HTTP: use a socks5:// proxy URL"
            )
        if at_end and not self._first_bytes:
            return ProxyConnectionError(
                self._proxy, "closed the connection without answering our CONNECT"
            )
        if at_end:
            return ProxyConnectionError(
                self._proxy, "closed the connection in the middle of its reply"
            )
        return ProxyProtocolError(self._proxy, "sent a reply that is not valid HTTP")

    def _oversized(self) -> ProxyError:
        return ProxyProtocolError(
            self._proxy, f"sent a reply with status line and headers over {MAX_REPLY_SIZE} bytes"
        )
