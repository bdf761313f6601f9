"""What a new user meets first: `dev.py`, `weex-ws simulate`, clear failures, crash-safe
recordings, streamed replays, the dashboard on a small terminal, and the package itself.

Commands run as real subprocesses beside a simulator in the test's event loop (see
tests/test_cli.py, whose helpers these tests share); every process started is reaped in a
finally. `dev.py` runs against a fake `.venv` whose python logs what it is asked to do, so its
install decisions are checked without touching PyPI.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tarfile
import termios
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures_messages import TICKER_PUSH, TRADES_PUSH
from tests.test_cli import (
    PYTHON,
    ROOT,
    cli_env,
    doc_recording,
    json_lines,
    one_error_line,
    run_cli,
    simulator,
    sqlite_rows,
    terminal_session,
    wait_for_screen,
    write_recording,
)
from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_anyio.cli import main
from weex_anyio.cli._dashboard import DashboardState, render
from weex_anyio.cli.replay import ReplayTransport
from weex_proto._version import __version__
from weex_proto.messages import Ticker, Trade, parse_push
from weex_proto.replay import RecordedFrame
from weex_proto.runtime.health import Health


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def wait_until(ready: Callable[[], bool], what: str, guard: float = 60) -> None:
    """Poll `ready`; the guard only turns a hang into a failure."""
    deadline = time.monotonic() + guard
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def reap(process: subprocess.Popen[Any]) -> None:
    """Kill if still running, wait, and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.communicate()


# --------------------------------------------------------------------------- --version, help


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"weex-ws {__version__}"


def test_help_lists_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "weex-ws simulate" in capsys.readouterr().out


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_simulate_refuses_a_port_that_is_not_one(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--port", port]) == 2
    assert "--port" in one_error_line(capsys.readouterr().err)


def test_demo_live_and_url_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--live", "--url", "ws://127.0.0.1:1/v2/ws/public"]) == 2
    assert "not allowed with" in one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- simulate


BANNER_FIELD = re.compile(
    r"^  (public URL|private URL|symbols|api key|secret key|passphrase)\s+(.+)$"
)


@contextmanager
def simulate_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """`weex-ws simulate --port 0`, with its banner: the fields, and "commands" it suggests."""
    process = subprocess.Popen(  # noqa: S603 - our own command
        [PYTHON, "-m", "weex_anyio", "simulate", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=cli_env(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner: dict[str, str] = {}
        while (line := process.stdout.readline()) and not line.startswith("try,"):
            if found := BANNER_FIELD.match(line.rstrip("\n")):
                banner[found.group(1)] = found.group(2)
        assert line, "simulate ended before printing its banner"
        banner["commands"] = "\n".join(process.stdout.readline().strip() for _ in range(3))
        yield process, banner
    finally:
        reap(process)


def test_simulate_prints_what_other_commands_need_and_serves_them() -> None:
    with simulate_process("BTCUSDT") as (process, banner):
        public, private = banner["public URL"], banner["private URL"]
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/v2/ws/public", public)
        assert private == public.replace("public", "private")
        credentials = {
            "WEEX_API_KEY": banner["api key"],
            "WEEX_SECRET_KEY": banner["secret key"],
            "WEEX_PASSPHRASE": banner["passphrase"],
        }
        assert all(credentials.values())
        assert f"weex-ws tickers BTCUSDT --url {public}" in banner["commands"].splitlines()
        assert f"weex-ws demo --url {public}" in banner["commands"].splitlines()

        tickers = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "-m", "weex_anyio", "tickers", "BTCUSDT", "--url", public, "--json",
             "--count", "2"],
            capture_output=True, text=True, cwd=ROOT, env=cli_env(), check=False,
        )  # fmt: skip
        assert tickers.returncode == 0, tickers.stderr
        assert [r["channel"] for r in json_lines(tickers.stdout)] == ["ticker.cmt_btcusdt"] * 2
        orders = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "-m", "weex_anyio", "orders", "--private-url", private, "--json",
             "--count", "1"],
            capture_output=True, text=True, cwd=ROOT, env=cli_env(**credentials), check=False,
        )  # fmt: skip
        assert orders.returncode == 0, orders.stderr
        assert [r["channel"] for r in json_lines(orders.stdout)] == ["orders"]

        process.send_signal(signal.SIGTERM)
        assert process.wait() == 0


def test_simulate_on_a_taken_port_exits_2_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "-m", "weex_anyio", "simulate", "--port", str(port), "--duration", "5"],
            capture_output=True, text=True, cwd=ROOT, env=cli_env(), check=False,
        )  # fmt: skip
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert f"port {port} is already in use" in line and "--port" in line


@pytest.mark.anyio
async def test_demo_url_streams_from_that_server() -> None:
    async with simulator() as server:
        result = await run_cli("demo", "BTCUSDT", "--url", server.public_url, "--count", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"streaming from the server {server.public_url} (Ctrl-C to stop)"
    # Tickers, the book and trades are merged: which of them fill the first 5 lines is timing.
    streamed = lines[1:]
    assert len(streamed) >= 5
    assert all(re.search(r"  (ticker|book  |trade ) cmt_btcusdt ", line) for line in streamed), (
        streamed
    )


@pytest.mark.anyio
async def test_demo_url_measures_the_round_trip_of_a_feed_that_never_pauses() -> None:
    async with simulator(tick_interval=0.05) as server:  # never a quiet second for a ping
        result = await run_cli("demo", "BTCUSDT", "--url", server.public_url, "--duration", "5")
    assert result.returncode == 0, result.stderr
    health = [line for line in result.stdout.splitlines() if line.startswith("health")]
    assert health, result.stdout
    assert re.search(r"\| rtt \d+\.\d+ ms \|", health[-1]), health


def test_the_dashboard_shows_the_latest_warning_instead_of_writing_it_over_the_screen() -> None:
    with simulate_process("BTCUSDT") as (simulator, banner):
        url = banner["public URL"]
        command = f"{shlex.quote(PYTHON)} -m weex_anyio demo BTCUSDT --url {url}; sleep 60"
        with terminal_session(command) as capture:
            wait_for_screen(capture, lambda screen: "HEALTH  connected" in screen)
            simulator.kill()  # the server goes away: the client reconnects, and warns
            simulator.wait()
            screen = wait_for_screen(capture, lambda s: "warning: reconnecting to public" in s)
            assert "warning: reconnecting to public" in screen  # on the dashboard's last line
            assert b"WARNING" not in capture.written  # and never written over it


# --------------------------------------------------------------------------- failing fast


@pytest.mark.anyio
@pytest.mark.parametrize(
    "command",
    [
        ["tickers", "BTCUSDT", "FOOUSDT"],
        ["trades", "foo-usdt"],
        ["book", "FOOUSDT"],
        ["record", "FOOUSDT", "--out", "{tmp}/foo.jsonl"],
        ["record", "BTCUSDT", "FOOUSDT", "--out", "{tmp}/foo.sqlite"],
    ],
)
async def test_an_unknown_symbol_exits_2_naming_it_and_leaves_no_file(
    tmp_path: Path, command: list[str]
) -> None:
    argv = [part.replace("{tmp}", str(tmp_path)) for part in command]
    async with simulator() as server:
        result = await run_cli(*argv, "--url", server.public_url, "--count", "50")
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert "unknown symbol cmt_foousdt" in line
    assert [path.name async for path in anyio.Path(tmp_path).iterdir()] == []  # nothing left


@pytest.mark.anyio
async def test_a_refused_upgrade_fails_at_once_naming_the_url(tmp_path: Path) -> None:
    async with simulator() as server:
        wrong = server.public_url.replace("/v2/ws/public", "/v2/ws/nowhere")
        out = tmp_path / "never.sqlite"
        result = await run_cli("record", "BTCUSDT", "--url", wrong, "--out", str(out))
        logged = await run_cli(
            "tickers", "BTCUSDT", "--url", wrong, "--log-json", "--log-level", "debug"
        )
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line.startswith(f"weex-ws: error: {wrong}: ") and "HTTP 404" in line
    assert not await anyio.Path(out).exists()
    logs = "\n".join(line for line in logged.stderr.splitlines() if line.startswith("{"))
    events = [entry.get("weex_event") for entry in json_lines(logs)]
    assert events.count("connecting") == 1  # not retried
    assert logged.returncode == 1


# --------------------------------------------------------------------------- recordings


def recorded_records(path: Path) -> int:
    """Records in a recording's frames: replay prints one line per record (a push of three
    trades is three lines), and one per depth push (a book)."""
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        raws = [raw for (raw,) in db.execute("SELECT raw FROM frames")]
    return sum(len(json.loads(raw)["data"]) for raw in raws)


@pytest.mark.anyio
async def test_a_sqlite_recording_killed_with_sigkill_replays(tmp_path: Path) -> None:
    out = tmp_path / "killed.sqlite"
    async with simulator() as server:
        command = [PYTHON, "-m", "weex_anyio", "record", "BTCUSDT", "ETHUSDT"]
        command += ["--url", server.public_url, "--out", str(out)]
        process = await anyio.open_process(command, env=cli_env(), cwd=ROOT)
        try:
            with anyio.fail_after(60):  # a hang guard, not a budget
                while sqlite_rows(out) < 30:  # noqa: ASYNC110 - polling another process's file
                    await anyio.sleep(0.05)
            process.kill()
        finally:
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            await process.aclose()
    # Killed, not ended: asyncio's child watcher on 3.11 reports 255 ("Unknown child process
    # pid") when it loses the race for the exit status on a loaded machine.
    assert process.returncode in (-signal.SIGKILL, 255)
    rows = sqlite_rows(out)  # read-only, as replay opens it
    assert rows >= 30
    replayed = await run_cli("replay", str(out), "--speed", "max", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert len(json_lines(replayed.stdout)) == recorded_records(out)
    # What the README says to copy after a crash: the database and its -wal (not the -shm).
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in (out.name, f"{out.name}-wal"):
        (copied / name).write_bytes((out.parent / name).read_bytes())
    again = await run_cli("replay", str(copied / out.name), "--speed", "max", "--json")
    assert again.returncode == 0, again.stderr
    assert again.stdout == replayed.stdout


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def in_wal_mode(path: Path) -> bool:
    """The database header's read and write versions: 2 for WAL, 1 for a rollback journal."""
    with path.open("rb") as file:
        return file.read(20)[18:20] == b"\x02\x02"


@pytest.mark.anyio
async def test_a_finished_sqlite_recording_is_one_file_and_replay_leaves_it_so(
    tmp_path: Path,
) -> None:
    out = tmp_path / "day.sqlite"
    async with simulator() as server:
        recorded = await run_cli(
            "record", "BTCUSDT", "--url", server.public_url, "--out", str(out), "--count", "20"
        )
    assert recorded.returncode == 0, recorded.stderr
    assert files_in(tmp_path) == [out.name]  # no -wal or -shm to copy along
    assert not in_wal_mode(out)  # no reader needs side files
    replayed = await run_cli("replay", str(out), "--speed", "max", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert len(json_lines(replayed.stdout)) == recorded_records(out)
    assert files_in(tmp_path) == [out.name]


@pytest.mark.anyio
async def test_replaying_a_wal_mode_recording_creates_no_side_files(tmp_path: Path) -> None:
    """A single file still in WAL mode (written by another tool, or closed by one that left it
    so): replay reads it without leaving `-shm`/`-wal` beside it."""
    out = tmp_path / "wal.sqlite"
    frames = doc_recording()
    with closing(sqlite3.connect(out)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE frames (id INTEGER PRIMARY KEY, received_at, channel, raw)")
        with db:
            db.executemany(
                "INSERT INTO frames (received_at, channel, raw) VALUES (?, ?, ?)",
                [(f.received_at, f.channel, f.raw) for f in frames],
            )
    assert files_in(tmp_path) == [out.name] and in_wal_mode(out)
    replayed = await run_cli("replay", str(out), "--speed", "max", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert len(json_lines(replayed.stdout)) == len(frames)  # one record each
    assert files_in(tmp_path) == [out.name]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "cut",
    [
        '{"received_at": 1700000009.0, "channel": "ticker.cmt_btcusdt", "raw": "{\\"ev',
        '{"received_at": 1700000009.0, "channel": "ticker.cmt_btcusdt", "raw": "\xe2\x82',
    ],
    ids=["mid-string", "mid-character"],
)
async def test_a_cut_last_jsonl_line_is_skipped_with_a_warning(tmp_path: Path, cut: str) -> None:
    frames = doc_recording()
    path = tmp_path / "cut.jsonl"
    write_recording(path, frames)
    with path.open("ab") as file:
        file.write(cut.encode("latin-1"))
    result = await run_cli("replay", str(path), "--speed", "max", "--json")
    assert result.returncode == 0, result.stderr
    assert [record["received_at"] for record in json_lines(result.stdout)] == [
        frame.received_at for frame in frames
    ]
    warning = one_error_line(result.stderr)
    assert f"{path}:{len(frames) + 1}: the last line is cut short" in warning
    assert f"replaying the {len(frames)} frames before it" in warning


def test_a_bad_line_before_the_last_is_still_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = doc_recording(count=2)
    path = tmp_path / "middle.jsonl"
    write_recording(path, frames[:1])
    with path.open("a") as file:
        file.write('{"cut\n' + frames[1].to_json_line())  # no newline at the very end
    assert main(["replay", str(path), "--speed", "max"]) == 2
    assert f"{path}:2: not valid JSON" in one_error_line(capsys.readouterr().err)


@pytest.mark.anyio
async def test_replay_reads_frames_only_as_it_serves_them() -> None:
    """Constant memory: the transport never reads more than one frame ahead of the client."""
    template = doc_recording(count=1)[0]
    produced = 0
    handled = 0
    ahead: list[int] = []

    def frames() -> Iterator[RecordedFrame]:
        nonlocal produced
        for index in range(500):
            produced += 1
            yield RecordedFrame(template.received_at + index, template.channel, template.raw)

    transport = ReplayTransport(
        frames(), speed=None, close_at_end=False, channels=[template.channel]
    )
    assert produced == 1  # the first frame only, for the recording's start time

    def take(message: object) -> None:
        nonlocal handled
        handled += 1
        ahead.append(produced - handled)

    config = WeexConfig(public_url="ws://replay.invalid/v2/ws/public")
    async with WeexWebSocketClient(
        config, transport=transport, wall_clock=transport.clock, ping_interval=None, max_retries=0
    ) as client:
        client.add_message_handler("*", take)
        await client.subscribe(template.channel)
        await client.connect()
        with anyio.fail_after(60):
            await transport.wait_finished()
    assert handled == produced == 500
    assert max(ahead) <= 1


def test_replay_shows_progress_on_a_terminal_when_the_output_goes_to_a_file(
    tmp_path: Path,
) -> None:
    frames = doc_recording()
    path = tmp_path / "progress.db"
    write_recording(path, frames)
    output = tmp_path / "out.jsonl"
    master, slave = pty.openpty()
    try:
        with output.open("w") as stdout:
            process = subprocess.Popen(  # noqa: S603 - our own command
                [PYTHON, "-m", "weex_anyio", "replay", str(path), "--speed", "max", "--json"],
                stdout=stdout, stderr=slave, cwd=ROOT,
                env={**cli_env(), "TERM": "xterm-256color"},
            )  # fmt: skip
        os.close(slave)
        slave = -1
        shown = b""
        try:
            while True:
                ready, _, _ = select.select([master], [], [], 60)
                if not ready:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the process ended and the terminal closed
                    break
                if not chunk:
                    break
                shown += chunk
            assert process.wait() == 0
        finally:
            reap(process)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    text = shown.decode()
    assert f"{len(frames)}/{len(frames)} frames (100%)" in text
    assert "replay [" in text
    assert len(json_lines(output.read_text())) == len(frames)


@pytest.mark.anyio
async def test_replay_prints_no_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "quiet.jsonl"
    write_recording(path, doc_recording())
    result = await run_cli("replay", str(path), "--speed", "max", "--json")
    assert result.returncode == 0 and result.stderr == ""


@pytest.mark.anyio
async def test_the_sqlite_example_writes_a_recording_replay_accepts(tmp_path: Path) -> None:
    out = tmp_path / "example.sqlite"
    script = str(ROOT / "examples" / "sqlite_recorder.py")
    with anyio.fail_after(120):
        first = await anyio.run_process(
            [PYTHON, script, "--db", str(out), "--count", "15", "--tick-interval", "0.02"],
            env=cli_env(), cwd=tmp_path, check=False,
        )  # fmt: skip
        again = await anyio.run_process(
            [PYTHON, script, "--db", str(out), "--count", "5"], env=cli_env(), check=False
        )
    assert first.returncode == 0, first.stderr.decode()
    assert again.returncode == 2 and b"already exists" in again.stderr
    replayed = await run_cli("replay", str(out), "--speed", "max", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert sqlite_rows(out) == 15
    assert len(json_lines(replayed.stdout)) == recorded_records(out)


# --------------------------------------------------------------------------- book --depth


@pytest.mark.anyio
async def test_book_depth_n_prints_n_levels_per_book() -> None:
    async with simulator() as server:
        result = await run_cli(
            "book", "BTCUSDT", "--depth", "4", "--url", server.public_url, "--count", "3"
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 * 4
    level = re.compile(r"book\s+cmt_btcusdt\s+bid\s+([\d.]+) x [\d.]+\s+ask\s+([\d.]+) x [\d.]+")
    for book in range(3):
        rows = [level.search(line) for line in lines[book * 4 : book * 4 + 4]]
        assert all(rows), lines
        bids = [float(row.group(1)) for row in rows if row]
        asks = [float(row.group(2)) for row in rows if row]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
        assert "spread" in lines[book * 4]


# --------------------------------------------------------------------------- the dashboard


def full_state() -> DashboardState:
    """A dashboard with tickers, a 10-level book and a full trade list, from the doc's frames."""
    state = DashboardState(("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt"), depth=10)
    for symbol in state.symbols:
        [ticker] = parse_push({**TICKER_PUSH, "channel": f"ticker.{symbol}"})
        assert isinstance(ticker, Ticker)
        state.tickers[symbol] = ticker
    [trade] = parse_push(TRADES_PUSH)
    assert isinstance(trade, Trade)
    state.trades.extend([trade] * (state.trades.maxlen or 1))
    state.book = {
        "symbol": "cmt_btcusdt",
        "bids": [(Decimal(100 - i), Decimal(1)) for i in range(10)],
        "asks": [(Decimal(101 + i), Decimal(2)) for i in range(10)],
        "version": 7,
        "timestamp": 0,
        "resyncing": False,
    }
    return state


def screen(width: int, height: int) -> list[str]:
    return render(
        full_state(), Health(), connected=True, rate=1.0, source="simulator ws://127.0.0.1:8765/v2/ws/public",
        now=0.0, width=width, height=height,
    )  # fmt: skip


def test_the_dashboard_fits_80_by_24_with_every_section() -> None:
    lines = screen(80, 23)  # the screen keeps its last row free
    assert len(lines) <= 23
    text = "\n".join(line[:80] for line in lines)
    for section in ("weex-ws demo", "TICKERS", "ORDER BOOK cmt_btcusdt", "RECENT TRADES"):
        assert section in text
    assert all(symbol in text for symbol in ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt"))
    assert all(len(line) <= 80 for line in lines if not line.startswith("weex-ws demo"))
    health = "\n".join(line for line in lines if "HEALTH" in line or line.startswith("  "))
    for part in ("connected", "rtt", "reconnects", "msg/s", "errors"):
        assert part in health


@settings(deadline=None, max_examples=150)
@given(width=st.integers(20, 200), height=st.integers(1, 60))
def test_the_dashboard_never_outgrows_the_screen_and_keeps_health(width: int, height: int) -> None:
    lines = screen(width, height)
    assert 1 <= len(lines) <= height
    assert lines[0].startswith("weex-ws demo")
    if height >= 2:
        assert any(line.startswith("HEALTH") for line in lines)
    bigger = screen(width, height + 1)
    assert len(bigger) >= len(lines)  # more room never shows less


@contextmanager
def small_terminal(command: str, width: int, height: int) -> Iterator[Any]:
    """A real pseudo-terminal of `width` x `height` read through pyte, that can be resized."""
    master, slave = pty.openpty()

    def set_size(columns: int, rows: int) -> None:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    set_size(width, height)
    process = subprocess.Popen(  # noqa: S603 - our own command line
        ["/bin/sh", "-c", command],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
        env={**cli_env(), "TERM": "xterm-256color"},
        start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    display = pyte.Screen(width, height)
    feed = pyte.ByteStream(display)

    class Terminal:
        def capture(self) -> str:
            while select.select([master], [], [], 0)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                feed.feed(data)
            return "\n".join(line.rstrip() for line in display.display)

        def resize(self, columns: int, rows: int) -> None:
            self.capture()
            display.resize(rows, columns)
            set_size(columns, rows)

    try:
        yield Terminal()
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.close(master)


def test_the_dashboard_on_80_by_24_then_resized_smaller() -> None:
    command = f"{shlex.quote(PYTHON)} -m weex_anyio demo; sleep 60"
    trade_row = r"\d{2}:\d{2}:\d{2}\.\d{3}\s+cmt_\w+\s+(buy|sell)"
    with small_terminal(command, 80, 24) as terminal:
        found = ""

        def full() -> bool:
            nonlocal found
            found = terminal.capture()
            return bool(re.search(trade_row, found) and "HEALTH  connected" in found)

        wait_until(full, "a full dashboard at 80x24")
        assert found.count("TICKERS") == 1
        for section in ("weex-ws demo", "ORDER BOOK cmt_btcusdt", "RECENT TRADES", "msg/s"):
            assert section in found
        assert re.search(r"^cmt_solusdt\s+[\d.]+", found, re.MULTILINE)

        terminal.resize(60, 12)

        def small() -> bool:
            nonlocal found
            found = terminal.capture()
            return "TICKERS" in found and "RECENT TRADES" not in found

        wait_until(small, "the dashboard redrawn for 60x12")
        assert found.count("TICKERS") == 1 and "HEALTH  connected" in found
        assert re.search(r"^cmt_btcusdt\s+[\d.]+", found, re.MULTILINE)


# --------------------------------------------------------------------------- missing extra


def test_weex_trio_without_trio_says_which_extra_to_install() -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [PYTHON, "-c", "import sys; sys.modules['trio'] = None; import weex_trio"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: weex_trio needs trio")
    assert "pip install 'weex-ws[trio]'" in last


# --------------------------------------------------------------------------- dev.py


FAKE_PYTHON = """#!{python}
# A stand-in for .venv/bin/python: logs its arguments; pip "installs" per FAKE_PIP; mypy checks
# only the files in FAKE_MYPY_FILES when that is set.
import json, os, sys, time
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["-m", "mypy"] and os.environ.get("FAKE_MYPY_FILES"):
    sys.argv += os.environ["FAKE_MYPY_FILES"].split()
if sys.argv[1:3] == ["-m", "pip"]:
    print("Collecting wsproto ... pip's usual noise")
    mode = os.environ.get("FAKE_PIP", "ok")
    if mode == "hang":
        time.sleep(120)
    sys.exit(1 if mode == "fail" else 0)
os.execv({python!r}, [{python!r}, *sys.argv[1:]])
"""


def copy_source(destination: Path) -> None:
    """The project's files, as a clean clone has them: no virtualenv, caches or build output."""
    shutil.copytree(
        ROOT,
        destination,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", ".hypothesis", ".mypy_cache",
            ".ruff_cache", ".pytest_cache", "build", "dist", "*.sqlite",
        ),
    )  # fmt: skip


@contextmanager
def dev_root(tmp_path: Path, *, whole: bool = False) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A copy of dev.py and pyproject.toml (`whole`: of the whole source tree) with a fake
    `.venv` python; (root, log, env)."""
    root = tmp_path / "clone"
    if whole:
        copy_source(root)
    (root / ".venv" / "bin").mkdir(parents=True)
    for name in ("dev.py", "pyproject.toml"):
        (root / name).write_bytes((ROOT / name).read_bytes())
    fake = root / ".venv" / "bin" / "python"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.touch()
    env = {**cli_env(), "FAKE_LOG": str(log), "PYTHONPATH": str(ROOT)}
    yield root, log, env


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def pip_installs(log: Path) -> list[list[str]]:
    return [call[call.index("install") + 1 :] for call in calls(log) if call[:2] == ["-m", "pip"]]


def dev(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(root / "dev.py"), *args],
        capture_output=True, text=True, cwd=root, env=env, check=False, timeout=300,
    )  # fmt: skip


def test_dev_demo_installs_only_the_runtime_dependencies_once_and_quietly(
    tmp_path: Path,
) -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    with dev_root(tmp_path) as (root, log, env):
        first = dev(root, env, "demo", "--count", "3")
        assert first.returncode == 0, first.stderr
        [install] = pip_installs(log)
        assert [arg for arg in install if not arg.startswith("--")] == dependencies
        assert "pip's usual noise" not in first.stdout + first.stderr
        progress = [line for line in first.stdout.splitlines() if line.startswith("dev.py")]
        assert len(progress) == 1 and "installing the demo's dependencies" in progress[0]
        assert "streaming from the simulator" in first.stdout

        second = dev(root, env, "demo", "--count", "1")  # the stamp: nothing to install
        assert second.returncode == 0, second.stderr
        assert len(pip_installs(log)) == 1 and "dev.py" not in second.stdout

        (root / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + "\n# x\n")
        assert dev(root, env, "demo", "--count", "1").returncode == 0
        assert len(pip_installs(log)) == 2  # pyproject.toml changed: installed again


def test_dev_test_installs_the_dev_tools_then_demo_needs_nothing(tmp_path: Path) -> None:
    with dev_root(tmp_path) as (root, log, env):
        env["FAKE_PIP"] = "ok"
        result = dev(root, env, "setup")
        assert result.returncode == 0, result.stderr
        [install] = pip_installs(log)
        assert install[-2:] == ["-e", f"{root}[dev]"]
        assert dev(root, env, "demo", "--count", "1").returncode == 0
        assert len(pip_installs(log)) == 1


def test_dev_shows_pips_output_when_it_fails(tmp_path: Path) -> None:
    with dev_root(tmp_path) as (root, _, env):
        env["FAKE_PIP"] = "fail"
        result = dev(root, env, "demo")
    assert result.returncode == 1
    assert "pip's usual noise" in result.stderr and "pip failed with exit code 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / ".venv" / ".weex-ws-installed").exists()


def files_under(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*")}


def test_dev_test_leaves_nothing_in_the_tree_but_venv(tmp_path: Path) -> None:
    """`python3 dev.py test` in a clean clone: bytecode and the caches of ruff, mypy and
    hypothesis go into `.venv/`, and no egg-info is made. (To keep it short, mypy checks
    dev.py alone and pytest runs one file of property tests.)"""
    with dev_root(tmp_path, whole=True) as (root, _, env):
        for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"):
            env.pop(name, None)  # bytecode is written, and dev.py says where
        env.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)  # this suite's own, set by its conftest
        env.update(FAKE_MYPY_FILES="dev.py", PYTHONPATH=str(root))
        before = files_under(root)
        result = dev(root, env, "test", "tests/test_row_views.py")
        assert result.returncode == 0, result.stdout + result.stderr
        new = {path.parts[0] for path in files_under(root) - before}
    assert new == {".venv"}


@pytest.mark.parametrize("stage", ["installing", "running the demo"])
def test_ctrl_c_in_dev_exits_130_without_a_traceback(tmp_path: Path, stage: str) -> None:
    with dev_root(tmp_path) as (root, log, env):
        if stage == "installing":
            env["FAKE_PIP"] = "hang"
        else:
            assert dev(root, env, "demo", "--count", "1").returncode == 0  # installed
        process = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(root / "dev.py"), "demo"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, env=env,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )  # fmt: skip
        try:
            if stage == "installing":
                wait_until(lambda: any(c[:2] == ["-m", "pip"] for c in calls(log)), "pip runs")
            else:
                assert process.stdout is not None
                line = process.stdout.readline()
                assert line.startswith("streaming from the simulator"), line
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
            _, stderr = process.communicate(timeout=120)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_signal_to_dev_demo_ends_the_demo_and_leaves_nothing_running(
    tmp_path: Path, signum: int, status: int
) -> None:
    """`kill -TERM <dev.py's pid>` (or -INT, sent to that process alone, not a terminal's
    whole group) reaches the demo, which ends with its own status, and no process is left."""
    with dev_root(tmp_path) as (root, _, env):
        assert dev(root, env, "demo", "--count", "1").returncode == 0  # installed
        process = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(root / "dev.py"), "demo"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, env=env,
            start_new_session=True,  # a group of its own, so what is left over can be seen
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("streaming from the simulator"), line
            process.send_signal(signum)  # to dev.py's pid only
            _, stderr = process.communicate(timeout=120)
            with pytest.raises(ProcessLookupError):
                os.killpg(process.pid, 0)  # nothing of the group is still running
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------- the package


def test_the_sdist_carries_the_whole_suite_and_it_collects(tmp_path: Path) -> None:
    """Built with setuptools' own backend, unpacked, and collected by pytest in place. The
    build runs in a copy of the tree: setuptools writes its egg-info where it builds."""
    source = tmp_path / "source"
    copy_source(source)
    build = subprocess.run(  # noqa: S603 - our own interpreter
        [PYTHON, "-c", "import sys; from setuptools import build_meta as b; "
         "print(b.build_sdist(sys.argv[1]))", str(tmp_path)],
        capture_output=True, text=True, cwd=source, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    archive = tmp_path / build.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as sdist:
        sdist.extractall(tmp_path / "unpacked", filter="data")
    [unpacked] = (tmp_path / "unpacked").iterdir()
    assert (unpacked / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    metadata = (unpacked / "PKG-INFO").read_text()
    assert "License-Expression: MIT" in metadata and "Classifier: Typing :: Typed" in metadata

    def collected(where: Path) -> list[str]:
        result = subprocess.run(  # noqa: S603 - our own interpreter
            [PYTHON, "-m", "pytest", "--collect-only", "-q"],
            capture_output=True, text=True, cwd=where,
            env={**cli_env(), "PYTHONPATH": str(where)}, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return sorted(line for line in result.stdout.splitlines() if "::" in line)

    assert collected(unpacked) == collected(ROOT)
