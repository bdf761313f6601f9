"""A whole-exchange feed: hundreds of contracts pushing ticker, depth and trades at WEEX-like rates.

`Market` steps every contract on every tick and builds each push as a dict; fine for a few
contracts, too slow for a whole exchange. Here each contract keeps only integers (a book of
`BOOK_LEVELS` sizes per side at consecutive ticks around a one-tick spread, the 24 h statistics),
each channel kind has its own schedule (jittered intervals; trades come in bursts), a contract
nobody watches is not stepped at all, and a push is formatted straight into a pre-encoded
template, once per channel that has a subscriber.

Depth follows the same rules as `Market` (doc §4.1.3): both depth channels of a contract share
one version counter, every step gives each a CHANGED frame whose startVersion is the previous
endVersion + 1, size "0" removes a level (or says it left the channel's view), and the book
never crosses.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol

import attrs

from ._channels import DEPTH_LEVELS, PublicChannel
from ._market import (
    _CANDLE_HISTORY,
    SymbolSpec,
    _Candle,
    candle_start,
    decimal_text,
    fixed,
    spec_for,
)

BOOK_LEVELS = 200
_TOP = 15  # where the resting sizes change on a step: the levels every depth channel shows
_VERSION_START = (3_000_000_000, 3_600_000_000)
_TEXT_CACHE = 8192
_CATCH_UP = 0.02


@attrs.frozen
class FeedRates:
    """How often a full feed pushes each channel of a contract; every interval is jittered by
    +-50% per push, so contracts do not tick in lockstep.

    The defaults are of WEEX's order: a ticker every ~150 ms, a depth delta every ~100 ms (on
    each depth channel), and trades in bursts: ~0.4 s (exponentially distributed) after the
    last burst, 1 to `2 * burst_size - 1` trade pushes `burst_spacing` apart. That is ~33
    pushes per second per contract with ticker, depth15 and trades subscribed: ~10,000 a
    second for 300 contracts.
    """

    ticker: float = 0.15
    depth: float = 0.1
    trade_bursts: float = 0.4
    burst_size: int = 10
    burst_spacing: float = 0.02

    def __attrs_post_init__(self) -> None:
        intervals = (self.ticker, self.depth, self.trade_bursts, self.burst_spacing)
        if min(intervals) <= 0 or self.burst_size < 1:
            raise ValueError("feed intervals must be positive and burst_size >= 1")


def generated_symbols(given: Sequence[str], total: int) -> tuple[str, ...]:
    """`given` followed by made-up contracts (`cmt_c0001usdt`, ...) up to `total` in all."""
    symbols = list(dict.fromkeys(given))
    taken = set(symbols)
    width = max(4, len(str(total)))
    for number in itertools.count(1):
        if len(symbols) >= total:
            break
        name = f"cmt_c{number:0{width}d}usdt"
        if name not in taken:
            symbols.append(name)
    return tuple(symbols)


class Sender(Protocol):
    def send_push(self, text: str) -> None:
        """Send one push, given as v2 text (a v3 connection sends its v3 form)."""
        ...


Subscribers = Mapping[str, Sequence[Sender]]
"""Channel name -> the connections subscribed to it."""


def _level(price: str, size: str) -> str:
    return f'{{"price":"{price}","size":"{size}"}}'


class _FeedContract:
    """One contract's book, trades and 24 h statistics, kept as integers."""

    def __init__(self, symbol: str, rng: random.Random) -> None:
        self.symbol = symbol
        self.spec: SymbolSpec = spec_for(symbol)
        self._rng = rng
        self._pd = self.spec.price_decimals
        self._sd = self.spec.size_decimals
        self._unit = int(10 ** max(self._sd - 3, 0))
        mid = int(self.spec.base_price * 10**self._pd * Decimal(rng.uniform(0.95, 1.05)))
        self.best_bid = max(mid, BOOK_LEVELS + 2)
        self._texts: dict[int, str] = {}  # prices and sizes as text: most of them recur
        self._size_texts: dict[int, str] = {}
        self.bids = [self._lots() for _ in range(BOOK_LEVELS)]  # best first
        self.asks = [self._lots() for _ in range(BOOK_LEVELS)]
        self.version = rng.randint(*_VERSION_START)
        self.pending_gap = 0
        # The latest depth step: its versions and, per view, the changed (price, size) pairs.
        self._start = self._end = self.version
        self._changes: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}
        self.last = self.best_bid + 1
        self._open = self.last
        self._high = self.last + rng.randint(0, 2000)
        self._low = max(self.last - rng.randint(0, 2000), 1)
        self._count = rng.randint(10_000, 50_000)
        self._volume = rng.randint(10_000, 500_000) * self._unit * 10
        self._turnover = self.last * self._volume  # in units of 10**-(pd + sd)
        self.trades: list[tuple[int, int, int, bool]] = []  # (time_ms, price, lots, buyer_maker)
        self.candles: dict[tuple[str, str], deque[_Candle]] = {}  # only the subscribed ones
        self.watched = False  # scheduled: some channel of it has a subscriber
        self.ticker_channel = f"ticker.{symbol}"
        self.trades_channel = f"trades.{symbol}"
        self.depth_channels = tuple((n, f"depth.{symbol}.{n}") for n in DEPTH_LEVELS)
        prefix = '{"event":"payload","channel":'
        self._ticker_head = f'{prefix}"ticker.{symbol}","data":[{{"symbol":"{symbol}",'
        self._trades_head = f'{prefix}"trades.{symbol}","data":['
        self._depth_head = {
            n: f'{prefix}"depth.{symbol}.{n}","data":[{{"startVersion":"' for n in DEPTH_LEVELS
        }
        self._depth_tail = {n: f',"level":{n},"depthType":"' for n in DEPTH_LEVELS}
        self._symbol_field = f'","symbol":"{symbol}","asks":['

    def _lots(self, high: int = 5000) -> int:
        return int(self._rng.random() * high + 1) * self._unit

    @property
    def best_ask(self) -> int:
        return self.best_bid + 1

    def price(self, ticks: int) -> str:
        text = self._texts.get(ticks)
        if text is None:
            if len(self._texts) >= _TEXT_CACHE:
                self._texts.clear()
            text = self._texts[ticks] = fixed(ticks, self._pd)
        return text

    def size(self, lots: int) -> str:
        text = self._size_texts.get(lots)
        if text is None:
            if len(self._size_texts) >= _TEXT_CACHE:
                self._size_texts.clear()
            text = self._size_texts[lots] = fixed(lots, self._sd) if lots else "0"
        return text

    # -- depth ----------------------------------------------------------------------------------

    def step_depth(self) -> None:
        """Move the book: sometimes a tick up or down, always 1-3 resting sizes at the top."""
        rng = self._rng
        bids, asks = self.bids, self.asks
        roll = rng.random()
        move = 1 if roll < 0.1 else -1 if roll < 0.2 and self.best_bid > BOOK_LEVELS + 2 else 0
        old_bid = self.best_bid
        if move > 0:  # the best ask is taken out; its price becomes the best bid
            asks.pop(0)
            asks.append(self._lots())
            bids.insert(0, self._lots())
            bids.pop()
        elif move < 0:
            bids.pop(0)
            bids.append(self._lots())
            asks.insert(0, self._lots())
            asks.pop()
        self.best_bid = bid = old_bid + move
        ask = bid + 1
        resized: list[tuple[bool, int]] = []
        for _ in range(1 + int(rng.random() * 3)):
            is_bid = rng.random() < 0.5
            index = int(rng.random() * _TOP)
            (bids if is_bid else asks)[index] = self._lots()
            resized.append((is_bid, index))
        for levels in DEPTH_LEVELS:
            bid_changes: dict[int, int] = {}
            ask_changes: dict[int, int] = {}
            if move > 0:
                bid_changes[bid] = bids[0]
                bid_changes[bid - levels] = 0  # left the view (or the book)
                ask_changes[old_bid + 1] = 0
                ask_changes[ask + levels - 1] = asks[levels - 1]
            elif move < 0:
                ask_changes[ask] = asks[0]
                ask_changes[ask + levels] = 0
                bid_changes[old_bid] = 0
                bid_changes[bid - levels + 1] = bids[levels - 1]
            for is_bid, index in resized:
                if index < levels:
                    if is_bid:
                        bid_changes[bid - index] = bids[index]
                    else:
                        ask_changes[ask + index] = asks[index]
            self._changes[levels] = (
                sorted(ask_changes.items()),
                sorted(bid_changes.items(), reverse=True),
            )
        touched = len(self._changes[BOOK_LEVELS][0]) + len(self._changes[BOOK_LEVELS][1])
        self._start = self.version + 1 + self.pending_gap
        self.pending_gap = 0
        self._end = self.version = self._start + touched - 1

    def _depth_text(
        self, levels: int, kind: str, start: int, end: int, asks: str, bids: str
    ) -> str:
        return (
            f'{self._depth_head[levels]}{start}","endVersion":"{end}"{self._depth_tail[levels]}'
            f'{kind}{self._symbol_field}{asks}],"bids":[{bids}]}}]}}'
        )

    def depth_changed(self, levels: int) -> str:
        """The latest step's CHANGED frame of the `levels` channel."""
        price, size = self.price, self.size
        ask_changes, bid_changes = self._changes[levels]
        asks = ",".join([_level(price(p), size(s)) for p, s in ask_changes])
        bids = ",".join([_level(price(p), size(s)) for p, s in bid_changes])
        return self._depth_text(levels, "CHANGED", self._start, self._end, asks, bids)

    def depth_snapshot(self, levels: int) -> str:
        price, size = self.price, self.size
        bid, ask = self.best_bid, self.best_ask
        asks = ",".join([_level(price(ask + i), size(s)) for i, s in enumerate(self.asks[:levels])])
        bids = ",".join([_level(price(bid - i), size(s)) for i, s in enumerate(self.bids[:levels])])
        return self._depth_text(levels, "SNAPSHOT", self.version, self.version, asks, bids)

    # -- trades and ticker -----------------------------------------------------------------------

    def step_trades(self, now_ms: int) -> None:
        rng = self._rng
        self.trades = []
        for _ in range(1 + int(rng.random() * 3)):
            buyer_maker = rng.random() < 0.5
            price = self.best_bid if buyer_maker else self.best_ask
            lots = self._lots(200)
            self.trades.append((now_ms, price, lots, buyer_maker))
            self.last = price
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
            self._count += 1
            self._volume += lots
            self._turnover += price * lots
        for (price_type, interval), history in self.candles.items():
            self._update_candle(history, price_type, interval, now_ms)

    def _value6(self, units: int) -> str:
        """A price x size product (10**-(pd + sd) units) with 6 decimals, as WEEX writes it."""
        scale = self._pd + self._sd - 6
        return fixed(units // 10**scale if scale >= 0 else units * 10**-scale, 6)

    def trades_text(self) -> str:
        price, size = self.price, self.size
        rows = ",".join(
            [
                f'{{"time":"{t}","price":"{price(p)}","size":"{size(n)}",'
                f'"value":"{self._value6(p * n)}","buyerMaker":{"true" if m else "false"}}}'
                for t, p, n, m in self.trades
            ]
        )
        return f"{self._trades_head}{rows}]}}"

    def ticker_text(self) -> str:
        change = self.last - self._open
        percent = abs(change) * 10**6 // self._open
        sign = "-" if change < 0 and percent else ""
        value = self._turnover // 10**self._sd
        return (
            f'{self._ticker_head}"priceChange":"{self.price(change)}",'
            f'"priceChangePercent":"{sign}{fixed(percent, 6)}","trades":"{self._count}",'
            f'"size":"{fixed(self._volume, self._sd)}","value":"{fixed(value, self._pd)}",'
            f'"high":"{self.price(self._high)}","low":"{self.price(self._low)}",'
            f'"lastPrice":"{self.price(self.last)}",'
            f'"markPrice":"{self.price(self.best_bid)}"}}]}}'
        )

    # -- candles (kept only while a kline channel of the contract is subscribed) ----------------

    def _price_for(self, price_type: str) -> int:
        return self.last if price_type == "LAST_PRICE" else self.best_bid

    def _update_candle(
        self, history: deque[_Candle], price_type: str, interval: str, now_ms: int
    ) -> None:
        price = self._price_for(price_type)
        start = candle_start(interval, now_ms)
        if history[-1].start_ms != start:
            history.append(_Candle(start, price, price, price, price))
        lots = sum(t[2] for t in self.trades)
        units = sum(t[1] * t[2] for t in self.trades)
        history[-1].add(price, lots, Decimal(units).scaleb(-(self._pd + self._sd)))

    def candle_history(self, price_type: str, interval: str, now_ms: int) -> deque[_Candle]:
        key = (price_type, interval)
        if key not in self.candles:
            price = self._price_for(price_type)
            first = _Candle(candle_start(interval, now_ms), price, price, price, price)
            self.candles[key] = deque([first], maxlen=_CANDLE_HISTORY)
        return self.candles[key]

    def kline_text(self, channel: str, candles: Iterable[_Candle], kind: str) -> str:
        rows = ",".join(
            [
                f'{{"symbol":"{self.symbol}","klineTime":"{c.start_ms}",'
                f'"size":"{fixed(c.lots, self._sd)}","value":"{decimal_text(c.value, 6)}",'
                f'"high":"{self.price(c.high)}","low":"{self.price(c.low)}",'
                f'"open":"{self.price(c.open)}","close":"{self.price(c.close)}"}}'
                for c in candles
            ]
        )
        return f'{{"event":"payload","type":"{kind}","channel":"{channel}","data":[{rows}]}}'


_TICKER, _DEPTH, _BURST, _TRADE = range(4)


class FeedMarket:
    """Every contract of a full feed and the schedule of their pushes.

    `advance(now, ...)` runs the pushes due by `now` (the steady feed); `run_events(n, ...)`
    runs the next `n` regardless of the clock (the flood). Only watched contracts (see
    `watch`) are stepped; one that nobody watches keeps its book until it is watched again.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        rng: random.Random,
        now: float,
        rates: FeedRates,
        clock: Callable[[], float],
        on_push: Callable[[str], None] | None = None,
    ) -> None:
        self._rng = rng
        self.on_push = on_push
        """Called with each push's text once, whichever connections it goes to."""
        self._rates = rates
        self._clock = clock  # wall-clock seconds, for trade and candle times
        self._contracts = {symbol: _FeedContract(symbol, rng) for symbol in symbols}
        self._queue: list[tuple[float, int, int, _FeedContract]] = []
        self._order = itertools.count()
        self._now = now
        self._subscribers: Subscribers = {}
        self._bursts: dict[str, int] = {}
        self.pushes = 0
        self.steps = 0

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._contracts)

    def spec(self, symbol: str) -> SymbolSpec:
        return self._contracts[symbol].spec

    def last_price(self, symbol: str) -> Decimal:
        contract = self._contracts[symbol]
        return Decimal(contract.last).scaleb(-contract.spec.price_decimals)

    def depth_version(self, symbol: str) -> int:
        return self._contracts[symbol].version

    def restart_versions(self, symbol: str, version: int) -> None:
        self._contracts[symbol].version = version

    def inject_gap(self, symbol: str, skipped: int) -> None:
        self._contracts[symbol].pending_gap += skipped

    # -- subscribers ----------------------------------------------------------------------------

    def watch(self, subscribers: Subscribers, now: float) -> None:
        """Who is subscribed to what; contracts that gained a subscriber start moving."""
        self._subscribers = subscribers
        watched = {channel.split(".")[-2 if channel.startswith(("depth.", "kline.")) else 1]
                   for channel in subscribers if "." in channel}  # fmt: skip
        for symbol in watched:
            contract = self._contracts.get(symbol)
            if contract is not None and not contract.watched:
                contract.watched = True
                self._schedule(contract, _TICKER, now, self._rates.ticker)
                self._schedule(contract, _DEPTH, now, self._rates.depth)
                gap = self._rng.expovariate(1 / self._rates.trade_bursts)
                self._push(now + gap, _BURST, contract)

    def _schedule(self, contract: _FeedContract, kind: int, base: float, interval: float) -> None:
        self._push(base + interval * (0.5 + self._rng.random()), kind, contract)

    def _push(self, at: float, kind: int, contract: _FeedContract) -> None:
        heapq.heappush(self._queue, (at, next(self._order), kind, contract))

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    # -- pushes ---------------------------------------------------------------------------------

    def initial_texts(self, channel: PublicChannel) -> list[str]:
        """What a fresh subscriber gets after the ack: depth and kline snapshots."""
        contract = self._contracts[channel.symbol]
        if channel.kind == "depth":
            return [contract.depth_snapshot(channel.levels)]
        if channel.kind == "kline":
            now_ms = int(self._clock() * 1000)
            history = contract.candle_history(channel.price_type, channel.interval, now_ms)
            return [contract.kline_text(channel.name, history, "snapshot")]
        return []

    @property
    def now(self) -> float:
        """The feed's clock: the latest `advance` time, or the flood's last event time."""
        return self._now

    def advance(self, now: float) -> int:
        """Run every push due by `now`; how many messages were sent."""
        self._now = now
        before = self.pushes
        queue = self._queue
        while queue and queue[0][0] <= now:
            self._run(heapq.heappop(queue), now)
        return self.pushes - before

    def run_events(self, count: int) -> int:
        """Run the next `count` scheduled pushes at once, whenever they were due (the flood);
        how many messages were sent."""
        before = self.pushes
        queue = self._queue
        for _ in range(count):
            if not queue:
                break
            event = heapq.heappop(queue)
            self._now = max(self._now, event[0])
            self._run(event, self._now)
        return self.pushes - before

    def _run(self, event: tuple[float, int, int, _FeedContract], now: float) -> None:
        due, _, kind, contract = event
        # The next push is timed from this one's due time, so a loop a little late does not
        # slow the rates down; from now when further behind (a busy machine, a pause), so the
        # feed slows down rather than piling up pushes to catch up.
        if now - due > _CATCH_UP:
            due = now
        symbol = contract.symbol
        subscribers = self._subscribers
        rates = self._rates
        if kind == _DEPTH:
            watchers = [(n, subscribers.get(name)) for n, name in contract.depth_channels]
            if not any(conns for _, conns in watchers) and not self._still_watched(contract):
                return
            contract.step_depth()
            self.steps += 1
            for levels, conns in watchers:
                if conns:
                    self._send(conns, contract.depth_changed(levels))
            self._schedule(contract, _DEPTH, due, rates.depth)
        elif kind == _TICKER:
            if not self._still_watched(contract):
                return
            conns = subscribers.get(contract.ticker_channel)
            if conns:
                self._send(conns, contract.ticker_text())
            if contract.candles:
                self._push_candles(contract)
            self._schedule(contract, _TICKER, due, rates.ticker)
        elif kind == _BURST:
            if not self._still_watched(contract):
                return
            size = 1 + int(self._rng.random() * (2 * rates.burst_size - 1))
            self._bursts[symbol] = size
            self._push(due, _TRADE, contract)
        else:  # one trade push of a burst
            contract.step_trades(int(self._clock() * 1000))
            conns = subscribers.get(contract.trades_channel)
            if conns:
                self._send(conns, contract.trades_text())
            left = self._bursts.get(symbol, 1) - 1
            self._bursts[symbol] = left
            if left > 0:
                self._push(due + rates.burst_spacing, _TRADE, contract)
            else:
                gap = self._rng.expovariate(1 / rates.trade_bursts)
                self._push(due + gap, _BURST, contract)

    def _still_watched(self, contract: _FeedContract) -> bool:
        """Whether any channel of `contract` has a subscriber; unschedules it if not."""
        subscribers = self._subscribers
        if subscribers.get(contract.ticker_channel) or subscribers.get(contract.trades_channel):
            return True
        if any(subscribers.get(name) for _, name in contract.depth_channels):
            return True
        if contract.candles:
            return True
        # Nobody watches it: its events go, and `watch` schedules it afresh when that changes.
        contract.watched = False
        self._drop_events(contract)
        return False

    def _drop_events(self, contract: _FeedContract) -> None:
        self._queue[:] = [event for event in self._queue if event[3] is not contract]
        heapq.heapify(self._queue)
        self._bursts.pop(contract.symbol, None)

    def _push_candles(self, contract: _FeedContract) -> None:
        for (price_type, interval), history in list(contract.candles.items()):
            name = f"kline.{price_type}.{contract.symbol}.{interval}"
            conns = self._subscribers.get(name)
            if not conns:
                del contract.candles[price_type, interval]  # unsubscribed: stop keeping it
                continue
            self._send(conns, contract.kline_text(name, [history[-1]], "change"))

    def _send(self, conns: Sequence[Sender], text: str) -> None:
        for connection in conns:
            connection.send_push(text)
        self.pushes += len(conns)
        if self.on_push is not None:
            self.on_push(text)
