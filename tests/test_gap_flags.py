"""After a connection drops, every kind of consumer flags the first record of each channel.

Streams, sync handlers and async handlers are fed by the same client at once; the simulator
drops the connection, the client reconnects and resubscribes, and each consumer must see
`gap == True` on the first record of every channel after that, and only there.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio

from tests.adapters import BOTH_DIALECTS, Harness, eventually, on_every_adapter
from weex_proto.events import WebSocketMessage

CHANNELS = ("ticker.cmt_btcusdt", "ticker.cmt_ethusdt")


def first_after_drop(seen: list[tuple[str, bool, int]], accepted: int) -> dict[str, bool]:
    """For each channel, the gap flag of its first record from the connection numbered
    `accepted` (the one after the drop), and that no later record of it is flagged."""
    flags: dict[str, bool] = {}
    for channel, gap, connection in seen:
        if connection < accepted:
            continue
        if channel in flags:
            assert not gap, f"a later record of {channel} is flagged"
        else:
            flags[channel] = gap
    return flags


@on_every_adapter(tick_interval=0.05, virtual_time=True, dialects=BOTH_DIALECTS)
async def test_streams_and_both_kinds_of_handlers_flag_the_first_record_after_a_drop(
    h: Harness,
) -> None:
    kinds = ("stream", "sync", "async")
    seen: dict[str, list[tuple[str, bool, int]]] = {kind: [] for kind in kinds}

    def note(kind: str, message: WebSocketMessage[Any]) -> None:
        seen[kind].append((message.channel, message.gap, h.server.stats.accepted))

    async def on_async(message: WebSocketMessage[Any]) -> None:
        note("async", message)

    async with h.client(buffer_size=10_000) as client:
        client.add_message_handler("ticker.*", lambda message: note("sync", message))
        client.add_message_handler("ticker.*", on_async)
        stream = client.stream_tickers(["BTCUSDT", "ETHUSDT"])
        async with contextlib.aclosing(stream), anyio.create_task_group() as readers:

            async def read() -> None:
                async for message in stream:
                    note("stream", message)

            readers.start_soon(read)

            def each_kind_has_both_channels_from(connection: int) -> bool:
                return all(
                    {c for c, _, n in seen[kind] if n >= connection} >= set(CHANNELS)
                    for kind in kinds
                )

            await eventually(lambda: each_kind_has_both_channels_from(1))
            h.server.pause_market()  # every consumer catches up with the first connection
            await anyio.sleep(0.2)  # pushes already on their way arrive
            await eventually(lambda: len({len(records) for records in seen.values()}) == 1)
            assert not any(gap for kind in kinds for _, gap, _ in seen[kind])
            await h.server.drop_connections()
            await eventually(lambda: h.server.stats.accepted == 2)
            await h.server.wait_for_subscription(CHANNELS[1])
            h.server.resume_market()
            await eventually(lambda: each_kind_has_both_channels_from(2))
            readers.cancel_scope.cancel()
    for kind in kinds:
        assert first_after_drop(seen[kind], 2) == dict.fromkeys(CHANNELS, True), kind
