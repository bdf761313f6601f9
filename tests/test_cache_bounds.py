"""Every cache the library keeps stays within its bound however many distinct keys it is fed.

The keys (price texts, channel names) come from the server, so a cache without a bound would
grow for as long as a client runs. CONTRIBUTING ("Memory") lists these caches and their
bounds; the router's own bound is checked in test_fanout.py.

These run on v2 frames only, and need no v3 counterpart: a connection turns each v3 push into
the v2 frame it stands for (`Dialect.push`) before any parser or cache sees it, so v3 traffic
fills these caches with the same texts and channel names.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from tests.fixtures_messages import KLINE_PUSH, TICKER_PUSH
from weex_proto import messages, records
from weex_proto.messages import parse_depth_levels
from weex_proto.records import MAX_TRACKED_CHANNELS, RecordSplitter


def test_the_decimal_text_cache_is_emptied_when_full() -> None:
    size = messages._DECIMAL_CACHE_SIZE
    for n in range(3 * size):
        assert messages._to_decimal(f"{n}.25") == Decimal(f"{n}.25")
        assert len(messages._decimals) <= size
    assert messages._to_decimal("7.25") == Decimal("7.25")  # a miss after the turnover is right


def depth_push(first_price: int, levels: int) -> dict[str, Any]:
    asks = [{"price": f"{first_price + i}.5", "size": f"{i}.125"} for i in range(levels)]
    row = {
        "startVersion": "1",
        "endVersion": "2",
        "level": 200,
        "depthType": "CHANGED",
        "symbol": "cmt_btcusdt",
        "asks": asks,
        "bids": [],
    }
    return {"event": "payload", "channel": "depth.cmt_btcusdt.200", "data": [row]}


def test_depth_level_decimals_keep_at_most_two_generations() -> None:
    cache = messages._level_decimals
    levels = 200
    for frame in range(3 * cache.size // levels):
        (update,) = parse_depth_levels(depth_push(frame * levels, levels))
        assert update.asks[0][0] == Decimal(f"{frame * levels}.5")
        assert len(cache.young) <= cache.size
        assert len(cache.old) <= cache.size


def test_price_change_percent_texts_are_remembered_up_to_their_bound() -> None:
    splitter = RecordSplitter()
    for n in range(2 * records._PERCENT_CACHE_SIZE):
        push = copy.deepcopy(TICKER_PUSH)
        push["data"][0]["priceChangePercent"] = f"0.{n:06d}"
        (message,) = splitter.split_push(push["channel"], push, 0.0, "")
        assert message.data.get("change") is not None
        assert len(records._percents) <= records._PERCENT_CACHE_SIZE


def test_the_splitter_remembers_marks_kinds_and_open_candles_of_a_bounded_set_of_channels() -> None:
    splitter = RecordSplitter()
    for n in range(2 * MAX_TRACKED_CHANNELS):
        ticker = copy.deepcopy(TICKER_PUSH)
        ticker["channel"] = f"ticker.cmt_coin{n}usdt"
        splitter.split_push(ticker["channel"], ticker, 0.0, "")
        kline = copy.deepcopy(KLINE_PUSH)
        kline["channel"] = f"kline.LAST_PRICE.cmt_coin{n}usdt.MINUTE_1"
        splitter.split_push(kline["channel"], kline, 0.0, "")
    assert len(splitter.marks) == MAX_TRACKED_CHANNELS
    assert len(splitter._candles) == MAX_TRACKED_CHANNELS
    assert len(splitter._kinds) == MAX_TRACKED_CHANNELS
    # The oldest went first; the latest channel's mark price is still known.
    last = 2 * MAX_TRACKED_CHANNELS - 1
    assert splitter.mark_price(f"cmt_coin{last}usdt") == "102623.9"
    assert splitter.mark_price("cmt_coin0usdt") is None
