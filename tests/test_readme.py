"""The README's client example is `examples/readme_client.py`, and its NATS consumer
`examples/readme_nats.py`, which mypy --strict checks; here: that the README shows exactly
those files, and that they print real values (the consumer reading a real relay through a
real nats-server)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from examples import readme_client
from tests.natsserver import HANG_GUARD, NatsServer, cli_env, running_nats_server
from weex_anyio import WeexConfig, WeexWebSocketClient
from weex_anyio.cli import run
from weex_anyio.cli._parser import build_parser
from weex_anyio.testing import SimulatedWeexServer
from weex_proto.messages import DepthUpdate
from weex_proto.orderbook import Applied, OrderBook

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def readme_client_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using the client", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "no python block under 'Using the client'"
    return match.group(1)


def test_the_readme_client_example_is_the_checked_file() -> None:
    assert readme_client_example() == (ROOT / "examples" / "readme_client.py").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    mypy_files = re.search(r"\[tool\.mypy\][^\[]*files = \[([^\]]*)\]", pyproject)
    assert mypy_files is not None and '"examples"' in mypy_files.group(1)  # so mypy checks it


@pytest.mark.anyio
async def test_the_readme_client_example_prints_real_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with SimulatedWeexServer(tick_interval=0.02) as server:
        for name in [n for n in os.environ if n.startswith("WEEX_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("WEEX_WS_PUBLIC_URL", server.public_url)
        await readme_client.main()
    ticker_line, *rest = capsys.readouterr().out.splitlines()
    symbol, last, change = ticker_line.split()
    assert symbol in ("cmt_btcusdt", "cmt_ethusdt")
    assert Decimal(last) > 0 and change.endswith("%") and Decimal(change[:-1]).is_finite()
    [book_line] = [line for line in rest if " bid " in line]
    assert book_line.startswith("cmt_btcusdt bid ")
    assert Decimal(book_line.split()[-1]) > 0  # the spread of a real, uncrossed book


@pytest.mark.anyio
async def test_the_readme_client_runs_as_a_script_against_the_simulator(tmp_path: Path) -> None:
    """As the Examples section says: `python examples/readme_client.py`, from anywhere, with
    `WEEX_WS_PUBLIC_URL` naming the simulator."""
    script = str(ROOT / "examples" / "readme_client.py")
    async with SimulatedWeexServer(tick_interval=0.02) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEEX_")}
        env["WEEX_WS_PUBLIC_URL"] = server.public_url
        with anyio.fail_after(60):  # only turns a hang into a failure
            done = await anyio.run_process(
                [sys.executable, script], cwd=tmp_path, env=env, check=False
            )
    assert done.returncode == 0, done.stderr.decode()
    assert " bid " in done.stdout.decode() and done.stderr == b""


# --------------------------------------------------------------------------- the NATS consumer

NATS_LINE = re.compile(r"v(\d+) bid (\S+) x (\S+) ask (\S+) x (\S+)")
CONSUMER_LINES = 20


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats_server(tmp_path)


def readme_nats_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Scale-out: a NATS JetStream relay", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "no python block under 'Scale-out: a NATS JetStream relay'"
    return match.group(1)


def test_the_readme_nats_consumer_is_the_checked_file() -> None:
    assert readme_nats_example() == (ROOT / "examples" / "readme_nats.py").read_text()


class BookVersions:
    """A plain client's own book of the depth channel: its best levels at every version."""

    def __init__(self, symbol: str) -> None:
        self.book = OrderBook(symbol, 15)
        self.best: dict[int, tuple[str, str, str, str]] = {}
        self._changed = anyio.Event()

    def on_message(self, message: Any) -> None:
        record = message.record
        if isinstance(record, DepthUpdate) and isinstance(self.book.apply(record), Applied):
            (bid, bid_size), (ask, ask_size) = self.book.bids(1)[0], self.book.asks(1)[0]
            assert self.book.version is not None
            self.best[self.book.version] = (str(bid), str(bid_size), str(ask), str(ask_size))
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self._changed = anyio.Event()
            await self._changed.wait()


@pytest.mark.anyio
async def test_the_readme_nats_consumer_prints_the_relayed_book(nats_server: NatsServer) -> None:
    """The example as a process, reading what a real relay publishes: every line it prints is
    the book a plain client of the same simulator had at that version."""
    symbol = "cmt_btcusdt"
    reference = BookVersions(symbol)
    async with SimulatedWeexServer(
        symbols=(symbol,), tick_interval=0.05, trade_interval=None, ping_interval=None
    ) as sim, anyio.create_task_group() as tg:  # fmt: skip
        sim.pause_market()
        relay = anyio.CancelScope()
        args = build_parser().parse_args(
            ["relay", symbol, "--channels", "depth", "--url", sim.public_url,
             "--nats", nats_server.url, "--snapshot-interval", "0.5"]
        )  # fmt: skip
        tg.start_soon(_relay, args, relay)
        async with WeexWebSocketClient(WeexConfig(public_url=sim.public_url)) as client:
            channel = f"depth.{symbol}.15"
            client.add_message_handler(channel, reference.on_message)
            await client.subscribe(channel)
            await sim.wait_for_subscription(channel, HANG_GUARD)
            await sim.wait_until(
                lambda: sum(channel in c.subscriptions for c in sim.connections) == 2, HANG_GUARD
            )
            sim.resume_market()
            with anyio.fail_after(HANG_GUARD):
                await reference.wait_for(lambda: len(reference.best) >= 10)
            lines = await _consumer_lines(nats_server.url)
            printed = [NATS_LINE.fullmatch(line) for line in lines]
            versions = {int(found.group(1)) for found in printed if found is not None}
            with anyio.move_on_after(HANG_GUARD):  # what it printed, this client got too
                await reference.wait_for(lambda: versions <= set(reference.best))
        relay.cancel()
    assert len(lines) >= CONSUMER_LINES
    previous = 0
    for line, found in zip(lines, printed, strict=True):
        assert found is not None, line
        version = int(found.group(1))
        assert found.groups()[1:] == reference.best.get(version), line
        assert Decimal(found.group(2)) < Decimal(found.group(4))  # uncrossed
        assert version >= previous  # a periodic snapshot repeats its delta's version
        previous = version


async def _relay(args: Any, scope: anyio.CancelScope) -> None:
    with scope:
        await run(args, io.StringIO(), io.StringIO())


async def _consumer_lines(nats_url: str) -> list[str]:
    """`python examples/readme_nats.py`'s first lines; then it is stopped and reaped."""
    env = cli_env(NATS_URL=nats_url, PYTHONUNBUFFERED="1")
    command = [sys.executable, str(ROOT / "examples" / "readme_nats.py")]
    lines: list[str] = []
    process = await anyio.open_process(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        pending = b""
        with anyio.fail_after(HANG_GUARD):
            async for chunk in process.stdout:
                *complete, pending = (pending + chunk).split(b"\n")
                lines.extend(line.decode() for line in complete)
                if len(lines) >= CONSUMER_LINES:
                    break
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()
    return lines
