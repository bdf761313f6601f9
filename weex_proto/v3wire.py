"""WEEX v3 on the wire: channel names, requests, and each push as the v2 frame it stands for.

weex-ws has one record model, v2's (`messages`, `records`): so rather than teach every layer a
second shape, a v3 push is rewritten here, once, into the v2 frame with the same meaning
(`{"event":"payload","channel":"ticker.cmt_ethusdt","data":[{"lastPrice":...}]}`), and the
channel names inside weex-ws stay v2's. Only names change: values stay as the exchange sent
them (a number stays a number), fields v2 lacks keep a v2-style name beside the others. Facts
and sources: docs/protocol-v3.md.

Pure functions over decoded JSON. A frame from the server may hold anything: what cannot be
placed on a channel gives the reason as a string (the connection skips the frame with it), and
a row of the wrong shape is passed through as it is, so the v2 parser names the bad field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from .channels import Account, Depth, Fill, Kline, Orders, Positions, Ticker, Trades, parse_channel

__all__ = [
    "INTERVALS",
    "contract_id",
    "push_to_v2",
    "request",
    "v3_symbol",
    "wire_channel",
]

INTERVALS: Final[Mapping[str, str]] = {
    "MINUTE_1": "1m",
    "MINUTE_5": "5m",
    "MINUTE_15": "15m",
    "MINUTE_30": "30m",
    "HOUR_1": "1h",
    "HOUR_2": "2h",
    "HOUR_4": "4h",
    "HOUR_6": "6h",
    "HOUR_8": "8h",
    "HOUR_12": "12h",
    "DAY_1": "1d",
    "WEEK_1": "1w",
    "MONTH_1": "1M",
}
"""v2 kline interval -> its v3 spelling (docs/protocol-v3.md §4)."""
_V2_INTERVALS: Final = {v3: v2 for v2, v3 in INTERVALS.items()}
_PRICE_TYPES: Final = frozenset({"LAST_PRICE", "MARK_PRICE"})
_SYMBOL: Final = re.compile(r"[A-Za-z0-9]{1,40}", re.ASCII)
_PRIVATE_KEYS: Final[Mapping[str, str]] = {
    "account": "collateral",
    "positions": "position",
    "orders": "order",
    "fill": "orderFillTransaction",
}


# --- names ---------------------------------------------------------------------------------


def v3_symbol(contract: str) -> str:
    """`cmt_ethusdt` -> `ETHUSDT`."""
    return contract.removeprefix("cmt_").upper()


def contract_id(symbol: object) -> str | None:
    """`ETHUSDT` -> `cmt_ethusdt`; None for anything that is not a plain symbol."""
    if type(symbol) is not str or not _SYMBOL.fullmatch(symbol):
        return None
    return "cmt_" + symbol.lower()


def wire_channel(channel: str) -> str:
    """A v2 channel name as v3 calls it (`ticker.cmt_ethusdt` -> `ETHUSDT@ticker`); a name
    that is no v2 channel goes out as it is (the server will refuse it)."""
    spec = parse_channel(channel)
    if isinstance(spec, Ticker):
        return f"{v3_symbol(spec.symbol)}@ticker"
    if isinstance(spec, Trades):
        return f"{v3_symbol(spec.symbol)}@trade"
    if isinstance(spec, Depth):
        return f"{v3_symbol(spec.symbol)}@depth{spec.level}"
    if isinstance(spec, Kline):
        interval = INTERVALS[spec.interval.value]
        return f"{v3_symbol(spec.symbol)}@kline_{interval}_{spec.price_type.value}"
    if isinstance(spec, Account | Positions | Orders | Fill):
        return spec.name
    return channel


def request(operation: str, channel: str, request_id: int) -> dict[str, Any]:
    """`{"method":"SUBSCRIBE","params":["ETHUSDT@ticker"],"id":7}` for a v2 channel name."""
    return {"method": operation.upper(), "params": [wire_channel(channel)], "id": request_id}


# --- pushes --------------------------------------------------------------------------------

_TICKER: Final = {
    "p": "priceChange",
    "P": "priceChangePercent",
    "c": "lastPrice",
    "h": "high",
    "l": "low",
    "v": "size",
    "q": "value",
    "n": "trades",
    "m": "markPrice",
    "o": "open",
    "w": "vwap",
    "i": "indexPrice",
    "O": "openTime",
    "C": "closeTime",
}
_TRADE: Final = {
    "T": "time",
    "t": "tradeId",
    "p": "price",
    "q": "size",
    "v": "value",
    "m": "buyerMaker",
}
_CANDLE: Final = {
    "t": "klineTime",
    "T": "closeTime",
    "s": "symbol",
    "i": "interval",
    "o": "open",
    "h": "high",
    "l": "low",
    "c": "close",
    "v": "size",
    "q": "value",
    "n": "trades",
    "V": "takerBuySize",
    "Q": "takerBuyValue",
}


def _renamed(row: object, names: Mapping[str, str]) -> Any:
    """`row` with its v3 keys under their v2 names (unknown keys kept); a non-object as is."""
    if type(row) is not dict:
        return row
    return {names.get(key, key): value for key, value in row.items()}


def _rows(data: object, names: Mapping[str, str], **fields: Any) -> Any:
    if type(data) is not list:
        return data  # the v2 parser says "expected an array"
    rows = []
    for row in data:
        renamed = _renamed(row, names)
        if type(renamed) is dict:
            renamed.update(fields)
        rows.append(renamed)
    return rows


def _levels(levels: object) -> Any:
    """`[["2043.20","40.724"], ...]` as v2's `[{"price":..., "size":...}, ...]`."""
    if type(levels) is not list:
        return levels
    return [
        {"price": level[0], "size": level[1]} if type(level) is list and len(level) == 2 else level
        for level in levels
    ]


def _public(frame: Mapping[str, Any], channel: str, data: Any, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"event": "payload", "channel": channel, **extra, "data": data}
    if "E" in frame:
        result["time"] = frame["E"]
    return result


def _ticker(frame: Mapping[str, Any], symbol: str) -> dict[str, Any]:
    data = _rows(frame.get("d"), _TICKER, symbol=symbol)
    return _public(frame, f"ticker.{symbol}", data)


def _trades(frame: Mapping[str, Any], symbol: str, snapshot: bool) -> dict[str, Any]:
    data = _rows(frame.get("d"), _TRADE)
    extra = {"type": "snapshot"} if snapshot else {}
    return _public(frame, f"trades.{symbol}", data, **extra)


def _depth(frame: Mapping[str, Any], symbol: str, snapshot: bool) -> dict[str, Any] | str:
    level = frame.get("l")
    if type(level) is str and level in ("15", "200"):
        level = int(level)
    if type(level) is not int or level not in (15, 200):
        return "v3 depth push without a depth of 15 or 200 (l)"
    row: dict[str, Any] = {
        "symbol": symbol,
        "level": level,
        "depthType": frame.get("d", "SNAPSHOT" if snapshot else "CHANGED"),
    }
    for v3, v2 in (("U", "startVersion"), ("u", "endVersion")):
        if v3 in frame:
            row[v2] = frame[v3]
    row["bids"] = _levels(frame.get("b"))
    row["asks"] = _levels(frame.get("a"))
    return _public(frame, f"depth.{symbol}.{level}", [row])


def _kline(frame: Mapping[str, Any], symbol: str, snapshot: bool) -> dict[str, Any] | str:
    price_type, rows = frame.get("p"), frame.get("d")
    if type(price_type) is not str or price_type not in _PRICE_TYPES:
        return "v3 kline push without a price type (p)"
    first = rows[0] if type(rows) is list and rows else None
    name = first.get("i") if type(first) is dict else None
    interval = _V2_INTERVALS.get(name) if type(name) is str else None
    if interval is None:
        return "v3 kline push without a known interval (d[0].i)"
    channel = f"kline.{price_type}.{symbol}.{interval}"
    data = _rows(rows, _CANDLE)
    if type(data) is list:
        for row in data:
            if type(row) is dict and "symbol" in row:
                row["symbol"] = contract_id(row["symbol"]) or row["symbol"]
    return _public(frame, channel, data, type="snapshot" if snapshot else "change")


def _private_row(row: object) -> Any:
    """coin -> coinId, symbol -> contractId (`cmt_...`), crossSymbol -> crossContractId."""
    if type(row) is not dict:
        return row
    result = {}
    for key, value in row.items():
        if key == "coin":
            result["coinId"] = value
        elif key == "symbol":
            result["contractId"] = contract_id(value) or value
        elif key == "crossSymbol":
            # "" or "0" when there is none; a symbol otherwise.
            has_letter = type(value) is str and any(char.isalpha() for char in value)
            result["crossContractId"] = (contract_id(value) if has_letter else None) or value
        else:
            result[key] = value
    return result


def _private(frame: Mapping[str, Any], channel: str) -> dict[str, Any]:
    msg: dict[str, Any] = {}
    for v3, v2 in (("msgEvent", "msgEvent"), ("v", "version"), ("E", "time")):
        if v3 in frame:
            msg[v2] = frame[v3]
    rows = frame.get("d")
    data = [_private_row(row) for row in rows] if type(rows) is list else rows
    msg["data"] = {_PRIVATE_KEYS[channel]: data}
    return {"type": "trade-event", "channel": channel, "event": "payload", "msg": msg}


def push_to_v2(frame: Mapping[str, Any]) -> dict[str, Any] | str:
    """The v2 frame a v3 push (`{"e":...}`) stands for, or why it cannot be placed."""
    event = frame.get("e")
    if type(event) is not str:
        return "v3 push without an event name (e)"
    if event in _PRIVATE_KEYS:
        return _private(frame, event)
    kind, snapshot = event.removesuffix("Snapshot"), event.endswith("Snapshot")
    if kind not in ("ticker", "trade", "depth", "kline") or (kind == "ticker" and snapshot):
        return f"unknown v3 event {event[:40]!r}"
    symbol = contract_id(frame.get("s"))
    if symbol is None:
        return f"v3 {kind} push without a symbol (s)"
    if kind == "ticker":
        return _ticker(frame, symbol)
    if kind == "trade":
        return _trades(frame, symbol, snapshot)
    if kind == "depth":
        return _depth(frame, symbol, snapshot)
    return _kline(frame, symbol, snapshot)
