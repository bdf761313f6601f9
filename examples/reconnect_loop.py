"""Resilience: automatic reconnects, the `.gap` flag and `on_gap`, and an outer retry loop.

Shows the two layers of recovery:

* inside one client: a lost connection is re-established with backoff and every channel is
  resubscribed. `on_gap(endpoint, channels)` is called as the reconnect starts, and the first
  message each stream yields afterwards has `message.gap == True` (data may be missing before
  it: refresh any state that must be complete, e.g. an order book or your open orders);
* around the client: after `max_retries` failed attempts in a row the client gives up with
  `ReconnectExhaustedError`; the outer `while` loop waits and starts a fresh client. (A
  connection that drops before the server sent anything counts as a failed attempt too, so a
  server that accepts and drops at once also ends in a give-up; one that delivers data in
  between drops is reconnected forever, the delay growing up to `backoff_max`.)

In simulator mode the example misbehaves on purpose: every `--drop-every` seconds it drops all
connections, and every `--give-up-every`-th time it also refuses the next `max_retries`
handshakes, so the client exhausts its retries and the outer loop takes over. Its backoff is
short (0.1 s up to 0.4 s) so that a run of drops a second apart still streams in between.

The example prints each of these events itself, so the client's own log lines (a WARNING per
reconnect) are shown only with `--verbose`.

Run:
    python examples/reconnect_loop.py                          # simulator, 50 messages
    python examples/reconnect_loop.py --drop-every 0.5 --give-up-every 0 --max-retries -1
    python examples/reconnect_loop.py --live --duration 3600
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from weex_anyio import ReconnectExhaustedError, WeexConfig, WeexWebSocketClient
from weex_anyio.testing import SimulatedWeexServer


@attrs.frozen
class ReconnectReport:
    messages: int
    gap_messages: int
    """Messages that arrived flagged `.gap`: the first after each reconnect."""
    on_gap_calls: tuple[tuple[str, tuple[str, ...]], ...]
    """Every `on_gap(endpoint, channels)` call, in order."""
    reconnects: int
    """Automatic reconnects, summed over all clients (`client.health.reconnects`)."""
    clients: int
    """How many clients the outer loop started."""
    gave_up: int
    """How often a client raised `ReconnectExhaustedError`."""


async def make_trouble(
    server: SimulatedWeexServer, every: float, give_up_every: int | None, max_retries: int | None
) -> None:
    """Simulator only: drop every connection each `every` seconds, sometimes for good."""
    for round_number in itertools.count(1):
        await anyio.sleep(every)
        if give_up_every and max_retries is not None and round_number % give_up_every == 0:
            print(f"-- simulator: dropping connections and refusing {max_retries} handshakes --")
            server.reject_handshakes(max_retries)
        else:
            print("-- simulator: dropping connections --")
        await server.drop_connections()


async def run(
    config: WeexConfig,
    symbols: Sequence[str] = ("BTCUSDT",),
    *,
    count: int | None = 100,
    duration: float | None = None,
    server: SimulatedWeexServer | None = None,
    drop_every: float = 1.0,
    give_up_every: int | None = 3,
    max_retries: int | None = 3,
    backoff_base: float = 0.1,
    restart_delay: float = 0.5,
) -> ReconnectReport:
    """Stream tickers through drops and give-ups until `count` messages or `duration`."""
    messages = gap_messages = gave_up = 0
    on_gap_calls: list[tuple[str, tuple[str, ...]]] = []
    clients: list[WeexWebSocketClient] = []

    def on_gap(endpoint: str, channels: tuple[str, ...]) -> None:
        on_gap_calls.append((endpoint, channels))
        print(f"-- on_gap: {endpoint} connection lost; {', '.join(channels)} may miss data --")

    async def stream_until_done() -> None:
        nonlocal messages, gap_messages, gave_up
        while count is None or messages < count:
            client = WeexWebSocketClient(
                config,
                max_retries=max_retries,
                backoff_base=backoff_base,
                backoff_max=backoff_base * 4,
                on_gap=on_gap,
            )
            clients.append(client)
            try:
                async with client:
                    async for message in client.stream_tickers(symbols):
                        messages += 1
                        flag = "  [gap: data before this may be missing]" if message.gap else ""
                        gap_messages += message.gap
                        print(f"#{messages:<5} {message.channel}{flag}")
                        if count is not None and messages >= count:
                            break
            except ReconnectExhaustedError as exc:
                gave_up += 1
                print(f"-- client gave up ({exc}); new client in {restart_delay}s --")
                await anyio.sleep(restart_delay)

    with anyio.move_on_after(duration):
        async with anyio.create_task_group() as tasks:
            if server is not None:
                tasks.start_soon(make_trouble, server, drop_every, give_up_every, max_retries)
            await stream_until_done()
            tasks.cancel_scope.cancel()
    return ReconnectReport(
        messages=messages,
        gap_messages=gap_messages,
        on_gap_calls=tuple(on_gap_calls),
        reconnects=sum(client.health.reconnects for client in clients),
        clients=len(clients),
        gave_up=gave_up,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(__doc__, count=50, symbols=("BTCUSDT",))
    parser.add_argument(
        "--drop-every", type=float, default=1.0, help="simulator: seconds between drops"
    )
    parser.add_argument(
        "--give-up-every",
        type=int,
        default=3,
        help="simulator: every Nth drop also refuses handshakes until the client gives up "
        "(0: never)",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="failed attempts in a row before giving up (default 3; -1: retry forever)",
    )
    args = parser.parse_args(argv)
    if not args.verbose:  # every event below is printed by the example itself
        logging.getLogger("weex_ws").setLevel(logging.CRITICAL)

    async def body(exchange: _common.Exchange) -> None:
        report = await run(
            exchange.config,
            args.symbols,
            count=args.count,
            duration=args.duration,
            server=exchange.server,
            drop_every=args.drop_every,
            give_up_every=args.give_up_every or None,
            max_retries=None if args.max_retries < 0 else args.max_retries,
        )
        print(
            f"\n{report.messages} messages, {report.gap_messages} flagged .gap, "
            f"{len(report.on_gap_calls)} on_gap calls, {report.reconnects} reconnects, "
            f"{report.clients} clients, gave up {report.gave_up} times"
        )

    return _common.launch(args, body)


if __name__ == "__main__":
    sys.exit(main())
