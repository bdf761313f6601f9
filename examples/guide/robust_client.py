"""The "Error Handling and Reconnection" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/robust_client.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def robust_websocket_client():
    """WebSocket client with robust error handling"""
    config = WeexConfig.from_env()

    max_reconnect_attempts = 5
    reconnect_delay = 5  # seconds

    for attempt in range(max_reconnect_attempts):
        try:
            async with WeexWebSocketClient(config) as ws_client:
                print(f"🔌 Connected (attempt {attempt + 1})")

                async for ticker_message in ws_client.stream_tickers(["BTCUSDT"]):
                    price = ticker_message.data.get("last")
                    print(f"Price: ${price}")

        except Exception as e:
            print(f"❌ Connection error: {e}")
            if attempt < max_reconnect_attempts - 1:
                print(f"🔄 Reconnecting in {reconnect_delay} seconds...")
                await asyncio.sleep(reconnect_delay)
                # Increase delay for next attempt
                reconnect_delay *= 2
            else:
                print("💥 Max reconnection attempts reached")
                raise

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(robust_websocket_client())
