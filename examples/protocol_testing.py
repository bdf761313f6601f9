"""Testing code that consumes WEEX data: hypothesis strategies, and WeexConnection by hand."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Ping, Request, TextMessage

from weex_proto import strategies as ws
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, WeexConnection
from weex_proto.events import CloseInitiator, Connected, ConnectionClosed, PingAnswered
from weex_proto.messages import DepthUpdate, Trade, parse_push
from weex_proto.orderbook import Applied, NeedsResync, OrderBook


def vwap(trades: list[Trade]) -> Decimal | None:
    """Your strategy code: the volume-weighted average price, None without volume."""
    volume = sum(trade.size for trade in trades)
    return sum(trade.price * trade.size for trade in trades) / volume if volume else None


@given(ws.trade_frames())
def test_vwap_lies_between_the_extreme_prices(frame: dict[str, Any]) -> None:
    trades = [trade for trade in parse_push(frame) if isinstance(trade, Trade)]
    average = vwap(trades)
    if average is not None:
        assert min(t.price for t in trades) <= average <= max(t.price for t in trades)


@given(ws.depth_sequences(gaps=True))
def test_a_lost_depth_update_makes_the_book_resync(frames: list[dict[str, Any]]) -> None:
    book = OrderBook("cmt_btcusdt", 15)
    updates = [u for frame in frames for u in parse_push(frame) if isinstance(u, DepthUpdate)]
    results = [book.apply(update) for update in updates]
    assert results[0] == Applied()
    assert any(isinstance(result, NeedsResync) for result in results)


def test_driving_a_connection_by_hand() -> None:
    """Bytes in, events out, timers: no socket, no clock, no event loop."""
    options = ConnectionOptions(ping_interval=20.0, ping_timeout=10.0)
    conn = WeexConnection(WeexConfig(), options=options)
    server = WSConnection(ConnectionType.SERVER)  # wsproto plays the exchange
    conn.subscribe("ticker.cmt_btcusdt", now=0.0)
    conn.initiate(now=0.0)

    server.receive_data(conn.data_to_send())  # our HTTP upgrade request
    assert any(isinstance(event, Request) for event in server.events())
    conn.receive_data(server.send(AcceptConnection()), now=0.5)
    assert isinstance(conn.next_event(), Connected)
    server.receive_data(conn.data_to_send())  # the subscription goes out on open
    [subscribe] = [e.data for e in server.events() if isinstance(e, TextMessage)]
    assert json.loads(subscribe) == {"event": "subscribe", "channel": "ticker.cmt_btcusdt"}

    ping = server.send(Message(data='{"type":"ping","time":"1700000000000"}'))
    conn.receive_data(ping, now=1.0)
    assert isinstance(conn.next_event(), PingAnswered)
    server.receive_data(conn.data_to_send())
    [pong] = [e.data for e in server.events() if isinstance(e, TextMessage)]
    assert json.loads(pong) == {"type": "pong", "time": "1700000000000"}  # same key, same time

    assert conn.next_deadline() == 21.0  # 20 s after the last traffic...
    conn.handle_timer(21.0)  # ...we send a WebSocket ping,
    server.receive_data(conn.data_to_send())
    assert any(isinstance(event, Ping) for event in server.events())
    conn.handle_timer(31.0)  # ...and without an answer the connection is dead.
    closed = conn.next_event()
    assert isinstance(closed, ConnectionClosed) and closed.initiator is CloseInitiator.TIMEOUT
