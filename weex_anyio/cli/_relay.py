"""`weex-ws relay SYMBOL... --nats URL`: publish WEEX records to NATS JetStream.

One relay per site holds the WEEX connections; any number of consumers read the stream. The
WEEX side never waits for NATS: each record goes into a bounded outbox (see
`weex_proto.relaying.Outbox`) from the client's inline handler, and one publisher task drains
it through a window of publishes awaiting their acks (`weex_proto.relaying.PublishWindow`),
sending again with the same `Nats-Msg-Id` whatever was not acked. Depth
channels keep a local book in the same order as the records are queued, so the periodic
snapshots it publishes are consistent with the deltas around them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.abc
import anyio.lowlevel

from weex_proto.channels import build_channel, is_private_channel
from weex_proto.events import WebSocketMessage
from weex_proto.nats_protocol import NatsProtocolError, Reply, ServerError, msg_id_headers
from weex_proto.relaying import (
    AckResult,
    FrameCounter,
    HoldBack,
    Outbox,
    Outgoing,
    PublishWindow,
    RelayCounts,
    Sending,
    book_snapshot_record,
    classify_ack,
    frame_digest,
    header_block_size,
    message_id,
    shard_channels,
    snapshot_id,
    status_text,
    subject_for,
    summary_text,
)
from weex_proto.runtime.books import LocalOrderBook

from .._backend import work_turns
from ..client import WeexWebSocketClient
from ._nats_link import (
    NatsLink,
    NatsUnavailableError,
    open_link,
    url_credentials,
    without_credentials,
)
from ._output import record_data
from ._runtime import Stopper, client_options
from ._streams import config_for
from ._throttle import RepeatedLines

log = logging.getLogger("weex_anyio.relay")

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "WEEX"
RETRY_DELAY = 0.2
"""Seconds between sending again after a failed publish, and between reconnect attempts."""
CONNECT_TIMEOUT = 10.0
DEFAULT_WINDOW = 4000
"""Publishes awaiting their ack at once (`--window`)."""
PUBLISH_TIMEOUT = 5.0
"""Seconds without the oldest unacked record's ack before everything unacked goes again."""
REFUSAL_LOG_INTERVAL = 10.0
"""The same refusal reason is logged at most this often (the status line counts them all)."""
DRAIN_TIMEOUT = 5.0
"""Seconds a stopping relay waits for what is left to be acked (WEEX already closed)."""
LIMITS_TIMEOUT = 2.0
"""Seconds a new link waits for the stream's size limit before publishing without it."""
PUBLISH_BATCH = 16
"""Publishes made between two looks at the clock."""
PUBLISH_TURN = 0.0005
"""Seconds of making publishes (or book snapshots) in one step of bulk work."""
LINGER = 0.005
"""Seconds the first publish made waits for more to be sent with it, while others are in
flight (with none in flight it is sent at once)."""
SEND_COUNT = 128
"""Publishes sent at once as soon as this many are made."""
REFILL_SLICE = 8
"""The publisher is woken to refill the window once 1/REFILL_SLICE of it is free."""
STATUS_INTERVAL = 5.0
"""Seconds between status lines on stderr (redrawn each second on a terminal)."""


def import_nats() -> Any:
    """nats-py, or a clear error naming the extra that installs it."""
    try:
        import nats
    except ImportError:
        from weex_proto.errors import ConfigError

        raise ConfigError("the NATS commands need nats-py: pip install 'weex-ws[nats]'") from None
    return nats


PRIVATE_KINDS = {
    "account": "account",
    "positions": "positions",
    "orders": "orders",
    "fills": "fill",
}
"""`--channels` names of the private channels -> their wire names (account-wide, no symbol)."""
CHANNELS_PER_CONNECTION = 100
"""WEEX's limit per connection (protocol doc §5.1): more public channels use more clients."""


def relay_channels(
    kinds: Iterable[str],
    symbols: Iterable[str],
    depth: int,
    intervals: Iterable[str] = ("MINUTE_1",),
    price_type: str = "LAST_PRICE",
) -> list[str]:
    """The wire channels for every `kind` of every symbol, then the private ones, in a stable
    order (a kline `kind` gives one channel per interval)."""
    kinds = tuple(kinds)
    channels: list[str] = []
    for symbol in dict.fromkeys(symbols):
        for kind in kinds:
            if kind in PRIVATE_KINDS:
                continue
            if kind == "kline":
                channels.extend(
                    build_channel("kline", symbol, interval=interval, price_type=price_type)
                    for interval in dict.fromkeys(intervals)
                )
            else:
                params: dict[str, Any] = {"level": depth} if kind == "depth" else {}
                channels.append(build_channel(kind, symbol, **params))
    channels.extend(PRIVATE_KINDS[kind] for kind in kinds if kind in PRIVATE_KINDS)
    return channels


def contracts_from(source: str) -> list[str]:
    """`--all SOURCE`: the contracts listed in the file `source` (one or more per line,
    spaces or commas between, `#` starts a comment) or, when there is no such file, `source`
    itself as a list (commas or spaces between). A bad entry is a `ConfigError` saying where."""
    from weex_proto.channels import normalize_symbol
    from weex_proto.errors import ConfigError

    path = Path(source)
    try:
        listed = not path.is_file()
    except OSError:  # e.g. a list of 250 symbols is too long to be a file name
        listed = True
    if listed:
        try:
            symbols = [normalize_symbol(part) for part in source.replace(",", " ").split()]
        except ValueError as exc:
            raise ConfigError(
                f"--all {source[:200]!r}: no such file, and not a list of symbols ({exc})"
            ) from None
        if not symbols:
            raise ConfigError("--all names no symbols")
        return symbols
    symbols = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            text = line.split("#", 1)[0]
            try:
                symbols.extend(normalize_symbol(part) for part in text.replace(",", " ").split())
            except ValueError as exc:
                raise ConfigError(f"{source}:{number}: {exc}") from None
    if not symbols:
        raise ConfigError(f"{source}: no symbols in the file")
    return symbols


def connection_groups(
    channels: Sequence[str], size: int = CHANNELS_PER_CONNECTION
) -> list[list[str]]:
    """The channels split into one group per client: public channels at most `size` to a
    group (each client holds one public connection), private ones with the first group."""
    public = [channel for channel in channels if not is_private_channel(channel)]
    private = [channel for channel in channels if is_private_channel(channel)]
    groups = [public[start : start + size] for start in range(0, len(public), size)] or [[]]
    groups[0].extend(private)
    return groups


class Relay:
    """Receives WEEX records (inline, never waiting) and publishes them to JetStream.

    Publishing is pipelined: up to `window` records are on the wire at once and acks are
    taken as they come (`weex_proto.relaying.PublishWindow` decides what to send and what
    to send again). The publishes are core NATS publishes with a reply subject of our own
    (`<inbox>.<seq>.<generation>`), on a lean connection of the relay's own
    (`weex_proto.nats_protocol`, `._nats_link`): one `HPUB` line per record, a received
    buffer of acks read in one pass, so the bus costs a few microseconds per record and the
    WEEX side keeps the CPU. An error ack (400 message too large, a stream limit) is told
    from a lost one by its body. Each connection is used until it breaks and then replaced
    by a new one: a connection delivers in order, so what a broken one lost is a tail of
    what was sent on it, and the new one sends it again, first.
    """

    def __init__(
        self,
        *,
        prefix: str = "weex",
        outbox_capacity: int = 10_000,
        window: int = DEFAULT_WINDOW,
        publish_timeout: float = PUBLISH_TIMEOUT,
        hold_back: float = 0.0,
    ) -> None:
        self.prefix = prefix
        self.hold_back = HoldBack(hold_back)
        """Each channel's first records after a (re)subscribe wait this long (`--hold-back`)."""
        self.outbox = Outbox(outbox_capacity)
        self.window = PublishWindow(window)
        self.publish_timeout = publish_timeout
        self.received = 0
        self.nats_reconnects = 0
        self.max_size = -1
        """The largest message (headers and body) the stream and the server take; -1: any."""
        self.clients: list[WeexWebSocketClient] = []
        self.books: dict[str, LocalOrderBook] = {}
        """The client-kept book of each depth channel, read for `publish_snapshots`."""
        self._snapshotted: dict[str, int] = {}
        self._trades = FrameCounter()
        self._subjects: dict[str, str] = {}
        """Channel -> its subject, checked once (the channels are the relay's own list)."""
        self._digested_frame: Any = None
        self._digested: str | None = None
        self._wake = anyio.Event()
        self._dropping = False
        self._hold_until = 0.0
        self._refill = max(1, window // REFILL_SLICE)
        self._retry_said_at = -REFUSAL_LOG_INTERVAL
        self._draining = False
        self.link: NatsLink | None = None
        """The NATS connection the publisher uses (replaced after each reconnect)."""
        self._limits_known = anyio.Event()
        self._inbox = ""
        """`<inbox>.`: the subjects of this link's acks start with it."""
        self._refusals = RepeatedLines(REFUSAL_LOG_INTERVAL)
        self._server_errors = RepeatedLines(REFUSAL_LOG_INTERVAL)

    # -- counters ----------------------------------------------------------------------------

    @property
    def acked(self) -> int:
        """Records JetStream holds (duplicates of a copy already stored included)."""
        return self.window.acked

    @property
    def duplicates(self) -> int:
        """Acks saying JetStream already held the record (another relay's, or a resend)."""
        return self.window.duplicates

    @property
    def in_flight(self) -> int:
        """Publishes on the wire awaiting their ack."""
        return self.window.in_flight

    @property
    def refused(self) -> int:
        return self.window.refused

    @property
    def retried(self) -> int:
        return self.window.retried

    def counts(self) -> RelayCounts:
        return RelayCounts(
            received=self.received,
            acked=self.window.acked,
            in_flight=self.window.in_flight,
            unacked=self.window.unacked,
            outbox=len(self.outbox) + self.hold_back.count,
            dropped=self.outbox.dropped,
            refused=self.window.refused,
            retried=self.window.retried,
            gaps=self.window.gaps,
            weex_reconnects=sum(client.health.reconnects for client in self.clients),
            nats_reconnects=self.nats_reconnects,
        )

    # -- the WEEX side (synchronous: called inline by the client) --------------------------

    def on_message(self, message: WebSocketMessage[Any]) -> None:
        channel = message.channel
        try:
            # A copy (the window keeps the record until acked), the same `data` as a `--json`
            # line's; its JSON is written only when it is sent.
            data = record_data(message)
            closed = data.get("closed") is True  # a candle's: part of its id
            occurrence = 0
            digest = self._digest(channel, message.frame)
            if digest is not None and channel.startswith("trades."):
                occurrence = self._trades.occurrence(
                    channel, digest, message.index, restarted=message.gap
                )
            msg_id = message_id(
                channel,
                message.frame,
                message.source,
                message.index,
                closed=closed,
                occurrence=occurrence,
                digest=digest,
            )
            subject = self._subjects.get(channel) or self._subject(channel)
        except (TypeError, ValueError) as exc:
            log.warning("not relayed: a record of %s: %s", channel[:80], exc)
            return
        self._admit(
            channel, Outgoing(subject, msg_id, channel, data, message.timestamp, message.gap)
        )

    def _admit(self, channel: str, item: Outgoing) -> None:
        """Queue `item`, unless its channel's records are being held back (`HoldBack`)."""
        hold_back = self.hold_back
        if hold_back.delay and (
            item.gap or channel in hold_back.held or channel not in hold_back.started
        ):
            for admitted in hold_back.admit(channel, item, item.gap, anyio.current_time()):
                self._queue(admitted)
            return
        self._queue(item)

    async def release_held_back(self) -> None:
        """Queue each channel's held-back records once its hold is over."""
        interval = min(self.hold_back.delay / 4, 0.1)
        while True:
            await anyio.sleep(interval)
            if self.hold_back.held:
                for item in self.hold_back.release_due(anyio.current_time()):
                    self._queue(item)

    def _subject(self, channel: str) -> str:
        subject = self._subjects[channel] = subject_for(channel, self.prefix)
        return subject

    def _digest(self, channel: str, frame: Any) -> str | None:
        """The frame's digest, worked out once for all the records of one push (they share the
        frame object): the canonical encoding and hash are a large part of a record's cost.
        None for a depth or private frame, whose ids come from their versions instead."""
        if frame is self._digested_frame:
            return self._digested
        digest = None
        if channel.startswith(("ticker.", "trades.", "kline.")):
            digest = frame_digest(frame)
        self._digested_frame, self._digested = frame, digest
        return digest

    def _queue(self, item: Outgoing) -> None:
        self.received += 1
        if not self.outbox.put(item) and not self._dropping:
            self._dropping = True  # said once per episode, not once per record
            log.warning(
                "NATS is not keeping up: the outbox is full (%d records), dropping the oldest "
                "(flagged as gaps)",
                self.outbox.capacity,
                extra={"weex_event": "relay_dropping", "dropped": self.outbox.dropped},
            )
        self._wake.set()

    async def publish_snapshots(self) -> int:
        """Queue each live book that moved since its last snapshot; how many were queued.
        Hundreds of books take milliseconds: they are taken in steps of bulk work of up to
        `PUBLISH_TURN` each, with the others' steps between.

        A book the client could not keep raises its `OrderBookError`: the relay stops rather
        than publish snapshots of a book it no longer has."""
        queued = 0
        books = iter(list(self.books.items()))
        work = work_turns()
        more = True
        while more:
            async with work:
                more, turn_ends = False, anyio.current_time() + PUBLISH_TURN
                for channel, book in books:
                    queued += self._snapshot(channel, book)
                    if anyio.current_time() >= turn_ends:
                        more = True
                        break
        return queued

    def _snapshot(self, channel: str, book: LocalOrderBook) -> bool:
        """Queue a snapshot of `book` if it moved since the last one (and has one)."""
        held = book.depth_levels()
        if held is None:
            return False  # waiting for a snapshot
        version, bids, asks = held
        if self._snapshotted.get(channel) == version:
            return False
        record = book_snapshot_record(book.symbol, book.levels, version, bids, asks)
        self._snapshotted[channel] = version
        self._admit(  # after the records it follows, if they are being held back
            channel,
            Outgoing(
                subject_for(channel, self.prefix),
                snapshot_id(channel, version),
                channel,
                record,
                time.time(),
            ),
        )
        return True

    async def snapshot_every(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            await self.publish_snapshots()

    # -- the NATS side -----------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed (an ack, a closed connection): the publisher looks again."""
        self._wake.set()

    async def publish_forever(
        self, link: NatsLink, reconnect: Callable[[], Awaitable[NatsLink]], stream: str
    ) -> None:
        """Publish on `link` until it breaks, then on each new link `reconnect` makes,
        sending again every record not acked on the old one."""
        self.link = link
        while True:
            await self.publish_on(link, stream)  # a stop leaves `link` open, for `drain`
            await link.aclose()
            self.window.restart()
            log.warning(
                "NATS connection lost; reconnecting (%d records to send again)",
                len(self.window),
                extra={"weex_event": "relay_nats_lost", "unacked": len(self.window)},
            )
            link = self.link = await reconnect()
            self.nats_reconnects += 1
            log.warning("NATS connection back", extra={"weex_event": "relay_nats_back"})

    async def drain(self, stream: str) -> None:
        """After a stop (WEEX closed): publish what is left, on the link the publisher was
        using, until everything is acked or refused (bounded by the caller)."""
        for item in self.hold_back.release_all():
            self._queue(item)
        if self.link is None or self.link.closed:
            return  # NATS is away: what is left stays unacked (the summary counts it)
        self.window.restart()  # the acks of what was on the wire went with the old inbox
        self._draining = True
        await self.publish_on(self.link, stream)

    async def publish_on(self, link: NatsLink, stream: str) -> None:
        """Drain the outbox through the window on `link` until it closes."""
        conn = link.conn
        inbox = f"_INBOX.{secrets.token_hex(11)}"
        self._inbox = inbox + "."
        self.max_size = conn.max_payload
        sid = conn.subscribe(f"{inbox}.>")
        # The stream's own size limit, answered on the same inbox (`_on_limits`), is known
        # before the first publish, so a record too large is refused without a round trip.
        conn.publish(f"$JS.API.STREAM.INFO.{stream}", b"", reply=f"{inbox}.limits")
        self._limits_known = anyio.Event()
        try:
            async with anyio.create_task_group() as readers:
                readers.start_soon(self._read_replies, link)
                try:
                    if await self._send(link):
                        with anyio.move_on_after(LIMITS_TIMEOUT):
                            await self._limits_known.wait()
                        await self._pump(link)
                finally:
                    readers.cancel_scope.cancel()
        finally:
            conn.unsubscribe(sid)  # sent with whatever goes next on a link that stays open

    async def _read_replies(self, link: NatsLink) -> None:
        """Take acks as they come; mark the link closed (and wake the publisher) when the
        connection ends."""
        work = work_turns()
        try:
            while True:
                data = await link.receive_bytes()
                on_reply = self._on_reply
                async with work:  # taking acks is a step of bulk work, in a round of its own
                    for event in link.conn.receive_data(data):
                        if type(event) is Reply:
                            on_reply(event.subject, event.data, event.status)
                        elif isinstance(event, ServerError):
                            self._say_server_error(event)
                            if event.fatal:
                                raise anyio.EndOfStream
                # The publisher refills in batches: woken once a slice of the window is free
                # (or it emptied, or something is to be sent again), once per read of acks.
                window = self.window
                if window.due or window.room >= self._refill or not len(window):
                    self._wake.set()
                if link.conn.pong_queued:  # a PONG for the server's PING
                    await link.flush()
        except (
            OSError,
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            NatsProtocolError,
        ) as exc:
            # Not on a cancellation: a stopped relay drains on the link it was using.
            log.info("NATS connection ended: %s", str(exc) or type(exc).__name__)
            link.closed = True
            self._wake.set()

    def _say_server_error(self, error: ServerError) -> None:
        """A WARNING; the same text again (a permissions violation comes once per publish)
        at most every `REFUSAL_LOG_INTERVAL` seconds, with a count."""
        extra = {"weex_event": "nats_error"}
        verdict = self._server_errors.check(error.text, anyio.current_time(), always=error.fatal)
        if verdict.earlier is not None:
            log.warning("NATS: %s (%d more times)", *verdict.earlier, extra=extra)
        if verdict.say:
            more = f" ({verdict.repeats} more since the last such line)" if verdict.repeats else ""
            log.warning("NATS: %s%s", error.text, more, extra=extra)

    def _publishable(self) -> bool:
        """Records wait to be published: to send again, or new ones with room for them."""
        return self.window.due or (bool(self.outbox) and self.window.room > 0)

    async def _pump(self, link: NatsLink) -> None:
        conn = link.conn
        work = work_turns()
        inbox = self._inbox
        unsent = 0  # publishes made and not yet sent
        send_by = math.inf
        while not link.closed:
            if self._draining and not self.outbox and not len(self.window):
                return
            now = anyio.current_time()
            if now >= self._hold_until and self._publishable():
                # Makes publishes for up to `PUBLISH_TURN`, as one step of bulk work: the
                # WEEX side and the acks take theirs in the rounds between.
                async with work:
                    now = anyio.current_time()
                    publish = conn.publish
                    turn_ends = now + PUBLISH_TURN
                    # A failed publish may have started a hold while this waited for the turn.
                    while now >= self._hold_until and (batch := self._next_batch(now)):
                        if not unsent:
                            send_by = now + LINGER
                        unsent += len(batch)
                        for sending in batch:
                            item = sending.item
                            publish(
                                item.subject,
                                sending.payload or item.body(),
                                reply=f"{inbox}{sending.seq}.{sending.generation}",
                                headers=msg_id_headers(item.msg_id),
                            )
                        now = anyio.current_time()
                        if now >= turn_ends:
                            break
            # Sent in batches: each send wakes nats-server, whose work per wake-up is paid
            # by the machine. Sent at once when nothing else is in flight (a quiet feed
            # waits for no one), else once `SEND_COUNT` are made or `LINGER` has passed.
            if unsent and (
                unsent >= SEND_COUNT
                or now >= send_by
                or len(self.window) == unsent
                or self._draining
                or now < self._hold_until
            ):
                unsent, send_by = 0, math.inf
                if not await self._send(link):
                    return
                now = anyio.current_time()
            self._caught_up()
            if self.window.expire(now, self.publish_timeout):
                log.info(
                    "no JetStream ack within %gs; sending %d records again",
                    self.publish_timeout,
                    len(self.window),
                    extra={"weex_event": "relay_retry"},
                )
                continue
            self._wake = anyio.Event()
            due = self._publishable()
            if due and now >= self._hold_until:
                continue  # taking the work turn again yields: the others' steps, then more
            wait = send_by - now
            deadline = self.window.deadline(self.publish_timeout)
            if deadline is not None:
                wait = min(wait, deadline - now)
            if due:
                wait = min(wait, self._hold_until - now)
            with anyio.move_on_after(max(wait, 0.0)):
                await self._wake.wait()

    async def _send(self, link: NatsLink) -> bool:
        """Send what is queued on `link`; False (and the link marked closed) if it broke."""
        try:
            await link.flush()
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            log.info("NATS publishing stopped: %s", str(exc) or type(exc).__name__)
            link.closed = True
            return False
        return True

    def _next_batch(self, now: float) -> list[Sending]:
        """Up to `PUBLISH_BATCH` records to send: those due again first, then new ones."""
        batch = self.window.to_send(now, PUBLISH_BATCH)
        if len(batch) < PUBLISH_BATCH:
            self._fill(PUBLISH_BATCH - len(batch))
            batch += self.window.to_send(now, PUBLISH_BATCH - len(batch))
        return batch

    def _fill(self, limit: int) -> None:
        """Move up to `limit` records from the outbox into the window while it has room; one
        too large for the stream is refused here, before it is sent."""
        window = self.window
        while window.room > 0 and limit > 0:
            limit -= 1
            item = self.outbox.take()
            if item is None:
                return
            payload = item.body()
            if self.max_size >= 0:
                size = len(payload) + header_block_size(item.msg_id)
                if size > self.max_size:
                    self.window.drop(item)
                    reason = f"{size} bytes, more than the {self.max_size} the stream takes"
                    self._say_refused(item, AckResult("refused", reason))
                    continue
            self.window.add(item, payload)

    def _caught_up(self) -> None:
        if self._dropping and not self.outbox:
            self._dropping = False
            log.warning(
                "NATS caught up; %d records dropped in all",
                self.outbox.dropped,
                extra={"weex_event": "relay_caught_up", "dropped": self.outbox.dropped},
            )

    def _on_reply(self, subject: str, data: bytes, status: str | None) -> None:
        inbox = self._inbox
        if not subject.startswith(inbox):
            return  # an earlier inbox's, on a link used again by `drain`
        try:
            seq_text, generation_text = subject[len(inbox) :].split(".")
            seq, generation = int(seq_text), int(generation_text)
        except ValueError:
            if subject.endswith(".limits"):
                self._on_limits(data)
                self._limits_known.set()
            return
        result = classify_ack(data, status)
        if result.kind in ("stored", "duplicate"):
            self.window.ack(seq, duplicate=result.kind == "duplicate")
        elif result.kind == "retry":
            if self.window.failed(seq, generation):
                now = anyio.current_time()
                self._hold_until = now + RETRY_DELAY
                # Said as a WARNING once in a while: JetStream may stay away (a deleted
                # stream) while the records pile up.
                loud = now - self._retry_said_at >= REFUSAL_LOG_INTERVAL
                self._retry_said_at = now if loud else self._retry_said_at
                log.log(
                    logging.WARNING if loud else logging.INFO,
                    "JetStream did not take a publish, sending %d records again: %s",
                    len(self.window),
                    result.reason,
                    extra={"weex_event": "relay_retry"},
                )
        else:
            item = self.window.refuse(seq)
            if item is not None:
                self._say_refused(item, result)

    def _say_refused(self, item: Outgoing, result: AckResult) -> None:
        """A WARNING naming the reason (an ERROR when storage is exhausted); the same
        reason again is said at most every `REFUSAL_LOG_INTERVAL` seconds, with a count."""
        verdict = self._refusals.check(result.reason, anyio.current_time())
        if verdict.earlier is not None:
            log.warning(
                "JetStream refused %d more records since the last such line: %s",
                verdict.earlier[1],
                verdict.earlier[0],
                extra={"weex_event": "relay_refused"},
            )
        if not verdict.say:
            return
        more = f" ({verdict.repeats} more refused since the last such line)"
        more = more if verdict.repeats else ""
        if result.kind == "storage":
            log.error(
                "JetStream storage is exhausted: record %s of %s dropped: %s%s",
                item.msg_id[:120],
                item.subject,
                result.reason,
                more,
                extra={"weex_event": "relay_storage_full"},
            )
        else:
            log.warning(
                "JetStream refused record %s of %s, dropped (the next one is flagged as a "
                "gap): %s%s",
                item.msg_id[:120],
                item.subject,
                result.reason,
                more,
                extra={"weex_event": "relay_refused"},
            )

    def _on_limits(self, data: bytes) -> None:
        """The stream's `max_msg_size` (JetStream's STREAM.INFO answer), below the server's
        max_payload: a record larger than either is refused before it is sent."""
        try:
            size = json.loads(data)["config"].get("max_msg_size", -1)
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # keep what is known; a refusal still drops a record too large
        if isinstance(size, int) and size >= 0:
            self.max_size = min(self.max_size, size) if self.max_size >= 0 else size


async def ensure_stream(
    js: Any,
    name: str,
    subjects: Sequence[str],
    *,
    max_age: float | None,
    retention: str | None,
    duplicate_window: float,
) -> str | None:
    """Create the JetStream stream unless it exists. An existing stream gets the `max_age`
    and `retention` given (None: not given), or a `ConfigError` says why JetStream will not
    change it. What was changed, as a phrase for the start line; None if nothing."""
    nats = import_nats()
    from nats.js.api import RetentionPolicy, StreamConfig

    from weex_proto.errors import ConfigError

    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        info = None
    except (nats.errors.Error, TimeoutError) as exc:
        raise NatsUnavailableError(
            f"no JetStream answer about stream {name!r} (is nats-server running with -js?): "
            f"{str(exc) or type(exc).__name__}"
        ) from None
    if info is None:
        config = StreamConfig(
            name=name,
            subjects=list(subjects),
            retention=RetentionPolicy(retention or "limits"),
            max_age=max_age,
            duplicate_window=duplicate_window,
        )
        with contextlib.suppress(nats.js.errors.BadRequestError):  # another relay was quicker
            await js.add_stream(config)
        return None
    current = info.config
    changes: dict[str, Any] = {}
    if max_age is not None and not math.isclose(current.max_age or 0.0, max_age):
        changes["max_age"] = max_age
    if retention is not None and current.retention != RetentionPolicy(retention):
        changes["retention"] = RetentionPolicy(retention)
    if not changes:
        return None
    wanted = ", ".join(_setting(key, value) for key, value in changes.items())
    try:
        await js.update_stream(dataclasses.replace(current, **changes))
    except nats.js.errors.APIError as exc:
        had = ", ".join(_setting(key, getattr(current, key)) for key in changes)
        raise ConfigError(
            f"stream {name!r} exists with {had}; JetStream will not change it to {wanted}: "
            f"{exc.description or exc}"
        ) from None
    except (nats.errors.Error, TimeoutError) as exc:
        raise NatsUnavailableError(
            f"no JetStream answer updating stream {name!r}: {str(exc) or type(exc).__name__}"
        ) from None
    return wanted


def _setting(key: str, value: Any) -> str:
    if key == "max_age":
        return f"--max-age {value:g}" if value else "no --max-age"
    return f"--retention {getattr(value, 'value', value)}"


async def connect_nats(
    url: str,
    timeout: float | None = None,  # noqa: ASYNC109
    *,
    reconnect: bool = True,
    on_closed: Callable[[], None] | None = None,
) -> Any:
    """A NATS connection that reconnects for ever once made (`tail` and `dashboard` must
    outlive NATS restarts; the relay's publisher passes `reconnect=False` and makes a new
    connection itself, told by `on_closed`); the first connection must succeed within
    `timeout`, so a wrong URL is an error rather than a silent wait."""
    nats = import_nats()
    last: list[BaseException] = []

    async def noted(exc: Exception) -> None:
        last[:] = [exc]
        log.info("NATS: %s", exc, extra={"weex_event": "nats_error"})

    async def closed() -> None:
        if on_closed is not None:
            on_closed()

    nc = nats.NATS()
    try:
        with anyio.fail_after(CONNECT_TIMEOUT if timeout is None else timeout):
            await nc.connect(
                without_credentials(url),
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                allow_reconnect=reconnect,
                error_cb=noted,
                disconnected_cb=closed,
                closed_cb=closed,
                # decoded: nats-py sends a URL's credentials still percent-encoded
                **url_credentials(url),
            )
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        await close_nats(nc)
        cause = last[0] if last else exc
        reason = str(cause) or type(cause).__name__
        raise NatsUnavailableError(
            f"{without_credentials(url)}: cannot reach NATS: {reason}"
        ) from None
    return nc


async def close_nats(nc: Any) -> None:
    """Close the connection, even mid-cancellation; a connection already lost is closed."""
    nats = import_nats()
    with anyio.CancelScope(shield=True), contextlib.suppress(nats.errors.Error, OSError):
        await nc.close()


async def run_relay(args: argparse.Namespace, stopper: Stopper, stderr: TextIO) -> int:
    from weex_proto.errors import ConfigError

    symbols = list(args.symbols)
    if args.all:
        symbols.extend(contracts_from(args.all))
    public_kinds = [kind for kind in args.channels if kind not in PRIVATE_KINDS]
    if public_kinds and not symbols:
        raise ConfigError("name the contracts to relay: SYMBOL... or --all FILE|LIST")
    channels = relay_channels(
        args.channels, symbols, args.depth, args.interval, str(args.price_type)
    )
    channels = shard_channels(channels, args.shard)  # --shard K/N: only this relay's part
    config = config_for(args)
    if any(is_private_channel(channel) for channel in channels):
        config.require_credentials()
    relay = Relay(
        prefix=args.prefix,
        outbox_capacity=args.outbox,
        window=args.window,
        hold_back=args.hold_back,
    )
    nc = await connect_nats(args.nats, reconnect=False)
    try:
        changed = await ensure_stream(
            nc.jetstream(),
            args.stream,
            [f"{args.prefix}.>"],
            max_age=args.max_age,
            retention=args.retention,
            duplicate_window=args.duplicate_window,
        )
    finally:
        await close_nats(nc)  # the stream is managed; records go through the relay's link
    link = await open_link(args.nats, CONNECT_TIMEOUT)
    try:
        if not args.quiet:
            stderr.write(_start_line(args, channels, symbols, changed) + "\n")
            stderr.flush()
        started = anyio.current_time()

        async def reconnect() -> NatsLink:
            delay = RETRY_DELAY
            while True:
                try:
                    return await open_link(args.nats, CONNECT_TIMEOUT)
                except NatsUnavailableError as exc:
                    log.info("%s; trying again", exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)

        try:
            async with contextlib.AsyncExitStack() as clients:
                groups = [
                    (
                        await clients.enter_async_context(
                            WeexWebSocketClient(config, **client_options(args))
                        ),
                        group,
                    )
                    for group in connection_groups(channels)
                ]
                relay.clients = [client for client, _ in groups]
                with stopper.scope:
                    async with anyio.create_task_group() as task_group:
                        task_group.start_soon(relay.publish_forever, link, reconnect, args.stream)
                        if relay.hold_back.delay:
                            task_group.start_soon(relay.release_held_back)
                        if not args.quiet:
                            task_group.start_soon(show_status, relay, stderr)
                        await _relay(groups, relay, args, task_group, clients)
            # Stopped, WEEX closed: what is queued or unacked gets a last chance.
            with anyio.move_on_after(DRAIN_TIMEOUT):
                await relay.drain(args.stream)
        finally:
            if relay.link is not None and relay.link is not link:
                await relay.link.aclose()
            if not args.quiet:
                elapsed = anyio.current_time() - started
                clear = "\r\x1b[K" if stderr.isatty() else ""
                stderr.write(f"{clear}{summary_text(relay.counts(), elapsed)}\n")
                stderr.flush()
    finally:
        await link.aclose()
    return 0


def _start_line(
    args: argparse.Namespace, channels: Sequence[str], symbols: Sequence[str], changed: str | None
) -> str:
    contracts = len(dict.fromkeys(symbols))
    update = f" (updated: {changed})" if changed else ""
    return (
        f"weex-ws: relaying {len(channels)} channels of {contracts} contracts to "
        f"{without_credentials(args.nats)}, stream {args.stream}{update}, subjects "
        f"{args.prefix}.>, window {args.window}, outbox {args.outbox}"
    )


async def show_status(relay: Relay, stderr: TextIO) -> None:
    """The status line on stderr: redrawn each second on a terminal, every
    `STATUS_INTERVAL` seconds otherwise."""
    tty = stderr.isatty()
    interval = 1.0 if tty else STATUS_INTERVAL
    previous, since = relay.counts(), anyio.current_time()
    while True:
        await anyio.sleep(interval)
        counts, now = relay.counts(), anyio.current_time()
        text = status_text(counts, previous, now - since)
        stderr.write(f"\r{text}\x1b[K" if tty else text + "\n")
        stderr.flush()
        previous, since = counts, now


async def _relay(
    groups: list[tuple[WeexWebSocketClient, list[str]]],
    relay: Relay,
    args: argparse.Namespace,
    task_group: anyio.abc.TaskGroup,
    books: contextlib.AsyncExitStack,
) -> None:
    for client, channels in groups:
        for channel in channels:
            client.add_message_handler(channel, relay.on_message)
            if channel.startswith("depth."):
                # The client keeps the book (for the periodic snapshots) and resubscribes the
                # channel after a version gap, which brings WEEX's fresh snapshot to the stream.
                symbol = channel.split(".")[1]
                book = client.order_book(symbol, level=args.depth)
                relay.books[channel] = await books.enter_async_context(book)
            await client.subscribe(channel)
    if relay.books and args.snapshot_interval:
        task_group.start_soon(relay.snapshot_every, args.snapshot_interval)
