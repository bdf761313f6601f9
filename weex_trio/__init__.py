"""weex-ws on native trio: the same `WeexWebSocketClient` API and behaviour as `weex_anyio`."""

try:
    import trio as _trio  # noqa: F401 - only to say clearly what is missing
except ModuleNotFoundError as missing:  # pragma: no cover - tested in a subprocess
    if missing.name != "trio":
        raise
    raise ModuleNotFoundError(
        "weex_trio needs trio, which is not installed: pip install 'weex-ws[trio]' "
        "(or use weex_anyio, which runs on asyncio without it)",
        name="trio",
    ) from None

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
