"""`weex-ws replay FILE`: a recording through the whole client, with the same output every time.

The client connects through a `ReplayTransport` instead of TCP, subscribes to the recording's
channels, and one synchronous handler for every channel prints each message as the client
decodes it; its wall clock is the replay's, so timestamps are the recorded ones. When the last frame
has been handled the client closes the connection itself (a clean close handshake), and the
command exits 0.

The file is checked and counted first (`scan_recording`), then streamed frame by frame, so
memory stays flat however long the recording. When stderr is a terminal and the output goes
elsewhere (a file, a pipe), a progress line there says how far the replay has got.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

import anyio
import anyio.to_thread

from weex_proto.config import WeexConfig
from weex_proto.replay import subscribable_channels

from ..client import WeexWebSocketClient
from ._progress import ProgressLine, shows_progress
from ._recordings import iter_frames, scan_recording
from ._runtime import Output, Stopper
from .replay import ReplayTransport

# Never contacted: the replay transport answers for any endpoint, in the recording's dialect.
REPLAY_CONFIGS = {
    dialect: WeexConfig(
        public_url=f"ws://replay.invalid/{dialect}/ws/public",
        private_url=f"ws://replay.invalid/{dialect}/ws/private",
    )
    for dialect in ("v2", "v3")
}
PROGRESS_INTERVAL = 0.2


async def run_replay(
    args: argparse.Namespace, stopper: Stopper, out: Output, stderr: TextIO
) -> int:
    info = await anyio.to_thread.run_sync(scan_recording, Path(args.file))
    if info.warning is not None:
        stderr.write(f"weex-ws: warning: {info.warning}\n")
        stderr.flush()
    transport = ReplayTransport(
        iter_frames(info), speed=args.speed, close_at_end=False, channels=info.channels
    )
    client = WeexWebSocketClient(
        REPLAY_CONFIGS[info.dialect],
        transport=transport,
        wall_clock=transport.clock,  # messages carry their recorded times
        ping_interval=None,  # recorded time jumps; a quiet stretch is not a dead connection
        max_retries=0,
    )
    total = min(info.frames, args.count) if args.count is not None else info.frames
    progress = ProgressLine(stderr, "replay", total, unit="frames")
    async with client, anyio.create_task_group() as task_group:
        if shows_progress(stderr, out.stream):
            task_group.start_soon(progress.run, lambda: transport.served, PROGRESS_INTERVAL)
        try:
            with stopper.scope:  # inside the client, so leaving it still closes the connection
                client.add_message_handler("*", out.emit)
                for channel in subscribable_channels(info.channels):
                    await client.subscribe(channel)
                await client.connect()
                await transport.wait_finished()
        finally:
            task_group.cancel_scope.cancel()
    return 0
