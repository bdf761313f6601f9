"""The "Memory Management" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/memory_efficient.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def memory_efficient_streaming():
    """Stream without accumulating data in memory"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        print("📊 Memory-efficient streaming...")

        async for ticker_message in ws_client.stream_tickers(["BTCUSDT"]):
            # Process data immediately, don't store it
            price = float(ticker_message.data.get("last", 0))

            # Only keep what you need
            if price > 50000:  # Example filter
                print(f"High price alert: ${price}")

            # No accumulation - memory stays constant

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(memory_efficient_streaming())
