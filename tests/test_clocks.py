"""Two clocks, never mixed: monotonic `now` for deadlines, wall time for signing and stamps.

The core is driven with a monotonic `now` and, separately, the wall time read when bytes arrive
(or when the handshake is signed). These tests move one clock without the other: a wall clock
stepped by NTP or left behind by a suspend must change the signature and the message stamps and
nothing else; a loop clock that races ahead (trio's MockClock) must change deadlines and nothing
else. The expected signature is computed here from the protocol reference (§1.3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from contextlib import aclosing

import anyio
import pytest

from tests.adapters import BOTH_DIALECTS, Harness, on_every_adapter, take
from tests.wspeer import ServerPeer
from weex_proto.config import WeexConfig
from weex_proto.connection import ConnectionOptions, WeexConnection
from weex_proto.errors import AuthenticationError
from weex_proto.events import Connected, MessageReceived, PingAnswered

WALL = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MONO = 42.0  # a monotonic clock has any origin
CONFIG = WeexConfig(api_key="key", secret_key="secret", passphrase="phrase")


def request_headers(data: bytes) -> dict[str, str]:
    peer = ServerPeer()
    peer.receive(data)
    return peer.headers()


def expected_sign(timestamp: str) -> str:
    digest = hmac.new(b"secret", (timestamp + "/v2/ws/private").encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_the_handshake_is_signed_with_wall_time_not_with_now() -> None:
    conn = WeexConnection(CONFIG, private=True)
    conn.initiate(MONO, wall_time=WALL)
    headers = request_headers(conn.data_to_send())
    assert headers["access-timestamp"] == str(int(WALL * 1000))
    assert headers["access-sign"] == expected_sign(str(int(WALL * 1000)))
    # ... while the handshake deadline is on the monotonic clock.
    assert conn.next_deadline() == MONO + conn.options.handshake_timeout


def test_messages_are_stamped_with_wall_time_and_deadlines_ignore_it() -> None:
    interval = 20.0
    options = ConnectionOptions(ping_interval=interval, ping_timeout=10.0)
    conn = WeexConnection(CONFIG, options=options)
    peer = ServerPeer()
    conn.initiate(MONO, wall_time=WALL)
    peer.receive(conn.data_to_send())
    conn.receive_data(peer.accept(), MONO + 1, wall_time=WALL + 1)
    (connected,) = list(conn.events())
    assert isinstance(connected, Connected) and connected.opened_at == WALL + 1

    # The wall clock is stepped an hour ahead between two reads; the monotonic one is not.
    stepped = WALL + 3600
    push = {"event": "payload", "channel": "ticker.cmt_btcusdt", "data": []}
    conn.receive_data(peer.text(push), MONO + 2, wall_time=stepped)
    ping_frame = peer.text({"event": "ping", "time": "1767225600000"})
    conn.receive_data(ping_frame, MONO + 2, wall_time=stepped)
    received, ping = list(conn.events())
    assert isinstance(received, MessageReceived) and received.message.timestamp == stepped
    assert isinstance(ping, PingAnswered) and ping.received_at == stepped
    assert conn.next_deadline() == MONO + 2 + interval


def test_one_clock_callers_may_leave_wall_time_out() -> None:
    """A replay or a hand-driven test with only epoch seconds passes them once, as `now`."""
    conn = WeexConnection(CONFIG, private=True)
    conn.initiate(WALL)
    assert request_headers(conn.data_to_send())["access-timestamp"] == str(int(WALL * 1000))


@pytest.mark.parametrize("step", [35.0, 3600.0, -3600.0], ids=["idle-35s", "ntp+1h", "ntp-1h"])
@on_every_adapter(virtual_time=True, dialects=BOTH_DIALECTS)
async def test_a_stepped_wall_clock_still_signs_fresh_and_stamps_true_time(
    h: Harness, step: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client is made, then the machine's clock moves (idle, NTP step, suspend): the
    server, reading the same stepped clock, must accept the signature, and messages must carry
    the stepped time. Wall time anchored at construction would be `step` seconds stale."""
    real_time = time.time
    client = h.client(max_retries=0)

    def stepped() -> float:
        return real_time() + step

    monkeypatch.setattr(time, "time", stepped)
    async with client:
        await client.connect(private=True)
        before = stepped()
        async with aclosing(client.stream_tickers("BTCUSDT")) as stream:
            message = await take(stream)
        after = stepped()
        assert before <= message.timestamp <= after
        public = client.health.endpoints["public"]
        assert public.last_message_at is not None and before <= public.last_message_at <= after
        assert public.connected_at is not None and public.connected_at <= after
        assert public.connected_at >= before - 60  # connected just now, on the stepped clock


@on_every_adapter(virtual_time=True, dialects=BOTH_DIALECTS)
async def test_the_wall_clock_option_signs_and_stamps(h: Harness) -> None:
    """An injected wall clock is what signs: one a day behind the server is refused."""
    behind = h.client(max_retries=0, wall_clock=lambda: time.time() - 86400)
    async with behind:
        with pytest.raises(AuthenticationError):
            await behind.connect(private=True)

    fixed = h.client(wall_clock=lambda: WALL)
    async with fixed, aclosing(fixed.stream_tickers("BTCUSDT")) as stream:
        assert (await take(stream)).timestamp == WALL


@on_every_adapter(virtual_time=True, dialects=BOTH_DIALECTS)
async def test_a_racing_loop_clock_does_not_age_the_signature(h: Harness) -> None:
    """Under MockClock the loop's clock runs far ahead of the wall clock (as it would after
    a suspend, the other way round): signing reads the wall clock, so it stays valid."""
    client = h.client(max_retries=0)
    async with client:
        if h.virtual_time:  # asyncio has no virtual clock: there this is a plain connect
            await anyio.sleep(1000)
        await client.connect(private=True)
        assert client.is_connected
