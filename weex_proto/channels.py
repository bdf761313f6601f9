"""Channel names of the WEEX contract WebSocket v2, as typed values (protocol doc §4).

The server knows a channel only by its wire string (`ticker.cmt_btcusdt`,
`kline.LAST_PRICE.cmt_btcusdt.MINUTE_1`, `depth.cmt_btcusdt.15`, `account`, ...), and acks and
pushes are matched by that exact string. Building the strings in one place, from typed requests,
keeps near misses that other SDKs send (`position`, `trade`, `ticker.BTCUSDT`) off the wire.

`parse_channel` is the strict inverse of `.name`: it accepts wire names only, so anything it
returns names a channel the docs define. `build_channel` is the forgiving front door used by the
public `subscribe(channel, *, symbol=None, **params)`.
"""

from __future__ import annotations

import difflib
import enum
import fnmatch
import re
from typing import Any, ClassVar, TypeAlias, TypeVar

import attrs

__all__ = [
    "DEPTH_LEVELS",
    "Account",
    "ChannelSpec",
    "Depth",
    "Fill",
    "Kline",
    "KlineInterval",
    "Orders",
    "Positions",
    "PriceType",
    "Ticker",
    "Trades",
    "build_channel",
    "channel_matches",
    "is_channel_pattern",
    "is_private_channel",
    "normalize_symbol",
    "parse_channel",
]


class KlineInterval(enum.StrEnum):
    """Candle widths of the kline channel, spelled as on the wire (doc §4.1.2)."""

    MINUTE_1 = "MINUTE_1"
    MINUTE_5 = "MINUTE_5"
    MINUTE_15 = "MINUTE_15"
    MINUTE_30 = "MINUTE_30"
    HOUR_1 = "HOUR_1"
    HOUR_2 = "HOUR_2"
    HOUR_4 = "HOUR_4"
    HOUR_6 = "HOUR_6"
    HOUR_8 = "HOUR_8"
    HOUR_12 = "HOUR_12"
    DAY_1 = "DAY_1"
    WEEK_1 = "WEEK_1"
    MONTH_1 = "MONTH_1"


class PriceType(enum.StrEnum):
    """Which price a kline follows (doc §4.1.2; `INDEX`, used by one SDK, is not documented)."""

    LAST_PRICE = "LAST_PRICE"
    MARK_PRICE = "MARK_PRICE"


DEPTH_LEVELS = (15, 200)
"""The only order-book depths the depth channel offers (doc §4.1.3)."""


# --- symbols ------------------------------------------------------------------------------

_CONTRACT_ID = re.compile(r"cmt_[a-z0-9]+")
_SYMBOL_PART = re.compile(r"[A-Za-z0-9]+")
_SEPARATOR = re.compile(r"[-/_]")


def normalize_symbol(symbol: str) -> str:
    """Return the v2 contract id (`cmt_btcusdt`) for the ways people write a contract.

    Accepts `cmt_btcusdt`, `CMT_BTCUSDT`, `BTCUSDT`, `btcusdt`, `BTC-USDT`, `BTC/USDT`, `BTC_USDT`
    and ccxt's `BTC/USDT:USDT`. v2 channel names use the `cmt_` id only (doc §1.1); whether the
    server also takes `BTCUSDT` is unknown (doc §8.13), so we never send it.
    """
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str, not {type(symbol).__name__}")
    text = symbol.strip()
    if text[:4].lower() == "cmt_":
        text = text[4:]
    text, colon, settle = text.partition(":")
    parts = _SEPARATOR.split(text)
    if (
        len(parts) > 2
        or not all(_SYMBOL_PART.fullmatch(part) for part in parts)
        or (colon and (len(parts) != 2 or settle.lower() != parts[1].lower()))
    ):
        raise ValueError(
            f"not a contract symbol: {symbol!r} "
            "(expected e.g. 'cmt_btcusdt', 'BTCUSDT', 'BTC-USDT' or 'BTC/USDT')"
        )
    if len(parts) == 2 and parts[1].upper() == "SPBL":
        raise ValueError(f"{symbol!r} is a spot symbol; these channels are for futures contracts")
    return "cmt_" + "".join(parts).lower()


def _is_contract_id(text: str) -> bool:
    return _CONTRACT_ID.fullmatch(text) is not None


# --- enum parameters ----------------------------------------------------------------------

_E = TypeVar("_E", KlineInterval, PriceType)


def _enum_member(enum_type: type[_E], value: _E | str, what: str) -> _E:
    """Accept the member itself or its name in any case, so `interval="minute_5"` works."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        member = enum_type.__members__.get(value.strip().upper())
        if member is not None:
            return member
    choices = ", ".join(enum_type.__members__)
    raise ValueError(f"unknown {what} {value!r}; expected one of {choices}")


def _to_interval(value: KlineInterval | str) -> KlineInterval:
    return _enum_member(KlineInterval, value, "kline interval")


def _to_price_type(value: PriceType | str) -> PriceType:
    return _enum_member(PriceType, value, "price type")


def _check_level(_instance: object, _attribute: object, value: object) -> None:
    # A bool is an int, and 15.0 == 15 would render as "depth.x.15.0": demand a real int.
    if type(value) is not int or value not in DEPTH_LEVELS:
        raise ValueError(f"depth level must be 15 or 200, not {value!r}")


# --- channel specs ------------------------------------------------------------------------


class _PublicChannel:
    """Market data for one contract, on the public connection."""

    __slots__ = ()

    @property
    def private(self) -> bool:
        return False


class _PrivateChannel:
    """Account-wide updates on the authenticated connection; the name takes no parameters."""

    __slots__ = ()
    kind: ClassVar[str]

    @property
    def private(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return self.kind


@attrs.frozen
class Ticker(_PublicChannel):
    """24 h statistics and last/mark price of one contract (doc §4.1.1)."""

    kind: ClassVar[str] = "ticker"
    symbol: str = attrs.field(converter=normalize_symbol)

    @property
    def name(self) -> str:
        return f"ticker.{self.symbol}"


@attrs.frozen
class Kline(_PublicChannel):
    """Candles of one contract (doc §4.1.2). Note the wire order: price type, symbol, interval."""

    kind: ClassVar[str] = "kline"
    symbol: str = attrs.field(converter=normalize_symbol)
    interval: KlineInterval = attrs.field(default=KlineInterval.MINUTE_1, converter=_to_interval)
    price_type: PriceType = attrs.field(default=PriceType.LAST_PRICE, converter=_to_price_type)

    @property
    def name(self) -> str:
        return f"kline.{self.price_type.value}.{self.symbol}.{self.interval.value}"


@attrs.frozen
class Depth(_PublicChannel):
    """Order book of one contract, 15 or 200 levels: a snapshot, then changes (doc §4.1.3)."""

    kind: ClassVar[str] = "depth"
    symbol: str = attrs.field(converter=normalize_symbol)
    level: int = attrs.field(default=15, validator=_check_level)

    @property
    def name(self) -> str:
        return f"depth.{self.symbol}.{self.level}"


@attrs.frozen
class Trades(_PublicChannel):
    """Public trades of one contract (doc §4.1.4). The pushes carry no symbol: keep the spec."""

    kind: ClassVar[str] = "trades"
    symbol: str = attrs.field(converter=normalize_symbol)

    @property
    def name(self) -> str:
        return f"trades.{self.symbol}"


@attrs.frozen
class Account(_PrivateChannel):
    """Collateral updates (doc §4.2.1)."""

    kind: ClassVar[str] = "account"


@attrs.frozen
class Positions(_PrivateChannel):
    """Position updates (doc §4.2.2). Plural on the wire; `position` is a known SDK mistake."""

    kind: ClassVar[str] = "positions"


@attrs.frozen
class Orders(_PrivateChannel):
    """Order updates (doc §4.2.3)."""

    kind: ClassVar[str] = "orders"


@attrs.frozen
class Fill(_PrivateChannel):
    """Our own fills (doc §4.2.4). Named `fill`; `trade` is a known SDK mistake."""

    kind: ClassVar[str] = "fill"


ChannelSpec: TypeAlias = Ticker | Kline | Depth | Trades | Account | Positions | Orders | Fill

_SPEC_TYPES = (Ticker, Kline, Depth, Trades, Account, Positions, Orders, Fill)
_PRIVATE: dict[str, ChannelSpec] = {
    spec.kind: spec for spec in (Account(), Positions(), Orders(), Fill())
}
_PARAMETERS: dict[str, tuple[str, ...]] = {
    "ticker": (),
    "trades": (),
    "depth": ("level",),
    "kline": ("interval", "price_type"),
}
_TEMPLATES = {
    "ticker": "ticker.<contract id>, e.g. 'ticker.cmt_btcusdt'",
    "trades": "trades.<contract id>, e.g. 'trades.cmt_btcusdt'",
    "depth": "depth.<contract id>.<15|200>, e.g. 'depth.cmt_btcusdt.15'",
    "kline": (
        "kline.<LAST_PRICE|MARK_PRICE>.<contract id>.<interval>, "
        "e.g. 'kline.LAST_PRICE.cmt_btcusdt.MINUTE_1'"
    ),
}
_SHORT_NAMES = (*_PARAMETERS, *_PRIVATE)
# Names other SDKs and exchanges use (doc §6, §8.14), with what WEEX v2 calls them.
_MISNOMERS = {
    "trade": "'trades' (public trades) or 'fill' (your own fills)",
    "order_book": "'depth'",
    "book": "'depth'",
    "candle": "'kline'",
    "candles": "'kline'",
    "candlestick": "'kline'",
    "position": "'positions'",
    "order": "'orders'",
    "fills": "'fill'",
}


# The channel names of the product documentation (`subscribe("tickers", ...)`,
# `subscribe("orderbook", symbol=..., level=5)`) and what WEEX calls them.
_DOCUMENTED_NAMES = {"tickers": "ticker", "orderbook": "depth"}


def _book_level(params: dict[str, Any]) -> dict[str, Any]:
    """The documentation's `level` (any depth up to 200) as the depth channel WEEX serves:
    15 for levels 1..15, 200 above (as `stream_order_book` does)."""
    level = params.get("level", 15)
    if type(level) is int and 1 <= level <= 200:
        params = {**params, "level": 15 if level <= 15 else 200}
    return params


# --- wire names -> specs ------------------------------------------------------------------


def parse_channel(name: str) -> ChannelSpec | None:
    """The spec whose `.name` is exactly `name`, or None if the docs define no such channel."""
    private = _PRIVATE.get(name)
    if private is not None:
        return private
    kind, _, rest = name.partition(".")
    parts = rest.split(".")
    if kind in ("ticker", "trades") and len(parts) == 1 and _is_contract_id(parts[0]):
        return Ticker(parts[0]) if kind == "ticker" else Trades(parts[0])
    if kind == "depth" and len(parts) == 2:
        symbol, level = parts
        if _is_contract_id(symbol) and level in ("15", "200"):
            return Depth(symbol, int(level))
    if kind == "kline" and len(parts) == 3:
        price_type, symbol, interval = parts
        if (
            price_type in PriceType.__members__
            and _is_contract_id(symbol)
            and interval in KlineInterval.__members__
        ):
            return Kline(symbol, KlineInterval[interval], PriceType[price_type])
    return None


def is_private_channel(name: str) -> bool:
    """True for the channels that need the authenticated connection (doc §1.1)."""
    return name in _PRIVATE


# --- what the user typed -> wire name -----------------------------------------------------


def build_channel(channel: str | ChannelSpec, symbol: str | None = None, **params: Any) -> str:
    """Turn the arguments of `subscribe(channel, *, symbol=None, **params)` into a wire name.

    `channel` is a short name (`"depth"`, with `symbol=` and `level=`), a complete wire name
    (`"depth.cmt_btcusdt.15"`, passed through), or a spec such as `Depth("BTCUSDT")`.
    """
    if isinstance(channel, _SPEC_TYPES):
        _reject_extras(channel.name, symbol, params)
        return channel.name
    if not isinstance(channel, str):
        raise TypeError(f"channel must be a str or a channel spec, not {type(channel).__name__}")
    if channel in _DOCUMENTED_NAMES:
        if channel == "orderbook":
            params = _book_level(params)
        channel = _DOCUMENTED_NAMES[channel]
    if channel in _PRIVATE:
        if symbol is not None:
            raise ValueError(
                f"{channel!r} is a private, account-wide channel and takes no symbol "
                f"(got symbol={symbol!r})"
            )
        _reject_unexpected(channel, params)
        return channel
    if channel in _PARAMETERS:
        _reject_unexpected(channel, params)
        if symbol is None:
            raise ValueError(
                f"channel {channel!r} needs a symbol, e.g. subscribe({channel!r}, symbol='BTCUSDT')"
            )
        if channel == "ticker":
            return Ticker(symbol).name
        if channel == "trades":
            return Trades(symbol).name
        if channel == "depth":
            return Depth(symbol, **params).name
        return Kline(symbol, **params).name
    if parse_channel(channel) is None:
        raise ValueError(_explain_unknown(channel))
    _reject_extras(channel, symbol, params)
    return channel


def _reject_unexpected(channel: str, params: dict[str, Any]) -> None:
    allowed = _PARAMETERS.get(channel, ())
    unexpected = sorted(set(params) - set(allowed))
    if unexpected:
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no parameters"
        raise ValueError(
            f"unexpected parameter(s) for channel {channel!r}: {', '.join(unexpected)} ({takes})"
        )


def _reject_extras(name: str, symbol: str | None, params: dict[str, Any]) -> None:
    if symbol is not None or params:
        given = ", ".join(["symbol", *sorted(params)] if symbol is not None else sorted(params))
        raise ValueError(f"{name!r} is already a complete channel name; drop {given}")


def _explain_unknown(channel: str) -> str:
    kind, dot, _ = channel.partition(".")
    if dot and kind in _TEMPLATES:
        return (
            f"{channel!r} is not a valid {kind} channel name: expected {_TEMPLATES[kind]}; "
            f"or pass channel={kind!r} with symbol=... to have the name built for you"
        )
    if kind.lower() in _MISNOMERS:
        hint = f"did you mean {_MISNOMERS[kind.lower()]}? "
    else:
        close = difflib.get_close_matches(kind, _SHORT_NAMES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown channel {channel!r}; {hint}known channels: {', '.join(_SHORT_NAMES)}"


# --- handler registration -----------------------------------------------------------------


def is_channel_pattern(pattern: str) -> bool:
    """True if `pattern` uses shell wildcards; otherwise it only ever matches itself."""
    return "*" in pattern or "?" in pattern or "[" in pattern


def channel_matches(pattern: str, channel: str) -> bool:
    """Shell-style match (`ticker.*`, `depth.cmt_btcusdt.*`, `*`), case-sensitive like the wire.

    Exact names take the fast path; `*` also matches dots, so `kline.*` covers every kline.
    """
    if not is_channel_pattern(pattern):
        return pattern == channel
    return fnmatch.fnmatchcase(channel, pattern)
