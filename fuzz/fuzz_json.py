"""Fuzz the JSON inside well-formed text frames: one frame per line of the input.

    python fuzz/fuzz_json.py [fuzz/corpus/json] [-atheris_runs=N]

Invariants: the connection never raises whatever the text says (acks, errors, pings, pushes,
garbage), and `parse_push` raises nothing but `PayloadError`, both for the pushes the connection
delivers and for any JSON value at all.
"""

from __future__ import annotations

import contextlib
import json
import zlib

from _support import T0, check_events, finish, fuzz_main, open_connection, text_frame

from weex_proto.events import Event, MessageReceived
from weex_proto.messages import PayloadError, parse_push


def check_parse(value: object) -> None:
    with contextlib.suppress(PayloadError):
        parse_push(value)  # type: ignore[arg-type]  # any JSON value: documented to be safe


def test_one_input(data: bytes) -> None:
    texts = [line.decode("utf-8", "replace") for line in data.split(b"\n")]
    conn = open_connection(private=bool(zlib.crc32(data) & 1))
    events: list[Event] = []
    for index, text in enumerate(texts):
        conn.receive_data(text_frame(text.encode()), T0 + index)
        events += conn.events()
        conn.data_to_send()
    events += finish(conn, T0 + len(texts))
    check_events(events)
    for event in events:
        if isinstance(event, MessageReceived):
            with contextlib.suppress(PayloadError):
                event.message.parse()
    for text in texts:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            continue
        check_parse(value)


if __name__ == "__main__":
    fuzz_main(test_one_input)
