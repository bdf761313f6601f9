"""One JSON shape for a record everywhere: a `--json` line of the stream commands and of
`replay`, a relay's message body, and what `tail --json` prints of it are the same object,
`{"channel", "received_at", "gap", "data"}` with `message.data` (WEEX's names and the
documentation's, the exchange's exact strings) in `data`."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_messages import ALL_PUSHES, TICKER_PUSH
from tests.test_cli import doc_recording, json_lines, run_cli, write_recording
from weex_anyio.cli._output import json_line, record_data
from weex_anyio.cli._relay import Relay
from weex_proto.events import PushFrame, WebSocketMessage
from weex_proto.jsonable import to_jsonable
from weex_proto.records import OrderBookSnapshot, RecordSplitter

T0 = 1_700_000_000.25


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def relay_body(relay: Relay, message: WebSocketMessage[Any]) -> bytes:
    """What the relay publishes for `message`: its own `on_message`, then the outbox's body."""
    relay.on_message(message)
    item = relay.outbox.take()
    assert item is not None
    return item.body()


def split_all(pushes: list[tuple[float, dict[str, Any]]]) -> list[WebSocketMessage[Any]]:
    splitter = RecordSplitter()
    return [
        message
        for received_at, push in pushes
        for message in splitter.split(
            PushFrame(push["channel"], push, received_at, json.dumps(push))
        )
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(ALL_PUSHES))
async def test_a_json_line_is_the_relay_body_of_the_same_record(name: str) -> None:
    messages = split_all([(T0, copy.deepcopy(ALL_PUSHES[name]))])
    assert messages
    relay = Relay()
    for message in messages:
        line = json_line(message)
        assert line.encode() == relay_body(relay, message)
        body = json.loads(line)
        assert body == {
            "channel": message.channel,
            "received_at": T0,
            "gap": False,
            "data": to_jsonable(dict(message.data)),  # `.data` itself, not the typed record
        }


def test_a_ticker_line_has_the_documented_names_and_the_exchanges_strings() -> None:
    [message] = split_all([(T0, copy.deepcopy(TICKER_PUSH))])
    data = json.loads(json_line(message))["data"]
    row = TICKER_PUSH["data"][0]
    assert data["last"] == data["lastPrice"] == row["lastPrice"]
    assert (row["priceChangePercent"], data["change"]) == ("-0.019637", "-1.9637")  # percent
    assert data["trades"] == row["trades"]  # a string, as WEEX sent it
    assert "last_price" not in data  # not the typed record's names


def test_record_data_is_to_jsonable_of_data_for_a_book_too() -> None:
    """A local book (`book --json`): the `.data` mapping, its levels as [price, size] texts."""
    book = OrderBookSnapshot(
        symbol="cmt_btcusdt",
        bids=((Decimal("1.5"), Decimal("2")),),
        asks=((Decimal("1.75"), Decimal("0.001")),),
        version=7,
        timestamp=T0,
    )
    message: WebSocketMessage[Any] = WebSocketMessage(
        "depth.cmt_btcusdt.15", {}, T0, "", False, book
    )
    assert record_data(message) == {
        "symbol": "cmt_btcusdt",
        "bids": [["1.5", "2"]],
        "asks": [["1.75", "0.001"]],
        "version": 7,
        "timestamp": T0,
        "resyncing": False,
    }


@pytest.mark.anyio
async def test_replay_json_lines_are_the_bodies_a_relay_publishes(tmp_path: Path) -> None:
    """The export of a recording (`replay --json`) through the real command, against the
    relay's own bodies for the same frames."""
    frames = doc_recording()
    path = tmp_path / "doc.jsonl"
    write_recording(path, frames)
    replayed = await run_cli("replay", str(path), "--speed", "max", "--json")
    assert replayed.returncode == 0, replayed.stderr
    relay = Relay()
    messages = split_all([(frame.received_at, json.loads(frame.raw)) for frame in frames])
    expected = [json.loads(relay_body(relay, message)) for message in messages]
    assert json_lines(replayed.stdout) == expected
