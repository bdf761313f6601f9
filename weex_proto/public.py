"""The names every adapter package re-exports beside its own `WeexWebSocketClient`."""

from .channels import KlineInterval, PriceType
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
    UnreachableError,
    WeexError,
)
from .events import WebSocketMessage
from .messages import (
    Candle,
    Collateral,
    DepthUpdate,
    Fill,
    Order,
    OrderStatus,
    PayloadError,
    Position,
    PriceLevel,
    Ticker,
    Trade,
)
from .pool import ConnectionBudget
from .records import OrderBookSnapshot
from .sessionpool import ConnectionHealth

__all__ = [
    "AuthenticationError",
    "Candle",
    "Collateral",
    "ConfigError",
    "ConnectionBudget",
    "ConnectionClosedError",
    "ConnectionHealth",
    "DepthUpdate",
    "Fill",
    "HandshakeRejectedError",
    "KlineInterval",
    "Order",
    "OrderBookSnapshot",
    "OrderStatus",
    "PayloadError",
    "Position",
    "PriceLevel",
    "PriceType",
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
    "Ticker",
    "Trade",
    "UnreachableError",
    "WebSocketMessage",
    "WeexConfig",
    "WeexError",
]
