"""Batching messages into size- and time-bounded windows for downstream processing.

Shows: decoupling the socket from slow consumers (a database, an HTTP API, a model) by
grouping pushes. A batch is handed on as soon as it holds `max_size` messages, or `max_wait`
seconds after its first message arrived, whichever comes first; so a busy feed gives full
batches and a quiet one still gives timely, smaller ones. The stream is pumped into a memory
channel by its own task, so reading from the socket never waits for the processing.

Run:
    python examples/batching.py                                # simulator, 5 batches
    python examples/batching.py --max-size 50 --max-wait 2 --count 10
    python examples/batching.py --live --duration 60
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs
from anyio.abc import ObjectReceiveStream

from examples import _common
from weex_anyio import WebSocketMessage, WeexConfig, WeexWebSocketClient


@attrs.frozen
class Batch:
    messages: tuple[WebSocketMessage[Any], ...]
    reason: Literal["size", "time", "end"]
    """Why it was closed: it was full, its time was up, or the input ended."""
    opened_at: float
    closed_at: float
    """`anyio.current_time()` at the first message and at closing."""


class Batcher:
    """Cuts a message stream into batches of at most `max_size`, each open at most `max_wait`."""

    def __init__(
        self,
        messages: ObjectReceiveStream[WebSocketMessage[Any]],
        *,
        max_size: int,
        max_wait: float,
    ) -> None:
        if max_size < 1 or max_wait <= 0:
            raise ValueError("need max_size >= 1 and max_wait > 0")
        self._messages = messages
        self.max_size = max_size
        self.max_wait = max_wait

    async def next_batch(self) -> Batch | None:
        """The next batch; None once the input has ended and nothing is left."""
        try:
            first = await self._messages.receive()
        except anyio.EndOfStream:
            return None
        opened = anyio.current_time()
        batch = [first]
        reason: Literal["size", "time", "end"] = "time"
        with anyio.move_on_after(self.max_wait):
            while len(batch) < self.max_size:
                try:
                    batch.append(await self._messages.receive())
                except anyio.EndOfStream:
                    reason = "end"
                    break
            else:
                reason = "size"
        return Batch(tuple(batch), reason, opened, anyio.current_time())


async def print_batch(batch: Batch) -> None:
    """Stand-in downstream processing: one summary line per batch."""
    channels = Counter(message.channel for message in batch.messages)
    spread = ", ".join(f"{channel} x{n}" for channel, n in sorted(channels.items()))
    print(
        f"batch of {len(batch.messages):>3} ({batch.reason:<4}) after "
        f"{batch.closed_at - batch.opened_at:.3f}s: {spread}"
    )


async def run(
    config: WeexConfig,
    symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
    *,
    count: int | None = 5,
    max_size: int = 20,
    max_wait: float = 0.5,
    duration: float | None = None,
    process: Callable[[Batch], Awaitable[None]] = print_batch,
) -> tuple[Batch, ...]:
    """Batch ticker pushes of `symbols` and `process` each batch; stop after `count` batches."""
    batches: list[Batch] = []
    with anyio.move_on_after(duration):
        async with (
            WeexWebSocketClient(config) as client,
            _common.merged(client.stream_tickers(symbols), buffer=max_size * 4) as messages,
        ):
            batcher = Batcher(messages, max_size=max_size, max_wait=max_wait)
            while count is None or len(batches) < count:
                batch = await batcher.next_batch()
                if batch is None:
                    break
                batches.append(batch)
                await process(batch)
    return tuple(batches)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(
        __doc__, count=5, symbols=("BTCUSDT", "ETHUSDT"), count_help="stop after N batches"
    )
    parser.add_argument("--max-size", type=int, default=20, help="messages per batch at most")
    parser.add_argument("--max-wait", type=float, default=0.5, help="seconds a batch stays open")
    args = parser.parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        batches = await run(
            exchange.config,
            args.symbols,
            count=args.count,
            max_size=args.max_size,
            max_wait=args.max_wait,
            duration=args.duration,
        )
        total = sum(len(batch.messages) for batch in batches)
        print(f"\n{len(batches)} batches, {total} messages")

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
