import asyncio
import datetime as dt
import json
import os

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from weex_proto.messages import DepthUpdate, parse_record
from weex_proto.orderbook import OrderBook


async def main() -> None:
    nc = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    js = nc.jetstream()
    # Start a little further back than the relays' --snapshot-interval (10 s by default):
    # the book starts at the first SNAPSHOT it is given and skips the deltas before it.
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    sub = await js.subscribe(
        "weex.depth.cmt_btcusdt.15",
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.BY_START_TIME,
        config=ConsumerConfig(opt_start_time=since),
    )
    book = OrderBook("cmt_btcusdt", 15)
    async for msg in sub.messages:
        body = json.loads(msg.data)  # {"channel", "received_at", "gap", "data"}
        update = parse_record(body["channel"], body["data"])
        assert isinstance(update, DepthUpdate)
        book.apply(update)  # after a version gap, the book waits for the next snapshot
        bid, ask = book.best_bid, book.best_ask
        if bid and ask:
            print(f"v{book.version} bid {bid[0]} x {bid[1]} ask {ask[0]} x {ask[1]}")


if __name__ == "__main__":
    asyncio.run(main())
