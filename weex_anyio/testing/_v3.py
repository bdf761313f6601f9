"""The simulator's v3 face: channel names, answers, pings, and pushes shaped like WEEX's v3.

The simulated market speaks v2 inside (its channels are `ticker.cmt_btcusdt`, its frames v2's);
a connection opened on a `/v3/` path translates at its edge, with the code here: a v3 name
(`BTCUSDT@ticker`) becomes the v2 channel it asks for, and every push goes out as the v3 frame
with the fields and value types of the frames Weex.Net captured (tests/data/v3; facts in
docs/protocol-v3.md). Written apart from `weex_proto` (which reads v3 the other way round), so
a misreading of the protocol in one does not hide in the other.

v3 fields the simulated market has no source for are filled plausibly: a ticker's open price
(last minus change), weighted average (turnover / volume), index price (the mark) and window
times; a candle's close time; zero taker-buy volumes and trade counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from decimal import Decimal, InvalidOperation
from typing import Any

from ._channels import KLINE_INTERVALS, KLINE_PRICE_TYPES, PRIVATE_CHANNELS

PUBLIC_PATH = "/v3/ws/public"
PRIVATE_PATH = "/v3/ws/private"

INTERVALS = dict(
    zip(
        KLINE_INTERVALS,
        ("1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w", "1M"),
        strict=True,
    )
)
_V2_INTERVALS = {v3: v2 for v2, v3 in INTERVALS.items()}
_INTERVAL_MS = {
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "M": 30 * 86_400_000,
}
_DAY_MS = 86_400_000


def encode(message: object) -> str:
    return json.dumps(message, separators=(",", ":"))


def _symbol(contract: str) -> str:
    return contract.removeprefix("cmt_").upper()


def v2_channel(name: str, symbols: Collection[str]) -> str | None:
    """The v2 channel a v3 name asks for (`BTCUSDT@depth15` -> `depth.cmt_btcusdt.15`), or
    None when it names nothing this market has."""
    if name in PRIVATE_CHANNELS:
        return name
    symbol, at, stream = name.partition("@")
    contract = "cmt_" + symbol.lower()
    if not at or not symbol.isalnum() or contract not in symbols:
        return None
    if stream == "ticker":
        return f"ticker.{contract}"
    if stream == "trade":
        return f"trades.{contract}"
    if stream in ("depth15", "depth200"):
        return f"depth.{contract}.{stream.removeprefix('depth')}"
    kind, _, rest = stream.partition("_")
    interval, _, price_type = rest.partition("_")
    if kind == "kline" and interval in _V2_INTERVALS and price_type in KLINE_PRICE_TYPES:
        return f"kline.{price_type}.{contract}.{_V2_INTERVALS[interval]}"
    return None


def refusal(request_id: object, name: object, code: str = "40020") -> str:
    """The error answer ccxt quotes, `{"result":false,"id":1,"msg":"INVALID_ARGUMENT: invalid
    symbol : ..."}`; over a limit (code 429 on v2) the text is our own, v3's is unknown."""
    if code == "429":
        msg = "RESOURCE_EXHAUSTED: Too many requests"
    else:
        msg = f"INVALID_ARGUMENT: invalid symbol : {name}"
    return encode({"result": False, "id": request_id, "msg": msg})


def answer(request_id: object) -> str:
    return encode({"id": request_id, "result": True})


def ping(private: bool, stamp: str) -> str:
    """`{"event":"ping",...}` on the public socket, `{"type":"ping",...}` on the private one."""
    return encode({"type" if private else "event": "ping", "time": stamp})


def connected(now_ms: int) -> str:
    """The greeting a v3 socket sends when it opens (its fields are not documented)."""
    return encode({"event": "connected", "timestamp": now_ms})


# --- pushes ----------------------------------------------------------------------------------


def _number(text: object) -> int:
    return int(text) if isinstance(text, str) and text.isdigit() else 0


def _ticker(row: dict[str, Any], now_ms: int) -> dict[str, Any]:
    last, change = Decimal(row["lastPrice"]), Decimal(row["priceChange"])
    try:
        vwap = Decimal(row["value"]) / Decimal(row["size"])
    except (InvalidOperation, ZeroDivisionError):
        vwap = last
    return {
        "p": row["priceChange"],
        "P": row["priceChangePercent"],
        "w": str(vwap.quantize(Decimal("0.00000001"))),
        "c": row["lastPrice"],
        "o": str(last - change),
        "h": row["high"],
        "l": row["low"],
        "v": row["size"],
        "q": row["value"],
        "O": now_ms - _DAY_MS,
        "C": now_ms,
        "n": _number(row["trades"]),
        "m": row["markPrice"],
        "i": row["markPrice"],
    }


def _trade(row: dict[str, Any], symbol: str, index: int) -> dict[str, Any]:
    seed = f"{symbol}/{row['time']}/{row['price']}/{row['size']}/{index}".encode()
    digest = hashlib.sha256(seed).hexdigest()
    trade_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return {
        "T": int(row["time"]),
        "t": trade_id,
        "p": row["price"],
        "q": row["size"],
        "v": row["value"],
        "m": row["buyerMaker"],
    }


def _candle(row: dict[str, Any], interval: str) -> dict[str, Any]:
    start = int(row["klineTime"])
    width = int(interval[:-1]) * _INTERVAL_MS[interval[-1]]
    return {
        "t": start,
        "T": start + width,
        "s": _symbol(row["symbol"]),
        "i": interval,
        "o": row["open"],
        "c": row["close"],
        "h": row["high"],
        "l": row["low"],
        "v": row["size"],
        "n": 0,
        "q": row["value"],
        "V": "0",
        "Q": "0",
    }


def _levels(levels: list[dict[str, str]]) -> list[list[str]]:
    return [[level["price"], level["size"]] for level in levels]


def _private_row(row: dict[str, Any]) -> dict[str, Any]:
    renamed = {"coinId": "coin", "contractId": "symbol", "crossContractId": "crossSymbol"}
    result = {}
    for key, value in row.items():
        if key in ("contractId", "crossContractId") and str(value).startswith("cmt_"):
            value = _symbol(value)
        result[renamed.get(key, key)] = value
    return result


def push(frame: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A v2 push of the simulated market as the v3 frame that carries it."""
    channel: str = frame["channel"]
    if channel in PRIVATE_CHANNELS:
        msg = frame["msg"]
        (rows,) = msg["data"].values()
        return {
            "e": channel,
            "E": msg["time"],
            "v": msg["version"],
            "msgEvent": msg["msgEvent"],
            "d": [_private_row(row) for row in rows],
        }
    kind, _, rest = channel.partition(".")
    data = frame["data"]
    if kind == "ticker":
        symbol = _symbol(rest)
        return {"e": "ticker", "E": now_ms, "s": symbol, "d": [_ticker(r, now_ms) for r in data]}
    if kind == "trades":
        symbol = _symbol(rest)
        rows = [_trade(row, symbol, index) for index, row in enumerate(data)]
        return {"e": "trade", "E": now_ms, "s": symbol, "d": rows}
    if kind == "depth":
        (row,) = data
        snapshot = row["depthType"] == "SNAPSHOT"
        return {
            "e": "depthSnapshot" if snapshot else "depth",
            "E": now_ms,
            "s": _symbol(row["symbol"]),
            "U": int(row["startVersion"]),
            "u": int(row["endVersion"]),
            "l": int(row["level"]),
            "d": row["depthType"],
            "b": _levels(row["bids"]),
            "a": _levels(row["asks"]),
        }
    price_type, contract, interval = rest.split(".")
    return {
        "e": "klineSnapshot" if frame.get("type") == "snapshot" else "kline",
        "E": now_ms,
        "s": _symbol(contract),
        "p": price_type,
        "d": [_candle(row, INTERVALS[interval]) for row in data],
    }


def push_text(text: str, now_ms: int) -> str:
    """`push` of an encoded v2 frame, encoded."""
    return encode(push(json.loads(text), now_ms))
