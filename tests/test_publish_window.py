"""The relay's publish window (`weex_proto.relaying.PublishWindow`) against a model of
JetStream: any interleaving of sends, acks in any order, lost acks, timeouts, refusals and
lost connections. Every record ends acked or refused, the stream holds each stored record
once, and each subject's records in publishing order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weex_proto.relaying import (
    AckResult,
    FrameCounter,
    Outgoing,
    PublishWindow,
    RelayCounts,
    Sending,
    classify_ack,
    header_block_size,
    message_id,
    status_text,
    summary_text,
)

TIMEOUT = 5.0


def _record(subject: str, n: int) -> Outgoing:
    return Outgoing(subject, f"{subject}:{n}", subject, n, 0.0)


class JetStreamModel:
    """One connection to a JetStream stream that de-duplicates by message id.

    Publishes queue on the wire in order and are processed in order; each answer is a reply
    that may come back in any order or never. A publish of a record in `refusing` is refused
    for good. An outage answers "retry" to every publish of the generation it started in
    (JetStream is unavailable until the relay sends again). A lost connection loses the
    wire and the replies.
    """

    def __init__(self, refusing: set[str]) -> None:
        self.refusing = refusing
        self.stream: list[Outgoing] = []
        self.ids: set[str] = set()
        self.wire: list[Sending] = []
        self.replies: list[tuple[Sending, str]] = []
        self.outage: int | None = None

    def process(self, fail: bool = False) -> None:
        if not self.wire:
            return
        sending = self.wire.pop(0)
        item = sending.item
        if self.outage is not None and sending.generation > self.outage:
            self.outage = None  # back by the time the relay sends again
        if item.msg_id in self.refusing:
            outcome = "refused"
        elif self.outage == sending.generation or fail:
            self.outage = sending.generation
            outcome = "retry"
        elif item.msg_id in self.ids:
            outcome = "duplicate"
        else:
            self.ids.add(item.msg_id)
            self.stream.append(item)
            outcome = "stored"
        self.replies.append((sending, outcome))

    def lose_connection(self) -> None:
        self.wire.clear()
        self.replies.clear()
        self.outage = None


def _deliver(window: PublishWindow, sending: Sending, outcome: str) -> None:
    if outcome in ("stored", "duplicate"):
        window.ack(sending.seq, duplicate=outcome == "duplicate")
    elif outcome == "retry":
        window.failed(sending.seq, sending.generation)
    else:
        window.refuse(sending.seq)


STEPS = ("add", "send", "process", "fail", "deliver", "lose", "timeout", "drop")


@settings(max_examples=300, deadline=None)
@given(
    subjects=st.lists(st.sampled_from("abc"), min_size=1, max_size=30),
    refused=st.sets(st.integers(0, 29), max_size=4),
    limit=st.integers(1, 8),
    steps=st.lists(st.tuples(st.sampled_from(STEPS), st.integers(0, 99)), max_size=150),
)
def test_every_record_is_stored_once_in_order_or_refused(
    subjects: list[str], refused: set[int], limit: int, steps: list[tuple[str, int]]
) -> None:
    counters = {subject: itertools.count() for subject in "abc"}
    records = [_record(subject, next(counters[subject])) for subject in subjects]
    refusing = {records[i].msg_id for i in refused if i < len(records)}
    server = JetStreamModel(refusing)
    window = PublishWindow(limit)
    pending = list(records)
    now = 0.0

    def step(kind: str, pick: int) -> None:
        nonlocal now
        if kind == "add" and pending and window.room:
            window.add(pending.pop(0))
        elif kind == "send":
            server.wire.extend(window.to_send(now))
        elif kind in ("process", "fail"):
            server.process(fail=kind == "fail")
        elif kind in ("deliver", "lose") and server.replies:
            sending, outcome = server.replies.pop(pick % len(server.replies))
            if kind == "deliver":
                _deliver(window, sending, outcome)
        elif kind == "timeout":
            now += TIMEOUT
            window.expire(now, TIMEOUT)
        elif kind == "drop":
            server.lose_connection()
            window.restart()
        assert len(window) <= limit

    for kind, pick in steps:
        step(kind, pick)
    # Then the network heals: everything must get through.
    for _ in range(len(records) + 20):
        if not pending and not len(window):
            break
        while pending and window.room:
            window.add(pending.pop(0))
        server.wire.extend(window.to_send(now))
        while server.wire:
            server.process()
        while server.replies:
            _deliver(window, *server.replies.pop(0))
        now += TIMEOUT
        window.expire(now, TIMEOUT)
    assert not pending
    assert not len(window)
    assert window.acked + window.refused == len(records)
    assert window.refused == len(refusing)
    stored_ids = [item.msg_id for item in server.stream]
    assert sorted(stored_ids) == sorted(r.msg_id for r in records if r.msg_id not in refusing)
    for subject in "abc":
        numbers = [item.data for item in server.stream if item.subject == subject]
        assert numbers == sorted(numbers), subject


def test_a_retry_reply_of_an_older_generation_does_not_send_again() -> None:
    window = PublishWindow(10)
    for n in range(3):
        window.add(_record("a", n))
    first = window.to_send(0.0)
    assert window.failed(first[0].seq, first[0].generation)
    again = window.to_send(1.0)
    assert [s.seq for s in again] == [s.seq for s in first]
    assert not window.failed(first[1].seq, first[1].generation)  # covered by the resend
    assert window.retried == 3
    assert not window.due


def test_an_ack_of_any_copy_counts_and_acks_leave_only_from_the_front() -> None:
    window = PublishWindow(3)
    for n in range(3):
        window.add(_record("a", n))
    sent = window.to_send(0.0)
    window.ack(sent[2].seq)
    assert (len(window), window.room, window.acked) == (3, 0, 1)
    window.restart()
    resent = window.to_send(1.0)
    assert [s.item.data for s in resent] == [0, 1]  # the acked one is not sent again
    window.ack(sent[0].seq)  # the first copy's late ack
    window.ack(resent[1].seq, duplicate=True)
    assert (len(window), window.acked, window.duplicates) == (0, 3, 1)


def test_a_refusal_flags_the_next_unsent_record_of_its_subject() -> None:
    window = PublishWindow(10)
    big = window.add(_record("depth", 0))
    window.add(_record("ticker", 0))
    sent = window.to_send(0.0)
    window.add(_record("ticker", 1), b"ticker body")
    window.add(_record("depth", 1), b"depth body without the flag")
    assert window.refuse(big) == sent[0].item
    assert window.refuse(big) is None  # once
    later = window.to_send(1.0)
    assert [(s.item.subject, s.item.gap) for s in later] == [("ticker", False), ("depth", True)]
    assert [s.payload for s in later] == [b"ticker body", b""]  # the flagged one re-encoded
    assert (window.refused, window.gaps) == (1, 1)
    # None of the subject queued: the next one added carries the flag.
    window.drop(_record("trades", 0))
    assert window.add(_record("trades", 1)) is not None
    assert window.to_send(2.0)[0].item.gap


def test_the_deadline_is_the_oldest_unacked_publish() -> None:
    window = PublishWindow(10)
    assert window.deadline(TIMEOUT) is None
    window.add(_record("a", 0))
    window.to_send(1.0)
    window.add(_record("a", 1))
    window.to_send(2.0)
    assert window.deadline(TIMEOUT) == 1.0 + TIMEOUT
    assert not window.expire(5.9, TIMEOUT)
    assert window.expire(6.0, TIMEOUT)
    assert window.deadline(TIMEOUT) is None  # nothing in flight until sent again
    assert len(window.to_send(6.0)) == 2
    with pytest.raises(ValueError, match="at least one"):
        PublishWindow(0)


@pytest.mark.parametrize(
    ("data", "status", "kind"),
    [
        (b'{"stream":"WEEX","seq":3}', None, "stored"),
        (b'{"stream":"WEEX","seq":3,"duplicate":true}', None, "duplicate"),
        (b'{"stream":"WEEX","seq":3,"duplicate": true}', None, "duplicate"),
        (b"", "503", "retry"),
        (b"not json", None, "retry"),
        (
            b'{"error":{"code":400,"err_code":10054,'
            b'"description":"message size exceeds maximum allowed"}}',
            None,
            "refused",
        ),
        (
            b'{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}',
            None,
            "refused",
        ),
        (
            b'{"error":{"code":503,"err_code":10047,'
            b'"description":"insufficient storage resources available"}}',
            None,
            "storage",
        ),
        (
            b'{"error":{"code":503,"err_code":10008,"description":"JetStream not enabled"}}',
            None,
            "retry",
        ),
    ],
)
def test_acks_are_told_apart(data: bytes, status: str | None, kind: str) -> None:
    result = classify_ack(data, status)
    assert result.kind == kind
    assert (result.reason == "") == (kind in ("stored", "duplicate"))
    if kind == "refused":
        assert "exceeds" in result.reason or "exceeded" in result.reason


def test_the_header_block_is_counted_as_nats_py_sends_it() -> None:
    assert header_block_size("x") == len(b"NATS/1.0\r\nNats-Msg-Id: x\r\n\r\n")


def test_identical_trade_frames_get_ids_of_their_own() -> None:
    channel = "trades.cmt_btcusdt"
    row = {"time": "1", "price": "10", "size": "1", "buyerMaker": True}
    frame: dict[str, Any] = {"event": "payload", "channel": channel, "data": [row, row]}
    counter = FrameCounter()

    def ids(*, restarted: bool = False) -> list[str]:
        out = []
        for index in range(2):
            n = counter.occurrence(channel, "digest", index, restarted=restarted)
            out.append(message_id(channel, frame, row, index, occurrence=n))
        return out

    first, second = ids(), ids()
    assert len(set(first + second)) == 4
    assert second[0] == first[0] + "#1"
    # Another relay seeing the same frames derives the same ids; after a reconnect the
    # count starts again (so a frame WEEX repeats on resubscribing is not a new trade).
    assert ids(restarted=True) == first
    small = FrameCounter(capacity=1)
    assert small.occurrence(channel, "x", 0, restarted=False) == 0
    assert small.occurrence(channel, "y", 0, restarted=False) == 0
    assert small.occurrence(channel, "x", 0, restarted=False) == 0  # forgotten


def test_the_status_line_and_the_summary() -> None:
    before = RelayCounts(received=100, acked=50)
    now = RelayCounts(received=600, acked=550, in_flight=3, refused=2, nats_reconnects=1)
    line = status_text(now, before, 5.0)
    assert line.startswith("relay: 100 in/s, 100 acked/s, 3 in flight, outbox 0,")
    assert "refused 2" in line and "nats 1" in line
    assert status_text(now, before, 0.0).startswith("relay: 0 in/s")
    assert "relayed 600 records in 2.0s: 550 acked" in summary_text(now, 2.0)
    assert AckResult("stored").reason == ""
