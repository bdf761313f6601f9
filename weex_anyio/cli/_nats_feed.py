"""Reading what relays published to JetStream back as the client's messages.

`weex-ws tail --nats` and `weex-ws demo --nats` share this: each subject is read by its own
ordered consumer (stream order, nothing to acknowledge), and each body (the JSON object of a
`--json` line) becomes a `WebSocketMessage` like the live client's, so the terminal tools
describe it the same way whichever the source. Depth records are fed to a local `OrderBook`,
which starts at the first SNAPSHOT it is given (WEEX's own, or a relay's periodic one) and
skips the deltas before it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import anyio

from weex_proto.events import PushFrame, WebSocketMessage
from weex_proto.messages import PRIVATE_RECORD_KEYS, DepthUpdate, PayloadError
from weex_proto.orderbook import Applied, ApplyResult, NeedsResync, OrderBook
from weex_proto.records import OrderBookSnapshot, RecordSplitter, SplitError
from weex_proto.relaying import subject_for
from weex_proto.runtime.books import book_snapshot
from weex_proto.runtime.health import EndpointHealth, Health

from ._nats_link import NatsUnavailableError
from ._relay import import_nats

log = logging.getLogger("weex_anyio.nats")

ENDPOINT = "nats"
"""The dashboard's health names its one endpoint after the source."""
RTT_INTERVAL = 2.0


def message_from_body(body: Mapping[str, Any], splitter: RecordSplitter) -> WebSocketMessage[Any]:
    """The relayed record as the client would have yielded it (one record, its push rebuilt).

    A candle keeps the closed flag the relay saw: one record alone cannot tell the splitter
    whether a later candle has arrived.
    """
    channel = body["channel"]
    data = body["data"]
    if not isinstance(channel, str) or not isinstance(data, Mapping):
        raise ValueError("the body has no channel or no record")
    key = PRIVATE_RECORD_KEYS.get(channel)
    frame: dict[str, Any]
    if key is not None:
        frame = {"event": "payload", "channel": channel, "msg": {"data": {key: [dict(data)]}}}
    else:
        frame = {"event": "payload", "channel": channel, "data": [dict(data)]}
    received_at = body.get("received_at")
    timestamp = float(received_at) if isinstance(received_at, int | float) else 0.0
    candle = channel.startswith("kline.")
    split = RecordSplitter() if candle else splitter  # no open candle to close from here
    messages = split.split(PushFrame(channel, frame, timestamp))
    if len(messages) != 1:
        raise ValueError("the body does not hold exactly one record")
    message = messages[0]
    gap = body.get("gap") is True
    if gap or candle:
        message = WebSocketMessage(
            channel,
            frame,
            timestamp,
            gap=gap,
            source=message.source,
            kind=message.kind,
            index=message.index,
            context=(data.get("closed") is True) if candle else message.context,
        )
    return message


def deliver_policy(name: str) -> Any:
    import_nats()
    from nats.js.api import DeliverPolicy

    return {
        "new": DeliverPolicy.NEW,
        "all": DeliverPolicy.ALL,
        "last": DeliverPolicy.LAST,
        "since": DeliverPolicy.BY_START_TIME,
    }[name]


async def subscribe(
    js: Any,
    subject: str,
    policy: str,
    *,
    since: float | None = None,
) -> Any:
    """An ordered consumer of `subject` from `policy` ("new", "all", "last", or "since": from
    the wall time `since`); a one-line error when no stream holds the subject."""
    nats = import_nats()
    from nats.js.api import ConsumerConfig

    config = None
    if policy == "since":
        assert since is not None
        config = ConsumerConfig(opt_start_time=dt.datetime.fromtimestamp(since, dt.UTC))
    try:
        return await js.subscribe(
            subject,
            ordered_consumer=True,
            deliver_policy=deliver_policy(policy),
            config=config,
        )
    except nats.js.errors.NotFoundError:
        raise NatsUnavailableError(
            f"no JetStream stream holds {subject[:120]!r} (has a relay run with this prefix?)"
        ) from None
    except nats.js.errors.APIError as exc:  # it answered, with an error: say which
        reason = exc.description or str(exc) or type(exc).__name__
        raise NatsUnavailableError(
            f"JetStream refused {subject[:120]!r}: {reason} (error {exc.err_code})"
        ) from None
    except (nats.errors.Error, TimeoutError) as exc:
        raise NatsUnavailableError(
            f"JetStream did not answer about {subject[:120]!r}: {str(exc) or type(exc).__name__}"
        ) from None


async def bodies(subscription: Any) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    """(subject, body) of each message; a body that is not a JSON object is logged, skipped.
    Unsubscribes at the end, even when the connection is gone already."""
    try:
        async for msg in subscription.messages:
            try:
                body = json.loads(msg.data)
            except ValueError as exc:
                log.warning("skipped a message on %s: %s", msg.subject[:80], exc)
                continue
            if not isinstance(body, Mapping):
                log.warning("skipped a message on %s: not a JSON object", msg.subject[:80])
                continue
            yield msg.subject, body
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await subscription.unsubscribe()


def book_message(
    channel: str, book: OrderBook, levels: int, source: WebSocketMessage[Any]
) -> WebSocketMessage[OrderBookSnapshot]:
    """The local book as `stream_order_book` yields it: top `levels` levels a side."""
    snapshot = book_snapshot(book, levels, source.timestamp)
    return WebSocketMessage(channel, source.frame, source.timestamp, source=snapshot)


def resync_message(
    channel: str, book: OrderBook, reason: str, source: WebSocketMessage[Any]
) -> WebSocketMessage[OrderBookSnapshot]:
    snapshot = OrderBookSnapshot(
        book.symbol, (), (), None, source.timestamp, resyncing=True, reason=reason
    )
    return WebSocketMessage(channel, source.frame, source.timestamp, gap=True, source=snapshot)


class DashboardFeed:
    """The dashboard's data from JetStream: each symbol's ticker and trades, the first
    symbol's book, and a `Health` of the NATS connection in the client's terms."""

    def __init__(
        self,
        nc: Any,
        symbols: Sequence[str],
        *,
        depth: int,
        prefix: str = "weex",
        lookback: float = 30.0,
    ) -> None:
        self.nc = nc
        self.symbols = tuple(symbols)
        self.depth = depth
        self.prefix = prefix
        self.lookback = lookback
        self.wire_depth = 15 if depth <= 15 else 200
        self.book_channel = f"depth.{self.symbols[0]}.{self.wire_depth}"
        self.book = OrderBook(self.symbols[0], self.wire_depth)
        self.health = Health()
        self.endpoint = self.health.endpoints.setdefault(ENDPOINT, EndpointHealth())

    @property
    def is_connected(self) -> bool:
        return bool(self.nc.is_connected)

    def subjects(self) -> list[tuple[str, str]]:
        """(subject, policy): the latest ticker of each symbol, then trades and the book from
        `lookback` seconds ago (so the book finds a periodic snapshot at once)."""
        chosen = [(subject_for(f"ticker.{s}", self.prefix), "last") for s in self.symbols]
        chosen += [(subject_for(f"trades.{s}", self.prefix), "since") for s in self.symbols]
        chosen.append((subject_for(self.book_channel, self.prefix), "since"))
        return chosen

    async def run(self, deliver: Callable[[WebSocketMessage[Any]], None]) -> None:
        js = self.nc.jetstream()
        since = time.time() - self.lookback
        subscriptions = [
            await subscribe(js, subject, policy, since=since) for subject, policy in self.subjects()
        ]
        self.endpoint.connected_at = time.time()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._measure_round_trips)
            for subscription in subscriptions:
                task_group.start_soon(self._read, subscription, deliver)

    async def _read(
        self, subscription: Any, deliver: Callable[[WebSocketMessage[Any]], None]
    ) -> None:
        splitter = RecordSplitter()
        async for subject, body in bodies(subscription):
            self.health.message(ENDPOINT, time.time())
            try:
                message = message_from_body(body, splitter)
            except (ValueError, KeyError, SplitError) as exc:
                self.health.errors += 1
                log.warning("skipped a message on %s: %s", subject[:80], exc)
                continue
            if message.gap:
                self.health.skipped += 1
            if message.channel == self.book_channel:
                self._apply(message, deliver)
            else:
                deliver(message)

    def _apply(
        self, message: WebSocketMessage[Any], deliver: Callable[[WebSocketMessage[Any]], None]
    ) -> None:
        result: ApplyResult
        try:
            update = message.record
        except PayloadError as exc:
            result = self.book.invalidate(str(exc))
        else:
            if not isinstance(update, DepthUpdate):
                return
            result = self.book.apply(update)
        if isinstance(result, Applied):
            deliver(book_message(self.book_channel, self.book, self.depth, message))
        elif isinstance(result, NeedsResync):
            # A relay dropped records (the next one says gap): wait for its next snapshot.
            self.health.book_resyncs += 1
            deliver(resync_message(self.book_channel, self.book, result.reason, message))

    async def _measure_round_trips(self) -> None:
        nats = import_nats()
        while True:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                self.endpoint.round_trip = await self.nc.rtt()
                self.endpoint.pings_answered += 1
            self.health.reconnects = int(self.nc.stats.get("reconnects", 0))
            await anyio.sleep(RTT_INTERVAL)
