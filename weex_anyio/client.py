"""`WeexWebSocketClient` for asyncio (and trio through anyio).

    async with WeexWebSocketClient(WeexConfig.from_env()) as client:
        async for message in client.stream_tickers(["BTCUSDT"]):
            print(message.data["last"], message.record.last_price)

All behaviour is `weex_proto.runtime.client_base.BaseClient`; this file owns the anyio task
group. It is entered with `async with`, or on asyncio only, kept in a hidden task started by
`connect()` for code that cannot use a context manager (then call `close()` when done: it
returns once that task, and every task it started, has ended).
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

from weex_proto.config import WeexConfig
from weex_proto.errors import LocalProtocolError
from weex_proto.proxy import ProxyRoutes
from weex_proto.runtime.backend import Backend
from weex_proto.runtime.client_base import BaseClient

from ._backend import AnyioBackend
from ._interface import Transport
from ._transport import tcp_transport


class WeexWebSocketClient(BaseClient[Transport]):
    """The WEEX futures WebSocket client. See the README for a tour."""

    _task_group: anyio.abc.TaskGroup | None = None
    _host_done: anyio.Event | None = None
    _host_task: asyncio.Task[None] | None = None

    @staticmethod
    def _default_rng() -> random.Random:
        return random.Random()  # OS-seeded; jitter only, not security

    def _default_transport(
        self, ssl_context: ssl.SSLContext, proxies: ProxyRoutes, user_agent: str
    ) -> Transport:
        return tcp_transport(ssl_context, proxies, user_agent=user_agent)

    def _make_backend(self, config: WeexConfig, transport: Transport) -> Backend:
        return AnyioBackend(transport)

    async def __aenter__(self) -> WeexWebSocketClient:
        """Start the client's background tasks; connections open when first needed."""
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._start_pending_workers()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close every connection cleanly and end every stream and handler task."""
        try:
            with anyio.CancelScope(shield=True):
                await self.disconnect()
        finally:
            task_group, self._task_group = self._task_group, None
            assert task_group is not None
            task_group.cancel_scope.cancel()
            # The body's own exception is not the task group's business: keeping it out means
            # it propagates unchanged instead of inside an ExceptionGroup.
            await task_group.__aexit__(None, None, None)
        self._raise_failure()

    def _start_soon(self, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> bool:
        if self._task_group is None:
            return False
        self._task_group.start_soon(work, name=name)
        return True

    def _cancel_tasks(self) -> None:
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    async def _ensure_task_host(self) -> None:
        if self._task_group is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise LocalProtocolError(
                "outside 'async with WeexWebSocketClient(...)' background tasks can only be "
                "started on asyncio; use the client as an async context manager"
            ) from None
        ready = anyio.Event()
        self._host_done = done = anyio.Event()

        async def host() -> None:
            try:
                async with anyio.create_task_group() as task_group:
                    self._task_group = task_group
                    ready.set()
                    await done.wait()
                    task_group.cancel_scope.cancel()
            finally:
                self._task_group = None
            if self._failure is not None and not isinstance(self._failure, Exception):
                # A KeyboardInterrupt or SystemExit from a handler: with no `async with` to
                # raise it from, it leaves the event loop the way asyncio lets them out of tasks.
                raise self._failure

        self._host_task = loop.create_task(host(), name="weex-ws client")
        await ready.wait()

    async def close(self) -> None:
        """Disconnect and end the background tasks; the client cannot be reused. Outside
        `async with`, also raises what ended the client from one of its tasks, if anything
        did (e.g. an async handler's `StreamOverflowError`)."""
        done, host = self._host_done, self._host_task
        self._host_done = self._host_task = None
        try:
            await super().close()
        finally:
            if done is not None and host is not None:
                done.set()
                await asyncio.wait({host})  # cancelling close() does not cancel the host task
                if not host.cancelled():
                    host.exception()  # retrieved: a KeyboardInterrupt has left the loop from it
        if host is not None and isinstance(self._failure, Exception):
            raise self._failure
