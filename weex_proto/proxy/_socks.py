"""SOCKS5 (RFC 1928, with RFC 1929 user/password login) as a sans-IO state machine.

`socksio` builds our requests and parses the proxy's replies; it expects each reply whole, so
this machine frames them (2 bytes for the method choice and the login answer, 6 + address for
the CONNECT reply) and keeps what follows the last one: the exchange's first bytes.

We offer "no authentication", plus user/password when the URL has credentials. A proxy that
accepts neither, or rejects the login, is an authentication failure; so is one that hangs up
right after reading our login (what many servers do instead of answering "refused"), and, when
we offered no login, one that hangs up after our greeting without choosing a method: servers
that require a login answer a client offering none that way as often as with "no acceptable
methods". A hang-up at any other point is a connection failure, retried. A CONNECT reply other
than "succeeded" is a refusal, retryable when it says the exchange is unreachable.
"""

from __future__ import annotations

import enum

from socksio import ProtocolError as SocksioProtocolError
from socksio import socks5

from ..errors import (
    ConfigError,
    LocalProtocolError,
    ProxyAuthenticationError,
    ProxyConnectionError,
    ProxyError,
    ProxyProtocolError,
    ProxyTunnelRefusedError,
)
from ._handshake import TunnelEstablished, printable
from ._url import SOCKS5_FIELD_LIMIT, ProxyURL

_REFUSALS: dict[int, tuple[str, bool]] = {
    0x01: ("general SOCKS server failure", True),
    0x02: ("connection not allowed by ruleset", False),
    0x03: ("network unreachable", True),
    0x04: ("host unreachable", True),
    0x05: ("connection refused by the exchange's host", True),
    0x06: ("TTL expired", True),
    0x07: ("command not supported", False),
    0x08: ("address type not supported", False),
}
_ADDRESS_SIZES = {0x01: 4, 0x04: 16}  # IPv4, IPv6; 0x03 (a name) has a length byte


class _Stage(enum.Enum):
    METHOD = "method"
    LOGIN = "login"
    CONNECT = "connect"
    DONE = "done"


class Socks5Handshake:
    """Open a tunnel to `host:port` (an IP address, or a name the proxy resolves)."""

    def __init__(self, proxy: ProxyURL, host: str, port: int) -> None:
        if len(host.encode()) > SOCKS5_FIELD_LIMIT:
            raise ConfigError(f"the host name is too long for SOCKS5 ({SOCKS5_FIELD_LIMIT} max)")
        self._proxy = str(proxy)
        self._scheme = proxy.scheme
        self._login = (proxy.username.encode(), proxy.password.encode())
        self._offer_login = proxy.has_credentials
        self._target = (host, port)
        self._socks = socks5.SOCKS5Connection()
        methods = [socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED]
        if self._offer_login:
            methods.append(socks5.SOCKS5AuthMethod.USERNAME_PASSWORD)
        self._socks.send(socks5.SOCKS5AuthMethodsRequest(methods))
        self._buffer = bytearray()
        self._stage = _Stage.METHOD
        self._greeted = False  # our method offer has been handed out to be sent

    def data_to_send(self) -> bytes:
        data = self._socks.data_to_send()
        self._greeted = self._greeted or bool(data)
        return data

    def receive_data(self, data: bytes) -> TunnelEstablished | None:
        if self._stage is _Stage.DONE:
            raise LocalProtocolError("the proxy handshake is over")
        try:
            return self._receive(data)
        except ProxyError:
            self._stage = _Stage.DONE
            raise

    def _receive(self, data: bytes) -> TunnelEstablished | None:
        if not data:
            raise self._hung_up()
        self._buffer += data
        while True:
            size = self._reply_size()
            if size is None or len(self._buffer) < size:
                return None
            reply = bytes(self._buffer[:size])
            del self._buffer[:size]
            if self._handle(reply):
                self._stage = _Stage.DONE
                return TunnelEstablished(bytes(self._buffer))

    def _reply_size(self) -> int | None:
        """Bytes of the reply we are waiting for, None until enough is in to tell."""
        if self._stage is not _Stage.CONNECT:
            return 2
        if len(self._buffer) < 2:
            return None
        self._check_version(self._buffer[0])
        if self._buffer[1] != 0x00:
            return 2  # a refusal: its bound address means nothing, and some servers omit it
        if len(self._buffer) < 5:
            return None
        address_type = self._buffer[3]
        if address_type == 0x03:
            return 7 + self._buffer[4]
        if address_type in _ADDRESS_SIZES:
            return 6 + _ADDRESS_SIZES[address_type]
        raise ProxyProtocolError(
            self._proxy, f"sent a CONNECT reply with an unknown address type {address_type}"
        )

    def _check_version(self, version: int) -> None:
        if version == 0x05:
            return
        hint = " (an HTTP proxy? use an http:// URL)" if version == ord("H") else ""
        shown = printable(bytes(self._buffer[:16]))
        raise ProxyProtocolError(self._proxy, f"is not a SOCKS5 proxy: replied {shown!r}{hint}")

    def _handle(self, reply: bytes) -> bool:
        """Take one whole reply; True once the tunnel is open."""
        if self._stage is _Stage.METHOD:
            self._check_version(reply[0])
            self._choose_method(reply)
        elif self._stage is _Stage.LOGIN:
            # RFC 1929 says version 1; some servers answer 5. Only the status counts.
            if reply[1] != 0x00:
                raise ProxyAuthenticationError(self._proxy, "refused our user name and password")
            self._socks.receive_data(b"\x01\x00")
            self._connect()
        else:
            return self._connected(reply)
        return False

    def _choose_method(self, reply: bytes) -> None:
        if reply[1] == 0xFF:
            if not self._offer_login:
                raise self._login_required(
                    'it answered "no acceptable methods" to a client offering none'
                )
            raise ProxyAuthenticationError(
                self._proxy, "accepts none of our authentication methods"
            )
        try:
            method = self._socks.receive_data(reply)
        except SocksioProtocolError:
            method = None
        if method == socks5.SOCKS5AuthReply(socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED):
            self._connect()
        elif self._offer_login and method == socks5.SOCKS5AuthReply(
            socks5.SOCKS5AuthMethod.USERNAME_PASSWORD
        ):
            self._socks.send(socks5.SOCKS5UsernamePasswordRequest(*self._login))
            self._stage = _Stage.LOGIN
        else:
            raise ProxyProtocolError(
                self._proxy, f"chose authentication method {reply[1]}, which we did not offer"
            )

    def _connect(self) -> None:
        request = socks5.SOCKS5CommandRequest.from_address(
            socks5.SOCKS5Command.CONNECT, self._target
        )
        self._socks.send(request)
        self._stage = _Stage.CONNECT

    def _connected(self, reply: bytes) -> bool:
        code = reply[1]
        if code == 0x00:
            return True  # the bound address that follows is of no use to us
        text, retryable = _REFUSALS.get(code, ("an unknown reply code", False))
        raise ProxyTunnelRefusedError(
            self._proxy,
            f"refused to open a tunnel to the exchange (SOCKS5 reply {code}: {text})",
            retryable=retryable,
            reply_code=code,
        )

    def _hung_up(self) -> ProxyError:
        if self._stage is _Stage.LOGIN:
            return ProxyAuthenticationError(
                self._proxy, "hung up after reading our user name and password (refused?)"
            )
        offered_none = self._greeted and not self._offer_login
        if self._stage is _Stage.METHOD and offered_none and not self._buffer:
            return self._login_required("it closed the connection on a client offering none")
        where = "its reply" if self._buffer else "answering"
        return ProxyConnectionError(self._proxy, f"closed the connection before {where}")

    def _login_required(self, how: str) -> ProxyError:
        """A proxy that will not take a client without a login, which we had none to give."""
        return ProxyAuthenticationError(
            self._proxy,
            f"requires a username and password ({how}); "
            f"give them in the proxy URL: {self._scheme}://user:pass@host:port",
        )
