"""Recording files: raw frames with their receive times, in SQLite or JSON lines.

The format follows the file name: `.sqlite`, `.sqlite3` or `.db` is a SQLite database (stdlib
`sqlite3`) with one row per frame in `frames`; `.jsonl` or `.ndjson` holds a header line
(`{"format": "weex-ws recording 1", "dialect": "v3"}`) then one `{"received_at", "channel",
"raw"}` object per line. Both say which protocol generation their frames are, so `replay` speaks
it; a JSON lines file without the header line is read in its first frame's. Writers are plain
blocking objects: the recorder calls them from a worker thread, one batch at a time, so the
event loop never waits on the disk.

Recordings survive the recorder being killed: SQLite runs in WAL mode while recording, so a
SIGKILL leaves every committed batch readable (the last ones in the `-wal` file beside the
database, which `replay` reads too), and a JSON lines file cut in the middle of its last line
is replayed up to that line with a warning. A recording that ends cleanly is folded back into
one file (checkpointed, then out of WAL mode), and `replay` opens a file with no `-wal` or
`-journal` beside it as immutable: reading it creates no side files. Reading streams
the file: `scan_recording` checks it and counts the frames and channels in one pass, then
`iter_frames` yields them one at a time, so a long recording never sits in memory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol

import attrs

from weex_proto.replay import (
    RecordedFrame,
    RecordingError,
    frame_dialect,
    header_dialect,
    recording_header,
)

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
    def __init__(self, path: Path, *, append: bool, dialect: str = "v2") -> None:
        self.path = path
        recorded = _jsonl_dialect(path) if append and path.is_file() else None
        if recorded is not None and recorded != dialect:
            raise RecordingError(f"{path} holds {recorded} frames; this client speaks {dialect}")
        self._file = path.open("a" if append else "x", encoding="utf-8", newline="\n")
        if self._file.tell() == 0:  # a new (or empty) file starts with its header
            self._file.write(recording_header(dialect) + "\n")
            self._file.flush()

    def write(self, frames: Sequence[RecordedFrame]) -> None:
        self._file.write("".join(frame.to_json_line() + "\n" for frame in frames))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


class SqliteWriter:
    def __init__(self, path: Path, *, append: bool, dialect: str = "v2") -> None:
        self.path = path
        if not append and path.exists():
            raise FileExistsError(f"{path} exists")
        # One writer task at a time uses the connection, from whichever worker thread.
        self._db = sqlite3.connect(path, check_same_thread=False)
        try:
            # WAL: a killed recorder leaves a database any reader opens, even read-only.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            with self._db:  # which protocol generation the frames are (v2 if not said)
                self._db.execute(
                    "INSERT OR IGNORE INTO recording (key, value) VALUES ('dialect', ?)",
                    (dialect,),
                )
            [recorded] = self._db.execute(
                "SELECT value FROM recording WHERE key = 'dialect'"
            ).fetchone()
        except sqlite3.DatabaseError:
            self._db.close()
            raise
        if recorded != dialect:
            self._db.close()
            raise RecordingError(f"{path} holds {recorded} frames; this client speaks {dialect}")

    def write(self, frames: Sequence[RecordedFrame]) -> None:
        with self._db:  # one transaction per batch: all of it is on disk, or none
            self._db.executemany(
                INSERT, [(frame.received_at, frame.channel, frame.raw) for frame in frames]
            )

    def close(self) -> None:
        """Fold the WAL back into the database and leave WAL mode, so the finished recording
        is one file (copy it alone) that a reader opens without creating side files."""
        with contextlib.suppress(sqlite3.Error):  # another connection holds the file: it
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # stays in WAL mode, readable
            self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.close()


def open_writer(path: Path, *, append: bool = False, dialect: str = "v2") -> RecordingWriter:
    """A writer for `path`; refuses to overwrite an existing file unless appending.

    A recording says which protocol generation (`dialect`) its frames are (a SQLite one in its
    `recording` table, a JSON lines one in its header line), and refuses to be appended frames
    of the other.

    Raises `RecordingError` for an unknown extension, an existing file or one that is not a
    recording, and `OSError` when the file cannot be created.
    """
    kind = recording_format(path)
    if not path.parent.is_dir():  # else SQLite says only "unable to open database file"
        problem = "is not a directory" if path.parent.exists() else "does not exist"
        raise RecordingError(f"{path}: cannot create it: the directory {path.parent} {problem}")
    try:
        if kind == "sqlite":
            return SqliteWriter(path, append=append, dialect=dialect)
        return JsonlWriter(path, append=append, dialect=dialect)
    except FileExistsError:
        raise RecordingError(f"{path} already exists (use --append to add to it)") from None
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: not a SQLite recording ({exc})") from None


def sidecar_files(path: Path) -> list[Path]:
    """SQLite's files beside a database (WAL, shared memory, rollback journal)."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


@attrs.frozen
class RecordingInfo:
    """What `scan_recording` found: enough to replay the file without holding it."""

    path: Path
    format: Format
    frames: int
    channels: tuple[str, ...]
    """Every channel in the recording, first seen first."""
    warning: str | None = None
    """Set when the last line of a JSON lines file was cut short and is left out."""
    dialect: str = "v2"
    """The protocol generation of the frames, as the recording says (a SQLite one's
    `recording` table, a JSON lines one's header line); in a file that does not say, the first
    frame's text tells (a v3 push is an object with `e`)."""


def scan_recording(path: Path) -> RecordingInfo:
    """Check every frame of a recording and count them; `RecordingError` saying what is wrong.

    A recording with no frames is an error too: there would be nothing to replay.
    """
    kind = recording_format(path)
    if not path.is_file():
        what = "not a regular file" if path.exists() else "no such file"
        raise RecordingError(f"{path}: {what}")
    try:
        info = _scan_sqlite(path) if kind == "sqlite" else _scan_jsonl(path)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not info.frames:
        raise RecordingError(f"{path}: the recording holds no frames")
    return info


def iter_frames(info: RecordingInfo) -> Iterator[RecordedFrame]:
    """The frames of a scanned recording, in recorded order, read as they are needed."""
    if info.format == "sqlite":
        yield from _iter_sqlite(info)
    else:
        yield from _iter_jsonl(info)


def read_recording(path: Path) -> list[RecordedFrame]:
    """Every frame of a recording as a list (fine for short ones; `replay` streams instead)."""
    return list(iter_frames(scan_recording(path)))


def _jsonl_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as file:
        yield from enumerate(file, 1)


def _text_of(path: Path, line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordingError(f"{path}: not a text file (invalid UTF-8)") from None


def _frame_of(path: Path, number: int, line: bytes) -> RecordedFrame:
    return RecordedFrame.from_json_line(_text_of(path, line), where=f"{path}:{number}")


def _header_of(path: Path, number: int, line: bytes) -> str | None:
    """The dialect the header says, if `line` is the file's header (its first line)."""
    if number != 1:
        return None
    return header_dialect(_text_of(path, line), where=f"{path}:1")


def _jsonl_dialect(path: Path) -> str | None:
    """What an existing JSON lines recording holds: its header's word, else its first frame's
    (None for a file with no frames yet)."""
    for number, line in _jsonl_lines(path):
        if line.strip():
            said = _header_of(path, number, line)
            return said if said is not None else frame_dialect(_frame_of(path, number, line).raw)
    return None


def _scan_jsonl(path: Path) -> RecordingInfo:
    frames, dialect, said = 0, "v2", None
    channels: dict[str, None] = {}
    for number, line in _jsonl_lines(path):
        if not line.strip():
            continue
        if number == 1:
            said = _header_of(path, number, line)
            if said is not None:
                dialect = said
                continue
        try:
            frame = _frame_of(path, number, line)
        except RecordingError:
            if line.endswith(b"\n") or not frames:
                raise
            # The last line, with no newline after it: a write the recorder never finished.
            warning = (
                f"{path}:{number}: the last line is cut short (the recording was interrupted); "
                f"replaying the {frames} frames before it"
            )
            return RecordingInfo(path, "jsonl", frames, tuple(channels), warning, dialect)
        if not frames:
            dialect = _first_frame_dialect(path, number, frame, said)
        frames += 1
        channels.setdefault(frame.channel)
    return RecordingInfo(path, "jsonl", frames, tuple(channels), dialect=dialect)


def _first_frame_dialect(path: Path, number: int, frame: RecordedFrame, said: str | None) -> str:
    """The recording's dialect: what its header says, which the first frame must not
    contradict (a header edited or pasted onto another file), else what that frame is."""
    found = frame_dialect(frame.raw)
    if said is None:
        return found or "v2"
    if found is not None and found != said:
        raise RecordingError(f"{path}:{number}: a {found} frame, but the header says {said}")
    return said


def _iter_jsonl(info: RecordingInfo) -> Iterator[RecordedFrame]:
    served = 0
    for number, line in _jsonl_lines(info.path):
        if served >= info.frames:
            return
        if line.strip() and _header_of(info.path, number, line) is None:
            yield _frame_of(info.path, number, line)
            served += 1


def _open_sqlite(path: Path) -> sqlite3.Connection:
    """Read-only. With no `-wal` or `-journal` beside it the file is whole and nobody writes
    it, so it is opened immutable: SQLite then takes no locks and creates no `-shm`/`-wal`
    (a read-only open of a WAL-mode file would, and leave them). A `-wal` holds frames of a
    recording still being written or killed: it is read, so nothing committed is missed."""
    writing = any(path.with_name(path.name + side).exists() for side in ("-wal", "-journal"))
    uri = path.resolve().as_uri() + ("?mode=ro" if writing else "?mode=ro&immutable=1")
    try:
        return sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise RecordingError(f"{path}: cannot open ({exc})") from None


def _sqlite_error(path: Path, exc: sqlite3.Error) -> RecordingError:
    if isinstance(exc, sqlite3.OperationalError):
        if "no such table" in str(exc):
            return RecordingError(f"{path}: not a weex-ws recording (no frames table)")
        return RecordingError(f"{path}: cannot read ({exc})")
    return RecordingError(f"{path}: not a SQLite database ({exc})")


_BAD_ROW = """
SELECT id, received_at, channel, raw FROM frames
WHERE typeof(received_at) NOT IN ('integer', 'real') OR received_at < 0
   OR typeof(channel) != 'text' OR channel = '' OR typeof(raw) != 'text'
ORDER BY id LIMIT 1
"""


def _scan_sqlite(path: Path) -> RecordingInfo:
    db = _open_sqlite(path)
    try:
        bad = db.execute(_BAD_ROW).fetchone()
        if bad is not None:  # raises, naming the row and the field
            row_id, received_at, channel, raw = bad
            RecordedFrame.checked(received_at, channel, raw, f"{path}: row {row_id}")
        [count] = db.execute("SELECT COUNT(*) FROM frames").fetchone()
        first_seen = "SELECT channel FROM frames GROUP BY channel ORDER BY MIN(id)"
        channels = tuple(channel for (channel,) in db.execute(first_seen))
        dialect = _recorded_dialect(db)
    except sqlite3.Error as exc:
        raise _sqlite_error(path, exc) from None
    finally:
        db.close()
    return RecordingInfo(path, "sqlite", int(count), channels, dialect=dialect)


def _recorded_dialect(db: sqlite3.Connection) -> str:
    """The recording's own word (a file without it: what its first frame is)."""
    try:
        said = db.execute("SELECT value FROM recording WHERE key = 'dialect'").fetchone()
    except sqlite3.OperationalError:  # no `recording` table
        said = None
    if said is not None and said[0] in ("v2", "v3"):
        return str(said[0])
    first = db.execute("SELECT raw FROM frames ORDER BY id LIMIT 1").fetchone()
    return (frame_dialect(first[0]) if first is not None else None) or "v2"


def _iter_sqlite(info: RecordingInfo) -> Iterator[RecordedFrame]:
    path = info.path
    db = _open_sqlite(path)
    try:
        rows = db.execute(
            "SELECT id, received_at, channel, raw FROM frames ORDER BY id LIMIT ?", (info.frames,)
        )
        for row_id, received_at, channel, raw in rows:
            yield RecordedFrame.checked(received_at, channel, raw, f"{path}: row {row_id}")
    except sqlite3.Error as exc:
        raise _sqlite_error(path, exc) from None
    finally:
        db.close()
