"""One message per record: how a push is split, and what each record's `.data` holds.

A WEEX push carries a list of records (`data[]`, or `msg.data.<key>[]` on private channels).
The hub splits every push once, here, into one `WebSocketMessage` per record, before any
handler or stream sees it; the split only wraps the rows already decoded, and the mapping
(`.data`) and typed record (`.record`) are built on first access.

`.data` holds WEEX's own field names and, beside them, the names the product documentation
uses, with its meaning: `last`, `volume`, `change` (percent) on tickers; `side` ("buy"/"sell",
the taker's) on trades; `balance`, `currency` on the account; `symbol`, `entry_price`,
`unrealized_pnl` on positions; `order_id`, `status` (new/partially_filled/filled/canceled/
rejected) on orders. Values the exchange sent stay its exact strings; values we compute are
`Decimal` arithmetic written as plain strings. A documented name WEEX sends nothing for is
left out, so `.get(key, default)` gives the caller's default instead of a made-up value.

The splitter also keeps the little state a record's meaning needs beyond its frame: the latest
mark price per contract (from ticker pushes; a position's unrealized PnL needs it) and the open
candle per kline channel (a later `klineTime` is what closes a candle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Final

import attrs

from .events import PushFrame, WebSocketMessage, messages_for_rows
from .messages import (
    PRIVATE_RECORD_KEYS,
    Candle,
    Position,
    RecordValue,
    _to_bool,
    _to_decimal,
    _to_int,
    decimal_text,
    order_status,
    parse_record,
    unrealized_pnl,
)

__all__ = [
    "DepthData",
    "Level",
    "OrderBookSnapshot",
    "RecordSplitter",
    "RowView",
    "TickerData",
    "TradeData",
]

Level = tuple[Decimal, Decimal]
_Push = tuple[str, Mapping[str, Any], float, str]  # a push's channel, frame, timestamp, raw
MAX_TRACKED_CHANNELS: Final = 4096
"""Channels whose mark price or open candle the splitter remembers: channel names come from the
server, so the memory is bounded like the router's cache (oldest entry dropped first)."""


# --- the order book, as one consistent record --------------------------------------------


_BOOK_KEYS: Final = ("symbol", "bids", "asks", "version", "timestamp", "resyncing")


@attrs.frozen
class OrderBookSnapshot(Mapping[str, Any]):
    """The top levels of the client's local order book, best first, as exact decimals.

    Typed attributes for typed code (`snapshot.bids[0]`), and a read-only mapping with the
    same keys for documentation-style code (`data.get("bids", [])[:3]`). While the book waits
    for a fresh snapshot, `resyncing` is True, the sides are empty and `reason` says why.
    """

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    version: int | None
    timestamp: float
    resyncing: bool = False
    reason: str | None = None

    @property
    def best_bid(self) -> Level | None:
        """The highest bid, or None if that side is empty."""
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask, or None if that side is empty."""
        return self.asks[0] if self.asks else None

    def _keys(self) -> tuple[str, ...]:
        return (*_BOOK_KEYS, "reason") if self.reason is not None else _BOOK_KEYS

    def __getitem__(self, key: str) -> Any:
        if key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


# --- `.data` of the hot channels: the row itself, read through ------------------------------


_ABSENT: Final[Any] = object()


class RowView(Mapping[str, Any]):
    """A record's `.data` on the channels that push most (tickers, trades, depth): WEEX's own
    row, read through without a copy, and the documentation's names worked out from it when
    asked for, so a message nobody reads costs nothing and `data.get("last")` costs one
    lookup. `derived` maps each documented name to how it is read from the row (or the
    channel); it holds exactly what a copy of the row with the documented names set on it
    would: a documented name that can be worked out wins over a WEEX field of the same name,
    one that cannot is the row's own field or absent (so `.get` gives the caller's default).
    Read-only, like every `.data`."""

    __slots__ = ("_channel", "_row")
    derived: ClassVar[Mapping[str, Callable[[RowView], Any]]] = {}
    renamed: ClassVar[Mapping[str, str]] = {}
    """The documented names that are only another name for one WEEX field (each also in
    `derived`): `get`, the call every reader makes, reads them without a call."""
    _channel: str
    _row: Mapping[str, Any]

    def __init__(self, channel: str, row: Mapping[str, Any]) -> None:
        self._channel = channel
        self._row = row

    def get(self, key: str, default: Any = None) -> Any:
        wire = self.renamed.get(key)
        if wire is not None:
            value = self._row.get(wire, _ABSENT)
            return self._row.get(key, default) if value is _ABSENT else value
        derive = self.derived.get(key)
        if derive is not None:
            value = derive(self)
            if value is not _ABSENT:
                return value
        return self._row.get(key, default)

    def __getitem__(self, key: str) -> Any:
        derive = self.derived.get(key)
        if derive is not None:
            value = derive(self)
            if value is not _ABSENT:
                return value
        return self._row[key]

    def __contains__(self, key: object) -> bool:
        if key in self._row:
            return True
        derive = self.derived.get(key) if type(key) is str else None
        return derive is not None and derive(self) is not _ABSENT

    def __iter__(self) -> Iterator[str]:
        yield from self._row
        yield from self._added_names()

    def __len__(self) -> int:
        return len(self._row) + sum(1 for _ in self._added_names())

    def as_dict(self) -> dict[str, Any]:
        """`dict(self)` in one pass over `derived` (what a relay body or a `--json` line copies
        for every record): the row's fields in their order, each documented name that can be
        worked out set on the copy (a WEEX field of that name keeps its place, the others come
        after, in `derived`'s order)."""
        copied = dict(self._row)
        for key, derive in self.derived.items():
            value = derive(self)
            if value is not _ABSENT:
                copied[key] = value
        return copied

    def _added_names(self) -> Iterator[str]:
        """The documented names present that are not WEEX fields of the row."""
        row = self._row
        for key, derive in self.derived.items():
            if key not in row and derive(self) is not _ABSENT:
                yield key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self)!r})"


def _field(wire: str) -> Callable[[RowView], Any]:
    def read(view: RowView) -> Any:
        return view._row.get(wire, _ABSENT)

    read.__qualname__ = f"read {wire!r}"
    return read


def _ticker_change(view: RowView) -> Any:
    change = _percent_text(view._row.get("priceChangePercent"))
    return _ABSENT if change is None else change


class TickerData(RowView):
    """A ticker's `.data`: `last`, `volume`, `mark` and `change` (a percentage) beside
    WEEX's `lastPrice`, `size`, `markPrice` and `priceChangePercent` (a fraction)."""

    __slots__ = ()
    renamed: ClassVar[Mapping[str, str]] = {
        "last": "lastPrice",
        "volume": "size",
        "mark": "markPrice",
    }
    derived: ClassVar[Mapping[str, Callable[[RowView], Any]]] = {
        **{name: _field(wire) for name, wire in renamed.items()},
        "change": _ticker_change,
    }


def _trade_symbol(view: RowView) -> Any:
    return view._channel[len("trades.") :]


def _trade_side(view: RowView) -> Any:
    buyer_maker = _to_bool(view._row.get("buyerMaker"))
    if buyer_maker is None:
        return _ABSENT
    return "sell" if buyer_maker else "buy"  # the buyer made the book: a seller took it


class TradeData(RowView):
    """A trade's `.data`: `symbol` (from the channel) and `side`, the taker's ("buy"/"sell",
    from WEEX's `buyerMaker`), beside WEEX's fields."""

    __slots__ = ()
    derived: ClassVar[Mapping[str, Callable[[RowView], Any]]] = {
        "symbol": _trade_symbol,
        "side": _trade_side,
    }


class DepthData(RowView):
    """A depth record's `.data`: WEEX's fields as they are."""

    __slots__ = ()


# --- record kinds: the documented view and the typed parse of one row --------------------


def _alias(view: dict[str, Any], row: Mapping[str, Any], name: str, wire: str) -> None:
    if wire in row:
        view[name] = row[wire]


def _lower(value: object) -> str | None:
    return value.lower() if isinstance(value, str) else None


_PERCENT_CACHE_SIZE: Final = 4096
_percents: dict[str, str | None] = {}
"""`priceChangePercent` text -> the documented `change`: the same few values repeat for every
push of a contract, and Decimal arithmetic costs more than the rest of the view."""


def _percent_text(fraction: object) -> str | None:
    """A fraction (WEEX's `priceChangePercent`) as a percentage in plain text, or None."""
    if type(fraction) is str:
        cached = _percents.get(fraction, _percents)
        if cached is not _percents:
            return cached  # type: ignore[return-value]
    value = _to_decimal(fraction)
    text = None if value is None else decimal_text(value.scaleb(2))
    if type(fraction) is str:
        _remember(_percents, fraction, text, _PERCENT_CACHE_SIZE)
    return text


_ARRAY_CANDLE_FIELDS: Final = ("klineTime", "open", "high", "low", "close", "size")


def _candle_view(channel: str, row: Any, context: Any) -> dict[str, Any]:
    if isinstance(row, Mapping):
        view = dict(row)
    else:  # [t, o, h, l, c, v, ...]
        view = dict(zip(_ARRAY_CANDLE_FIELDS, row, strict=False))
    _alias(view, view, "time", "klineTime")
    _alias(view, view, "volume", "size")
    parts = channel.split(".")
    if len(parts) == 4:
        view.setdefault("symbol", parts[2])
        view["price_type"], view["interval"] = parts[1], parts[3]
    view["closed"] = bool(context)
    return view


def _collateral_view(channel: str, row: Any, context: Any) -> dict[str, Any]:
    view = dict(row)
    _alias(view, row, "balance", "amount")
    _alias(view, row, "currency", "coinId")
    return view


def _position_view(channel: str, row: Any, context: Any) -> dict[str, Any]:
    view = dict(row)
    _alias(view, row, "symbol", "contractId")
    size, open_value = _to_decimal(row.get("size")), _to_decimal(row.get("openValue"))
    if size is not None and open_value is not None:
        if size != 0:
            view["entry_price"] = decimal_text(open_value / size)
        mark = _to_decimal(context)
        side = row.get("side")
        if mark is not None and isinstance(side, str):
            view["mark_price"] = context
            pnl = unrealized_pnl(side, size, open_value, mark)
            if pnl is not None:
                view["unrealized_pnl"] = decimal_text(pnl)
    return view


def _order_view(channel: str, row: Any, context: Any) -> dict[str, Any]:
    view = dict(row)
    _alias(view, row, "order_id", "id")
    _alias(view, row, "symbol", "contractId")
    _alias(view, row, "filled_size", "cumFillSize")
    side = _lower(row.get("orderSide"))
    if side is not None:
        view["side"] = side
    weex_status = row.get("status")
    view.pop("status", None)  # `status` is the documented vocabulary, or absent
    if weex_status is not None:
        view["weex_status"] = weex_status
    size, filled = _to_decimal(row.get("size")), _to_decimal(row.get("cumFillSize"))
    if isinstance(weex_status, str) and size is not None and filled is not None:
        status = order_status(weex_status, size, filled)
        if status is not None:
            view["status"] = status
    return view


def _fill_view(channel: str, row: Any, context: Any) -> dict[str, Any]:
    view = dict(row)
    _alias(view, row, "order_id", "orderId")
    _alias(view, row, "symbol", "contractId")
    _alias(view, row, "size", "fillSize")
    _alias(view, row, "fee", "fillFee")
    side = _lower(row.get("orderSide"))
    if side is not None:
        view["side"] = side
    size, value = _to_decimal(row.get("fillSize")), _to_decimal(row.get("fillValue"))
    if size is not None and value is not None and size != 0:
        view["price"] = decimal_text(value / size)
    return view


def _plain_parse(channel: str, row: Any, index: int, context: Any) -> RecordValue:
    return parse_record(channel, row, index)


def _candle_parse(channel: str, row: Any, index: int, context: Any) -> RecordValue:
    candle = parse_record(channel, row, index)
    if context and isinstance(candle, Candle):
        return attrs.evolve(candle, closed=True)
    return candle


def _position_parse(channel: str, row: Any, index: int, context: Any) -> RecordValue:
    position = parse_record(channel, row, index)
    mark = _to_decimal(context)
    if mark is not None and isinstance(position, Position):
        return attrs.evolve(position, mark_price=mark)
    return position


@attrs.frozen
class _Kind:
    """One channel family's `RecordKind`: the documented view and the typed parse of a row.

    The hot channels read their rows through a `RowView` (`row_view`); the others build
    their view, a dict with the documented names computed, on first access (`view`)."""

    name: str
    parse: Callable[[str, Any, int, Any], Any]
    view: Callable[[str, Any, Any], dict[str, Any]] | None = None
    row_view: type[RowView] | None = None

    def data(self, channel: str, source: Any, context: Any) -> Mapping[str, Any]:
        if self.row_view is not None:
            return self.row_view(channel, source)
        assert self.view is not None
        return MappingProxyType(self.view(channel, source, context))


TICKER = _Kind("ticker", _plain_parse, row_view=TickerData)
TRADE = _Kind("trade", _plain_parse, row_view=TradeData)
CANDLE = _Kind("candle", _candle_parse, _candle_view)
DEPTH = _Kind("depth", _plain_parse, row_view=DepthData)
_PRIVATE_KINDS: Final[Mapping[str, _Kind]] = {
    "account": _Kind("collateral", _plain_parse, _collateral_view),
    "positions": _Kind("position", _position_parse, _position_view),
    "orders": _Kind("order", _plain_parse, _order_view),
    "fill": _Kind("fill", _plain_parse, _fill_view),
}
_PUBLIC_KINDS: Final[Mapping[str, _Kind]] = {
    "ticker": TICKER,
    "trades": TRADE,
    "kline": CANDLE,
    "depth": DEPTH,
}


# --- the splitter -------------------------------------------------------------------------


class _OpenCandle:
    """The latest candle of a kline channel, with the push it came in."""

    __slots__ = ("index", "kline_time", "push", "row")

    def __init__(self, kline_time: int, row: Any, push: _Push, index: int) -> None:
        self.kline_time = kline_time
        self.row = row
        self.push = push
        self.index = index


def _remember(
    memory: dict[str, Any], key: str, value: Any, limit: int = MAX_TRACKED_CHANNELS
) -> None:
    if key not in memory and len(memory) >= limit:
        del memory[next(iter(memory))]  # dicts keep insertion order
    memory[key] = value


def _kind_of(channel: str) -> tuple[_Kind | None, str | None]:
    """The record kind of `channel` (None if unknown) and, on private channels, the key of
    its records under `msg.data`."""
    private_key = PRIVATE_RECORD_KEYS.get(channel)
    if private_key is not None:
        return _PRIVATE_KINDS[channel], private_key
    return _PUBLIC_KINDS.get(channel.partition(".")[0]), None


class SplitError(Exception):
    """A push whose record list is not a list of records: nothing in it can be delivered."""


class RecordSplitter:
    """Splits pushes into per-record messages; remembers mark prices and open candles."""

    def __init__(self) -> None:
        self.marks: dict[str, str] = {}
        """Ticker channel -> the `markPrice` text of its latest record."""
        self._candles: dict[str, _OpenCandle] = {}
        self._kinds: dict[str, tuple[_Kind | None, str | None]] = {}
        """Channel -> its record kind and private record key: `_kind_of`, remembered."""

    def mark_price(self, contract_id: str) -> str | None:
        """The latest mark price seen for `contract_id` on its ticker channel, or None."""
        return self.marks.get(f"ticker.{contract_id}")

    def forget_candles(self, channels: Iterable[str]) -> None:
        """After a reconnect the open candles of its `channels` may have missed updates:
        closing them with the last values seen would present an incomplete candle as final,
        so they are dropped. Candles carried by other connections are kept."""
        for channel in channels:
            self._candles.pop(channel, None)

    def _learn_kind(self, channel: str) -> tuple[_Kind | None, str | None]:
        """`_kind_of(channel)`, remembered in `_kinds` (a bounded memo: names come from the
        server)."""
        found = _kind_of(channel)
        _remember(self._kinds, channel, found)
        return found

    def split(self, push: PushFrame) -> list[WebSocketMessage[Any]]:
        """One message per record of `push`; raises `SplitError` if it has no record list."""
        return self.split_push(push.channel, push.frame, push.timestamp, push.raw)

    def split_push(
        self, channel: str, frame: Mapping[str, Any], timestamp: float, raw: str
    ) -> list[WebSocketMessage[Any]]:
        """`split` for a push given as its fields (the hub's hot path builds no `PushFrame`)."""
        kind, private_key = self._kinds.get(channel) or self._learn_kind(channel)
        rows = frame.get("data") if private_key is None else None
        if type(rows) is not list or kind is None:  # a private push, or a bad one
            rows = self._rows(channel, frame, kind, private_key)
        assert kind is not None  # `_rows` refused an unknown channel
        if not (len(rows) == 1 and type(rows[0]) is dict):  # one object: nearly every push
            self._check_rows(channel, rows, kind, private_key)
        if kind is TICKER:
            mark = rows[-1].get("markPrice") if rows else None
            if type(mark) is not str or mark != self.marks.get(channel):
                self._note_marks(channel, rows)
        elif kind is CANDLE:
            return self._candle_messages((channel, frame, timestamp, raw), rows)
        elif channel == "positions":
            return self._position_messages(channel, frame, timestamp, raw, rows, kind)
        return messages_for_rows(channel, frame, timestamp, raw, rows, kind)

    def observe(self, channel: str, frame: Mapping[str, Any], timestamp: float, raw: str) -> None:
        """What `split_push` does for a push nobody reads, without building its messages:
        check it (`SplitError` as there) and keep what later records need from it, mark
        prices (a position's PnL) and open candles."""
        kind, private_key = self._kinds.get(channel) or self._learn_kind(channel)
        rows = self._rows(channel, frame, kind, private_key)
        if not (len(rows) == 1 and type(rows[0]) is dict):
            self._check_rows(channel, rows, kind, private_key)
        if kind is TICKER:
            self._note_marks(channel, rows)
        elif kind is CANDLE:
            self._candle_messages((channel, frame, timestamp, raw), rows)

    @staticmethod
    def _rows(
        channel: str, frame: Mapping[str, Any], kind: _Kind | None, private_key: str | None
    ) -> list[Any]:
        if private_key is None:
            rows = frame.get("data")
        else:
            msg = frame.get("msg")
            data = msg.get("data") if isinstance(msg, Mapping) else None
            rows = data.get(private_key) if isinstance(data, Mapping) else None
        if kind is None:
            raise SplitError(f"no records to split on unknown channel {channel[:80]!r}")
        if type(rows) is not list:
            where = "data" if private_key is None else f"msg.data.{private_key}"
            raise SplitError(f"{channel[:80]} push: {where} is not an array")
        return rows

    @staticmethod
    def _check_rows(
        channel: str, rows: list[Any], kind: _Kind | None, private_key: str | None
    ) -> None:
        for index, row in enumerate(rows):
            if type(row) is not dict and not (
                isinstance(row, Mapping) or (kind is CANDLE and type(row) is list)
            ):
                where = "data" if private_key is None else f"msg.data.{private_key}"
                raise SplitError(f"{channel[:80]} push: {where}[{index}] is not an object")

    @staticmethod
    def _message(
        channel: str,
        frame: Mapping[str, Any],
        timestamp: float,
        raw: str,
        row: Any,
        kind: _Kind,
        index: int,
        context: Any = None,
    ) -> WebSocketMessage[Any]:
        return WebSocketMessage(channel, frame, timestamp, raw, False, row, kind, index, context)

    def _position_messages(
        self,
        channel: str,
        frame: Mapping[str, Any],
        timestamp: float,
        raw: str,
        rows: list[Any],
        kind: _Kind,
    ) -> list[WebSocketMessage[Any]]:
        """Positions carry the latest mark price of their contract, for the unrealized PnL.
        (A method of its own: a comprehension in `split_push` would cost every push a cell
        per variable it reads.)"""
        return [
            self._message(channel, frame, timestamp, raw, row, kind, index, self._mark_of(row))
            for index, row in enumerate(rows)
        ]

    def _mark_of(self, position: Mapping[str, Any]) -> str | None:
        contract = position.get("contractId")
        return self.marks.get(f"ticker.{contract}") if type(contract) is str else None

    def _note_marks(self, channel: str, rows: list[Any]) -> None:
        known = self.marks.get(channel)
        for row in reversed(rows):
            mark = row.get("markPrice")
            if mark == known and type(mark) is str:
                return  # unchanged since the last push: already checked and remembered
            if _to_decimal(mark) is not None:
                _remember(self.marks, channel, mark if isinstance(mark, str) else str(mark))
                return

    def _candle_messages(self, push: _Push, rows: list[Any]) -> list[WebSocketMessage[Any]]:
        """Candles in order, each closed once a later `klineTime` has been seen. The open
        candle of an earlier push is sent again, closed (with the frame it came in), when
        the first later one arrives; within one push a candle followed by a later one is
        sent once, closed."""
        channel = push[0]
        current = self._candles.get(channel)
        out: list[list[Any]] = []  # [push, row, index, closed]
        current_entry: list[Any] | None = None  # current's entry in `out`, if it is from here
        for index, row in enumerate(rows):
            first = row.get("klineTime") if isinstance(row, Mapping) else (row[0] if row else None)
            kline_time = _to_int(first)
            if kline_time is None:  # unusable: delivered as is, `.record` will say why
                out.append([push, row, index, False])
                continue
            if current is not None and kline_time < current.kline_time:
                out.append([push, row, index, True])  # older than the open candle: final
                continue
            if current is not None and kline_time > current.kline_time:
                if current_entry is not None:
                    current_entry[3] = True
                else:  # the earlier push's candle, now known to be final
                    out.append([current.push, current.row, current.index, True])
            entry = [push, row, index, False]
            out.append(entry)
            current, current_entry = _OpenCandle(kline_time, row, push, index), entry
        if current is not None:
            _remember(self._candles, channel, current)
        messages = []
        for (channel, frame, timestamp, raw), row, index, closed in out:
            messages.append(
                self._message(channel, frame, timestamp, raw, row, CANDLE, index, closed)
            )
        return messages
