"""ClientHub and its pooled connections against a scripted misbehaving server (issue 21).

A hypothesis state machine drives the real sans-IO stack with no event loop, time being an
explicit `now`: the hub, its connections (`hub.connections`, one `WeexConnection` per attempt)
and one wsproto server per socket (tests/wspeer.py). It does what an adapter's runner does:
starts an attempt when the pool grants it, moves bytes both ways until both sides are quiet,
runs every connection's timers and the hub's book timers, and carries out each decision.

The client holds 100 filler tickers (one public connection full: WEEX allows 100 channels on
one), so the streams under test live on a second public connection: order books for two
symbols and a ticker stream; an `orders` stream lives on the private connection, and a sync
and an async handler read beside them. Buffers are small, so a consumer left undrained
overflows.

The server misbehaves: it acks requests or leaves them unanswered, acks a depth subscribe
with its snapshot or without, sends deltas that continue, skip versions, repeat, or restart
far below (a server restart), sends error frames naming any channel on any connection, and
drops connections. What must hold whatever it does: nothing escapes the hub, buffers stay
bounded, every book a reader sees is consistent and is what the server's book was at that
version, a stream ends only for a reason the script gave it, and a book that waits for a
snapshot on an open connection always has a deadline. Once the server heals (answers what it
is asked from then on, sends data), every book stream is live and in step with the server,
or has ended with an error, and every wanted channel is subscribed on an open connection.

Each example speaks one WEEX protocol generation, drawn at the start: on v3 the server reads
the client's requests by id and answers them by id (`{"result":true,"id":N}`, a refusal
`{"result":false,"id":N,...}`), greets each socket with `connected`, and pushes v3 events
(`e`, `E`, `s`, `d`); the same rules and checks hold.
"""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.fixtures_messages import ORDERS_PUSH
from tests.test_hub import (
    BOOK,
    SUBSCRIBE,
    UNSUBSCRIBE,
    ack,
    depth_frame,
    live_book_stream,
    push,
    sent,
)
from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, ConnectionState, WeexConnection
from weex_proto.errors import OrderBookError, ServerError, StreamOverflowError
from weex_proto.events import WebSocketMessage
from weex_proto.runtime.fanout import BufferClosed, HandlerBacklog, MessageBuffer
from weex_proto.runtime.hub import ClientHub, plan_order_book, plan_private, plan_tickers
from weex_proto.session import Decision, GiveUp
from weex_proto.sessionpool import PooledSession
from weex_proto.strategies import v3_frame
from weex_proto.v3wire import v3_symbol, wire_channel

START = 1000.0
BUFFER_SIZE = 4
SNAPSHOT_TIMEOUT = 2.0
STALE_TIMEOUT = 3.0
HEAL_ROUNDS = 12  # seconds of healing: several snapshot and stale timeouts, and backoffs
CONFIG = WeexConfig(api_key="k", secret_key="s", passphrase="p")
CONFIGS = {"v2": CONFIG, "v3": WeexConfig(api_key="k", secret_key="s", passphrase="p", api="v3")}

FILLERS = [f"ticker.cmt_f{i}usdt" for i in range(100)]
BOOKS = {"depth.cmt_btcusdt.15": ("BTCUSDT", 5), "depth.cmt_ethusdt.15": ("ETHUSDT", 3)}
TICKER = "ticker.cmt_xrpusdt"
ORDERS = "orders"
UNKNOWN = "ticker.cmt_nosuchusdt"
FILLER_SET = frozenset(FILLERS)
STREAMED = frozenset({*BOOKS, TICKER, ORDERS})
ORDERS_TEXT = json.dumps(ORDERS_PUSH)
ORDERS_V3_TEXT = json.dumps(v3_frame(ORDERS_PUSH))
AT_START = ["everything", "all but the first", "everything", "nothing"]  # answered at once
ERROR_CHANNELS = [FILLERS[0], FILLERS[1], FILLERS[99], *BOOKS, TICKER, ORDERS, UNKNOWN, None]
V2_NAMES = {
    wire_channel(channel): channel for channel in [*FILLERS, *BOOKS, TICKER, ORDERS, UNKNOWN]
}
"""A v3 request's channel -> the v2 name the machine keeps its books by."""

Levels = tuple[tuple[Decimal, Decimal], ...]
Book = tuple[Levels, Levels]
CHANGES = st.lists(
    st.tuples(st.booleans(), st.integers(0, 9), st.integers(0, 3)), min_size=1, max_size=3
)


async def _async_handler(message: WebSocketMessage[Any]) -> None:
    return None


class ServerBook:
    """The server's book of one depth channel: bids 90..99, asks 101..110, never crossed,
    and every state it had, by version."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.symbol = channel.split(".")[1]
        self.version = self.lowest = 1_000_000
        self.bids = {95: 1, 97: 2}
        self.asks = {103: 1, 104: 3}
        self.history: dict[int, set[Book]] = {}
        self.sent: list[dict[str, Any]] = []  # deltas sent since the last restart, to repeat
        self.record()

    def levels(self) -> Book:
        bids = tuple((Decimal(p), Decimal(s)) for p, s in sorted(self.bids.items(), reverse=True))
        asks = tuple((Decimal(p), Decimal(s)) for p, s in sorted(self.asks.items()))
        return bids, asks

    def record(self) -> None:
        self.history.setdefault(self.version, set()).add(self.levels())

    def change(self, changes: list[tuple[bool, int, int]], versions: int) -> dict[str, Any]:
        """Apply `changes` as the next `versions` versions; the delta frame of the last."""
        bids: list[dict[str, str]] = []
        asks: list[dict[str, str]] = []
        for is_bid, offset, size in changes:
            side, price = (self.bids, 90 + offset) if is_bid else (self.asks, 101 + offset)
            if size:
                side[price] = size
            else:
                side.pop(price, None)
            (bids if is_bid else asks).append({"price": str(price), "size": str(size)})
        start = self.version + versions
        self.version = start
        self.record()
        frame = self.frame("CHANGED", start, bids, asks)
        self.sent.append(frame)
        return frame

    def restart(self, below: int) -> None:
        """The server restarts its sequence far below every version it ever sent (a
        sequence restarting just below the live book cannot be told from repeats)."""
        self.version = self.lowest = self.lowest - 1000 - below
        self.sent = []
        self.record()

    def snapshot(self) -> dict[str, Any]:
        bids = [{"price": str(p), "size": str(s)} for p, s in self.bids.items()]
        asks = [{"price": str(p), "size": str(s)} for p, s in self.asks.items()]
        return self.frame("SNAPSHOT", self.version, bids, asks)

    def frame(
        self, kind: str, version: int, bids: list[dict[str, str]], asks: list[dict[str, str]]
    ) -> dict[str, Any]:
        row = {
            "startVersion": str(version),
            "endVersion": str(version),
            "level": 15,
            "depthType": kind,
            "symbol": self.symbol,
            "asks": asks,
            "bids": bids,
        }
        return {"event": "payload", "channel": self.channel, "data": [row]}


class Socket:
    """One attempt's socket: the client's connection and the scripted server at the other end."""

    def __init__(self, session: PooledSession, conn: WeexConnection, v3: bool) -> None:
        self.session = session
        self.conn = conn
        self.v3 = v3
        self.peer = ServerPeer()
        self.accepted = False
        self.closed = False  # the server saw the client's close (and answered it)
        self.seen = 0  # requests read from `peer.texts`
        self.queue: list[dict[str, Any]] = []  # requests not answered yet, oldest first
        """Each as `{"event": operation, "channel": v2 name, "id": its id (v3) or None}`."""
        self.pending_subscribe: dict[str, Any] = {}
        """Channels whose latest request here is a subscribe not answered (by an ack or an
        error) since: what the client's book holds as a pending subscribe. Each with that
        request's id: v3 refuses by it, also a request the server ignored."""
        self.held: set[str] = set()  # channels the server sends data for
        self.outbox = b""
        self.depth_frames = 0  # depth pushes in `outbox`

    def __repr__(self) -> str:
        kind = "private" if self.session.private else "public"
        return f"<socket of {kind} connection {self.session.index}>"

    @property
    def open(self) -> bool:
        return self.accepted and not self.closed

    def send(self, frame: dict[str, Any]) -> None:
        """A v2-shaped frame, sent in the socket's dialect (a v3 push; an answer by id)."""
        if frame.get("event") == "payload" and frame["channel"].startswith("depth."):
            self.depth_frames += 1
        if self.v3:
            frame = self.wire(frame)
        else:
            frame = {key: value for key, value in frame.items() if key != "id"}
        self.outbox += self.peer.text(frame)

    def wire(self, frame: dict[str, Any]) -> dict[str, Any]:
        if frame.get("event") in ("subscribed", "unsubscribed"):
            return {"result": True, "id": frame["id"]}
        if frame.get("event") == "error":
            message = f"INVALID_ARGUMENT: {frame.get('channel')}"
            return {"result": False, "id": frame.get("id", 0), "msg": message}  # 0: never asked
        if frame["channel"].startswith("ticker."):
            (row,) = frame["data"]
            symbol = v3_symbol(frame["channel"].split(".")[1])
            return {
                "e": "ticker",
                "E": 1_700_000_000_000,
                "s": symbol,
                "d": [{"c": row["lastPrice"]}],
            }
        return v3_frame(frame)


class Stream:
    """One stream (or the async handler's buffer) and what its reader has seen."""

    def __init__(
        self, name: str, buffer: MessageBuffer | HandlerBacklog, channel: str, levels: int = 0
    ) -> None:
        self.name = name
        self.buffer = buffer
        self.channel = channel
        self.levels = levels
        self.ended: BaseException | None = None
        self.last_version: int | None = None  # since the last resync notice or gap
        self.last_book: tuple[int, Levels, Levels] | None = None
        self.last_price = 0
        self.backlog = 0  # orders pushed since the reader last drained

    @property
    def is_book(self) -> bool:
        return self.levels > 0


class MisbehavingServerMachine(RuleBasedStateMachine):
    # --- set-up -------------------------------------------------------------------------------

    @initialize(at_start=st.sampled_from(AT_START), api=st.sampled_from(sorted(CONFIGS)))
    def start(self, at_start: str, api: str) -> None:
        """The client and its streams, connected; what the server answers at once."""
        self.now = START
        self.v3 = api == "v3"
        event(f"dialect {api}")
        options = ConnectionOptions(ping_interval=None, stale_timeout=STALE_TIMEOUT)
        self.hub = ClientHub(
            CONFIGS[api],
            options=options,
            rng=random.Random(7),
            max_retries=None,
            backoff_base=0.2,
            backoff_max=2.0,
            buffer_size=BUFFER_SIZE,
            snapshot_timeout=SNAPSHOT_TIMEOUT,
        )
        self.sockets: dict[PooledSession, Socket] = {}
        self.books = {channel: ServerBook(channel) for channel in BOOKS}
        self.acked_ever: set[str] = set()
        self.answering: str | None = None  # how the server answers each request at once
        self.healed = False  # once in a run, beside the teardown's
        self.settled = False
        self.depth_frames_delivered = 0
        self.depth_records_handled = 0
        self.ticker_prices: dict[str, int] = {}
        self.may_end: dict[str, tuple[type[BaseException], ...]] = {}

        self.hub.add_handler("depth.*", self.on_depth)
        handler_buffer = self.hub.add_handler("ticker.*", _async_handler)
        assert handler_buffer is not None
        for channel in FILLERS:
            self.hub.user_subscribe(channel, self.now)
        self.streams: list[Stream] = []
        for channel, (symbol, levels) in BOOKS.items():
            buffer = self.hub.open_stream(plan_order_book(symbol, levels))
            self.streams.append(Stream(channel, buffer, channel, levels))
        self.streams.append(Stream(TICKER, self.hub.open_stream(plan_tickers("XRPUSDT")), TICKER))
        self.streams.append(Stream(ORDERS, self.hub.open_stream(plan_private(ORDERS)), ORDERS))
        self.handler = Stream("async handler", handler_buffer, "ticker.*")
        for stream in self.streams:
            self.hub.acquire(stream.channel, self.now)

        primary = self.hub.connections.endpoint(False).primary()
        second = self.hub.connections.holder(TICKER)
        assert second is not None and second is not primary  # the fillers fill the first
        for channel in BOOKS:
            assert self.hub.connections.holder(channel) is second
        self.connect_all(accept=True)
        assert len(self.sockets) == 3
        for socket in self.sockets.values():
            if at_start == "all but the first":
                self.answer(socket, 1, "ignore")
            if at_start != "nothing":
                self.answer(socket, len(socket.queue), "ack")
        self.settle()

    def on_depth(self, message: WebSocketMessage[Any]) -> None:
        self.depth_records_handled += 1

    # --- what the adapter does ----------------------------------------------------------------

    def pump(self, session: PooledSession) -> bool:
        """Move bytes both ways until both sides are quiet; events go to the hub, as the
        runner does, and a decision is carried out. True if anything moved."""
        moved = False
        while (socket := self.sockets.get(session)) is not None:
            conn = socket.conn
            out = conn.data_to_send()
            if out:
                socket.peer.receive(out)
                self.take_requests(socket)
            data, socket.outbox = socket.outbox, b""
            if data and conn.state is not ConnectionState.CLOSED:
                conn.receive_data(data, self.now)
                self.depth_frames_delivered += socket.depth_frames
            socket.depth_frames = 0
            decision = self.hub.read_events(session, conn, self.now)
            if decision is not None:
                del self.sockets[session]
                self.decided(session, decision)
                return True
            if not out and not data:
                return moved
            moved = True
        return moved

    def take_requests(self, socket: Socket) -> None:
        texts = socket.peer.texts[socket.seen :]
        socket.seen += len(texts)
        for text in texts:
            request = json.loads(text)
            if self.v3 and request.get("method") in ("SUBSCRIBE", "UNSUBSCRIBE"):
                (name,) = request["params"]
                request = {
                    "event": request["method"].lower(),
                    "channel": V2_NAMES[name],
                    "id": request["id"],
                }
            elif request.get("event") in ("subscribe", "unsubscribe"):
                request = {**request, "id": None}
            else:
                continue
            socket.queue.append(request)
            if request["event"] == "subscribe":
                socket.pending_subscribe[request["channel"]] = request["id"]
            else:
                socket.pending_subscribe.pop(request["channel"], None)
        if self.answering is not None and socket.open:
            self.answer(socket, len(socket.queue), self.answering)
        if socket.peer.closes and not socket.closed:
            socket.closed = True
            socket.outbox += socket.peer.close()  # answer the client's close

    def decided(self, session: PooledSession, decision: Decision) -> None:
        assert not isinstance(decision, GiveUp), decision  # retries are unlimited here
        self.hub.decided(session, decision)

    def settle(self) -> None:
        for _ in range(100):
            moved = [self.pump(session) for session in list(self.sockets)]
            if not any(moved):
                return
        raise AssertionError("the client and the server never went quiet")

    def server_send(self, socket: Socket, frames: list[dict[str, Any]]) -> None:
        for frame in frames:
            socket.send(frame)
        self.settle()

    def answer(self, socket: Socket, count: int, how: str) -> None:
        """The server answers its `count` oldest requests, in order: "ack" (a depth
        subscribe with its snapshot), "ack_no_snapshot", or "ignore" (never answered)."""
        for request in socket.queue[:count]:
            channel = request["channel"]
            if how == "ignore":
                continue
            if request["event"] == "subscribe":
                socket.pending_subscribe.pop(channel, None)
                socket.held.add(channel)
                self.acked_ever.add(channel)
                socket.send({"event": "subscribed", "channel": channel, "id": request["id"]})
                if channel in self.books and how == "ack":
                    socket.send(self.books[channel].snapshot())
            else:
                socket.held.discard(channel)
                socket.send({"event": "unsubscribed", "channel": channel, "id": request["id"]})
        del socket.queue[:count]

    def start_attempt(self, session: PooledSession) -> None:
        assert session not in self.sockets
        conn = self.hub.start_attempt(session, self.now)
        socket = self.sockets[session] = Socket(session, conn, self.v3)
        socket.peer.receive(conn.data_to_send())

    def accept(self, socket: Socket) -> None:
        socket.accepted = True
        socket.conn.receive_data(socket.peer.accept(), self.now)
        if self.v3:
            socket.outbox += socket.peer.text({"event": "connected", "timestamp": 1})
        self.pump(socket.session)

    def run_timers(self) -> None:
        """What each runner does at its deadlines (calling early is harmless)."""
        for session in list(self.sockets):
            conn = session.connection
            if conn is not None:
                conn.handle_timer(self.now)
            self.hub.handle_timer(session, self.now)
            self.pump(session)
        self.settle()

    def open_sockets(self) -> list[Socket]:
        return [s for s in self.sockets.values() if s.open]

    def holder(self, channel: str) -> Socket | None:
        """The socket the server sends `channel`'s data on."""
        for socket in self.open_sockets():
            if channel in socket.held:
                return socket
        return None

    def stream(self, name: str) -> Stream:
        return next(s for s in self.streams if s.name == name)

    def begin(self) -> None:
        self.settled = False
        self.may_end = {}

    # --- rules: the server answers, or does not -----------------------------------------------

    @precondition(lambda self: any(s.queue for s in self.open_sockets()))
    @rule(data=st.data(), how=st.sampled_from(["ack", "ack_no_snapshot", "ignore", "ack all"]))
    def answer_next(self, data: st.DataObject, how: str) -> None:
        """The server answers a connection's oldest request (or all of them, acked)."""
        self.begin()
        socket = data.draw(st.sampled_from([s for s in self.open_sockets() if s.queue]))
        if how == "ack all":
            self.answer(socket, len(socket.queue), "ack")
        else:
            self.answer(socket, 1, how)
        self.settle()

    # --- rules: data --------------------------------------------------------------------------

    @rule(
        channel=st.sampled_from(sorted(BOOKS)),
        kind=st.sampled_from(["continue", "gap", "repeat", "restart", "snapshot"]),
        changes=CHANGES,
        count=st.integers(1, 8),
    )
    def depth(
        self, channel: str, kind: str, changes: list[tuple[bool, int, int]], count: int
    ) -> None:
        """`count` depth pushes: deltas that continue; a version gap, then deltas; repeats
        of recent deltas (at or below the live version); a restart of the server's
        sequence far below, then deltas; or a snapshot, unasked."""
        self.begin()
        socket = self.holder(channel)
        if socket is None:
            return
        book = self.books[channel]
        if kind == "snapshot":
            self.server_send(socket, [book.snapshot()])
            return
        if kind == "repeat":
            recent = book.sent[-3:]
            frames = [recent[n % len(recent)] for n in range(count)] if recent else []
        else:
            if kind == "restart":
                book.restart(count)
            first = book.change(changes, 2 + count % 2 if kind == "gap" else 1)
            frames = [first, *(book.change(changes[:1], 1) for _ in range(count - 1))]
        self.server_send(socket, frames)

    @rule(count=st.integers(1, 8))
    def server_restarts(self, count: int) -> None:
        """Every book's sequence restarts far below at once (a server restart), and
        `count` deltas follow on each, on the connection that holds it."""
        self.begin()
        for channel, book in self.books.items():
            socket = self.holder(channel)
            book.restart(count)
            if socket is not None:
                frames = [book.change([(False, count, 1)], 1) for _ in range(count)]
                self.server_send(socket, frames)

    @rule(channel=st.sampled_from([TICKER, FILLERS[0], FILLERS[99], ORDERS]))
    def push(self, channel: str) -> None:
        self.begin()
        socket = self.holder(channel)
        if socket is None:
            return
        if channel == ORDERS:
            self.push_orders(socket)
        else:
            self.push_ticker(socket, channel)

    def push_ticker(self, socket: Socket, channel: str) -> None:
        price = self.ticker_prices[channel] = self.ticker_prices.get(channel, 0) + 1
        frame = {"event": "payload", "channel": channel, "data": [{"lastPrice": str(price)}]}
        self.server_send(socket, [frame])

    def push_orders(self, socket: Socket) -> None:
        stream = self.stream(ORDERS)
        stream.backlog += 1
        if stream.backlog > BUFFER_SIZE:  # a private stream must not lose updates silently
            self.may_end[ORDERS] = (StreamOverflowError,)
        socket.outbox += socket.peer.text(ORDERS_V3_TEXT if self.v3 else ORDERS_TEXT)
        self.settle()
        if stream.backlog > BUFFER_SIZE and stream.ended is None:
            assert stream.buffer.closed, "an overflowing private stream did not end"

    # --- rules: error frames ------------------------------------------------------------------

    @precondition(lambda self: bool(self.open_sockets()))
    @rule(data=st.data(), channel=st.sampled_from(ERROR_CHANNELS))
    def error_frame(self, data: st.DataObject, channel: str | None) -> None:
        """An error naming any channel (or none), on any connection. It refuses the channel
        only where it answers this connection's pending subscribe; clearly so when the
        server never acked the channel (one it served before is asked for again)."""
        self.begin()
        socket = data.draw(st.sampled_from(self.open_sockets()))
        frame: dict[str, Any] = {"event": "error", "code": "40020", "msg": "scripted refusal"}
        pending = channel is not None and channel in socket.pending_subscribe
        refused = pending and channel not in self.acked_ever
        readers = [s for s in self.streams if s.channel == channel and s.ended is None]
        if channel is not None:
            frame["channel"] = channel
        if pending:
            assert channel is not None
            # The error answers the subscribe: v3 refuses by its id, even once it was ignored.
            frame["id"] = socket.pending_subscribe.pop(channel)
            for index in range(len(socket.queue) - 1, -1, -1):
                request = socket.queue[index]
                if request["event"] == "subscribe" and request["channel"] == channel:
                    del socket.queue[index]
                    break
            for stream in readers:
                self.may_end[stream.name] = (ServerError,)
        going = [s for s in self.streams if not s.buffer.closed]
        self.server_send(socket, [frame])
        for stream in going:  # whatever other connections or channels it carries
            if stream.buffer.closed:
                assert pending and stream.channel == channel, (
                    f"{frame} on {socket!r} ended {stream.name}"
                )
        if refused:
            assert channel not in self.hub.subscriptions
            for stream in readers:
                assert stream.buffer.closed, f"{stream.name} was refused but did not end"

    # --- rules: connections -------------------------------------------------------------------

    @precondition(lambda self: bool(self.sockets))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        """The server hangs up (EOF), on an open connection or during its handshake."""
        self.begin()
        socket = data.draw(st.sampled_from(list(self.sockets.values())))
        socket.closed = True
        conn = socket.conn
        conn.receive_data(None, self.now)
        decision = self.hub.read_events(socket.session, conn, self.now)
        assert decision is not None
        del self.sockets[socket.session]
        self.decided(socket.session, decision)
        self.settle()

    @rule(data=st.data(), accept=st.sampled_from(["all", "one", "none"]))
    def connect(self, data: st.DataObject, accept: str) -> None:
        """Each connection the pool lets go starts its attempt; the server accepts every
        handshake waiting, one of them, or none (yet)."""
        self.begin()
        self.connect_all(accept == "all")
        waiting = [s for s in self.sockets.values() if not s.accepted]
        if accept == "one" and waiting:
            self.accept(data.draw(st.sampled_from(waiting)))
            self.settle()

    def connect_all(self, accept: bool) -> None:
        connections = self.hub.connections
        connections.poll(self.now)
        for session in connections.sessions():
            if session not in self.sockets and connections.granted(session):
                assert connections.wanted(session)
                self.start_attempt(session)
        if accept:
            for socket in list(self.sockets.values()):
                if not socket.accepted:
                    self.accept(socket)
        self.settle()

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 4.0, 11.0, 30.0]))
    def advance(self, seconds: float) -> None:
        """Time passes; each runner wakes at each of its deadlines on the way."""
        self.begin()
        until = self.now + seconds
        for _ in range(100):
            due = [d for d in self.deadlines() if d <= until]
            if not due:
                break
            self.now = max(self.now, min(due))
            self.run_timers()
        self.now = until
        self.run_timers()

    def deadlines(self) -> list[float]:
        due = []
        for session, socket in self.sockets.items():
            due += [socket.conn.next_deadline(), self.hub.next_deadline(session)]
        return [d for d in due if d is not None]

    # --- rules: consumers ---------------------------------------------------------------------

    @rule(index=st.integers(0, 4))
    def drain(self, index: int) -> None:
        """One reader catches up; the others stay slow consumers."""
        self.begin()
        self.consume([*self.streams, self.handler][index])

    def consume(self, stream: Stream) -> None:
        buffer = stream.buffer
        while stream.ended is None:
            end: Exception | None = None
            try:
                message = buffer.get()
            except Exception as exc:  # the stream's end (BufferClosed: one without an error)
                end = exc
            if end is not None:
                self.ended(stream, end)
                return
            if message is None:
                stream.backlog = 0
                return
            self.check_message(stream, message)

    def ended(self, stream: Stream, end: Exception) -> None:
        """The stream ended: only for a reason the script gave it in the step it ended."""
        allowed = self.may_end.get(stream.name, ())
        if stream.is_book:
            allowed = (*allowed, OrderBookError)  # after failed resyncs, at any time
        assert not isinstance(end, BufferClosed), f"{stream.name} ended without an error"
        assert isinstance(end, allowed), f"{stream.name} ended with {end!r}"
        if isinstance(end, OrderBookError):
            assert "cannot be rebuilt" in str(end), end
        event(f"{stream.name} ended with {type(end).__name__}")
        stream.ended = end

    def check_message(self, stream: Stream, message: WebSocketMessage[Any]) -> None:
        data = message.data
        if stream is self.handler:
            assert message.channel.startswith("ticker.")
            return
        assert message.channel == stream.channel
        if stream.channel == ORDERS:
            return
        if not stream.is_book:
            price = int(data["lastPrice"])
            assert stream.last_price < price <= self.ticker_prices[stream.channel]
            stream.last_price = price
            return
        if data["resyncing"]:
            assert data["bids"] == () and data["asks"] == ()
            stream.last_version = None
            return
        bids, asks, version = data["bids"], data["asks"], data["version"]
        assert len(bids) <= stream.levels and len(asks) <= stream.levels
        assert all(a[0] > b[0] for a, b in itertools.pairwise(bids)), bids
        assert all(a[0] < b[0] for a, b in itertools.pairwise(asks)), asks
        assert all(size > 0 for _, size in bids + asks)
        if bids and asks:
            assert bids[0][0] < asks[0][0]
        if not message.gap and stream.last_version is not None:
            assert version >= stream.last_version, (stream.last_version, version)
        stream.last_version = version
        server = self.books[stream.channel]
        states = server.history.get(version, set())
        levels = stream.levels
        assert (bids, asks) in {(b[:levels], a[:levels]) for b, a in states}, (
            f"{stream.name} at version {version} is no book the server had"
        )
        stream.last_book = (version, bids, asks)

    # --- a server that answers ----------------------------------------------------------------

    @precondition(lambda self: not self.healed)
    @rule()
    def heal(self) -> None:
        """The server answers whatever it is asked from now on (what it ignored stays
        ignored) and sends data, and time passes by several timeouts; readers keep up.
        Then every stream is served, or has ended with its error."""
        self.begin()
        self.serve(HEAL_ROUNDS, "ack")
        self.healed = True
        self.settled = False  # until this step's invariants pass: no second heal in teardown
        self.check_healed()

    @rule(seconds=st.integers(1, 10))
    def withhold_snapshots(self, seconds: int) -> None:
        """The server answers whatever it is asked and sends deltas, but no snapshot, for a
        while: a book must not wait for ever (it asks again, then ends with its error)."""
        self.begin()
        self.serve(seconds, "ack_no_snapshot")

    def serve(self, seconds: int, how: str) -> None:
        """The server answers every request `how`, and sends data on every connection; the
        runners connect when the pool lets them; readers keep up."""
        self.answering = how
        try:
            for socket in self.open_sockets():
                self.answer(socket, len(socket.queue), how)
            self.settle()
            for _ in range(seconds):
                self.now += 1.0
                self.run_timers()
                self.connect_all(accept=True)
                self.feed_every_connection()
                for stream in [*self.streams, self.handler]:
                    self.consume(stream)
                self.check()
        finally:
            self.answering = None

    def feed_every_connection(self) -> None:
        """A push on every channel the streams read (a filler's for the first connection),
        so no connection goes stale and every live book moves on."""
        for socket in self.open_sockets():
            for channel in sorted(socket.held & STREAMED):
                if not socket.open:
                    break
                if channel in self.books:
                    self.server_send(socket, [self.books[channel].change([(True, 2, 1)], 1)])
                elif channel == TICKER:
                    self.push_ticker(socket, channel)
                else:
                    self.push_orders(socket)
            fillers = socket.held & FILLER_SET
            if socket.open and fillers:
                self.push_ticker(socket, min(fillers))

    def check_healed(self) -> None:
        for stream in self.streams:
            if stream.ended is not None:
                continue
            if stream.is_book:
                feed = self.hub.books.feeds.get(stream.channel)
                assert feed is not None and feed.live, f"{stream.name} is not live after healing"
                server = self.books[stream.channel]
                bids, asks = server.levels()
                levels = stream.levels
                assert stream.last_book == (server.version, bids[:levels], asks[:levels]), (
                    f"{stream.name} is not in step with the server after healing"
                )
            else:
                assert stream.channel in self.hub.subscriptions
        for channel in self.hub.subscriptions:
            session = self.hub.connections.holder(channel)
            assert session is not None
            conn = session.connection
            assert conn is not None and conn.is_open, f"{channel}'s connection is not open"
            assert channel in session.subscriptions.active, f"{channel} is not subscribed"

    def teardown(self) -> None:
        if getattr(self, "settled", False):  # the last step passed its checks
            self.heal()

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def check(self) -> None:
        backlog = self.handler.buffer
        assert isinstance(backlog, HandlerBacklog)
        for buffer in (backlog.public, backlog.private):
            assert len(buffer) <= buffer.maxsize
        for stream in [*self.streams, self.handler]:
            if isinstance(stream.buffer, MessageBuffer):
                assert len(stream.buffer) <= stream.buffer.maxsize
            if stream.buffer.closed and stream.ended is None:
                self.consume(stream)  # read to its end now: why did it end?
        assert not self.handler.buffer.closed
        assert self.depth_records_handled == self.depth_frames_delivered
        self.check_never_silent()
        self.settled = True

    def check_never_silent(self) -> None:
        """A book without a snapshot, on an open connection, is waiting for one by a time."""
        for channel, feed in self.hub.books.feeds.items():
            if not feed.readers or feed.live:
                continue
            session = self.hub.connections.holder(channel)
            conn = None if session is None else session.connection
            if conn is not None and conn.is_open:
                assert feed.snapshot_due is not None, f"{channel} waits for nothing"


MisbehavingServerMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_hub_against_a_misbehaving_server = MisbehavingServerMachine.TestCase


# --- found by the machine ---------------------------------------------------------------------


def test_a_book_invalidated_while_its_resubscribe_is_pending_still_has_a_deadline() -> None:
    """A snapshot in flight when a resync's resubscribe went out clears the book's deadline; a
    later gap finds the subscribe pending and asks nothing more, but sets a deadline again."""
    hub, session, peer, _ = live_book_stream()  # live at 100; stale_timeout is None
    push(hub, session, peer, depth_frame("CHANGED", 105))  # a gap: the book resyncs
    assert sent(peer, session) == [UNSUBSCRIBE, SUBSCRIBE]
    assert hub.next_deadline(session) is not None  # the resubscribe's snapshot is due
    push(hub, session, peer, depth_frame("SNAPSHOT", 106))  # in flight before the unsubscribe
    push(hub, session, peer, depth_frame("CHANGED", 110))  # another gap, still in flight
    assert sent(peer, session) == []  # the resubscribe is pending: nothing more is asked
    assert not hub.books.feeds[BOOK].live
    push(hub, session, peer, ack("unsubscribed"))  # ... and the subscribe is never answered
    conn = session.connection
    assert conn is not None and conn.options.stale_timeout is None  # nothing bounds that
    assert hub.next_deadline(session) is not None  # nor the book: it would wait for ever
