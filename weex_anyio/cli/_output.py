"""How messages are printed: one human line each, or one JSON object per line (`--json`).

JSON lines look like `{"channel", "received_at", "gap", "data"}`, one per record (the client
yields one message per record of a push). `data` is the typed record (field names as in
`weex_proto.messages`, snake_case), or for an order book stream the local book. Decimals are
written as strings, so no digit is lost on the way to another program; a record that does not
parse keeps `data: null` and says why in `error`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

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
from weex_proto.records import OrderBookSnapshot


def is_book(message: WebSocketMessage[Any]) -> bool:
    """A local order book from `stream_order_book`, rather than a raw push."""
    return isinstance(message.source, OrderBookSnapshot)


def message_record(message: WebSocketMessage[Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "channel": message.channel,
        "received_at": message.timestamp,
        "gap": message.gap,
    }
    if is_book(message):
        record["data"] = to_jsonable(message.data)
        return record
    try:
        record["data"] = to_jsonable(message.record)
    except PayloadError as exc:
        record["data"] = None
        record["error"] = str(exc)
    return record


def json_line(message: WebSocketMessage[Any]) -> str:
    return json.dumps(message_record(message), ensure_ascii=False, separators=(",", ":"))


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
