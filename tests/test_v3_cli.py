"""`weex-ws simulate --api v3`, the stream commands reading it, and v3 recordings."""

from __future__ import annotations

import argparse
import io
import json
import re
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import PYTHON, ROOT, cli_env, json_lines, read_frames, run_cli, simulator
from tests.test_first_run import simulate_process
from weex_anyio.cli import main, run
from weex_anyio.cli._parser import build_parser
from weex_anyio.cli._runtime import target_url


def test_simulate_api_v3_prints_v3_urls_that_the_commands_follow() -> None:
    with simulate_process("BTCUSDT", "--api", "v3") as (process, banner):
        public, private = banner["public URL"], banner["private URL"]
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/v3/ws/public", public)
        assert private == public.replace("public", "private")
        credentials = {
            "WEEX_API_KEY": banner["api key"],
            "WEEX_SECRET_KEY": banner["secret key"],
            "WEEX_PASSPHRASE": banner["passphrase"],
        }
        tickers = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "-m", "weex_anyio", "tickers", "BTCUSDT", "--url", public, "--json",
             "--count", "2"],
            capture_output=True, text=True, cwd=ROOT, env=cli_env(), check=False,
        )  # fmt: skip
        assert tickers.returncode == 0, tickers.stderr
        records = json_lines(tickers.stdout)
        assert [r["channel"] for r in records] == ["ticker.cmt_btcusdt"] * 2
        assert all(r["data"]["symbol"] == "cmt_btcusdt" for r in records)
        orders = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "-m", "weex_anyio", "orders", "--private-url", private, "--api", "v3",
             "--json", "--count", "1"],
            capture_output=True, text=True, cwd=ROOT, env=cli_env(**credentials), check=False,
        )  # fmt: skip
        assert orders.returncode == 0, orders.stderr
        assert [r["channel"] for r in json_lines(orders.stdout)] == ["orders"]
        process.send_signal(signal.SIGTERM)
        assert process.wait() == 0


def test_api_contradicting_the_url_is_a_configuration_error() -> None:
    result = subprocess.run(  # noqa: S603 - our own command
        [PYTHON, "-m", "weex_anyio", "tickers", "BTCUSDT", "--url",
         "ws://127.0.0.1:9/v3/ws/public", "--api", "v2", "--count", "1"],
        capture_output=True, text=True, cwd=ROOT, env=cli_env(), check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "api is 'v2' but the URLs are v3 URLs" in result.stderr


@pytest.mark.anyio
@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
async def test_a_v3_recording_holds_v3_frames_and_replays_as_v3(
    tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"v3{suffix}"
    async with simulator(api="v3") as server:
        result = await run_cli(
            "record", "BTCUSDT", "--url", server.public_url, "--out", str(out), "--count", "20",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = read_frames(out)
    assert len(frames) == 20
    assert all("e" in json.loads(raw) for _, _, raw in frames)  # exactly as received: v3
    assert {channel for _, channel, _ in frames} <= {
        "ticker.cmt_btcusdt",
        "depth.cmt_btcusdt.15",
        "trades.cmt_btcusdt",
    }
    if suffix == ".sqlite":
        db = sqlite3.connect(out)
        try:
            said = db.execute("SELECT value FROM recording WHERE key = 'dialect'").fetchone()
        finally:
            db.close()
        assert said == ("v3",)
    replayed = await run_cli("replay", str(out), "--speed", "max", "--json")
    assert replayed.returncode == 0, replayed.stderr
    lines = json_lines(replayed.stdout)
    assert [(line["channel"], line["received_at"]) for line in lines] == [
        (channel, received_at)
        for received_at, channel, raw in frames
        for _ in records_of(json.loads(raw))
    ]


def records_of(frame: dict[str, Any]) -> list[Any]:
    """The records a v3 push holds: its `d` rows, or the frame itself for a book update."""
    return [frame] if frame["e"] in ("depth", "depthSnapshot") else list(frame["d"])


@pytest.mark.anyio
async def test_a_sqlite_recording_refuses_frames_of_the_other_dialect(tmp_path: Path) -> None:
    out = tmp_path / "mixed.sqlite"
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


@pytest.mark.parametrize("api", [None, "v2", "v3"])
@pytest.mark.parametrize("command", ["tickers", "orders"])
def test_error_messages_name_the_url_of_the_chosen_generation(
    command: str, api: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --url, a connection error names the URL the client tried: v3's with --api v3."""
    for variable in ("WEEX_WS_PUBLIC_URL", "WEEX_WS_PRIVATE_URL"):
        monkeypatch.delenv(variable, raising=False)
    args = argparse.Namespace(command=command, url=None, private_url=None, api=api, max_retries=5)
    endpoint = "private" if command == "orders" else "public"
    assert target_url(args) == f"wss://ws-contract.weex.com/{api or 'v2'}/ws/{endpoint}"


def test_weex_api_in_the_environment_chooses_the_generation_of_the_named_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("WEEX_WS_PUBLIC_URL", "WEEX_WS_PRIVATE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("WEEX_API", "v3")
    args = argparse.Namespace(command="book", url=None, api=None, max_retries=5)
    assert target_url(args) == "wss://ws-contract.weex.com/v3/ws/public"


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["--api", "WEEX_API"])
async def test_demo_runs_its_own_simulator_in_v3(how: str) -> None:
    """`demo --api v3` (or WEEX_API=v3) starts its simulator speaking v3, and streams from it."""
    options, env = (["--api", "v3"], cli_env()) if how == "--api" else ([], cli_env(WEEX_API="v3"))
    result = await run_cli("demo", "BTCUSDT", *options, "--count", "12", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        r"streaming from the simulator ws://127\.0\.0\.1:\d+/v3/ws/public \(Ctrl-C to stop\)",
        lines[0],
    ), lines[0]
    kinds = {line.split()[1] for line in lines[1:] if len(line.split()) > 1}
    assert {"ticker", "book"} <= kinds


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("flag", "variable", "expected"),
    [(None, None, "v2"), (None, "v3", "v3"), ("v2", "v3", "v2"), ("v3", "v2", "v3")],
)
async def test_simulate_takes_its_generation_from_api_else_weex_api(
    flag: str | None, variable: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`simulate` follows the other commands' rule: --api, else $WEEX_API, else v2."""
    monkeypatch.delenv("WEEX_API", raising=False)
    if variable is not None:
        monkeypatch.setenv("WEEX_API", variable)
    argv = ["simulate", "BTCUSDT", "--port", "0", "--duration", "0.01"]
    args = build_parser().parse_args([*argv, *(["--api", flag] if flag else [])])
    out = io.StringIO()
    assert await run(args, out, io.StringIO()) == 0
    urls = [line.split()[-1] for line in out.getvalue().splitlines() if " URL " in line]
    assert [url.rsplit("/", 3)[1:] for url in urls] == [
        [expected, "ws", "public"],
        [expected, "ws", "private"],
    ]


def test_simulate_refuses_a_weex_api_it_does_not_know(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEEX_API", "v4")
    assert main(["simulate", "--port", "0", "--duration", "0.01"]) == 2
    assert "not 'v4'" in capsys.readouterr().err
