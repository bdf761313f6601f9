"""A connected pair of in-memory byte streams: a socket pair with no socket.

What one end sends, the other receives, in order; closing an end is a FIN (the peer reads
what was already sent, then `EndOfStream`, and its sends fail with `BrokenResourceError`).
Used to plug the simulator, or any anyio peer, straight into a client's `transport=`.
"""

from __future__ import annotations

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

PIPE_CHUNKS = 64
"""Chunks in flight per direction before `send` waits: backpressure, like a socket buffer."""


class MemoryByteStream(anyio.abc.ByteStream):
    """One end of `memory_stream_pair()`."""

    def __init__(
        self, outgoing: MemoryObjectSendStream[bytes], incoming: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._outgoing = outgoing
        self._incoming = incoming
        self._pending = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self._pending:
            self._pending = await self._incoming.receive()  # EndOfStream once the peer closed
        data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return data

    async def send(self, item: bytes) -> None:
        if item:
            await self._outgoing.send(bytes(item))  # BrokenResourceError once the peer closed

    async def send_eof(self) -> None:
        self._outgoing.close()

    async def aclose(self) -> None:
        self._outgoing.close()
        self._incoming.close()


def memory_stream_pair() -> tuple[MemoryByteStream, MemoryByteStream]:
    """Two connected anyio byte streams; give one to a client's transport, one to a peer."""
    a_to_b, b_from_a = anyio.create_memory_object_stream[bytes](PIPE_CHUNKS)
    b_to_a, a_from_b = anyio.create_memory_object_stream[bytes](PIPE_CHUNKS)
    return MemoryByteStream(a_to_b, a_from_b), MemoryByteStream(b_to_a, b_from_a)
