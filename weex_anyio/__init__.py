"""weex-ws on asyncio (and on trio through anyio): `WeexWebSocketClient` and friends."""

from weex_proto.config import Endpoint
from weex_proto.public import *  # noqa: F403 - the shared names: config, errors, messages
from weex_proto.public import __all__ as _shared
from weex_proto.runtime.books import LocalOrderBook

from ._backend import work_turns
from ._interface import Transport, TransportStream
from ._transport import tcp_transport
from .client import WeexWebSocketClient

__all__ = [
    *_shared,
    "Endpoint",
    "LocalOrderBook",
    "Transport",
    "TransportStream",
    "WeexWebSocketClient",
    "tcp_transport",
    "work_turns",
]
