"""Frames a hostile or broken server could send: each is answered or skipped, never raised.

Found by probing the whole stack: one `{"event":"ping","time":"²"}` ended the client with an
`ExceptionGroup[ValueError]` (health read the time with `int()` after `str.isdigit()`), and so
did 400 digits (OverflowError) or 5000 (past Python's int digit limit). Arrays nested near the
recursion limit in a ping's `time` or an error's `code`/`msg` broke `repr`/`json.dumps` inside
`receive_data`. The core tests drive `WeexConnection` + `ClientHub` byte by byte; the adapter
tests send the same frames from the simulator to a real client on every adapter. Both run on
WEEX's v2 and v3 alike (v3's own frames: tests/test_v3_hostile.py).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from tests.adapters import BOTH_DIALECTS, Harness, eventually, on_every_adapter, take
from tests.test_hub import T0, connect, make_hub
from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, WeexConnection
from weex_proto.events import ConnectionClosed, ConnectionRejected, ErrorReceived, WebSocketMessage
from weex_proto.runtime.fanout import MessageBuffer
from weex_proto.runtime.hub import ClientHub, plan_order_book, plan_tickers
from weex_proto.session import WeexSession
from weex_proto.wire import describe, ping_server_time, text_of

BTC = "ticker.cmt_btcusdt"
NESTED = "[" * 990 + "]" * 990
"""Parses (orjson allows 1024 levels) but is one `repr` or `json.dumps` away from the limit."""

HOSTILE_TIMES: list[Any] = [
    "²",  # str.isdigit() is True, int() refuses it
    "\uff11\uff12\uff13",  # fullwidth digits: int() reads them, no timestamp has them
    "1" * 400,  # int() works, the float division overflows
    "1" * 5000,  # past Python's 4300-digit limit for int()
    "-5",
    "1693208170000.5",
    " 1693208170000",
    "",
    1e308,
    -1,
    10**20,
    True,
    None,
    [1693208170000],
    {"ms": 1693208170000},
]
HOSTILE_PINGS = [json.dumps({"event": "ping", "time": time}) for time in HOSTILE_TIMES] + [
    '{"event":"ping","time":' + NESTED + "}",
    '{"type":"ping","time":"²"}',
    '{"event":"ping"}',
]
HOSTILE_CONTROL = [
    '{"event":"error","code":' + NESTED + ',"msg":"x"}',
    '{"event":"error","code":1,"msg":' + NESTED + "}",
    '{"event":"error","code":{"a":[1]},"msg":["no"],"channel":7}',
    '{"event":"error","code":null,"msg":null,"channel":null}',
    '{"code":"' + "9" * 5000 + '","msg":true,"channel":["ticker.cmt_btcusdt"]}',
    '{"event":"error","msg":"for a channel nobody asked for","channel":"ticker.cmt_nope"}',
    '{"event":' + NESTED + "}",
    '{"event":["subscribed"],"channel":"ticker.cmt_btcusdt"}',
    '{"event":"subscribed","channel":"ticker.cmt_nobody_asked"}',
    '{"event":"unsubscribed","channel":"ticker.cmt_btcusdt"}',
    '{"event":"subscribed","channel":{"x":1}}',
    '{"event":"payload","channel":"ticker.cmt_btcusdt","data":"not a list"}',
    '{"event":"payload","channel":"ticker.cmt_btcusdt","data":' + NESTED + "}",
    '{"event":"payload","channel":"depth.cmt_btcusdt.15","data":{"no":"list"}}',
    '{"event":"payload","channel":"orders","msg":[1,2,3]}',
    '{"event":"payload","channel":' + NESTED + "}",
]


def ticker_push(price: str, api: str = "v2") -> str:
    """A BTCUSDT ticker push with this last price, in the words of WEEX's `api`."""
    if api == "v3":
        return json.dumps({"e": "ticker", "E": 1, "s": "BTCUSDT", "d": [{"c": price}]})
    return json.dumps({"event": "payload", "channel": BTC, "data": [{"lastPrice": price}]})


def expected_pong(ping: dict[str, Any], pong: dict[str, Any], api: str) -> dict[str, Any]:
    """What the client answers `ping` with: v2 echoes its `time` exactly (same value, same
    type) under the ping's key; v3 sends a PONG request of its own id."""
    if api == "v3":
        assert isinstance(pong.get("id"), int)
        return {"id": pong["id"], "method": "PONG"}
    key = "event" if "event" in ping else "type"
    expected: dict[str, Any] = {key: "pong"}
    if ping.get("time") is not None:
        expected["time"] = ping["time"]
    return expected


def hub_with_streams(
    options: ConnectionOptions | None = None, api: str = "v2"
) -> tuple[ClientHub, WeexSession, ServerPeer, list[MessageBuffer]]:
    """A hub connected to `peer`, with a ticker stream and an order book stream open."""
    hub = make_hub(WeexConfig(api_key="k", secret_key="s", passphrase="p", api=api))
    if options is not None:
        hub.options = options
    tickers = hub.open_stream(plan_tickers(["BTCUSDT"]))
    book = hub.open_stream(plan_order_book("BTCUSDT", 5))
    session = hub.acquire(BTC, T0)
    hub.acquire("depth.cmt_btcusdt.15", T0)
    peer = connect(hub, session)
    peer.texts.clear()
    return hub, session, peer, [tickers, book]


def feed(hub: ClientHub, session: WeexSession, peer: ServerPeer, text: str) -> None:
    conn = session.connection
    assert conn is not None
    conn.receive_data(peer.text(text), T0 + 1)
    assert hub.handle_events(session, conn, T0 + 1) is None  # still connected
    peer.receive(conn.data_to_send())


# ------------------------------------------------------------------ reading the values


@pytest.mark.parametrize("time", HOSTILE_TIMES, ids=repr)
def test_implausible_ping_times_give_no_server_time(time: object) -> None:
    assert ping_server_time(time) is None


@pytest.mark.parametrize(
    ("time", "seconds"),
    [("1693208170000", 1693208170.0), (1693208170000, 1693208170.0), ("0", 0.0), (12.5, 0.0125)],
)
def test_millisecond_timestamps_as_digits_or_numbers_are_read(time: object, seconds: float) -> None:
    assert ping_server_time(time) == seconds


def deeply_nested(depth: int = 5000) -> list[Any]:
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    return nested


def test_texts_of_wire_values_never_raise() -> None:
    nested = deeply_nested()
    assert text_of("40009") == "40009"
    assert text_of(40009) == "40009"
    assert text_of(None) == "null"
    assert text_of({"a": [1]}) == '{"a":[1]}'
    assert text_of(nested) == "a list"
    assert describe(nested) == "a list"
    assert describe("x" * 100) == repr("x" * 100)[:37] + "..."
    assert describe(10**400) == "a very large int"


# ------------------------------------------------------------------ the core, through the hub


@pytest.mark.parametrize("api", BOTH_DIALECTS)
@pytest.mark.parametrize("text", HOSTILE_PINGS, ids=lambda text: text[:40])
def test_a_hostile_ping_is_answered_and_data_keeps_flowing(text: str, api: str) -> None:
    hub, session, peer, (tickers, _) = hub_with_streams(api=api)
    feed(hub, session, peer, text)
    [pong] = peer.texts
    if text.count("[") < 900:
        assert json.loads(pong) == expected_pong(json.loads(text), json.loads(pong), api)
    elif api == "v3":
        assert json.loads(pong)["method"] == "PONG"
    else:  # only orjson reads it; echoed if `json.dumps` can write it back, answered anyway
        assert pong in ('{"event":"pong"}', '{"event":"pong","time":' + NESTED + "}")
    assert hub.health.endpoints["public"].pings_answered == 1
    assert hub.health.endpoints["public"].server_clock_offset is None

    feed(hub, session, peer, ticker_push("42", api))
    message = tickers.get()
    assert message is not None and message.data["lastPrice"] == "42"


@pytest.mark.parametrize("api", BOTH_DIALECTS)
def test_a_plausible_ping_time_sets_the_clock_offset(api: str) -> None:
    hub, session, peer, _ = hub_with_streams(api=api)
    feed(hub, session, peer, '{"event":"ping","time":"1699999999000"}')
    assert hub.health.endpoints["public"].server_clock_offset == pytest.approx(T0 + 1 - 1699999999)
    feed(hub, session, peer, '{"event":"ping","time":1699999998000}')
    assert hub.health.endpoints["public"].server_clock_offset == pytest.approx(T0 + 1 - 1699999998)
    feed(hub, session, peer, '{"event":"ping","time":"²"}')  # tells nothing: the last one stays
    assert hub.health.endpoints["public"].server_clock_offset == pytest.approx(T0 + 1 - 1699999998)


@pytest.mark.parametrize("api", BOTH_DIALECTS)
@pytest.mark.parametrize("text", HOSTILE_CONTROL, ids=lambda text: text[:40])
@pytest.mark.parametrize("loads", ["default", "json"])
def test_hostile_control_frames_are_skipped_or_logged(text: str, loads: str, api: str) -> None:
    options = ConnectionOptions(json_loads=json.loads) if loads == "json" else None
    hub, session, peer, (tickers, book) = hub_with_streams(options, api)
    feed(hub, session, peer, text)
    feed(hub, session, peer, ticker_push("43", api))
    received: list[WebSocketMessage[Any]] = []
    while (message := tickers.get()) is not None:
        received.append(message)
    assert received[-1].data["lastPrice"] == "43"
    assert not tickers.closed and not book.closed


# ------------------------------------------------------------------ a real client, every adapter


def pongs(h: Harness) -> list[dict[str, Any]]:
    """The answers to pings the server received: v2's `pong` events, v3's PONG requests."""
    return [
        frame
        for frame in h.server.received
        if isinstance(frame, dict)
        and ("pong" in (frame.get("event"), frame.get("type")) or frame.get("method") == "PONG")
    ]


@on_every_adapter(tick_interval=0.02, ping_interval=None, dialects=BOTH_DIALECTS)
async def test_hostile_pings_do_not_end_the_client(h: Harness) -> None:
    """Each of these pings used to end `async with client` with ExceptionGroup[ValueError]."""
    fatal = ["²", "1" * 400, "1" * 5000]
    async with (
        h.client(max_retries=None) as client,
        contextlib.aclosing(client.stream_tickers("BTCUSDT")) as stream,
    ):
        await take(stream)
        for time in fatal:
            await h.server.send_raw(json.dumps({"event": "ping", "time": time}))
        await h.server.send_raw('{"event":"ping","time":' + NESTED + "}")
        health = client.health.endpoints["public"]
        await eventually(lambda: health.pings_answered == len(fatal) + 1)
        await eventually(lambda: len(pongs(h)) >= len(fatal))
        if h.server.api == "v2":
            assert [pong.get("time") for pong in pongs(h)[: len(fatal)]] == fatal  # as sent
        assert health.server_clock_offset is None

        await h.server.send_raw(ticker_push("424242", h.server.api))  # on the same socket
        while (await take(stream)).data["lastPrice"] != "424242":
            pass
        assert h.server.stats.accepted == 1  # never reconnected
        await h.server.send_raw('{"event":"ping","time":"1700000000000"}')
        await eventually(lambda: health.server_clock_offset is not None)
    assert not client.is_connected


DEEP = deeply_nested()  # past any recursion limit, however deep the stack already is


@pytest.mark.parametrize(
    "frame",
    [
        {"event": "ping", "time": DEEP},
        {"type": "ping", "time": DEEP},
        {"event": "error", "code": DEEP, "msg": DEEP, "channel": DEEP},
        {"code": DEEP},
        {"event": DEEP},
        {"event": "payload", "channel": BTC, "data": DEEP},
    ],
    ids=["ping", "type-ping", "error", "bare-code", "event", "payload"],
)
def test_values_nested_past_the_recursion_limit_are_never_repr_or_dumped_raw(
    frame: dict[str, Any],
) -> None:
    """A JSON library (or `json_loads=`) can hand over values too deep for `repr`/`json.dumps`;
    the connection used both on a ping's time, an error's code and msg, an unknown event."""

    def loads(text: str) -> Any:
        return frame if text == "hostile" else json.loads(text)

    hub, session, peer, (tickers, _) = hub_with_streams(ConnectionOptions(json_loads=loads))
    feed(hub, session, peer, "hostile")
    if "ping" in (frame.get("event"), frame.get("type")):
        key = "event" if "event" in frame else "type"
        assert peer.json_sent() == [{key: "pong"}]  # answered, without the unwritable time
    feed(hub, session, peer, ticker_push("44"))
    received = []
    while (message := tickers.get()) is not None:
        received.append(message)
    assert received[-1].frame["data"] == [{"lastPrice": "44"}]


def test_a_refusal_whose_body_code_cannot_be_written_as_text_is_still_a_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import weex_proto.connection as connection_module

    class DeepJson:
        dumps = staticmethod(json.dumps)

        @staticmethod
        def loads(text: str) -> Any:
            return {"code": DEEP, "msg": "no"}

    monkeypatch.setattr(connection_module, "json", DeepJson)
    conn = WeexConnection(WeexConfig())
    conn.initiate(T0)
    peer = ServerPeer()
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.reject(403, b'{"code": "deep"}'), T0)
    rejected, closed = conn.events()
    assert isinstance(rejected, ConnectionRejected) and isinstance(closed, ConnectionClosed)
    assert (rejected.status_code, rejected.reason) == (403, "no")


def test_error_frames_and_refusal_bodies_of_any_size_give_bounded_texts() -> None:
    """A server's error text ends up in logs and exceptions: a megabyte of it must not."""
    conn = WeexConnection(WeexConfig())
    peer = ServerPeer()
    conn.initiate(T0)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), T0)
    list(conn.events())
    huge = {"event": "error", "code": "4" * 100_000, "msg": "x" * 500_000, "channel": BTC}
    conn.receive_data(peer.text(json.dumps(huge)), T0)
    (error,) = (e for e in conn.events() if isinstance(e, ErrorReceived))
    assert error.code is not None and error.code.startswith("4444") and len(error.code) <= 40
    assert error.message.startswith("xxxx") and len(error.message) <= 500

    refused = WeexConnection(WeexConfig())
    server = ServerPeer()
    refused.initiate(T0)
    server.receive(refused.data_to_send())
    body = json.dumps({"code": "5" * 10_000, "msg": "y" * 300_000}).encode()
    refused.receive_data(server.reject(503, body), T0)
    rejected = next(e for e in refused.events() if isinstance(e, ConnectionRejected))
    assert rejected.reason.startswith("yyyy") and len(rejected.reason) <= 500
