"""The "Real-time Analysis" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/real_time_analysis.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

async def real_time_analysis():
    """Perform real-time analysis on stream data"""
    config = WeexConfig.from_env()

    async with WeexWebSocketClient(config) as ws_client:
        print("📊 Starting real-time analysis...")

        price_history = []
        moving_avg_period = 20

        async for ticker_message in ws_client.stream_tickers(["BTCUSDT"]):
            price = float(ticker_message.data.get("last", 0))
            timestamp = ticker_message.timestamp

            price_history.append(price)

            # Keep only recent history
            if len(price_history) > moving_avg_period:
                price_history.pop(0)

            # Calculate moving average
            if len(price_history) >= moving_avg_period:
                moving_avg = sum(price_history) / len(price_history)

                # Simple trading signal
                if price > moving_avg * 1.02:  # 2% above MA
                    print(f"{timestamp}: 📈 BUY signal - Price: ${price:.2f}, MA: ${moving_avg:.2f}")
                elif price < moving_avg * 0.98:  # 2% below MA
                    print(f"{timestamp}: 📉 SELL signal - Price: ${price:.2f}, MA: ${moving_avg:.2f}")
                else:
                    print(f"{timestamp}: 📊 HOLD - Price: ${price:.2f}, MA: ${moving_avg:.2f}")

# ---- end of the guide's code --------------------------------------------------------------------


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(real_time_analysis())
