"""The pure parts of relaying WEEX records to a message bus (NATS JetStream): subject names,
message ids derived from the data, the message body, the bounded outbox between the WEEX
side and the bus, and which shard of a feed split over several relays carries a channel.

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
    channel: str, frame: Mapping[str, Any], source: Any, index: int, *, closed: bool = False
) -> str:
    """The `Nats-Msg-Id` of record `index` of `frame` on `channel`.

    - depth: `<channel>:<depthType>:<endVersion>` (the book's own sequence number);
    - private channels: `<channel>:v<msg.version>:<index>` (the account's sequence);
    - candles: `<channel>:<klineTime>:<digest>:<index>:<open|closed>`. A candle is sent again,
      `closed`, with the very frame and index it first came in once a later one arrives, so
      the flag is part of the id: the closing copy is not a duplicate of the open one;
    - everything else (tickers, trades): a digest of the whole frame, canonically encoded,
      plus the record's index: the same push gives the same ids on every relay.
    """
    if channel.startswith("kline."):
        row = source
        first = row.get("klineTime") if isinstance(row, Mapping) else None
        if first is None and isinstance(row, list | tuple) and row:
            first = row[0]  # the array form: [klineTime, open, high, low, close, size]
        kline_time = _version_text(first) or "-"
        state = "closed" if closed else "open"
        return f"{channel}:{kline_time}:{frame_digest(frame)}:{index}:{state}"
    if isinstance(source, Mapping) and "endVersion" in source:
        end = _version_text(source.get("endVersion"))
        kind = source.get("depthType")
        if end is not None and isinstance(kind, str) and kind.isalpha():
            return f"{channel}:{kind.upper()}:{end}"
    msg = frame.get("msg")
    if isinstance(msg, Mapping):
        version = _version_text(msg.get("version"))
        if version is not None:
            return f"{channel}:v{version}:{index}"
    return f"{channel}:{frame_digest(frame)}:{index}"


def snapshot_id(channel: str, version: int) -> str:
    """The id of a book snapshot at `version`: the same as WEEX's own snapshot at that version,
    so a relay's periodic snapshot and another relay's identical one are kept once."""
    return f"{channel}:SNAPSHOT:{version}"


def frame_digest(frame: Mapping[str, Any]) -> str:
    """A short digest of the frame's content (key order and spacing do not matter)."""
    canonical = json.dumps(frame, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


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
    """The message body: the same JSON object as one `--json` line of the stream commands."""
    body = {"channel": channel, "received_at": received_at, "gap": gap, "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


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
    that lost one carries `gap=True`, as after a reconnect. The publisher `peek`s, publishes,
    and only then `pop`s, so a failed publish is retried with the same message id (the bus
    keeps it once if the first attempt did arrive).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the outbox needs room for at least one record")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Outgoing] = deque()
        self._lost: set[str] = set()
        self._in_flight = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outgoing) -> bool:
        """Queue `item`; False if that cost a record (an older one, or this one)."""
        if item.subject in self._lost:
            self._lost.discard(item.subject)
            item = attrs.evolve(item, gap=True)
        if len(self._items) < self.capacity:
            self._items.append(item)
            return True
        # Never drop the record being published: its publish may already have reached the bus.
        first = 1 if self._in_flight else 0
        if first >= len(self._items):
            self._lose(item.subject, after=len(self._items))
            return False
        victim = self._items[first]
        del self._items[first]
        self._items.append(item)
        self._lose(victim.subject, after=first)
        return False

    def _lose(self, subject: str, *, after: int) -> None:
        """Count a lost record of `subject`; flag the next one of that subject from `after`."""
        self.dropped += 1
        for index in range(after, len(self._items)):
            queued = self._items[index]
            if queued.subject == subject:
                self._items[index] = attrs.evolve(queued, gap=True)
                return
        self._lost.add(subject)

    def peek(self) -> Outgoing | None:
        """The next record to publish, or None when empty; it stays queued until `pop`."""
        if not self._items:
            return None
        self._in_flight = True
        return self._items[0]

    def pop(self) -> None:
        """The peeked record was published: forget it."""
        if self._items:
            self._items.popleft()
        self._in_flight = False
