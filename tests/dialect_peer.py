"""`DialectPeer`: the scripted wsproto server of tests/wspeer.py, speaking v2 or v3.

So that one test checks the client on both of WEEX's dialects: what the client asked comes
back in v2's words (`{"event":"subscribe","channel":"ticker.cmt_btcusdt"}`) once its v3 form
has been checked strictly (exactly `method`, `params` with one name, `id`; ids counting up by
one on the connection, PONGs included), and what the server says is written the dialect's way
(an ack naming the channel or the request's id, `{"event":"payload",...}` or `{"e":...}`). v3
names are read with the simulator's `v2_channel`, not with weex_proto's code, so a misreading
of the protocol in the client does not hide in its tests.
"""

from __future__ import annotations

import json
from typing import Any

from tests.wspeer import ServerPeer
from weex_anyio.testing._v3 import v2_channel
from weex_proto.config import WeexConfig

PRIVATE = ("account", "positions", "orders", "fill")
_V3_OPERATIONS = {"SUBSCRIBE": "subscribe", "UNSUBSCRIBE": "unsubscribe"}
_V3_TICKER = {"lastPrice": "c", "priceChange": "p", "high": "h", "low": "l", "markPrice": "m"}
_V3_TRADE = {"time": "T", "price": "p", "size": "q", "value": "v", "buyerMaker": "m"}
_V3_PRIVATE = {"coinId": "coin", "contractId": "symbol", "crossContractId": "crossSymbol"}
_NEVER_ASKED = 1_000_000  # a request id no test's connection reaches


def config(api: str = "v2", **fields: Any) -> WeexConfig:
    """Credentials the tests sign with, for `api`."""
    return WeexConfig(api_key="k", secret_key="s", passphrase="p", api=api, **fields)


def _v3_symbol(contract: str) -> str:
    return contract.removeprefix("cmt_").upper()


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _renamed(rows: Any, names: dict[str, str]) -> Any:
    if not isinstance(rows, list):
        return rows
    return [
        {names.get(key, key): value for key, value in row.items()} if isinstance(row, dict) else row
        for row in rows
    ]


def _levels(levels: Any) -> Any:
    if not isinstance(levels, list):
        return levels
    return [[level["price"], level["size"]] for level in levels]


def v3_push(frame: dict[str, Any]) -> dict[str, Any]:
    """A v2 push as the v3 push with the same values (`E` is 1; counts and versions become
    numbers, as v3 sends them). Rows of the wrong shape go as they are, so a test of a bad
    push sends v3's bad push."""
    channel: str = frame["channel"]
    if channel in PRIVATE:
        msg = frame["msg"]
        rows = next(iter(msg["data"].values())) if isinstance(msg.get("data"), dict) else msg
        head = {"e": channel, "E": msg.get("time", 1), "v": msg.get("version", 1)}
        return {**head, "msgEvent": msg.get("msgEvent"), "d": _renamed(rows, _V3_PRIVATE)}
    kind, _, rest = channel.partition(".")
    data = frame["data"]
    if kind == "depth":
        contract, _, level = rest.partition(".")
        if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)):
            return {"e": "depth", "E": 1, "s": _v3_symbol(contract), "l": int(level), "b": data}
        (row,) = data
        return {
            "e": "depthSnapshot" if row["depthType"] == "SNAPSHOT" else "depth",
            "E": 1,
            "s": _v3_symbol(row["symbol"]),
            "U": _number(row["startVersion"]),
            "u": _number(row["endVersion"]),
            "l": int(row["level"]),
            "d": row["depthType"],
            "b": _levels(row["bids"]),
            "a": _levels(row["asks"]),
        }
    names = _V3_TICKER if kind == "ticker" else _V3_TRADE
    event = "ticker" if kind == "ticker" else "trade"
    return {"e": event, "E": 1, "s": _v3_symbol(rest), "d": _renamed(data, names)}


def _decoded(text: str) -> Any:
    """The JSON a text holds, or the text itself if it is none (a bare `pong`)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _v2_request(message: dict[str, Any]) -> dict[str, str]:
    """A v3 SUBSCRIBE/UNSUBSCRIBE as v2 writes it; its one name must be a channel."""
    (name,) = message["params"]
    channel = v2_channel(name, {"cmt_" + name.partition("@")[0].lower()})
    assert channel is not None, f"no channel is named {name!r}"
    return {"event": _V3_OPERATIONS[message["method"]], "channel": channel}


def pong(api: str, key: str, time: Any, request_id: int) -> dict[str, Any]:
    """The answer to an application ping: v2 echoes `time` under the ping's key, v3 sends a
    PONG request with the connection's next id."""
    if api == "v3":
        return {"id": request_id, "method": "PONG"}
    return {key: "pong", "time": time}


class DialectPeer(ServerPeer):
    def __init__(self, api: str = "v2") -> None:
        super().__init__()
        self.api = api
        self.last_id = 0  # v3: the id of the client's latest request
        self.pending: list[tuple[str, str, int]] = []
        """(operation, v2 channel, id) of each request not answered yet, oldest first."""
        self.answered: dict[str, int] = {}  # v2 channel -> id of the latest answered request

    def receive(self, data: bytes) -> None:
        seen = len(self.texts)
        super().receive(data)
        for text in self.texts[seen:]:
            request = self._request(_decoded(text))
            if request is not None:
                self.pending.append(request)

    def _request(self, message: Any) -> tuple[str, str, int] | None:
        if self.api == "v2":
            if isinstance(message, dict) and message.get("event") in ("subscribe", "unsubscribe"):
                return message["event"], message["channel"], 0
            return None
        if not isinstance(message, dict) or "id" not in message:
            return None
        assert message["id"] == self.last_id + 1, f"ids count up by one: {message}"
        self.last_id = message["id"]
        if message.get("method") not in _V3_OPERATIONS:
            assert message == {"id": self.last_id, "method": "PONG"}, message
            return None
        assert set(message) == {"method", "params", "id"}, message
        as_v2 = _v2_request(message)
        return as_v2["event"], as_v2["channel"], message["id"]

    def requests(self) -> list[Any]:
        """What the client sent, each subscribe/unsubscribe in v2's words (its v3 form was
        checked on arrival); anything else as the JSON it was."""
        messages = [_decoded(text) for text in self.texts]
        if self.api == "v2":
            return messages
        return [
            _v2_request(message)
            if isinstance(message, dict) and message.get("method") in _V3_OPERATIONS
            else message
            for message in messages
        ]

    def _take(self, operation: str, channel: str) -> int | None:
        """The id of the oldest unanswered `operation` of `channel`, now answered."""
        for index, (asked, name, request_id) in enumerate(self.pending):
            if (asked, name) == (operation, channel):
                del self.pending[index]
                self.answered[channel] = request_id
                return request_id
        return None

    def ack(self, channel: str, operation: str = "subscribe") -> bytes:
        """The server's yes to the oldest unanswered `operation` of `channel` (v2 acks by name,
        so it may also ack what was never asked)."""
        request_id = self._take(operation, channel)
        if self.api == "v3":
            assert request_id is not None, f"the client sent no {operation} of {channel}"
            return self.text({"result": True, "id": request_id})
        return self.text({"event": operation + "d", "channel": channel})

    def refuse(self, channel: str, msg: str = "bad", code: str = "40020") -> bytes:
        """The server's no to `channel`: v2's error frame naming it; v3's `result:false` to
        the pending subscribe of it, or (none pending) to the id last answered for it, or to
        an id never used. v3's refusals carry no code (docs/protocol-v3.md §2)."""
        request_id = self._take("subscribe", channel)
        if self.api == "v2":
            return self.text({"event": "error", "code": code, "msg": msg, "channel": channel})
        if request_id is None:
            request_id = self.answered.get(channel, _NEVER_ASKED)
        return self.text({"result": False, "id": request_id, "msg": msg})

    def wire(self, frame: dict[str, Any]) -> dict[str, Any]:
        """A v2 push as this dialect sends it."""
        return v3_push(frame) if self.api == "v3" else frame

    def push(self, frame: dict[str, Any]) -> bytes:
        return self.text(self.wire(frame))

    def send(self, frame: dict[str, Any]) -> bytes:
        """A v2-shaped server frame (push, ack or error naming a channel), in this dialect."""
        event = frame.get("event")
        if event in ("subscribed", "unsubscribed"):
            return self.ack(frame["channel"], event.removesuffix("d"))
        if event == "error" and isinstance(frame.get("channel"), str):
            return self.refuse(frame["channel"], frame.get("msg", ""), frame.get("code", ""))
        if event == "payload":
            return self.push(frame)
        return self.text(frame)
