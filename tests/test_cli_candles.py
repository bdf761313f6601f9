"""`weex-ws candles`: candle records from the kline channel, through the real command, on both
WEEX protocol generations (`api`: the simulator's URL chooses the client's)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.adapters import BOTH_DIALECTS
from tests.test_cli import is_decimal_text, json_lines, run_cli, simulator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
async def test_candles_prints_one_json_line_per_candle_update(api: str) -> None:
    async with simulator(api=api) as server:
        result = await run_cli(
            "candles", "BTCUSDT", "--interval", "minute_5", "--price-type", "mark_price",
            "--url", server.public_url, "--json", "--count", "4",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert len(records) == 4
    for record in records:
        assert record["channel"] == "kline.MARK_PRICE.cmt_btcusdt.MINUTE_5"
        candle = record["data"]
        assert candle["symbol"] == "cmt_btcusdt" and isinstance(candle["closed"], bool)
        assert all(is_decimal_text(candle[key]) for key in ("open", "high", "low", "close"))
        assert Decimal(candle["low"]) <= Decimal(candle["close"]) <= Decimal(candle["high"])


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
async def test_candles_human_lines_name_the_candle_state(api: str) -> None:
    async with simulator(api=api) as server:
        result = await run_cli("candles", "ETHUSDT", "--url", server.public_url, "--count", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all("candle cmt_ethusdt" in line for line in lines)
    assert all(" open " in line or " closed " in line for line in lines)


@pytest.mark.anyio
async def test_candles_refuses_an_unknown_interval() -> None:
    # No v3 counterpart: the command line refuses it before choosing a protocol generation.
    result = await run_cli("candles", "BTCUSDT", "--interval", "MINUTE_2")
    assert result.returncode == 2
    assert "unknown interval 'MINUTE_2'" in result.stderr and "MINUTE_1" in result.stderr
