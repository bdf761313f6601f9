"""Log records as JSON lines: the structured fields weex-ws attaches, and never a secret.

The client logs with `extra={"weex_event": "connected", "endpoint": "public", ...}`, so a log
pipeline can select on what happened rather than parse English. A plain text formatter throws
those fields away; `JsonLogFormatter` writes one JSON object per record instead: `time` (UTC,
ISO 8601), `level`, `logger`, `message`, every extra field, and the traceback if there is one.

Secrets are kept out twice, because one careless `extra=` or `%r` is all it takes to leak one:
fields whose *names* look like credentials (`secret_key`, `passphrase`, `ACCESS-SIGN`, ...) are
replaced by "<redacted>" wherever they are nested, and the caller can name secret *values* (the
configured keys) that are scrubbed from every string, the message and traceback included.

    handler.setFormatter(JsonLogFormatter(secrets=[config.api_key, config.secret_key,
                                                   config.passphrase]))

Nothing here reads a clock: the time is the one `logging` stamped on the record.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "JsonLogFormatter", "RedactingFormatter", "is_secret_name"]

REDACTED = "<redacted>"

# Secrets shorter than this are not scrubbed by value: replacing every "ab" in a log would
# destroy it while protecting nothing a real credential looks like.
MIN_SECRET_LENGTH = 4

_SECRET_NAME = re.compile(
    r"secret|passphrase|passw(or)?d|api_?key|access_?(key|sign|passphrase)|signature|^sign$"
    r"|token|authorization|cookie|credential",
    re.IGNORECASE,
)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def is_secret_name(name: str) -> bool:
    """True for field and header names that hold credentials (`api_key`, `ACCESS-SIGN`, ...)."""
    return _SECRET_NAME.search(name.replace("-", "_")) is not None


class RedactingFormatter(logging.Formatter):
    """A `logging.Formatter` whose output never contains the given secret values."""

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        *,
        secrets: Iterable[str] = (),
    ) -> None:
        super().__init__(fmt, datefmt)
        # Longest first, so a secret that contains another is replaced whole.
        wanted = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        self._secrets = sorted(wanted, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonLogFormatter(RedactingFormatter):
    """One JSON object per record, with the record's `extra` fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _RECORD_ATTRIBUTES or key.startswith("_") or key in entry:
                continue
            entry[key] = REDACTED if is_secret_name(key) else self._clean(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["traceback"] = self.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["traceback"] = self.redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = self.redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))

    def _clean(self, value: Any, depth: int = 0) -> Any:
        """A JSON-ready copy of `value` with secret-named fields and secret values removed."""
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, bytes | bytearray):
            return self.redact(bytes(value).decode("utf-8", errors="replace"))
        if isinstance(value, enum.Enum):
            return self._clean(value.value, depth + 1)
        if isinstance(value, decimal.Decimal):
            return str(value)
        if depth > 20:  # a self-referencing structure; its text is enough
            return self.redact(str(value))
        if isinstance(value, Mapping):
            return {
                str(k): REDACTED if is_secret_name(str(k)) else self._clean(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            items = list(value)
            # A (name, value) pair, as HTTP headers are usually carried.
            if len(items) == 2 and isinstance(items[0], str) and is_secret_name(items[0]):
                return [items[0], REDACTED]
            return [self._clean(item, depth + 1) for item in items]
        return self.redact(str(value))


def _utc_iso(created: float) -> str:
    return dt.datetime.fromtimestamp(created, tz=dt.UTC).isoformat(timespec="milliseconds")
