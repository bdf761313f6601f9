"""Private-channel authentication: signed HTTP headers on the WebSocket upgrade.

WEEX v2 has no login message (protocol doc §1.3). The client proves who it is with four
headers on the handshake, where

    ACCESS-SIGN = base64(HMAC-SHA256(secret_key, timestamp + request_path))

with `timestamp` in epoch milliseconds and `request_path` the private URL's path
(`/v2/ws/private`). No HTTP method goes into the string: signing `timestamp + "GET" + path`,
as one third-party SDK does, is wrong. The timestamp expires after 30 seconds, so headers must
be built afresh for every connection attempt; that is why the time comes in as `now`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Iterable

from .config import WeexConfig

DEFAULT_SIGN_PATH = "/v2/ws/private"

# Header names whose values must never reach a log (compared case-insensitively).
_SECRET_HEADERS = frozenset({"access-key", "access-sign", "access-passphrase"})
_REDACTED = "<redacted>"


def sign(secret_key: str, timestamp_ms: str, request_path: str = DEFAULT_SIGN_PATH) -> str:
    """The ACCESS-SIGN value for one handshake."""
    message = (timestamp_ms + request_path).encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def timestamp_ms(now: float) -> str:
    """Epoch seconds as the whole-milliseconds string WEEX expects (truncated, like the docs)."""
    if not math.isfinite(now) or now < 0:
        raise ValueError("now must be a finite, non-negative number of seconds since the epoch")
    return str(int(now * 1000))


def handshake_headers(config: WeexConfig, *, private: bool, now: float) -> list[tuple[str, str]]:
    """The extra headers for the upgrade request: User-Agent, plus the signed ones if private.

    Raises `ConfigError` (naming the missing environment variables) when a private connection
    is asked for without complete credentials.
    """
    headers = [("User-Agent", config.user_agent)]
    if not private:
        return headers
    config.require_credentials()
    timestamp = timestamp_ms(now)
    # The signed path is the private URL's path without its query string.
    request_path = config.endpoint(private=True).path.partition("?")[0]
    headers += [
        ("ACCESS-KEY", config.api_key),
        ("ACCESS-PASSPHRASE", config.passphrase),
        ("ACCESS-TIMESTAMP", timestamp),
        ("ACCESS-SIGN", sign(config.secret_key, timestamp, request_path)),
    ]
    return headers


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A copy of `headers` that is safe to log: key, passphrase and signature are masked."""
    return [
        (name, _REDACTED if name.lower() in _SECRET_HEADERS else value) for name, value in headers
    ]
