"""`weex-ws simulate --api v3`, the stream commands reading it, and choosing the generation.

The commands' behaviour on both generations (streams, record, replay, demo) is tested in
test_cli.py, parametrized by dialect; here is what only choosing one involves."""

from __future__ import annotations

import argparse
import io
import re
import signal
import subprocess

import pytest

from tests.test_cli import PYTHON, ROOT, cli_env, json_lines
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
