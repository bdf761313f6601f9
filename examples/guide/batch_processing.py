"""The "Batch Processing" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/batch_processing.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def batch_stream_processing():
    """Process messages in batches for efficiency"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        print("📊 Batch processing...")

        batch_size = 10
        batch = []

        async for ticker_message in ws_client.stream_tickers(["BTCUSDT"]):
            batch.append(ticker_message.data)

            if len(batch) >= batch_size:
                # Process batch
                await process_ticker_batch(batch)
                batch = []  # Clear batch

        # Process remaining messages
        if batch:
            await process_ticker_batch(batch)

async def process_ticker_batch(ticker_batch):
    """Process a batch of ticker messages"""
    prices = [float(t.get("last", 0)) for t in ticker_batch]
    avg_price = sum(prices) / len(prices)
    max_price = max(prices)
    min_price = min(prices)

    print(f"Batch: Avg: ${avg_price:.2f} | Max: ${max_price:.2f} | Min: ${min_price:.2f}")

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(batch_stream_processing())
