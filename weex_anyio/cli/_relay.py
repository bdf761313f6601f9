"""`weex-ws relay SYMBOL... --nats URL`: publish WEEX records to NATS JetStream.

One relay per site holds the WEEX connections; any number of consumers read the stream. The
WEEX side never waits for NATS: each record goes into a bounded outbox (see
`weex_proto.relaying.Outbox`) from the client's inline handler, and one publisher task drains
it, retrying a failed publish with the same `Nats-Msg-Id` while nats-py reconnects. Depth
channels keep a local book in the same order as the records are queued, so the periodic
snapshots it publishes are consistent with the deltas around them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import anyio

from weex_proto.channels import build_channel, is_private_channel
from weex_proto.errors import WeexError
from weex_proto.events import WebSocketMessage
from weex_proto.messages import DepthUpdate, PayloadError, parse_record
from weex_proto.orderbook import OrderBook
from weex_proto.relaying import (
    Outbox,
    Outgoing,
    book_snapshot_record,
    message_id,
    shard_channels,
    snapshot_id,
    subject_for,
)

from ..client import WeexWebSocketClient
from ._output import to_jsonable
from ._runtime import Stopper, client_options
from ._streams import config_for

log = logging.getLogger("weex_anyio.relay")

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "WEEX"
RETRY_DELAY = 0.2
CONNECT_TIMEOUT = 10.0


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
    """Receives WEEX records (inline, never waiting) and publishes them to JetStream."""

    def __init__(
        self,
        js: Any,
        *,
        prefix: str = "weex",
        outbox_capacity: int = 10_000,
        publish_timeout: float = 2.0,
    ) -> None:
        self.js = js
        self.prefix = prefix
        self.outbox = Outbox(outbox_capacity)
        self.publish_timeout = publish_timeout
        self.published = 0
        self.duplicates = 0
        self.failures = 0
        self.books: dict[str, OrderBook] = {}
        self._snapshotted: dict[str, int] = {}
        self._wake = anyio.Event()
        self._dropping = False

    # -- the WEEX side (synchronous: called inline by the client) --------------------------

    def on_message(self, message: WebSocketMessage[Any]) -> None:
        channel = message.channel
        try:
            data = to_jsonable(dict(message.data))
            closed = data.get("closed") is True  # a candle's: part of its id
            msg_id = message_id(
                channel, message.frame, message.source, message.index, closed=closed
            )
            subject = subject_for(channel, self.prefix)
        except (TypeError, ValueError) as exc:
            log.warning("not relayed: a record of %s: %s", channel[:80], exc)
            return
        book = self.books.get(channel)
        if book is not None:
            self._apply(book, channel, message)
        self._queue(Outgoing(subject, msg_id, channel, data, message.timestamp, message.gap))

    def _apply(self, book: OrderBook, channel: str, message: WebSocketMessage[Any]) -> None:
        try:
            update = parse_record(channel, message.source, message.index)
        except PayloadError as exc:
            book.invalidate(str(exc))
            return
        if isinstance(update, DepthUpdate):
            book.apply(update)

    def _queue(self, item: Outgoing) -> None:
        if not self.outbox.put(item) and not self._dropping:
            self._dropping = True  # said once per episode, not once per record
            log.warning(
                "NATS is not keeping up: the outbox is full (%d records), dropping the oldest "
                "(flagged as gaps)",
                self.outbox.capacity,
                extra={"weex_event": "relay_dropping", "dropped": self.outbox.dropped},
            )
        self._wake.set()

    def follow_book(self, channel: str, symbol: str, level: int) -> None:
        """Keep a local book of `channel`, for `publish_snapshots`."""
        self.books[channel] = OrderBook(symbol, level)

    def publish_snapshots(self) -> int:
        """Queue each live book that moved since its last snapshot; how many were queued."""
        queued = 0
        for channel, book in self.books.items():
            version = book.version
            if book.version is None or self._snapshotted.get(channel) == version:
                continue
            assert version is not None
            record = book_snapshot_record(
                book.symbol, book.depth, version, book.bids(), book.asks()
            )
            self._snapshotted[channel] = version
            self._queue(
                Outgoing(
                    subject_for(channel, self.prefix),
                    snapshot_id(channel, version),
                    channel,
                    record,
                    time.time(),
                )
            )
            queued += 1
        return queued

    # -- the NATS side -----------------------------------------------------------------------

    async def publish_forever(self) -> None:
        """Drain the outbox into JetStream; failed publishes are retried, never reordered."""
        nats = import_nats()
        while True:
            item = self.outbox.peek()
            if item is None:
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            try:
                ack = await self.js.publish(
                    item.subject,
                    item.body(),
                    timeout=self.publish_timeout,
                    headers={"Nats-Msg-Id": item.msg_id},
                )
            except (nats.errors.Error, TimeoutError) as exc:
                self.failures += 1
                log.info(
                    "publish to NATS failed, retrying: %s",
                    type(exc).__name__ if not str(exc) else exc,
                    extra={"weex_event": "relay_retry"},
                )
                await anyio.sleep(RETRY_DELAY)
                continue
            self.outbox.pop()
            self.published += 1
            if self._dropping and not self.outbox:
                self._dropping = False
                log.warning(
                    "NATS caught up; %d records dropped in all",
                    self.outbox.dropped,
                    extra={"weex_event": "relay_caught_up", "dropped": self.outbox.dropped},
                )
            if getattr(ack, "duplicate", False):
                self.duplicates += 1

    async def snapshot_every(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            self.publish_snapshots()


async def ensure_stream(
    js: Any,
    name: str,
    subjects: Sequence[str],
    *,
    max_age: float | None,
    retention: str,
    duplicate_window: float,
) -> None:
    """Create the JetStream stream unless it exists (an existing one is left as it is)."""
    nats = import_nats()
    from nats.js.api import RetentionPolicy, StreamConfig

    try:
        await js.stream_info(name)
        return
    except nats.js.errors.NotFoundError:
        pass
    except (nats.errors.Error, TimeoutError) as exc:
        raise NatsUnavailableError(
            f"no JetStream answer about stream {name!r} (is nats-server running with -js?): "
            f"{str(exc) or type(exc).__name__}"
        ) from None
    config = StreamConfig(
        name=name,
        subjects=list(subjects),
        retention=RetentionPolicy(retention),
        max_age=max_age,
        duplicate_window=duplicate_window,
    )
    with contextlib.suppress(nats.js.errors.BadRequestError):  # another relay was quicker
        await js.add_stream(config)


class NatsUnavailableError(WeexError):
    """The NATS server could not be reached when the command started."""


def without_credentials(url: str) -> str:
    """The URL as it may be shown: any `user:password@` taken out."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def connect_nats(url: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
    """A NATS connection that reconnects for ever once made (the relay must outlive NATS
    restarts); the first connection must succeed within `timeout`, so a wrong URL is an
    error rather than a silent wait."""
    nats = import_nats()
    last: list[BaseException] = []

    async def noted(exc: Exception) -> None:
        last[:] = [exc]
        log.info("NATS: %s", exc, extra={"weex_event": "nats_error"})

    nc = nats.NATS()
    try:
        with anyio.fail_after(CONNECT_TIMEOUT if timeout is None else timeout):
            await nc.connect(
                url,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                allow_reconnect=True,
                error_cb=noted,
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


async def run_relay(args: argparse.Namespace, stopper: Stopper) -> int:
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
    nc = await connect_nats(args.nats)
    try:
        js = nc.jetstream()
        await ensure_stream(
            js,
            args.stream,
            [f"{args.prefix}.>"],
            max_age=args.max_age,
            retention=args.retention,
            duplicate_window=args.duplicate_window,
        )
        relay = Relay(js, prefix=args.prefix, outbox_capacity=args.outbox)
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
            with stopper.scope:
                await _relay(groups, relay, args)
    finally:
        await close_nats(nc)
    return 0


async def _relay(
    groups: list[tuple[WeexWebSocketClient, list[str]]], relay: Relay, args: argparse.Namespace
) -> None:
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(relay.publish_forever)
        for client, channels in groups:
            for channel in channels:
                client.add_message_handler(channel, relay.on_message)
                if channel.startswith("depth."):
                    symbol = channel.split(".")[1]
                    relay.follow_book(channel, symbol, args.depth)
                    # The client's own book stream resubscribes the channel after a version
                    # gap, which brings a fresh WEEX snapshot to the relay's book too.
                    task_group.start_soon(_drain_book, client, symbol, args.depth)
                await client.subscribe(channel)
        if relay.books and args.snapshot_interval:
            task_group.start_soon(relay.snapshot_every, args.snapshot_interval)


async def _drain_book(client: WeexWebSocketClient, symbol: str, level: int) -> None:
    async with contextlib.aclosing(client.stream_order_book(symbol, level=level)) as books:
        async for _ in books:
            pass
