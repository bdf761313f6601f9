"""The "Multi-Symbol Monitoring" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/multi_symbol.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def monitor_multiple_symbols():
    """Monitor multiple symbols simultaneously"""
    config = WeexConfig.from_env()
    symbols = ["BTCUSDT", "ETHUSDT", "ADAUSDT"]

    async with WeexWebSocketClient(config) as ws_client:
        print(f"📊 Monitoring {symbols}...")

        # Create tasks for each symbol
        async with asyncio.TaskGroup() as tg:
            tasks = []
            for symbol in symbols:
                task = tg.create_task(
                    monitor_symbol(ws_client, symbol)
                )
                tasks.append(task)

            # All symbol monitoring runs concurrently

async def monitor_symbol(ws_client, symbol):
    """Monitor a single symbol"""
    async for ticker_message in ws_client.stream_tickers([symbol]):
        price = ticker_message.data.get("last", "N/A")
        print(f"{symbol}: ${price}")

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(monitor_multiple_symbols())
