"""Run one async test body against every adapter, each on its own event loop.

    @on_every_adapter(tick_interval=0.05)
    async def test_something(h: Harness) -> None:
        async with h.client() as client:
            ...

becomes three tests, `[anyio-asyncio]`, `[anyio-trio]` and `[trio]`: `weex_anyio` under
`anyio.run(backend="asyncio")`, `weex_anyio` under `anyio.run(backend="trio")`, and `weex_trio`
under `trio.run`. Each run starts a fresh `SimulatedWeexServer` (keyword arguments of the
decorator go to it) and hands the body a `Harness`: the adapter, the server, and a factory for
clients of the adapter under test pointed at that server.

Why plain `anyio.run`/`trio.run` rather than the anyio pytest plugin: the native trio variant
needs `trio.run` anyway, and running all three the same way is what lets one body serve all of
them, and lets the trio variants run under `trio.testing.MockClock` (`virtual_time=True`).

Virtual time and real sockets: the simulator listens on loopback TCP. With
`MockClock(autojump_threshold=0)` trio jumps to the next deadline whenever every task is
blocked *and* its I/O poll finds nothing ready. A loopback write is in the peer's receive
buffer by the time `send()` returns, so "blocked" only ever means "waiting for a timer or for
data nobody has sent", and the jump cannot overtake bytes in flight. Host names would break
this (trio resolves them in a thread), so every URL here is a numeric address. The bodies are
the same code as in real time; `Harness.virtual_time` says which clock is running, for
assertions that only virtual time makes exact.

Test bodies use anyio for their own waiting (`anyio.fail_after`, task groups): anyio runs
inside a native `trio.run` too, so only the client under test changes between variants.
"""

from __future__ import annotations

import inspect
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, TypeVar

import anyio
import attrs
import pytest
import trio
import trio.testing

import weex_anyio
import weex_trio
from weex_anyio import WebSocketMessage, WeexConfig
from weex_anyio._transport import tcp_transport as anyio_tcp_transport
from weex_anyio.testing import SimulatedWeexServer
from weex_anyio.testing._v3 import v2_channel
from weex_trio._transport import tcp_transport as trio_tcp_transport

T = TypeVar("T")

BOTH_DIALECTS = ("v2", "v3")
"""`on_every_adapter(dialects=BOTH_DIALECTS)`: run on WEEX's v2 and v3 protocols alike."""
TEST_LIMIT = 60.0
"""Seconds a whole test body may take before it fails instead of hanging."""
VIRTUAL_TEST_LIMIT = 3600.0
"""The same in virtual time, where a hang jumps straight to the limit."""

Client = weex_anyio.WeexWebSocketClient | weex_trio.WeexWebSocketClient
"""A client of either adapter; both have the whole `BaseClient` API and `async with`."""

USER_AGENT = "weex-ws-adapter-tests/1.0"
TAKE_LIMIT = 5.0
"""Seconds (virtual ones under MockClock) after which a message that has not come is not coming."""


@attrs.frozen
class Adapter:
    """One way of running the client: which package, on which event loop."""

    name: str
    client_class: type[weex_anyio.WeexWebSocketClient] | type[weex_trio.WeexWebSocketClient]
    loop: Literal["asyncio", "trio"]
    tcp_transport: Callable[[ssl.SSLContext | None], Callable[..., Awaitable[Any]]]
    """The adapter's default transport factory (TCP, plus verified TLS for wss://)."""

    def __str__(self) -> str:
        return self.name

    @property
    def can_use_virtual_time(self) -> bool:
        return self.loop == "trio"

    def run(self, body: Callable[[], Awaitable[T]], *, virtual_time: bool = False) -> T:
        """Run `body` to completion on this adapter's loop (under MockClock if asked and
        possible: asyncio has no virtual clock, so it runs in real time)."""
        options: dict[str, Any] = {}
        if virtual_time and self.can_use_virtual_time:
            options["clock"] = trio.testing.MockClock(autojump_threshold=0)
        if self.client_class is weex_trio.WeexWebSocketClient:
            return trio.run(body, **options)
        return anyio.run(body, backend=self.loop, backend_options=options)


ADAPTERS = (
    Adapter("anyio-asyncio", weex_anyio.WeexWebSocketClient, "asyncio", anyio_tcp_transport),
    Adapter("anyio-trio", weex_anyio.WeexWebSocketClient, "trio", anyio_tcp_transport),
    Adapter("trio", weex_trio.WeexWebSocketClient, "trio", trio_tcp_transport),
)


@attrs.define
class Harness:
    """What a test body gets: the adapter under test and a running simulator."""

    adapter: Adapter
    server: SimulatedWeexServer
    virtual_time: bool

    def config(self, **overrides: Any) -> WeexConfig:
        """A config for the simulator's account and URLs; `overrides` replace fields."""
        credentials = self.server.credentials
        fields: dict[str, Any] = {
            "api_key": credentials.api_key,
            "secret_key": credentials.secret_key,
            "passphrase": credentials.passphrase,
            "public_url": self.server.public_url,
            "private_url": self.server.private_url,
            "user_agent": USER_AGENT,
        }
        fields.update(overrides)
        return WeexConfig(**fields)

    def client(self, config: WeexConfig | None = None, **options: Any) -> Client:
        """A client of the adapter under test, with quick retries; `options` override."""
        settings: dict[str, Any] = {
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "connect_timeout": 2.0,
            "ping_interval": 5.0,
            "ping_timeout": 5.0,
            "rng": random.Random(7),
        }
        settings.update(options)
        return self.adapter.client_class(config or self.config(), **settings)


def on_every_adapter(
    *,
    virtual_time: bool = False,
    dialects: tuple[str, ...] = ("v2",),
    **simulator_options: Any,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., None]]:
    """Turn `async def test_x(h: Harness, <fixtures>)` into a test run once per adapter.

    Other parameters of the body are ordinary pytest fixtures (`caplog`, `tmp_path`, ...).
    `virtual_time=True` runs the trio variants under `MockClock(autojump_threshold=0)`.
    `dialects=BOTH_DIALECTS` runs each variant once per WEEX protocol generation too: the
    simulator's URLs (and so the client's config) are then v2's or v3's (`[...-v3]`).
    """
    simulator_options.setdefault("trade_interval", None)  # private events only when asked

    def decorate(body: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        def test(adapter: Adapter, **fixtures: Any) -> None:
            options = dict(simulator_options)
            if len(dialects) > 1:
                options["api"] = fixtures.pop("dialect")

            async def main() -> None:
                virtual = virtual_time and adapter.can_use_virtual_time
                with anyio.fail_after(VIRTUAL_TEST_LIMIT if virtual else TEST_LIMIT):
                    async with SimulatedWeexServer(**options) as server:
                        await body(Harness(adapter, server, virtual), **fixtures)

            try:
                adapter.run(main, virtual_time=virtual_time)
            except BaseExceptionGroup as group:
                raise _sole_error(group) from None  # a failed assert, not a task-group wrapper

        # pytest reads the signature to know which fixtures to pass: `adapter` (parametrised
        # here) instead of the body's `h`, then the body's own fixtures.
        parameters = list(inspect.signature(body).parameters.values())[1:]
        adapter_parameter = inspect.Parameter("adapter", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        extra = []
        if len(dialects) > 1:
            extra = [inspect.Parameter("dialect", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        test.__signature__ = inspect.Signature([adapter_parameter, *extra, *parameters])  # type: ignore[attr-defined]
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(test, attribute, getattr(body, attribute))
        marked: Callable[..., None] = pytest.mark.parametrize("adapter", ADAPTERS, ids=str)(test)
        if len(dialects) > 1:
            marked = pytest.mark.parametrize("dialect", dialects)(marked)
        return marked

    return decorate


def _sole_error(error: BaseException) -> BaseException:
    """The one error inside nested single-member exception groups (else the group itself)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


# --------------------------------------------------------------------------- small helpers


def requests(server: SimulatedWeexServer) -> list[dict[str, str]]:
    """The subscribe/unsubscribe requests the server received, in order, in v2's words
    (`{"event": "subscribe", "channel": ...}`) whichever dialect wrote them; a v3 request of
    several names counts once per name."""
    found = []
    for frame in server.received:
        if not isinstance(frame, dict):
            continue
        if frame.get("event") in ("subscribe", "unsubscribe"):
            found.append(frame)
        elif frame.get("method") in ("SUBSCRIBE", "UNSUBSCRIBE"):
            names = frame.get("params")
            for name in names if isinstance(names, list) else ():
                channel = v2_channel(name, server.symbols) if isinstance(name, str) else None
                if channel is not None:
                    found.append({"event": frame["method"].lower(), "channel": channel})
    return found


def operations(server: SimulatedWeexServer, channel: str) -> list[str]:
    """`requests` for `channel` (a v2 name): `["subscribe", "unsubscribe", ...]`."""
    return [request["event"] for request in requests(server) if request["channel"] == channel]


async def take(stream: AsyncIterator[WebSocketMessage[Any]]) -> WebSocketMessage[Any]:
    """The next message, failing the test instead of hanging when none comes."""
    with anyio.fail_after(TAKE_LIMIT):
        return await anext(stream)


async def eventually(condition: Callable[[], bool], *, limit: float = TAKE_LIMIT) -> None:
    """Poll `condition` (state nobody signals: counters, handler lists) until it holds."""
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.005)
