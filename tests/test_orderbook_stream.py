"""stream_order_book end to end against the simulator: consistent books, gaps, resyncs.

On WEEX's v2 and v3 alike (the simulator's `api`); requests are read in v2's words
(`tests.adapters.requests`), whichever dialect wrote them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import pytest

from tests.adapters import BOTH_DIALECTS, eventually, operations
from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_anyio.testing import SimulatedWeexServer

pytestmark = pytest.mark.anyio
CHANNEL = "depth.cmt_btcusdt.15"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BOTH_DIALECTS)
async def server(request: pytest.FixtureRequest) -> AsyncIterator[SimulatedWeexServer]:
    options: dict[str, Any] = {"tick_interval": 0.02, "trade_interval": None}
    async with SimulatedWeexServer(api=request.param, **options) as server:
        yield server


def client_for(server: SimulatedWeexServer, **options: Any) -> WeexWebSocketClient:
    config = WeexConfig(public_url=server.public_url, private_url=server.private_url)
    assert config.dialect.name == server.api  # the simulator's URLs say which
    return WeexWebSocketClient(config, backoff_base=0.01, **options)


def assert_sane(data: dict[str, Any], levels: int) -> None:
    bids, asks = data["bids"], data["asks"]
    assert 0 < len(bids) <= levels
    assert 0 < len(asks) <= levels
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0]
    assert all(isinstance(x, Decimal) and x > 0 for level in bids + asks for x in level)


async def test_book_stream_yields_top_levels_with_increasing_versions(
    server: SimulatedWeexServer,
) -> None:
    async with client_for(server) as client:
        versions = []
        with anyio.fail_after(10):
            async for message in client.stream_order_book("BTCUSDT", level=5):
                assert not message.data["resyncing"]
                assert_sane(dict(message.data), 5)
                assert message.data["timestamp"] == message.timestamp
                versions.append(message.data["version"])
                if len(versions) == 15:
                    break
        assert versions == sorted(set(versions))
        assert versions[-1] <= server.depth_version("cmt_btcusdt")


async def test_version_gap_reports_resync_then_recovers_from_a_fresh_snapshot(
    server: SimulatedWeexServer,
) -> None:
    async with client_for(server) as client:
        seen: list[dict[str, Any]] = []
        with anyio.fail_after(10):
            async for message in client.stream_order_book("BTCUSDT", level=15):
                seen.append({**message.data, "gap": message.gap})
                if len(seen) == 3:
                    server.inject_depth_gap("cmt_btcusdt", skipped=5)
                resynced = [s for s in seen if s["resyncing"]]
                if resynced and len(seen) > seen.index(resynced[0]) + 5:
                    break
        [notice] = [s for s in seen if s["resyncing"]]
        assert notice["gap"] is True
        assert "version gap" in notice["reason"]
        assert notice["bids"] == ()
        after = seen[seen.index(notice) + 1 :]
        for data in after:
            assert_sane(data, 15)
        assert after[0]["version"] > seen[seen.index(notice) - 1]["version"] + 5
        assert client.health.book_resyncs == 1
        # the resync is an unsubscribe followed by a subscribe, on the same connection
        assert operations(server, CHANNEL) == ["subscribe", "unsubscribe", "subscribe"]


async def test_reconnect_rebuilds_the_book_from_the_new_snapshot(
    server: SimulatedWeexServer,
) -> None:
    async with client_for(server) as client:
        seen = []
        with anyio.fail_after(10):
            async for message in client.stream_order_book("ETHUSDT", level=15):
                seen.append(message)
                if len(seen) == 3:
                    await server.drop_connections()
                if any(m.gap for m in seen) and len(seen) >= 8:
                    break
        first_after = next(m for m in seen if m.gap)
        assert not first_after.data["resyncing"]  # a reconnect needs no resync: it resubscribes
        assert_sane(dict(first_after.data), 15)
        assert client.health.book_resyncs == 0
        assert client.connection_attempts == 2


async def test_two_book_streams_share_one_subscription(server: SimulatedWeexServer) -> None:
    async with client_for(server) as client:
        small = client.stream_order_book("BTCUSDT", level=3)
        large = client.stream_order_book("BTCUSDT", level=10)
        with anyio.fail_after(10):
            a = await small.__anext__()
            b = await large.__anext__()
        assert len(a.data["bids"]) == 3
        assert len(b.data["bids"]) == 10
        await small.aclose()
        with anyio.fail_after(10):
            await large.__anext__()  # still fed after the other stream closed
        await large.aclose()
        assert operations(server, CHANNEL).count("subscribe") == 1
        await eventually(lambda: operations(server, CHANNEL) == ["subscribe", "unsubscribe"])
