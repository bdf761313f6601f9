"""What an event loop must provide to run the client, and waiting on a core buffer with it.

The client (`client_base.BaseClient`) and its connection runners (`runner.py`) import no
event-loop library: each adapter package supplies one small `Backend` (events, locks, cancel
scopes, clocks, sockets), so asyncio/anyio and trio behave the same by construction.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ..config import Endpoint
from ..errors import ProxyError
from ..events import WebSocketMessage
from .fanout import HandlerBacklog, MessageBuffer


class EventLike(Protocol):
    def set(self) -> None: ...
    async def wait(self) -> Any: ...


class ScopeLike(Protocol):
    @property
    def cancelled_caught(self) -> bool: ...

    def cancel(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc_info: Any) -> bool | None: ...


class LockLike(Protocol):
    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc_info: Any) -> bool | None: ...


T = TypeVar("T")


class LoopLocal(Protocol[T]):
    """A value kept per event loop (anyio's `RunVar`, trio's)."""

    def get(self) -> T: ...  # LookupError while unset
    def set(self, value: T) -> object: ...


def loop_local(var: LoopLocal[T], make: Callable[[], T]) -> T:
    """`var`'s value in the running event loop, made by `make` on first use there."""
    try:
        return var.get()
    except LookupError:
        value = make()
        var.set(value)
        return value


class TurnsLike(Protocol):
    """A fair lock (anyio's, trio's): released to the longest waiter, who runs next."""

    async def acquire(self) -> None: ...
    def acquire_nowait(self) -> None: ...
    def release(self) -> None: ...
    def locked(self) -> bool: ...


class Backend(abc.ABC):
    """The event-loop primitives the client needs; one small subclass per adapter."""

    transport_errors: tuple[type[BaseException], ...] = (OSError, TimeoutError)

    @property
    def connect_errors(self) -> tuple[type[BaseException], ...]:
        """What a failed `open_stream` raises: the stream's errors, or a proxy's typed one."""
        return (*self.transport_errors, ProxyError)

    @abc.abstractmethod
    def event(self) -> EventLike: ...

    @abc.abstractmethod
    def lock(self) -> LockLike: ...

    @abc.abstractmethod
    def feed_turns(self) -> TurnsLike:
        """The event loop's one fair (first come, first served) lock that every receive loop
        running in it holds while the core decodes a slice: one slice per turn of the other
        tasks, however many connections flood at once."""

    @abc.abstractmethod
    def work_turns(self) -> TurnsLike:
        """The event loop's one fair lock for bulk work, held for one step of it: a slice
        decoded by whichever receive loop has the feed turn, or a step of another bulk worker
        of the program (the relay's publisher, its ack reader). Handed to the longest waiter,
        who takes its step in the next round of the loop: so a round holds one heavy step,
        and any other task waits for about one step, not for the sum of all of them."""

    @abc.abstractmethod
    def move_on_after(self, delay: float | None) -> ScopeLike: ...

    @abc.abstractmethod
    def shield(self) -> ScopeLike: ...

    @abc.abstractmethod
    def cancelled_exc_class(self) -> type[BaseException]:
        """What a cancelled task sees: the one exception a client task lets through unhandled."""

    @abc.abstractmethod
    async def checkpoint(self) -> None:
        """Let every other ready task run before this one continues (and be cancelled)."""

    @abc.abstractmethod
    def loop_time(self) -> float:
        """The loop's monotonic clock: the default `now` for every deadline."""

    @abc.abstractmethod
    def wall_time(self) -> float:
        """Seconds since the epoch, read fresh: for signing and for stamping messages only."""

    @abc.abstractmethod
    async def open_stream(self, endpoint: Endpoint) -> Any: ...

    @abc.abstractmethod
    async def receive(self, stream: Any, max_bytes: int) -> bytes:
        """Bytes from the stream; b"" at end of stream."""

    @abc.abstractmethod
    async def send(self, stream: Any, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close_stream(self, stream: Any) -> None: ...


# --------------------------------------------------------------------------- waiting on buffers


class AsyncBuffer:
    """The core's plain buffer (or an async handler's backlog), made awaitable with one
    backend event per sleeping consumer.

    The buffer's waker is a closure over a one-slot list, not a bound method: the buffer never
    refers back to this object (and so to the backend, the transport and its TLS context), so
    a finished stream is freed by reference counting instead of waiting for the cycle
    collector."""

    def __init__(self, buffer: MessageBuffer | HandlerBacklog, backend: Backend) -> None:
        self.buffer = buffer
        self._backend = backend
        self._wakeup: list[EventLike | None] = [None]
        wakeup = self._wakeup

        def notify() -> None:
            event = wakeup[0]
            if event is not None:
                event.set()
                wakeup[0] = None

        buffer.waker = notify

    async def get(self) -> WebSocketMessage[Any]:
        """Next message; raises `BufferClosed` at the normal end, or the stream's error."""
        while True:
            message = self.buffer.get()
            if message is not None:
                return message
            self._wakeup[0] = event = self._backend.event()
            await event.wait()
