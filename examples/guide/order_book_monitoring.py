"""The "Order Book Monitoring" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/order_book_monitoring.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def monitor_order_book():
    """Monitor real-time order book"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        print("📈 Monitoring BTC/USDT order book...")

        async for book_message in ws_client.stream_order_book("BTCUSDT", level=5):
            data = book_message.data

            bids = data.get("bids", [])[:3]  # Top 3 bids
            asks = data.get("asks", [])[:3]  # Top 3 asks

            print(f"\n📊 Order Book Snapshot:")
            print("Bids:")
            for i, (price, size) in enumerate(bids, 1):
                print(f"  {i}. ${price} - {size}")

            print("Asks:")
            for i, (price, size) in enumerate(asks, 1):
                print(f"  {i}. ${price} - {size}")

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(monitor_order_book())
