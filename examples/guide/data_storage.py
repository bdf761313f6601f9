"""The "Data Storage" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`).
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/data_storage.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio

import aiosqlite
import json
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def store_stream_data():
    """Store WebSocket data to database"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        async with aiosqlite.connect("ticker_data.db") as db:
            await db.execute("""
                CREATE TABLE IF NOT EXISTS tickers (
                    timestamp REAL,
                    symbol TEXT,
                    price REAL,
                    volume REAL,
                    change REAL
                )
            """)

            print("💾 Storing ticker data...")

            async for ticker_message in ws_client.stream_tickers(["BTCUSDT"]):
                data = ticker_message.data
                timestamp = ticker_message.timestamp

                await db.execute("""
                    INSERT INTO tickers (timestamp, symbol, price, volume, change)
                    VALUES (?, ?, ?, ?, ?)
                """, (
                    timestamp,
                    "BTCUSDT",
                    float(data.get("last", 0)),
                    float(data.get("volume", 0)),
                    float(data.get("change", 0))
                ))

                await db.commit()

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(store_stream_data())
