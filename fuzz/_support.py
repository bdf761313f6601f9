"""What the fuzz harnesses share: a connection in a known state, input splitting, atheris.

Each harness is a script (`python fuzz/fuzz_frames.py [corpus_dir] [-atheris_runs=N]`) and a
module with a plain `test_one_input(data: bytes)` that tests call without atheris. Scripts run
with this directory first on `sys.path`, so they import this module as `_support`.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import importlib
import random
import re
import struct
import sys
import types
import zlib
from collections.abc import Callable
from pathlib import Path

from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, ConnectionState, WeexConnection
from weex_proto.events import ConnectionClosed, Event

T0 = 1_700_000_000.0
CONFIG = WeexConfig(api_key="fuzz-key", secret_key="fuzz-secret", passphrase="fuzz-pass")  # noqa: S106
V3_CONFIG = WeexConfig(
    api_key="fuzz-key",
    secret_key="fuzz-secret",  # noqa: S106
    passphrase="fuzz-pass",  # noqa: S106
    api="v3",
)
CORPUS = Path(__file__).resolve().parent / "corpus"
ACCEPT_PLACEHOLDER = b"{ACCEPT}"
"""Seeds write this where the Sec-WebSocket-Accept value goes: the key is random per
connection, so the harness puts the right value in (and a mutated one stays wrong)."""

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_KEY = re.compile(rb"(?im)^sec-websocket-key:\s*(\S+)\s*$")


def accept_value(request: bytes) -> bytes:
    """The Sec-WebSocket-Accept answer to the key in our upgrade request."""
    found = _KEY.search(request)
    assert found is not None, "our upgrade request has no Sec-WebSocket-Key"
    return base64.b64encode(hashlib.sha1(found.group(1) + _WS_GUID).digest())  # noqa: S324


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame, as the server sends them."""
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", 0x81, size) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def client_texts(data: bytes) -> list[str]:
    """The text messages in what a client wrote (masked frames, whole, as `data_to_send`
    gives them); other frames are skipped, and a cut-off frame ends the reading."""
    texts = []
    while len(data) >= 2:
        opcode, size, start = data[0] & 0x0F, data[1] & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        elif size == 127:
            size, start = int.from_bytes(data[2:10], "big"), 10
        mask, payload = data[start : start + 4], data[start + 4 : start + 4 + size]
        if len(payload) < size:
            break
        if opcode == 0x1:
            texts.append(bytes(b ^ mask[i % 4] for i, b in enumerate(payload)).decode())
        data = data[start + 4 + size :]
    return texts


def accept_response(request: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_value(request) + b"\r\n\r\n"
    )


def start_connection(
    *,
    private: bool = False,
    options: ConnectionOptions | None = None,
    config: WeexConfig = CONFIG,
) -> tuple[WeexConnection, bytes]:
    """A connection whose upgrade request has been sent; returns it and the request."""
    conn = WeexConnection(config, private=private, options=options)
    conn.subscribe("orders" if private else "ticker.cmt_btcusdt", T0)
    conn.initiate(T0)
    return conn, conn.data_to_send()


def open_connection(
    *,
    private: bool = False,
    options: ConnectionOptions | None = None,
    config: WeexConfig = CONFIG,
) -> WeexConnection:
    """A connection past a successful handshake, its resubscribe already written."""
    conn, request = start_connection(private=private, options=options, config=config)
    conn.receive_data(accept_response(request), T0)
    check_events(list(conn.events()))
    conn.data_to_send()
    assert conn.state is ConnectionState.OPEN
    return conn


def pieces(data: bytes) -> list[bytes]:
    """`data` cut into a few reads at places chosen by the data itself (so a crash
    reproduces from the input alone), like a socket that returns whatever it has."""
    rng = random.Random(zlib.crc32(data))
    cuts = sorted({rng.randrange(len(data) + 1) for _ in range(rng.randrange(4))} - {0})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def check_events(events: list[Event]) -> None:
    """Only events come out, and a connection closes at most once."""
    assert all(isinstance(event, Event) for event in events), events
    assert sum(isinstance(event, ConnectionClosed) for event in events) <= 1, events


def finish(conn: WeexConnection, now: float) -> list[Event]:
    """Run the connection to its end by every route a caller can take; nothing may raise."""
    events = list(conn.events())
    conn.handle_timer(now)
    conn.close(now, 1000, "fuzz done")
    conn.handle_timer(now + 3600)
    conn.receive_data(None, now + 3600)
    events += conn.events()
    assert conn.state is ConnectionState.CLOSED
    assert isinstance(conn.data_to_send(), bytes)
    return events


INSTRUMENTED = ("weex_proto", "wsproto", "h11", "_support", "fuzz_")
"""Modules whose code atheris instruments for coverage: ours and the protocol libraries under
them (instrumenting everything loaded takes long and mostly measures the standard library)."""


def fuzz_main(test_one_input: Callable[[bytes], None]) -> None:
    """Run a harness under atheris (the `fuzz` extra), with libFuzzer's usual arguments."""
    try:
        atheris = importlib.import_module("atheris")
    except ImportError:
        sys.exit("atheris is not installed: pip install 'weex-ws[fuzz]'")
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and str(obj.__module__).startswith(INSTRUMENTED):
            atheris.instrument_func(obj)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
