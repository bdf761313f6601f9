"""Instructions a Python child runs, start to exit, counted by `valgrind --tool=callgrind`.

Shared by the benchmarks that count instead of timing (`bench_instructions.py`,
`bench_orderbook.py --instructions`): run the same work twice, N and 3N times, and the
difference over 2N is the cost of one more, start-up cancelled out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

_COLLECTED = re.compile(r"Collected : (\d+)")


def require_valgrind(what: str) -> None:
    if shutil.which("valgrind") is None:
        sys.exit(f"{what} needs valgrind on PATH")


def instructions(arguments: list[str], what: str, env: dict[str, str] | None = None) -> int:
    """Instructions of `python ARGUMENTS...` under callgrind; `what` names it if it fails."""
    command = [
        *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable),
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    counts = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not counts:
        raise RuntimeError(f"{what} under callgrind failed:\n{done.stderr[-2000:]}")
    return int(counts[-1])
