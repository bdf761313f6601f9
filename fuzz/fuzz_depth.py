"""Fuzz sequences of depth pushes into `OrderBook`, through `parse_push`.

    python fuzz/fuzz_depth.py [fuzz/corpus/depth] [-atheris_runs=N]

An input is JSON lines (one push per line, as the seeds show), or, when its first byte is 0,
a compact recipe that the harness turns into pushes with versions that overlap, repeat, skip
ahead, and levels that cross the book, so the fuzzer reaches the book's logic quickly.

Invariants: `parse_push` raises nothing but `PayloadError` and `OrderBook.apply` raises nothing.
After `Applied` the book is consistent: at most `depth` levels a side, no empty level, bids
strictly falling and asks strictly rising, best bid below best ask, and the version is the
update's `endVersion`, and every price and size is > 0. After `NeedsResync` it is empty and
waits for a snapshot; `Ignored` and `Rejected` leave it exactly as it was.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from _support import fuzz_main

from weex_proto.messages import DepthUpdate, PayloadError, parse_push
from weex_proto.orderbook import Applied, BookState, Ignored, NeedsResync, OrderBook, Rejected

CHANNEL = "depth.cmt_btcusdt.15"
ODD_NUMBERS = ("0", "0.000", "-1", "1e3", "1E-3", "NaN", "Infinity", "", "00.10", "1.", ".5")


class Recipe:
    """Reads small numbers from the input; zeros once it runs out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    @property
    def left(self) -> bool:
        return self.pos < len(self.data)


def _levels(recipe: Recipe, count: int, *, base: int, sign: int) -> list[dict[str, str]]:
    levels = []
    for _ in range(count):
        choice = recipe.byte()
        if choice >= 240:
            price = ODD_NUMBERS[choice % len(ODD_NUMBERS)]
        else:
            price = f"{base + sign * (choice % 24) / 2:.1f}"
        size = recipe.byte()
        levels.append({"price": price, "size": "0" if size < 64 else f"{size / 1000:.3f}"})
    return levels


def recipe_pushes(data: bytes) -> list[Any]:
    recipe, version = Recipe(data), 1000
    pushes: list[Any] = []
    while recipe.left and len(pushes) < 64:
        op = recipe.byte() % 8
        if op == 7 and pushes:
            pushes.append(pushes[-1])
            continue
        snapshot = op == 0
        start = version + 1 if snapshot else version + recipe.byte() % 6 - 2
        end = start + recipe.byte() % 3
        version = max(version, end)
        overlap = recipe.byte() % 4  # 3: let the sides cross
        body = {
            "startVersion": str(start),
            "endVersion": str(end),
            "level": 15,
            "depthType": "SNAPSHOT" if snapshot else "CHANGED",
            "symbol": "cmt_btcusdt",
            "asks": _levels(recipe, recipe.byte() % 18, base=1000 + 1 - 4 * (overlap == 3), sign=1),
            "bids": _levels(recipe, recipe.byte() % 18, base=1000, sign=-1),
        }
        pushes.append({"event": "payload", "channel": CHANNEL, "data": [body]})
    return pushes


def json_lines(data: bytes) -> list[Any]:
    pushes: list[Any] = []
    for line in data.split(b"\n"):
        try:
            pushes.append(json.loads(line))
        except (ValueError, RecursionError):
            continue
    return pushes


def check_book(book: OrderBook, update: DepthUpdate) -> None:
    before = (book.state, book.version, book.bids(), book.asks())
    result = book.apply(update)
    bids, asks = book.bids(), book.asks()
    if isinstance(result, Applied):
        assert book.state is BookState.LIVE and book.version == update.end_version
        assert len(bids) <= book.depth and len(asks) <= book.depth
        assert all(price > 0 and size > 0 for price, size in bids + asks)
        assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))
        assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))
        assert not bids or not asks or bids[0][0] < asks[0][0]
    elif isinstance(result, NeedsResync):
        assert book.state is BookState.AWAITING_SNAPSHOT and book.version is None
        assert bids == [] and asks == []
    else:
        assert isinstance(result, Ignored | Rejected)
        assert (book.state, book.version, bids, asks) == before


def test_one_input(data: bytes) -> None:
    pushes = recipe_pushes(data[1:]) if data[:1] == b"\x00" else json_lines(data)
    books = [OrderBook("cmt_btcusdt", 15), OrderBook("cmt_btcusdt", 3)]
    for push in pushes:
        try:
            updates = parse_push(push)
        except PayloadError:
            continue
        for update in updates:
            if isinstance(update, DepthUpdate):
                for book in books:
                    check_book(book, update)


if __name__ == "__main__":
    fuzz_main(test_one_input)
