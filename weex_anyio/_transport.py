"""Opening the byte stream under a connection: TCP, TLS, or whatever the user plugs in.

A transport is any `async (Endpoint) -> anyio.abc.ByteStream`. The default connects over TCP and
wraps TLS with certificate verification on; proxies, replay files and simulators plug in here.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from weex_proto.config import Endpoint

Transport = Callable[[Endpoint], Awaitable[anyio.abc.ByteStream]]

log = logging.getLogger("weex_ws")


def default_ssl_context(verify: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        log.warning(
            "TLS certificate verification is OFF; only do this against a test server",
            extra={"weex_event": "tls_unverified"},
        )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def tcp_transport(ssl_context: ssl.SSLContext | None = None) -> Transport:
    """The default transport: TCP, plus TLS (verified) for `wss://` URLs."""

    async def open_stream(endpoint: Endpoint) -> anyio.abc.ByteStream:
        if endpoint.secure:
            return await anyio.connect_tcp(
                endpoint.host,
                endpoint.port,
                tls=True,
                ssl_context=ssl_context or default_ssl_context(),
                tls_hostname=endpoint.host,
                # Exchanges often drop TCP without a TLS close_notify; that is just EOF to us.
                tls_standard_compatible=False,
            )
        return await anyio.connect_tcp(endpoint.host, endpoint.port)

    return open_stream


class WallClock:
    """Seconds since the epoch that advance with the event loop's clock.

    The core wants wall time (it signs with it and stamps messages with it) and deadlines that
    agree with the loop's sleeps. Anchoring wall time to the loop clock once gives both, and
    keeps working under trio's MockClock in tests.
    """

    def __init__(self) -> None:
        import time

        self._wall0 = time.time()
        self._loop0: float | None = None

    def __call__(self) -> float:
        loop_now = anyio.current_time()
        if self._loop0 is None:
            self._loop0 = loop_now
        return self._wall0 + (loop_now - self._loop0)
