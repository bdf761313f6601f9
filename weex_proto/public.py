"""The names every adapter package re-exports beside its own `WeexWebSocketClient`."""

from .channels import KlineInterval, PriceType
from .config import WeexConfig
from .errors import (
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
from .records import OrderBookSnapshot

__all__ = [
    "AuthenticationError",
    "Candle",
    "Collateral",
    "ConfigError",
    "ConnectionClosedError",
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
    "RateLimitError",
    "ReconnectExhaustedError",
    "ServerError",
    "StreamOverflowError",
    "SubscriptionLimitError",
    "Ticker",
    "Trade",
    "WebSocketMessage",
    "WeexConfig",
    "WeexError",
]
