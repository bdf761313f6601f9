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


RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""HTTP statuses below 500 worth retrying: timeout, too early, too many requests."""


class HandshakeRejectedError(WeexError):
    """The server refused the WebSocket upgrade with an HTTP status.

    `retryable` says whether trying again can help: 408, 425, 429 and 5xx are passing states of
    the server; any other status (400, 404, 410, 426, a 403 on the public endpoint where no
    credentials are involved, a redirect we do not follow) will be the same next time, so the
    client gives up at once with this error instead of retrying.
    """

    def __init__(self, status_code: int, reason: str = "") -> None:
        text = f"WebSocket upgrade rejected with HTTP {status_code}"
        super().__init__(f"{text}: {reason}" if reason else text)
        self.status_code = status_code
        self.reason = reason
        self.retryable = status_code in RETRYABLE_STATUSES or 500 <= status_code <= 599

    @property
    def permanent(self) -> bool:
        return not self.retryable


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
    """An error event from the exchange that is neither an auth nor a rate-limit problem.

    `channel` is the channel the server refused, when the error answered a subscription (an
    unknown symbol, for one), so a caller can say which.
    """

    def __init__(self, code: str | None, message: str, *, channel: str | None = None) -> None:
        super().__init__(f"server error {code}: {message}" if code else f"server error: {message}")
        self.code = code
        self.server_message = message
        self.channel = channel


class ConnectionClosedError(WeexError):
    """The connection is gone; the stream or call that needed it cannot go on."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        where = f"connection closed (code {code})" if code is not None else "connection closed"
        super().__init__(f"{where}: {reason}" if reason else where)
        self.code = code
        self.reason = reason


class ReconnectExhaustedError(WeexError):
    """Auto-reconnect gave up: `max_retries` reconnection attempts in a row got nowhere.

    `attempts` is the number of reconnection attempts made (so `max_retries`), `failures` the
    connection attempts in a row that failed, and `last_error` why the last one ended: always
    set, and shown in the message.
    """

    def __init__(
        self, attempts: int, last_error: BaseException | None = None, *, failures: int = 0
    ) -> None:
        if attempts:
            noun = "attempt" if attempts == 1 else "attempts"
            text = f"gave up reconnecting after {attempts} {noun}"
        else:
            text = "gave up without reconnecting (max_retries=0)"
        if last_error is not None:
            text += f"; last error: {describe(last_error)}"
        super().__init__(text)
        self.attempts = attempts
        self.failures = failures
        self.last_error = last_error


class UnreachableError(ReconnectExhaustedError):
    """`fail_fast`: the first connection attempt could not reach the server (refused, a name
    that does not resolve, unreachable, timed out, TLS failed), so the client gave up at once.

    A `ReconnectExhaustedError` with no reconnection attempt made, so code that handles giving
    up handles this too; `last_error` says why (its `__cause__` is the socket's own error).
    """

    def __init__(self, last_error: BaseException) -> None:
        super().__init__(0, last_error, failures=1)
        reason = last_error.reason if isinstance(last_error, ConnectionClosedError) else ""
        self.args = (f"could not connect: {reason or describe(last_error)}",)


def describe(error: BaseException) -> str:
    """`Type: message` (just the type if there is no message), for error texts and logs."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


_CAUSE_DEPTH = 4  # links of a cause chain worth showing; more is noise


def explain_error(error: BaseException) -> str:
    """`Type: message` of `error` and of what it wraps, outermost first."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(parts) < _CAUSE_DEPTH:
        seen.add(id(current))
        parts.append(describe(current))
        current = _wrapped(current)
    return "; caused by ".join(parts)


def _wrapped(error: BaseException) -> BaseException | None:
    if error.__cause__ is not None:
        return error.__cause__
    if error.__context__ is not None and not error.__suppress_context__:
        return error.__context__
    if isinstance(error, BaseExceptionGroup) and error.exceptions:
        return error.exceptions[0]
    return None


class ErrorKind(enum.Enum):
    """How an error event from the exchange should be handled."""

    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    OTHER = "other"


class StreamOverflowError(WeexError):
    """A consumer (a stream or an async handler) fell so far behind that private data it must
    not lose (account, position, order updates) had to be dropped. Resynchronise from REST, then
    re-open. `consumer` says which kind of consumer it was, for the message."""

    def __init__(self, channel: str, maxsize: int, *, consumer: str = "stream") -> None:
        super().__init__(
            f"{consumer} for {channel!r} overflowed its buffer of {maxsize} messages; "
            "the consumer is too slow and data was lost"
        )
        self.channel = channel
        self.maxsize = maxsize


class ProxyError(WeexError):
    """The proxy between us and the exchange failed us (see the subclasses).

    `proxy` names it as `scheme://host:port`, never with its credentials. `retryable` says
    whether the client tries again: a proxy that is down or hung up may be back soon; one that
    refuses our credentials, or does not speak the protocol of the URL's scheme, will not change.
    """

    retryable = False

    def __init__(self, proxy: str, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(f"proxy {proxy}: {message}")
        self.proxy = proxy
        if retryable is not None:
            self.retryable = retryable


class ProxyConnectionError(ProxyError):
    """The proxy could not be reached, or hung up before opening the tunnel. Retried, except
    for a SOCKS5 proxy hanging up on a greeting that offered no login: that is a
    `ProxyAuthenticationError`."""

    retryable = True


class ProxyAuthenticationError(ProxyError):
    """The proxy wants credentials we do not have, or refused ours (HTTP 407, SOCKS5 user/password
    rejected, a SOCKS5 proxy that answers or hangs up on a client offering no login). Not
    retried: the same credentials will be refused again."""


class ProxyTunnelRefusedError(ProxyError):
    """The proxy answered but would not connect to the exchange.

    `status_code` is the HTTP status of a CONNECT proxy, `reply_code` the SOCKS5 reply code.
    Retried when the proxy says the exchange is unreachable right now (HTTP 502/503/504, 408,
    429; SOCKS5 general failure, network/host unreachable, connection refused, TTL expired);
    not when it forbids the destination (HTTP 403, SOCKS5 "not allowed by ruleset") or cannot do
    what we asked (another 4xx, SOCKS5 command or address type not supported).
    """

    def __init__(
        self,
        proxy: str,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        reply_code: int | None = None,
    ) -> None:
        super().__init__(proxy, message, retryable=retryable)
        self.status_code = status_code
        self.reply_code = reply_code


class ProxyProtocolError(ProxyError):
    """The proxy's reply is not the protocol its URL promises (garbage, an oversized header, a
    SOCKS server behind an http:// URL or the other way round). Not retried."""
