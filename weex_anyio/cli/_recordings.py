"""Recording files: raw frames with their receive times, in SQLite or JSON lines.

The format follows the file name: `.sqlite`, `.sqlite3` or `.db` is a SQLite database (stdlib
`sqlite3`) with one row per frame in `frames`; `.jsonl` or `.ndjson` holds one
`{"received_at", "channel", "raw"}` object per line. Writers are plain blocking objects: the
recorder calls them from a worker thread, one batch at a time, so the event loop never waits
on the disk.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from weex_proto.replay import RecordedFrame, RecordingError

Format = Literal["sqlite", "jsonl"]

_SUFFIXES: dict[str, Format] = {
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    id          INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,  -- seconds since the epoch, when the client received the frame
    channel     TEXT NOT NULL,
    raw         TEXT NOT NULL   -- the frame's text exactly as received
);
CREATE TABLE IF NOT EXISTS recording (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO recording (key, value) VALUES ('format', 'weex-ws recording 1');
"""
INSERT = "INSERT INTO frames (received_at, channel, raw) VALUES (?, ?, ?)"


def recording_format(path: Path) -> Format:
    """The format a file name asks for; `RecordingError` for an unknown extension."""
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        known = ", ".join(_SUFFIXES)
        raise RecordingError(f"{path}: unknown recording format (use one of {known})")
    return found


class RecordingWriter(Protocol):
    path: Path

    def write(self, frames: Sequence[RecordedFrame]) -> None: ...
    def close(self) -> None: ...


class JsonlWriter:
    def __init__(self, path: Path, *, append: bool) -> None:
        self.path = path
        self._file = path.open("a" if append else "x", encoding="utf-8", newline="\n")

    def write(self, frames: Sequence[RecordedFrame]) -> None:
        self._file.write("".join(frame.to_json_line() + "\n" for frame in frames))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


class SqliteWriter:
    def __init__(self, path: Path, *, append: bool) -> None:
        self.path = path
        if not append and path.exists():
            raise FileExistsError(f"{path} exists")
        # One writer task at a time uses the connection, from whichever worker thread.
        self._db = sqlite3.connect(path, check_same_thread=False)
        try:
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    def write(self, frames: Sequence[RecordedFrame]) -> None:
        with self._db:  # one transaction per batch: all of it is on disk, or none
            self._db.executemany(
                INSERT, [(frame.received_at, frame.channel, frame.raw) for frame in frames]
            )

    def close(self) -> None:
        self._db.close()


def open_writer(path: Path, *, append: bool = False) -> RecordingWriter:
    """A writer for `path`; refuses to overwrite an existing file unless appending.

    Raises `RecordingError` for an unknown extension, an existing file or one that is not a
    recording, and `OSError` when the file cannot be created.
    """
    kind = recording_format(path)
    try:
        if kind == "sqlite":
            return SqliteWriter(path, append=append)
        return JsonlWriter(path, append=append)
    except FileExistsError:
        raise RecordingError(f"{path} already exists (use --append to add to it)") from None
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: not a SQLite recording ({exc})") from None


def read_recording(path: Path) -> list[RecordedFrame]:
    """Every frame of a recording, in recorded order; `RecordingError` saying what is wrong."""
    kind = recording_format(path)
    if not path.is_file():
        what = "not a regular file" if path.exists() else "no such file"
        raise RecordingError(f"{path}: {what}")
    try:
        if kind == "sqlite":
            return _read_sqlite(path)
        return _read_jsonl(path)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read_jsonl(path: Path) -> list[RecordedFrame]:
    frames = []
    with path.open(encoding="utf-8", errors="strict") as file:
        try:
            for number, line in enumerate(file, 1):
                if line.strip():
                    frames.append(RecordedFrame.from_json_line(line, where=f"{path}:{number}"))
        except UnicodeDecodeError:
            raise RecordingError(f"{path}: not a text file (invalid UTF-8)") from None
    return frames


def _read_sqlite(path: Path) -> list[RecordedFrame]:
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise RecordingError(f"{path}: cannot open ({exc})") from None
    try:
        rows = db.execute("SELECT id, received_at, channel, raw FROM frames ORDER BY id")
        return [
            RecordedFrame.checked(received_at, channel, raw, f"{path}: row {row_id}")
            for row_id, received_at, channel, raw in rows
        ]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise RecordingError(f"{path}: not a weex-ws recording (no frames table)") from None
        raise RecordingError(f"{path}: cannot read ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: not a SQLite database ({exc})") from None
    finally:
        db.close()
