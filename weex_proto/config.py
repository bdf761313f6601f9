"""Connection settings: where to connect, who we are, and the API credentials.

`WeexConfig` is checked when it is built, so a bad URL or an empty User-Agent fails at startup
instead of as an obscure handshake error later. The three secrets never show up in `repr()`
or in an error message; errors name the field or environment variable, never its value.

Reading `os.environ` in `from_env` is the only outside state this module touches: it is not
I/O on the wire, and callers that want full control pass their own mapping.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ConfigError

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

    Plain ws:// is accepted for local simulators. The URL itself is left out of error messages
    because it could carry userinfo.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{what} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = repr(scheme) if scheme else "no scheme"
        raise ConfigError(f"{what} must use ws:// or wss://, not {shown}")
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
        host=parts.hostname,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        path=path,
        secure=scheme == "wss",
    )


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

    def endpoint(self, private: bool) -> Endpoint:
        """The parsed private or public URL."""
        return parse_endpoint(self.private_url if private else self.public_url)
