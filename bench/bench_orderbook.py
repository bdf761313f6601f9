"""Order book delta application speed: updates per second for depth 15 and 200.

    .venv/bin/python bench/bench_orderbook.py [--repeat N] [--instructions]

Each update changes a handful of levels near the top (a few sizes, one level removed, one
added), like a real CHANGED frame; half the updates touch each side. "apply" times
`OrderBook.apply` alone; "decode+apply+best" adds decoding the JSON text (with the client's
decoder: orjson when installed) and `parse_depth_levels`, fed to `OrderBook.apply_levels` as
`stream_order_book` does, then reads the best bid and ask;
"...+top" builds what `stream_order_book` hands its reader per push instead (`book_snapshot`:
the top N levels of each side).

Each timed pass starts with the decoder's decimal caches empty, so no pass reads texts an
earlier one already converted (otherwise the order of the passes would decide the figures).

Updates per second on this shared machine move by up to 1.5x between hours, even when it is
idle. `--instructions` counts instead (`valgrind --tool=callgrind`, a few minutes): the
decode+apply+best pass runs in a child under callgrind once for N and once for 3N updates of
the same frames, and the difference over 2N is what one more update costs, the same on any
load.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from decimal import Decimal
from typing import Any

from callgrind import instructions, require_valgrind

from weex_proto import messages
from weex_proto.connection import ConnectionOptions
from weex_proto.messages import DepthUpdate, parse_depth_levels, parse_push
from weex_proto.orderbook import Applied, OrderBook
from weex_proto.runtime.books import book_snapshot


def forget_decimals() -> None:
    """Empty the decimal caches of `weex_proto.messages`, whichever it has."""
    for name in ("_decimals", "_level_decimals"):
        cache = getattr(messages, name, None)
        if cache is not None:
            cache.clear()


def make_frames(depth: int, count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    # Far from zero: every bid update moves the far end one tick down (prices must stay > 0).
    bids = {1_000_000_0 - i: rng.randint(1, 5000) for i in range(depth)}
    asks = {1_000_000_1 + i: rng.randint(1, 5000) for i in range(depth)}

    def levels(side: dict[int, int]) -> list[dict[str, str]]:
        return [{"price": f"{p / 10:.1f}", "size": f"{s / 1000:.3f}"} for p, s in side.items()]

    frames = [
        {
            "event": "payload",
            "channel": f"depth.cmt_btcusdt.{depth}",
            "data": [
                {
                    "startVersion": "1",
                    "endVersion": "1",
                    "level": depth,
                    "depthType": "SNAPSHOT",
                    "symbol": "cmt_btcusdt",
                    "asks": levels(asks),
                    "bids": levels(bids),
                }
            ],
        }
    ]
    version = 1
    for n in range(count):
        side, sign = (bids, -1) if n % 2 else (asks, 1)
        best = max(bids) if side is bids else min(asks)
        changes: dict[int, int] = {}
        for offset in rng.sample(range(min(depth, 10)), 3):
            price = best + sign * offset
            if price in side:
                side[price] = changes[price] = rng.randint(1, 5000)
        worst = min(side) if side is bids else max(side)
        del side[worst]
        changes[worst] = 0
        new = worst + sign * 1 if side is asks else worst - 1
        side[new] = changes[new] = rng.randint(1, 5000)
        version += 1
        body = {
            "startVersion": str(version),
            "endVersion": str(version),
            "level": depth,
            "depthType": "CHANGED",
            "symbol": "cmt_btcusdt",
            "asks": levels(changes) if side is asks else [],
            "bids": levels(changes) if side is bids else [],
        }
        frames.append({"event": "payload", "channel": frames[0]["channel"], "data": [body]})
    return frames


def decode_apply_best(texts: list[str], depth: int) -> None:
    """What `stream_order_book` does with each depth frame's text, then the best bid and ask,
    from empty decimal caches."""
    loads = ConnectionOptions().json_loads
    forget_decimals()
    book = OrderBook("cmt_btcusdt", depth)
    for text in texts:
        for levels in parse_depth_levels(loads(text)):
            book.apply_levels(levels)
        assert book.best_bid is not None and book.best_ask is not None


def run(depth: int, count: int) -> tuple[float, float, float]:
    frames = make_frames(depth, count)
    texts = [json.dumps(f) for f in frames]
    loads = ConnectionOptions().json_loads
    updates = [u for f in frames for u in parse_push(f)]
    assert all(isinstance(u, DepthUpdate) for u in updates)

    book = OrderBook("cmt_btcusdt", depth)
    start = time.perf_counter()
    for update in updates:
        assert isinstance(update, DepthUpdate)
        assert book.apply(update) == Applied()
    apply_rate = count / (time.perf_counter() - start)

    start = time.perf_counter()
    decode_apply_best(texts, depth)
    best_rate = count / (time.perf_counter() - start)

    forget_decimals()
    book = OrderBook("cmt_btcusdt", depth)
    start = time.perf_counter()
    for text in texts:
        for levels in parse_depth_levels(loads(text)):
            book.apply_levels(levels)
        book_snapshot(book, depth, 0.0)
    top_rate = count / (time.perf_counter() - start)
    assert book.bids(1)[0][0] > Decimal(0)
    return apply_rate, best_rate, top_rate


def child(depth: int, updates: int, frames: int) -> None:
    """`decode_apply_best` alone, over the first `updates` of `frames` made updates (the same
    frames whatever `updates` is, so two runs differ by the updates alone)."""
    texts = [json.dumps(f) for f in make_frames(depth, frames)]
    decode_apply_best(texts[: updates + 1], depth)


def count_instructions(updates: int) -> None:
    require_valgrind("--instructions")
    print(f"decode+apply+best, instructions per update ({updates:,} and {3 * updates:,} updates)")
    for depth in (15, 200):
        low, high = (
            instructions([__file__, "--child", f"{depth},{n},{3 * updates}"], f"depth {depth}")
            for n in (updates, 3 * updates)
        )
        print(f"{depth:>5} {(high - low) / (2 * updates):>10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per depth; medians shown")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind instead"
    )
    parser.add_argument("--updates", type=int, default=5_000, help="N for --instructions")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        depth, updates, frames = (int(part) for part in args.child.split(","))
        child(depth, updates, frames)
        return
    if args.instructions:
        count_instructions(args.updates)
        return
    repeat = args.repeat
    print(f"{'depth':>5} {'apply':>14} {'decode+apply+best':>18} {'decode+apply+top':>18}")
    for depth in (15, 200):
        runs = [run(depth, 20_000) for _ in range(repeat)]
        columns = zip(*runs, strict=True)
        apply_rate, best_rate, top_rate = (statistics.median(column) for column in columns)
        print(f"{depth:>5} {apply_rate:>10,.0f} u/s {best_rate:>14,.0f} u/s {top_rate:>14,.0f} u/s")


if __name__ == "__main__":
    main()
