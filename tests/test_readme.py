"""The README's client example is `examples/readme_client.py`, which mypy --strict checks;
here: that the README shows exactly that file, and that it prints real values."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest

from examples import readme_client
from weex_anyio.testing import SimulatedWeexServer

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
