"""`weex-ws tail --nats URL SUBJECT...`: print what relays published to JetStream.

Each body is the JSON line the stream commands print with `--json`; without `--json` the record
is turned back into a client message and described the same way as a live one. Each subject
is read by its own ordered consumer (in stream order, no acknowledgements to manage).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import anyio

from weex_proto.events import PushFrame, WebSocketMessage
from weex_proto.messages import PRIVATE_RECORD_KEYS
from weex_proto.records import RecordSplitter, SplitError

from ._relay import close_nats, connect_nats, import_nats
from ._runtime import Output, Stopper

log = logging.getLogger("weex_anyio.tail")


def message_from_body(body: Mapping[str, Any], splitter: RecordSplitter) -> WebSocketMessage[Any]:
    """The relayed record as the client would have yielded it (one record, its push rebuilt)."""
    channel = body["channel"]
    data = body["data"]
    if not isinstance(channel, str) or not isinstance(data, Mapping):
        raise ValueError("the body has no channel or no record")
    key = PRIVATE_RECORD_KEYS.get(channel)
    frame: dict[str, Any]
    if key is not None:
        frame = {"event": "payload", "channel": channel, "msg": {"data": {key: [dict(data)]}}}
    else:
        frame = {"event": "payload", "channel": channel, "data": [dict(data)]}
    received_at = body.get("received_at")
    timestamp = float(received_at) if isinstance(received_at, int | float) else 0.0
    messages = splitter.split(PushFrame(channel, frame, timestamp))
    if len(messages) != 1:
        raise ValueError("the body does not hold exactly one record")
    message = messages[0]
    if body.get("gap") is True:
        message = WebSocketMessage(
            channel,
            frame,
            timestamp,
            gap=True,
            source=message.source,
            kind=message.kind,
            context=message.context,
        )
    return message


def deliver_policy(name: str) -> Any:
    import_nats()
    from nats.js.api import DeliverPolicy

    return {"new": DeliverPolicy.NEW, "all": DeliverPolicy.ALL, "last": DeliverPolicy.LAST}[name]


async def run_tail(args: argparse.Namespace, stopper: Stopper, out: Output) -> int:
    nc = await connect_nats(args.nats)
    try:
        js = nc.jetstream()
        policy = deliver_policy(args.deliver)
        with stopper.scope:
            async with anyio.create_task_group() as task_group:
                for subject in dict.fromkeys(args.subjects):
                    subscription = await js.subscribe(
                        subject, ordered_consumer=True, deliver_policy=policy
                    )
                    task_group.start_soon(_print_each, subscription, out)
    finally:
        await close_nats(nc)
    return 0


async def _print_each(subscription: Any, out: Output) -> None:
    splitter = RecordSplitter()
    try:
        async for msg in subscription.messages:
            try:
                body = json.loads(msg.data)
                if not isinstance(body, Mapping):
                    raise ValueError("not a JSON object")
                if out.as_json:
                    out.emit_line(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
                else:
                    out.emit(message_from_body(body, splitter))
            except (ValueError, KeyError, SplitError) as exc:
                log.warning("skipped a message on %s: %s", msg.subject[:80], exc)
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await subscription.unsubscribe()  # the connection may be gone already
