"""A seeded toy market: random-walk prices, a versioned order book, public trades and candles.

Everything is driven by one `random.Random` and by the `now` passed to `step()`, so the same seed
gives the same sequence of books, trades and candles. Prices and sizes are kept as integers
(ticks and lots) and only turned into fixed-precision decimal strings on the way out, which is
how the exchange encodes them (protocol doc §4.3).

Message shapes follow the doc examples key for key (§4.1). Depth sequencing uses the inferred
rule of §4.1.3: a SNAPSHOT carries the book at version V (startVersion = endVersion = V), and each
CHANGED frame has startVersion = previous endVersion + 1, with size "0" meaning "level removed".
Both depth channels of a contract share one version counter, and each gets a CHANGED frame on
every step (possibly with empty sides), so continuity can be checked per channel.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs

from ._channels import DEPTH_LEVELS, KLINE_INTERVALS, KLINE_PRICE_TYPES, PublicChannel

Json = dict[str, Any]

BOOK_LEVELS = 200
_CANDLE_HISTORY = 10
_SNAPSHOT_START_VERSION = (3_000_000_000, 3_600_000_000)


@attrs.frozen
class SymbolSpec:
    """How a contract's numbers look on the wire: decimals of a price tick and of a size lot."""

    base_price: Decimal
    price_decimals: int
    size_decimals: int


_KNOWN_SPECS = {
    "cmt_btcusdt": SymbolSpec(Decimal("102600.0"), 1, 5),
    "cmt_ethusdt": SymbolSpec(Decimal("2450.00"), 2, 4),
    "cmt_solusdt": SymbolSpec(Decimal("170.000"), 3, 2),
}
_DEFAULT_SPEC = SymbolSpec(Decimal("1.0000"), 4, 1)


def spec_for(symbol: str) -> SymbolSpec:
    return _KNOWN_SPECS.get(symbol, _DEFAULT_SPEC)


def fixed(units: int, decimals: int) -> str:
    """`units * 10**-decimals` as an exact fixed-point string: fixed(91500, 5) == "0.91500"."""
    sign = "-" if units < 0 else ""
    digits = str(abs(units))
    if decimals == 0:
        return sign + digits
    digits = digits.rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


def decimal_text(value: Decimal, places: int) -> str:
    """A Decimal rounded to `places` decimals, never written as "-0.00"."""
    quantized = value.quantize(Decimal(1).scaleb(-places))
    if quantized == 0:
        quantized = abs(quantized)
    return f"{quantized:f}"


# -- candles --------------------------------------------------------------------------------------

_DAY_MS = 86_400_000
_FIXED_INTERVAL_MS = {
    "MINUTE_1": 60_000,
    "MINUTE_5": 300_000,
    "MINUTE_15": 900_000,
    "MINUTE_30": 1_800_000,
    "HOUR_1": 3_600_000,
    "HOUR_2": 7_200_000,
    "HOUR_4": 14_400_000,
    "HOUR_6": 21_600_000,
    "HOUR_8": 28_800_000,
    "HOUR_12": 43_200_000,
    "DAY_1": _DAY_MS,
}


def candle_start(interval: str, now_ms: int) -> int:
    """Open time (ms, UTC) of the candle containing `now_ms`; weeks start on Monday."""
    if interval in _FIXED_INTERVAL_MS:
        return now_ms - now_ms % _FIXED_INTERVAL_MS[interval]
    if interval == "WEEK_1":
        # 1970-01-01 was a Thursday; the first Monday was four days later.
        return now_ms - (now_ms - 4 * _DAY_MS) % (7 * _DAY_MS)
    moment = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
    first = dt.datetime(moment.year, moment.month, 1, tzinfo=dt.UTC)
    return int(first.timestamp() * 1000)


@attrs.define
class _Candle:
    start_ms: int
    open: int
    high: int
    low: int
    close: int
    lots: int = 0
    value: Decimal = Decimal(0)

    def add(self, price: int, lots: int, value: Decimal) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.lots += lots
        self.value += value


# -- one contract ---------------------------------------------------------------------------------


_Views = tuple[dict[int, int], dict[int, int]]
"""The asks and bids one depth channel shows."""


@attrs.frozen
class _Trade:
    time_ms: int
    price: int
    lots: int
    value: Decimal
    buyer_maker: bool


class _Contract:
    """Book, ticker statistics, trades and candles of one symbol."""

    def __init__(self, symbol: str, rng: random.Random, now_ms: int) -> None:
        self.symbol = symbol
        self.spec = spec_for(symbol)
        self._rng = rng
        self._price_scale = 10**self.spec.price_decimals
        self._size_unit = int(10 ** max(self.spec.size_decimals - 3, 0))
        mid = int(self.spec.base_price * self._price_scale * Decimal(rng.uniform(0.95, 1.05)))
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self._best: tuple[int, int] | None = None  # (bid, ask) while the book is unchanged
        self._build_book(mid)
        self.version = rng.randint(*_SNAPSHOT_START_VERSION)
        self.pending_gap = 0
        self._views = {n: self._view(n) for n in DEPTH_LEVELS}
        # The latest step's depth changes: views before and after, formatted when first read
        # (most contracts of a big market have no depth subscriber).
        self._steps: dict[int, tuple[int, int, _Views, _Views]] = {}
        self._changes: dict[int, tuple[int, int, Json]] = {}
        self.trades: list[_Trade] = []
        self.last = self.best_ask
        self._open_24h = self.last
        self._high_24h = self.last + rng.randint(0, 2000)
        self._low_24h = max(self.last - rng.randint(0, 2000), 1)
        self._trade_count = rng.randint(10_000, 50_000)
        self._volume_lots = rng.randint(10_000, 500_000) * self._size_unit * 10
        self._turnover = self._value(self.last, self._volume_lots)
        self._candles: dict[tuple[str, str], deque[_Candle]] = {}
        for price_type in KLINE_PRICE_TYPES:
            for interval in KLINE_INTERVALS:
                price = self._price_for(price_type)
                start = candle_start(interval, now_ms)
                first = _Candle(start, price, price, price, price)
                self._candles[price_type, interval] = deque([first], maxlen=_CANDLE_HISTORY)

    # -- numbers ----------------------------------------------------------------------------

    @property
    def best_bid(self) -> int:
        if self._best is None:
            self._best = (max(self.bids), min(self.asks))
        return self._best[0]

    @property
    def best_ask(self) -> int:
        if self._best is None:
            self._best = (max(self.bids), min(self.asks))
        return self._best[1]

    @property
    def mark(self) -> int:
        return (self.best_bid + self.best_ask) // 2

    def price_text(self, ticks: int) -> str:
        return fixed(ticks, self.spec.price_decimals)

    def size_text(self, lots: int) -> str:
        return fixed(lots, self.spec.size_decimals)

    def price_decimal(self, ticks: int) -> Decimal:
        return Decimal(ticks).scaleb(-self.spec.price_decimals)

    def _value(self, ticks: int, lots: int) -> Decimal:
        return Decimal(ticks * lots).scaleb(-(self.spec.price_decimals + self.spec.size_decimals))

    def _random_lots(self, low: int = 1, high: int = 5000) -> int:
        return self._rng.randint(low, high) * self._size_unit

    def _price_for(self, price_type: str) -> int:
        return self.last if price_type == "LAST_PRICE" else self.mark

    # -- order book -------------------------------------------------------------------------

    def _build_book(self, mid: int) -> None:
        self._best = None
        self._fill_side(self.bids, mid - 1, -1)
        self._fill_side(self.asks, mid + 1, +1)

    def _fill_side(self, side: dict[int, int], best: int, direction: int) -> None:
        """Top the side up to BOOK_LEVELS levels, extending away from `best`, then trim."""
        if not side:
            side[best] = self._random_lots()
        if len(side) < BOOK_LEVELS:
            deepest = min(side) if direction < 0 else max(side)
            while len(side) < BOOK_LEVELS:
                step = 1 if self._rng.random() < 0.9 else 2
                price = deepest + direction * step
                if price <= 0:
                    break
                side[price] = self._random_lots()
                deepest = price  # each new level is the deepest one
        if len(side) > BOOK_LEVELS:
            ordered = sorted(side, reverse=direction < 0)
            for price in ordered[BOOK_LEVELS:]:
                del side[price]

    def _move_book(self, mid: int) -> None:
        self._best = None
        rng = self._rng
        spread = 1 if rng.random() < 0.7 else 2
        best_bid = max(mid - spread // 2, 1)
        best_ask = best_bid + spread
        for price in [p for p in self.bids if p > best_bid]:
            del self.bids[price]
        for price in [p for p in self.asks if p < best_ask]:
            del self.asks[price]
        old_bid = max(self.bids, default=best_bid - BOOK_LEVELS)
        old_ask = min(self.asks, default=best_ask + BOOK_LEVELS)
        for price in range(best_bid, old_bid, -1):
            if price == best_bid or rng.random() < 0.9:
                self.bids[price] = self._random_lots()
        for price in range(best_ask, old_ask):
            if price == best_ask or rng.random() < 0.9:
                self.asks[price] = self._random_lots()
        for _ in range(rng.randint(1, 4)):
            side, direction = (self.bids, -1) if rng.random() < 0.5 else (self.asks, +1)
            best = max(side) if direction < 0 else min(side)
            price = best + direction * rng.randint(0, 20)
            if price != best and price in side and rng.random() < 0.3:
                del side[price]
            else:
                side[price] = self._random_lots()
        self._fill_side(self.bids, best_bid, -1)
        self._fill_side(self.asks, best_ask, +1)

    def _view(
        self, levels: int, ordered: tuple[list[int], list[int]] | None = None
    ) -> tuple[dict[int, int], dict[int, int]]:
        asks, bids = ordered if ordered is not None else self._ordered()
        return (
            {p: self.asks[p] for p in asks[:levels]},
            {p: self.bids[p] for p in bids[:levels]},
        )

    def _ordered(self) -> tuple[list[int], list[int]]:
        """Ask prices and bid prices, best first (sorted once for every view of a step)."""
        return sorted(self.asks), sorted(self.bids, reverse=True)

    def _levels(self, entries: Iterable[tuple[int, int]]) -> list[dict[str, str]]:
        # A removed level is written as a bare "0", as in the doc's CHANGED example.
        return [
            {"price": self.price_text(p), "size": self.size_text(s) if s else "0"}
            for p, s in entries
        ]

    def depth_frame(self, levels: int, depth_type: str, start: int, end: int, body: Json) -> Json:
        return {
            "startVersion": str(start),
            "endVersion": str(end),
            "level": levels,
            "depthType": depth_type,
            "symbol": self.symbol,
            **body,
        }

    def depth_snapshot(self, levels: int) -> Json:
        asks, bids = self._view(levels)
        body = {
            "asks": self._levels(sorted(asks.items())),
            "bids": self._levels(sorted(bids.items(), reverse=True)),
        }
        return self.depth_frame(levels, "SNAPSHOT", self.version, self.version, body)

    # -- one step -----------------------------------------------------------------------------

    def step(self, now_ms: int) -> None:
        before_bids, before_asks = dict(self.bids), dict(self.asks)
        mid = max(self.mark + round(self._rng.gauss(0, 4)), 2)
        self._move_book(mid)
        touched = _count_changes(before_bids, self.bids) + _count_changes(before_asks, self.asks)
        start = self.version + 1 + self.pending_gap
        self.pending_gap = 0
        self.version = start + max(touched, 1) - 1
        self._changes = {}
        ordered = self._ordered()
        self._best = (ordered[1][0], ordered[0][0])
        for levels in DEPTH_LEVELS:
            old = self._views[levels]
            self._views[levels] = new = self._view(levels, ordered)
            self._steps[levels] = (start, self.version, old, new)
        self._trade(now_ms)
        self._update_candles(now_ms)

    @property
    def changes(self) -> dict[int, tuple[int, int, Json]]:
        """Per depth level: (startVersion, endVersion, body) of the latest step's CHANGED."""
        for levels, (start, end, (old_asks, old_bids), (new_asks, new_bids)) in self._steps.items():
            if levels not in self._changes:
                body = {
                    "asks": self._levels(_diff(old_asks, new_asks, reverse=False)),
                    "bids": self._levels(_diff(old_bids, new_bids, reverse=True)),
                }
                self._changes[levels] = (start, end, body)
        return self._changes

    def _trade(self, now_ms: int) -> None:
        self.trades = []
        for _ in range(self._rng.randint(1, 3)):
            buyer_maker = self._rng.random() < 0.5
            price = self.best_bid if buyer_maker else self.best_ask
            lots = self._random_lots(1, 200)
            value = self._value(price, lots)
            self.trades.append(_Trade(now_ms, price, lots, value, buyer_maker))
            self.last = price
            self._high_24h = max(self._high_24h, price)
            self._low_24h = min(self._low_24h, price)
            self._trade_count += 1
            self._volume_lots += lots
            self._turnover += value

    def _update_candles(self, now_ms: int) -> None:
        lots = sum(t.lots for t in self.trades)
        value = sum((t.value for t in self.trades), Decimal(0))
        prices = {"LAST_PRICE": self.last, "MARK_PRICE": self.mark}  # the book is still now
        starts = {interval: candle_start(interval, now_ms) for interval in KLINE_INTERVALS}
        for (price_type, interval), history in self._candles.items():
            price = prices[price_type]
            start = starts[interval]
            if history[-1].start_ms != start:
                history.append(_Candle(start, price, price, price, price))
            history[-1].add(price, lots, value)

    # -- messages -----------------------------------------------------------------------------

    def ticker(self) -> Json:
        change = self.last - self._open_24h
        percent = Decimal(change) / Decimal(self._open_24h)
        return {
            "symbol": self.symbol,
            "priceChange": self.price_text(change),
            "priceChangePercent": decimal_text(percent, 6),
            "trades": str(self._trade_count),
            "size": self.size_text(self._volume_lots),
            "value": decimal_text(self._turnover, self.spec.price_decimals),
            "high": self.price_text(self._high_24h),
            "low": self.price_text(self._low_24h),
            "lastPrice": self.price_text(self.last),
            "markPrice": self.price_text(self.mark),
        }

    def trade_rows(self) -> list[Json]:
        return [
            {
                "time": str(t.time_ms),
                "price": self.price_text(t.price),
                "size": self.size_text(t.lots),
                "value": decimal_text(t.value, 6),
                "buyerMaker": t.buyer_maker,
            }
            for t in self.trades
        ]

    def candle_rows(self, price_type: str, interval: str, *, history: bool) -> list[Json]:
        candles = self._candles[price_type, interval]
        chosen = list(candles) if history else [candles[-1]]
        return [
            {
                "symbol": self.symbol,
                "klineTime": str(c.start_ms),
                "size": self.size_text(c.lots),
                "value": decimal_text(c.value, 6),
                "high": self.price_text(c.high),
                "low": self.price_text(c.low),
                "open": self.price_text(c.open),
                "close": self.price_text(c.close),
            }
            for c in chosen
        ]


def _changed(before: dict[int, int], after: dict[int, int]) -> set[int]:
    """Prices whose size differs (added, removed or resized): the items in only one of them."""
    return {price for price, _ in before.items() ^ after.items()}


def _count_changes(before: dict[int, int], after: dict[int, int]) -> int:
    return len(_changed(before, after))


def _diff(old: dict[int, int], new: dict[int, int], *, reverse: bool) -> list[tuple[int, int]]:
    """Levels whose size changed, in book order; a level that left the view gets size 0."""
    return [(p, new.get(p, 0)) for p in sorted(_changed(old, new), reverse=reverse)]


# -- the market -----------------------------------------------------------------------------------


class Market:
    """All simulated contracts; `step()` advances them together by one tick."""

    def __init__(self, symbols: Iterable[str], rng: random.Random, now: float) -> None:
        now_ms = int(now * 1000)
        self._contracts = {symbol: _Contract(symbol, rng, now_ms) for symbol in symbols}
        self.steps = 0

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._contracts)

    def spec(self, symbol: str) -> SymbolSpec:
        return self._contracts[symbol].spec

    def last_price(self, symbol: str) -> Decimal:
        contract = self._contracts[symbol]
        return contract.price_decimal(contract.last)

    def depth_version(self, symbol: str) -> int:
        return self._contracts[symbol].version

    def restart_versions(self, symbol: str, version: int) -> None:
        """`symbol`'s depth versions start again at `version` (the next CHANGED starts one
        past it), as after a server restart; the book itself is unchanged."""
        self._contracts[symbol].version = version

    def inject_gap(self, symbol: str, skipped: int) -> None:
        """Make the next CHANGED frame of `symbol` start `skipped` versions too late."""
        self._contracts[symbol].pending_gap += skipped

    def step(self, now: float) -> None:
        now_ms = int(now * 1000)
        for contract in self._contracts.values():
            contract.step(now_ms)
        self.steps += 1

    def initial_messages(self, channel: PublicChannel) -> list[Json]:
        """What a fresh subscriber gets straight after the ack: depth and kline snapshots."""
        contract = self._contracts[channel.symbol]
        if channel.kind == "depth":
            data = [contract.depth_snapshot(channel.levels)]
            return [{"event": "payload", "channel": channel.name, "data": data}]
        if channel.kind == "kline":
            rows = contract.candle_rows(channel.price_type, channel.interval, history=True)
            return [{"event": "payload", "type": "snapshot", "channel": channel.name, "data": rows}]
        return []

    def update_message(self, channel: PublicChannel) -> Json | None:
        """The push for `channel` produced by the latest step (None before the first step)."""
        if self.steps == 0:
            return None
        contract = self._contracts[channel.symbol]
        if channel.kind == "ticker":
            return {"event": "payload", "channel": channel.name, "data": [contract.ticker()]}
        if channel.kind == "trades":
            return {"event": "payload", "channel": channel.name, "data": contract.trade_rows()}
        if channel.kind == "depth":
            start, end, body = contract.changes[channel.levels]
            frame = contract.depth_frame(channel.levels, "CHANGED", start, end, body)
            return {"event": "payload", "channel": channel.name, "data": [frame]}
        rows = contract.candle_rows(channel.price_type, channel.interval, history=False)
        return {"event": "payload", "type": "change", "channel": channel.name, "data": rows}
