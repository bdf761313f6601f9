"""What a closed client leaves behind: nothing that only the cycle collector can free.

Each client's transport holds its TLS context, and the default one carries the system's CA
bundle (about 1 MB of OpenSSL memory, which `tracemalloc` does not see). Anything of a closed
client kept alive by a reference cycle waits for a full collection of the oldest generation,
so a program opening and closing clients piles up several of them and fragments its heap
(`bench/bench_memory.py cycles` shows it in the resident set). Plain reference counting
frees a closed client at once; these tests check that nothing stops it, on every adapter
and in both of WEEX's dialects.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import Any

from tests.adapters import BOTH_DIALECTS, Harness, on_every_adapter, take
from weex_proto.config import Endpoint


class WatchedTransport:
    """The adapter's own TCP transport, in an object a test can hold a weak reference to."""

    def __init__(self, inner: Callable[[Endpoint], Awaitable[Any]]) -> None:
        self.inner = inner

    async def __call__(self, endpoint: Endpoint) -> Any:
        return await self.inner(endpoint)


@contextmanager
def no_cycle_collector() -> Iterator[None]:
    """Only reference counting frees memory in here (collected first: a clean start)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@on_every_adapter(tick_interval=0.02, dialects=BOTH_DIALECTS)
async def test_a_closed_client_frees_its_transport_without_the_cycle_collector(h: Harness) -> None:
    transport = WatchedTransport(h.adapter.tcp_transport(None))
    alive = weakref.ref(transport)
    with no_cycle_collector():
        client = h.client(transport=transport)
        del transport
        async with client:
            async with aclosing(client.stream_tickers(["BTCUSDT", "ETHUSDT"])) as tickers:
                await take(tickers)
            async with aclosing(client.stream_order_book("BTCUSDT", level=15)) as books:
                await take(books)
        del client
        assert alive() is None, "the closed client's transport waits for the cycle collector"
