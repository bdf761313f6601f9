"""A command runs for hours: buffers of a burst go back to the system once freed, so the
resident set follows what the process holds (`weex_anyio.cli._memory`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import weex_anyio.cli
from weex_anyio.cli import main

# Frees large buffers the way a burst of the feed does (the first one the largest), and prints
# how much the resident set grew. On glibc, by default, the first buffer freed raises the size
# from which allocations are mapped on their own, so the next ones come from the heap, whose
# freed space it keeps.
PROBE = """
import sys
from weex_anyio.cli._memory import return_large_buffers_when_freed

def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

if sys.argv[1] == "fixed":
    assert return_large_buffers_when_freed()
before = resident()
for size in (1_200_000, 1_000_000, 1_000_000):
    block = bytearray(size)  # zeroed: every page is touched
    del block
print(resident() - before)
"""

needs_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/self/statm").exists(),
    reason="glibc's allocator, read through /proc",
)


def growth_after_a_burst(mode: str) -> int:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout)


@needs_glibc
def test_large_buffers_go_back_to_the_system_once_freed() -> None:
    kept_by_default = growth_after_a_burst("default")
    if kept_by_default < 512 * 1024:
        pytest.skip("this C library already returns them")  # not glibc's dynamic threshold
    assert growth_after_a_burst("fixed") < 256 * 1024, kept_by_default


def test_every_command_sets_it_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[bool] = []

    def noted() -> bool:
        calls.append(True)
        return True

    monkeypatch.setattr(weex_anyio.cli, "return_large_buffers_when_freed", noted)
    assert main(["replay", str(tmp_path / "missing.sqlite"), "--speed", "max"]) == 2
    assert calls == [True]
