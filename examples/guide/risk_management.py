"""The "Risk Management Integration" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/risk_management.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def risk_monitored_trading():
    """Real-time risk monitoring with WebSocket"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        print("🛡️ Starting risk-monitored trading...")

        risk_limits = {
            "max_position_size": 1000,  # USD
            "max_daily_loss": 100,      # USD
            "max_drawdown": 0.1         # 10%
        }

        current_positions = {}
        daily_pnl = 0
        starting_balance = None

        # Monitor positions for risk breaches
        async for position_message in ws_client.stream_positions():
            data = position_message.data
            symbol = data.get("symbol")
            size = float(data.get("size", 0))
            pnl = float(data.get("unrealized_pnl", 0))

            current_positions[symbol] = {"size": size, "pnl": pnl}

            # Check position size limits
            current_exposure = sum(
                abs(pos["size"]) * get_current_price(symbol)
                for symbol, pos in current_positions.items()
            )

            if current_exposure > risk_limits["max_position_size"]:
                print(f"🚨 POSITION SIZE LIMIT BREACHED: ${current_exposure:.2f}")
                await emergency_reduce_positions()

            # Check daily loss limits
            total_pnl = sum(pos["pnl"] for pos in current_positions.values())
            if total_pnl < -risk_limits["max_daily_loss"]:
                print(f"🚨 DAILY LOSS LIMIT BREACHED: ${total_pnl:.2f}")
                await emergency_close_all_positions()

# ---- end of the guide's code --------------------------------------------------------------------

# ---- added: helpers the guide calls but never defines ------------------------------------------
# Stand-ins, so the guide's code can run: a fixed reference price per contract (a real program
# would use the latest mark price) and emergency actions that only say what they would do.

REFERENCE_PRICES = {"cmt_btcusdt": 100000.0, "cmt_ethusdt": 2500.0, "cmt_solusdt": 170.0}
"""USD per contract unit, by WEEX contract id (what a position's `symbol` holds)."""


def get_current_price(symbol):
    """added: the guide's price lookup; a KeyError for a symbol we know no price for."""
    return REFERENCE_PRICES[symbol]


async def emergency_reduce_positions():
    """added: the guide's position reducer; here it only reports."""
    print("(added helper) emergency_reduce_positions called")


async def emergency_close_all_positions():
    """added: the guide's position closer; here it only reports."""
    print("(added helper) emergency_close_all_positions called")


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(risk_monitored_trading())
