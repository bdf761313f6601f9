"""Recording messages to SQLite with aiosqlite, in the format `weex-ws record` writes.

Shows: merging several streams (tickers, trades, order book) into one, and writing every push
(once, however many records it holds) to a table without blocking the event loop (aiosqlite
runs SQLite in a worker thread). Rows are committed every `--commit-every` messages and once
more at the end, also when stopped by `--duration` or Ctrl-C. `raw` is the frame exactly as
received (`message.raw`), so nothing is lost to parsing. The file uses the schema of
`weex-ws record` (table `frames`), so `weex-ws replay FILE` plays it back through the client;
it is in WAL mode, so a killed recorder leaves a readable file. An existing file is refused
unless `--append` is given.

Needs `pip install aiosqlite` (or the `examples` extra); aiosqlite is asyncio-only.

Run:
    python examples/sqlite_recorder.py --db /tmp/weex.sqlite              # simulator, 100 rows
    python examples/sqlite_recorder.py --db /tmp/weex.sqlite --append --count 1000
    python examples/sqlite_recorder.py --db day.sqlite --live --duration 60
    sqlite3 /tmp/weex.sqlite 'SELECT channel, COUNT(*) FROM frames GROUP BY channel'
    weex-ws replay /tmp/weex.sqlite --speed max
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

# The schema of `weex-ws record` (weex_anyio/cli/_recordings.py), which `weex-ws replay` reads.
SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS frames (
    id          INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,  -- seconds since the epoch, when the client received the frame
    channel     TEXT NOT NULL,
    raw         TEXT NOT NULL   -- the frame's text exactly as received
);
CREATE TABLE IF NOT EXISTS recording (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO recording (key, value) VALUES ('format', 'weex-ws recording 1');
"""
INSERT = "INSERT INTO frames (received_at, channel, raw) VALUES (?, ?, ?)"


@attrs.frozen
class RecorderReport:
    path: Path
    rows: int
    """Rows this run wrote (and committed)."""
    by_channel: dict[str, int]


def row(message: WebSocketMessage[Any]) -> tuple[float, str, str]:
    raw = message.raw or json.dumps(message.frame, separators=(",", ":"))
    return message.timestamp, message.channel, raw


async def run(
    config: WeexConfig,
    path: str | Path,
    symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
    *,
    count: int | None = 100,
    duration: float | None = None,
    commit_every: int = 50,
    append: bool = False,
) -> RecorderReport:
    """Record tickers of `symbols` plus trades and depth of the first one into `path`.

    `FileExistsError` if `path` exists and `append` is false: a run never adds to an old file
    by accident.
    """
    path = Path(path)
    if not append and await anyio.Path(path).exists():
        raise FileExistsError(f"{path} already exists (use --append to add to it)")
    written: Counter[str] = Counter()
    # A push of several records (trades, say) arrives as several messages sharing one frame;
    # they come one after another on their channel, so one row per frame is kept by skipping
    # a message whose frame is the one just written for that channel.
    last_frame: dict[str, object] = {}
    async with aiosqlite.connect(path) as db:
        await db.executescript(SCHEMA)
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
                        if last_frame.get(message.channel) is message.frame:
                            continue  # another record of the frame already written
                        last_frame[message.channel] = message.frame
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
    parser.add_argument("--db", required=True, metavar="FILE", help="SQLite file to write")
    parser.add_argument("--append", action="store_true", help="add to an existing file")
    parser.add_argument("--commit-every", type=int, default=50, help="rows per transaction")
    args = parser.parse_args(argv)
    if not args.append and Path(args.db).exists():
        parser.error(f"{args.db} already exists (use --append to add to it)")

    async def body(exchange: _common.Exchange) -> None:
        report = await run(
            exchange.config,
            args.db,
            args.symbols,
            count=args.count,
            duration=args.duration,
            commit_every=args.commit_every,
            append=args.append,
        )
        print(f"\nwrote {report.rows} rows to {report.path}:")
        for channel, rows in sorted(report.by_channel.items()):
            print(f"  {channel:<24} {rows}")

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
