"""Values the server chose, read without ever raising: a ping's timestamp, text for events.

Where the protocol promises a string or a number, any JSON value can arrive: an array nested a
thousand deep (its `repr` or `json.dumps` hits the recursion limit), an integer of thousands of
digits (`str()` refuses past 4300), a digit that `str.isdigit()` accepts and `int()` does not
("²"). Each helper here turns such a value into something safe to keep, or into None.
"""

from __future__ import annotations

import json
import math
import re
from typing import Final

__all__ = ["MAX_TIMESTAMP_MS", "describe", "encode_json", "ping_server_time", "text_of"]

MAX_TIMESTAMP_MS: Final = 10**15
"""Past any real millisecond timestamp (the year 33658), and far inside a float's exact range."""

_MILLISECONDS: Final = re.compile(r"[0-9]{1,15}", re.ASCII)
_LARGEST_INT_BITS: Final = 128  # beyond this an "integer" from the wire is no id, code or time


def ping_server_time(value: object) -> float | None:
    """A ping's `time` (milliseconds, as digits or a JSON number) in seconds since the epoch.

    None for anything that is not a plausible timestamp: such a ping is still answered (the
    pong echoes whatever was sent), it just tells us nothing about the server's clock.
    """
    milliseconds: int | float
    if isinstance(value, str):
        if not _MILLISECONDS.fullmatch(value):
            return None
        milliseconds = int(value)
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        milliseconds = value
    else:
        return None
    if not 0 <= milliseconds < MAX_TIMESTAMP_MS:
        return None
    return milliseconds / 1000


def encode_json(value: object) -> str | None:
    """Compact JSON text of a decoded value, or None if it cannot be written back (nesting
    past the recursion limit, an integer past Python's digit limit)."""
    try:
        return json.dumps(value, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        return None


def text_of(value: object) -> str:
    """A wire value as text for an event field that is a string (an error's code or message):
    a string as sent, anything else as its JSON, or its type if even that cannot be written."""
    if isinstance(value, str):
        return value
    encoded = encode_json(value)
    return encoded if encoded is not None else f"a {type(value).__name__}"


def describe(value: object, limit: int = 40) -> str:
    """A short description of an unexpected value for a log line: the text of a small scalar
    (as its repr, cut to `limit`), else just its type."""
    if isinstance(value, int) and value.bit_length() > _LARGEST_INT_BITS:
        return "a very large int"
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value[: limit + 1] if isinstance(value, str) else value)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    return f"a {type(value).__name__}"
