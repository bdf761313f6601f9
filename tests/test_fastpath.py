"""The frame fast path (`weex_proto.fastframe`) must be invisible: same events, same bytes back.

The differential tests feed one byte stream (the server's 101 response followed by frames of
every kind, valid and not) to two connections, fast path on and off, cut at the same random
places, and compare everything observable after every piece: the events, the bytes the client
writes (masking keys made deterministic so they can be compared byte for byte), the state and
the close code and reason. Frames are built by hand here, not by wsproto, so they can be wrong
in every way a server could get them wrong.
"""

from __future__ import annotations

import contextlib
import json
import random
import struct
import tracemalloc
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, ConnectionState, WeexConnection
from weex_proto.events import ConnectionClosed, Event, MessageReceived
from weex_proto.fastframe import FastFrameReader, InvalidText, Piece

T0 = 1_700_000_000.0
CONFIG = WeexConfig(api_key="k", secret_key="s", passphrase="p")
TICKER = json.dumps(
    {
        "event": "payload",
        "channel": "ticker.cmt_btcusdt",
        "data": [{"symbol": "cmt_btcusdt", "lastPrice": "102623.9", "markPrice": "102623.9"}],
    }
)


# --------------------------------------------------------------------------- frames by hand


def frame(
    payload: bytes,
    *,
    opcode: int = 0x1,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length_form: int | None = None,
    msb: bool = False,
) -> bytes:
    """Any frame header at all: `length_form` 0/126/127 forces the 7-bit, 16-bit or 64-bit
    length (even a non-minimal one); `msb` sets the forbidden top bit of a 64-bit length."""
    length = len(payload)
    form = length_form
    if form is None:
        form = 0 if length < 126 else 126 if length < 1 << 16 else 127
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if mask is not None else 0
    if form == 0:
        header = bytes([first, mask_bit | (length & 0x7F)])
    elif form == 126:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", length & 0xFFFF)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", length | (msb << 63))
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


def padded_json(size: int) -> bytes:
    """A payload push of exactly `size` bytes (JSON allows trailing spaces); garbage if shorter."""
    body = json.dumps({"event": "payload", "channel": "trades.cmt_btcusdt", "data": []})
    if size < len(body):
        return b"x" * size
    return (body + " " * (size - len(body))).encode()


BOUNDARY_SIZES = (0, 1, 124, 125, 126, 127, 65535, 65536)

json_texts = st.one_of(
    st.just(TICKER),
    st.just('{"event":"ping","time":"1693208170000"}'),
    st.just('{"type":"ping","time":"1693208170000"}'),
    st.just('{"event":"subscribed","channel":"ticker.cmt_btcusdt"}'),
    st.just('{"event":"error","code":"40020","msg":"Parameter channel is invalid"}'),
    st.just("ping"),
    st.text(max_size=40),
    st.builds(
        lambda price: json.dumps(
            {"event": "payload", "channel": "ticker.cmt_ethusdt", "data": [{"p": price}]},
            ensure_ascii=False,
        ),
        st.text(max_size=20),
    ),
)
invalid_utf8 = st.sampled_from(
    [b"\xff", b'{"a":"\xc3"}', b"abc\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]
)


@st.composite
def units(draw: st.DrawFn) -> bytes:
    """One frame, or the frames of one fragmented message: valid, or wrong in one way."""
    kind = draw(
        st.sampled_from(
            [
                "text",
                "text",
                "text",
                "sized",
                "emoji",
                "announced",
                "bad_utf8",
                "binary",
                "ping",
                "pong",
                "close",
                "fragmented",
                "masked",
                "rsv",
                "opcode",
                "non_minimal",
                "msb",
                "control_fragment",
                "control_long",
                "lone_continuation",
                "text_in_message",
            ]
        )
    )
    if kind == "text":
        return frame(draw(json_texts).encode())
    if kind == "sized":
        size = draw(st.sampled_from(BOUNDARY_SIZES))
        return frame(padded_json(size))
    if kind == "emoji":  # 4 bytes a character: near the limits in bytes, far below in characters
        count = draw(st.sampled_from([15, 16, 17, 74, 75, 76, 17_500]))
        return frame(("\N{GRINNING FACE}" * count).encode())
    if kind == "announced":  # a header promising more than has come (what follows is payload)
        return frame(b"x" * draw(st.sampled_from([65, 301, 70_001])))[:-1]
    if kind == "bad_utf8":
        return frame(draw(invalid_utf8))
    if kind == "binary":
        return frame(draw(st.binary(max_size=200)), opcode=0x2)
    if kind in ("ping", "pong"):
        return frame(draw(st.binary(max_size=125)), opcode=0x9 if kind == "ping" else 0xA)
    if kind == "close":
        payload = draw(
            st.one_of(
                st.just(b""),
                st.just(b"\x03"),
                st.builds(
                    lambda code, reason: struct.pack("!H", code) + reason,
                    st.sampled_from([1000, 1001, 1005, 1011, 999, 3000, 4999, 5000]),
                    st.one_of(st.binary(max_size=20), st.just(b"bye"), st.just(b"\xff")),
                ),
            )
        )
        return frame(payload, opcode=0x8)
    if kind == "fragmented":
        text = draw(json_texts).encode() + draw(st.sampled_from([b"", "é€😀".encode()]))
        cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=3)))
        parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        opcode = draw(st.sampled_from([0x1, 0x2]))
        out = b""
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            out += frame(part, opcode=opcode if index == 0 else 0x0, fin=last)
            if not last and draw(st.booleans()):
                out += frame(b"mid", opcode=0x9)  # control frames may come between fragments
        return out
    if kind == "masked":
        return frame(TICKER.encode(), mask=draw(st.binary(min_size=4, max_size=4)))
    if kind == "rsv":
        return frame(b"{}", rsv=draw(st.integers(1, 7)), opcode=draw(st.sampled_from([1, 2, 9])))
    if kind == "opcode":
        return frame(b"{}", opcode=draw(st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xF])))
    if kind == "non_minimal":
        form = draw(st.sampled_from([126, 127]))
        return frame(TICKER.encode()[: draw(st.integers(0, 125))], length_form=form)
    if kind == "msb":
        return frame(b"x" * 10, length_form=127, msb=True)
    if kind == "control_fragment":
        return frame(b"p", opcode=0x9, fin=False)
    if kind == "control_long":
        return frame(b"p" * 126, opcode=draw(st.sampled_from([0x8, 0x9, 0xA])))
    if kind == "lone_continuation":
        return frame(b"tail", opcode=0x0, fin=draw(st.booleans()))
    assert kind == "text_in_message"
    return frame(b'{"a":', fin=False) + frame(TICKER.encode()) + frame(b"1}", opcode=0x0)


# --------------------------------------------------------------------------- running both ways


@contextlib.contextmanager
def deterministic_urandom(seed: int) -> Iterator[None]:
    """wsproto masks client frames (and makes the handshake key) with os.urandom; a seeded
    stand-in makes both runs write comparable bytes."""
    rng = random.Random(seed)
    with mock.patch("os.urandom", lambda n: rng.randbytes(n)):
        yield


def server_response(seed: int) -> bytes:
    """The 101 answer a wsproto server gives to the handshake our client would send."""
    with deterministic_urandom(seed):
        conn = WeexConnection(CONFIG)
        conn.initiate(T0)
        peer = ServerPeer()
        peer.receive(conn.data_to_send())
    return peer.accept()


Trace = list[tuple[list[Event], bytes, ConnectionState, int | None, str]]


def run(
    stream: bytes,
    cuts: list[int],
    *,
    fast: bool,
    max_size: int,
    close_after: int | None = None,
    eof: bool = False,
) -> Trace:
    """Feed `stream` in pieces; record what is observable after each one."""
    options = ConnectionOptions(fast_path=fast, max_message_size=max_size, ping_interval=None)
    trace: Trace = []
    with deterministic_urandom(7):
        conn = WeexConnection(CONFIG, options=options)
        conn.subscribe("ticker.cmt_btcusdt", T0)
        conn.initiate(T0)
        trace.append(([], conn.data_to_send(), conn.state, None, ""))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        for index, piece in enumerate(pieces):
            if piece:
                conn.receive_data(piece, T0 + index)
            if index == close_after:
                conn.close(T0 + index, 1000, "client done")
            events = list(conn.events())
            trace.append((events, conn.data_to_send(), conn.state, conn.close_code, ""))
        if eof:
            conn.receive_data(None, T0 + len(pieces))
        trace.append((list(conn.events()), conn.data_to_send(), conn.state, None, ""))
        trace.append(([], b"", conn.state, conn.close_code, conn.close_reason))
    return trace


def assert_same(stream: bytes, cuts: list[int], **kwargs: Any) -> Trace:
    slow = run(stream, cuts, fast=False, **kwargs)
    fast = run(stream, cuts, fast=True, **kwargs)
    assert fast == slow
    return fast


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    body = b"".join(draw(st.lists(units(), min_size=1, max_size=8)))
    response = server_response(7)
    stream = response + body
    cut_count = draw(st.integers(0, 12))
    cuts = set(draw(st.lists(st.integers(1, len(stream) - 1), max_size=cut_count)))
    if draw(st.integers(0, 3)):  # mostly: frames start in a read of their own, as in real life
        cuts.add(len(response))
    return stream, sorted(cuts)


@settings(
    max_examples=800,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    streams(),
    st.sampled_from([64, 300, 70_000, 1 << 20]),
    st.one_of(st.none(), st.integers(0, 12)),
    st.booleans(),
)
def test_fast_path_is_indistinguishable_from_wsproto(
    case: tuple[bytes, list[int]], max_size: int, close_after: int | None, eof: bool
) -> None:
    stream, cuts = case
    assert_same(stream, cuts, max_size=max_size, close_after=close_after, eof=eof)


# --------------------------------------------------------------------------- chosen cases


def messages(trace: Trace) -> list[str]:
    return [e.message.raw for events, *_ in trace for e in events if isinstance(e, MessageReceived)]


def closes(trace: Trace) -> list[ConnectionClosed]:
    return [e for events, *_ in trace for e in events if isinstance(e, ConnectionClosed)]


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_boundary_lengths_arrive_whole_at_any_split(size: int) -> None:
    payload = padded_json(size)
    start = len(server_response(7))
    stream = server_response(7) + frame(payload) + frame(TICKER.encode())
    for cut in (None, start + 1, start + 3, start + size // 2 + 2, len(stream) - 1):
        cuts = [start] if cut is None else [start, cut]
        trace = assert_same(stream, cuts, max_size=1 << 20)
        if size >= 44:  # long enough to be the JSON push rather than padding garbage
            assert messages(trace) == [payload.decode(), TICKER]


def test_frames_in_the_same_read_as_the_handshake_response() -> None:
    stream = server_response(7) + frame(TICKER.encode()) * 3 + frame(TICKER.encode())[:5]
    trace = assert_same(stream + frame(TICKER.encode())[5:], [len(stream)], max_size=1 << 20)
    assert messages(trace) == [TICKER] * 4


def test_fast_path_waits_for_a_frame_begun_in_the_handshake_read() -> None:
    # The rest of this binary frame looks like a text frame: starting the fast path in the
    # middle of it would deliver a message the server never sent.
    inner = frame(TICKER.encode())
    outer = frame(b"\x00" * 3 + inner, opcode=0x2)
    head = server_response(7) + outer[: len(outer) - len(inner)]
    trace = assert_same(
        head + outer[len(head) - len(server_response(7)) :], [len(head)], max_size=1 << 20
    )
    assert messages(trace) == []


@pytest.mark.parametrize("bad", [b"\xff", b"ok\xe2\x82", b"\xed\xa0\x80"])
def test_invalid_utf8_closes_with_1007_like_wsproto(bad: bytes) -> None:
    start = len(server_response(7))
    stream = server_response(7) + frame(TICKER.encode()) + frame(bad) + frame(TICKER.encode())
    trace = assert_same(stream, [start], max_size=1 << 20)
    assert messages(trace) == [TICKER]
    [closed] = closes(trace)
    assert closed.code == 1007
    assert "utf-8" in closed.reason


def test_oversized_frame_is_refused_like_wsproto() -> None:
    start = len(server_response(7))
    stream = server_response(7) + frame(padded_json(500)) + frame(TICKER.encode())
    trace = assert_same(stream, [start, len(stream) - 400], max_size=300)
    assert [c.code for c in closes(trace)] == [1009]


@pytest.mark.parametrize("parts", [1, 4])
def test_size_limit_counts_bytes_like_wsproto(parts: int) -> None:
    start = len(server_response(7))
    emoji = "\N{GRINNING FACE}" * 80  # 80 characters, 320 bytes
    fragments = [emoji[i * 20 : (i + 1) * 20].encode() for i in range(4)] if parts > 1 else []
    message = (
        b"".join(
            frame(f, opcode=0x1 if i == 0 else 0x0, fin=i == 3) for i, f in enumerate(fragments)
        )
        if fragments
        else frame(emoji.encode())
    )
    stream = server_response(7) + frame(TICKER.encode()) + message + frame(TICKER.encode())
    trace = assert_same(stream, [start], max_size=300)
    assert messages(trace) == [TICKER]
    assert [c.code for c in closes(trace)] == [1009]


def opened(*, fast: bool, max_size: int) -> tuple[WeexConnection, ServerPeer]:
    """An open connection and the server side that reads what it sends."""
    options = ConnectionOptions(fast_path=fast, max_message_size=max_size, ping_interval=None)
    conn = WeexConnection(CONFIG, options=options)
    conn.initiate(T0)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    list(conn.events())
    return conn, peer


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "wsproto"])
@pytest.mark.parametrize(
    "announcing",
    [
        frame(b"x" * 301)[:4],  # a frame's header alone
        frame(b"x" * 200, fin=False) + frame(b"y" * 101, opcode=0x0)[:2],  # a fragment's
        frame(b"x" * 200, fin=False) + frame(b"p", opcode=0x9) + frame(b"y" * 101, opcode=0)[:2],
    ],
    ids=["frame", "fragment", "fragment after a ping"],
)
def test_a_header_announcing_too_much_is_refused_before_its_payload(
    fast: bool, announcing: bytes
) -> None:
    conn, peer = opened(fast=fast, max_size=300)
    conn.receive_data(announcing, T0)
    [closed] = [e for e in conn.events() if isinstance(e, ConnectionClosed)]
    assert (closed.code, closed.reason) == (1009, "message of 301+ bytes exceeds limit of 300")
    peer.receive(conn.data_to_send())
    assert [code for code, _ in peer.closes] == [1009]


ENDLESS_LIMIT = 1 << 18


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "wsproto"])
@pytest.mark.parametrize("piece", [b"abcdefgh", "\N{GRINNING FACE}".encode()])
def test_an_endless_fragmented_message_is_refused_holding_little_more_than_the_limit(
    fast: bool, piece: bytes
) -> None:
    """Many tiny fragments: the message must be refused once it passes the limit, holding
    about the limit in memory on the way (a list of small str objects held up to 88 times)."""
    conn, peer = opened(fast=fast, max_size=ENDLESS_LIMIT)
    continuation = frame(piece, opcode=0x0, fin=False)
    per_read = 65536 // len(continuation)
    reads = [frame(piece, fin=False) + continuation * (per_read - 1)]
    reads += [continuation * per_read] * (4 * ENDLESS_LIMIT // (per_read * len(piece)))
    payload = 0
    tracemalloc.start()
    try:
        for data in reads:
            conn.receive_data(data, T0)
            payload += per_read * len(piece)
            if conn.state is not ConnectionState.OPEN:
                break
            assert len(conn._fragments) <= ENDLESS_LIMIT
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [closed] = [e for e in conn.events() if isinstance(e, ConnectionClosed)]
    assert closed.code == 1009
    assert (
        ENDLESS_LIMIT < payload <= ENDLESS_LIMIT + per_read * len(piece)
    )  # in the first read past
    peer.receive(conn.data_to_send())
    assert [code for code, _ in peer.closes] == [1009]
    assert peak < 2 * ENDLESS_LIMIT + 2 * 65536  # the message so far and a read or two


def test_text_frame_inside_a_fragmented_message_is_a_protocol_error() -> None:
    start = len(server_response(7))
    stream = server_response(7) + frame(b'{"a":', fin=False) + frame(TICKER.encode())
    trace = assert_same(stream, [start], max_size=1 << 20)
    assert [c.code for c in closes(trace)] == [1002]


# --------------------------------------------------------------------------- the fast path is used


def open_connection(fast: bool) -> tuple[WeexConnection, list[int]]:
    """An open connection whose wsproto counts the bytes it is given."""
    conn = WeexConnection(CONFIG, options=ConnectionOptions(fast_path=fast))
    conn.initiate(T0)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    list(conn.events())
    fed: list[int] = []
    real = conn._ws.receive_data

    def counting(data: bytes | None) -> None:
        fed.append(len(data or b""))
        real(data)

    conn._ws.receive_data = counting  # type: ignore[method-assign]
    return conn, fed


def test_plain_text_frames_bypass_wsproto_and_others_do_not() -> None:
    conn, fed = open_connection(fast=True)
    conn.receive_data(frame(TICKER.encode()) * 50, T0)
    received = [e for e in conn.events() if isinstance(e, MessageReceived)]
    assert [e.message.raw for e in received] == [TICKER] * 50
    assert fed == []
    ping = frame(b"hi", opcode=0x9)
    conn.receive_data(frame(TICKER.encode()) + ping + frame(TICKER.encode()), T0)
    assert fed == [len(ping)]  # only the ping went through wsproto
    conn.receive_data(frame(TICKER.encode()), T0)
    assert fed == [len(ping)]  # and the fast path carried on after it

    slow, slow_fed = open_connection(fast=False)
    slow.receive_data(frame(TICKER.encode()) * 2, T0)
    assert slow_fed == [2 * len(frame(TICKER.encode()))]


def test_frames_cut_by_the_read_boundary_stay_on_the_fast_path() -> None:
    conn, fed = open_connection(fast=True)
    stream = frame(TICKER.encode()) * 40 + frame(padded_json(70_000))
    for start in range(0, len(stream), 997):  # every read ends inside some frame
        conn.receive_data(stream[start : start + 997], T0)
    received = [e.message.raw for e in conn.events() if isinstance(e, MessageReceived)]
    assert received == [TICKER] * 40 + [padded_json(70_000).decode()]
    assert fed == []  # wsproto saw none of it


@pytest.mark.parametrize("where", ["first part", "last part", "split code point"])
def test_a_cut_frame_with_bad_utf8_closes_with_1007_at_the_same_read_as_wsproto(
    where: str,
) -> None:
    good = "\N{GRINNING FACE}".encode() * 30
    bad = {
        "first part": b"\xff" + good,
        "last part": good + b"\xff",
        "split code point": good[:50] + b"\xf0\x9f" + b"x" + good[50:],
    }[where]
    start = len(server_response(7))
    stream = server_response(7) + frame(TICKER.encode()) + frame(bad) + frame(TICKER.encode())
    cuts = [
        start,
        start + len(frame(TICKER.encode())) + 20,
        start + len(frame(TICKER.encode())) + 52,
    ]
    trace = assert_same(stream, cuts, max_size=1 << 20)
    assert messages(trace) == [TICKER]
    assert [c.code for c in closes(trace)] == [1007]


def test_reader_splits_a_stream_into_texts_and_wsproto_bytes() -> None:
    reader = FastFrameReader(max_payload=1 << 20)
    ping, big = frame(b"x", opcode=0x9), frame(padded_json(70_000))
    pieces = list(reader.feed(frame(b"{}") + ping + big[:1000]))
    assert pieces == ["{}", ping]  # a text frame still arriving stays on the fast path
    assert list(reader.feed(big[1000:5000])) == []
    assert list(reader.feed(big[5000:] + frame(b"[]")[:1])) == [padded_json(70_000).decode()]
    assert list(reader.feed(frame(b"[]")[1:])) == ["[]"]  # a split header was held back
    too_big = frame(padded_json(300))
    small = FastFrameReader(max_payload=200)
    assert small.feed(too_big[:100]) == [too_big[:100]]  # past the limit: wsproto refuses it
    assert list(reader.feed(frame(b"\xff") + frame(b"{}"))) == [
        InvalidText("'utf-8' codec can't decode byte 0xff in position 0: invalid start byte")
    ]
    assert reader.disabled
    assert list(reader.feed(b"anything")) == [b"anything"]


def test_reader_takes_any_bytes_like_read() -> None:
    stream = frame(b"{}") + frame(b"p", opcode=0x9)
    for data in (bytearray(stream), memoryview(stream)):
        pieces = list(FastFrameReader(max_payload=100).feed(data))  # type: ignore[arg-type]
        assert pieces == ["{}", frame(b"p", opcode=0x9)]
        assert all(type(piece) in (str, bytes) for piece in pieces)


@st.composite
def valid_frames(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """Frames wsproto accepts, and the texts the fast path may read (final text frames that
    are not inside a fragmented message), in order, as (bytes, expected-fast-text-or-'')."""
    kind = draw(st.sampled_from(["text", "text", "sized", "binary", "ping", "pong", "fragments"]))
    if kind == "text":
        text = draw(json_texts)
        return frame(text.encode()), [text]
    if kind == "sized":
        text = padded_json(draw(st.sampled_from(BOUNDARY_SIZES))).decode()
        return frame(text.encode()), [text]
    if kind == "binary":
        return frame(draw(st.binary(max_size=300)), opcode=0x2), [""]
    if kind in ("ping", "pong"):
        return frame(draw(st.binary(max_size=125)), opcode=0x9 if kind == "ping" else 0xA), [""]
    count = draw(st.integers(1, 4))
    out = frame(b"[", opcode=draw(st.sampled_from([1, 2])), fin=False)
    for index in range(count):
        out += frame(b"ping", opcode=0x9) + frame(b"1", opcode=0x0, fin=index == count - 1)
    return out, [""]


def rebuild(pieces: list[Piece]) -> bytes:
    """The wire bytes back from what the reader made of them (texts re-framed minimally)."""
    out = b""
    for piece in pieces:
        assert not isinstance(piece, InvalidText)
        out += frame(piece.encode()) if isinstance(piece, str) else piece
    return out


def check_reader(frames: list[tuple[bytes, list[str]]], cuts: list[int], limit: int) -> None:
    """Feed `frames` cut at `cuts`: every byte must come out once, in order, and every plain
    text frame within the size limit must come out as text, wherever the reads cut it."""
    stream = b"".join(raw for raw, _ in frames)
    expected = [text for raw, (text,) in frames if raw[0] == 0x81 and len(text.encode()) <= limit]
    reader = FastFrameReader(max_payload=limit)
    pieces: list[Piece] = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        pieces.extend(reader.feed(stream[start:stop]))
    assert not reader.disabled
    assert [p for p in pieces if isinstance(p, str)] == expected
    assert rebuild(pieces) == stream


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_frames(), min_size=1, max_size=10), st.data())
def test_reader_accounts_for_every_byte_and_reads_every_plain_frame_it_can(
    frames: list[tuple[bytes, list[str]]], data: st.DataObject
) -> None:
    stream_size = sum(len(raw) for raw, _ in frames)
    limit = data.draw(st.sampled_from([100, 70_000]), label="limit")
    cuts = data.draw(st.lists(st.integers(1, stream_size - 1)), label="cuts")
    check_reader(frames, sorted(set(cuts)), limit)


def test_reader_at_every_single_cut_of_a_mixed_stream() -> None:
    frames = [
        (frame(b"b" * 300, opcode=0x2), [""]),
        (frame(b"{}"), ["{}"]),
        (frame(b"hello", opcode=0x9), [""]),
        (frame(padded_json(200)), [padded_json(200).decode()]),
        (frame(b"y" * 70_000, opcode=0x2), [""]),
        (frame(b"[1]"), ["[1]"]),
    ]
    size = sum(len(raw) for raw, _ in frames)
    for cut in [*range(1, 520), *range(size - 20, size)]:
        check_reader(frames, [cut], 1 << 20)
    for first in range(1, 12):
        check_reader(frames, [first, first + 1, first + 3], 1 << 20)


@pytest.mark.parametrize(
    "refused",
    [
        frame(b"{}", mask=b"abcd"),
        frame(b"{}", rsv=4),
        frame(b"{}", opcode=0x2, rsv=1),
        frame(b"{}", opcode=0x3),
        frame(b"{}", opcode=0xB),
        frame(b"{}", length_form=126),
        frame(b"{}", length_form=127),
        frame(b"x" * 300, length_form=127),
        frame(b"x" * 10, length_form=127, msb=True),
        frame(b"p", opcode=0x9, fin=False),
        frame(b"p" * 126, opcode=0x8),
        frame(b"tail", opcode=0x0),
        frame(b"[", fin=False) + frame(b"{}"),
        frame(b"[", opcode=0x2, fin=False) + frame(b"{}", opcode=0x2),
    ],
)
def test_a_header_wsproto_refuses_hands_everything_to_wsproto(refused: bytes) -> None:
    reader = FastFrameReader(max_payload=1 << 20)
    stream = frame(b"{}") + refused + frame(b"[]")
    for cut in range(1, len(stream)):
        reader = FastFrameReader(max_payload=1 << 20)
        pieces = [*reader.feed(stream[:cut]), *reader.feed(stream[cut:])]
        assert reader.disabled
        assert pieces[0] == "{}" or cut < 4
        assert "[]" not in pieces
        assert rebuild(pieces) == stream


def test_orjson_is_the_default_decoder_when_installed() -> None:
    orjson = pytest.importorskip("orjson")
    assert ConnectionOptions().json_loads is orjson.loads


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=5), st.booleans())
def test_default_decoder_reads_frames_as_the_json_module_does(
    body: dict[str, Any], ascii_only: bool
) -> None:
    frame_text = json.dumps({**body, "event": "payload", "channel": "x"}, ensure_ascii=ascii_only)
    assert ConnectionOptions().json_loads(frame_text) == json.loads(frame_text)
