"""Which proxy, if any, each connection goes through: the `proxy=` choice or the environment.

`proxy=` (or `WeexConfig.proxy`, `WEEX_PROXY`) wins and applies to every endpoint; `False` or
`""` means no proxy at all. Left at None, the environment decides the way HTTP tools do:

- `wss://` uses `WSS_PROXY`, else `HTTPS_PROXY`, else `ALL_PROXY`;
- `ws://` uses `WS_PROXY`, else `HTTP_PROXY`, else `ALL_PROXY`;
- the lowercase spelling of each name wins over the uppercase one; empty means unset;
  `HTTP_PROXY` in capitals is ignored when `REQUEST_METHOD` is set (a CGI environment, where a
  request's `Proxy:` header would arrive as that variable: "httpoxy");
- `NO_PROXY` (or `no_proxy`) lists hosts to reach directly, separated by commas or spaces:
  `*` (everything), a name (itself and its subdomains: `weex.com` covers `ws.weex.com`; a leading
  `.` or `*.` changes nothing), an IP address, a CIDR block (`10.0.0.0/8`), each optionally with
  `:port`. Names are compared as written, never resolved. Loopback is not special: list
  `localhost,127.0.0.1` if a local simulator must not go through the proxy (curl does the same).

The environment is read once, when the client is built.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from typing import Protocol

import attrs

from ..errors import ConfigError
from ._url import ProxyURL, parse_proxy_url

ProxyChoice = str | bool | None
"""What `proxy=` accepts: a URL, False/"" for none, None for the environment."""

log = logging.getLogger("weex_ws")


class Destination(Protocol):
    """What a route is chosen by: a URL's scheme, host and port (`config.Endpoint` has them).

    A protocol, not `Endpoint` itself: `config` checks its `proxy=` with this package, so the
    proxy package never imports `config`.
    """

    @property
    def scheme(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


_VARIABLES = {
    "wss": ("wss_proxy", "https_proxy", "all_proxy"),
    "ws": ("ws_proxy", "http_proxy", "all_proxy"),
}


@attrs.frozen
class _Bypass:
    """One NO_PROXY entry."""

    host: str = ""
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            address = _ip(host)
            return address is not None and address in self.network
        return host == self.host or host.endswith("." + self.host)


@attrs.frozen
class ProxyRoutes:
    """The proxy for each endpoint; build it with `choose`."""

    fixed: ProxyURL | None = None
    """The proxy for every endpoint (`proxy=`), when one was given."""
    from_environment: Mapping[str, ProxyURL | None] = attrs.field(factory=dict)
    """Per URL scheme ("ws", "wss"), when the environment decides."""
    bypass_all: bool = False
    bypass: tuple[_Bypass, ...] = ()

    @classmethod
    def direct(cls) -> ProxyRoutes:
        return cls()

    @classmethod
    def choose(cls, choice: ProxyChoice, environ: Mapping[str, str] | None = None) -> ProxyRoutes:
        """Routes for `proxy=choice`; with None, from `environ` (default: `os.environ`).

        Raises `ConfigError` for a proxy URL that cannot be used, naming the variable it came
        from (never the URL, which may hold a password).
        """
        if choice is True:
            raise ConfigError("proxy=True says nothing: pass a proxy URL, or False for none")
        if choice is False or choice == "":
            return cls.direct()
        if isinstance(choice, str):
            return cls(fixed=parse_proxy_url(choice, what="proxy"))
        source = os.environ if environ is None else environ
        by_scheme: dict[str, ProxyURL | None] = {}
        for scheme, names in _VARIABLES.items():
            found = _first_set(source, names)
            by_scheme[scheme] = None if found is None else parse_proxy_url(found[1], what=found[0])
        no_proxy = _get(source, "no_proxy")
        entries = [] if no_proxy is None else no_proxy[1].replace(",", " ").split()
        if "*" in entries:
            return cls(from_environment=by_scheme, bypass_all=True)
        bypass = tuple(entry for entry in map(_parse_bypass, entries) if entry is not None)
        return cls(from_environment=by_scheme, bypass=bypass)

    def for_endpoint(self, endpoint: Destination) -> ProxyURL | None:
        """The proxy to reach `endpoint` through, or None to connect directly."""
        if self.fixed is not None:
            return self.fixed
        proxy = self.from_environment.get(endpoint.scheme)
        if proxy is None or self.bypass_all:
            return None
        host = _normal_host(endpoint.host)
        if any(entry.matches(host, endpoint.port) for entry in self.bypass):
            return None
        return proxy


def _get(source: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(variable, value) of `name`, lowercase spelling first; empty counts as unset."""
    for variable in (name, name.upper()):
        if variable == "HTTP_PROXY" and "REQUEST_METHOD" in source:
            continue  # httpoxy: in CGI this variable comes from the request
        value = source.get(variable, "").strip()
        if value:
            return variable, value
    return None


def _first_set(source: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        found = _get(source, name)
        if found is not None:
            return found
    return None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    address = _ip(host)
    return str(address) if address is not None else host.lower().rstrip(".")


def _parse_bypass(entry: str) -> _Bypass | None:
    """A NO_PROXY entry; one that is not a host, IP or CIDR block is logged and skipped."""
    try:
        host, port = _split_port(entry.lower())
    except ValueError:
        host, port = "", None
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        network = None
    if network is not None:
        if "/" in host:
            return _Bypass(network=network, port=port)
        return _Bypass(host=str(network.network_address), port=port)
    name = host.removeprefix("*").lstrip(".").rstrip(".")
    if not name or any(not (char.isalnum() or char in "-._") for char in name):
        log.warning(
            "ignoring NO_PROXY entry %r: not a host name, IP address or CIDR block",
            entry,
            extra={"weex_event": "no_proxy_skipped"},
        )
        return None
    return _Bypass(host=name, port=port)


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, or a bare host (a bare IPv6 address keeps its colons)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, _port(rest.removeprefix(":"), entry) if rest else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, _port(port, entry)
    return entry, None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"NO_PROXY entry {entry!r} has an invalid port")
    return int(text)
