"""The simulator enforces WEEX's documented limits (protocol doc §5.1), so a client that spreads
channels over several connections can be checked against them: per connection, 100 channels
and 240 subscribe/unsubscribe requests an hour; per IP, 100 concurrent connections and 300
connection requests per 5 minutes. Tests lower them through the constructor, and run on v2 and
v3 alike (`Wire`: the dialect's requests and answers)."""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from wsproto.events import Request

from tests.adapters import BOTH_DIALECTS
from tests.test_simulator import Wire
from weex_anyio.testing import SimulatedWeexServer
from weex_anyio.testing._auth import Admitted, Refused
from weex_anyio.testing._connection import ServerConnection

TOO_MANY = {"code": "429", "msg": "Too many requests"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # `websockets` plays the third-party client: asyncio only


@pytest.fixture(params=BOTH_DIALECTS)
def wire(request: pytest.FixtureRequest) -> Wire:
    return Wire(request.param)


def quiet_server(wire: Wire, **options: Any) -> SimulatedWeexServer:
    options.setdefault("api", wire.api)
    options.setdefault("tick_interval", 0.05)
    options.setdefault("trade_interval", None)
    options.setdefault("ping_interval", None)
    return SimulatedWeexServer(**options)


def ws_connect(url: str) -> connect:
    return connect(
        url, proxy=None, open_timeout=5, close_timeout=2, user_agent_header="weex-ws-tests/1.0"
    )


async def request(ws: ClientConnection, wire: Wire, event: str, channel: str) -> bool:
    """Send a (un)subscribe for `channel`: True if acknowledged, False if refused as over a
    limit (any other answer fails the test). Pushes are skipped."""
    sent = wire.request(channel, event)
    await ws.send(json.dumps(sent))
    with anyio.fail_after(5):
        while True:
            message = json.loads(await ws.recv())
            if wire.answers(sent)(message):
                break
    if message == wire.answer(sent):
        return True
    assert message == wire.refusal(sent, "429")
    return False


async def refused(server: SimulatedWeexServer) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(server.public_url):
            pass
    return info.value


def assert_too_many(refusal: InvalidStatus) -> None:
    response = refusal.response
    assert response.status_code == 429
    body = json.loads(response.body or b"")
    assert {k: body[k] for k in TOO_MANY} == TOO_MANY


def test_defaults_are_the_documented_limits() -> None:
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(SimulatedWeexServer).parameters.items()
    }
    assert defaults["max_channels"] == 100
    assert (defaults["max_operations_per_hour"], defaults["operations_window"]) == (240, 3600.0)
    assert defaults["max_connections"] == 100
    assert (defaults["max_connection_requests"], defaults["connection_request_window"]) == (
        300,
        300.0,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"max_channels": 0},
        {"max_connections": 0},
        {"max_connection_requests": 0},
        {"operations_window": 0.0},
        {"connection_request_window": -1.0},
    ],
)
def test_impossible_limits_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        SimulatedWeexServer(**options)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_101st_channel_on_one_connection_is_refused_by_default(wire: Wire) -> None:
    symbols = [f"cmt_sym{i}usdt" for i in range(101)]
    server = quiet_server(wire, symbols=symbols)
    async with server, ws_connect(server.public_url) as ws:
        for symbol in symbols[:100]:
            assert await request(ws, wire, "subscribe", f"ticker.{symbol}")
        assert not await request(ws, wire, "subscribe", f"ticker.{symbols[100]}")
        assert len(server.connections[0].subscriptions) == 100
        # The connection stays usable: dropping one channel makes room for another.
        assert await request(ws, wire, "unsubscribe", f"ticker.{symbols[0]}")
        assert await request(ws, wire, "subscribe", f"ticker.{symbols[100]}")


@pytest.mark.anyio
async def test_operation_budget_comes_back_as_the_window_slides(wire: Wire) -> None:
    window = 0.5
    server = quiet_server(wire, max_operations_per_hour=2, operations_window=window)
    async with server, ws_connect(server.public_url) as ws:
        started = anyio.current_time()
        assert await request(ws, wire, "subscribe", "ticker.cmt_btcusdt")
        assert await request(ws, wire, "subscribe", "ticker.cmt_ethusdt")
        assert not await request(ws, wire, "subscribe", "ticker.cmt_solusdt")
        assert server.connections[0].subscriptions == {
            "ticker.cmt_btcusdt",
            "ticker.cmt_ethusdt",
        }
        # The refused request counted too: both slots free up one window after it at most.
        await anyio.sleep_until(anyio.current_time() + window)
        assert anyio.current_time() - started >= window
        assert await request(ws, wire, "subscribe", "ticker.cmt_solusdt")


@contextlib.asynccontextmanager
async def open_connections(server: SimulatedWeexServer, n: int) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(n):
            await stack.enter_async_context(ws_connect(server.public_url))
        yield


@pytest.mark.anyio
async def test_connections_past_the_concurrent_cap_get_http_429(wire: Wire) -> None:
    async with quiet_server(wire, max_connections=3) as server:
        async with open_connections(server, 3):
            assert_too_many(await refused(server))
            assert len(server.connections) == 3
            stats = server.stats
            assert (stats.accepted, stats.rejected, stats.rate_limited) == (3, 1, 1)
        await server.wait_for_connections(0, exact=True)
        async with ws_connect(server.public_url):  # a freed slot is usable again
            pass


@pytest.mark.anyio
async def test_handshakes_racing_each_other_cannot_pass_the_concurrent_cap(wire: Wire) -> None:
    outcomes: list[str] = []
    release, all_known = anyio.Event(), anyio.Event()

    def settle(outcome: str) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 6:
            all_known.set()

    async def one(server: SimulatedWeexServer) -> None:
        try:
            async with ws_connect(server.public_url):
                settle("open")
                await release.wait()
        except InvalidStatus as refusal:
            assert_too_many(refusal)
            settle("refused")

    async with quiet_server(wire, max_connections=2) as server:
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one, server)
            with anyio.fail_after(10):
                await all_known.wait()
            release.set()
        assert sorted(outcomes) == ["open"] * 2 + ["refused"] * 4


@pytest.mark.anyio
async def test_connection_requests_past_the_rate_get_http_429_until_the_window_slides(
    wire: Wire,
) -> None:
    window = 0.6
    server = quiet_server(wire, max_connection_requests=3, connection_request_window=window)
    async with server:
        first = anyio.current_time()
        for _ in range(3):
            async with ws_connect(server.public_url):
                pass
        refusal = await refused(server)  # a fourth request within the window
        assert_too_many(refusal)
        assert server.stats.rate_limited == 1
        # Every request counts, refused ones too: wait a window past the refused one.
        await anyio.sleep_until(anyio.current_time() + window)
        assert anyio.current_time() - first >= window
        async with ws_connect(server.public_url) as ws:
            assert await request(ws, wire, "subscribe", "ticker.cmt_btcusdt")
        assert server.stats.accepted == 4


@pytest.mark.anyio
async def test_an_admitted_handshake_counts_before_its_101_is_out(wire: Wire) -> None:
    # The window between admitting an upgrade and serving it is too short to hit reliably over
    # sockets (the test above), so the server's judge is driven directly here.
    server = quiet_server(wire, max_connections=2)
    request = Request(host="127.0.0.1", target=wire.path(), extra_headers=[(b"user-agent", b"t")])
    pending = [cast(ServerConnection, SimpleNamespace(id=i)) for i in range(3)]
    verdicts = [server.judge_handshake(request, connection) for connection in pending]
    assert [type(v) for v in verdicts] == [Admitted, Admitted, Refused]
    assert cast(Refused, verdicts[2]).status == 429
    server.closed(pending[0])  # its handshake failed: the slot is free again
    assert isinstance(server.judge_handshake(request, pending[2]), Admitted)
