"""Making the core's plain buffers awaitable: one anyio.Event per sleeping consumer."""

from __future__ import annotations

import anyio

from weex_proto.events import WebSocketMessage
from weex_proto.fanout import MessageBuffer


class AsyncBuffer:
    def __init__(self, buffer: MessageBuffer) -> None:
        self.buffer = buffer
        self._wakeup: anyio.Event | None = None
        buffer.waker = self._notify

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    async def get(self) -> WebSocketMessage:
        """Next message; raises `BufferClosed` at the normal end, or the stream's error."""
        while True:
            message = self.buffer.get()
            if message is not None:
                return message
            self._wakeup = event = anyio.Event()
            await event.wait()
