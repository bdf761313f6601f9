"""Channel specs, wire names and the `subscribe(channel, symbol=..., **params)` front door.

Expected wire names are copied from the protocol doc §4 examples, not from the implementation.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weex_proto.channels import (
    DEPTH_LEVELS,
    Account,
    ChannelSpec,
    Depth,
    Fill,
    Kline,
    KlineInterval,
    Orders,
    Positions,
    PriceType,
    Ticker,
    Trades,
    build_channel,
    channel_matches,
    is_channel_pattern,
    is_private_channel,
    normalize_symbol,
    parse_channel,
)

# Doc §4.1.2, in the documented order.
DOC_INTERVALS = [
    *("MINUTE_1", "MINUTE_5", "MINUTE_15", "MINUTE_30"),
    *("HOUR_1", "HOUR_2", "HOUR_4", "HOUR_6", "HOUR_8", "HOUR_12"),
    *("DAY_1", "WEEK_1", "MONTH_1"),
]

contract_ids = st.from_regex(r"cmt_[a-z0-9]{1,12}", fullmatch=True)
intervals = st.sampled_from(KlineInterval)
price_types = st.sampled_from(PriceType)
specs: st.SearchStrategy[ChannelSpec] = st.one_of(
    st.builds(Ticker, contract_ids),
    st.builds(Trades, contract_ids),
    st.builds(Depth, contract_ids, st.sampled_from(DEPTH_LEVELS)),
    st.builds(Kline, contract_ids, intervals, price_types),
    st.sampled_from([Account(), Positions(), Orders(), Fill()]),
)


# --- enums --------------------------------------------------------------------------------


def test_kline_intervals_are_exactly_the_documented_ones_in_order() -> None:
    assert [member.value for member in KlineInterval] == DOC_INTERVALS
    assert [member.name for member in KlineInterval] == DOC_INTERVALS


def test_price_types_are_exactly_the_documented_ones() -> None:
    assert [member.value for member in PriceType] == ["LAST_PRICE", "MARK_PRICE"]


# --- wire names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name", "private"),
    [
        (Ticker("cmt_btcusdt"), "ticker.cmt_btcusdt", False),
        (Kline("cmt_btcusdt"), "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1", False),
        (
            Kline("cmt_ethusdt", KlineInterval.HOUR_4, PriceType.MARK_PRICE),
            "kline.MARK_PRICE.cmt_ethusdt.HOUR_4",
            False,
        ),
        (Depth("cmt_btcusdt"), "depth.cmt_btcusdt.15", False),
        (Depth("cmt_btcusdt", 200), "depth.cmt_btcusdt.200", False),
        (Trades("cmt_btcusdt"), "trades.cmt_btcusdt", False),
        (Account(), "account", True),
        (Positions(), "positions", True),
        (Orders(), "orders", True),
        (Fill(), "fill", True),
    ],
)
def test_documented_channel_names(spec: ChannelSpec, name: str, private: bool) -> None:
    assert spec.name == name
    assert spec.private is private
    assert is_private_channel(name) is private
    assert parse_channel(name) == spec


def test_specs_normalise_their_symbol() -> None:
    assert Ticker("BTC-USDT") == Ticker("cmt_btcusdt")
    assert Kline("BTCUSDT").name == "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1"
    assert Depth("btc/usdt", level=200).name == "depth.cmt_btcusdt.200"


def test_specs_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Ticker("cmt_btcusdt").symbol = "cmt_ethusdt"  # type: ignore[misc]


def test_kline_accepts_enum_names_as_strings() -> None:
    kline = Kline("cmt_btcusdt", interval="minute_5", price_type="MARK_PRICE")
    assert kline.interval is KlineInterval.MINUTE_5
    assert kline.price_type is PriceType.MARK_PRICE
    assert kline.name == "kline.MARK_PRICE.cmt_btcusdt.MINUTE_5"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": "1m"}, "kline interval"),
        ({"interval": "MINUTE_2"}, "kline interval"),
        ({"price_type": "INDEX"}, "price type"),
        ({"price_type": 1}, "price type"),
    ],
)
def test_kline_rejects_undocumented_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Kline("cmt_btcusdt", **kwargs)


@pytest.mark.parametrize("level", [0, 5, 50, 100, 15.0, True, "15", None])
def test_depth_level_must_be_15_or_200(level: Any) -> None:
    with pytest.raises(ValueError, match="15 or 200"):
        Depth("cmt_btcusdt", level)


@given(specs)
def test_name_parse_name_round_trip(spec: ChannelSpec) -> None:
    parsed = parse_channel(spec.name)
    assert parsed == spec
    assert parsed is not None
    assert parsed.name == spec.name
    assert parsed.private is spec.private is is_private_channel(spec.name)
    assert build_channel(spec.name) == spec.name
    assert build_channel(spec) == spec.name


@given(st.text(alphabet="abcdekilnprstuxy_.0123456789LASTPRICEMINUTE", max_size=40))
def test_parse_is_strict_inverse_of_name(text: str) -> None:
    parsed = parse_channel(text)
    assert parsed is None or parsed.name == text


@pytest.mark.parametrize(
    "name",
    [
        "",
        "ticker",
        "ticker.",
        "ticker.BTCUSDT",
        "ticker.CMT_BTCUSDT",
        "ticker.cmt_BTCUSDT",
        "ticker.cmt_",
        "ticker.cmt_btcusdt.15",
        "tickers.cmt_btcusdt",
        "trades.cmt_btc-usdt",
        "depth.cmt_btcusdt",
        "depth.cmt_btcusdt.50",
        "depth.cmt_btcusdt.015",
        "depth.cmt_btcusdt.15.x",
        "kline.cmt_btcusdt.MINUTE_1",
        "kline.INDEX.cmt_btcusdt.MINUTE_1",
        "kline.last_price.cmt_btcusdt.MINUTE_1",
        "kline.LAST_PRICE.cmt_btcusdt.MINUTE_2",
        "kline.LAST_PRICE.cmt_btcusdt.1m",
        "position",
        "trade",
        "Account",
        "account.cmt_btcusdt",
    ],
)
def test_parse_returns_none_for_unknown_names(name: str) -> None:
    assert parse_channel(name) is None
    assert not is_private_channel(name)


# --- symbols ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "contract_id"),
    [
        ("cmt_btcusdt", "cmt_btcusdt"),
        ("CMT_BTCUSDT", "cmt_btcusdt"),
        ("Cmt_BtcUsdt", "cmt_btcusdt"),
        ("BTCUSDT", "cmt_btcusdt"),
        ("btcusdt", "cmt_btcusdt"),
        ("BTC-USDT", "cmt_btcusdt"),
        ("BTC/USDT", "cmt_btcusdt"),
        ("BTC_USDT", "cmt_btcusdt"),
        ("BTC/USDT:USDT", "cmt_btcusdt"),
        ("  ethusdt\n", "cmt_ethusdt"),
        ("1000PEPE-USDT", "cmt_1000pepeusdt"),
    ],
)
def test_normalize_symbol(symbol: str, contract_id: str) -> None:
    assert normalize_symbol(symbol) == contract_id


@pytest.mark.parametrize(
    "symbol",
    [
        "",
        " ",
        "\t\n",
        "cmt_",
        "CMT_",
        "-",
        "BTC-",
        "/USDT",
        "BTC--USDT",
        "BTC-USDT-X",
        "BTC USDT",
        "BTC.USDT",
        "ticker.cmt_btcusdt",
        "BTC/USDT:USDC",
        "BTCUSDT:USDT",
        "BTCUSDT_SPBL",
        "btc€usdt",
        "\uff22\uff34\uff23usdt",  # full-width BTC: str.isalnum() would say yes
    ],
)
def test_normalize_symbol_rejects_garbage(symbol: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(symbol))):
        normalize_symbol(symbol)


def test_normalize_symbol_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        normalize_symbol(None)  # type: ignore[arg-type]


symbol_parts = st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True)


@given(symbol_parts, symbol_parts.filter(lambda quote: quote.upper() != "SPBL"))
def test_every_spelling_of_a_pair_gives_one_contract_id(base: str, quote: str) -> None:
    expected = "cmt_" + (base + quote).lower()
    spellings = [
        base + quote,
        (base + quote).upper(),
        (base + quote).lower(),
        f"{base}-{quote}",
        f"{base}/{quote}",
        f"{base}_{quote}",
        f"{base}/{quote}:{quote}",
        expected,
        expected.upper(),
    ]
    assert {normalize_symbol(spelling) for spelling in spellings} == {expected}


@given(st.text(max_size=20))
def test_normalize_symbol_returns_a_contract_id_or_raises(text: str) -> None:
    try:
        contract_id = normalize_symbol(text)
    except ValueError:
        return
    assert re.fullmatch(r"cmt_[a-z0-9]+", contract_id)
    assert normalize_symbol(contract_id) == contract_id


# --- build_channel ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (("ticker",), {"symbol": "BTCUSDT"}, "ticker.cmt_btcusdt"),
        (("trades", "BTC-USDT"), {}, "trades.cmt_btcusdt"),
        (("depth",), {"symbol": "btcusdt"}, "depth.cmt_btcusdt.15"),
        (("depth",), {"symbol": "btcusdt", "level": 200}, "depth.cmt_btcusdt.200"),
        (("kline",), {"symbol": "BTC/USDT"}, "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1"),
        (
            ("kline",),
            {"symbol": "ETHUSDT", "interval": "HOUR_1", "price_type": PriceType.MARK_PRICE},
            "kline.MARK_PRICE.cmt_ethusdt.HOUR_1",
        ),
        (
            ("kline",),
            {"symbol": "ETHUSDT", "interval": KlineInterval.DAY_1, "price_type": "mark_price"},
            "kline.MARK_PRICE.cmt_ethusdt.DAY_1",
        ),
        (("account",), {}, "account"),
        (("positions",), {}, "positions"),
        (("orders",), {}, "orders"),
        (("fill",), {}, "fill"),
        (("ticker.cmt_btcusdt",), {}, "ticker.cmt_btcusdt"),
        (("depth.cmt_btcusdt.200",), {}, "depth.cmt_btcusdt.200"),
        ((Depth("BTCUSDT", 200),), {}, "depth.cmt_btcusdt.200"),
        ((Fill(),), {}, "fill"),
        # The product documentation's channel names
        (("tickers",), {"symbol": "BTCUSDT"}, "ticker.cmt_btcusdt"),
        (("orderbook",), {"symbol": "BTCUSDT"}, "depth.cmt_btcusdt.15"),
        (("orderbook",), {"symbol": "BTCUSDT", "level": 5}, "depth.cmt_btcusdt.15"),
        (("orderbook",), {"symbol": "BTCUSDT", "level": 15}, "depth.cmt_btcusdt.15"),
        (("orderbook",), {"symbol": "BTCUSDT", "level": 16}, "depth.cmt_btcusdt.200"),
        (("orderbook",), {"symbol": "BTCUSDT", "level": 200}, "depth.cmt_btcusdt.200"),
    ],
)
def test_build_channel(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> None:
    assert build_channel(*args, **kwargs) == name


@given(specs.filter(lambda spec: not spec.private))
def test_build_from_short_name_matches_the_spec(spec: ChannelSpec) -> None:
    params = attrs.asdict(spec, recurse=False)
    symbol = params.pop("symbol")
    assert build_channel(spec.kind, symbol.upper(), **params) == spec.name


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("ticker",), {}, r"'ticker' needs a symbol"),
        (("kline",), {"interval": "HOUR_1"}, r"'kline' needs a symbol"),
        (("ticker",), {"symbol": "BTCUSDT", "level": 15}, r"unexpected parameter.*level"),
        (("depth",), {"symbol": "BTCUSDT", "interval": "HOUR_1"}, r"unexpected.*interval"),
        (("kline",), {"symbol": "BTCUSDT", "level": 15}, r"unexpected.*level"),
        (("depth",), {"symbol": "BTCUSDT", "level": 50}, r"15 or 200"),
        (("kline",), {"symbol": "BTCUSDT", "interval": "1x"}, r"kline interval"),
        (("ticker",), {"symbol": "  "}, r"not a contract symbol"),
        (("account",), {"symbol": "BTCUSDT"}, r"private.*no symbol"),
        (("orders",), {"level": 15}, r"unexpected.*level.*takes no parameters"),
        (("ticker.cmt_btcusdt",), {"symbol": "BTCUSDT"}, r"already a complete.*symbol"),
        (("depth.cmt_btcusdt.15",), {"level": 200}, r"already a complete.*level"),
        ((Ticker("BTCUSDT"),), {"symbol": "ETHUSDT"}, r"already a complete"),
        (("ticker.BTCUSDT",), {}, r"not a valid ticker channel.*ticker\.cmt_btcusdt"),
        (("depth.cmt_btcusdt.50",), {}, r"not a valid depth channel.*15\|200"),
        (("position",), {}, r"unknown channel 'position'.*'positions'"),
        (("trade",), {}, r"unknown channel 'trade'.*'trades'.*'fill'"),
        (("orderbook",), {}, r"'depth' needs a symbol"),
        (("order_book",), {}, r"unknown channel.*'depth'"),
        (("orderbook",), {"symbol": "BTCUSDT", "level": 201}, r"depth level must be 15 or 200"),
        (("bananas",), {}, r"unknown channel 'bananas'.*known channels: ticker"),
        (("",), {}, r"unknown channel ''"),
    ],
)
def test_build_channel_errors(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_channel(*args, **kwargs)


def test_build_channel_rejects_non_string_channel() -> None:
    with pytest.raises(TypeError):
        build_channel(42)  # type: ignore[arg-type]


# --- handler patterns ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "channel", "expected"),
    [
        ("ticker.cmt_btcusdt", "ticker.cmt_btcusdt", True),
        ("ticker.cmt_btcusdt", "ticker.cmt_ethusdt", False),
        ("ticker", "ticker.cmt_btcusdt", False),
        ("ticker.*", "ticker.cmt_btcusdt", True),
        ("ticker.*", "trades.cmt_btcusdt", False),
        ("ticker.*", "ticker", False),
        ("depth.cmt_btcusdt.*", "depth.cmt_btcusdt.200", True),
        ("depth.cmt_btcusdt.*", "depth.cmt_ethusdt.15", False),
        ("kline.*", "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1", True),
        ("kline.*.cmt_btcusdt.*", "kline.MARK_PRICE.cmt_btcusdt.DAY_1", True),
        ("*", "account", True),
        ("*", "depth.cmt_btcusdt.15", True),
        ("TICKER.*", "ticker.cmt_btcusdt", False),
        ("depth.cmt_btcusdt.1?", "depth.cmt_btcusdt.15", True),
        ("[ao]*", "orders", True),
        ("[ao]*", "positions", False),
        ("depth.cmt_btcusdt.[1]5", "depth.cmt_btcusdt.15", True),
        ("depth.cmt_btcusdt.[2]5", "depth.cmt_btcusdt.15", False),
    ],
)
def test_channel_matches(pattern: str, channel: str, expected: bool) -> None:
    assert channel_matches(pattern, channel) is expected


channel_text = st.text(alphabet="abct_.*?[]!15", max_size=12)


@given(channel_text, channel_text)
def test_channel_matches_is_fnmatchcase(pattern: str, channel: str) -> None:
    assert channel_matches(pattern, channel) is fnmatch.fnmatchcase(channel, pattern)


@given(specs, specs)
def test_exact_names_match_only_themselves(a: ChannelSpec, b: ChannelSpec) -> None:
    assert not is_channel_pattern(a.name)
    assert channel_matches(a.name, b.name) is (a.name == b.name)
