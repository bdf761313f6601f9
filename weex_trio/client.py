"""`WeexWebSocketClient` on native trio: nurseries, `trio.open_tcp_stream`, `trio.SSLStream`.

    async with WeexWebSocketClient(WeexConfig.from_env()) as client:
        async for message in client.stream_tickers(["BTCUSDT"]):
            print(message.data["last"], message.record.last_price)

All behaviour is `weex_proto.client_base.BaseClient`, shared with `weex_anyio`; this file owns
the nursery, which trio's structured concurrency ties to `async with`.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import trio

from weex_proto.client_base import Backend, BaseClient
from weex_proto.config import WeexConfig
from weex_proto.connection import PongKey
from weex_proto.errors import LocalProtocolError
from weex_proto.hub import GapCallback

from ._backend import TrioBackend
from ._transport import Transport, tcp_transport


class WeexWebSocketClient(BaseClient):
    """The WEEX futures WebSocket client for trio. Use it as `async with`."""

    def __init__(
        self,
        config: WeexConfig | None = None,
        *,
        max_retries: int | None = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 10.0,
        pong_key: PongKey = "mirror",
        stale_timeout: float | None = None,
        max_message_size: int = 1 << 20,
        connect_timeout: float = 10.0,
        buffer_size: int = 1024,
        transport: Transport | None = None,
        ssl_context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] | None = None,
        on_gap: GapCallback | None = None,
    ) -> None:
        """Build the client; nothing connects until a stream, `subscribe()` or `connect()`.

        `config` defaults to `WeexConfig.from_env()`. The options are described in the
        README: reconnecting (`max_retries`, `backoff_base`, `backoff_max`), heartbeats
        (`ping_interval`, `ping_timeout`, `pong_key`, `stale_timeout`), limits
        (`max_message_size`, `buffer_size`, `connect_timeout`), plumbing (`transport`,
        `ssl_context`, `rng`, `clock`, `wall_clock`) and `on_gap(endpoint, channels)`.
        """
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        super().__init__(
            config,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            pong_key=pong_key,
            stale_timeout=stale_timeout,
            max_message_size=max_message_size,
            connect_timeout=connect_timeout,
            buffer_size=buffer_size,
            transport=transport,
            ssl_context=ssl_context,
            rng=rng,
            clock=clock,
            wall_clock=wall_clock,
            on_gap=on_gap,
        )

    @staticmethod
    def _default_rng() -> random.Random:
        return random.Random()  # OS-seeded; jitter only, not security

    @staticmethod
    def _default_transport(ssl_context: ssl.SSLContext) -> Transport:
        return tcp_transport(ssl_context)

    def _make_backend(self, config: WeexConfig, transport: Transport) -> Backend:
        return TrioBackend(transport)

    async def __aenter__(self) -> WeexWebSocketClient:
        """Start the client's background tasks; connections open when first needed."""
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        self._start_pending_workers()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close every connection cleanly and end every stream and handler task."""
        try:
            with trio.CancelScope(shield=True):
                await self.disconnect()
        finally:
            nursery, manager = self._nursery, self._nursery_manager
            self._nursery = self._nursery_manager = None
            assert nursery is not None
            nursery.cancel_scope.cancel()
            # The body's own exception is not the nursery's business: keeping it out means it
            # propagates unchanged instead of inside an ExceptionGroup.
            await manager.__aexit__(None, None, None)

    def _start_soon(self, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> bool:
        if self._nursery is None:
            return False
        self._nursery.start_soon(work, name=name)
        return True

    async def _ensure_task_host(self) -> None:
        if self._nursery is None:
            raise LocalProtocolError(
                "the trio client runs its connections in a nursery: "
                "use 'async with WeexWebSocketClient(...) as client:'"
            )
