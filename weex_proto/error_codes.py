"""Sorting WEEX error codes into what the caller should do: fix credentials, slow down, or neither.

WEEX documents only REST codes (protocol reference §5.3); no WebSocket error frame has been seen.
We classify by the documented codes, by the third-party codes some SDKs assume, and by the message
text, so that whatever shape the server actually uses, auth and rate-limit problems are recognised.
"""

from __future__ import annotations

from .errors import (
    AuthenticationError,
    ErrorKind,
    HandshakeRejectedError,
    RateLimitError,
    ServerError,
    WeexError,
)

AUTH_CODES = frozenset(
    {
        "40001",  # Header "ACCESS_KEY" is required
        "40002",  # Header "ACCESS_SIGN" is required
        "40003",  # Header "ACCESS_TIMESTAMP" is required
        "40005",  # Invalid ACCESS_TIMESTAMP
        "40006",  # Invalid ACCESS_KEY
        "40008",  # Request timestamp expired
        "40009",  # API verification failed
        "40011",  # Header "ACCESS_PASSPHRASE" is required
        "40012",  # Incorrect API key/Passphrase
        "40013",  # Account frozen
        "40014",  # Invalid permissions
        "40018",  # Invalid IP request
        "40022",  # Insufficient permissions for this operation
        "40753",  # API permission disabled
    }
)
RATE_LIMIT_CODES = frozenset({"429", "40030", "40031"})  # 4003x: assumed by weex-client 0.2.3
_RATE_LIMIT_WORDS = ("too many", "rate limit", "frequen", "too fast")
_AUTH_WORDS = ("signature", "passphrase", "api key", "apikey", "unauthori", "verification failed")

# Retry advice for rate limits when the server gives none: the documented connection limit is
# 300 requests per 5 minutes per IP, so waiting a full second per request is always safe.
DEFAULT_RATE_LIMIT_RETRY_AFTER = 1.0


def classify(code: str | None, message: str = "", status: int | None = None) -> ErrorKind:
    if code in RATE_LIMIT_CODES or status == 429:
        return ErrorKind.RATE_LIMIT
    if code in AUTH_CODES or (status in (401, 403) and code is None):
        return ErrorKind.AUTH
    lowered = message.lower()
    if any(word in lowered for word in _RATE_LIMIT_WORDS):
        return ErrorKind.RATE_LIMIT
    if any(word in lowered for word in _AUTH_WORDS):
        return ErrorKind.AUTH
    return ErrorKind.OTHER


def exception_for(
    kind: ErrorKind,
    code: str | None,
    message: str,
    *,
    retry_after: float | None = None,
    channel: str | None = None,
) -> WeexError:
    """The exception an adapter raises for an error event of this kind."""
    if kind is ErrorKind.AUTH:
        prefix = f"authentication failed ({code})" if code else "authentication failed"
        return AuthenticationError(f"{prefix}: {message}" if message else prefix)
    if kind is ErrorKind.RATE_LIMIT:
        text = f"rate limited ({code}): {message}" if code else f"rate limited: {message}"
        return RateLimitError(text, retry_after=retry_after or DEFAULT_RATE_LIMIT_RETRY_AFTER)
    return ServerError(code, message, channel=channel)


def rejection_exception(status: int, reason: str, kind: ErrorKind) -> WeexError:
    """The exception for a refused WebSocket upgrade (HTTP status instead of 101).

    Only the private endpoint sends credentials, so only there does the connection classify a
    401/403 (or an auth code in the body) as AUTH, an `AuthenticationError`; anything else that
    is not a rate limit is a `HandshakeRejectedError`, whose `retryable` says whether the status
    is worth another attempt.
    """
    if kind is not ErrorKind.OTHER:
        return exception_for(kind, str(status), reason)
    return HandshakeRejectedError(status, reason)
