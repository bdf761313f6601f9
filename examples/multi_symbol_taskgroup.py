"""Several symbols monitored concurrently: one task per symbol in an anyio task group.

Shows: sharing one client between tasks (all public channels ride on one connection), each
task with its own `stream_tickers([symbol])` that only ever sees its own contract, and a task
group that finishes when every task has what it wanted. The same code runs under
`asyncio.TaskGroup`; anyio's task group also works under trio.

Run:
    python examples/multi_symbol_taskgroup.py                      # simulator, 10 per symbol
    python examples/multi_symbol_taskgroup.py BTCUSDT SOLUSDT --count 25
    python examples/multi_symbol_taskgroup.py --live --duration 30
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_proto import normalize_symbol
from weex_proto.messages import Ticker


@attrs.frozen
class SymbolSummary:
    tickers: tuple[Ticker, ...]
    """Every ticker the symbol's task received, in arrival order."""

    @property
    def prices(self) -> tuple[Decimal, ...]:
        return tuple(ticker.last_price for ticker in self.tickers)

    @property
    def low(self) -> Decimal:
        return min(self.prices)

    @property
    def high(self) -> Decimal:
        return max(self.prices)

    @property
    def change(self) -> Decimal:
        return self.prices[-1] - self.prices[0]


async def run(
    config: WeexConfig,
    symbols: Sequence[str] = _common.DEFAULT_SYMBOLS,
    *,
    per_symbol: int | None = 10,
    duration: float | None = None,
) -> dict[str, SymbolSummary]:
    """Watch every symbol concurrently; return a summary per contract id (`cmt_btcusdt`)."""
    received: dict[str, list[Ticker]] = {normalize_symbol(symbol): [] for symbol in symbols}

    async def watch(client: WeexWebSocketClient, symbol: str) -> None:
        """One task's work: follow one contract's ticker for `per_symbol` updates."""
        mine = received[normalize_symbol(symbol)]
        async for message in client.stream_tickers([symbol]):
            ticker = message.record
            mine.append(ticker)
            print(f"[{ticker.symbol:<12}] #{len(mine):<4} last {ticker.last_price}")
            if per_symbol is not None and len(mine) >= per_symbol:
                break

    with anyio.move_on_after(duration):
        async with WeexWebSocketClient(config) as client, anyio.create_task_group() as tasks:
            for symbol in symbols:
                tasks.start_soon(watch, client, symbol, name=f"watch {symbol}")
        # Leaving the task group means every task finished: each one got its `per_symbol`.
    return {symbol: SymbolSummary(tuple(seen)) for symbol, seen in received.items() if seen}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(
        __doc__, count=10, symbols=_common.DEFAULT_SYMBOLS, count_help="updates per symbol"
    )
    args = parser.parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        summaries = await run(
            exchange.config, args.symbols, per_symbol=args.count, duration=args.duration
        )
        print()
        for symbol, summary in sorted(summaries.items()):
            print(
                f"{symbol:<14} {len(summary.tickers):>4} updates  low {summary.low}  "
                f"high {summary.high}  change {summary.change:+}"
            )

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
