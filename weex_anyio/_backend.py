"""The anyio primitives `BaseClient` runs on (asyncio, or trio through anyio)."""

from __future__ import annotations

import ssl
import time
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from weex_proto.config import Endpoint
from weex_proto.runtime.backend import (
    Backend,
    EventLike,
    LockLike,
    ScopeLike,
    TurnsLike,
    loop_local,
)

from ._interface import Transport, TransportStream

_FEED_TURNS: anyio.lowlevel.RunVar[anyio.Lock] = anyio.lowlevel.RunVar("weex_feed_turns")
_WORK_TURNS: anyio.lowlevel.RunVar[anyio.Lock] = anyio.lowlevel.RunVar("weex_work_turns")


def work_turns() -> anyio.Lock:
    """The running event loop's one fair lock for bulk work (`Backend.work_turns`). Hold it
    for each step of a task's own bulk work (`async with work_turns(): ...`, a millisecond
    or so a step): the clients' receive slices take it too, so the steps and the slices
    alternate round by round, and every other task waits for one of them at a time."""
    return loop_local(_WORK_TURNS, anyio.Lock)


class AnyioBackend(Backend):
    transport_errors = (
        OSError,
        TimeoutError,
        ssl.SSLError,
        anyio.BrokenResourceError,
        anyio.ClosedResourceError,
        anyio.EndOfStream,
    )

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def event(self) -> EventLike:
        return anyio.Event()

    def lock(self) -> LockLike:
        return anyio.Lock()

    def feed_turns(self) -> TurnsLike:
        return loop_local(_FEED_TURNS, anyio.Lock)

    def work_turns(self) -> TurnsLike:
        return work_turns()

    def move_on_after(self, delay: float | None) -> ScopeLike:
        return anyio.move_on_after(delay)

    def shield(self) -> ScopeLike:
        return anyio.CancelScope(shield=True)

    def cancelled_exc_class(self) -> type[BaseException]:
        return anyio.get_cancelled_exc_class()

    async def checkpoint(self) -> None:
        await anyio.lowlevel.checkpoint()

    def loop_time(self) -> float:
        return anyio.current_time()

    def wall_time(self) -> float:
        return time.time()

    async def open_stream(self, endpoint: Endpoint) -> TransportStream:
        return await self._transport(endpoint)

    async def receive(self, stream: Any, max_bytes: int) -> bytes:
        try:
            data: bytes = await stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        return data

    async def send(self, stream: Any, data: bytes) -> None:
        await stream.send(data)

    async def close_stream(self, stream: Any) -> None:
        await stream.aclose()
