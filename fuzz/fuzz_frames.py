"""Fuzz WebSocket frames after an accepted handshake, with the frame fast path on and off.

    python fuzz/fuzz_frames.py [fuzz/corpus/frames] [-atheris_runs=N]

Invariants: nothing raises (`receive_data`, `handle_timer`, `close`, `events`); a connection
closes at most once; and the fast path is invisible: the same input read in the same pieces
gives the same events and the same close code and reason with `fast_path` on and off. Every
input is read by a v2 and by a v3 connection (`WeexConfig(api="v3")`).
"""

from __future__ import annotations

from _support import CONFIG, T0, V3_CONFIG, check_events, finish, fuzz_main, open_connection, pieces

from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions
from weex_proto.events import Event


def run(data: bytes, *, fast: bool, config: WeexConfig) -> tuple[list[Event], int | None, str]:
    options = ConnectionOptions(fast_path=fast, max_message_size=4096, ping_interval=5.0)
    conn = open_connection(options=options, config=config)
    events: list[Event] = []
    for index, piece in enumerate(pieces(data)):
        conn.receive_data(piece, T0 + index)
        events += conn.events()
        conn.data_to_send()
    events += finish(conn, T0 + 100)
    check_events(events)
    return events, conn.close_code, conn.close_reason


def test_one_input(data: bytes) -> None:
    for config in (CONFIG, V3_CONFIG):
        assert run(data, fast=True, config=config) == run(data, fast=False, config=config)


if __name__ == "__main__":
    fuzz_main(test_one_input)
