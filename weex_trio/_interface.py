"""The public transport interface of `weex_trio`: what `transport=` must be, exactly.

A transport opens one byte stream per connection attempt; the client runs the WebSocket
handshake and everything after it over that stream, so the stream carries raw bytes (TCP, TLS
inside a tunnel, an in-memory pipe). The default is `tcp_transport()`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from weex_proto.config import Endpoint


class TransportStream(Protocol):
    """The byte stream a `Transport` returns. Every `trio.abc.Stream` satisfies it.

    Only these three methods are called, never concurrently with themselves (one task
    receives, sends are serialised by a lock; a send may run while a receive waits):

    * `receive_some(max_bytes)`: the next bytes available, at most `max_bytes` (any non-empty
      amount: frames are reassembled by the client). End of stream (the peer closed its side):
      return `b""`, as trio streams do.
    * `send_all(data)`: write all of `data`.
    * `aclose()`: close the stream; called exactly once per stream, also after errors. It
      should not raise: an error here is suppressed only if it is one listed below.

    A broken connection is one of `OSError` (including `ConnectionResetError` and
    `TimeoutError`), `ssl.SSLError`, `trio.BrokenResourceError` or `trio.ClosedResourceError`,
    from any method: the client treats it as a lost connection and reconnects with backoff.
    Any other exception is a bug in the transport and propagates. (Wrapping an anyio stream?
    Translate `anyio.EndOfStream` to `b""` and anyio's resource errors to trio's.)
    """

    async def receive_some(self, max_bytes: int) -> bytes | bytearray: ...

    async def send_all(self, data: bytes) -> None: ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    """`transport=`: an async callable, `await transport(endpoint)` -> a connected stream.

    Called once per connection attempt (so again on every reconnect), with the `Endpoint`
    (`host`, `port`, `secure`, `path`, ...) of the public or private URL being opened. It must
    return a stream already connected to the server (TLS done for `wss://`: the default
    transport checks the certificate against `endpoint.host`), or raise one of the errors
    listed on `TransportStream` (e.g. `ConnectionRefusedError`) for a failed attempt, which is
    retried with backoff. The client bounds the call with `connect_timeout`.
    """

    def __call__(self, endpoint: Endpoint, /) -> Awaitable[TransportStream]: ...
