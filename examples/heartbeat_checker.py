"""Health monitoring: read `client.health` on a timer and report stale feeds.

Shows: what the client measures for each endpoint (`client.health.endpoints["public"]`):
messages received, the time of the last one, WEEX pings answered, the WebSocket ping round
trip and the server clock offset; plus `client.health.reconnects`. A watchdog task samples it
every `--every` seconds while another task consumes the tickers, and calls the feed stale when
no data arrived for `--stale-after` seconds, even though the connection itself (pings) is fine.

In simulator mode the example pauses the market for a while so the staleness shows up.

Run:
    python examples/heartbeat_checker.py                       # simulator, 6 seconds
    python examples/heartbeat_checker.py --every 1 --stale-after 3 --duration 20
    python examples/heartbeat_checker.py --live --duration 60
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `python examples/...`

import anyio
import attrs

from examples import _common
from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_anyio.testing import SimulatedWeexServer


@attrs.frozen
class HealthSample:
    elapsed: float
    """Seconds since monitoring started."""
    messages: int
    pings_answered: int
    round_trip: float | None
    """Latest WebSocket ping round trip, seconds (None until one was measured)."""
    last_message_age: float | None
    """Seconds since the last data push (None before the first)."""
    reconnects: int
    stale: bool


def sample(client: WeexWebSocketClient, elapsed: float, stale_after: float) -> HealthSample:
    """Read the public endpoint's numbers out of `client.health`."""
    health = client.health
    public = health.endpoints.get("public")
    age = None
    if public is not None and public.last_message_at is not None:
        # The client stamps events with wall-clock seconds since the epoch.
        age = time.time() - public.last_message_at
    return HealthSample(
        elapsed=elapsed,
        messages=public.messages if public else 0,
        pings_answered=public.pings_answered if public else 0,
        round_trip=public.round_trip if public else None,
        last_message_age=age,
        reconnects=health.reconnects,
        stale=age is None or age > stale_after,
    )


async def run(
    config: WeexConfig,
    symbols: Sequence[str] = ("BTCUSDT",),
    *,
    duration: float = 6.0,
    count: int | None = None,
    every: float = 0.5,
    stale_after: float = 1.5,
    ping_interval: float = 20.0,
    server: SimulatedWeexServer | None = None,
) -> tuple[HealthSample, ...]:
    """Consume `symbols` tickers for `duration` seconds (or `count` samples), sampling health
    every `every` seconds.

    With `server`, pause its market from 30 % of `duration` for `stale_after` + 2 x `every`.
    """
    samples: list[HealthSample] = []

    async def consume(client: WeexWebSocketClient) -> None:
        async for _message in client.stream_tickers(symbols):
            pass  # a real program would do its work here; health is counted by the client

    async def watchdog(client: WeexWebSocketClient) -> None:
        start = anyio.current_time()
        while count is None or len(samples) < count:
            await anyio.sleep(every)
            current = sample(client, anyio.current_time() - start, stale_after)
            samples.append(current)
            age = "-" if current.last_message_age is None else f"{current.last_message_age:.2f}s"
            rtt = "-" if current.round_trip is None else f"{current.round_trip * 1000:.1f}ms"
            print(
                f"t={current.elapsed:5.2f}s messages {current.messages:<5} "
                f"last data {age:<7} pings answered {current.pings_answered:<3} rtt {rtt:<8} "
                f"reconnects {current.reconnects}" + ("  STALE" if current.stale else "")
            )

    async def quiet_spell(server: SimulatedWeexServer) -> None:
        await anyio.sleep(duration * 0.3)
        print("-- simulator: market paused --")
        server.pause_market()
        await anyio.sleep(stale_after + 2 * every)
        server.resume_market()
        print("-- simulator: market resumed --")

    async with (
        WeexWebSocketClient(config, ping_interval=ping_interval) as client,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(consume, client)
        if server is not None:
            tasks.start_soon(quiet_spell, server)
        with anyio.move_on_after(duration):
            await watchdog(client)
        tasks.cancel_scope.cancel()
    return tuple(samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.parser(
        __doc__, duration=6.0, symbols=("BTCUSDT",), count_help="stop after N samples"
    )
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=0.5,
        help="send a WebSocket ping (and time its pong) after S idle seconds (default 0.5)",
    )
    parser.add_argument(
        "--stale-after", type=float, default=1.5, help="seconds without data = stale"
    )
    args = parser.parse_args(argv)

    async def body(exchange: _common.Exchange) -> None:
        samples = await run(
            exchange.config,
            args.symbols,
            duration=args.duration,
            count=args.count,
            every=args.every,
            stale_after=args.stale_after,
            ping_interval=args.ping_interval,
            server=exchange.server,
        )
        stale = sum(sample.stale for sample in samples)
        print(f"\n{len(samples)} samples, {stale} stale")

    # Frequent WEEX pings in the simulator, so "pings answered" moves during a short run.
    return _common.launch(args, body, ping_interval=1.0)


if __name__ == "__main__":
    sys.exit(main())
