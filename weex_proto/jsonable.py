"""Records as JSON text: one function for every place a record leaves the process as JSON.

Values a push holds (strings, numbers, lists, dicts) are written as they are, in one call to
the encoder; anything else (a `Decimal`, an enum, an attrs record, a read-only mapping) goes
through `to_jsonable` only when the encoder meets it, so a record that is already plain JSON
is never walked in Python. orjson writes the text when it is installed (the `fast` extra).
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

__all__ = ["canonical_json", "dumps_compact", "to_jsonable"]


_AS_IS = frozenset({str, int, bool, type(None)})
"""Types a JSON value keeps as it is: by far most of the fields of a record."""


def to_jsonable(value: Any) -> Any:
    """Typed records, books and decimals as plain JSON values (Decimal → exact string)."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is dict:  # decoded JSON: string keys, mostly string values
        return {
            key if type(key) is str else str(key): item
            if type(item) in _AS_IS
            else to_jsonable(item)
            for key, item in value.items()
        }
    if kind is list or kind is tuple:
        return [item if type(item) in _AS_IS else to_jsonable(item) for item in value]
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if attrs.has(type(value)):
        # `raw` (the record exactly as received) is left out: the typed fields are the point.
        return {
            field.name: to_jsonable(getattr(value, field.name))
            for field in attrs.fields(type(value))
            if field.name != "raw"
        }
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return str(value)


Writer = Callable[[Any], bytes]


def _writers() -> tuple[Writer, Writer | None]:
    """The compact writer, and the one with sorted keys: orjson's when it is installed, the
    standard library's compact one (and no sorted one: `canonical_json` has its own) when not."""
    try:
        import orjson
    except ImportError:
        encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=to_jsonable
        )
        return (lambda value: encoder.encode(value).encode()), None
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    return (
        (lambda value: dumps(value, default=to_jsonable)),
        (lambda value: dumps(value, option=sort_keys)),
    )


_dumps, _sorted_fast = _writers()

_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)
_FLOAT_TOKEN = re.compile(rb"[:,\[][-0-9n](?:(?<=n)ull|[0-9]*+[.eE])")
"""A number with a fraction or an exponent in compact JSON, or a null (orjson writes an
infinity as null), after the `:`, `,` or `[` before any value. It may also match inside a
string: then the slower encoder is used, which is never wrong. Written so that each
candidate is settled at once (a search costs a few microseconds on a ticker)."""
_LEADING_FLOAT = re.compile(rb"-?[0-9]+[.eE]|null")
"""The same at the start of the text: a bare value."""


def canonical_json(value: Any) -> bytes:
    """`value` as JSON with sorted keys and no spaces, the same bytes whether or not orjson
    is installed (two relays must derive the same ids from the same push). orjson writes it
    when it can and the value holds no float and no null (the two encoders write some
    floats differently, and orjson an infinity as null); otherwise the standard library
    does, with anything it cannot write as `str(value)`."""
    if _sorted_fast is not None:
        try:
            text = _sorted_fast(value)
        except TypeError:  # orjson.JSONEncodeError: a big int, a lone surrogate, a Decimal
            pass
        else:
            if _FLOAT_TOKEN.search(text) is None and _LEADING_FLOAT.match(text) is None:
                return text
    return _CANONICAL.encode(value).encode("utf-8", "surrogatepass")


def dumps_compact(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON. What the encoder refuses (a key that is not a string;
    a NaN, which the standard library's encoder refuses here and orjson writes as null) is
    written from `to_jsonable(value)` instead."""
    try:
        return _dumps(value)
    except (TypeError, ValueError):
        return _dumps(to_jsonable(value))
