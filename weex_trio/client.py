"""`WeexWebSocketClient` on native trio: nurseries, `trio.open_tcp_stream`, `trio.SSLStream`.

    async with WeexWebSocketClient(WeexConfig.from_env()) as client:
        async for message in client.stream_tickers(["BTCUSDT"]):
            print(message.data["last"], message.record.last_price)

All behaviour is `weex_proto.runtime.client_base.BaseClient`, shared with `weex_anyio`; this
file owns the nursery, which trio's structured concurrency ties to `async with`.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import trio

from weex_proto.config import WeexConfig
from weex_proto.errors import LocalProtocolError
from weex_proto.proxy import ProxyRoutes
from weex_proto.runtime.backend import Backend
from weex_proto.runtime.client_base import BaseClient

from ._backend import TrioBackend
from ._interface import Transport
from ._transport import tcp_transport


class WeexWebSocketClient(BaseClient[Transport]):
    """The WEEX futures WebSocket client for trio. Use it as `async with`."""

    _nursery: trio.Nursery | None = None
    _nursery_manager: Any = None

    @staticmethod
    def _default_rng() -> random.Random:
        return random.Random()  # OS-seeded; jitter only, not security

    def _default_transport(
        self, ssl_context: ssl.SSLContext, proxies: ProxyRoutes, user_agent: str
    ) -> Transport:
        return tcp_transport(ssl_context, proxies, user_agent=user_agent)

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
        self._raise_failure()

    def _start_soon(self, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> bool:
        if self._nursery is None:
            return False
        self._nursery.start_soon(work, name=name)
        return True

    def _cancel_tasks(self) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _ensure_task_host(self) -> None:
        if self._nursery is None:
            raise LocalProtocolError(
                "the trio client runs its connections in a nursery: "
                "use 'async with WeexWebSocketClient(...) as client:'"
            )
