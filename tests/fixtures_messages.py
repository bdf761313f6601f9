"""The data-push examples from /work/shared/weex-protocol.md (sections 4.1 and 4.2), verbatim.

Tests deep-copy these before changing anything, so every test starts from the documented frame.
"""

from __future__ import annotations

from typing import Any

TICKER_PUSH: dict[str, Any] = {
    "event": "payload",
    "channel": "ticker.cmt_btcusdt",
    "data": [
        {
            "symbol": "cmt_btcusdt",
            "priceChange": "-2055.6",
            "priceChangePercent": "-0.019637",
            "trades": "28941",
            "size": "176145.66489",
            "value": "18115688543.1",
            "high": "104692.2",
            "low": "100709.6",
            "lastPrice": "102623.9",
            "markPrice": "102623.9",
        }
    ],
}

KLINE_PUSH: dict[str, Any] = {
    "event": "payload",
    "type": "change",
    "channel": "kline.LAST_PRICE.cmt_btcusdt.MINUTE_1",
    "data": [
        {
            "symbol": "cmt_btcusdt",
            "klineTime": "1747125660000",
            "size": "23.76600",
            "value": "2442678.713400",
            "high": "102784.6",
            "low": "102760.6",
            "open": "102760.6",
            "close": "102764.0",
        }
    ],
}

DEPTH_PUSH: dict[str, Any] = {
    "event": "payload",
    "channel": "depth.cmt_btcusdt.15",
    "data": [
        {
            "startVersion": "3644174246",
            "endVersion": "3644174270",
            "level": 15,
            "depthType": "CHANGED",
            "symbol": "cmt_btcusdt",
            "asks": [
                {"price": "103436.1", "size": "0.91500"},
                {"price": "103436.3", "size": "1.95800"},
                {"price": "103436.5", "size": "0"},
                {"price": "103436.6", "size": "1.08300"},
            ],
            "bids": [
                {"price": "103435.9", "size": "2.40500"},
                {"price": "103435.7", "size": "0"},
                {"price": "103435.6", "size": "0.32700"},
            ],
        }
    ],
}

TRADES_PUSH: dict[str, Any] = {
    "event": "payload",
    "channel": "trades.cmt_btcusdt",
    "data": [
        {
            "time": "1747131727502",
            "price": "103337.5",
            "size": "0.01600",
            "value": "1653.400000",
            "buyerMaker": False,
        }
    ],
}

ACCOUNT_PUSH: dict[str, Any] = {
    "type": "trade-event",
    "channel": "account",
    "event": "payload",
    "msg": {
        "msgEvent": "PositionFundingSettle",
        "version": 46571,
        "data": {
            "collateral": [
                {
                    "coinId": "USDT",
                    "marginMode": "SHARED",
                    "crossContractId": "0",
                    "isolatedPositionId": "0",
                    "amount": "6625267.708162",
                    "pendingDepositAmount": "0.000000",
                    "pendingWithdrawAmount": "0.000000",
                    "pendingTransferInAmount": "0",
                    "pendingTransferOutAmount": "0",
                    "legacyAmount": "6628108.535375",
                    "cumDepositAmount": "6850179.708361",
                    "cumWithdrawAmount": "118.284985",
                    "cumTransferInAmount": "151.912400",
                    "cumTransferOutAmount": "0",
                    "cumMarginMoveInAmount": "0",
                    "cumMarginMoveOutAmount": "114.587618",
                    "cumPositionOpenLongAmount": "3551408.796139",
                    "cumPositionOpenShortAmount": "287685.101200",
                    "cumPositionCloseLongAmount": "3406364.752975",
                    "cumPositionCloseShortAmount": "287789.808420",
                    "cumPositionFillFeeAmount": "32.199683",
                    "cumPositionLiquidateFeeAmount": "76.930498",
                    "cumPositionFundingAmount": "-5778.744009",
                    "cumOrderFillFeeIncomeAmount": "0",
                    "cumOrderLiquidateFeeIncomeAmount": "0",
                    "createdTime": "1728493664997",
                    "updatedTime": "1747188961302",
                    "liquidating": False,
                }
            ]
        },
        "time": 1747188961302,
    },
}

POSITIONS_PUSH: dict[str, Any] = {
    "type": "trade-event",
    "channel": "positions",
    "event": "payload",
    "msg": {
        "msgEvent": "PositionFundingSettle",
        "version": 46571,
        "data": {
            "position": [
                {
                    "id": "615193369903104410",
                    "coinId": "USDT",
                    "contractId": "cmt_btcusdt",
                    "side": "LONG",
                    "marginMode": "SHARED",
                    "separatedMode": "COMBINED",
                    "separatedOpenOrderId": "0",
                    "leverage": "20",
                    "size": "0.01000",
                    "openValue": "992.405443",
                    "openFee": "0.595443",
                    "fundingFee": "157.475456",
                    "isolatedMargin": "0",
                    "cumOpenSize": "0.55061",
                    "cumOpenValue": "54642.836110",
                    "cumOpenFee": "32.785700",
                    "cumCloseSize": "0.54061",
                    "cumCloseValue": "53666.138456",
                    "cumCloseFee": "32.199683",
                    "cumFundingFee": "163.232384",
                    "cumLiquidateFee": "0",
                    "createdMatchSequenceId": "3647905144",
                    "updatedMatchSequenceId": "3656434385",
                    "createdTime": "1746673529125",
                    "updatedTime": "1747188961302",
                    "autoAppendIsolatedMargin": False,
                }
            ]
        },
        "time": 1747188961302,
    },
}

ORDERS_PUSH: dict[str, Any] = {
    "type": "trade-event",
    "channel": "orders",
    "event": "payload",
    "msg": {
        "msgEvent": "OrderUpdate",
        "version": 46654,
        "data": {
            "order": [
                {
                    "id": "617414920861909658",
                    "coinId": "USDT",
                    "contractId": "cmt_btcusdt",
                    "marginMode": "SHARED",
                    "separatedMode": "COMBINED",
                    "separatedOpenOrderId": "0",
                    "positionSide": "LONG",
                    "orderSide": "BUY",
                    "price": "0.0",
                    "size": "0.10000",
                    "clientOrderId": "1747203186927fpiZrpAEkOlH3ygdwfJpowP0HeXVer7JFxxmIohyCMPXqKCz74s",  # noqa: E501
                    "type": "MARKET",
                    "timeInForce": "IMMEDIATE_OR_CANCEL",
                    "reduceOnly": False,
                    "triggerPrice": "0",
                    "triggerPriceType": "UNKNOWN_PRICE_TYPE",
                    "orderSource": "WEB",
                    "openTpslParentOrderId": "0",
                    "leverage": "20",
                    "takerFeeRate": "0.0006",
                    "makerFeeRate": "0.0002",
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
                    "createdTime": "1747203188148",
                    "updatedTime": "1747203188148",
                    "positionTpsl": False,
                    "setOpenTp": False,
                    "setOpenSl": False,
                }
            ]
        },
        "time": 1747203188148,
    },
}

FILL_PUSH: dict[str, Any] = {
    "type": "trade-event",
    "channel": "fill",
    "event": "payload",
    "msg": {
        "msgEvent": "OrderUpdate",
        "version": 46655,
        "data": {
            "orderFillTransaction": [
                {
                    "id": "617414920887075482",
                    "coinId": "USDT",
                    "contractId": "cmt_btcusdt",
                    "orderId": "617414920861909658",
                    "marginMode": "SHARED",
                    "separatedMode": "COMBINED",
                    "separatedOpenOrderId": "0",
                    "positionSide": "LONG",
                    "orderSide": "BUY",
                    "fillSize": "0.10000",
                    "fillValue": "10381.270000",
                    "fillFee": "6.228762",
                    "liquidateFee": "0",
                    "realizePnl": "0",
                    "direction": "TAKER",
                    "createdTime": "1747203188154",
                    "updatedTime": "1747203188154",
                }
            ]
        },
        "time": 1747203188154,
    },
}

ALL_PUSHES: dict[str, dict[str, Any]] = {
    "ticker": TICKER_PUSH,
    "kline": KLINE_PUSH,
    "depth": DEPTH_PUSH,
    "trades": TRADES_PUSH,
    "account": ACCOUNT_PUSH,
    "positions": POSITIONS_PUSH,
    "orders": ORDERS_PUSH,
    "fill": FILL_PUSH,
}
