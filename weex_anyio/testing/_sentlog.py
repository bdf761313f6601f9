"""What the simulator's full feed sent, record by record: the ground truth for checking that
every record reached whoever relayed it (`weex-ws simulate --sent-log FILE`,
`bench/soak_relay.py`).

One line per record of each push, in the order the feed sent them: `<channel> <digest>`,
and for depth records ` <depthType>:<endVersion>` as well, since a SNAPSHOT goes to the one
connection that just subscribed while a CHANGED goes to every subscriber. A push is written
once however many connections it goes to. The digest is `record_digest` of the record as
parsed from the push, so a reader computes it again from the record wherever it ends up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import attrs

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_digest(record: Any) -> str:
    """16 hex digits of BLAKE2b over the record's canonical JSON (sorted keys, no spaces):
    key order and spacing do not matter, every value does."""
    return hashlib.blake2b(_CANONICAL.encode(record).encode(), digest_size=8).hexdigest()


class SentLog:
    """Called with the text of every push the feed sends; writes its records' lines to
    `file` (buffered: `close` the file when done)."""

    def __init__(self, file: TextIO) -> None:
        self._write = file.write
        self.records = 0

    def __call__(self, text: str) -> None:
        frame = json.loads(text)
        channel = frame["channel"]
        lines = []
        for row in frame["data"]:
            line = f"{channel} {record_digest(row)}"
            if isinstance(row, dict) and "depthType" in row:
                line += f" {row['depthType']}:{row['endVersion']}"
            lines.append(line + "\n")
        self.records += len(lines)
        self._write("".join(lines))


@attrs.frozen
class SentRecord:
    """One line of a sent log."""

    channel: str
    digest: str
    depth: str | None = None
    """`<depthType>:<endVersion>` of a depth record."""


def read_sent_log(lines: Iterable[str]) -> Iterator[SentRecord]:
    """The records of a sent log, in order (a torn last line, from a killed writer, is left
    out)."""
    for line in lines:
        if not line.endswith("\n"):
            return
        parts = line.split()
        if len(parts) in (2, 3):
            yield SentRecord(*parts)
