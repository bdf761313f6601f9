"""The "Context Manager" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`).
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/context_manager.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def websocket_example():
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        # Client automatically connects and manages resources
        async for message in ws_client.stream_tickers(["BTCUSDT"]):
            print(f"Ticker: {message.data}")

        # Client automatically disconnects when exiting context

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(websocket_example())
