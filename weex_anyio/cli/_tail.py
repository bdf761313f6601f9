"""`weex-ws tail --nats URL SUBJECT...`: print what relays published to JetStream.

Each body is the JSON line the stream commands print with `--json`; without `--json` the record
is turned back into a client message and described the same way as a live one. Each subject
is read by its own ordered consumer (in stream order, no acknowledgements to manage).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

import anyio

from weex_proto.records import RecordSplitter, SplitError

from ._nats_feed import bodies, message_from_body, subscribe
from ._relay import close_nats, connect_nats
from ._runtime import Output, Stopper

__all__ = ["message_from_body", "run_tail"]

log = logging.getLogger("weex_anyio.tail")


async def run_tail(args: argparse.Namespace, stopper: Stopper, out: Output) -> int:
    nc = await connect_nats(args.nats)
    try:
        js = nc.jetstream()
        since = None if args.since is None else time.time() - args.since
        policy = "since" if since is not None else args.deliver
        with stopper.scope:
            async with anyio.create_task_group() as task_group:
                for subject in dict.fromkeys(args.subjects):
                    subscription = await subscribe(js, subject, policy, since=since)
                    task_group.start_soon(_print_each, subscription, out)
    finally:
        await close_nats(nc)
    return 0


async def _print_each(subscription: Any, out: Output) -> None:
    splitter = RecordSplitter()
    async for subject, body in bodies(subscription):
        if out.as_json:
            out.emit_line(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
            continue
        try:
            out.emit(message_from_body(body, splitter))
        except (ValueError, KeyError, SplitError) as exc:
            log.warning("skipped a message on %s: %s", subject[:80], exc)
