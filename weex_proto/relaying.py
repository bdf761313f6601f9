"""The pure parts of relaying WEEX records to a message bus (NATS JetStream): subject names,
message ids derived from the data, the message body, the bounded outbox between the WEEX
side and the bus, the window of publishes awaiting their acks, what an ack says, the status
line's counters, and which shard of a feed split over several relays carries a channel.

Message ids are what make redundant relays safe: two relays on two machines that receive the
same push derive the same id for each of its records, so the bus (JetStream's `Nats-Msg-Id`
de-duplication) keeps one copy, whichever relay was first. The id therefore depends only on
what WEEX sent, never on when or by whom it was received.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .channels import is_private_channel, parse_channel
from .jsonable import canonical_json, dumps_compact
from .nats_protocol import msg_id_headers

SUBJECT_PREFIX = "weex"
_FORBIDDEN_IN_SUBJECTS = frozenset(" \t\r\n*>")


def subject_for(channel: str, prefix: str = SUBJECT_PREFIX) -> str:
    """`weex.<channel>`: `weex.ticker.cmt_btcusdt`, `weex.depth.cmt_btcusdt.15`, `weex.orders`.

    WEEX channel names are dot-separated already, so each part is a subject token and
    consumers can use wildcards (`weex.ticker.*`, `weex.depth.>`).
    """
    name = f"{prefix}.{channel}" if prefix else channel
    tokens = name.split(".")
    if not channel or any(not token for token in tokens) or _FORBIDDEN_IN_SUBJECTS & set(name):
        raise ValueError(f"{name[:80]!r} is not a valid NATS subject")
    return name


def channel_of(subject: str, prefix: str = SUBJECT_PREFIX) -> str:
    """The WEEX channel a subject made by `subject_for` carries."""
    head = f"{prefix}." if prefix else ""
    return subject[len(head) :] if head and subject.startswith(head) else subject


def _version_text(value: object) -> str | None:
    """A version as WEEX sends it (string or number), as digits; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    return None


def message_id(
    channel: str,
    frame: Mapping[str, Any],
    source: Any,
    index: int,
    *,
    closed: bool = False,
    occurrence: int = 0,
    digest: str | None = None,
) -> str:
    """The `Nats-Msg-Id` of record `index` of `frame` on `channel`.

    - depth: `<channel>:<depthType>:<endVersion>` (the book's own sequence number);
    - private channels: `<channel>:v<msg.version>:<index>` (the account's sequence);
    - candles: `<channel>:<klineTime>:<digest>:<index>:<open|closed>`. A candle is sent again,
      `closed`, with the very frame and index it first came in once a later one arrives, so
      the flag is part of the id: the closing copy is not a duplicate of the open one;
    - everything else (tickers, trades): a digest of the whole frame, canonically encoded,
      plus the record's index: the same push gives the same ids on every relay. Trades add
      `#<occurrence>` for the second and later identical frame (see `FrameCounter`): two
      identical fills are two records.
    """
    if channel.startswith("kline."):
        row = source
        first = row.get("klineTime") if isinstance(row, Mapping) else None
        if first is None and isinstance(row, list | tuple) and row:
            first = row[0]  # the array form: [klineTime, open, high, low, close, size]
        kline_time = _version_text(first) or "-"
        state = "closed" if closed else "open"
        return f"{channel}:{kline_time}:{digest or frame_digest(frame)}:{index}:{state}"
    if (type(source) is dict or isinstance(source, Mapping)) and "endVersion" in source:
        end = _version_text(source.get("endVersion"))
        kind = source.get("depthType")
        if end is not None and isinstance(kind, str) and kind.isalpha():
            return f"{channel}:{kind.upper()}:{end}"
    msg = frame.get("msg")
    if msg is not None and isinstance(msg, Mapping):
        version = _version_text(msg.get("version"))
        if version is not None:
            return f"{channel}:v{version}:{index}"
    suffix = f"#{occurrence}" if occurrence else ""
    return f"{channel}:{digest or frame_digest(frame)}:{index}{suffix}"


def snapshot_id(channel: str, version: int) -> str:
    """The id of a book snapshot at `version`: the same as WEEX's own snapshot at that version,
    so a relay's periodic snapshot and another relay's identical one are kept once."""
    return f"{channel}:SNAPSHOT:{version}"


def frame_digest(frame: Mapping[str, Any]) -> str:
    """A short digest of the frame's content (key order and spacing do not matter)."""
    return hashlib.sha256(canonical_json(frame)).hexdigest()[:32]


def book_snapshot_record(
    symbol: str,
    level: int,
    version: int,
    bids: list[tuple[Any, Any]] | tuple[tuple[Any, Any], ...],
    asks: list[tuple[Any, Any]] | tuple[tuple[Any, Any], ...],
) -> dict[str, Any]:
    """A local book as a depth record in WEEX's own shape (`depthType` SNAPSHOT), so a consumer
    feeds it to `OrderBook.apply(parse_record(channel, data))` like WEEX's snapshot."""

    def side(levels: Any) -> list[dict[str, str]]:
        return [{"price": str(price), "size": str(size)} for price, size in levels]

    return {
        "startVersion": str(version),
        "endVersion": str(version),
        "level": level,
        "depthType": "SNAPSHOT",
        "symbol": symbol,
        "asks": side(asks),
        "bids": side(bids),
    }


def encode_body(channel: str, data: Any, received_at: float, gap: bool) -> bytes:
    """The message body, `{"channel", "received_at", "gap", "data"}`: also each `--json` line
    of the stream commands (`weex_anyio.cli._output.json_line`), one shape for both (the
    README's *The `weex-ws` command* describes it)."""
    return dumps_compact({"channel": channel, "received_at": received_at, "gap": gap, "data": data})


# --------------------------------------------------------------------------- shards


def shard_of(channel: str, shards: int) -> int:
    """Which of shards 1..`shards` carries `channel`: all channels of one contract go to the
    same shard (a book and its trades stay together), chosen by a SHA-256 of the contract id,
    so the answer is the same in every process, on every host, and does not depend on which
    other contracts exist. The account-wide private channels are in shard 1.

    Adding contracts never moves an existing one; changing `shards` moves most of them.
    """
    if shards < 1:
        raise ValueError("the number of shards must be at least 1")
    if is_private_channel(channel):
        return 1
    spec = parse_channel(channel)
    key = getattr(spec, "symbol", None) or channel  # a name we cannot parse: by itself
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def shard_channels(channels: Iterable[str], shard: tuple[int, int] | None) -> list[str]:
    """The channels of shard `(k, n)`, in their order (None: every channel)."""
    if shard is None:
        return list(channels)
    number, shards = shard
    return [channel for channel in channels if shard_of(channel, shards) == number]


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` (shard K of N, 1 <= K <= N) as `(K, N)`; ValueError saying what is wrong."""
    number, slash, total = text.strip().partition("/")
    if not slash or not number.strip().isdigit() or not total.strip().isdigit():
        raise ValueError(f"a shard is K/N, e.g. 2/4 for the second of four, not {text!r}")
    k, n = int(number), int(total)
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"shard {text.strip()}: K/N needs 1 <= K <= N, e.g. 1/{max(n, 2)}")
    return k, n


# --------------------------------------------------------------------------- the outbox


@attrs.frozen
class Outgoing:
    """One record waiting to be published."""

    subject: str
    msg_id: str
    channel: str
    data: Any
    received_at: float
    gap: bool = False

    def body(self) -> bytes:
        return encode_body(self.channel, self.data, self.received_at, self.gap)


class Outbox:
    """A bounded queue between the WEEX side (which must never wait) and the bus.

    When full, the oldest record is dropped: the freshest market data is the most useful, and
    the WEEX side never blocks. Drops are counted, and the next record published on a subject
    that lost one carries `gap=True`, as after a reconnect. The relay's publisher `take`s
    records into its `PublishWindow`, which keeps them until acked: a record being published
    is no longer in the outbox, so it is never the one dropped.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the outbox needs room for at least one record")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Outgoing] = deque()
        self._lost: set[str] = set()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outgoing) -> bool:
        """Queue `item`; False if that cost a record (an older one, or this one)."""
        items = self._items
        if len(items) < self.capacity:
            items.append(item)
            return True
        victim = items.popleft()
        items.append(item)
        self.dropped += 1
        # Every queued record of its subject is newer: the first one taken carries the flag.
        # Marked here and applied in `take`, so a drop costs the same however full the box.
        self._lost.add(victim.subject)
        return False

    def take(self) -> Outgoing | None:
        """The next record, removed from the outbox (it moves to the publish window)."""
        if not self._items:
            return None
        item = self._items.popleft()
        if self._lost and item.subject in self._lost:
            self._lost.discard(item.subject)
            item = attrs.evolve(item, gap=True)
        return item


class HoldBack:
    """Holds each channel's first records for `delay` seconds after it is (re)subscribed.

    Two relays on one shard store each record once (JetStream keeps the first copy of an id),
    and a subject's order is the order its records reach JetStream. A relay that starts or
    reconnects while its peer lags gets its first records before the peer has published the
    ones just earlier, which the first relay never got: published at once, they would be
    stored ahead of them. Held back longer than the peer lags, they go after. Time comes in
    as `now`; the relay releases what is due (`release_due`) and, when stopping, everything.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.started: set[str] = set()
        """Channels that have had a record since the relay started."""
        self.held: dict[str, tuple[float, list[Outgoing]]] = {}
        """Channel -> (when its hold ends, its records so far, in order)."""
        self.count = 0

    def admit(self, channel: str, item: Outgoing, restarted: bool, now: float) -> list[Outgoing]:
        """The records to queue now, in order: none while `channel` is held back; its held ones
        and then `item` once the hold is over. `restarted`: the first record after a reconnect
        (a new hold begins, as for a channel's first record)."""
        if channel not in self.started or restarted:
            self.started.add(channel)
            _, items = self.held.get(channel, (now, []))
            self.held[channel] = (now + self.delay, items)  # a hold under way starts again
        held = self.held.get(channel)
        if held is None:
            return [item]
        until, items = held
        if now < until:
            items.append(item)
            self.count += 1
            return []
        del self.held[channel]
        self.count -= len(items)
        items.append(item)
        return items

    def release_due(self, now: float) -> list[Outgoing]:
        """The records of every channel whose hold is over, each channel's in order."""
        due = [channel for channel, (until, _) in self.held.items() if until <= now]
        return [item for channel in due for item in self._release(channel)]

    def release_all(self) -> list[Outgoing]:
        return [item for channel in list(self.held) for item in self._release(channel)]

    def _release(self, channel: str) -> list[Outgoing]:
        _, items = self.held.pop(channel)
        self.count -= len(items)
        return items


# --------------------------------------------------------------------------- trade ids


class FrameCounter:
    """Tells identical frames of a channel apart: the n-th copy of a frame since the
    subscription (re)started is occurrence n.

    WEEX trades carry no id, and two real fills can be identical (time, price, size, side), so
    a digest alone would merge them. The count is what two relays both derive when both saw
    every copy on one subscription; a relay that (re)subscribed between two copies counts the
    later one as the first, so it merges with the earlier one (see the README). Only the most
    recent `capacity` distinct frames per channel are remembered: identical copies share
    their trade time, so they arrive close together.
    """

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._seen: dict[str, dict[str, int]] = {}
        self._current: dict[str, int] = {}

    def occurrence(self, channel: str, digest: str, index: int, *, restarted: bool) -> int:
        """The occurrence of the frame `digest` whose record `index` is being relayed; the
        count moves on at index 0 (each frame once), and `restarted` (the first record after
        a reconnect) forgets what the channel saw before."""
        if restarted:
            self._seen.pop(channel, None)
        seen = self._seen.setdefault(channel, {})
        if index == 0 or digest not in seen:
            count = seen.pop(digest, -1) + 1
            seen[digest] = count  # re-inserted: the most recent frames are kept
            if len(seen) > self.capacity:
                del seen[next(iter(seen))]
            return count
        return seen[digest]


# --------------------------------------------------------------------------- acks


@attrs.frozen
class AckResult:
    """What JetStream answered to one publish, classified."""

    kind: str
    """`stored`, `duplicate`, `retry` (NATS or JetStream unavailable: publish again),
    `refused` (this record will never be stored: drop it) or `storage` (refused because the
    server's storage is exhausted: dropped, and said loudly)."""
    reason: str = ""


_STORED = AckResult("stored")
_DUPLICATE = AckResult("duplicate")
_STORAGE_ERRORS = frozenset({10023, 10028, 10047})
"""Insufficient resources, memory resources exceeded, storage resources exceeded."""
_LIMIT_ERRORS = frozenset({10054, 10077})
"""Message larger than the stream's max_msg_size; a stream limit (`discard: new` at
max_msgs, max_bytes, max_msgs_per_subject)."""


def classify_ack(data: bytes, status: str | None = None) -> AckResult:
    """Read a JetStream publish reply: the ack's JSON, or the NATS `Status` header of a reply
    without a body (503: no stream listens on the subject, or JetStream is away)."""
    if status and status not in ("200",):
        return AckResult("retry", f"NATS status {status} (no stream answered)")
    if data.startswith(b'{"stream":') and b'"error"' not in data and b'"duplicate"' not in data:
        return _STORED  # the common case, without parsing
    try:
        body = json.loads(data)
    except ValueError:
        return AckResult("retry", "an unreadable ack")
    if not isinstance(body, dict):
        return AckResult("retry", "an unreadable ack")
    error = body.get("error")
    if error is None:
        return AckResult("duplicate" if body.get("duplicate") else "stored")
    if not isinstance(error, dict):
        return AckResult("retry", str(error)[:200])
    code = error.get("code")
    err_code = error.get("err_code")
    description = str(error.get("description", ""))[:200]
    reason = f"{description} (code {code}, err_code {err_code})"
    if err_code in _STORAGE_ERRORS:
        return AckResult("storage", reason)
    if err_code in _LIMIT_ERRORS:
        if err_code == 10077 and "maximum" not in description:
            return AckResult("storage", reason)  # the store itself failed (disk full)
        return AckResult("refused", reason)
    if isinstance(code, int) and 400 <= code < 500 and code != 408:
        return AckResult("refused", reason)
    return AckResult("retry", reason)


def header_block_size(msg_id: str) -> int:
    """Bytes of the NATS header block carrying `Nats-Msg-Id` (counted by JetStream's
    max_msg_size and the server's max_payload, with the body)."""
    return len(msg_id_headers(msg_id))


# --------------------------------------------------------------------------- the window

_UNSENT, _SENT, _DONE = 0, 1, 2


@attrs.define
class _Entry:
    item: Outgoing
    payload: bytes = b""
    state: int = _UNSENT
    sent_at: float = 0.0
    generation: int = -1
    sends: int = 0


@attrs.define
class Sending:
    """One publish to put on the wire: the reply must name `seq` and `generation`."""

    seq: int
    generation: int
    item: Outgoing
    payload: bytes = b""
    """The body when the caller gave it to `add` (encoded once); empty: `item.body()`."""


class PublishWindow:
    """The records between the outbox and JetStream's acks, in publishing order.

    Up to `limit` records are in the window; they are sent in order and acked in any order.
    A record leaves only once acked or refused, and only from the front, so the window always
    starts at the first record not yet known to be stored. A failed or missing ack (`failed`,
    `expire`) or a new connection (`restart`) sends every record not yet acked again, in
    order, from that first one: JetStream keeps one copy per `Nats-Msg-Id`, and a connection
    delivers in order, so each subject's records are stored once and in publishing order.

    Acks carry the generation they were sent in: a failure reported for an older generation
    is already covered by the resend that started the newer one.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the window needs room for at least one record")
        self.limit = limit
        self.acked = 0
        self.duplicates = 0
        self.refused = 0
        self.retried = 0
        self.gaps = 0
        self._entries: deque[_Entry] = deque()
        self._base = 0  # the seq of _entries[0]
        self._cursor = 0  # the next seq to look at for sending
        self._generation = 0
        self._lost: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def room(self) -> int:
        return self.limit - len(self._entries)

    @property
    def in_flight(self) -> int:
        return sum(1 for entry in self._entries if entry.state == _SENT)

    @property
    def unacked(self) -> int:
        """Records sent or to be sent, not yet acked or refused."""
        return sum(1 for entry in self._entries if entry.state != _DONE)

    @property
    def due(self) -> bool:
        """Records wait to be sent (new ones, or ones to send again)."""
        return self._cursor < self._base + len(self._entries)

    def add(self, item: Outgoing, payload: bytes = b"") -> int:
        """Take `item` (there must be room), with its body if already encoded; its seq."""
        if not self.room:
            raise ValueError("the publish window is full")
        if item.subject in self._lost:
            self._lost.discard(item.subject)
            item, payload = attrs.evolve(item, gap=True), b""
        self._entries.append(_Entry(item, payload))
        return self._base + len(self._entries) - 1

    def to_send(self, now: float, limit: int | None = None) -> list[Sending]:
        """The records due to be sent (at most `limit` of them), in order; they count as
        sent at `now`. Those past `limit` stay due, for the next call."""
        out: list[Sending] = []
        entries = self._entries
        offset = max(self._cursor - self._base, 0)
        end = len(entries)
        while offset < end:
            entry = entries[offset]
            offset += 1
            if entry.state != _UNSENT:
                continue
            if entry.sends:
                self.retried += 1
            elif entry.item.gap:
                self.gaps += 1
            entry.state, entry.sent_at, entry.generation = _SENT, now, self._generation
            entry.sends += 1
            seq = self._base + offset - 1
            out.append(Sending(seq, self._generation, entry.item, entry.payload))
            if len(out) == limit:
                break
        self._cursor = self._base + offset
        return out

    def _entry(self, seq: int) -> _Entry | None:
        offset = seq - self._base
        if 0 <= offset < len(self._entries):
            return self._entries[offset]
        return None

    def ack(self, seq: int, *, duplicate: bool = False) -> None:
        """JetStream holds record `seq` (an ack of any generation: some copy was stored)."""
        entry = self._entry(seq)
        if entry is None or entry.state == _DONE:
            return
        entry.state = _DONE
        self.acked += 1
        self.duplicates += duplicate
        self._trim()

    def refuse(self, seq: int) -> Outgoing | None:
        """JetStream will never store record `seq`: drop it, and flag the next record of its
        subject that has not been sent yet. The dropped record, or None if already done."""
        entry = self._entry(seq)
        if entry is None or entry.state == _DONE:
            return None
        entry.state = _DONE
        self.refused += 1
        self._flag_next(entry.item.subject, seq - self._base + 1)
        self._trim()
        return entry.item

    def drop(self, item: Outgoing) -> None:
        """A record refused before it was sent (too large for the stream): count it and flag
        the next record of its subject, like `refuse`."""
        self.refused += 1
        self._flag_next(item.subject, 0)

    def _flag_next(self, subject: str, start: int) -> None:
        for offset in range(max(start, 0), len(self._entries)):
            entry = self._entries[offset]
            if entry.item.subject == subject and entry.sends == 0:
                entry.item, entry.payload = attrs.evolve(entry.item, gap=True), b""
                return
        self._lost.add(subject)

    def failed(self, seq: int, generation: int) -> bool:
        """Record `seq`'s publish of `generation` failed in a way worth retrying: send every
        record not yet acked again, in order. False if an earlier resend covers it."""
        entry = self._entry(seq)
        if entry is None or entry.state != _SENT or generation != self._generation:
            return False
        self._rewind()
        return True

    def expire(self, now: float, timeout: float) -> bool:
        """If the oldest unacked publish is older than `timeout`, resend from it (True)."""
        deadline = self.deadline(timeout)
        if deadline is None or now < deadline:
            return False
        self._rewind()
        return True

    def deadline(self, timeout: float) -> float | None:
        """When the oldest unacked publish times out; None when nothing is in flight."""
        if self._entries and self._entries[0].state == _SENT:
            return self._entries[0].sent_at + timeout
        return None

    def restart(self) -> None:
        """A new connection: nothing sent on the old one will be acked; send it all again."""
        self._rewind()

    def _rewind(self) -> None:
        self._generation += 1
        for entry in self._entries:
            if entry.state == _SENT:
                entry.state = _UNSENT
        self._cursor = self._base

    def _trim(self) -> None:
        while self._entries and self._entries[0].state == _DONE:
            self._entries.popleft()
            self._base += 1
        self._cursor = max(self._cursor, self._base)


# --------------------------------------------------------------------------- the status line


@attrs.frozen
class RelayCounts:
    """The relay's counters at one moment, for the status line and the summary."""

    received: int = 0
    acked: int = 0
    in_flight: int = 0
    """Publishes on the wire awaiting their ack."""
    unacked: int = 0
    """Records in the publish window: sent or to be sent, not yet known to be stored."""
    outbox: int = 0
    dropped: int = 0
    refused: int = 0
    retried: int = 0
    gaps: int = 0
    weex_reconnects: int = 0
    nats_reconnects: int = 0


def _per_second(now: int, before: int, elapsed: float) -> str:
    return f"{(now - before) / elapsed if elapsed > 0 else 0.0:,.0f}"


def status_text(counts: RelayCounts, previous: RelayCounts, elapsed: float) -> str:
    """`relay: 120 in/s, 118 acked/s, 35 in flight, outbox 0, dropped 0, refused 0, ...`:
    rates over the `elapsed` seconds since `previous`, the rest as they stand."""
    return (
        f"relay: {_per_second(counts.received, previous.received, elapsed)} in/s, "
        f"{_per_second(counts.acked, previous.acked, elapsed)} acked/s, "
        f"{counts.in_flight:,} in flight, outbox {counts.outbox:,}, "
        f"dropped {counts.dropped:,}, refused {counts.refused:,}, gaps {counts.gaps:,}, "
        f"retried {counts.retried:,}, reconnects weex {counts.weex_reconnects} "
        f"nats {counts.nats_reconnects}"
    )


def summary_text(counts: RelayCounts, elapsed: float) -> str:
    """The line at exit: what went in and what JetStream acknowledged."""
    return (
        f"weex-ws: relayed {counts.received:,} records in {elapsed:.1f}s: "
        f"{counts.acked:,} acked by JetStream, {counts.dropped:,} dropped, "
        f"{counts.refused:,} refused, {counts.unacked + counts.outbox:,} not acked at exit; "
        f"{counts.retried:,} publishes retried, reconnects weex {counts.weex_reconnects} "
        f"nats {counts.nats_reconnects}"
    )
