import anyio

from weex_anyio import WeexConfig, WeexWebSocketClient


async def main() -> None:
    async with WeexWebSocketClient(WeexConfig.from_env()) as client:
        async for message in client.stream_tickers(["BTCUSDT", "ETHUSDT"]):
            if message.gap:
                print("reconnected: data may be missing before this message")
            data = message.data  # the documented names, values as the exchange's strings
            print(data["symbol"], data.get("last"), f"{data.get('change')}%")
            ticker = message.record  # a Ticker: typed, exact Decimal fields
            if ticker.last_price > ticker.high:
                print("a new 24 h high")
            break
        async for book_message in client.stream_order_book("BTCUSDT", level=5):
            book = book_message.record  # an OrderBookSnapshot, also a Mapping like .data
            if book.best_bid and book.best_ask:
                (bid, _), (ask, _) = book.best_bid, book.best_ask
                print(f"{book.symbol} bid {bid} ask {ask} spread {ask - bid}")
                break


if __name__ == "__main__":
    anyio.run(main)
