"""Fuzz the bytes a server answers our upgrade request with (and whatever follows them).

    python fuzz/fuzz_handshake.py [fuzz/corpus/handshake] [-atheris_runs=N]

Invariant: `receive_data`, `handle_timer`, `close` and `events` never raise; the connection
ends up open, rejected or closed, and says it closed at most once. Seeds write `{ACCEPT}` where
the Sec-WebSocket-Accept value belongs (the key is random per connection).
"""

from __future__ import annotations

import zlib

from _support import (
    ACCEPT_PLACEHOLDER,
    T0,
    accept_value,
    check_events,
    finish,
    fuzz_main,
    pieces,
    start_connection,
)

from weex_proto.events import Connected, ConnectionRejected, Event


def test_one_input(data: bytes) -> None:
    conn, request = start_connection(private=bool(zlib.crc32(data) & 1))
    response = data.replace(ACCEPT_PLACEHOLDER, accept_value(request))
    events: list[Event] = []
    for index, piece in enumerate(pieces(response)):
        conn.receive_data(piece, T0 + index / 10)
        events += conn.events()
        assert isinstance(conn.data_to_send(), bytes)
    events += finish(conn, T0 + 1)
    check_events(events)
    outcomes = [e for e in events if isinstance(e, Connected | ConnectionRejected)]
    assert len(outcomes) <= 1, outcomes  # accepted or refused, once, never both


if __name__ == "__main__":
    fuzz_main(test_one_input)
