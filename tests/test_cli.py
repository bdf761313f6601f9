"""The `weex-ws` command end to end, plus the replay server, recordings and JSON logs.

Commands run as real subprocesses (`python -m weex_anyio ...`) beside a simulator in the test's
event loop, so exit codes, output streams and signals are the real thing. What they write is
checked with independent readers: `json.loads`, the `sqlite3` module, the doc's example frames,
RFC 6455's handshake example, and a pseudo-terminal screen (via pyte) for the dashboard.

Behaviour runs on both WEEX protocol generations (`api`: the simulator's URLs, so the client's
dialect, are v2's or v3's); where a test reads frames as sent, a small per-dialect reader
(`pushed`, `subscribe_request`, ...) reads them in that dialect's own words.
"""

from __future__ import annotations

import copy
import fcntl
import io
import itertools
import json
import logging
import os
import pty
import re
import select
import shlex
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pyte
import pytest
import wsproto
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import events as ws

from tests.adapters import BOTH_DIALECTS
from tests.fixtures_messages import (
    ACCOUNT_PUSH,
    DEPTH_PUSH,
    KLINE_PUSH,
    TICKER_PUSH,
    TRADES_PUSH,
)
from tests.proxyserver import free_port
from weex_anyio import AuthenticationError, WeexConfig, WeexWebSocketClient
from weex_anyio.cli import main
from weex_anyio.cli._dashboard import DashboardState, render
from weex_anyio.cli._recordings import iter_frames, open_writer, scan_recording
from weex_anyio.cli.replay import ReplayTransport
from weex_anyio.testing import SimulatedWeexServer
from weex_anyio.testing import _v3 as sim_v3
from weex_proto.config import parse_endpoint
from weex_proto.logs import REDACTED, JsonLogFormatter
from weex_proto.replay import RecordedFrame, RecordingError, ReplayServer, due_at, parse_speed
from weex_proto.runtime.health import Health
from weex_proto.v3wire import wire_channel

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SUMMARY = re.compile(r"recorded (\d+) messages")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- helpers


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment without any WEEX_* setting, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEEX_")}
    env.update(extra)
    return env


SIM_CREDENTIALS = {
    "WEEX_API_KEY": "sim-api-key",
    "WEEX_SECRET_KEY": "sim-secret-key",
    "WEEX_PASSPHRASE": "sim-passphrase",
}


async def run_cli(
    *args: str, env: dict[str, str] | None = None, within: float = 30
) -> subprocess.CompletedProcess[str]:
    with anyio.fail_after(within):
        done = await anyio.run_process(
            [PYTHON, "-m", "weex_anyio", *args],
            env=cli_env() if env is None else env,
            cwd=ROOT,
            check=False,
        )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


@asynccontextmanager
async def simulator(**options: Any) -> AsyncIterator[SimulatedWeexServer]:
    options.setdefault("tick_interval", 0.05)
    options.setdefault("trade_interval", 0.1)
    options.setdefault("ping_interval", 0.5)
    async with SimulatedWeexServer(**options) as server:
        yield server


def json_lines(text: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(record, dict) for record in records)
    return records


def is_decimal_text(value: object) -> bool:
    return isinstance(value, str) and Decimal(value).is_finite()


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def reported_count(stderr: str) -> int:
    found = SUMMARY.findall(stderr)
    assert found, stderr
    return int(found[-1])


def read_frames(path: Path) -> list[tuple[float, str, str]]:
    """(received_at, channel, raw) of every frame, read with the standard library alone."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        if rows and "format" in rows[0]:  # the header line, not a frame
            rows = rows[1:]
        return [(row["received_at"], row["channel"], row["raw"]) for row in rows]
    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT received_at, channel, raw FROM frames ORDER BY id"))
    finally:
        db.close()


def recorded_dialect(path: Path) -> str:
    """What a recording says it holds: a JSON lines file's header, a SQLite one's table."""
    if path.suffix == ".jsonl":
        header = json.loads(path.read_text().splitlines()[0])
        assert header["format"] == "weex-ws recording 1"
        return str(header["dialect"])
    db = sqlite3.connect(path)
    try:
        [said] = db.execute("SELECT value FROM recording WHERE key = 'dialect'").fetchone()
    finally:
        db.close()
    return str(said)


V3_KINDS = {"ticker": "ticker", "trade": "trades", "depth": "depth", "depthSnapshot": "depth"}
"""A v3 public push's `e` -> the v2 channel kind it is on."""


def pushed(raw: str, api: str) -> tuple[str, int]:
    """The channel of a recorded public push and how many records it holds, read from its text
    in its dialect's own words: v2's `channel` and `data`, v3's `e`, `s`, `l` and `d` (a v3
    book update is one record)."""
    frame = json.loads(raw)
    if api == "v2":
        assert frame["event"] == "payload"
        return frame["channel"], len(frame["data"])
    kind = V3_KINDS[frame["e"]]
    channel = f"{kind}.cmt_{frame['s'].lower()}"
    if kind == "depth":
        return f"{channel}.{frame['l']}", 1
    return channel, len(frame["d"])


def is_book_snapshot(raw: str, api: str) -> bool:
    frame = json.loads(raw)
    if api == "v2":
        return bool(frame["data"][0]["depthType"] == "SNAPSHOT")
    return bool(frame["e"] == "depthSnapshot")


def sqlite_rows(path: Path) -> int:
    """Rows so far, without creating the file or disturbing the writer."""
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return 0
    try:
        return int(db.execute("SELECT COUNT(*) FROM frames").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


# --------------------------------------------------------------------------- stream commands


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
@pytest.mark.parametrize(
    ("command", "extra", "channels"),
    [
        ("tickers", ["BTCUSDT", "eth-usdt"], {"ticker.cmt_btcusdt", "ticker.cmt_ethusdt"}),
        ("book", ["BTCUSDT", "--depth", "3"], {"depth.cmt_btcusdt.15"}),
        ("trades", ["BTCUSDT", "cmt_ethusdt"], {"trades.cmt_btcusdt", "trades.cmt_ethusdt"}),
    ],
)
async def test_public_stream_commands_print_json_lines(
    command: str, extra: list[str], channels: set[str], api: str
) -> None:
    async with simulator(api=api) as server:
        result = await run_cli(
            command, *extra, "--url", server.public_url, "--json", "--count", "6"
        )
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert len(records) == 6
    seen = {record["channel"] for record in records}
    assert seen == channels if command == "tickers" else seen <= channels
    for record in records:
        assert isinstance(record["received_at"], float)
        data = record["data"]
        if command == "tickers":  # one JSON line per record, `message.data`'s names
            assert is_decimal_text(data["last"]) and data["last"] == data["lastPrice"]
        elif command == "trades":
            assert is_decimal_text(data["price"]) and is_decimal_text(data["size"])
        else:
            bids = [Decimal(price) for price, _ in data["bids"]]
            asks = [Decimal(price) for price, _ in data["asks"]]
            assert all(is_decimal_text(v) for level in data["bids"] + data["asks"] for v in level)
            assert len(bids) == len(asks) == 3
            assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
            assert bids[0] < asks[0]


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
@pytest.mark.parametrize(
    ("command", "channel", "key"),
    [
        ("account", "account", "amount"),
        ("positions", "positions", "size"),
        ("orders", "orders", "size"),
        ("fills", "fill", "fillValue"),
    ],
)
async def test_private_stream_commands_print_json_lines(
    command: str, channel: str, key: str, api: str
) -> None:
    async with simulator(trade_interval=0.05, api=api) as server:
        result = await run_cli(
            command, "--private-url", server.private_url, "--json", "--count", "2",
            env=cli_env(**SIM_CREDENTIALS),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert [record["channel"] for record in records] == [channel, channel]
    for record in records:  # one JSON line per record
        assert is_decimal_text(record["data"][key])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ({}, ["WEEX_API_KEY", "WEEX_SECRET_KEY", "WEEX_PASSPHRASE"]),
        ({"WEEX_API_KEY": "key"}, ["WEEX_SECRET_KEY", "WEEX_PASSPHRASE"]),
    ],
)
async def test_private_command_without_credentials_names_the_variables(
    present: dict[str, str], missing: list[str]
) -> None:
    # One dialect: the command stops before connecting, whichever generation the URL names.
    result = await run_cli(
        "orders", "--private-url", "ws://127.0.0.1:1/v2/ws/private", env=cli_env(**present)
    )
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert all(name in line for name in missing)
    assert all(name not in line for name in present)


SERVER_SAYS_INVALID = {"v2": "40020", "v3": "INVALID_ARGUMENT"}
"""The server's own word refusing a channel: v2's error code, v3's message (it has no code)."""


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
async def test_a_private_command_given_the_public_url_says_it_may_be_the_wrong_endpoint(
    api: str,
) -> None:
    async with simulator(api=api) as server:
        credentials = server.credentials
        env = cli_env(
            WEEX_API_KEY=credentials.api_key,
            WEEX_SECRET_KEY=credentials.secret_key,
            WEEX_PASSPHRASE=credentials.passphrase,
        )
        result = await run_cli("orders", "--private-url", server.public_url, env=env)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line.startswith(f"weex-ws: error: {server.public_url}: ")
    assert "refused the private channel orders" in line and SERVER_SAYS_INVALID[api] in line
    assert "is this the private endpoint?" in line
    assert f"wss://ws-contract.weex.com/{api}/ws/private" in line


@pytest.mark.anyio
async def test_an_unreachable_server_fails_at_once_in_one_line(tmp_path: Path) -> None:
    # One dialect: no byte reaches a server, so a v3 URL fails the same way (and is named).
    url = f"ws://127.0.0.1:{free_port()}/v2/ws/public"  # nothing listens there
    out = tmp_path / "never.sqlite"
    results = [
        await run_cli("tickers", "BTCUSDT", "--url", url),
        await run_cli("demo", "BTCUSDT", "--url", url),
        await run_cli("record", "BTCUSDT", "--url", url, "--out", str(out)),
    ]
    logged = await run_cli("tickers", "BTCUSDT", "--url", url, "--log-json", "--log-level", "debug")
    for result in results:
        assert result.returncode == 1
        line = one_error_line(result.stderr)  # no warning per retry: there is no retry
        assert line == f"weex-ws: error: {url}: could not connect: [Errno 111] Connection refused"
    assert not out.exists()
    entries = json_lines(logged.stderr)  # --log-json: the final error is a JSON line too
    events = [entry.get("weex_event") for entry in entries]
    assert events.count("connecting") == 1  # attempted once before failing
    assert entries[-1]["weex_event"] == "failed" and entries[-1]["exit_code"] == 1
    assert entries[-1]["message"] == f"{url}: could not connect: [Errno 111] Connection refused"
    assert logged.returncode == 1


@pytest.mark.anyio
async def test_a_host_name_that_does_not_resolve_is_named_with_the_resolvers_reason() -> None:
    host = "no-such-host.weex-ws.invalid"  # .invalid never resolves (RFC 2606)
    try:
        socket.getaddrinfo(host, 80)
    except socket.gaierror as exc:
        reason = str(exc.strerror)  # "Name or service not known", or the offline resolver's
    else:
        pytest.skip(f"{host} resolves here")
    # One dialect: the name fails before any protocol starts, a v3 URL's alike.
    result = await run_cli("tickers", "BTCUSDT", "--url", f"ws://{host}/v2/ws/public")
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert f"ws://{host}/v2/ws/public: could not connect: " in line
    assert reason in line and "Unknown error" not in line


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["tickers"],
        ["tickers", "not a symbol!"],
        ["tickers", "BTCUSDT", "--url", "http://127.0.0.1/v2/ws/public"],
        ["tickers", "BTCUSDT", "--count", "0"],
        ["book", "BTCUSDT", "--depth", "500"],
        ["record", "BTCUSDT"],
        ["record", "BTCUSDT", "--out", "x.jsonl", "--channels", "ticker,candles"],
        ["record", "BTCUSDT", "--out", "x.jsonl", "--depth", "50"],
        ["replay", "x.jsonl", "--speed", "fast"],
        ["replay", "x.jsonl", "--speed", "-2"],
        ["--log-level", "LOUD", "demo"],
        ["demo", "--duration", "soon"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- record


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
async def test_record_writes_every_reported_frame_and_replays_them(
    tmp_path: Path, suffix: str, api: str
) -> None:
    """Frames exactly as received, in the recording's dialect, which the file names; `replay`
    plays them in that dialect: one line per record of each frame."""
    out = tmp_path / f"recording{suffix}"
    async with simulator(api=api) as server:
        result = await run_cli(
            "record", "BTCUSDT", "ETHUSDT", "--url", server.public_url, "--out", str(out),
            "--duration", "1",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = read_frames(out)
    assert len(frames) == reported_count(result.stderr) > 0
    expected = {
        f"{kind}.cmt_{coin}usdt{suffix_}"
        for coin in ("btc", "eth")
        for kind, suffix_ in (("ticker", ""), ("depth", ".15"), ("trades", ""))
    }
    assert {channel for _, channel, _ in frames} == expected
    times = [received_at for received_at, _, _ in frames]
    assert times == sorted(times)
    for _, channel, raw in frames:  # as received: the dialect's own frame, on its channel
        assert pushed(raw, api)[0] == channel
    assert recorded_dialect(out) == api

    replayed = await run_cli("replay", str(out), "--speed", "max", "--json")
    assert replayed.returncode == 0, replayed.stderr
    lines = json_lines(replayed.stdout)
    assert [(line["channel"], line["received_at"]) for line in lines] == [  # one per record
        (channel, received_at)
        for received_at, channel, raw in frames
        for _ in range(pushed(raw, api)[1])
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
async def test_record_chosen_channels_up_to_a_count(tmp_path: Path, api: str) -> None:
    out = tmp_path / "depth.jsonl"
    async with simulator(api=api) as server:
        result = await run_cli(
            "record", "SOLUSDT", "--channels", "depth", "--depth", "200", "--count", "5",
            "--url", server.public_url, "--out", str(out),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = read_frames(out)
    assert reported_count(result.stderr) == len(frames) == 5
    assert {channel for _, channel, _ in frames} == {"depth.cmt_solusdt.200"}
    assert {pushed(raw, api)[0] for _, _, raw in frames} == {"depth.cmt_solusdt.200"}
    assert is_book_snapshot(frames[0][2], api)


@pytest.mark.anyio
async def test_record_refuses_to_overwrite(tmp_path: Path) -> None:
    # One dialect: the file is refused before anything connects.
    out = tmp_path / "taken.sqlite"
    out.write_bytes(b"precious")
    result = await run_cli("record", "BTCUSDT", "--out", str(out), "--url", "ws://127.0.0.1:1/x")
    assert result.returncode == 2
    assert "already exists" in one_error_line(result.stderr)
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("suffix", [".sqlite", ".jsonl"])
def test_record_into_a_missing_directory_says_so(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # One dialect: the file is refused before anything connects.
    out = tmp_path / "nodir" / f"x{suffix}"
    assert main(["record", "BTCUSDT", "--out", str(out), "--url", "ws://127.0.0.1:1/x"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"weex-ws: error: {out}: cannot create it: the directory {out.parent} does not exist"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
async def test_record_stopped_by_sigterm_loses_nothing(tmp_path: Path, api: str) -> None:
    out = tmp_path / "stopped.sqlite"
    async with simulator(api=api) as server:
        command = [PYTHON, "-m", "weex_anyio", "record", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
        command += ["--url", server.public_url, "--out", str(out)]
        async with await anyio.open_process(command, env=cli_env(), cwd=ROOT) as process:
            with anyio.fail_after(15):
                while sqlite_rows(out) < 30:  # noqa: ASYNC110 - polling another process's file
                    await anyio.sleep(0.05)
                process.send_signal(signal.SIGTERM)
                assert process.stderr is not None
                stderr = b"".join([chunk async for chunk in process.stderr]).decode()
                code = await process.wait()
    assert code == 0, stderr
    rows = sqlite_rows(out)
    assert rows == reported_count(stderr) >= 30
    db = sqlite3.connect(out)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()
    assert not await anyio.Path(f"{out}-journal").exists()  # no transaction left half-done


@pytest.mark.anyio
@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
async def test_a_recording_refuses_frames_of_the_other_dialect(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"mixed{suffix}"
    async with simulator() as v2_server, simulator(api="v3") as v3_server:
        first = await run_cli(
            "record", "BTCUSDT", "--url", v2_server.public_url, "--out", str(out), "--count", "2"
        )
        assert first.returncode == 0, first.stderr
        second = await run_cli(
            "record", "BTCUSDT", "--url", v3_server.public_url, "--out", str(out),
            "--count", "2", "--append",
        )  # fmt: skip
    assert second.returncode == 2
    assert "holds v2 frames; this client speaks v3" in second.stderr
    assert len(read_frames(out)) == 2


@pytest.mark.parametrize("api", BOTH_DIALECTS)
def test_appending_to_a_jsonl_recording_without_a_header_keeps_it_readable(
    tmp_path: Path, api: str
) -> None:
    """A JSON lines recording without the header line: appending frames of its own dialect
    adds no header in the middle, and the other dialect's are refused (its first frame says
    which it holds)."""
    path = tmp_path / "old.jsonl"
    frames = doc_recording(count=4, api=api)
    write_recording(path, frames[:2])
    writer = open_writer(path, append=True, dialect=api)
    writer.write(frames[2:])
    writer.close()
    assert [json.loads(line)["raw"] for line in path.read_text().splitlines()] == [
        frame.raw for frame in frames
    ]
    info = scan_recording(path)
    assert (info.frames, info.dialect) == (4, api)
    other = "v3" if api == "v2" else "v2"
    with pytest.raises(RecordingError, match=f"holds {api} frames; this client speaks {other}"):
        open_writer(path, append=True, dialect=other)


# --------------------------------------------------------------------------- replay


DOC_PUSHES = [TICKER_PUSH, DEPTH_PUSH, TRADES_PUSH, KLINE_PUSH, ACCOUNT_PUSH]


def doc_pushes() -> list[dict[str, Any]]:
    """The doc's example pushes (v2), and a second ticker with another price."""
    pushes = [copy.deepcopy(push) for push in DOC_PUSHES]
    second_ticker = copy.deepcopy(TICKER_PUSH)
    second_ticker["data"][0]["lastPrice"] = "102700.50"
    pushes.append(second_ticker)
    return pushes


def doc_recording(step: float = 0.2, count: int = 6, api: str = "v2") -> list[RecordedFrame]:
    """`doc_pushes()` at `step` intervals; with `api="v3"` each as the v3 frame that carries it
    (the simulator's translation), recorded on the same v2 channel names as a client records."""
    start = 1_700_000_000.125
    frames = []
    for i, push in enumerate(doc_pushes()[:count]):
        when = start + i * step
        text = json.dumps(push if api == "v2" else sim_v3.push(push, int(when * 1000)))
        frames.append(RecordedFrame(when, push["channel"], text))
    return frames


def write_recording(path: Path, frames: list[RecordedFrame]) -> None:
    """The frames as a recording that does not say its dialect: a JSON lines file without the
    header line, a database with only the `frames` table (replay tells from the first frame)."""
    if path.suffix == ".jsonl":
        lines = [
            json.dumps({"received_at": f.received_at, "channel": f.channel, "raw": f.raw})
            for f in frames
        ]
        path.write_text("\n".join(lines) + "\n")
        return
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "CREATE TABLE frames (id INTEGER PRIMARY KEY, received_at REAL, channel TEXT, raw TEXT)"
        )
        db.executemany(
            "INSERT INTO frames (received_at, channel, raw) VALUES (?, ?, ?)",
            [(f.received_at, f.channel, f.raw) for f in frames],
        )
    db.close()


def key_value(record: dict[str, Any], raw: dict[str, Any]) -> tuple[object, object]:
    """One field of the replayed record beside the same field read straight from the frame."""
    channel = raw["channel"]
    data = record["data"]  # the record: one JSON line per record
    if channel.startswith("ticker."):
        return data["lastPrice"], raw["data"][0]["lastPrice"]
    if channel.startswith("depth."):
        asks = [[level["price"], level["size"]] for level in data["asks"]]
        return asks, [[level["price"], level["size"]] for level in raw["data"][0]["asks"]]
    if channel.startswith("trades."):
        return data["price"], raw["data"][0]["price"]
    if channel.startswith("kline."):
        return data["close"], raw["data"][0]["close"]
    return data["amount"], raw["msg"]["data"]["collateral"][0]["amount"]


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
@pytest.mark.parametrize("suffix", [".jsonl", ".db"])
async def test_replay_gives_exactly_the_recorded_frames_every_time(
    tmp_path: Path, suffix: str, api: str
) -> None:
    """Also a recording that does not say its dialect (no header, no `recording` table): its
    first frame tells, and each record's value is the doc push's own, v3 frames or v2."""
    frames = doc_recording(api=api)
    path = tmp_path / f"doc{suffix}"
    write_recording(path, frames)
    first = await run_cli("replay", str(path), "--speed", "max", "--json")
    second = await run_cli("replay", str(path), "--speed", "max", "--json")
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    records = json_lines(first.stdout)
    assert len(records) == len(frames)
    for record, frame, push in zip(records, frames, doc_pushes(), strict=True):
        assert (record["channel"], record["received_at"], record["gap"]) == (
            frame.channel,
            frame.received_at,
            False,
        )
        replayed, recorded = key_value(record, push)
        assert replayed == recorded


@pytest.mark.parametrize("said", BOTH_DIALECTS)
def test_a_jsonl_recording_is_read_in_the_dialect_its_header_names(
    tmp_path: Path, said: str
) -> None:
    """The header decides (a frame that is neither generation's is read in its dialect);
    without it the first frame does, and a frame contradicting it is an error."""
    frame = RecordedFrame(1_700_000_000.5, "ticker.cmt_btcusdt", '{"neither":"v2 nor v3"}')
    header = json.dumps({"format": "weex-ws recording 1", "dialect": said})
    path = tmp_path / "said.jsonl"
    path.write_text(f"{header}\n{frame.to_json_line()}\n")
    info = scan_recording(path)
    assert (info.dialect, info.frames, info.channels) == (said, 1, ("ticker.cmt_btcusdt",))
    assert list(iter_frames(info)) == [frame]
    for api in BOTH_DIALECTS:
        first = doc_recording(count=1, api=api)[0]
        path.write_text(f"{first.to_json_line()}\n")  # no header: the first frame's dialect
        assert scan_recording(path).dialect == api
        path.write_text(f"{header}\n{first.to_json_line()}\n")
        if api == said:
            assert scan_recording(path).dialect == said
        else:
            with pytest.raises(RecordingError, match=f":2: a {api} frame, but the header says"):
                scan_recording(path)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("speed", "factor", "api"), [("recorded", 1.0, "v2"), ("2", 2.0, "v2"), ("recorded", 1.0, "v3")]
)
async def test_replay_paces_frames_by_their_recorded_times(
    tmp_path: Path, speed: str, factor: float, api: str
) -> None:
    frames = doc_recording(step=0.2, count=6, api=api)  # 1.0 s from first to last
    span = frames[-1].received_at - frames[0].received_at
    path = tmp_path / "paced.jsonl"
    write_recording(path, frames)
    arrivals: list[float] = []
    command = [PYTHON, "-m", "weex_anyio", "replay", str(path), "--speed", speed, "--json"]
    with anyio.fail_after(20):
        async with await anyio.open_process(command, env=cli_env(), cwd=ROOT) as process:
            assert process.stdout is not None
            pending = b""
            async for chunk in process.stdout:
                now = anyio.current_time()
                pending += chunk
                while b"\n" in pending:
                    _, pending = pending.split(b"\n", 1)
                    arrivals.append(now)
            assert await process.wait() == 0
    assert len(arrivals) == len(frames)
    assert arrivals[-1] - arrivals[0] >= 0.8 * span / factor


@pytest.mark.parametrize(
    ("name", "content", "complaint"),
    [
        ("missing.jsonl", None, "no such file"),
        ("notes.txt", "hello\n", "unknown recording format"),
        (
            "broken.jsonl",
            '{"received_at": 1, "channel": "a", "raw": "{}"}\n{oops\n',
            ":2: not valid JSON",
        ),
        ("fields.jsonl", '{"received_at": -1, "channel": "a", "raw": "{}"}\n', "received_at"),
        ("noraw.jsonl", '{"received_at": 1, "channel": "a"}\n', "not a weex-ws recording"),
        (  # another program's JSON lines (here: weex-ws tickers --json): not a recording
            "tickers.jsonl",
            '{"channel": "ticker.cmt_btcusdt", "received_at": "2026-01-01T00:00:00Z", '
            '"gap": false, "data": {}}\n',
            ":1: not a weex-ws recording (each line of one has received_at, channel and raw",
        ),
        ("foreign.jsonl", '{"level": "info", "msg": "hello"}\n', ":1: not a weex-ws recording"),
        (
            "huge.jsonl",
            '{"received_at": 1%s, "channel": "a", "raw": ""}' % ("0" * 400),
            "received_at",
        ),
        ("binary.jsonl", b"\xff\xfe\x00", "UTF-8"),
        ("empty.jsonl", "", "no frames"),
        (
            "header.jsonl",
            '{"format": "weex-ws recording 1", "dialect": "v3"}\n',
            "the recording holds no frames",
        ),
        (
            "newer.jsonl",
            '{"format": "weex-ws recording 9", "dialect": "v3"}\n',
            ":1: a recording of format 'weex-ws recording 9'",
        ),
        (
            "dialect.jsonl",
            '{"format": "weex-ws recording 1", "dialect": "v4"}\n',
            ":1: dialect must be one of v2, v3",
        ),
        (  # a header is the first line or nothing: here it is a line that is no frame
            "joined.jsonl",
            '{"received_at": 1, "channel": "a", "raw": "{}"}\n'
            '{"format": "weex-ws recording 1", "dialect": "v3"}\n',
            ":2: not a weex-ws recording",
        ),
        ("garbage.sqlite", b"this is not a database" * 100, "not a SQLite database"),
    ],
)
def test_unusable_recordings_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | bytes | None,
    complaint: str,
) -> None:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    assert main(["replay", str(path), "--speed", "max"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert name in line and complaint in line


def test_a_database_that_is_not_a_recording_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE people (name TEXT)")
    db.close()
    assert main(["replay", str(path)]) == 2
    assert "not a weex-ws recording" in one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- the replay core


RFC6455_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC6455_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3


def upgrade_request(key: str = RFC6455_KEY, api: str = "v2") -> bytes:
    return (
        f"GET /{api}/ws/public HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("api", BOTH_DIALECTS)
def test_replay_server_accepts_the_upgrade_with_the_rfc_accept_value(api: str) -> None:
    """The same upgrade on both generations; its path says which the client speaks."""
    server = ReplayServer(["ticker.cmt_btcusdt"])
    server.receive_data(upgrade_request(api=api))
    assert server.v3 is (api == "v3")
    status, *lines = server.data_to_send().decode().split("\r\n")
    assert status.startswith("HTTP/1.1 101 ")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines if line)
    }
    assert headers["sec-websocket-accept"] == RFC6455_ACCEPT
    assert headers["upgrade"].lower() == "websocket"


def subscribe_request(api: str, channel: str, request_id: int) -> str:
    """A subscribe request as each dialect sends one: v2 by channel, v3 by its v3 name and id."""
    if api == "v2":
        return json.dumps({"event": "subscribe", "channel": channel})
    return json.dumps({"method": "SUBSCRIBE", "params": [wire_channel(channel)], "id": request_id})


def accepted(api: str, answer: tuple[Any, int], channel: str) -> bool:
    """The dialect's yes to a subscription (`answer`: the reply and the request's id): v2's
    names the channel, v3's the request."""
    reply, request_id = answer
    if api == "v2":
        return bool(reply == {"event": "subscribed", "channel": channel})
    return bool(reply == {"id": request_id, "result": True})


def refused(api: str, answer: tuple[Any, int], channel: str) -> bool:
    """The dialect's no: v2's error event naming the channel, v3's `result: false` by id."""
    reply, request_id = answer
    if api == "v2":
        return bool(reply["event"] == "error" and reply["channel"] == channel)
    return bool(reply["result"] is False and reply["id"] == request_id and reply["msg"])


class WsClient:
    """An independent wsproto client talking to a ReplayServer in memory."""

    def __init__(self, server: ReplayServer, api: str = "v2") -> None:
        self.server = server
        self.api = api
        self.requests = itertools.count(1)
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.send(ws.Request(host="example", target=f"/{api}/ws/public"))

    def send(self, event: ws.Event) -> list[ws.Event]:
        self.server.receive_data(self.ws.send(event))
        self.ws.receive_data(self.server.data_to_send())
        return list(self.ws.events())

    def subscribe(self, channel: str) -> tuple[Any, int]:
        """The server's answer, and the request's id."""
        request_id = next(self.requests)
        [reply] = self.send(ws.Message(data=subscribe_request(self.api, channel, request_id)))
        assert isinstance(reply, ws.TextMessage)
        return json.loads(reply.data), request_id


@pytest.mark.parametrize("api", BOTH_DIALECTS)
def test_replay_server_acks_recorded_channels_and_refuses_others(api: str) -> None:
    server = ReplayServer(["ticker.cmt_btcusdt", "trades.cmt_btcusdt", "account"])
    client = WsClient(server, api)
    assert not server.ready  # both public channels must be subscribed first; not `account`
    assert accepted(api, client.subscribe("ticker.cmt_btcusdt"), "ticker.cmt_btcusdt")
    assert refused(api, client.subscribe("ticker.cmt_ethusdt"), "ticker.cmt_ethusdt")
    assert not server.ready
    client.subscribe("trades.cmt_btcusdt")
    assert server.ready
    server.send_frame('{"event":"payload"}')
    client.ws.receive_data(server.data_to_send())
    [frame] = client.ws.events()
    assert isinstance(frame, ws.TextMessage) and frame.data == '{"event":"payload"}'
    [pong] = client.send(ws.Ping(b"hi"))
    assert isinstance(pong, ws.Pong) and pong.payload == b"hi"


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
async def test_replay_transport_serves_the_recording_once_then_closes(api: str) -> None:
    frames = doc_recording(count=3, api=api)
    transport = ReplayTransport(frames, speed=None)
    endpoint = parse_endpoint(f"ws://replay.invalid/{api}/ws/public")
    stream = await transport(endpoint)
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send(client.send(ws.Request(host="replay.invalid", target=f"/{api}/ws/public")))
    client.receive_data(await stream.receive())
    assert [type(event) for event in client.events()] == [ws.AcceptConnection]
    for request_id, channel in enumerate(dict.fromkeys(frame.channel for frame in frames), 1):
        request = subscribe_request(api, channel, request_id)
        await stream.send(client.send(ws.Message(data=request)))
    recorded = {frame.raw for frame in frames}
    texts: list[str] = []
    clocks: list[float] = []
    close: ws.CloseConnection | None = None
    with anyio.fail_after(5):
        while close is None:
            client.receive_data(await stream.receive())
            for event in client.events():
                if isinstance(event, ws.TextMessage) and event.data in recorded:  # not an ack
                    texts.append(event.data)
                    clocks.append(transport.clock())
                elif isinstance(event, ws.CloseConnection):
                    close = event
    assert texts == [frame.raw for frame in frames]
    assert clocks == [frame.received_at for frame in frames]
    assert close.code == 1000 and transport.finished.is_set()
    await stream.send(client.send(close.response()))
    with pytest.raises(anyio.EndOfStream):
        await stream.receive()
    with pytest.raises(ConnectionRefusedError):
        await transport(endpoint)


@given(
    received_at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    channel=st.text(min_size=1),
    raw=st.text(),
)
def test_recorded_frames_survive_a_json_line(received_at: float, channel: str, raw: str) -> None:
    frame = RecordedFrame(received_at, channel, raw)
    line = frame.to_json_line()
    assert "\n" not in line
    assert RecordedFrame.from_json_line(line) == frame


@given(
    first=st.floats(0, 1e9),
    offsets=st.lists(st.floats(0, 1e4), min_size=2, max_size=10),
    speed=st.floats(0.01, 100),
)
@settings(deadline=None)
def test_frames_are_due_in_recorded_order_scaled_by_speed(
    first: float, offsets: list[float], speed: float
) -> None:
    offsets.sort()
    due = [due_at(first + offset, first, 50.0, speed) for offset in offsets]
    assert due == sorted(due)  # type: ignore[type-var]
    for offset, when in zip(offsets, due, strict=True):
        assert when == pytest.approx(50.0 + offset / speed)
    assert due_at(first + 5, first, 50.0, None) is None
    assert due_at(first - 5, first, 50.0, speed) == 50.0  # never before the start


def test_speed_words_and_factors() -> None:
    assert parse_speed("recorded") == 1.0
    assert parse_speed("MAX") is None
    assert parse_speed("2.5") == parse_speed("2.5x") == 2.5
    for bad in ("0", "-1", "nan", "inf", "fast", ""):
        with pytest.raises(ValueError, match="speed"):
            parse_speed(bad)


def test_recording_errors_are_configuration_errors() -> None:
    with pytest.raises(RecordingError, match="here: received_at"):
        RecordedFrame.checked(True, "ticker.cmt_btcusdt", "{}", "here")
    assert isinstance(RecordingError("x"), ValueError)


# --------------------------------------------------------------------------- demo


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["", "--api v3", "WEEX_API=v3"])
async def test_demo_prints_plain_lines_when_not_on_a_terminal(how: str) -> None:
    """Its own simulator, in v3 when asked (`--api v3`, or WEEX_API=v3), streamed from."""
    options = how.split() if how.startswith("--") else []
    env = cli_env(**dict([how.split("=")])) if "=" in how else cli_env()
    api = "v3" if how else "v2"
    result = await run_cli("demo", "BTCUSDT", "ETHUSDT", *options, "--count", "15", env=env)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        rf"streaming from the simulator ws://127\.0\.0\.1:\d+/{api}/ws/public \(Ctrl-C to stop\)",
        lines[0],
    ), lines[0]
    kinds = {line.split()[1] for line in lines[1:] if len(line.split()) > 1}
    assert {"ticker", "book"} <= kinds


def test_dashboard_render_shows_each_section_before_data() -> None:
    state = DashboardState(("cmt_btcusdt",))
    screen = "\n".join(render(state, Health(), connected=False, rate=0.0, source="test", now=0.0))
    assert "waiting for the first snapshot" in screen and "waiting for trades" in screen
    assert "DISCONNECTED" in screen and "reconnects 0" in screen
    state.book = {
        "symbol": "cmt_btcusdt",
        "bids": [],
        "asks": [],
        "resyncing": True,
        "reason": "gap",
    }
    screen = "\n".join(render(state, Health(), connected=True, rate=0.0, source="t", now=0.0))
    assert "resyncing: gap" in screen


@contextmanager
def terminal_session(command: str, *, width: int = 140, height: int = 50) -> Iterator[Any]:
    """Run `command` on a real pseudo-terminal and read its screen through pyte, a terminal
    emulator: what a person would see, with no dependency on tmux or the host's terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
    process = subprocess.Popen(  # noqa: S603 - our own command line
        ["/bin/sh", "-c", command],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env={**cli_env(), "TERM": "xterm-256color", "COLUMNS": str(width), "LINES": str(height)},
        start_new_session=True,
    )
    os.close(slave)
    screen = pyte.Screen(width, height)
    feed = pyte.ByteStream(screen)
    written = bytearray()  # everything the program wrote, also what a redraw covered at once

    def capture() -> str:
        while select.select([master], [], [], 0)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # the program ended and the terminal closed
                break
            if not data:
                break
            written.extend(data)
            feed.feed(data)
        return "\n".join(line.rstrip() for line in screen.display)

    capture.written = written  # type: ignore[attr-defined]

    try:
        yield capture
    finally:
        # The whole session (the shell and whatever it started), not just the shell.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.close(master)


def wait_for_screen(capture: Any, ready: Any, timeout: float = 60) -> str:
    """The screen once `ready(screen)`, or as it is after `timeout` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while True:
        screen: str = capture()
        if ready(screen) or time.monotonic() > deadline:
            return screen
        time.sleep(0.1)


@pytest.mark.parametrize("api", BOTH_DIALECTS)
def test_demo_dashboard_redraws_in_a_terminal(api: str) -> None:
    demo = f"{shlex.quote(PYTHON)} -m weex_anyio demo --api {api} --duration 3"
    command = f"{demo}; echo EXIT=$?; sleep 60"
    trade_row = r"\d{2}:\d{2}:\d{2}\.\d{3}\s+cmt_\w+\s+(buy|sell)"
    health_line = (
        r"HEALTH\s+connected \| rtt [\d.]+ ms \| pings answered \d+ \| reconnects 0 \|"
        r" [\d.]+ msg/s"
    )
    with terminal_session(command) as capture:
        # Until the dashboard shows a trade and a measured round trip, however slow the start.
        screen = wait_for_screen(
            capture, lambda s: bool(re.search(trade_row, s) and re.search(health_line, s))
        )
        lines = screen.splitlines()
        assert screen.count("TICKERS") == 1  # redrawn in place, not scrolled
        header = next(line for line in lines if line.startswith("SYMBOL"))
        assert header.split() == [
            "SYMBOL",
            "LAST",
            "MARK",
            "24H",
            "CHANGE",
            "24H",
            "HIGH",
            "24H",
            "LOW",
            "24H",
            "VOLUME",
        ]
        for symbol in ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt"):
            row = next(line for line in lines if line.startswith(symbol))
            assert Decimal(row.split()[1]) > 0
        assert "ORDER BOOK cmt_btcusdt" in screen
        assert re.search(r"BID SIZE\s+BID\s+\|\s+ASK\s+ASK SIZE", screen)
        ladder = [
            [Decimal(v) for v in re.findall(r"[\d.]+", line)]
            for line in lines
            if re.fullmatch(r"\s+[\d.]+\s+[\d.]+\s+\|\s+[\d.]+\s+[\d.]+\s*", line)
        ]
        assert ladder and ladder[0][1] < ladder[0][2]  # best bid below best ask
        assert "RECENT TRADES" in screen
        assert re.search(health_line, screen)
        finished = wait_for_screen(capture, lambda s: "EXIT=" in s)
        assert "EXIT=0" in finished


# --------------------------------------------------------------------------- logs


def log_record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("weex_ws", logging.WARNING, __file__, 1, "%s", ("hello",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_log_lines_carry_the_extra_fields_and_hide_secrets() -> None:
    formatter = JsonLogFormatter(secrets=["s3cr3t-value", "", "ab"])
    record = log_record(
        weex_event="connected",
        endpoint="private",
        attempt=2,
        secret_key="s3cr3t-value",
        headers={"ACCESS-SIGN": "c2lnbmF0dXJl", "User-Agent": "ua"},
        pairs=[("ACCESS-PASSPHRASE", "pp"), ("Host", "h")],
        note="the secret is s3cr3t-value",
        price=Decimal("1.50"),
    )
    record.msg, record.args = "failed with %s", ("s3cr3t-value",)
    line = formatter.format(record)
    entry = json.loads(line)
    assert entry["weex_event"] == "connected" and entry["attempt"] == 2
    assert entry["level"] == "WARNING" and entry["logger"] == "weex_ws"
    assert entry["message"] == f"failed with {REDACTED}"
    assert entry["secret_key"] == REDACTED
    assert entry["headers"] == {"ACCESS-SIGN": REDACTED, "User-Agent": "ua"}
    assert entry["pairs"] == [["ACCESS-PASSPHRASE", REDACTED], ["Host", "h"]]
    assert entry["note"] == f"the secret is {REDACTED}"
    assert entry["price"] == "1.50"
    assert "s3cr3t" not in line and "c2lnbmF0dXJl" not in line


def test_json_log_lines_include_the_traceback() -> None:
    formatter = JsonLogFormatter(secrets=["hidden-token"])
    try:
        raise RuntimeError("boom hidden-token")
    except RuntimeError:
        record = log_record(weex_event="handler_error", exc_info=sys.exc_info())
    entry = json.loads(formatter.format(record))
    assert entry["exc_type"] == "RuntimeError"
    assert "boom" in entry["traceback"] and "hidden-token" not in entry["traceback"]


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
async def test_a_private_session_logs_json_without_its_secrets(api: str) -> None:
    """No value scrubbing here: the client itself must never log them."""
    secrets: dict[str, Any] = {
        "api_key": "AK-d41d8cd98f00",
        "secret_key": "SK-9e107d9d372bb",
        "passphrase": "PP-e4d909c290d0",
    }
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        async with simulator(trade_interval=0.05, api=api, **secrets) as server:
            config = WeexConfig(
                public_url=server.public_url, private_url=server.private_url, **secrets
            )
            async with WeexWebSocketClient(config, backoff_base=0.01) as client:
                async for _ in client.stream_orders():
                    await server.drop_connections()
                    break
                async for _ in client.stream_account():
                    break
            wrong = WeexConfig(
                public_url=server.public_url,
                private_url=server.private_url,
                api_key=secrets["api_key"],
                secret_key="SK-wrong-8f14e45fceea",
                passphrase=secrets["passphrase"],
            )
            with pytest.raises(AuthenticationError):
                async with WeexWebSocketClient(wrong) as client:
                    await client.connect(private=True)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    output = captured.getvalue()
    entries = json_lines(output)
    events = {entry.get("weex_event") for entry in entries}
    assert {"connecting", "connected", "subscribed", "closed", "reconnecting", "rejected"} <= events
    for value in [*secrets.values(), "SK-wrong-8f14e45fceea"]:
        assert value not in output


@pytest.mark.anyio
@pytest.mark.parametrize("api", BOTH_DIALECTS)
async def test_log_json_option_writes_json_lines_on_stderr(api: str) -> None:
    async with simulator(trade_interval=0.05, api=api) as server:
        result = await run_cli(
            "--log-json", "fills", "--log-level", "debug", "--private-url", server.private_url,
            "--count", "1", env=cli_env(**SIM_CREDENTIALS),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    entries = json_lines(result.stderr)
    assert {"connecting", "connected", "subscribed"} <= {e.get("weex_event") for e in entries}
    assert all(value not in result.stderr for value in SIM_CREDENTIALS.values())
