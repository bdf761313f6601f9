"""The relay's publishing side against a real `nats-server -js`: pipelined publishes through
a NATS server killed mid-stream, records JetStream will never take, and the stream's settings
on an existing stream. The harness (simulator, reference client, reading the stream back) is
`tests/test_relay.py`'s."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from tests.natsserver import HANG_GUARD, NatsServer, read_until_marker, running_nats_server
from tests.proxyserver import free_port
from tests.test_relay import (
    SYMBOLS,
    Reference,
    _check_once_in_order,
    _market_until,
    _read_stream,
    _relay_args,
    _run,
    _simulator,
    _subscribed_by,
    _with_reference,
)
from weex_anyio.cli import main as cli_main
from weex_anyio.cli import run
from weex_anyio.testing import SimulatedWeexServer
from weex_proto.relaying import encode_body, header_block_size, message_id

MAX_MSG_SIZE = 8000
"""Between a depth-200 delta (about 1.6 KB) and a depth-200 snapshot (about 15 KB)."""


@pytest.fixture
def nats_server(tmp_path: Any) -> Iterator[NatsServer]:
    yield from running_nats_server(tmp_path)


async def _relay_task(args: Any, scope: anyio.CancelScope, stderr: io.StringIO) -> None:
    with scope:
        await run(args, io.StringIO(), stderr)


async def _create_stream(url: str, **limits: Any) -> None:
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(StreamConfig(name="WEEX", subjects=["weex.>"], **limits))
    finally:
        await nc.close()


async def _update_stream(url: str, **changes: Any) -> Any:
    import dataclasses

    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        config = (await js.stream_info("WEEX")).config
        if changes:
            await js.update_stream(dataclasses.replace(config, **changes))
        return (await js.stream_info("WEEX")).config
    finally:
        await nc.close()


def _summary_count(stderr: str, pattern: str) -> int:
    """The number `pattern` (a regular expression with one group) finds in the summary."""
    summary = [line for line in stderr.splitlines() if line.startswith("weex-ws: relayed ")]
    assert len(summary) == 1, stderr
    found = re.search(pattern, summary[0])
    assert found, summary[0]
    return int(found.group(1))


async def _until(condition: Callable[[], bool]) -> None:
    """Poll state nobody signals (captured stderr, log records) until it holds."""
    with anyio.fail_after(HANG_GUARD):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.005)


def test_nats_killed_mid_stream_with_publishes_in_flight(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """nats-server SIGKILLed while the market floods the relay, started again on the same
    store, and killed again right as the relay sends what piled up meanwhile (a window full
    of publishes on the wire): every record is in the stream once, in order per subject."""
    from weex_anyio.cli import _relay

    monkeypatch.setattr(_relay, "STATUS_INTERVAL", 0.05)

    def back() -> int:
        return sum("NATS connection back" in r.getMessage() for r in caplog.records)

    async def main() -> None:
        sim = _simulator(0.002)
        err = io.StringIO()
        async with sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(sim, nats_server.url, "--snapshot-interval", "100000")
            tg.start_soon(_relay_task, args, relay, err)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 2)
                await _market_until(sim, reference, 30)
                await _until(lambda: "\nrelay: " in err.getvalue())  # a status line
                sim.resume_market()
                await reference.wait_for(lambda: reference.count("depth.") >= 150)
                await anyio.to_thread.run_sync(nats_server.kill)  # the market keeps moving
                await reference.wait_for(lambda: reference.count("depth.") >= 400)
                await anyio.to_thread.run_sync(nats_server.start)
                await _until(lambda: back() >= 1)
                await anyio.to_thread.run_sync(nats_server.kill)  # amid the catching up
                await reference.wait_for(lambda: reference.count("depth.") >= 500)
                await anyio.to_thread.run_sync(nats_server.start)
                await _market_until(sim, reference, 650)

            reference = await _with_reference(sim, scenario)
            expected = {c: len(v) for c, v in reference.records.items()}
            got = await _read_stream(nats_server.url, expected)
            relay.cancel()
        _check_once_in_order(reference, got)
        lines = err.getvalue().splitlines()
        assert lines[0].startswith("weex-ws: relaying 6 channels of 2 contracts to nats://")
        assert "window 4000" in lines[0]
        assert any(" in flight, outbox " in line for line in lines[1:-1])
        assert _summary_count(err.getvalue(), r"nats (\d+)") >= 2  # each reconnect counted
        assert _summary_count(err.getvalue(), r"(\d+) refused") == 0

    with caplog.at_level(logging.WARNING, logger="weex_anyio.relay"):
        _run(main)


def _size(channel: str, msg_id: str, data: Any) -> int:
    return len(encode_body(channel, data, 1e9, False)) + header_block_size(msg_id)


def test_a_record_the_stream_refuses_is_dropped_and_the_rest_flows(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A stream with a small max_msg_size and a depth-200 channel: the book snapshots are
    dropped with a WARNING naming the reason, the next record of the subject says `gap`,
    and everything else (tickers, deltas) is in the stream."""
    channels = [f"{kind}.{symbol}" for symbol in SYMBOLS for kind in ("ticker", "depth")]
    channels = [f"{name}.200" if name.startswith("depth.") else name for name in channels]

    async def main() -> None:
        await _create_stream(nats_server.url, max_msg_size=MAX_MSG_SIZE)
        err = io.StringIO()
        sim = _simulator()
        async with sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(
                sim, nats_server.url, "--channels", "ticker,depth", "--depth", "200",
                "--snapshot-interval", "100000",
            )  # fmt: skip
            tg.start_soon(_relay_task, args, relay, err)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 2, channels)
                markers.append(await _market_until(sim, reference, 40))

            markers: list[str] = []
            reference = await _with_reference(sim, scenario, channels)
            got = await read_until_marker(nats_server.url, channels, markers[-1])
            relay.cancel()
        refused = 0
        for channel in channels:
            records = reference.records[channel]
            if channel.startswith("ticker."):
                assert [data for _, data, _ in got[channel]] == records
                assert not any(gap for _, _, gap in got[channel])
                continue
            too_big = [
                _size(channel, message_id(channel, {}, data, 0), data) > MAX_MSG_SIZE
                for data in records
            ]
            assert too_big[0]  # the snapshot after subscribing
            refused += sum(too_big)
            kept = [data for data, big in zip(records, too_big, strict=True) if not big]
            assert [data for _, data, _ in got[channel]] == kept
            flagged = [i > 0 and too_big[i - 1] for i, big in enumerate(too_big) if not big]
            assert [gap for _, _, gap in got[channel]] == flagged, channel
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        said = [text for text in warnings if "refused record depth." in text]
        assert said and f"more than the {MAX_MSG_SIZE} the stream takes" in said[0]
        assert _summary_count(err.getvalue(), r"(\d+) refused") == refused

    with caplog.at_level(logging.WARNING, logger="weex_anyio.relay"):
        _run(main)


def test_a_full_discard_new_stream_does_not_stop_the_relay(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """JetStream refuses every record (a `discard: new` stream at its max_msgs): each is
    dropped, the refusal is named once, and once the stream has room records flow again."""
    from nats.js.api import DiscardPolicy

    async def main() -> None:
        await _create_stream(nats_server.url, max_msgs=10, discard=DiscardPolicy.NEW)
        err = io.StringIO()
        sim = _simulator()
        async with sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(sim, nats_server.url, "--snapshot-interval", "100000")
            tg.start_soon(_relay_task, args, relay, err)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 2)
                await _market_until(sim, reference, 40)
                await _until(lambda: any("maximum messages exceeded" in t for t in said()))
                await _update_stream(nats_server.url, max_msgs=-1)
                markers.append(await _market_until(sim, reference, 60))

            markers: list[str] = []
            await _with_reference(sim, scenario)
            channels = [f"{kind}.{s}" for s in SYMBOLS for kind in ("ticker", "trades")]
            channels += [f"depth.{s}.15" for s in SYMBOLS]
            got = await read_until_marker(nats_server.url, channels, markers[-1])
            relay.cancel()
        assert sum(len(records) for records in got.values()) > 10  # flowing again
        refused = _summary_count(err.getvalue(), r"(\d+) refused")
        assert refused > 0
        assert len([text for text in said() if "maximum messages exceeded" in text]) < refused

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    with caplog.at_level(logging.WARNING, logger="weex_anyio.relay"):
        _run(main)


def test_max_age_is_applied_to_an_existing_stream_and_a_refused_change_is_one_line(
    nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def main() -> None:
        await _create_stream(nats_server.url)
        err = io.StringIO()
        sim = SimulatedWeexServer(symbols=SYMBOLS, trade_interval=None, ping_interval=None)
        async with sim:
            args = _relay_args(sim, nats_server.url, "--max-age", "3600", "--duration", "0.5")
            assert await run(args, io.StringIO(), err) == 0
            quiet = io.StringIO()
            args = _relay_args(
                sim, nats_server.url, "--max-age", "3600", "--duration", "0.5", "--quiet"
            )
            assert await run(args, io.StringIO(), quiet) == 0
        assert "(updated: --max-age 3600)" in err.getvalue().splitlines()[0]
        assert quiet.getvalue() == ""
        config = await _update_stream(nats_server.url)
        assert config.max_age == 3600

    _run(main)
    url = f"ws://127.0.0.1:{free_port()}/v2/ws/public"
    code = cli_main(
        ["relay", "cmt_btcusdt", "--url", url, "--nats", nats_server.url, "--retention",
         "workqueue"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "stream 'WEEX' exists with --retention limits; JetStream will not change it" in err


def test_two_identical_trade_pushes_are_two_records(nats_server: NatsServer) -> None:
    """WEEX trades carry no id: two identical fills must not become one message."""
    symbol = SYMBOLS[0]
    channels = [f"trades.{symbol}", f"ticker.{symbol}"]
    row = {"time": "1700000000000", "price": "100.5", "size": "2", "buyerMaker": True}
    push = json.dumps({"event": "payload", "channel": channels[0], "data": [row]})

    async def main() -> None:
        sim = SimulatedWeexServer(symbols=SYMBOLS, trade_interval=None, ping_interval=None)
        async with sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(sim, nats_server.url, "--channels", "trades,ticker")
            tg.start_soon(_relay_task, args, relay, io.StringIO())

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 2, channels)
                await sim.send_raw(push)
                await sim.send_raw(push)
                markers.append(await _market_until(sim, reference, 0))

            markers: list[str] = []
            reference = await _with_reference(sim, scenario, channels)
            got = await read_until_marker(nats_server.url, channels, markers[-1])
            relay.cancel()
        trades = got[channels[0]]
        assert len(reference.records[channels[0]]) == 2
        assert [data for _, data, _ in trades] == reference.records[channels[0]]
        assert trades[1][0] == trades[0][0] + "#1"

    _run(main)


def test_a_stream_gone_for_a_while_is_retried_not_refused(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No stream answers (503, no responders): the relay says so and sends again, drops
    nothing as refused, and publishes once the stream is back."""

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    async def main() -> None:
        import nats

        err = io.StringIO()
        async with _simulator() as sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(sim, nats_server.url, "--snapshot-interval", "100000")
            tg.start_soon(_relay_task, args, relay, err)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 2)
                await _market_until(sim, reference, 10)
                nc = await nats.connect(nats_server.url)
                try:
                    await nc.jetstream().delete_stream("WEEX")
                finally:
                    await nc.close()
                sim.resume_market()
                await _until(lambda: any("did not take a publish" in t for t in said()))
                await _create_stream(nats_server.url)
                markers.append(await _market_until(sim, reference, 40))

            markers: list[str] = []
            await _with_reference(sim, scenario)
            channels = [f"{kind}.{s}" for s in SYMBOLS for kind in ("ticker", "trades")]
            channels += [f"depth.{s}.15" for s in SYMBOLS]
            got = await read_until_marker(nats_server.url, channels, markers[-1])
            relay.cancel()
        assert got[f"ticker.{SYMBOLS[0]}"]  # the marker, at least: flowing again
        assert any("no responders" in t or "503" in t for t in said())
        assert _summary_count(err.getvalue(), r"(\d+) refused") == 0
        assert _summary_count(err.getvalue(), r"(\d+) publishes retried") > 0

    with caplog.at_level(logging.WARNING, logger="weex_anyio.relay"):
        _run(main)


def test_a_stopping_relay_publishes_what_is_left(nats_server: NatsServer) -> None:
    """`drain` (run after a stop, WEEX closed) sends the outbox through a small window and
    returns once everything is acked; the counters say so, and the stream holds every record
    once, in order per subject."""
    from weex_anyio.cli._nats_link import open_link
    from weex_anyio.cli._relay import Relay, connect_nats, ensure_stream
    from weex_proto.relaying import Outgoing

    count = 3000

    async def main() -> None:
        relay = Relay(window=50, outbox_capacity=count)
        nc = await connect_nats(nats_server.url, reconnect=False)
        link = await open_link(nats_server.url, HANG_GUARD)
        try:
            await ensure_stream(
                nc.jetstream(), "WEEX", ["weex.>"], max_age=None, retention=None,
                duplicate_window=120,
            )  # fmt: skip
            for n in range(count):
                subject = f"weex.ticker.s{n % 7}"
                relay._queue(Outgoing(subject, f"id{n}", subject[5:], {"n": n}, 0.0))
            relay.link = link
            with anyio.fail_after(HANG_GUARD):
                await relay.drain("WEEX")
            assert (relay.acked, relay.in_flight, relay.refused) == (count, 0, 0)
            assert relay.retried == 0
            assert not relay.outbox
        finally:
            await link.aclose()
            await nc.close()
        expected = {f"ticker.s{k}": list(range(k, count, 7)) for k in range(7)}
        got = await _read_stream(nats_server.url, {c: len(v) for c, v in expected.items()})
        assert {c: [data["n"] for _, data in v] for c, v in got.items()} == expected

    _run(main)


def test_a_repeated_server_error_is_said_once_in_a_while(caplog: pytest.LogCaptureFixture) -> None:
    """A soft `-ERR` (a publish permission denied) comes once per publish: the relay says it
    once, then counts the repeats into the next line about it, not a line per record."""
    from weex_anyio.cli._relay import Relay
    from weex_proto.nats_protocol import ServerError

    denied = ServerError("Permissions Violation for Publish to weex.ticker.x", fatal=False)

    async def main() -> None:
        relay = Relay()
        for _ in range(500):
            relay._say_server_error(denied)
        relay._say_server_error(ServerError("Maximum Connections Exceeded", fatal=True))

    with caplog.at_level(logging.WARNING, logger="weex_anyio.relay"):
        anyio.run(main)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("NATS: ")]
    assert said == [
        f"NATS: {denied.text}",
        f"NATS: {denied.text} (499 more times)",
        "NATS: Maximum Connections Exceeded",
    ]


def test_repeated_refusals_are_counted_under_their_own_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refusal reason said once, its repeats counted; when another reason follows, the
    count of the first is said on a line naming the first, never added to the second's."""
    from weex_anyio.cli._relay import Relay
    from weex_proto.relaying import AckResult, Outgoing

    item = Outgoing("weex.ticker.x", "id-1", "ticker.x", {}, 0.0)
    too_big = AckResult("refused", "message size exceeds maximum allowed")
    full = AckResult("refused", "maximum messages exceeded")

    async def main() -> None:
        relay = Relay()
        for _ in range(3):
            relay._say_refused(item, too_big)
        for _ in range(2):
            relay._say_refused(item, full)

    with caplog.at_level(logging.WARNING, logger="weex_anyio.relay"):
        anyio.run(main)
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"JetStream refused record id-1 of weex.ticker.x, dropped (the next one is flagged as "
        f"a gap): {too_big.reason}",
        f"JetStream refused 2 more records since the last such line: {too_big.reason}",
        f"JetStream refused record id-1 of weex.ticker.x, dropped (the next one is flagged as "
        f"a gap): {full.reason}",
    ]
