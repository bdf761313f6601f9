"""Which generation of WEEX's WebSocket protocol a client speaks: v2 (the default) or v3.

A `Dialect` is data and a few small functions that `WeexConnection` consults where the two
generations differ: how a subscribe, an unsubscribe and a pong are written, whether requests
carry ids (v3 answers by id, v2 by channel name), and how a push that is not v2's own becomes
one. Everything else (the subscription book, pools, the hub, records, books) sees v2 channel
names and v2-shaped frames whichever dialect is on the wire. `WeexConfig.dialect` picks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeAlias

import attrs

from . import v3wire

__all__ = ["V2", "V3", "ApiVersion", "Dialect", "dialect_named"]

ApiVersion: TypeAlias = Literal["v2", "v3"]


def _v2_request(operation: str, channel: str, request_id: int) -> dict[str, Any]:
    return {"event": operation, "channel": channel}


def _v2_pong(key: str, time: object, request_id: int) -> dict[str, Any]:
    """`{"event":"pong","time":...}` under the key the ping used, its `time` echoed as sent."""
    reply: dict[str, Any] = {key: "pong"}
    if time is not None:
        reply["time"] = time
    return reply


def _v3_pong(key: str, time: object, request_id: int) -> dict[str, Any]:
    """v3 answers either ping form with a PONG request of its own id (docs/protocol-v3.md §3)."""
    return {"id": request_id, "method": "PONG"}


@attrs.frozen
class Dialect:
    """What differs between WEEX's protocol generations, for the connection to consult."""

    name: ApiVersion
    public_url: str
    private_url: str
    request_ids: bool
    """Requests carry ids and are answered `{"result":...,"id":...}` (v3), rather than by an
    ack naming the channel (v2)."""
    request: Callable[[str, str, int], dict[str, Any]] = attrs.field(repr=False)
    """(operation, v2 channel name, request id) -> the subscribe/unsubscribe message."""
    pong: Callable[[str, object, int], dict[str, Any]] = attrs.field(repr=False)
    """(the ping's key, its `time`, a request id) -> the answer to an application ping."""
    push: Callable[[Mapping[str, Any]], dict[str, Any] | str] | None = attrs.field(repr=False)
    """A push of this dialect -> the v2 frame it stands for, or why it cannot be placed; None
    when pushes are v2 frames already."""
    wire_channel: Callable[[str], str] = attrs.field(repr=False)
    """A v2 channel name as this dialect writes it on the wire."""


V2: Final = Dialect(
    name="v2",
    public_url="wss://ws-contract.weex.com/v2/ws/public",
    private_url="wss://ws-contract.weex.com/v2/ws/private",
    request_ids=False,
    request=_v2_request,
    pong=_v2_pong,
    push=None,
    wire_channel=str,
)

V3: Final = Dialect(
    name="v3",
    public_url="wss://ws-contract.weex.com/v3/ws/public",
    private_url="wss://ws-contract.weex.com/v3/ws/private",
    request_ids=True,
    request=v3wire.request,
    pong=_v3_pong,
    push=v3wire.push_to_v2,
    wire_channel=v3wire.wire_channel,
)

_BY_NAME: Final[Mapping[str, Dialect]] = {"v2": V2, "v3": V3}


def dialect_named(name: str) -> Dialect:
    """`V2` or `V3` by name; ValueError for any other."""
    dialect = _BY_NAME.get(name)
    if dialect is None:
        raise ValueError(f"unknown WEEX API version {name!r}; expected 'v2' or 'v3'")
    return dialect


def implied_by_url(url: str) -> ApiVersion | None:
    """The version a URL's path names (`/v3/ws/public` -> "v3"), or None if it names none."""
    path = url.partition("://")[2].partition("/")[2].partition("?")[0]
    parts = path.split("/")
    if "v3" in parts:
        return "v3"
    if "v2" in parts:
        return "v2"
    return None
