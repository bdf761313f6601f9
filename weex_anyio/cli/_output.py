"""How messages are printed: one human line each, or one JSON object per line (`--json`).

A `--json` line is the record's JSON object, the same as a relay's message body (one shape
everywhere, described in the README's *The `weex-ws` command*): `record_data` makes its `data`
and `weex_proto.relaying.encode_body` the object, for both. A record whose `.data` cannot be
built keeps `data: null` and says why in `error`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, cast

from weex_proto.events import WebSocketMessage
from weex_proto.jsonable import to_jsonable
from weex_proto.messages import (
    Candle,
    Collateral,
    DepthUpdate,
    Fill,
    Order,
    PayloadError,
    Position,
    RecordValue,
    Ticker,
    Trade,
)
from weex_proto.records import DepthData, OrderBookSnapshot, RowView, TickerData, TradeData
from weex_proto.relaying import encode_body

_ROW_VIEWS = frozenset({TickerData, TradeData, DepthData})
"""The `.data` of the channels that push most: read through the decoded push."""


def record_data(message: WebSocketMessage[Any]) -> dict[str, Any]:
    """The `data` of a record's JSON object: `message.data` (WEEX's field names and the
    documentation's, the exchange's exact strings; a local book for `stream_order_book`) as
    plain JSON, decimals as exact strings. The relay calls it for every record it publishes
    and `--json` for every line, so both give the same object; it copies the record in one
    pass and converts only the values that are not JSON already. A `RowView`'s values are
    the decoded push's own, JSON already: its copy is the object."""
    data = message.data
    if type(data) in _ROW_VIEWS:
        return cast(RowView, data).as_dict()
    return cast(dict[str, Any], to_jsonable(dict(data)))


def is_book(message: WebSocketMessage[Any]) -> bool:
    """A local order book from `stream_order_book`, rather than a raw push."""
    return isinstance(message.source, OrderBookSnapshot)


def json_line(message: WebSocketMessage[Any]) -> str:
    """One `--json` line: the relay's body for this record (`encode_body`), as text."""
    try:
        data = record_data(message)
    except (TypeError, ValueError, PayloadError) as exc:
        record = {
            "channel": message.channel,
            "received_at": message.timestamp,
            "gap": message.gap,
            "data": None,
            "error": str(exc),
        }
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return encode_body(message.channel, data, message.timestamp, message.gap).decode()


# --------------------------------------------------------------------------- human lines


def clock_time(timestamp: float) -> str:
    """HH:MM:SS.mmm in local time."""
    return dt.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S.%f")[:-3]


def describe(message: WebSocketMessage[Any], *, book_levels: int | None = None) -> str:
    """One human line for the message's record; an order book is one line per level it holds
    (the stream's `level`), or `book_levels`."""
    stamp = clock_time(message.timestamp)
    gap = "  [reconnected: data may be missing]" if message.gap else ""
    if is_book(message):
        lines = describe_book(message.data, levels=book_levels)
        return "\n".join(f"{stamp}  {line}{gap}" for line in lines)
    try:
        record = message.record
    except PayloadError as exc:
        return f"{stamp}  {message.channel}  (unparsable: {exc}){gap}"
    return f"{stamp}  {describe_record(record)}{gap}"


def describe_book(data: Mapping[str, Any], *, levels: int | None = None) -> list[str]:
    """The best level with the spread, then each further level below it, bid beside ask."""
    symbol = data["symbol"]
    if data["resyncing"]:
        return [f"book   {symbol:<14} resyncing ({data.get('reason', '')})"]
    bids, asks = data["bids"], data["asks"]
    if not bids or not asks:
        return [f"book   {symbol:<14} (one side empty)"]
    shown = max(len(bids), len(asks)) if levels is None else levels
    lines = []
    for index in range(min(shown, max(len(bids), len(asks)))):
        bid, bid_size = bids[index] if index < len(bids) else ("", "")
        ask, ask_size = asks[index] if index < len(asks) else ("", "")
        line = (
            f"book   {symbol:<14} bid {bid!s:>12} x {bid_size!s:<9} "
            f"ask {ask!s:>12} x {ask_size!s:<9}"
        )
        lines.append(f"{line} spread {asks[0][0] - bids[0][0]}" if index == 0 else line.rstrip())
    return lines


def describe_record(record: RecordValue) -> str:
    if isinstance(record, Ticker):
        change = record.price_change_percent * 100
        return (
            f"ticker {record.symbol:<14} last {record.last_price:>12}  "
            f"mark {record.mark_price:>12}  24h {change:+.2f}%"
        )
    if isinstance(record, DepthUpdate):
        return (
            f"depth  {record.symbol:<14} {record.depth_type.lower()} "
            f"v{record.start_version}-{record.end_version} "
            f"({len(record.bids)} bids, {len(record.asks)} asks)"
        )
    if isinstance(record, Trade):
        side = "sell" if record.buyer_maker else "buy "
        return f"trade  {record.symbol:<14} {side} {record.size} @ {record.price}"
    if isinstance(record, Candle):
        state = "closed" if record.closed else "open  "
        return (
            f"candle {record.symbol:<14} {state} o {record.open} h {record.high} "
            f"l {record.low} c {record.close} v {record.size}"
        )
    return describe_private(record)


def describe_private(record: Collateral | Position | Order | Fill) -> str:
    if isinstance(record, Collateral):
        return f"account  {record.coin_id} {record.margin_mode} amount {record.amount}"
    if isinstance(record, Position):
        pnl = record.unrealized_pnl
        return (
            f"position {record.contract_id:<14} {record.side} size {record.size} "
            f"value {record.open_value} leverage {record.leverage}"
            + ("" if pnl is None else f" upnl {pnl}")
        )
    if isinstance(record, Order):
        status = record.normalized_status or "?"
        return (
            f"order    {record.contract_id:<14} {record.order_side} {record.order_type} "
            f"{record.size} @ {record.price} {record.status} ({status}) (id {record.id})"
        )
    return (
        f"fill     {record.contract_id:<14} {record.order_side} {record.fill_size} "
        f"value {record.fill_value} fee {record.fill_fee} {record.direction} "
        f"(order {record.order_id})"
    )
