"""The "Message Filtering and Processing" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/filtered_streaming.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def filtered_streaming():
    """Process only relevant messages"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        print("📊 Starting filtered streaming...")

        async for ticker_message in ws_client.stream_tickers(["BTCUSDT"]):
            data = ticker_message.data

            # Filter by price changes > 0.1%
            price_change = float(data.get("change", 0))
            if abs(price_change) > 0.1:
                price = data.get("last", "N/A")
                volume = data.get("volume", "N/A")

                print(f"📈 Significant move: {price_change}% | Price: ${price} | Volume: {volume}")

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(filtered_streaming())
