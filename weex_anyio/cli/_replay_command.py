"""`weex-ws replay FILE`: a recording through the whole client, with the same output every time.

The client connects through a `ReplayTransport` instead of TCP, subscribes to the recording's
channels, and one synchronous handler for every channel prints each message as the client
decodes it; its wall clock is the replay's, so timestamps are the recorded ones. When the last frame
has been handled the client closes the connection itself (a clean close handshake), and the
command exits 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
import anyio.to_thread

from weex_proto.config import WeexConfig
from weex_proto.replay import RecordingError, channels_of, subscribable_channels

from ..client import WeexWebSocketClient
from ._recordings import read_recording
from ._runtime import Output, Stopper
from .replay import ReplayTransport

# Never contacted: the replay transport answers for any endpoint.
REPLAY_CONFIG = WeexConfig(
    public_url="ws://replay.invalid/v2/ws/public",
    private_url="ws://replay.invalid/v2/ws/private",
)


async def run_replay(args: argparse.Namespace, stopper: Stopper, out: Output) -> int:
    path = Path(args.file)
    frames = await anyio.to_thread.run_sync(read_recording, path)
    if not frames:
        raise RecordingError(f"{path}: the recording holds no frames")
    transport = ReplayTransport(frames, speed=args.speed, close_at_end=False)
    client = WeexWebSocketClient(
        REPLAY_CONFIG,
        transport=transport,
        wall_clock=transport.clock,  # messages carry their recorded times
        ping_interval=None,  # recorded time jumps; a quiet stretch is not a dead connection
        max_retries=0,
    )
    async with client:
        with stopper.scope:  # inside the client, so leaving it still closes the connection
            client.add_message_handler("*", out.emit)
            for channel in subscribable_channels(channels_of(frames)):
                await client.subscribe(channel)
            await client.connect()
            await transport.wait_finished()
    return 0
