"""Recording messages to SQLite with aiosqlite: channel, receive time and the raw JSON frame.

Shows: merging several streams (tickers, trades, order book) into one, and writing every push
to a table without blocking the event loop (aiosqlite runs SQLite in a worker thread). Rows
are committed every `--commit-every` messages and once more at the end, also when stopped by
`--duration` or Ctrl-C. `raw` is the frame exactly as received (`message.raw`), so nothing is
lost to parsing; the table can be replayed later with `json.loads` and `parse_push`.

Needs `pip install aiosqlite` (or the `examples` extra); aiosqlite is asyncio-only.

Run:
    python examples/sqlite_recorder.py                         # simulator, 100 rows
    python examples/sqlite_recorder.py --db /tmp/weex.sqlite --count 1000
    python examples/sqlite_recorder.py --live --duration 60
    sqlite3 weex_messages.sqlite 'SELECT channel, COUNT(*) FROM messages GROUP BY channel'
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import aiosqlite
import anyio
import attrs

from examples import _common
from weex_anyio import WebSocketMessage, WeexConfig, WeexWebSocketClient

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT    NOT NULL,
    received_at REAL    NOT NULL,  -- seconds since the epoch, when the client received it
    raw         TEXT    NOT NULL   -- the JSON frame as received
)
"""
INSERT = "INSERT INTO messages (channel, received_at, raw) VALUES (?, ?, ?)"


@attrs.frozen
class RecorderReport:
    path: Path
    rows: int
    """Rows this run wrote (and committed)."""
    by_channel: dict[str, int]


def row(message: WebSocketMessage[Any]) -> tuple[str, float, str]:
    raw = message.raw or json.dumps(message.frame, separators=(",", ":"))
    return message.channel, message.timestamp, raw


async def run(
    config: WeexConfig,
    path: str | Path = "weex_messages.sqlite",
    symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
    *,
    count: int | None = 100,
    duration: float | None = None,
    commit_every: int = 50,
) -> RecorderReport:
    """Record tickers of `symbols` plus trades and depth of the first one into `path`."""
    path = Path(path)
    written: Counter[str] = Counter()
    async with aiosqlite.connect(path) as db:
        await db.execute(SCHEMA)
        await db.commit()
        try:
            with anyio.move_on_after(duration):
                async with (
                    WeexWebSocketClient(config) as client,
                    _common.merged(
                        client.stream_tickers(symbols),
                        client.stream_trades(symbols[0]),
                        client.stream_order_book(symbols[0]),
                    ) as messages,
                ):
                    async for message in messages:
                        # Shielded: a cancelled insert could still land in the worker thread,
                        # and the count must match the table exactly.
                        with anyio.CancelScope(shield=True):
                            await db.execute(INSERT, row(message))
                            written[message.channel] += 1
                        total = written.total()
                        if total % commit_every == 0:
                            await db.commit()
                            print(f"{total} rows committed ({len(written)} channels)")
                        if count is not None and total >= count:
                            break
        finally:
            with anyio.CancelScope(shield=True):
                await db.commit()
    return RecorderReport(path, written.total(), dict(written))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(
        __doc__, count=100, symbols=("BTCUSDT", "ETHUSDT"), count_help="stop after N rows"
    )
    parser.add_argument("--db", default="weex_messages.sqlite", help="SQLite file to append to")
    parser.add_argument("--commit-every", type=int, default=50, help="rows per transaction")
    args = parser.parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        report = await run(
            exchange.config,
            args.db,
            args.symbols,
            count=args.count,
            duration=args.duration,
            commit_every=args.commit_every,
        )
        print(f"\nwrote {report.rows} rows to {report.path}:")
        for channel, rows in sorted(report.by_channel.items()):
            print(f"  {channel:<24} {rows}")

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
