"""Ticker monitoring on native trio: `weex_trio.WeexWebSocketClient` under `trio.run`.

Shows: the same client API as `weex_anyio` running on trio's own primitives (a nursery,
`trio.open_tcp_stream`, `trio.SSLStream`), a trio deadline around the stream, typed `Ticker`
records from `message.parse()`, and the `.gap` flag after a reconnect. The trio client must be
used as `async with`: its connections live in a nursery.

The embedded simulator is anyio-based, and anyio runs inside `trio.run` as well, so the example
needs nothing but trio.

Run:
    python examples/trio_tickers.py                      # embedded simulator, 30 updates
    python examples/trio_tickers.py BTCUSDT --count 100
    python examples/trio_tickers.py --live --duration 30 # the real exchange
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import attrs
import trio

from examples import _common
from weex_proto.messages import Ticker
from weex_trio import ConfigError, WeexConfig, WeexError, WeexWebSocketClient


@attrs.frozen
class TickerReport:
    messages: int
    latest: dict[str, Ticker]
    """The last ticker of each contract, by contract id (`cmt_btcusdt`)."""
    gaps: int
    """Messages flagged as following a reconnect."""


async def run(
    config: WeexConfig,
    symbols: Sequence[str] = _common.DEFAULT_SYMBOLS,
    *,
    count: int | None = 30,
    duration: float | None = None,
) -> TickerReport:
    """Print ticker updates until `count` messages or `duration` seconds, whichever is first."""
    latest: dict[str, Ticker] = {}
    messages = gaps = 0
    with trio.move_on_after(duration if duration is not None else float("inf")):
        async with WeexWebSocketClient(config) as client:
            async for message in client.stream_tickers(symbols):
                messages += 1
                if message.gap:
                    gaps += 1
                    print("-- reconnected: updates may have been missed --")
                ticker = message.record
                print(
                    f"{ticker.symbol:<14} last {ticker.last_price:>12}  "
                    f"mark {ticker.mark_price:>12}  24h {ticker.price_change_percent:+.4%}"
                )
                latest[ticker.symbol] = ticker
                if count is not None and messages >= count:
                    break
    return TickerReport(messages, latest, gaps)


async def _main(args: argparse.Namespace) -> None:
    symbols, count, duration = args.symbols, args.count, args.duration
    if args.live:
        exchange = _common.live_exchange()
        print("using the real WEEX exchange on trio (Ctrl-C to stop)", flush=True)
        report = await run(exchange.config, symbols, count=count, duration=duration)
    else:
        async with _common.simulator(tick_interval=args.tick_interval) as exchange:
            assert exchange.server is not None
            print(
                f"using the embedded simulator at {exchange.server.public_url} "
                "(--live for the real exchange)",
                flush=True,
            )
            report = await run(exchange.config, symbols, count=count, duration=duration)
    print(f"\n{report.messages} ticker messages on trio ({report.gaps} after reconnects)")
    for symbol, ticker in sorted(report.latest.items()):
        print(f"  {symbol:<14} last {ticker.last_price}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _common.parser(__doc__, count=30, symbols=_common.DEFAULT_SYMBOLS).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        trio.run(_main, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        error = _common._sole_error(exc)
        if isinstance(error, WeexError):
            print(f"error: {error}", file=sys.stderr)
            return 2 if isinstance(error, ConfigError) else 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
