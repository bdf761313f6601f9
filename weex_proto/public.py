"""The names every adapter package re-exports beside its own `WeexWebSocketClient`."""

from .config import WeexConfig
from .errors import (
    AuthenticationError,
    ConfigError,
    ConnectionClosedError,
    HandshakeRejectedError,
    ProtocolError,
    ProxyAuthenticationError,
    ProxyConnectionError,
    ProxyError,
    ProxyProtocolError,
    ProxyTunnelRefusedError,
    RateLimitError,
    ReconnectExhaustedError,
    ServerError,
    StreamOverflowError,
    SubscriptionLimitError,
    WeexError,
)
from .events import WebSocketMessage

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConnectionClosedError",
    "HandshakeRejectedError",
    "ProtocolError",
    "ProxyAuthenticationError",
    "ProxyConnectionError",
    "ProxyError",
    "ProxyProtocolError",
    "ProxyTunnelRefusedError",
    "RateLimitError",
    "ReconnectExhaustedError",
    "ServerError",
    "StreamOverflowError",
    "SubscriptionLimitError",
    "WebSocketMessage",
    "WeexConfig",
    "WeexError",
]
