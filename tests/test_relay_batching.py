"""When the relay's publisher sends: at once when nothing else is in flight (a quiet feed waits
for no one), else in batches (`SEND_COUNT` made, or `LINGER` after the first), since each send
wakes nats-server; and not before a hold after a failed publish ends, even one that began
while it waited for the work turn. Driven on trio's virtual clock, moved only by the test, over
a stream that notes each send, so "at once" is exact and "not before `LINGER`" is checked on
either side."""

from __future__ import annotations

import re
from typing import Any

import trio
import trio.testing

from weex_anyio import work_turns
from weex_anyio.cli._nats_link import NatsLink
from weex_anyio.cli._relay import LINGER, RETRY_DELAY, SEND_COUNT, Relay
from weex_proto.nats_protocol import NatsConnection
from weex_proto.relaying import Outgoing

INBOX = "_INBOX.test."


class NotedStream:
    """A byte stream that keeps what is sent to it, with the (virtual) time of each send."""

    def __init__(self) -> None:
        self.sends: list[tuple[float, bytes]] = []

    async def send(self, data: bytes) -> None:
        self.sends.append((trio.current_time(), data))

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await trio.sleep_forever()
        return b""  # pragma: no cover - never reached

    async def aclose(self) -> None:
        pass

    def publishes(self, index: int) -> int:
        return self.sends[index][1].count(b"HPUB ")


def ready_link(stream: NotedStream) -> NatsLink:
    conn = NatsConnection()
    conn.receive_data(b'INFO {"max_payload":1048576,"headers":true}\r\n')
    conn.connect()
    conn.receive_data(b"PONG\r\n")
    conn.data_to_send()
    return NatsLink(stream, conn)  # type: ignore[arg-type]


def record(n: int) -> Outgoing:
    return Outgoing("weex.ticker.cmt_btcusdt", f"id-{n}", "ticker.cmt_btcusdt", {"n": n}, 0.0)


def run_publisher(body: Any) -> None:
    """Run `body(relay, stream, start, clock)` beside the relay's publisher, on a virtual
    clock that moves only when the body jumps it."""
    clock = trio.testing.MockClock()

    async def main() -> None:
        relay = Relay(window=1000)
        relay._inbox = INBOX
        stream = NotedStream()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay._pump, ready_link(stream))
            await trio.testing.wait_all_tasks_blocked()
            await body(relay, stream, trio.current_time(), clock)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)


async def jump(clock: trio.testing.MockClock, seconds: float) -> None:
    """Move the clock on, then let every task that was due run until all wait again."""
    clock.jump(seconds)
    await trio.testing.wait_all_tasks_blocked()


def test_a_record_with_nothing_in_flight_is_sent_at_once() -> None:
    async def body(relay: Relay, stream: NotedStream, start: float, clock: Any) -> None:
        relay._queue(record(1))
        await trio.testing.wait_all_tasks_blocked()
        assert [(at, stream.publishes(0)) for at, _ in stream.sends] == [(start, 1)]

    run_publisher(body)


def test_records_made_while_others_are_in_flight_wait_for_the_linger() -> None:
    async def body(relay: Relay, stream: NotedStream, start: float, clock: Any) -> None:
        relay._queue(record(1))
        await trio.testing.wait_all_tasks_blocked()  # sent at once, not acked: in flight
        for n in range(2, 5):
            relay._queue(record(n))
            await trio.testing.wait_all_tasks_blocked()
        await jump(clock, LINGER * 0.9)
        assert len(stream.sends) == 1  # still lingering
        await jump(clock, LINGER * 0.2)  # past it
        assert len(stream.sends) == 2
        assert stream.publishes(1) == 3  # the three, in one send

    run_publisher(body)


def test_a_full_batch_goes_without_waiting() -> None:
    async def body(relay: Relay, stream: NotedStream, start: float, clock: Any) -> None:
        relay._queue(record(0))
        await trio.testing.wait_all_tasks_blocked()
        for n in range(1, SEND_COUNT + 1):
            relay._queue(record(n))
        await trio.testing.wait_all_tasks_blocked()
        assert len(stream.sends) == 2
        assert stream.sends[1][0] == start  # no linger: the batch is full
        assert stream.publishes(1) == SEND_COUNT

    run_publisher(body)


def test_an_acked_window_lets_the_next_record_go_at_once() -> None:
    async def body(relay: Relay, stream: NotedStream, start: float, clock: Any) -> None:
        relay._queue(record(1))
        await trio.testing.wait_all_tasks_blocked()
        reply = re.search(rb"HPUB \S+ (\S+) ", stream.sends[0][1])
        assert reply is not None
        relay._on_reply(reply.group(1).decode(), b'{"stream":"WEEX","seq":1}', None)
        assert not len(relay.window)
        relay._queue(record(2))
        await trio.testing.wait_all_tasks_blocked()
        assert [at for at, _ in stream.sends] == [start, start]

    run_publisher(body)


def test_a_failed_publish_while_the_publisher_waits_for_its_turn_still_holds_it_back() -> None:
    """The publisher makes publishes holding the event loop's work turn. A failed publish
    reported while it waits for that turn (another bulk step holds it) still makes it wait
    `RETRY_DELAY` before sending the records again, in order."""

    async def body(relay: Relay, stream: NotedStream, start: float, clock: Any) -> None:
        relay._queue(record(1))
        await trio.testing.wait_all_tasks_blocked()  # sent at once: in flight
        reply = re.search(rb"HPUB \S+ (\S+) ", stream.sends[0][1])
        assert reply is not None
        async with work_turns():  # another bulk step
            relay._queue(record(2))
            await trio.testing.wait_all_tasks_blocked()  # the publisher waits for the turn
            relay._on_reply(reply.group(1).decode(), b"", "503")  # JetStream away: again
        await trio.testing.wait_all_tasks_blocked()
        assert len(stream.sends) == 1  # not before the hold ends
        await jump(clock, RETRY_DELAY * 1.1)
        assert len(stream.sends) == 2
        assert re.findall(rb"id-\d", stream.sends[1][1]) == [b"id-1", b"id-2"]

    run_publisher(body)
