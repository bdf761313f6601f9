"""weex-ws on native trio: the same `WeexWebSocketClient` API and behaviour as `weex_anyio`."""

from weex_proto.config import WeexConfig
from weex_proto.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionClosedError,
    HandshakeRejectedError,
    ProtocolError,
    RateLimitError,
    ReconnectExhaustedError,
    ServerError,
    StreamOverflowError,
    SubscriptionLimitError,
    WeexError,
)
from weex_proto.events import WebSocketMessage

from .client import WeexWebSocketClient

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConnectionClosedError",
    "HandshakeRejectedError",
    "ProtocolError",
    "RateLimitError",
    "ReconnectExhaustedError",
    "ServerError",
    "StreamOverflowError",
    "SubscriptionLimitError",
    "WebSocketMessage",
    "WeexConfig",
    "WeexError",
    "WeexWebSocketClient",
]
