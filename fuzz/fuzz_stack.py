"""Fuzz the whole client stack below the event loop: connections, `ClientHub`, open streams.

    python fuzz/fuzz_stack.py [fuzz/corpus/stack] [-atheris_runs=N]

The other harnesses stop at `WeexConnection` or `parse_push`; a ping whose `time` was "²"
passed them all and still ended the client, because it broke in the hub. Here one hub holds
two public connections (100 filler tickers fill the first, as WEEX's channel limit makes a
client do, so the streams sit on the second) and a private one, with streams open (tickers by
name and by pattern, trades, an order book, orders and account, a sync and an async handler),
and every frame goes through `receive_data`, `ClientHub.handle_events` and the buffers, and
every timer through `handle_timer` of the connection and of the hub, as the adapters drive
them. Nothing answers the client's subscribes unless an input says so.

Every input runs twice: against a v2 stack and a v3 one (`WeexConfig(api="v3")`). On v3 the
scripted server speaks v3 in the steps that build frames (A, V, E, M): it answers requests by
their ids (`{"result":true,"id":N}`, refusals `{"result":false,...}`), read from what the
client wrote, and pushes v3 events (`e`, `E`, `s`, `d`); the other steps send what they hold.

An input is one step per line; the line's first byte says what the rest is (capital: public
connection, small letter: private):

    C    choose the public connection the capital letters go to (the byte, modulo their number)
    J/j  text: one text frame, as it is (JSON or not)
    A/a  answer: ack every request the connection has outstanding; for the book's channel, the
         first byte's low bit says whether its SNAPSHOT follows (else it is withheld)
    V    version: a depth delta for the book from the server's sequence, the byte saying how:
         the next versions, a gap, a repeat at or below the live version, or restarted far below
    E/e  error: an error frame naming one channel of all the client knows (the byte picks it);
         on v3, the refusal of that channel's latest request (of an id never asked, if none)
    M/m  recipe: a valid WEEX frame of the dialect (first byte picks it) with fields replaced by
         hostile values
         (each further pair of bytes picks a field and a value)
    P/p  ping: a ping whose `time` is the rest, as a string
    R/r  raw: bytes straight onto the socket, below the WebSocket framing
    T/t  time: the clock moves on by the first byte in seconds, and timers run
    D    drain every stream and handler buffer now (otherwise they fill up and overflow)
    anything else: the whole line as a public text frame

Invariants: `receive_data`, `handle_timer`, `handle_events` and `decided` raise nothing; a
buffer never holds more than its size; an error frame closes a stream only when it answers a
subscribe of that stream's channel pending on the connection it came on; a book that is not
live on an open connection always has a snapshot deadline (it is never left silent); reading a
stream yields messages or ends with `BufferClosed` or a `WeexError` (a refused channel, an
overflowed private stream); a message's
`parse()` raises nothing but `PayloadError`; an order book reader gets at most its levels,
bids falling and asks rising; the clock offset is None or finite; handlers see only messages
for their pattern; and at the end every stream is closed.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import math
import random
from collections.abc import Iterator, Mapping
from typing import Any

from _support import (
    CONFIG,
    CORPUS,
    T0,
    V3_CONFIG,
    accept_response,
    client_texts,
    fuzz_main,
    text_frame,
)

from weex_proto.channels import channel_matches
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, ConnectionState, WeexConnection
from weex_proto.errors import WeexError
from weex_proto.events import WebSocketMessage
from weex_proto.logs import JsonLogFormatter
from weex_proto.messages import PayloadError
from weex_proto.runtime.fanout import BufferClosed, MessageBuffer
from weex_proto.runtime.hub import (
    ClientHub,
    StreamPlan,
    plan_order_book,
    plan_private,
    plan_tickers,
    plan_trades,
)
from weex_proto.session import GiveUp, Reconnect, WeexSession
from weex_proto.strategies import v3_frame
from weex_proto.v3wire import wire_channel

BUFFER_SIZE = 8
BOOK_LEVELS = 5
MAX_RECONNECTS = 16  # per input: each costs a handshake, and the fuzzer wants many inputs
OPTIONS = ConnectionOptions(
    ping_interval=5.0, ping_timeout=5.0, max_message_size=16384, stale_timeout=60.0
)
FILLERS = tuple(f"ticker.cmt_fill{i}usdt" for i in range(100))
"""Channels that fill the first public connection (WEEX allows 100 on one)."""
BOOK_CHANNEL = "depth.cmt_btcusdt.15"

_DEPTH_LINES = (CORPUS / "depth" / "snapshot_then_doc_delta.jsonl").read_text().splitlines()
TEMPLATES: tuple[Any, ...] = (
    *(json.loads((CORPUS / "json" / name).read_text()) for name in ("ticker.json", "trades.json")),
    *(json.loads(line) for line in _DEPTH_LINES),
    *(
        json.loads((CORPUS / "json" / name).read_text())
        for name in ("orders.json", "account.json", "kline.json", "positions.json", "fill.json")
    ),
    {"event": "ping", "time": "1693208170000"},
    {"type": "ping", "time": 1693208170000},
    {"event": "subscribed", "channel": "ticker.cmt_btcusdt"},
    {"event": "unsubscribed", "channel": "depth.cmt_btcusdt.15"},
    {"event": "error", "code": "40020", "msg": "Parameter is invalid", "channel": "orders"},
    {"code": "429", "msg": "Too many requests"},
)
V3_TEMPLATES: tuple[Any, ...] = (
    *(v3_frame(frame) for frame in TEMPLATES if frame.get("event") == "payload"),
    {"event": "ping", "time": "1693208170000"},
    {"type": "ping", "time": 1693208170000},
    {"result": True, "id": 1},
    {"result": False, "id": 2, "msg": "INVALID_ARGUMENT: invalid symbol : BTCUSDT@trade"},
    {"event": "connected", "timestamp": 1693208170000},
    {"id": 3, "method": "PONG"},
    {"code": "429", "msg": "Too many requests"},
)
_NESTED = object()
"""Stands for an array nested past the recursion limit, built afresh each time it is used."""
HOSTILE: tuple[Any, ...] = (
    "²",
    "1" * 400,
    "1" * 5000,
    "\uff11\uff12\uff13",
    "",
    "-1",
    "0",
    "1e99999",
    "-1e-99999",
    "NaN",
    "Infinity",
    " 1",
    "1_000",
    "9" * 40,
    "ticker.cmt_ethusdt",
    "depth.cmt_btcusdt.15",
    "cmt_other",
    "SNAPSHOT",
    "CHANGED",
    "orders",
    0,
    -1,
    10**30,
    2**64,
    1e308,
    -0.0,
    0.1,
    True,
    False,
    None,
    [],
    {},
    [1, 2],
    {"price": "1", "size": "1"},
    ["1", "1"],
    _NESTED,
    "BTCUSDT",
    "BTCUSDT@depth15",
    "depthSnapshot",
    "klineSnapshot",
    "MINUTE_1",
    {"result": True, "id": 1},
)
MAX_PATH_DEPTH = 6  # deep enough for every template field (msg.data.order[0].price)


def hostile_value(index: int) -> Any:
    value = HOSTILE[index % len(HOSTILE)]
    if value is _NESTED:
        nested: list[Any] = []
        for _ in range(1100):
            nested = [nested]
        return nested
    return copy.deepcopy(value)  # a fresh container: later recipes may change inside it


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value that a hostile value can replace, the root excluded."""
    found = [path] if path else []
    if len(path) >= MAX_PATH_DEPTH:
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def recipe_frame(recipe: bytes, templates: tuple[Any, ...] = TEMPLATES) -> str:
    """A template frame with hostile values put where the recipe's bytes say."""
    frame = copy.deepcopy(templates[recipe[0] % len(templates)] if recipe else templates[0])
    for where, what in zip(recipe[1:17:2], recipe[2:17:2], strict=False):
        paths = _paths(frame)
        if not paths:
            break
        *parents, last = paths[where % len(paths)]
        parent = frame
        for step in parents:
            parent = parent[step]
        if what != 255:
            parent[last] = hostile_value(what)
        elif isinstance(parent, dict):
            del parent[last]  # a missing field
    text = _encode(frame)
    return text if text is not None else json.dumps(templates[0])


def _encode(frame: Any) -> str | None:
    try:
        return json.dumps(frame, separators=(",", ":"))
    except (ValueError, RecursionError):
        return None


class Stack:
    """One hub, both endpoints connected, streams and handlers open: what a client holds."""

    def __init__(self, config: WeexConfig = CONFIG) -> None:
        self.now = T0
        self.v3 = config.dialect.request_ids
        self.templates = V3_TEMPLATES if self.v3 else TEMPLATES
        self.asked: dict[WeexConnection, list[tuple[int | None, str, str]]] = {}
        """v3: each connection's requests not answered yet, (id, operation, channel), oldest
        first, as the server read them from what the client wrote."""
        self.hub = ClientHub(
            config, options=OPTIONS, rng=random.Random(0), max_retries=None, buffer_size=BUFFER_SIZE
        )
        self.plans = (
            plan_tickers(["BTCUSDT"]),
            plan_tickers(None),
            plan_trades("BTCUSDT"),
            plan_order_book("BTCUSDT", BOOK_LEVELS),
            plan_private("orders"),
            plan_private("account"),
        )
        known = [*FILLERS, *(channel for plan in self.plans for channel in plan.channels)]
        self.wire_names = {wire_channel(channel): channel for channel in known}
        for channel in FILLERS:
            self.hub.user_subscribe(channel, self.now)
        self.streams: list[tuple[StreamPlan, MessageBuffer]] = []
        for plan in self.plans:
            self.streams.append((plan, self.hub.open_stream(plan)))
            for channel in plan.channels:
                self.hub.acquire(channel, self.now)
        self.sync_seen: list[WebSocketMessage[Any]] = []
        self.hub.add_handler("ticker.*", self.sync_seen.append)
        self.hub.add_handler("orders", self.sync_seen.append)

        async def async_handler(message: WebSocketMessage[Any]) -> None:
            raise AssertionError("the harness drains this buffer itself")

        handler_backlog = self.hub.add_handler("trades.*", async_handler)
        assert handler_backlog is not None
        self.handler_backlog = handler_backlog
        self.reconnects = 0
        self.public = list(self.hub.connections.endpoint(False).sessions)
        assert len(self.public) == 2, self.public
        self.sessions = {False: self.public[1], True: self.hub.session(True)}
        for session in [*self.public, self.sessions[True]]:
            self.connect(session)
        held = sorted(set(self.hub.subscriptions) - set(FILLERS))  # sorted: inputs replay
        self.channels = (*FILLERS[:3], *held, "ticker.cmt_nobodyusdt")
        self.server_version = 5000  # of the book's channel

    def connect(self, session: WeexSession) -> None:
        conn = self.hub.start_attempt(session, self.now)
        conn.receive_data(accept_response(conn.data_to_send()), self.now)
        if self.v3 and conn.state is ConnectionState.OPEN:
            greeting = {"event": "connected", "timestamp": int(self.now * 1000)}
            conn.receive_data(self.text(greeting), self.now)
        self.settle(session, conn)

    def text(self, frame: Any) -> bytes:
        return text_frame(json.dumps(frame).encode())

    def settle(self, session: WeexSession, conn: WeexConnection) -> None:
        """What the endpoint loop does after every read: events, decisions, reconnects."""
        decision = self.hub.handle_events(session, conn, self.now)
        written = conn.data_to_send()
        if self.v3 and conn.state is not ConnectionState.CONNECTING:
            self.read_requests(conn, written)
        if decision is None:
            return
        self.hub.decided(session, decision)
        if isinstance(decision, Reconnect) and self.reconnects < MAX_RECONNECTS:
            self.reconnects += 1
            self.now += decision.delay
            self.connect(session)
        elif isinstance(decision, GiveUp):
            assert isinstance(decision.error, WeexError), decision

    def read_requests(self, conn: WeexConnection, written: bytes) -> None:
        """v3: the subscribes and unsubscribes the client wrote, by id, for `answer`."""
        asked = self.asked.setdefault(conn, [])
        for text in client_texts(written):
            request = json.loads(text)
            method, params = request.get("method"), request.get("params")
            if method in ("SUBSCRIBE", "UNSUBSCRIBE") and isinstance(params, list):
                channel = self.wire_names.get(str(params[0]), str(params[0]))
                asked.append((request["id"], method.lower(), channel))

    def feed(self, private: bool, data: bytes) -> None:
        session = self.sessions[private]
        conn = session.connection
        if conn is None or conn.state is not ConnectionState.OPEN:
            return
        self.now += 0.01
        conn.receive_data(data, self.now)
        self.settle(session, conn)

    def wait(self, seconds: float) -> None:
        self.now += seconds
        for session in [*self.public, self.sessions[True]]:
            conn = session.connection
            if conn is not None:
                conn.handle_timer(self.now)
                self.hub.handle_timer(session, self.now)
                self.settle(session, conn)

    def choose(self, index: int) -> None:
        self.sessions[False] = self.public[index % len(self.public)]

    def answer(self, private: bool, snapshot: bool) -> None:
        """The server acks what the connection asked for, the book's snapshot with it or not."""
        conn = self.sessions[private].connection
        if conn is None or conn.state is not ConnectionState.OPEN:
            return
        frames: list[Any] = []
        if self.v3:
            requests = self.asked.pop(conn, [])
        else:
            requests = [(None, op, channel) for channel, op in conn.subscriptions.pending.items()]
        for request_id, operation, channel in requests:
            if self.v3:
                frames.append({"result": True, "id": request_id})
            else:
                frames.append({"event": f"{operation}d", "channel": channel})
            if channel == BOOK_CHANNEL and operation == "subscribe" and snapshot:
                frames.append(self.depth("SNAPSHOT", self.server_version, self.server_version))
        for frame in frames:
            self.feed(private, self.text(frame))

    def delta(self, how: int) -> None:
        """A depth delta from the server's sequence: next, a gap, a repeat, or a restart."""
        kind = how % 4
        if kind == 3:
            self.server_version = how  # far below anything the book has seen
        start = self.server_version + (5 if kind == 1 else 1)
        if kind == 2:
            start = max(self.server_version - how % 8, 0)
        end = max(start, self.server_version) if kind == 2 else start + how % 3
        self.server_version = max(self.server_version, end)
        holder = self.hub.connections.holder(BOOK_CHANNEL)
        if holder is not None and holder is self.sessions[False]:
            self.feed(False, self.text(self.depth("CHANGED", start, end)))

    def depth(self, kind: str, start: int, end: int) -> dict[str, Any]:
        """The book's depth push, in the dialect's words."""
        row = {
            "startVersion": str(start),
            "endVersion": str(end),
            "level": 15,
            "depthType": kind,
            "symbol": "cmt_btcusdt",
            "asks": [{"price": str(101 + end % 5), "size": "1"}],
            "bids": [{"price": str(100 - end % 3), "size": str(end % 2)}],
        }
        frame = {"event": "payload", "channel": BOOK_CHANNEL, "data": [row]}
        return v3_frame(frame, int(self.now * 1000)) if self.v3 else frame

    def error(self, private: bool, pick: int) -> None:
        """An error frame naming any channel; it may end only what it refuses."""
        channel = self.channels[pick % len(self.channels)]
        conn = self.sessions[private].connection
        if conn is None or conn.state is not ConnectionState.OPEN:
            return
        asked = conn.subscriptions.pending.get(channel) == "subscribe"
        open_before = [buffer for _, buffer in self.streams if not buffer.closed]
        frame: dict[str, Any] = {"event": "error", "code": "40020", "msg": "refused"}
        if self.v3:
            requests = self.asked.get(conn, [])
            latest = [index for index, request in enumerate(requests) if request[2] == channel]
            request_id = requests.pop(latest[-1])[0] if latest else 0  # 0: an id never asked
            frame = {"result": False, "id": request_id, "msg": f"INVALID_ARGUMENT: {channel}"}
        else:
            frame["channel"] = channel
        self.feed(private, self.text(frame))
        ended = [
            plan
            for plan, buffer in self.streams
            if buffer.closed and any(buffer is b for b in open_before)
        ]
        for plan in ended:
            assert asked and channel in plan.channels, (channel, plan, asked)

    def check_never_silent(self) -> None:
        """A book waiting for its snapshot on an open connection has a deadline to ask again."""
        for feed in self.hub.books.feeds.values():
            holder = self.hub.connections.holder(feed.channel)
            conn = None if holder is None else holder.connection
            if feed.readers and not feed.live and conn is not None and conn.is_open:
                assert feed.snapshot_due is not None, feed.channel

    def drain(self) -> None:
        for plan, buffer in self.streams:
            self._drain(buffer, plan.book_levels)
        self._drain(self.handler_backlog.public, None)
        self._drain(self.handler_backlog.private, None)
        for message in self.sync_seen:
            assert channel_matches("ticker.*", message.channel) or message.channel == "orders"
            _check_parse(message)
        self.sync_seen.clear()

    def _drain(self, buffer: MessageBuffer, book_levels: int | None) -> None:
        assert len(buffer) <= buffer.maxsize, buffer
        while True:
            try:
                message = buffer.get()
            except (BufferClosed, WeexError):
                return
            if message is None:
                return
            if book_levels is None:
                _check_parse(message)
            else:
                _check_book(message.data, book_levels)

    def finish(self) -> None:
        for session in [*self.public, self.sessions[True]]:
            session.stop(self.now)
        self.wait(3600.0)  # close handshakes time out
        for session in [*self.public, self.sessions[True]]:
            assert session.connection is None or session.connection.state is ConnectionState.CLOSED
        self.hub.end_all_streams()
        self.drain()
        assert all(buffer.closed for _, buffer in self.streams)
        for endpoint in self.hub.health.endpoints.values():
            offset = endpoint.server_clock_offset
            assert offset is None or math.isfinite(offset), offset


def _check_parse(message: WebSocketMessage[Any]) -> None:
    """A record's mapping is always there; its typed parse may only fail with PayloadError."""
    assert isinstance(message.data, Mapping)
    with contextlib.suppress(PayloadError):
        assert message.record is not None


def _check_book(data: Any, levels: int) -> None:
    bids, asks = data["bids"], data["asks"]
    assert len(bids) <= levels and len(asks) <= levels, data
    if data["resyncing"]:
        assert bids == () and asks == () and data["version"] is None, data
        return
    assert all(a[0] > b[0] for a, b in itertools.pairwise(bids)), data
    assert all(a[0] < b[0] for a, b in itertools.pairwise(asks)), data


class _FormatEveryRecord(logging.Handler):
    """Formats each record, plain and as JSON, and lets any failure out (handlers usually
    swallow theirs): log calls carry server strings, and must cope with all of them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.json = JsonLogFormatter(secrets=[CONFIG.secret_key or ""])

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)
        json.loads(self.json.format(record))


@contextlib.contextmanager
def _logs_checked() -> Iterator[None]:
    logger = logging.getLogger("weex_ws")
    saved = logger.level, logger.propagate
    handler = _FormatEveryRecord()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # and quiet: nothing reaches the root logger's last resort
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def test_one_input(data: bytes) -> None:
    with _logs_checked():
        for config in (CONFIG, V3_CONFIG):
            run(data, config)


def run(data: bytes, config: WeexConfig = CONFIG) -> Stack:
    """The input's steps against a stack of `config`'s dialect; the stack, finished."""
    stack = Stack(config)
    for line in data.split(b"\n")[:64]:
        op, rest = line[:1], line[1:]
        private = op.islower()
        kind = op.upper()
        if kind == b"J":
            stack.feed(private, text_frame(rest))
        elif kind == b"M":
            stack.feed(private, text_frame(recipe_frame(rest, stack.templates).encode()))
        elif kind == b"P":
            time = rest.decode("utf-8", "replace")
            stack.feed(private, text_frame(json.dumps({"event": "ping", "time": time}).encode()))
        elif kind == b"R":
            stack.feed(private, rest)
        elif kind == b"T":
            stack.wait(float(rest[0]) if rest else 1.0)
        elif op == b"C":
            stack.choose(rest[0] if rest else 0)
        elif kind == b"A":
            stack.answer(private, bool(rest[0] & 1) if rest else True)
        elif op == b"V":
            stack.delta(rest[0] if rest else 0)
        elif kind == b"E":
            stack.error(private, rest[0] if rest else 0)
        elif op == b"D":
            stack.drain()
        else:
            stack.feed(False, text_frame(line))
        stack.check_never_silent()
    stack.drain()
    stack.finish()
    return stack


if __name__ == "__main__":
    fuzz_main(test_one_input)
