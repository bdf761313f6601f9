"""Hypothesis strategies that generate WEEX traffic: valid frames, server scripts, hostile input.

    pip install 'weex-ws[hypothesis]'

    from hypothesis import given
    from weex_proto import strategies as ws

    @given(ws.trade_frames())
    def test_my_vwap(frame): ...

Everything here is built on the wire format (protocol reference §3-4), not on our own classes:
strategies yield the decoded JSON of a frame (a `dict`, exactly what `json.loads` of the text
gives), and `frame_texts()` the text itself. Strings stay strings and numbers numbers where the
reference's examples say so: prices, sizes, ids and public times are decimal/integer strings;
depth `level` and private `msg.version`/`msg.time` are JSON numbers; `buyerMaker`,
`reduceOnly`, `liquidating` and friends are booleans; a ping's `time` is a string.

Three families:

* valid frames per channel (`ticker_frames`, `trade_frames`, `kline_frames`, `depth_sequences`,
  `private_update_sequences`, `pings`, `acks`, `valid_frames`), shrinking towards small values;
* whole server scripts (`server_scripts`): valid frames interleaved with faults, as `Step`
  values (`SendFrame`, `SendGarbage`, `SendRaw`, `Drop`, `Stall`) that a test plays against a
  connection or the simulator;
* hostile variants (`hostile_frames`): valid frames with one field replaced by any JSON value,
  pings and errors with odd fields, text that is not JSON, nesting past the recursion limit.
  A client must log and skip these, never raise.

The frames are v2's. For WEEX's v3 (docs/protocol-v3.md), `v3_frame` writes a valid v2 push
as the v3 push that carries the same values, and `v3_frames`, `v3_depth_sequences` and
`v3_pings` generate v3 traffic from the same strategies.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import attrs

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "weex_proto.strategies needs hypothesis: pip install 'weex-ws[hypothesis]'"
    ) from exc

__all__ = [
    "INTERVALS",
    "PRICE_TYPES",
    "Drop",
    "Frame",
    "SendFrame",
    "SendGarbage",
    "SendRaw",
    "Stall",
    "Step",
    "account_frames",
    "acks",
    "candle_rows",
    "collateral_records",
    "decimal_texts",
    "depth_sequences",
    "depth_snapshots",
    "fill_frames",
    "fill_records",
    "frame_texts",
    "hostile_frames",
    "json_values",
    "kline_frames",
    "order_frames",
    "order_records",
    "pings",
    "position_frames",
    "position_records",
    "private_frames",
    "private_update_sequences",
    "server_scripts",
    "symbols",
    "ticker_frames",
    "ticker_rows",
    "trade_frames",
    "trade_rows",
    "v3_depth_sequences",
    "v3_frame",
    "v3_frames",
    "v3_pings",
    "valid_frames",
]

Frame: TypeAlias = dict[str, Any]
"""One decoded frame: what `json.loads` returns for its text."""

PRICE_TYPES = ("LAST_PRICE", "MARK_PRICE")
INTERVALS = (
    *("MINUTE_1", "MINUTE_5", "MINUTE_15", "MINUTE_30"),
    *("HOUR_1", "HOUR_2", "HOUR_4", "HOUR_6", "HOUR_8", "HOUR_12"),
    *("DAY_1", "WEEK_1", "MONTH_1"),
)
PRIVATE_CHANNELS = ("account", "positions", "orders", "fill")
_PRIVATE_KEYS = {
    "account": "collateral",
    "positions": "position",
    "orders": "order",
    "fill": "orderFillTransaction",
}
_MS_2020, _MS_2035 = 1_577_836_800_000, 2_051_222_400_000


def _encode(frame: Any) -> str:
    return json.dumps(frame, separators=(",", ":"))


# --------------------------------------------------------------------------- values


def symbols() -> st.SearchStrategy[str]:
    """Contract ids in the v2 form: `cmt_` + a lowercase base + `usdt` (`cmt_btcusdt`)."""
    base = st.text(string.ascii_lowercase, min_size=2, max_size=5)
    return st.one_of(st.just("cmt_btcusdt"), base.map(lambda b: f"cmt_{b}usdt"))


def _decimal_text(units: int, places: int) -> str:
    sign = "-" if units < 0 else ""
    units = abs(units)
    if places == 0:
        return f"{sign}{units}"
    whole, fraction = divmod(units, 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}"


def decimal_texts(
    *, min_units: int = 0, max_units: int = 10**12, max_places: int = 8
) -> st.SearchStrategy[str]:
    """Decimal strings as WEEX writes them (`"103436.1"`, `"0.91500"`, `"-2055.6"`, `"0"`):
    `units / 10**places` with trailing zeros kept, so the text is the exact value."""
    return st.builds(
        _decimal_text,
        st.integers(min_units, max_units),
        st.integers(0, max_places),
    )


def _prices() -> st.SearchStrategy[str]:
    return decimal_texts(min_units=1, max_units=10**10, max_places=4)


def _sizes() -> st.SearchStrategy[str]:
    return decimal_texts(min_units=0, max_units=10**9, max_places=5)


def _signed() -> st.SearchStrategy[str]:
    return decimal_texts(min_units=-(10**9), max_units=10**9, max_places=6)


def _ms_texts() -> st.SearchStrategy[str]:
    return st.integers(_MS_2020, _MS_2035).map(str)


def _ids() -> st.SearchStrategy[str]:
    return st.integers(1, 2**63 - 1).map(str)


def _count_texts() -> st.SearchStrategy[str]:
    return st.integers(0, 10**9).map(str)


# --------------------------------------------------------------------------- public channels


def ticker_rows(symbol: str | st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Frame]:
    """One row of a ticker push (§4.1.1): every field a string."""
    return st.fixed_dictionaries(
        {
            "symbol": _symbol(symbol),
            "priceChange": _signed(),
            "priceChangePercent": _signed(),
            "trades": _count_texts(),
            "size": _sizes(),
            "value": _sizes(),
            "high": _prices(),
            "low": _prices(),
            "lastPrice": _prices(),
            "markPrice": _prices(),
        }
    )


def ticker_frames(symbol: str | st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Frame]:
    """`{"event":"payload","channel":"ticker.<symbol>","data":[row]}`; the row's symbol matches."""
    return _symbol(symbol).flatmap(
        lambda sym: ticker_rows(sym).map(
            lambda row: {"event": "payload", "channel": f"ticker.{sym}", "data": [row]}
        )
    )


def trade_rows() -> st.SearchStrategy[Frame]:
    """One public trade (§4.1.4): strings, and `buyerMaker` a boolean. No id, no symbol."""
    return st.fixed_dictionaries(
        {
            "time": _ms_texts(),
            "price": _prices(),
            "size": _sizes(),
            "value": _sizes(),
            "buyerMaker": st.booleans(),
        }
    )


def trade_frames(
    symbol: str | st.SearchStrategy[str] | None = None, *, max_trades: int = 5
) -> st.SearchStrategy[Frame]:
    """A `trades.<symbol>` push with 1..max_trades trades."""
    return st.builds(
        lambda sym, rows: {"event": "payload", "channel": f"trades.{sym}", "data": rows},
        _symbol(symbol),
        st.lists(trade_rows(), min_size=1, max_size=max_trades),
    )


@st.composite
def candle_rows(draw: st.DrawFn, symbol: str = "cmt_btcusdt") -> Frame:
    """One candle object (§4.1.2), with low <= open, close <= high."""
    places = draw(st.integers(0, 4))
    points = sorted(draw(st.lists(st.integers(1, 10**9), min_size=4, max_size=4)))
    low, high = points[0], points[3]
    open_, close = draw(st.permutations(points[1:3]))
    return {
        "symbol": symbol,
        "klineTime": draw(_ms_texts()),
        "size": draw(_sizes()),
        "value": draw(_sizes()),
        "high": _decimal_text(high, places),
        "low": _decimal_text(low, places),
        "open": _decimal_text(open_, places),
        "close": _decimal_text(close, places),
    }


@st.composite
def kline_frames(
    draw: st.DrawFn,
    symbol: str | st.SearchStrategy[str] | None = None,
    *,
    kind: Literal["change", "snapshot"] | None = None,
) -> Frame:
    """A `kline.<priceType>.<symbol>.<interval>` push, `type` "change" (one candle) or
    "snapshot" (several)."""
    sym = draw(_symbol(symbol))
    kind = kind or draw(st.sampled_from(["change", "snapshot"]))
    price_type = draw(st.sampled_from(PRICE_TYPES))
    interval = draw(st.sampled_from(INTERVALS))
    count = 1 if kind == "change" else draw(st.integers(1, 5))
    rows = [draw(candle_rows(sym)) for _ in range(count)]
    channel = f"kline.{price_type}.{sym}.{interval}"
    return {"event": "payload", "type": kind, "channel": channel, "data": rows}


# --------------------------------------------------------------------------- depth


def _depth_frame(
    symbol: str,
    level: int,
    kind: str,
    start: int,
    end: int,
    asks: list[Frame],
    bids: list[Frame],
) -> Frame:
    row = {
        "startVersion": str(start),
        "endVersion": str(end),
        "level": level,
        "depthType": kind,
        "symbol": symbol,
        "asks": asks,
        "bids": bids,
    }
    return {"event": "payload", "channel": f"depth.{symbol}.{level}", "data": [row]}


def _side(
    draw: st.DrawFn, mid: int, places: int, sign: int, count: int, *, removals: bool
) -> list[Frame]:
    """`count` distinct levels on one side of `mid` (asks above, bids below), best first."""
    offsets = draw(st.lists(st.integers(1, 10**4), min_size=count, max_size=count, unique=True))
    offsets.sort()
    sizes = decimal_texts(min_units=0 if removals else 1, max_units=10**8, max_places=5)
    levels = []
    for offset in offsets:
        levels.append({"price": _decimal_text(mid + sign * offset, places), "size": draw(sizes)})
    return levels


@st.composite
def depth_snapshots(
    draw: st.DrawFn,
    symbol: str = "cmt_btcusdt",
    *,
    level: Literal[15, 200] = 15,
    version: int | None = None,
) -> Frame:
    """A `depthType: SNAPSHOT` push: up to `level` bids below and asks above one mid price."""
    mid = draw(st.integers(10**5, 10**9))
    return _depth_push(draw, symbol, level, mid, 0, "SNAPSHOT", version)


def _depth_push(
    draw: st.DrawFn,
    symbol: str,
    level: int,
    mid: int,
    places: int,
    kind: str,
    version: int | None,
    start: int | None = None,
) -> Frame:
    removals = kind == "CHANGED"
    most = min(level, 8) if removals else level
    asks = _side(draw, mid, places, +1, draw(st.integers(0, most)), removals=removals)
    bids = _side(draw, mid, places, -1, draw(st.integers(0, most)), removals=removals)
    end = version if version is not None else draw(st.integers(1, 10**10))
    first = end if start is None else start
    return _depth_frame(symbol, level, kind, first, end, asks, bids)


@st.composite
def depth_sequences(
    draw: st.DrawFn,
    symbol: str = "cmt_btcusdt",
    *,
    level: Literal[15, 200] = 15,
    min_changes: int = 0,
    max_changes: int = 12,
    gaps: bool = False,
) -> list[Frame]:
    """One depth channel's pushes: a SNAPSHOT, then CHANGED frames.

    Each CHANGED frame covers `startVersion..endVersion` and, without `gaps`, starts exactly one
    past the previous `endVersion`, so a book stays live throughout. With `gaps=True` at least
    one frame starts further on (versions were lost): a book must ask for a new snapshot there.
    Bids always sit below one mid price and asks above it, so the book never crosses; CHANGED
    levels may have size "0" (remove the level).
    """
    mid = draw(st.integers(10**5, 10**9))
    places = draw(st.integers(0, 2))
    version = draw(st.integers(1, 10**10))
    frames = [_depth_push(draw, symbol, level, mid, places, "SNAPSHOT", version)]
    count = draw(st.integers(max(min_changes, 1 if gaps else 0), max(max_changes, 1)))
    gap_at: set[int] = set()
    if gaps:
        gap_at = set(draw(st.lists(st.integers(0, count - 1), min_size=1, unique=True)))
    for index in range(count):
        start = version + 1 + (draw(st.integers(1, 1000)) if index in gap_at else 0)
        version = start + draw(st.integers(0, 30))
        frames.append(_depth_push(draw, symbol, level, mid, places, "CHANGED", version, start))
    return frames


# --------------------------------------------------------------------------- private channels


def _common_trade_fields() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "coinId": st.just("USDT"),
        "contractId": symbols(),
        "marginMode": st.sampled_from(["SHARED", "ISOLATED"]),
        "separatedMode": st.sampled_from(["COMBINED", "SEPARATED"]),
        "separatedOpenOrderId": st.just("0"),
    }


def collateral_records() -> st.SearchStrategy[Frame]:
    """One `msg.data.collateral[]` record of the `account` channel (§4.2.1)."""
    amounts = {
        key: _sizes()
        for key in (
            "amount",
            "pendingDepositAmount",
            "pendingWithdrawAmount",
            "pendingTransferInAmount",
            "pendingTransferOutAmount",
            "legacyAmount",
            "cumDepositAmount",
            "cumWithdrawAmount",
            "cumTransferInAmount",
            "cumTransferOutAmount",
        )
    }
    return st.fixed_dictionaries(
        {
            "coinId": st.just("USDT"),
            "marginMode": st.sampled_from(["SHARED", "ISOLATED"]),
            "crossContractId": st.just("0"),
            "isolatedPositionId": st.one_of(st.just("0"), _ids()),
            **amounts,
            "cumPositionFundingAmount": _signed(),
            "createdTime": _ms_texts(),
            "updatedTime": _ms_texts(),
            "liquidating": st.booleans(),
        }
    )


def position_records() -> st.SearchStrategy[Frame]:
    """One `msg.data.position[]` record of the `positions` channel (§4.2.2)."""
    common = _common_trade_fields()
    return st.fixed_dictionaries(
        {
            "id": _ids(),
            "coinId": common["coinId"],
            "contractId": common["contractId"],
            "side": st.sampled_from(["LONG", "SHORT"]),
            "marginMode": common["marginMode"],
            "separatedMode": common["separatedMode"],
            "separatedOpenOrderId": common["separatedOpenOrderId"],
            "leverage": st.integers(1, 125).map(str),
            "size": _sizes(),
            "openValue": _sizes(),
            "openFee": _sizes(),
            "fundingFee": _signed(),
            "isolatedMargin": _sizes(),
            "cumOpenSize": _sizes(),
            "cumCloseSize": _sizes(),
            "createdMatchSequenceId": _ids(),
            "updatedMatchSequenceId": _ids(),
            "createdTime": _ms_texts(),
            "updatedTime": _ms_texts(),
            "autoAppendIsolatedMargin": st.booleans(),
        }
    )


def order_records() -> st.SearchStrategy[Frame]:
    """One `msg.data.order[]` record of the `orders` channel (§4.2.3)."""
    common = _common_trade_fields()
    return st.fixed_dictionaries(
        {
            "id": _ids(),
            **common,
            "positionSide": st.sampled_from(["LONG", "SHORT", "UNKNOWN"]),
            "orderSide": st.sampled_from(["BUY", "SELL"]),
            "price": _prices(),
            "size": _sizes(),
            "clientOrderId": st.text(string.ascii_letters + string.digits, min_size=1, max_size=40),
            "type": st.sampled_from(["MARKET", "LIMIT", "STOP_LIMIT", "STOP_MARKET"]),
            "timeInForce": st.sampled_from(["GOOD_TILL_CANCEL", "IMMEDIATE_OR_CANCEL"]),
            "reduceOnly": st.booleans(),
            "triggerPrice": _sizes(),
            "triggerPriceType": st.sampled_from(["UNKNOWN_PRICE_TYPE", "LAST_PRICE"]),
            "orderSource": st.just("WEB"),
            "leverage": st.integers(1, 125).map(str),
            "status": st.sampled_from(["PENDING", "OPEN", "FILLED", "CANCELED"]),
            "cancelReason": st.just("UNKNOWN_ORDER_CANCEL_REASON"),
            "latestFillPrice": _sizes(),
            "cumFillSize": _sizes(),
            "cumFillValue": _sizes(),
            "cumFillFee": _sizes(),
            "cumRealizePnl": _signed(),
            "createdTime": _ms_texts(),
            "updatedTime": _ms_texts(),
            "positionTpsl": st.booleans(),
            "setOpenTp": st.booleans(),
            "setOpenSl": st.booleans(),
        }
    )


def fill_records() -> st.SearchStrategy[Frame]:
    """One `msg.data.orderFillTransaction[]` record of the `fill` channel (§4.2.4)."""
    return st.fixed_dictionaries(
        {
            "id": _ids(),
            **_common_trade_fields(),
            "orderId": _ids(),
            "positionSide": st.sampled_from(["LONG", "SHORT", "UNKNOWN"]),
            "orderSide": st.sampled_from(["BUY", "SELL"]),
            "fillSize": _sizes(),
            "fillValue": _sizes(),
            "fillFee": _sizes(),
            "liquidateFee": _sizes(),
            "realizePnl": _signed(),
            "direction": st.sampled_from(["MAKER", "TAKER"]),
            "createdTime": _ms_texts(),
            "updatedTime": _ms_texts(),
        }
    )


_RECORDS = {
    "account": collateral_records,
    "positions": position_records,
    "orders": order_records,
    "fill": fill_records,
}


def _private_frame(
    channel: str, version: int, time: int, records: list[Frame], event: str
) -> Frame:
    return {
        "type": "trade-event",
        "channel": channel,
        "event": "payload",
        "msg": {
            "msgEvent": event,
            "version": version,  # a JSON number, as documented
            "data": {_PRIVATE_KEYS[channel]: records},
            "time": time,  # a JSON number too
        },
    }


@st.composite
def private_frames(
    draw: st.DrawFn,
    channel: str | None = None,
    *,
    version: int | None = None,
    max_records: int = 3,
) -> Frame:
    """A private push (§4.2): the `trade-event` envelope, `msg.version`/`msg.time` numbers."""
    name = channel or draw(st.sampled_from(PRIVATE_CHANNELS))
    if name not in _RECORDS:
        raise ValueError(f"not a private channel: {name!r}")
    records = draw(st.lists(_RECORDS[name](), min_size=1, max_size=max_records))
    number = version if version is not None else draw(st.integers(1, 2**53))
    time = draw(st.integers(_MS_2020, _MS_2035))
    event = draw(st.sampled_from(["OrderUpdate", "PositionFundingSettle"]))
    return _private_frame(name, number, time, records, event)


def account_frames() -> st.SearchStrategy[Frame]:
    return private_frames("account")


def position_frames() -> st.SearchStrategy[Frame]:
    return private_frames("positions")


def order_frames() -> st.SearchStrategy[Frame]:
    return private_frames("orders")


def fill_frames() -> st.SearchStrategy[Frame]:
    return private_frames("fill")


@st.composite
def private_update_sequences(
    draw: st.DrawFn,
    channels: Sequence[str] = PRIVATE_CHANNELS,
    *,
    min_size: int = 1,
    max_size: int = 10,
) -> list[Frame]:
    """Private pushes across `channels` with strictly increasing `msg.version` (one sequence
    per account, shared by all private channels, as the docs' examples suggest) and
    non-decreasing `msg.time`."""
    count = draw(st.integers(min_size, max_size))
    version = draw(st.integers(1, 10**9))
    time = draw(st.integers(_MS_2020, _MS_2035 - 10**6))
    frames = []
    for _ in range(count):
        version += draw(st.integers(1, 5))
        time += draw(st.integers(0, 1000))
        frame = draw(private_frames(draw(st.sampled_from(list(channels))), version=version))
        frame["msg"]["time"] = time
        frames.append(frame)
    return frames


# --------------------------------------------------------------------------- control frames


def pings() -> st.SearchStrategy[Frame]:
    """The server's heartbeat in both forms seen: `{"event":"ping",...}` and `{"type":"ping",...}`,
    `time` a millisecond string. The answer must use the same key and echo `time`."""
    return st.builds(
        lambda key, time: {key: "ping", "time": time},
        st.sampled_from(["event", "type"]),
        _ms_texts(),
    )


def _channels() -> st.SearchStrategy[str]:
    public = st.builds(
        lambda kind, sym: f"{kind}.{sym}", st.sampled_from(["ticker", "trades"]), symbols()
    )
    depth = st.builds(lambda sym, n: f"depth.{sym}.{n}", symbols(), st.sampled_from([15, 200]))
    return st.one_of(public, depth, st.sampled_from(PRIVATE_CHANNELS))


def acks(channel: str | st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Frame]:
    """`{"event":"subscribed"|"unsubscribed","channel":...}` (§3.2)."""
    channels = _channels() if channel is None else _symbol(channel)
    return st.builds(
        lambda event, name: {"event": event, "channel": name},
        st.sampled_from(["subscribed", "unsubscribed"]),
        channels,
    )


def valid_frames() -> st.SearchStrategy[Frame]:
    """Any single valid frame: a data push on any channel, a ping, or an ack."""
    return st.one_of(
        ticker_frames(),
        trade_frames(),
        kline_frames(),
        depth_snapshots(),
        private_frames(),
        pings(),
        acks(),
    )


def frame_texts(frames: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[str]:
    """The text of frames (compact JSON, as the exchange sends it); `valid_frames()` by default."""
    return (frames if frames is not None else valid_frames()).map(_encode)


# --------------------------------------------------------------------------- server scripts


@attrs.frozen
class SendFrame:
    """The server sends this frame as one text message."""

    frame: Frame = attrs.field(eq=False)
    text: str


@attrs.frozen
class SendGarbage:
    """The server sends a text message that is not a usable WEEX frame."""

    text: str


@attrs.frozen
class SendRaw:
    """The server writes these bytes to the socket as they are, below the WebSocket framing."""

    data: bytes


@attrs.frozen
class Drop:
    """The connection drops without a close frame (`reset`: an RST rather than a FIN)."""

    reset: bool = False


@attrs.frozen
class Stall:
    """The server goes silent for `seconds` (it sends and answers nothing meanwhile)."""

    seconds: float


Step: TypeAlias = SendFrame | SendGarbage | SendRaw | Drop | Stall


def _send(frame: Frame) -> SendFrame:
    return SendFrame(frame, _encode(frame))


def _garbage() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(["{", "[1,", '{"event":', "null", "[]", '"payload"', "{}"]),
    )


def _raw_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(min_size=1, max_size=16),
        st.sampled_from([b"\x81", b"\x88\x02\x03", b"\x8f\x00", b"\x82\x03abc"]),
    )


@st.composite
def server_scripts(
    draw: st.DrawFn,
    *,
    max_steps: int = 20,
    drops: bool = True,
    stalls: bool = True,
    garbage: bool = True,
    raw: bool = False,
    max_stall: float = 60.0,
) -> list[Step]:
    """What a server does over time: valid frames (pushes on every channel, pings, acks)
    interleaved with faults. `raw` adds bytes below the WebSocket framing, which usually end
    the connection with a protocol error; `Drop` ends it too (a client reconnects)."""
    frames: st.SearchStrategy[Step] = st.one_of(
        valid_frames().map(_send),
        depth_sequences(max_changes=4).map(lambda frames: _send(frames[0])),
    )
    options: list[st.SearchStrategy[Step]] = [frames, frames, frames]
    if garbage:
        options.append(_garbage().map(SendGarbage))
        options.append(hostile_frames().map(SendGarbage))
    if raw:
        options.append(_raw_bytes().map(SendRaw))
    if drops:
        options.append(st.builds(Drop, st.booleans()))
    if stalls:
        seconds = st.floats(0.0, max_stall, allow_nan=False, allow_infinity=False)
        options.append(st.builds(Stall, seconds))
    steps: list[Step] = draw(st.lists(st.one_of(options), min_size=1, max_size=max_steps))
    return steps


# --------------------------------------------------------------------------- hostile input


_EDGE_VALUES: tuple[Any, ...] = (
    *("²", "1" * 400, "1" * 5000, "\uff11", "NaN", "-1", "1e99999", "", " 1", "0x10"),
    *(10**30, -(10**30), -0.0, 1e308, True, False, None, [], {}),
)
_EDGE_CHANNELS = ("ticker.cmt_btcusdt", "depth.cmt_btcusdt.15", "orders", "account", "kline.x")


def json_values(*, max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Any JSON value (scalars, lists, objects), often one of the values that broke parsers:
    digits that are not ASCII, numbers past every limit, NaN as text, empty containers."""
    edges = st.sampled_from(_EDGE_VALUES + _EDGE_CHANNELS)
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=12),
        edges,
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )


def _wire_values() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(_EDGE_VALUES + _EDGE_CHANNELS), json_values())


@st.composite
def _mutated_push(draw: st.DrawFn) -> Frame:
    """A valid push with one part, at any depth, replaced by an arbitrary JSON value."""
    frame: Frame = draw(
        st.one_of(
            ticker_frames(), trade_frames(), kline_frames(), depth_snapshots(), private_frames()
        )
    )
    holder: Any = frame
    while True:
        keys = list(holder) if isinstance(holder, dict) else list(range(len(holder)))
        if not keys:
            return frame
        key = draw(st.sampled_from(keys))
        child = holder[key]
        if not isinstance(child, dict | list) or not child or draw(st.booleans()):
            holder[key] = draw(json_values())
            return frame
        holder = child


_NESTED = "[" * 1000 + "]" * 1000


def hostile_frames() -> st.SearchStrategy[str]:
    """Text messages a client must survive (log and skip, never raise, never drop the link):
    pushes with a field of the wrong type, pings and errors whose fields are any JSON value,
    acks without a usable channel, unknown events, JSON that is not an object, text that is
    not JSON, and nesting past the decoder's recursion limit."""
    wire = _wire_values()
    return st.one_of(
        st.builds(
            lambda key, time: _encode({key: "ping", "time": time}),
            st.sampled_from(["event", "type"]),
            wire,
        ),
        st.builds(
            lambda code, msg, channel: _encode(
                {"event": "error", "code": code, "msg": msg, "channel": channel}
            ),
            wire,
            wire,
            wire,
        ),
        st.builds(
            lambda event, channel: _encode({"event": event, "channel": channel}),
            st.sampled_from(["subscribed", "unsubscribed", "payload", "pong", "surprise"]),
            wire,
        ),
        st.builds(
            lambda channel, data: _encode(
                {"event": "payload", "channel": channel, "data": data, "msg": data}
            ),
            st.sampled_from(_EDGE_CHANNELS),
            wire,
        ),
        _mutated_push().map(_encode),
        json_values().map(_encode),
        st.text(max_size=30),
        st.sampled_from(
            [
                '{"event":"ping","time":' + _NESTED + "}",
                '{"event":"error","code":' + _NESTED + "}",
                "ping",
            ]
        ),
    )


def _symbol(symbol: str | st.SearchStrategy[str] | None) -> st.SearchStrategy[str]:
    if symbol is None:
        return symbols()
    if isinstance(symbol, str):
        return st.just(symbol)
    return symbol


# --------------------------------------------------------------------------- v3

_V3_INTERVALS = dict(
    zip(
        INTERVALS,
        (["1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w", "1M"]),
        strict=True,
    )
)
_V3_TICKER = {
    "priceChange": "p",
    "priceChangePercent": "P",
    "lastPrice": "c",
    "high": "h",
    "low": "l",
    "size": "v",
    "value": "q",
    "markPrice": "m",
}
_V3_PRIVATE = {"coinId": "coin", "contractId": "symbol", "crossContractId": "crossSymbol"}


def _v3_symbol(contract: str) -> str:
    return contract.removeprefix("cmt_").upper()


def _v3_levels(levels: list[Frame]) -> list[list[str]]:
    return [[level["price"], level["size"]] for level in levels]


def _v3_private_row(row: Frame) -> Frame:
    result = {}
    for key, value in row.items():
        if key in ("contractId", "crossContractId") and str(value).startswith("cmt_"):
            value = _v3_symbol(value)
        result[_V3_PRIVATE.get(key, key)] = value
    return result


def v3_frame(frame: Frame, event_time: int = _MS_2020) -> Frame:
    """A valid v2 data push of these strategies as the v3 push of the same values: `e`, `E`
    (`event_time`, or the private `msg.time`), `s`, and the records in `d` under v3's names
    (a book update is the frame itself, levels as `[price, size]` pairs). Counts and times
    become JSON numbers, as v3 sends them."""
    channel: str = frame["channel"]
    if channel in PRIVATE_CHANNELS:
        msg = frame["msg"]
        (rows,) = msg["data"].values()
        return {
            "e": channel,
            "E": msg["time"],
            "v": msg["version"],
            "msgEvent": msg["msgEvent"],
            "d": [_v3_private_row(row) for row in rows],
        }
    kind, _, rest = channel.partition(".")
    data = frame["data"]
    if kind == "ticker":
        rows = [
            {**{v3: row[v2] for v2, v3 in _V3_TICKER.items()}, "n": int(row["trades"])}
            for row in data
        ]
        return {"e": "ticker", "E": event_time, "s": _v3_symbol(rest), "d": rows}
    if kind == "trades":
        rows = [
            {
                "T": int(row["time"]),
                "t": f"{index}-{row['time']}",
                "p": row["price"],
                "q": row["size"],
                "v": row["value"],
                "m": row["buyerMaker"],
            }
            for index, row in enumerate(data)
        ]
        return {"e": "trade", "E": event_time, "s": _v3_symbol(rest), "d": rows}
    if kind == "depth":
        (row,) = data
        return {
            "e": "depthSnapshot" if row["depthType"] == "SNAPSHOT" else "depth",
            "E": event_time,
            "s": _v3_symbol(row["symbol"]),
            "U": int(row["startVersion"]),
            "u": int(row["endVersion"]),
            "l": row["level"],
            "d": row["depthType"],
            "b": _v3_levels(row["bids"]),
            "a": _v3_levels(row["asks"]),
        }
    if kind != "kline":
        raise ValueError(f"not a data push of these strategies: {channel!r}")
    price_type, contract, interval = rest.split(".")
    rows = [
        {
            "t": int(row["klineTime"]),
            "s": _v3_symbol(row["symbol"]),
            "i": _V3_INTERVALS[interval],
            "o": row["open"],
            "c": row["close"],
            "h": row["high"],
            "l": row["low"],
            "v": row["size"],
            "q": row["value"],
        }
        for row in data
    ]
    return {
        "e": "klineSnapshot" if frame["type"] == "snapshot" else "kline",
        "E": event_time,
        "s": _v3_symbol(contract),
        "p": price_type,
        "d": rows,
    }


def v3_frames() -> st.SearchStrategy[Frame]:
    """Any single valid v3 data push (ticker, trades, kline, a book snapshot, private)."""
    pushes = st.one_of(
        ticker_frames(), trade_frames(), kline_frames(), depth_snapshots(), private_frames()
    )
    return st.builds(v3_frame, pushes, st.integers(_MS_2020, _MS_2035))


def v3_depth_sequences(
    symbol: str = "cmt_btcusdt", *, level: Literal[15, 200] = 15, gaps: bool = False
) -> st.SearchStrategy[list[Frame]]:
    """`depth_sequences` as v3 pushes: a `depthSnapshot`, then `depth` updates whose `U` is the
    previous `u` + 1 (unless `gaps`)."""
    return depth_sequences(symbol, level=level, gaps=gaps).map(
        lambda frames: [v3_frame(frame) for frame in frames]
    )


def v3_pings() -> st.SearchStrategy[Frame]:
    """v3's heartbeat: `{"event":"ping",...}` (public) or `{"type":"ping",...}` (private); the
    answer is `{"id":N,"method":"PONG"}`, whatever the ping's `time`."""
    return pings()
