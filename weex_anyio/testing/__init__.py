"""A local WEEX futures WebSocket v2 server for tests, demos and users' own test suites.

    from weex_anyio.testing import SimulatedWeexServer

    async with SimulatedWeexServer(seed=1, ping_interval=1.0) as server:
        ...connect a client to server.public_url or server.private_url...
        await server.wait_for_subscription("ticker.cmt_btcusdt")
        await server.drop_connections()

The server implements the exchange side independently from `weex_proto`, following the protocol
reference; see `SimulatedWeexServer` for the options and the fault-injection methods.
"""

from ._auth import Credentials
from ._connection import ConnectionInfo
from ._feed import FeedRates
from ._memory import MemoryByteStream, memory_stream_pair
from ._private import SimulatedTrade
from ._sentlog import SentLog, SentRecord, read_sent_log, record_digest
from ._server import ServerStats, SimulatedWeexServer, run_simulator

__all__ = [
    "ConnectionInfo",
    "Credentials",
    "FeedRates",
    "MemoryByteStream",
    "SentLog",
    "SentRecord",
    "ServerStats",
    "SimulatedTrade",
    "SimulatedWeexServer",
    "memory_stream_pair",
    "read_sent_log",
    "record_digest",
    "run_simulator",
]
