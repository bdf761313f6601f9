"""The exception hierarchy: every failure a user can see is one of these.

Catch `WeexError` for everything; the subclasses say what went wrong and what to do about it.
No exception here ever carries a secret: messages are built from public facts only.
"""

from __future__ import annotations

import enum


class WeexError(Exception):
    """Base class of every error raised by weex-ws."""


class ConfigError(WeexError, ValueError):
    """The configuration is unusable (missing credentials for a private connection, bad URL)."""


class ProtocolError(WeexError):
    """The peer sent something that breaks the WebSocket or WEEX protocol."""


class OrderBookError(ProtocolError):
    """An order book stream cannot be rebuilt: resync after resync brought no usable snapshot.

    The stream ends with this error rather than go silent; open a new one to try again.
    """


class LocalProtocolError(WeexError):
    """The caller asked for something the current state does not allow (e.g. send before open)."""


class HandshakeRejectedError(WeexError):
    """The server refused the WebSocket upgrade with an HTTP status."""

    def __init__(self, status_code: int, reason: str = "") -> None:
        text = f"WebSocket upgrade rejected with HTTP {status_code}"
        super().__init__(f"{text}: {reason}" if reason else text)
        self.status_code = status_code
        self.reason = reason


class AuthenticationError(WeexError):
    """The exchange refused our credentials or signature; retrying with the same ones won't help."""


class RateLimitError(WeexError):
    """The exchange (or our own bookkeeping of its documented limits) says: slow down."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        advice = f"; retry in {retry_after:.1f}s" if retry_after is not None else ""
        super().__init__(message + advice)
        self.retry_after = retry_after


class SubscriptionLimitError(RateLimitError):
    """A subscribe/unsubscribe would break the per-connection channel or operation limit."""


class ServerError(WeexError):
    """An error event from the exchange that is neither an auth nor a rate-limit problem."""

    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(f"server error {code}: {message}" if code else f"server error: {message}")
        self.code = code
        self.server_message = message


class ConnectionClosedError(WeexError):
    """The connection is gone; the stream or call that needed it cannot go on."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


class ReconnectExhaustedError(WeexError):
    """Auto-reconnect gave up after `max_retries` attempts in a row."""

    def __init__(self, attempts: int, last_error: BaseException | None = None) -> None:
        detail = f": last error was {last_error!r}" if last_error is not None else ""
        super().__init__(f"gave up reconnecting after {attempts} attempts{detail}")
        self.attempts = attempts
        self.last_error = last_error


class ErrorKind(enum.Enum):
    """How an error event from the exchange should be handled."""

    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    OTHER = "other"


class StreamOverflowError(WeexError):
    """A consumer fell so far behind that messages had to be dropped on a stream that must not
    lose any (private account/position/order streams). Resynchronise from REST, then re-open."""

    def __init__(self, channel: str, maxsize: int) -> None:
        super().__init__(
            f"stream for {channel!r} overflowed its buffer of {maxsize} messages; "
            "the consumer is too slow and data was lost"
        )
        self.channel = channel
        self.maxsize = maxsize
