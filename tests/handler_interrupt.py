"""A program whose sync handler raises a BaseException (KeyboardInterrupt, SystemExit, ...).

    python -m tests.handler_interrupt FLAVOUR EXCEPTION HANDLER_KIND

FLAVOUR is `anyio-asyncio`, `anyio-trio` or `trio`; EXCEPTION `KeyboardInterrupt`,
`SystemExit` or `BaseException`; HANDLER_KIND `message` or `frame`. The program uses the client
the way a user would (`async with`, under `anyio.run`/`trio.run`, nothing around it), against a
simulator running in a thread of its own, and prints `LEFT BARE` if the exception came out of
the event loop unwrapped, else what did. Run as a subprocess by `test_client_failures.py`: a
KeyboardInterrupt must be free to end the process.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import anyio
import anyio.from_thread
import trio

import weex_anyio
import weex_trio
from weex_anyio import WeexConfig
from weex_anyio.testing import SimulatedWeexServer

EXCEPTIONS: dict[str, type[BaseException]] = {
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
    "BaseException": BaseException,
}


def main(flavour: str, exception: type[BaseException], kind: str) -> int:
    client_class = (
        weex_trio.WeexWebSocketClient if flavour == "trio" else weex_anyio.WeexWebSocketClient
    )
    simulator = SimulatedWeexServer(tick_interval=0.02, trade_interval=None)
    with (
        anyio.from_thread.start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(simulator) as server,
    ):
        config = WeexConfig(public_url=server.public_url, private_url=server.private_url)

        def handler(message: Any) -> None:
            raise exception("raised by a handler")

        async def run() -> None:
            async with client_class(config, backoff_base=0.01, rng=random.Random(7)) as client:
                if kind == "frame":
                    client.add_frame_handler("ticker.*", handler)
                else:
                    client.add_message_handler("ticker.*", handler)
                await client.subscribe("ticker", symbol="BTCUSDT")
                await anyio.sleep(60)  # the handler's exception ends this first
            raise AssertionError("the client's block ended without the exception")

        try:
            if flavour == "trio":
                trio.run(run)
            else:
                anyio.run(run, backend="trio" if flavour == "anyio-trio" else "asyncio")
        except BaseException as exc:  # what came out is the point
            if type(exc) is exception:
                print("LEFT BARE", flush=True)
                return 0
            print(f"LEFT AS {exc!r}", flush=True)
            return 1
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], EXCEPTIONS[sys.argv[2]], sys.argv[3]))
