"""Typed, immutable models of the WEEX v2 data pushes, and `parse_push` to build them.

The exchange sends prices, sizes and amounts as decimal strings ("0.01600"); we turn them into
`Decimal` built from that exact text, so no digit (not even a trailing zero) is lost to floats.
The reference docs disagree with themselves about encodings (their tables say String where the
examples show numbers and booleans, and some field names come in two spellings), so every
documented variant is accepted. Anything else is a `PayloadError` naming the channel and field.

Parsing sits on the hot path: values are checked by type and a precompiled pattern, never by
trying a conversion and catching the failure, and incoming mappings are referenced, not copied.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple, NoReturn, TypeAlias

import attrs

from .errors import ProtocolError
from .wire import describe

__all__ = [
    "PRIVATE_RECORD_KEYS",
    "Candle",
    "Collateral",
    "DepthLevels",
    "DepthType",
    "DepthUpdate",
    "Fill",
    "KlineKind",
    "KlineUpdate",
    "Order",
    "OrderStatus",
    "PayloadError",
    "Position",
    "PriceLevel",
    "PrivateRecord",
    "PrivateUpdate",
    "Push",
    "Ticker",
    "Trade",
    "decimal_text",
    "order_status",
    "parse_depth_levels",
    "parse_push",
    "parse_record",
    "unrealized_pnl",
]


class PayloadError(ProtocolError):
    """A data push does not have the documented shape (unknown channel, missing or bad field).

    The message names the channel and the field path, and shows at most a short excerpt of the
    offending value, never the whole frame.
    """


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})

KlineKind: TypeAlias = Literal["change", "snapshot"]
OrderStatus: TypeAlias = Literal["new", "partially_filled", "filled", "canceled", "rejected"]
DepthType: TypeAlias = Literal["SNAPSHOT", "CHANGED"]


# --- Public channels -----------------------------------------------------------------------


@attrs.frozen
class Ticker:
    """24-hour statistics of one contract (`ticker.{contractId}`); the push has no timestamp."""

    symbol: str
    price_change: Decimal
    price_change_percent: Decimal  # a fraction: -0.019637 means -1.96 %
    trades: int
    size: Decimal  # 24 h volume in the base currency
    value: Decimal  # 24 h turnover in the quote currency
    high: Decimal
    low: Decimal
    last_price: Decimal
    mark_price: Decimal


@attrs.frozen
class Candle:
    """One candle; `kline_time` is its open time in ms. There is no "closed" flag on the wire.

    `value` (quote turnover) is None for array-form rows, whose layout is only known up to the
    volume (`[t, o, h, l, c, v, ...]`). `closed` is set by the client's stream once a candle
    with a later `kline_time` has arrived on the channel: this candle is then final.
    """

    symbol: str
    kline_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    size: Decimal
    value: Decimal | None
    closed: bool = False


@attrs.frozen
class KlineUpdate:
    """A `kline.{priceType}.{contractId}.{interval}` push: `change` (incremental) or `snapshot`."""

    channel: str
    kind: KlineKind
    candles: tuple[Candle, ...]


@attrs.frozen
class PriceLevel:
    """One order book level; in a CHANGED update, size 0 means the level is gone."""

    price: Decimal
    size: Decimal


@attrs.frozen
class DepthUpdate:
    """A `depth.{contractId}.{15|200}` push: first a SNAPSHOT, then CHANGED diffs."""

    symbol: str
    level: int
    depth_type: DepthType
    start_version: int
    end_version: int
    asks: tuple[PriceLevel, ...]
    bids: tuple[PriceLevel, ...]


@attrs.frozen
class Trade:
    """One public trade (`trades.{contractId}`); the symbol comes from the channel name."""

    symbol: str
    time: int
    price: Decimal
    size: Decimal
    value: Decimal
    buyer_maker: bool  # True: the seller was the taker (read like REST `isBuyerMaker`)


# --- Private channels ----------------------------------------------------------------------
# Each record types the fields most users need; `raw` is a read-only view of the record exactly
# as received, so nothing the exchange sent is lost.


@attrs.frozen
class Collateral:
    """One collateral (margin account) record from the `account` channel."""

    coin_id: str
    margin_mode: str  # SHARED (cross) or ISOLATED
    cross_contract_id: str
    isolated_position_id: str
    amount: Decimal
    pending_deposit_amount: Decimal
    pending_withdraw_amount: Decimal
    pending_transfer_in_amount: Decimal
    pending_transfer_out_amount: Decimal
    created_time: int
    updated_time: int
    liquidating: bool
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen
class Position:
    """One position record from the `positions` channel."""

    id: str
    coin_id: str
    contract_id: str
    side: str
    margin_mode: str
    separated_mode: str
    leverage: Decimal
    size: Decimal
    open_value: Decimal
    open_fee: Decimal
    funding_fee: Decimal
    isolated_margin: Decimal
    created_time: int
    updated_time: int
    auto_append_isolated_margin: bool
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)
    mark_price: Decimal | None = None
    """The contract's latest mark price the client held when this record arrived (from its
    ticker pushes), or None: the position push itself carries none."""

    @property
    def entry_price(self) -> Decimal | None:
        """Average entry price, `open_value / size` (the push has no such field); None if flat."""
        return self.open_value / self.size if self.size else None

    @property
    def unrealized_pnl(self) -> Decimal | None:
        """`size * mark - open_value` for LONG, `open_value - size * mark` for SHORT (so
        `(mark - entry_price) * size` without the rounding of a division); None without a
        mark price or for a side other than LONG/SHORT."""
        if self.mark_price is None:
            return None
        return unrealized_pnl(self.side, self.size, self.open_value, self.mark_price)


@attrs.frozen
class Order:
    """One order record from the `orders` channel; enums are the exchange's string names."""

    id: str
    client_order_id: str
    coin_id: str
    contract_id: str
    margin_mode: str
    position_side: str
    order_side: str
    order_type: str  # wire key `type`: MARKET, LIMIT, ...
    time_in_force: str
    status: str
    cancel_reason: str
    price: Decimal
    size: Decimal
    reduce_only: bool
    trigger_price: Decimal
    trigger_price_type: str
    leverage: Decimal
    latest_fill_price: Decimal
    cum_fill_size: Decimal
    cum_fill_value: Decimal
    cum_fill_fee: Decimal
    cum_realize_pnl: Decimal
    created_time: int
    updated_time: int
    position_tpsl: bool
    set_open_tp: bool
    set_open_sl: bool
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)

    @property
    def normalized_status(self) -> OrderStatus | None:
        """`status` in the documentation's vocabulary (see `order_status`); None if unknown."""
        return order_status(self.status, self.size, self.cum_fill_size)


@attrs.frozen
class Fill:
    """One fill record from the `fill` channel (wire key `orderFillTransaction`)."""

    id: str
    order_id: str
    coin_id: str
    contract_id: str
    margin_mode: str
    position_side: str
    order_side: str
    fill_size: Decimal
    fill_value: Decimal
    fill_fee: Decimal
    liquidate_fee: Decimal
    realize_pnl: Decimal
    direction: str  # MAKER or TAKER
    created_time: int
    updated_time: int
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)

    @property
    def price(self) -> Decimal | None:
        """Fill price, `fill_value / fill_size` (the push has no such field); None if size is 0."""
        return self.fill_value / self.fill_size if self.fill_size else None


PrivateRecord: TypeAlias = Collateral | Position | Order | Fill


@attrs.frozen
class PrivateUpdate:
    """A private push: the `msg` envelope plus the records under `msg.data.<key>`.

    `version` looks like a per-account sequence shared by all private channels (inferred).
    """

    channel: str
    msg_event: str
    version: int
    time: int
    records: tuple[PrivateRecord, ...]


Push: TypeAlias = Ticker | KlineUpdate | DepthUpdate | Trade | PrivateUpdate


# --- Values derived from a record ----------------------------------------------------------

_LIVE_STATUSES: Final = frozenset({"PENDING", "OPEN", "NEW", "UNTRIGGERED", "TRIGGERED"})
_CANCELED_STATUSES: Final = frozenset({"CANCELED", "CANCELLED", "EXPIRED"})
_REJECTED_STATUSES: Final = frozenset({"REJECTED", "FAILED"})


def order_status(status: str, size: Decimal, cum_fill_size: Decimal) -> OrderStatus | None:
    """WEEX's order `status` in the vocabulary `new`/`partially_filled`/`filled`/`canceled`/
    `rejected`, or None for a status we cannot place (WEEX documents only PENDING for v2).

    A live order (PENDING, OPEN, NEW, UNTRIGGERED, TRIGGERED; also CANCELING, which is not
    final yet) is `new` until something filled, `partially_filled` while `0 < cumFillSize <
    size`, and `filled` once `cumFillSize >= size`. FILLED is `filled`; CANCELED/CANCELLED/
    EXPIRED are `canceled` (even after a partial fill); REJECTED/FAILED are `rejected`.
    """
    name = status.upper()
    if name == "FILLED":
        return "filled"
    if name in _CANCELED_STATUSES:
        return "canceled"
    if name in _REJECTED_STATUSES:
        return "rejected"
    if name == "PARTIALLY_FILLED":
        return "partially_filled"
    if name in _LIVE_STATUSES or name == "CANCELING":
        if cum_fill_size <= 0:
            return "new"
        if size > 0 and cum_fill_size >= size:
            return "filled"
        return "partially_filled"
    return None


def unrealized_pnl(side: str, size: Decimal, open_value: Decimal, mark: Decimal) -> Decimal | None:
    """Unrealized PnL of a position at `mark`: `size*mark - open_value` (LONG) or
    `open_value - size*mark` (SHORT); 0 when flat; None for any other side."""
    if size == 0:
        return Decimal(0)
    name = side.upper()
    if name == "LONG":
        return size * mark - open_value
    if name == "SHORT":
        return open_value - size * mark
    return None


def decimal_text(value: Decimal) -> str:
    """A computed decimal as plain text: no exponent, no float noise (`-1.9637`, `0`)."""
    text = format(value, "f")
    return "0" if text in ("-0", "0") or text.strip("-0.") == "" else text


# --- Reading single values -----------------------------------------------------------------
# Each converter returns None when the value has the wrong type or text; the caller then raises
# a PayloadError that says where. Patterns are ASCII-only and anchored by `fullmatch`, so
# Decimal/int never see whitespace, underscores, non-ASCII digits, NaN or Infinity; the length
# caps keep Decimal exponents in range and int() under Python's digit limit.

_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,5})?", re.ASCII)
_INTEGER_TEXT: Final = re.compile(r"[+-]?\d{1,30}", re.ASCII)
_MISSING: Final = object()


_ZERO: Final = Decimal(0)
_DECIMAL_CACHE_SIZE: Final = 8192
_decimals: dict[str, Decimal] = {}
"""Decimal text -> its (immutable) `Decimal`: prices and sizes repeat from push to push, and
the check and the conversion cost more than a lookup. Emptied when full, so memory is flat."""


def _to_decimal(value: object) -> Decimal | None:
    if type(value) is str:
        found = _decimals.get(value)
        if found is not None:
            return found
        if not _DECIMAL_TEXT.fullmatch(value):
            return None
        if len(_decimals) >= _DECIMAL_CACHE_SIZE:
            _decimals.clear()
        found = _decimals[value] = Decimal(value)
        return found
    if isinstance(value, str):
        return Decimal(value) if _DECIMAL_TEXT.fullmatch(value) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(str(value))
    return None


def _to_int(value: object) -> int | None:
    if isinstance(value, str):
        return int(value) if _INTEGER_TEXT.fullmatch(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return None


def _to_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _to_id(value: object) -> str | None:
    if isinstance(value, str):
        return value
    # Real ids fit in 64 bits; the cap also keeps str() under Python's int digit limit.
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 128:
        return str(value)
    return None


def _excerpt(value: object, limit: int = 40) -> str:
    """A short, safe description of a bad value: its type, plus the text of small scalars."""
    if value is _MISSING:
        return "nothing (missing)"
    return describe(value, limit)


def _fail(channel: str, where: str, expected: str, value: object) -> NoReturn:
    raise PayloadError(
        f"{_excerpt(channel, 80)} push: {where}: expected {expected}, got {_excerpt(value)}"
    )


def _is_mapping(value: object) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _is_list(value: object) -> bool:
    return type(value) is list or type(value) is tuple


class _Record:
    """One JSON object plus where it sits in the frame, so errors can name the exact field."""

    __slots__ = ("channel", "fields", "path")

    def __init__(self, fields: Mapping[str, Any], channel: str, path: str) -> None:
        self.fields = fields
        self.channel = channel
        self.path = path

    def _fail(self, key: str, expected: str, value: object) -> NoReturn:
        _fail(self.channel, f"{self.path}.{key}", expected, value)

    def text(self, key: str) -> str:
        value = self.fields.get(key, _MISSING)
        if isinstance(value, str):
            return value
        self._fail(key, "a string", value)

    def ident(self, key: str) -> str:
        value = self.fields.get(key, _MISSING)
        result = _to_id(value)
        if result is None:
            self._fail(key, "an id (string or integer)", value)
        return result

    def decimal(self, key: str) -> Decimal:
        value = self.fields.get(key, _MISSING)
        result = _to_decimal(value)
        if result is None:
            self._fail(key, "a finite decimal (string or number)", value)
        return result

    def integer(self, key: str) -> int:
        value = self.fields.get(key, _MISSING)
        result = _to_int(value)
        if result is None:
            self._fail(key, "an integer (number or digit string)", value)
        return result

    def flag(self, key: str, alias: str | None = None) -> bool:
        """A boolean under `key`, or under `alias` (the other documented spelling)."""
        value = self.fields.get(key, _MISSING)
        if value is _MISSING and alias is not None:
            value = self.fields.get(alias, _MISSING)
            if value is not _MISSING:
                key = alias
        result = _to_bool(value)
        if result is None:
            self._fail(key, 'a boolean (or "true"/"false")', value)
        return result


def _records(channel: str, container: Any, path: str) -> list[_Record]:
    """The objects in a JSON array, wrapped for field access."""
    if not _is_list(container):
        _fail(channel, path, "an array", container)
    records = []
    for index, item in enumerate(container):
        if not _is_mapping(item):
            _fail(channel, f"{path}[{index}]", "an object", item)
        records.append(_Record(item, channel, f"{path}[{index}]"))
    return records


# --- Public pushes -------------------------------------------------------------------------


def _ticker(row: _Record) -> Ticker:
    return Ticker(
        symbol=row.text("symbol"),
        price_change=row.decimal("priceChange"),
        price_change_percent=row.decimal("priceChangePercent"),
        trades=row.integer("trades"),
        size=row.decimal("size"),
        value=row.decimal("value"),
        high=row.decimal("high"),
        low=row.decimal("low"),
        last_price=row.decimal("lastPrice"),
        mark_price=row.decimal("markPrice"),
    )


def _parse_tickers(channel: str, frame: Mapping[str, Any]) -> tuple[Push, ...]:
    return tuple(_ticker(row) for row in _records(channel, frame.get("data", _MISSING), "data"))


_KLINE_KINDS: Final[Mapping[str, KlineKind]] = {"change": "change", "snapshot": "snapshot"}
_KLINE_ARRAY_FIELDS: Final = ("klineTime", "open", "high", "low", "close", "size")


def _candle_from_array(channel: str, symbol: str, row: Sequence[Any], path: str) -> Candle:
    """A candle row as `[t, o, h, l, c, v, ...]` (seen in third-party code, unconfirmed)."""
    if len(row) < len(_KLINE_ARRAY_FIELDS):
        _fail(channel, path, "an array of at least 6 items [t, o, h, l, c, v]", row)
    numbers: list[Decimal] = []
    for index in range(1, 6):
        number = _to_decimal(row[index])
        if number is None:
            where = f"{path}[{index}] ({_KLINE_ARRAY_FIELDS[index]})"
            _fail(channel, where, "a finite decimal (string or number)", row[index])
        numbers.append(number)
    kline_time = _to_int(row[0])
    if kline_time is None:
        _fail(channel, f"{path}[0] (klineTime)", "an integer (number or digit string)", row[0])
    open_, high, low, close, size = numbers
    return Candle(symbol, kline_time, open_, high, low, close, size, None)


def _candle_from_object(row: _Record) -> Candle:
    return Candle(
        symbol=row.text("symbol"),
        kline_time=row.integer("klineTime"),
        open=row.decimal("open"),
        high=row.decimal("high"),
        low=row.decimal("low"),
        close=row.decimal("close"),
        size=row.decimal("size"),
        value=row.decimal("value"),
    )


def _kline_symbol(channel: str) -> str:
    parts = channel.split(".")
    if len(parts) != 4 or not parts[2]:
        _fail(channel, "channel", "kline.{priceType}.{contractId}.{interval}", channel)
    return parts[2]


def _parse_kline(channel: str, frame: Mapping[str, Any]) -> tuple[Push, ...]:
    kind_value = frame.get("type", _MISSING)
    kind = _KLINE_KINDS.get(kind_value) if isinstance(kind_value, str) else None
    if kind is None:
        _fail(channel, "type", '"change" or "snapshot"', kind_value)
    rows = frame.get("data", _MISSING)
    if not _is_list(rows):
        _fail(channel, "data", "an array", rows)
    candles = []
    for index, row in enumerate(rows):
        path = f"data[{index}]"
        if _is_mapping(row):
            candles.append(_candle_from_object(_Record(row, channel, path)))
        elif _is_list(row):
            candles.append(_candle_from_array(channel, _kline_symbol(channel), row, path))
        else:
            _fail(channel, path, "an object or an array", row)
    return (KlineUpdate(channel, kind, tuple(candles)),)


_DEPTH_TYPES: Final[Mapping[str, DepthType]] = {"SNAPSHOT": "SNAPSHOT", "CHANGED": "CHANGED"}


def _price_levels(row: _Record, side: str) -> tuple[PriceLevel, ...]:
    """Levels are documented as `{price, size}` objects; `[price, size]` pairs are also taken."""
    levels = row.fields.get(side, _MISSING)
    path = f"{row.path}.{side}"
    if not _is_list(levels):
        _fail(row.channel, path, "an array", levels)
    result = []
    known = _decimals  # the decimal cache, read inline: books are long and prices repeat
    for index, level in enumerate(levels):
        # Books can be long, so levels skip the _Record wrapper unless something is wrong.
        if type(level) is dict:
            price_text, size_text = level.get("price"), level.get("size")
            price = known.get(price_text) if type(price_text) is str else None
            if price is None:
                price = _to_decimal(price_text)
            size = known.get(size_text) if type(size_text) is str else None
            if size is None:
                size = _to_decimal(size_text)
            if price is None or size is None:
                entry = _Record(level, row.channel, f"{path}[{index}]")
                price, size = entry.decimal("price"), entry.decimal("size")  # raises
        elif _is_mapping(level):
            price, size = _to_decimal(level.get("price")), _to_decimal(level.get("size"))
            if price is None or size is None:
                entry = _Record(level, row.channel, f"{path}[{index}]")
                price, size = entry.decimal("price"), entry.decimal("size")  # raises
        elif _is_list(level) and len(level) >= 2:
            price, size = _to_decimal(level[0]), _to_decimal(level[1])
            if price is None or size is None:
                _fail(row.channel, f"{path}[{index}]", "a [price, size] pair of decimals", level)
        else:
            _fail(row.channel, f"{path}[{index}]", "a {price, size} object", level)
        if not (price > _ZERO and size >= _ZERO):  # finite: the converters refuse NaN/inf
            shown = f"price {price}, size {size}"
            _fail(row.channel, f"{path}[{index}]", "a price > 0 and a size >= 0", shown)
        result.append(PriceLevel(price, size))
    return tuple(result)


def _depth(row: _Record) -> DepthUpdate:
    type_value = row.fields.get("depthType", _MISSING)
    depth_type = _DEPTH_TYPES.get(type_value) if isinstance(type_value, str) else None
    if depth_type is None:
        row._fail("depthType", '"SNAPSHOT" or "CHANGED"', type_value)
    start_version, end_version = row.integer("startVersion"), row.integer("endVersion")
    if start_version > end_version:
        row._fail("startVersion", f"a version <= endVersion {end_version}", start_version)
    return DepthUpdate(
        symbol=row.text("symbol"),
        level=row.integer("level"),
        depth_type=depth_type,
        start_version=start_version,
        end_version=end_version,
        asks=_price_levels(row, "asks"),
        bids=_price_levels(row, "bids"),
    )


def _parse_depth(channel: str, frame: Mapping[str, Any]) -> tuple[Push, ...]:
    return tuple(_depth(row) for row in _records(channel, frame.get("data", _MISSING), "data"))


class DepthLevels(NamedTuple):
    """One depth update as plain values, for feeding `OrderBook.apply_levels` without a
    `DepthUpdate` and a `PriceLevel` per level: what `parse_depth_levels` returns."""

    symbol: str
    depth_type: DepthType
    start_version: int
    end_version: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]

    @classmethod
    def of(cls, update: DepthUpdate) -> DepthLevels:
        """The same update, from the typed form."""
        return cls(
            update.symbol,
            update.depth_type,
            update.start_version,
            update.end_version,
            [(level.price, level.size) for level in update.bids],
            [(level.price, level.size) for level in update.asks],
        )


def parse_depth_levels(frame: Mapping[str, Any]) -> list[DepthLevels]:
    """`parse_push` of a depth push, as `DepthLevels`: the same values, the same checks, the
    same `PayloadError`s (anything but the documented shape goes through `parse_push` itself,
    which says exactly what is wrong). The fast way into a local book."""
    if type(frame) is dict:
        try:
            result = _plain_depth(frame)
        except (KeyError, TypeError):  # a missing key, or an unhashable value as text
            result = None
        if result is not None:
            return result
    return [
        DepthLevels.of(update) for update in parse_push(frame) if isinstance(update, DepthUpdate)
    ]


_new_tuple: Final = tuple.__new__


def _plain_depth(frame: dict[str, Any]) -> list[DepthLevels] | None:
    """A depth push in exactly the documented shape, or None (then `parse_push` decides).

    One function, no helper call per row or level while the texts are known: a call costs
    about as much as a level. Raises KeyError or TypeError for a shape it does not read (the
    caller falls back then too)."""
    rows, channel = frame["data"], frame["channel"]
    if (
        type(rows) is not list
        or type(channel) is not str
        or not channel.startswith("depth.")
        or frame.get("event", "payload") != "payload"
    ):
        return None
    known = _level_decimals.young.get
    result = []
    for row in rows:
        if type(row) is not dict:
            return None
        depth_type = _DEPTH_TYPES[row["depthType"]]
        symbol, start_text, end_text = row["symbol"], row["startVersion"], row["endVersion"]
        # A version is plain ASCII digits (then int() is exact), else it goes by the pattern.
        if type(start_text) is str and start_text.isascii() and start_text.isdigit():
            start = int(start_text) if len(start_text) <= 30 else None
        else:
            start = _to_int(start_text)
        if end_text == start_text:  # one version a push is the usual case
            end = start
        elif type(end_text) is str and end_text.isascii() and end_text.isdigit():
            end = int(end_text) if len(end_text) <= 30 else None
        else:
            end = _to_int(end_text)
        level = row["level"]
        if (
            type(symbol) is not str
            or start is None
            or end is None
            or start > end
            or (type(level) is not int and _to_int(level) is None)
        ):
            return None
        bids: list[tuple[Decimal, Decimal]] = []
        asks: list[tuple[Decimal, Decimal]] = []
        side, levels = bids, row["bids"]
        while True:  # the bids, then the asks (cheaper than a loop over a tuple of pairs)
            if type(levels) is not list:
                return None
            for entry in levels:
                if type(entry) is not dict:
                    return None
                price_text, size_text = entry["price"], entry["size"]
                # A str subclass may hit an equal str's entry: the same characters, one value.
                price, size = known(price_text), known(size_text)
                if price is None:
                    price = _level_decimals.convert(price_text)
                if size is None:
                    size = _level_decimals.convert(size_text)
                if not price or size is None:  # a known price is >= 0, so a true one is > 0
                    return None
                side.append((price, size))
            if side is asks:
                break
            side, levels = asks, row["asks"]
        result.append(_new_tuple(DepthLevels, (symbol, depth_type, start, end, bids, asks)))
    return result


class _LevelDecimals:
    """Depth price and size texts -> their `Decimal`s, only for decimal text >= 0: a hit is a
    value already checked, so a level costs two lookups. Each `Decimal` is built from its
    exact text ("1.0" and "1.00" stay apart, as the exchange sent them).

    Two generations bound the memory (at most 2 x `size` entries, a few MiB): when the young
    one is full it becomes the old one and the previous old one goes. A text found in the old
    generation moves back to the young one, so the texts in use (the prices near the top, the
    usual sizes) survive the turnover instead of being parsed again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.young: dict[str, Decimal] = {}
        self.old: dict[str, Decimal] = {}

    def clear(self) -> None:
        """Forget every text (for tests and benchmarks: the cache is never wrong, only warm)."""
        self.young.clear()
        self.old.clear()

    def convert(self, text: object) -> Decimal | None:
        """`text` (not in the young generation) as a `Decimal` >= 0, or None: not decimal
        text, or negative."""
        if type(text) is not str:
            return None
        value = self.old.get(text)
        if value is None:
            # The usual text is ASCII digits with at most one dot: decimal text by the pattern,
            # and never negative. Anything else (a sign, an exponent, junk) goes by the pattern.
            if text.isascii() and text.replace(".", "", 1).isdigit():
                value = Decimal(text)
            elif _DECIMAL_TEXT.fullmatch(text):
                value = Decimal(text)
                if value < _ZERO:
                    return None
            else:
                return None
        if len(self.young) >= self.size:
            self.old, self.young = self.young, {}
        self.young[text] = value
        return value


_level_decimals: Final = _LevelDecimals(16384)


def _trade(symbol: str, row: _Record) -> Trade:
    return Trade(
        symbol=symbol,
        time=row.integer("time"),
        price=row.decimal("price"),
        size=row.decimal("size"),
        value=row.decimal("value"),
        buyer_maker=row.flag("buyerMaker"),
    )


def _parse_trades(channel: str, frame: Mapping[str, Any]) -> tuple[Push, ...]:
    symbol = channel[len("trades.") :]
    if not symbol:
        _fail(channel, "channel", "trades.{contractId}", channel)
    rows = _records(channel, frame.get("data", _MISSING), "data")
    return tuple(_trade(symbol, row) for row in rows)


# --- Private pushes ------------------------------------------------------------------------


def _collateral(row: _Record) -> Collateral:
    return Collateral(
        coin_id=row.ident("coinId"),
        margin_mode=row.text("marginMode"),
        cross_contract_id=row.ident("crossContractId"),
        isolated_position_id=row.ident("isolatedPositionId"),
        amount=row.decimal("amount"),
        pending_deposit_amount=row.decimal("pendingDepositAmount"),
        pending_withdraw_amount=row.decimal("pendingWithdrawAmount"),
        pending_transfer_in_amount=row.decimal("pendingTransferInAmount"),
        pending_transfer_out_amount=row.decimal("pendingTransferOutAmount"),
        created_time=row.integer("createdTime"),
        updated_time=row.integer("updatedTime"),
        liquidating=row.flag("liquidating", "isLiquidating"),
        raw=MappingProxyType(row.fields),
    )


def _position(row: _Record) -> Position:
    return Position(
        id=row.ident("id"),
        coin_id=row.ident("coinId"),
        contract_id=row.text("contractId"),
        side=row.text("side"),
        margin_mode=row.text("marginMode"),
        separated_mode=row.text("separatedMode"),
        leverage=row.decimal("leverage"),
        size=row.decimal("size"),
        open_value=row.decimal("openValue"),
        open_fee=row.decimal("openFee"),
        funding_fee=row.decimal("fundingFee"),
        isolated_margin=row.decimal("isolatedMargin"),
        created_time=row.integer("createdTime"),
        updated_time=row.integer("updatedTime"),
        auto_append_isolated_margin=row.flag(
            "autoAppendIsolatedMargin", "isAutoAppendIsolatedMargin"
        ),
        raw=MappingProxyType(row.fields),
    )


def _order(row: _Record) -> Order:
    return Order(
        id=row.ident("id"),
        client_order_id=row.ident("clientOrderId"),
        coin_id=row.ident("coinId"),
        contract_id=row.text("contractId"),
        margin_mode=row.text("marginMode"),
        position_side=row.text("positionSide"),
        order_side=row.text("orderSide"),
        order_type=row.text("type"),
        time_in_force=row.text("timeInForce"),
        status=row.text("status"),
        cancel_reason=row.text("cancelReason"),
        price=row.decimal("price"),
        size=row.decimal("size"),
        reduce_only=row.flag("reduceOnly"),
        trigger_price=row.decimal("triggerPrice"),
        trigger_price_type=row.text("triggerPriceType"),
        leverage=row.decimal("leverage"),
        latest_fill_price=row.decimal("latestFillPrice"),
        cum_fill_size=row.decimal("cumFillSize"),
        cum_fill_value=row.decimal("cumFillValue"),
        cum_fill_fee=row.decimal("cumFillFee"),
        cum_realize_pnl=row.decimal("cumRealizePnl"),
        created_time=row.integer("createdTime"),
        updated_time=row.integer("updatedTime"),
        position_tpsl=row.flag("positionTpsl", "isPositionTpsl"),
        set_open_tp=row.flag("setOpenTp", "isSetOpenTp"),
        set_open_sl=row.flag("setOpenSl", "isSetOpenSl"),
        raw=MappingProxyType(row.fields),
    )


def _fill(row: _Record) -> Fill:
    return Fill(
        id=row.ident("id"),
        order_id=row.ident("orderId"),
        coin_id=row.ident("coinId"),
        contract_id=row.text("contractId"),
        margin_mode=row.text("marginMode"),
        position_side=row.text("positionSide"),
        order_side=row.text("orderSide"),
        fill_size=row.decimal("fillSize"),
        fill_value=row.decimal("fillValue"),
        fill_fee=row.decimal("fillFee"),
        liquidate_fee=row.decimal("liquidateFee"),
        realize_pnl=row.decimal("realizePnl"),
        direction=row.text("direction"),
        created_time=row.integer("createdTime"),
        updated_time=row.integer("updatedTime"),
        raw=MappingProxyType(row.fields),
    )


# channel -> (key under msg.data, record parser)
_PRIVATE_CHANNELS: Final[Mapping[str, tuple[str, Callable[[_Record], PrivateRecord]]]] = {
    "account": ("collateral", _collateral),
    "positions": ("position", _position),
    "orders": ("order", _order),
    "fill": ("orderFillTransaction", _fill),
}


def _parse_private(channel: str, frame: Mapping[str, Any]) -> tuple[Push, ...]:
    key, parse_record = _PRIVATE_CHANNELS[channel]
    msg = frame.get("msg", _MISSING)
    if not _is_mapping(msg):
        _fail(channel, "msg", "an object", msg)
    envelope = _Record(msg, channel, "msg")
    msg_event = envelope.text("msgEvent")
    version = envelope.integer("version")
    time = envelope.integer("time")
    data = msg.get("data", _MISSING)
    if not _is_mapping(data):
        _fail(channel, "msg.data", "an object", data)
    rows = _records(channel, data.get(key, _MISSING), f"msg.data.{key}")
    records = tuple(parse_record(row) for row in rows)
    return (PrivateUpdate(channel, msg_event, version, time, records),)


# --- Entry point ---------------------------------------------------------------------------

_PUBLIC_PREFIXES: Final = (
    ("ticker.", _parse_tickers),
    ("kline.", _parse_kline),
    ("depth.", _parse_depth),
    ("trades.", _parse_trades),
)


def parse_push(frame: Mapping[str, Any]) -> tuple[Push, ...]:
    """Turn one decoded data push (`json.loads` of the text frame) into typed values.

    Returns one `Ticker`, `DepthUpdate` or `Trade` per row of `data`, a single `KlineUpdate`
    for a kline push, or a single `PrivateUpdate` for `account`/`positions`/`orders`/`fill`.
    Raises `PayloadError` for an unknown channel or a frame that breaks the documented shape;
    no other exception escapes, whatever JSON value is passed in.
    """
    if not _is_mapping(frame):
        raise PayloadError(f"expected a push object, got {_excerpt(frame)}")
    channel = frame.get("channel", _MISSING)
    if not isinstance(channel, str):
        raise PayloadError(f"push: channel: expected a string, got {_excerpt(channel)}")
    event = frame.get("event", "payload")
    if event != "payload":
        _fail(channel, "event", '"payload"', event)
    if channel in _PRIVATE_CHANNELS:
        return _parse_private(channel, frame)
    for prefix, parse in _PUBLIC_PREFIXES:
        if channel.startswith(prefix):
            return parse(channel, frame)
    raise PayloadError(f"unknown channel {_excerpt(channel, 80)}")


PRIVATE_RECORD_KEYS: Final[Mapping[str, str]] = {
    channel: key for channel, (key, _) in _PRIVATE_CHANNELS.items()
}
"""Private channel -> the key under `msg.data` that holds its records."""

RecordValue: TypeAlias = Ticker | Trade | Candle | DepthUpdate | PrivateRecord


def parse_record(channel: str, row: Any, index: int = 0) -> RecordValue:
    """One record of a push on `channel`: row `index` of its `data` (or of `msg.data.<key>`
    for a private channel), typed like `parse_push` does. Raises `PayloadError` naming it."""
    if channel in _PRIVATE_CHANNELS:
        key, parse_private_row = _PRIVATE_CHANNELS[channel]
        path = f"msg.data.{key}[{index}]"
        if not _is_mapping(row):
            _fail(channel, path, "an object", row)
        return parse_private_row(_Record(row, channel, path))
    path = f"data[{index}]"
    if channel.startswith("kline."):
        if _is_list(row):
            return _candle_from_array(channel, _kline_symbol(channel), row, path)
        if not _is_mapping(row):
            _fail(channel, path, "an object or an array", row)
        return _candle_from_object(_Record(row, channel, path))
    if not _is_mapping(row):
        _fail(channel, path, "an object", row)
    record = _Record(row, channel, path)
    if channel.startswith("ticker."):
        return _ticker(record)
    if channel.startswith("depth."):
        return _depth(record)
    if channel.startswith("trades.") and len(channel) > len("trades."):
        return _trade(channel[len("trades.") :], record)
    raise PayloadError(f"unknown channel {_excerpt(channel, 80)}")
