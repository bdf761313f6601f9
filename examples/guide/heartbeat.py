"""The "Heartbeat and Health Checks" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/heartbeat.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
import time  # the guide's snippet uses it unimported
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def websocket_with_heartbeat():
    """WebSocket client with heartbeat monitoring"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        print("💓 Starting heartbeat...")

        last_message_time = time.time()
        heartbeat_interval = 30  # seconds

        async def heartbeat_checker():
            while True:
                await asyncio.sleep(heartbeat_interval)
                if time.time() - last_message_time > heartbeat_interval:
                    print("💔 No messages received - potential connection issue")

        heartbeat_task = asyncio.create_task(heartbeat_checker())

        try:
            async for ticker_message in ws_client.stream_tickers(["BTCUSDT"]):
                last_message_time = time.time()
                print(f"💓 Message received: {ticker_message.data.get('last')}")

        finally:
            heartbeat_task.cancel()

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(websocket_with_heartbeat())
