"""Connection settings: where to connect, who we are, and the API credentials.

`WeexConfig` is checked when it is built, so a bad URL or an empty User-Agent fails at startup
instead of as an obscure handshake error later. The three secrets never show up in `repr()`
or in an error message; errors name the field or environment variable, never its value.

Reading `os.environ` in `from_env` is the only outside state this module touches: it is not
I/O on the wire, and callers that want full control pass their own mapping.
"""

from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from .dialects import Dialect, dialect_named, implied_by_url
from .errors import ConfigError
from .proxy import ProxyRoutes, parse_proxy_url

DEFAULT_PUBLIC_URL = "wss://ws-contract.weex.com/v2/ws/public"
DEFAULT_PRIVATE_URL = "wss://ws-contract.weex.com/v2/ws/private"
DEFAULT_USER_AGENT = "weex-ws/0.1 (+python)"

# Which environment variable feeds which field. Credentials first: `require_credentials`
# reports missing ones in this order.
_CREDENTIAL_ENV = {
    "api_key": "WEEX_API_KEY",
    "secret_key": "WEEX_SECRET_KEY",
    "passphrase": "WEEX_PASSPHRASE",
}
_OTHER_ENV = {
    "public_url": "WEEX_WS_PUBLIC_URL",
    "private_url": "WEEX_WS_PRIVATE_URL",
    "user_agent": "WEEX_USER_AGENT",
    "ca_file": "WEEX_CA_FILE",
    "proxy": "WEEX_PROXY",
    "api": "WEEX_API",
}

_DEFAULT_PORTS = {"ws": 80, "wss": 443}


@attrs.frozen
class Endpoint:
    """A WebSocket URL taken apart into what the adapter and the handshake need.

    `host` is bare (an IPv6 literal has no brackets, ready for a socket call); `path` is the
    request target for the upgrade, query string included.
    """

    scheme: str
    host: str
    port: int
    path: str
    secure: bool

    @property
    def host_header(self) -> str:
        """The value of the HTTP `Host` header: the port only when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS.get(self.scheme):
            return host
        return f"{host}:{self.port}"


def parse_endpoint(url: str, *, what: str = "URL") -> Endpoint:
    """Split a ws:// or wss:// URL, raising `ConfigError` (naming `what`) if it is unusable.

    Plain ws:// is accepted for local simulators. Whatever is accepted can be put on the wire
    as it is: whitespace and control characters are refused anywhere (a stray newline would
    otherwise be silently dropped by `urlsplit`, or break the upgrade request); non-ASCII
    characters in the path or query are percent-encoded as UTF-8 (RFC 3987 §3.1); a non-ASCII
    host name is converted to its ASCII form with Python's IDNA codec (IDNA 2003), so the socket,
    TLS and the `Host` header all see the same name. The URL itself is left out of error
    messages because it could carry userinfo.
    """
    _refuse_invisible_characters(url, what)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{what} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        if "://" not in url:  # "localhost:8765/..." parses as the scheme "localhost"
            raise ConfigError(f"{what} has no scheme: it must start with ws:// or wss://")
        raise ConfigError(f"{what} must use ws:// or wss://, not {scheme}://")
    if not parts.hostname:
        raise ConfigError(f"{what} has no host")
    if port == 0:
        raise ConfigError(f"{what} has port 0, which cannot be connected to")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{what} must not contain user:password@ (use the API key fields)")
    if parts.fragment or url.endswith("#"):
        raise ConfigError(f"{what} must not contain a #fragment (RFC 6455 §3)")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Endpoint(
        scheme=scheme,
        host=_ascii_host(parts.netloc, parts.hostname, what),
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        path=urllib.parse.quote(path, safe=_ASCII_VISIBLE),
        secure=scheme == "wss",
    )


# Visible ASCII: what an HTTP request target may hold (RFC 9112 §3.2). Percent-encoding leaves
# these alone, so existing %XX escapes are not encoded twice.
_ASCII_VISIBLE = "".join(chr(code) for code in range(0x21, 0x7F))
# Spaces, line breaks, control and format (zero-width, bidi) characters, lone surrogates.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs"})
_HOST_NAME = re.compile(r"[a-z0-9._-]+")
_BRACKETED_HOST = re.compile(r"\[([^\]]+)\](?::[0-9]*)?")


def _refuse_invisible_characters(url: str, what: str) -> None:
    for index, char in enumerate(url):
        if char.isspace() or unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            raise ConfigError(
                f"{what} contains {_describe(char)} at position {index}: URLs may not contain "
                "whitespace or control characters (check for a trailing newline; "
                "percent-encode a space as %20)"
            )


def _describe(char: str) -> str:
    """Which character, by code point only (the URL around it may hold a secret)."""
    names = {" ": "a space", "\t": "a tab", "\r": "a line break", "\n": "a line break"}
    kind = "control" if unicodedata.category(char) == "Cc" else "invisible"
    return names.get(char, f"the {kind} character U+{ord(char):04X}")


def _ascii_host(netloc: str, hostname: str, what: str) -> str:
    """The host as the socket and the `Host` header want it: an IP literal or an ASCII name."""
    if netloc.startswith("["):
        literal = _BRACKETED_HOST.fullmatch(netloc)
        try:
            if literal is None:
                raise ValueError("text after the ]")
            ipaddress.IPv6Address(literal.group(1))
        except ValueError:
            raise ConfigError(f"{what} has a bracketed host that is not an IPv6 address") from None
        return hostname
    try:
        host = hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise ConfigError(
            f"{what} has a host name that cannot be encoded with IDNA "
            "(empty or over-long label, or a character not allowed in host names)"
        ) from None
    if not _HOST_NAME.fullmatch(host):
        raise ConfigError(
            f"{what} has a host name with characters other than letters, digits, '-', '.', '_'"
        )
    return host


def _check_url(instance: WeexConfig, attribute: attrs.Attribute[str], value: str) -> None:
    parse_endpoint(value, what=attribute.name)


def _check_header_value(instance: WeexConfig, attribute: attrs.Attribute[str], value: str) -> None:
    """Header values go verbatim into the upgrade request: no line breaks, ASCII only.

    A stray newline from a `.env` file would otherwise corrupt the request (or inject a header).
    """
    if any(not (" " <= char <= "~" or char == "\t") for char in value):
        raise ConfigError(
            f"{attribute.name} may only contain printable ASCII characters "
            "(check for a trailing newline or non-ASCII characters)"
        )


def _check_user_agent(instance: WeexConfig, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ConfigError("user_agent must not be empty: WEEX requires a User-Agent header")
    _check_header_value(instance, attribute, value)


def _optional_path(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


def _check_ca_file(
    instance: WeexConfig, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None and not value.strip():
        raise ConfigError("ca_file must be a path to a PEM file (or None for the system's CAs)")


def _check_proxy(
    instance: WeexConfig, attribute: attrs.Attribute[str | bool | None], value: str | bool | None
) -> None:
    if value is not None:
        ProxyRoutes.choose(value)  # raises ConfigError naming `proxy`, never the URL


def _proxy_repr(value: str | bool | None) -> str:
    """The proxy without its credentials."""
    if not isinstance(value, str) or not value:
        return repr(value)
    return repr(str(parse_proxy_url(value)))


def _check_api(instance: WeexConfig, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ("", "v2", "v3"):
        raise ConfigError(f"api must be 'v2' or 'v3' (or '' to follow the URLs), not {value!r}")


def _set_or_unset(value: str) -> str:
    return "<set>" if value else "<unset>"


@attrs.frozen
class WeexConfig:
    """Everything needed to open a public or private connection to the WEEX contract API."""

    api_key: str = attrs.field(default="", repr=_set_or_unset, validator=_check_header_value)
    secret_key: str = attrs.field(default="", repr=_set_or_unset)
    passphrase: str = attrs.field(default="", repr=_set_or_unset, validator=_check_header_value)
    public_url: str = attrs.field(default=DEFAULT_PUBLIC_URL, validator=_check_url)
    private_url: str = attrs.field(default=DEFAULT_PRIVATE_URL, validator=_check_url)
    user_agent: str = attrs.field(default=DEFAULT_USER_AGENT, validator=_check_user_agent)
    verify_tls: bool = True
    ca_file: str | None = attrs.field(
        default=None, converter=_optional_path, validator=_check_ca_file
    )
    """A PEM bundle of the CAs to trust instead of the system's (for `wss://`), e.g. a test
    server's or a TLS-inspecting proxy's. Loaded when the client is built."""
    proxy: str | bool | None = attrs.field(default=None, validator=_check_proxy, repr=_proxy_repr)
    """The proxy to connect through (`WEEX_PROXY`): `http://`, `socks5://` or `socks5h://`, with
    optional `user:password@`; False or "" for none; None to follow the environment
    (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, ...). The client's `proxy=` option wins over it."""
    api: str = attrs.field(default="", validator=_check_api)
    """Which WEEX protocol generation to speak (`WEEX_API`), "v2" or "v3" (`dialect`); ""
    follows the URLs: v3 when one of them has a `/v3/` path, else v2. URLs left at their
    defaults follow it."""

    def __attrs_post_init__(self) -> None:
        named = {
            version
            for url, default in (
                (self.public_url, DEFAULT_PUBLIC_URL),
                (self.private_url, DEFAULT_PRIVATE_URL),
            )
            if url != default and (version := implied_by_url(url)) is not None
        }
        if len(named) > 1:
            raise ConfigError("public_url and private_url name different API versions (v2, v3)")
        if self.api and named and self.api not in named:
            raise ConfigError(f"api is {self.api!r} but the URLs are {named.pop()} URLs")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WeexConfig:
        """Build a config from WEEX_* environment variables; keyword overrides win.

        Variables that are missing or empty leave the field at its default.
        """
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, variable in (_CREDENTIAL_ENV | _OTHER_ENV).items():
            value = source.get(variable)
            if value:
                values[field] = value
        values.update(overrides)
        return cls(**values)

    @property
    def has_credentials(self) -> bool:
        """True when all three of API key, secret key and passphrase are set."""
        return bool(self.api_key and self.secret_key and self.passphrase)

    def require_credentials(self) -> None:
        """Raise `ConfigError` naming the environment variables of every missing credential."""
        missing = [
            variable for field, variable in _CREDENTIAL_ENV.items() if not getattr(self, field)
        ]
        if missing:
            raise ConfigError(
                "private connection needs API credentials; missing: " + ", ".join(missing)
            )

    @property
    def api_version(self) -> str:
        """ "v2" or "v3": `api` if given, else what the URLs name, else "v2"."""
        if self.api:
            return self.api
        for url, default in (
            (self.public_url, DEFAULT_PUBLIC_URL),
            (self.private_url, DEFAULT_PRIVATE_URL),
        ):
            version = implied_by_url(url) if url != default else None
            if version is not None:
                return version
        return "v2"

    @property
    def dialect(self) -> Dialect:
        """The protocol generation's `Dialect`, which the connections consult."""
        return dialect_named(self.api_version)

    def url(self, private: bool) -> str:
        """The private or public URL a connection goes to: the one given, or the dialect's
        own when left at the default (`api="v3"` alone connects to v3's)."""
        url = self.private_url if private else self.public_url
        if url in (DEFAULT_PUBLIC_URL, DEFAULT_PRIVATE_URL):
            dialect = self.dialect
            url = dialect.private_url if private else dialect.public_url
        return url

    def endpoint(self, private: bool) -> Endpoint:
        """The parsed `url(private)`."""
        return parse_endpoint(self.url(private))
