"""The "Trade Stream Monitoring" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/trade_monitoring.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def monitor_trades():
    """Monitor real-time trades"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        print("💰 Monitoring BTC/USDT trades...")

        async for trade_message in ws_client.stream_trades("BTCUSDT"):
            data = trade_message.data
            timestamp = trade_message.timestamp

            price = data.get("price", "N/A")
            size = data.get("size", "N/A")
            side = data.get("side", "N/A")

            side_emoji = "🟢" if side == "buy" else "🔴"
            print(f"{timestamp} {side_emoji} {size} BTC @ ${price}")

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(monitor_trades())
