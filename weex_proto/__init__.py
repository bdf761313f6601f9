"""Sans-IO core of weex-ws: the WEEX futures WebSocket v2 protocol as pure state machines.

Nothing here does I/O, reads a clock or draws random numbers of its own: bytes and `now` go in,
typed events and bytes to send come out. Adapters (`weex_anyio`, `weex_trio`) move the bytes.
The client they run, written once for any event loop, is the subpackage `weex_proto.runtime`:
the one place with async code, built on these modules and never imported by them.
"""

from .backoff import ReconnectPolicy
from .channels import build_channel, channel_matches, normalize_symbol, parse_channel
from .config import Endpoint, WeexConfig
from .connection import ConnectionOptions, ConnectionState, WeexConnection
from .errors import (
    AuthenticationError,
    ConfigError,
    ConnectionClosedError,
    ErrorKind,
    HandshakeRejectedError,
    LocalProtocolError,
    OrderBookError,
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
from .events import (
    CloseInitiator,
    Connected,
    ConnectionClosed,
    ConnectionRejected,
    ErrorReceived,
    Event,
    MessageReceived,
    MessageSkipped,
    PingAnswered,
    PongReceived,
    PushFrame,
    Subscribed,
    Unsubscribed,
    WebSocketMessage,
)
from .messages import PayloadError, parse_push, parse_record
from .records import OrderBookSnapshot, RecordSplitter
from .session import GiveUp, Reconnect, SessionState, Stop, WeexSession
from .subscriptions import SubscriptionBook

__all__ = [
    "AuthenticationError",
    "CloseInitiator",
    "ConfigError",
    "Connected",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionOptions",
    "ConnectionRejected",
    "ConnectionState",
    "Endpoint",
    "ErrorKind",
    "ErrorReceived",
    "Event",
    "GiveUp",
    "HandshakeRejectedError",
    "LocalProtocolError",
    "MessageReceived",
    "MessageSkipped",
    "OrderBookError",
    "OrderBookSnapshot",
    "PayloadError",
    "PingAnswered",
    "PongReceived",
    "ProtocolError",
    "ProxyAuthenticationError",
    "ProxyConnectionError",
    "ProxyError",
    "ProxyProtocolError",
    "ProxyTunnelRefusedError",
    "PushFrame",
    "RateLimitError",
    "Reconnect",
    "ReconnectExhaustedError",
    "ReconnectPolicy",
    "RecordSplitter",
    "ServerError",
    "SessionState",
    "Stop",
    "StreamOverflowError",
    "Subscribed",
    "SubscriptionBook",
    "SubscriptionLimitError",
    "Unsubscribed",
    "WebSocketMessage",
    "WeexConfig",
    "WeexConnection",
    "WeexError",
    "WeexSession",
    "build_channel",
    "channel_matches",
    "normalize_symbol",
    "parse_channel",
    "parse_push",
    "parse_record",
]
