"""A one-line progress bar on stderr for long replays, drawn only on a terminal.

Our own few lines rather than a dependency: one bar, redrawn in place with a carriage return,
and left on screen with its final count when the command ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TextIO

import anyio

BAR_WIDTH = 24


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def shows_progress(stderr: TextIO, stdout: TextIO) -> bool:
    """On a terminal, unless the output itself goes there (the two would overwrite each other)."""
    return _isatty(stderr) and not _isatty(stdout) and os.environ.get("TERM", "") != "dumb"


def progress_text(label: str, done: int, total: int, unit: str) -> str:
    share = min(done / total, 1.0) if total > 0 else 1.0
    filled = round(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"{label} [{bar}] {done:,}/{total:,} {unit} ({share:.0%})"


class ProgressLine:
    """Redraws `label [####....] done/total unit (pct)` until cancelled, then draws it once more."""

    def __init__(self, stream: TextIO, label: str, total: int, *, unit: str) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.unit = unit

    def draw(self, done: int) -> None:
        self.stream.write(f"\r{progress_text(self.label, done, self.total, self.unit)}\x1b[K")
        self.stream.flush()

    async def run(self, done: Callable[[], int], interval: float) -> None:
        try:
            while True:
                self.draw(min(done(), self.total))
                await anyio.sleep(interval)
        finally:
            self.draw(min(done(), self.total))
            self.stream.write("\n")
            self.stream.flush()
