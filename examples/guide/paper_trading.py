"""The "Paper Trading Engine" example of the WeexWebSocketClient guide.

From websocket-api-guide.txt: the guide's code is between the two markers below, verbatim.
Only the import line is changed (the guide imports `weex_client`; this project is
`weex_anyio`), written as in the guide's first example, on which this snippet relies.
What the guide leaves undefined is added after the end marker, marked "added".

    python examples/guide/paper_trading.py

connects where `WeexConfig.from_env()` says: the real exchange by default, or a simulator
through WEEX_WS_PUBLIC_URL / WEEX_WS_PRIVATE_URL (and WEEX_API_KEY, WEEX_SECRET_KEY,
WEEX_PASSPHRASE for private channels). Like the guide's code, it runs until interrupted.
"""

import asyncio
from weex_anyio import WeexWebSocketClient, WeexConfig  # changed: weex_client

# ---- the guide's code, verbatim -----------------------------------------------------------------

class PaperTradingEngine:
    def __init__(self, initial_balance=10000):
        self.balance = initial_balance
        self.positions = {}
        self.orders = {}
        self.trades = []
        self.trade_id = 0

    async def simulate_trading(self, config):
        """Run paper trading simulation with real market data"""
        async with WeexWebSocketClient(config) as ws_client:
            print("🎯 Starting paper trading simulation...")

            async for ticker_message in ws_client.stream_tickers(["BTCUSDT"]):
                price = float(ticker_message.data.get("last", 0))
                timestamp = ticker_message.timestamp

                # Simple trading logic
                signal = self.generate_signal(price)

                if signal == "buy" and self.balance > 100:
                    # Buy 1% of balance
                    order_size = self.balance * 0.01 / price
                    await self.execute_buy(price, order_size, timestamp)

                elif signal == "sell" and self.has_position("BTCUSDT"):
                    # Sell all BTC
                    position_size = self.positions.get("BTCUSDT", 0)
                    await self.execute_sell(price, position_size, timestamp)

                # Print portfolio status
                portfolio_value = self.calculate_portfolio_value(price)
                print(f"{timestamp}: Portfolio: ${portfolio_value:.2f} | Balance: ${self.balance:.2f}")

    def generate_signal(self, price):
        """Simple trading signal generator"""
        # Implement your trading logic here
        # This is just a placeholder
        import random
        return random.choice(["buy", "sell", "hold"])

    async def execute_buy(self, price, size, timestamp):
        """Execute buy order in paper trading"""
        cost = price * size
        self.balance -= cost
        self.positions["BTCUSDT"] = self.positions.get("BTCUSDT", 0) + size

        self.trade_id += 1
        self.trades.append({
            "id": self.trade_id,
            "type": "buy",
            "price": price,
            "size": size,
            "cost": cost,
            "timestamp": timestamp
        })

        print(f"🟢 BUY: {size:.6f} BTC @ ${price:.2f} (Cost: ${cost:.2f})")

    async def execute_sell(self, price, size, timestamp):
        """Execute sell order in paper trading"""
        if size > self.positions.get("BTCUSDT", 0):
            size = self.positions["BTCUSDT"]

        revenue = price * size
        self.balance += revenue
        self.positions["BTCUSDT"] -= size

        self.trade_id += 1
        self.trades.append({
            "id": self.trade_id,
            "type": "sell",
            "price": price,
            "size": size,
            "revenue": revenue,
            "timestamp": timestamp
        })

        print(f"🔴 SELL: {size:.6f} BTC @ ${price:.2f} (Revenue: ${revenue:.2f})")

    def calculate_portfolio_value(self, current_price):
        """Calculate total portfolio value"""
        btc_value = self.positions.get("BTCUSDT", 0) * current_price
        return self.balance + btc_value

# Usage
async def run_paper_trading():
    config = WeexConfig.from_env()
    engine = PaperTradingEngine(initial_balance=10000)
    await engine.simulate_trading(config)

# ---- end of the guide's code --------------------------------------------------------------------

# ---- added: a method the guide calls but never defines -----------------------------------------
# `simulate_trading` asks `self.has_position("BTCUSDT")`; the guide's class has no such method, so
# the first "sell" signal would end the program with AttributeError.


def _has_position(self, symbol):
    """added: whether the engine holds any of `symbol`."""
    return self.positions.get(symbol, 0) > 0


PaperTradingEngine.has_position = _has_position


# added: the guide defines the program but does not start it.
if __name__ == "__main__":
    asyncio.run(run_paper_trading())
