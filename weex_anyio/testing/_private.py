"""A simulated trading account behind the private channels (protocol doc §4.2).

Each trade is a market order that fills at once, and produces five pushes in this order:
`orders` (PENDING), `fill`, `orders` (FILLED), `positions`, `account`. All of them share one
per-account `msg.version` sequence, so a client that subscribes to only some channels sees gaps,
as it would on the exchange. Positions are one net position per contract: buying while short
first closes the short (realising PnL) and then opens a long with what is left.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any, Literal

import attrs

from ._market import decimal_text, fixed

Json = dict[str, Any]
Side = Literal["BUY", "SELL"]

TAKER_FEE_RATE = Decimal("0.0006")
MAKER_FEE_RATE = Decimal("0.0002")
_MONEY = 6
_MONEY_STEP = Decimal(1).scaleb(-_MONEY)


@attrs.frozen
class SimulatedTrade:
    """What `SimulatedWeexServer.simulate_trade()` did, for tests to check pushes against."""

    order_id: str
    fill_id: str
    symbol: str
    side: str
    size: str
    price: str
    fill_value: str
    fill_fee: str
    realized_pnl: str
    versions: tuple[int, ...]


@attrs.define
class _Position:
    id: str
    created_ms: int
    side: str = "LONG"
    size: Decimal = Decimal(0)
    open_value: Decimal = Decimal(0)
    open_fee: Decimal = Decimal(0)
    cum_open_size: Decimal = Decimal(0)
    cum_open_value: Decimal = Decimal(0)
    cum_open_fee: Decimal = Decimal(0)
    cum_close_size: Decimal = Decimal(0)
    cum_close_value: Decimal = Decimal(0)
    cum_close_fee: Decimal = Decimal(0)
    created_sequence: int = 0
    updated_sequence: int = 0
    updated_ms: int = 0


@attrs.define
class _Collateral:
    created_ms: int
    amount: Decimal
    cum_deposit: Decimal
    cum_open_long: Decimal = Decimal(0)
    cum_open_short: Decimal = Decimal(0)
    cum_close_long: Decimal = Decimal(0)
    cum_close_short: Decimal = Decimal(0)
    cum_fill_fee: Decimal = Decimal(0)
    updated_ms: int = 0


class SimulatedAccount:
    """Balances and positions of the single simulated API user."""

    def __init__(self, rng: random.Random, now_ms: int) -> None:
        self._rng = rng
        self.version = rng.randint(40_000, 50_000)
        self._next_id = rng.randint(610_000_000_000_000_000, 619_000_000_000_000_000)
        self._match_sequence = rng.randint(3_600_000_000, 3_700_000_000)
        deposit = Decimal(rng.randint(10_000, 100_000))
        self._collateral = _Collateral(now_ms - 86_400_000, deposit, deposit, updated_ms=now_ms)
        self._positions: dict[str, _Position] = {}

    def _new_id(self) -> str:
        self._next_id += rng_step(self._rng)
        return str(self._next_id)

    def _envelope(self, channel: str, key: str, record: Json, now_ms: int) -> tuple[str, Json]:
        self.version += 1
        msg = {
            "msgEvent": "OrderUpdate",
            "version": self.version,
            "data": {key: [record]},
            "time": now_ms,
        }
        return channel, {"type": "trade-event", "channel": channel, "event": "payload", "msg": msg}

    def trade(
        self,
        symbol: str,
        side: Side,
        size: Decimal,
        price: Decimal,
        size_decimals: int,
        now_ms: int,
    ) -> tuple[SimulatedTrade, list[tuple[str, Json]]]:
        """Fill a market order of `size` at `price`; return the report and the pushes."""
        position = self._positions.get(symbol)
        if position is None:
            position = _Position(self._new_id(), now_ms)
            self._positions[symbol] = position
        opening_side = "LONG" if side == "BUY" else "SHORT"
        closing = position.size > 0 and position.side != opening_side
        position_side = position.side if closing else opening_side
        value = size * price
        # Money is booked at 6 decimals, so the pushed amounts add up exactly.
        fee = (value * TAKER_FEE_RATE).quantize(_MONEY_STEP)
        order_id, fill_id = self._new_id(), self._new_id()
        self._match_sequence += self._rng.randint(1, 50)
        pnl = self._apply_fill(position, opening_side, size, price, fee).quantize(_MONEY_STEP)
        position.updated_ms = now_ms
        position.updated_sequence = self._match_sequence
        if not position.created_sequence:
            position.created_sequence = self._match_sequence
        collateral = self._collateral
        collateral.amount += pnl - fee
        collateral.cum_fill_fee += fee
        collateral.updated_ms = now_ms

        size_text = fixed(int(size.scaleb(size_decimals)), size_decimals)
        order = _order_record(order_id, symbol, position_side, side, size_text, now_ms)
        pushes = [self._envelope("orders", "order", order, now_ms)]
        fill = {
            "id": fill_id,
            "coinId": "USDT",
            "contractId": symbol,
            "orderId": order_id,
            "marginMode": "SHARED",
            "separatedMode": "COMBINED",
            "separatedOpenOrderId": "0",
            "positionSide": position_side,
            "orderSide": side,
            "fillSize": size_text,
            "fillValue": decimal_text(value, _MONEY),
            "fillFee": decimal_text(fee, _MONEY),
            "liquidateFee": "0",
            "realizePnl": decimal_text(pnl, _MONEY),
            "direction": "TAKER",
            "createdTime": str(now_ms),
            "updatedTime": str(now_ms),
        }
        pushes.append(self._envelope("fill", "orderFillTransaction", fill, now_ms))
        filled = {
            **order,
            "status": "FILLED",
            "latestFillPrice": f"{price:f}",
            "maxFillPrice": f"{price:f}",
            "minFillPrice": f"{price:f}",
            "cumFillSize": size_text,
            "cumFillValue": decimal_text(value, _MONEY),
            "cumFillFee": decimal_text(fee, _MONEY),
            "cumRealizePnl": decimal_text(pnl, _MONEY),
            "updatedTime": str(now_ms),
        }
        pushes.append(self._envelope("orders", "order", filled, now_ms))
        record = self._position_record(symbol, position, size_decimals)
        pushes.append(self._envelope("positions", "position", record, now_ms))
        pushes.append(self._envelope("account", "collateral", self._collateral_record(), now_ms))
        report = SimulatedTrade(
            order_id=order_id,
            fill_id=fill_id,
            symbol=symbol,
            side=side,
            size=size_text,
            price=f"{price:f}",
            fill_value=decimal_text(value, _MONEY),
            fill_fee=decimal_text(fee, _MONEY),
            realized_pnl=decimal_text(pnl, _MONEY),
            versions=tuple(push[1]["msg"]["version"] for push in pushes),
        )
        return report, pushes

    def _apply_fill(
        self, position: _Position, opening_side: str, size: Decimal, price: Decimal, fee: Decimal
    ) -> Decimal:
        """Close against the opposite position first, open with the rest; return realised PnL."""
        collateral = self._collateral
        pnl = Decimal(0)
        remaining = size
        if position.size > 0 and position.side != opening_side:
            closed = min(remaining, position.size)
            entry = position.open_value / position.size
            direction = 1 if position.side == "LONG" else -1
            pnl = (price - entry) * closed * direction
            share = closed / size
            position.open_value -= entry * closed
            position.open_fee -= position.open_fee * closed / position.size
            position.size -= closed
            position.cum_close_size += closed
            position.cum_close_value += closed * price
            position.cum_close_fee += fee * share
            if position.side == "LONG":
                collateral.cum_close_long += closed * price
            else:
                collateral.cum_close_short += closed * price
            remaining -= closed
        if remaining > 0:
            if position.size == 0:
                position.side = opening_side
                position.open_value = Decimal(0)
                position.open_fee = Decimal(0)
            share = remaining / size
            position.size += remaining
            position.open_value += remaining * price
            position.open_fee += fee * share
            position.cum_open_size += remaining
            position.cum_open_value += remaining * price
            position.cum_open_fee += fee * share
            if opening_side == "LONG":
                collateral.cum_open_long += remaining * price
            else:
                collateral.cum_open_short += remaining * price
        return pnl

    def _position_record(self, symbol: str, p: _Position, size_decimals: int) -> Json:
        def size_text(value: Decimal) -> str:
            return decimal_text(value, size_decimals)

        return {
            "id": p.id,
            "coinId": "USDT",
            "contractId": symbol,
            "side": p.side,
            "marginMode": "SHARED",
            "separatedMode": "COMBINED",
            "separatedOpenOrderId": "0",
            "leverage": "20",
            "size": size_text(p.size),
            "openValue": decimal_text(p.open_value, _MONEY),
            "openFee": decimal_text(p.open_fee, _MONEY),
            "fundingFee": "0",
            "isolatedMargin": "0",
            "cumOpenSize": size_text(p.cum_open_size),
            "cumOpenValue": decimal_text(p.cum_open_value, _MONEY),
            "cumOpenFee": decimal_text(p.cum_open_fee, _MONEY),
            "cumCloseSize": size_text(p.cum_close_size),
            "cumCloseValue": decimal_text(p.cum_close_value, _MONEY),
            "cumCloseFee": decimal_text(p.cum_close_fee, _MONEY),
            "cumFundingFee": "0",
            "cumLiquidateFee": "0",
            "createdMatchSequenceId": str(p.created_sequence),
            "updatedMatchSequenceId": str(p.updated_sequence),
            "createdTime": str(p.created_ms),
            "updatedTime": str(p.updated_ms),
            "autoAppendIsolatedMargin": False,
        }

    def _collateral_record(self) -> Json:
        c = self._collateral
        money = {
            "amount": c.amount,
            "pendingDepositAmount": Decimal(0),
            "pendingWithdrawAmount": Decimal(0),
            "pendingTransferInAmount": None,
            "pendingTransferOutAmount": None,
            "legacyAmount": c.amount,
            "cumDepositAmount": c.cum_deposit,
            "cumWithdrawAmount": Decimal(0),
            "cumTransferInAmount": None,
            "cumTransferOutAmount": None,
            "cumMarginMoveInAmount": None,
            "cumMarginMoveOutAmount": None,
            "cumPositionOpenLongAmount": c.cum_open_long,
            "cumPositionOpenShortAmount": c.cum_open_short,
            "cumPositionCloseLongAmount": c.cum_close_long,
            "cumPositionCloseShortAmount": c.cum_close_short,
            "cumPositionFillFeeAmount": c.cum_fill_fee,
            "cumPositionLiquidateFeeAmount": None,
            "cumPositionFundingAmount": None,
            "cumOrderFillFeeIncomeAmount": None,
            "cumOrderLiquidateFeeIncomeAmount": None,
        }
        record: Json = {
            "coinId": "USDT",
            "marginMode": "SHARED",
            "crossContractId": "0",
            "isolatedPositionId": "0",
        }
        # The doc example writes untouched totals as a bare "0" and the rest with 6 decimals.
        record.update({k: "0" if v is None else decimal_text(v, _MONEY) for k, v in money.items()})
        record.update(
            createdTime=str(c.created_ms), updatedTime=str(c.updated_ms), liquidating=False
        )
        return record


def rng_step(rng: random.Random) -> int:
    """Ids grow by irregular steps, like snowflake ids from a busy matching engine."""
    return rng.randint(1_000, 30_000_000)


def _order_record(
    order_id: str, symbol: str, position_side: str, side: str, size: str, now_ms: int
) -> Json:
    return {
        "id": order_id,
        "coinId": "USDT",
        "contractId": symbol,
        "marginMode": "SHARED",
        "separatedMode": "COMBINED",
        "separatedOpenOrderId": "0",
        "positionSide": position_side,
        "orderSide": side,
        "price": "0.0",
        "size": size,
        "clientOrderId": f"{now_ms}sim{order_id[-8:]}",
        "type": "MARKET",
        "timeInForce": "IMMEDIATE_OR_CANCEL",
        "reduceOnly": False,
        "triggerPrice": "0",
        "triggerPriceType": "UNKNOWN_PRICE_TYPE",
        "orderSource": "WEB",
        "openTpslParentOrderId": "0",
        "leverage": "20",
        "takerFeeRate": f"{TAKER_FEE_RATE}",
        "makerFeeRate": f"{MAKER_FEE_RATE}",
        "feeDiscount": "1",
        "liquidateFeeRate": "0.01",
        "status": "PENDING",
        "triggerTime": "0",
        "triggerPriceTime": "0",
        "triggerPriceValue": "0",
        "cancelReason": "UNKNOWN_ORDER_CANCEL_REASON",
        "latestFillPrice": "0",
        "maxFillPrice": "0",
        "minFillPrice": "0",
        "cumFillSize": "0",
        "cumFillValue": "0",
        "cumFillFee": "0",
        "cumLiquidateFee": "0",
        "cumRealizePnl": "0",
        "createdTime": str(now_ms),
        "updatedTime": str(now_ms),
        "positionTpsl": False,
        "setOpenTp": False,
        "setOpenSl": False,
    }
