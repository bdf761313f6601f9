"""A proxy URL taken apart, with its credentials kept out of every text it produces.

`http://user:pass@host:port` (HTTP CONNECT), `socks5://...` (the exchange's name resolved here)
and `socks5h://...` (resolved by the proxy). A URL without a scheme is an HTTP proxy, as curl and
`requests` read `HTTPS_PROXY=proxy:3128`. Errors name what was being parsed, never the URL: it
may hold a password.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Literal

import attrs

from ..errors import ConfigError

ProxyScheme = Literal["http", "socks5", "socks5h"]

_DEFAULT_PORTS: dict[str, int] = {"http": 80, "socks5": 1080, "socks5h": 1080}
_UNSUPPORTED = {
    "https": "https:// proxies (TLS to the proxy itself) are not supported; use http://, "
    "the tunnel to wss:// is encrypted end to end anyway",
    "socks4": "SOCKS4 is not supported; use socks5:// or socks5h://",
    "socks4a": "SOCKS4a is not supported; use socks5h://",
}
SOCKS5_FIELD_LIMIT = 255  # bytes of a SOCKS5 user name or password (RFC 1929)


def _credentials_repr(value: str) -> str:
    return "<set>" if value else "<unset>"


@attrs.frozen
class ProxyURL:
    """Where the proxy is and how to log in; `str()` is `scheme://host:port`, no credentials."""

    scheme: ProxyScheme
    host: str
    port: int
    username: str = attrs.field(default="", repr=_credentials_repr)
    password: str = attrs.field(default="", repr=_credentials_repr)

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)

    @property
    def remote_dns(self) -> bool:
        """True when the proxy resolves the exchange's name (socks5h, and HTTP CONNECT)."""
        return self.scheme != "socks5"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy_url(url: str, *, what: str = "proxy") -> ProxyURL:
    """Check and split a proxy URL; `ConfigError` (naming `what`, not the URL) if unusable."""
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise ConfigError(f"{what} contains whitespace or control characters")
    if "://" not in url:
        url = f"http://{url}"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{what} is not a valid proxy URL (check the host and port)") from None
    scheme = parts.scheme.lower()
    if scheme in _UNSUPPORTED:
        raise ConfigError(f"{what}: {_UNSUPPORTED[scheme]}")
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"{what} must be an http://, socks5:// or socks5h:// URL, not {scheme!r}")
    if not parts.hostname:
        raise ConfigError(f"{what} has no host")
    if port == 0:
        raise ConfigError(f"{what} has port 0, which cannot be connected to")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{what} must be scheme://[user:password@]host[:port], nothing after")
    username = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    _check_credentials(scheme, username, password, what)
    return ProxyURL(
        scheme=scheme,  # type: ignore[arg-type]  # checked against _DEFAULT_PORTS above
        host=_host(parts.hostname, what),
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        username=username,
        password=password,
    )


def _host(hostname: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        return hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise ConfigError(f"{what} has a host name that cannot be encoded with IDNA") from None


def _check_credentials(scheme: str, username: str, password: str, what: str) -> None:
    for name, value in (("user name", username), ("password", password)):
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ConfigError(f"{what}: the {name} contains control characters")
        if scheme.startswith("socks5") and len(value.encode()) > SOCKS5_FIELD_LIMIT:
            raise ConfigError(
                f"{what}: a SOCKS5 {name} is at most {SOCKS5_FIELD_LIMIT} bytes (RFC 1929)"
            )
    if scheme == "http" and ":" in username:
        raise ConfigError(f"{what}: the user name of a Basic login cannot contain ':'")
