"""Which channel names the simulator accepts, and on which endpoint (protocol doc §4).

Public channels are per contract: `ticker.{sym}`, `kline.{priceType}.{sym}.{interval}`,
`depth.{sym}.{15|200}` and `trades.{sym}`. Private channels take no parameters. A channel is only
valid on its own endpoint: asking for `account` on the public URL is an error, and vice versa.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import attrs

KLINE_PRICE_TYPES = ("LAST_PRICE", "MARK_PRICE")
KLINE_INTERVALS = (
    "MINUTE_1",
    "MINUTE_5",
    "MINUTE_15",
    "MINUTE_30",
    "HOUR_1",
    "HOUR_2",
    "HOUR_4",
    "HOUR_6",
    "HOUR_8",
    "HOUR_12",
    "DAY_1",
    "WEEK_1",
    "MONTH_1",
)
DEPTH_LEVELS = (15, 200)
PRIVATE_CHANNELS = frozenset({"account", "positions", "orders", "fill"})

PublicKind = Literal["ticker", "kline", "depth", "trades"]


@attrs.frozen
class PublicChannel:
    """A parsed public channel name; `name` is the exact string the client subscribed with."""

    name: str
    kind: PublicKind
    symbol: str
    price_type: str = ""
    interval: str = ""
    levels: int = 0


def parse_public_channel(name: str, symbols: Collection[str]) -> PublicChannel | None:
    """Return the parsed channel, or None when the name is not a valid public channel."""
    parts = name.split(".")
    head, rest = parts[0], parts[1:]
    if head in ("ticker", "trades") and len(rest) == 1 and rest[0] in symbols:
        return PublicChannel(name, "ticker" if head == "ticker" else "trades", rest[0])
    if head == "depth" and len(rest) == 2 and rest[0] in symbols:
        levels = {str(n): n for n in DEPTH_LEVELS}.get(rest[1])
        if levels is not None:
            return PublicChannel(name, "depth", rest[0], levels=levels)
    if head == "kline" and len(rest) == 3:
        price_type, symbol, interval = rest
        if price_type in KLINE_PRICE_TYPES and symbol in symbols and interval in KLINE_INTERVALS:
            return PublicChannel(name, "kline", symbol, price_type=price_type, interval=interval)
    return None


def channel_allowed(name: str, *, private: bool, symbols: Collection[str]) -> bool:
    """Whether `name` may be subscribed on a connection of this kind."""
    if private:
        return name in PRIVATE_CHANNELS
    return parse_public_channel(name, symbols) is not None
