"""What each `stream_*` subscribes to, and how its buffer behaves when full: `StreamPlan`.

Pure values: the hub opens a stream from a plan, the client acquires the plan's channels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..channels import build_channel
from ..events import WebSocketMessage
from .fanout import OverflowPolicy

DEFAULT_TICKER_SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt")


@attrs.frozen
class StreamPlan:
    """What a `stream_*` generator subscribes to, and how its buffer behaves when full."""

    channels: tuple[str, ...]
    private: bool
    policy: OverflowPolicy
    patterns: tuple[str, ...] = ()
    book_levels: int | None = None
    """For order books: yield the top N levels of a local book instead of raw frames."""
    follow_marks: bool = False
    """For positions: also subscribe the ticker of each contract seen, for mark prices."""

    @property
    def name(self) -> str:
        return ",".join((*self.channels, *self.patterns))


def plan_tickers(symbols: Iterable[str] | str | None) -> StreamPlan:
    """With None: every ticker the client receives, subscribing BTC and ETH to start with."""
    if symbols is None:
        channels = tuple(f"ticker.{s}" for s in DEFAULT_TICKER_SYMBOLS)
        return StreamPlan(channels, False, OverflowPolicy.KEEP_LATEST, ("ticker.*",))
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    if not names:
        raise ValueError("stream_tickers needs at least one symbol (or None for the defaults)")
    channels = tuple(dict.fromkeys(build_channel("ticker", s) for s in names))
    return StreamPlan(channels, False, OverflowPolicy.KEEP_LATEST)


def plan_order_book(symbol: str, level: int) -> StreamPlan:
    """WEEX serves depth 15 and 200; smaller requests (the classic 5) use the 15 channel."""
    if level < 1 or level > 200:
        raise ValueError("order book level must be between 1 and 200")
    wire_level = 15 if level <= 15 else 200
    channel = build_channel("depth", symbol, level=wire_level)
    return StreamPlan((channel,), False, OverflowPolicy.KEEP_LATEST, book_levels=level)


def plan_trades(symbol: str) -> StreamPlan:
    return StreamPlan((build_channel("trades", symbol),), False, OverflowPolicy.KEEP_LATEST)


def plan_klines(symbol: str, interval: str, price_type: str) -> StreamPlan:
    """Candles keep the latest on overflow (with a gap flag), like the other market data."""
    channel = build_channel("kline", symbol, interval=interval, price_type=price_type)
    return StreamPlan((channel,), False, OverflowPolicy.KEEP_LATEST)


def plan_private(channel: str, *, follow_marks: bool = False) -> StreamPlan:
    """Private streams must not lose updates silently: overflow raises instead."""
    return StreamPlan(
        (build_channel(channel),), True, OverflowPolicy.RAISE, follow_marks=follow_marks
    )


def mark_channel_for(message: WebSocketMessage[Any]) -> str | None:
    """The ticker channel that gives a position record's contract its mark price, or None
    when the record names no valid contract."""
    source = message.source
    contract = source.get("contractId") if isinstance(source, Mapping) else None
    if not isinstance(contract, str):
        return None
    try:
        return build_channel("ticker", contract)
    except (TypeError, ValueError):
        return None
