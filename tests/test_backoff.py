"""ReconnectPolicy: bounded jittered exponential backoff, a retry budget of reconnection attempts
that a useful connection renews, and the backoff step that only a stable one resets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weex_proto.backoff import ReconnectPolicy


class ExtremeRandom(random.Random):
    """Always draws the top (or bottom) of the requested range, to pin the jitter down."""

    def __init__(self, top: bool) -> None:
        super().__init__(0)
        self.top = top

    def uniform(self, a: float, b: float) -> float:
        return b if self.top else a


def ceiling(base: float, maximum: float, n: int) -> float:
    return min(maximum, base * float(2**n))


def fail_repeatedly(policy: ReconnectPolicy, times: int) -> list[float | None]:
    delays = []
    for _ in range(times):
        policy.on_connect_attempt()
        delays.append(policy.on_connect_failed(now=0.0))
    return delays


bases = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
extra = st.floats(min_value=0.0, max_value=1000.0, allow_nan=False)
seeds = st.integers(0, 2**32)


@given(base=bases, extra=extra, seed=seeds, count=st.integers(1, 60))
def test_delays_stay_within_the_equal_jitter_window(
    base: float, extra: float, seed: int, count: int
) -> None:
    maximum = base + extra
    policy = ReconnectPolicy(base=base, maximum=maximum, max_retries=None, rng=random.Random(seed))
    for n, delay in enumerate(fail_repeatedly(policy, count)):
        assert delay is not None
        upper = ceiling(base, maximum, n)
        assert 0.5 * upper <= delay <= upper
        assert 0.0 <= delay <= maximum


@given(base=st.floats(min_value=0.01, max_value=10.0), extra=extra, top=st.booleans())
def test_upper_bound_grows_monotonically_then_caps(base: float, extra: float, top: bool) -> None:
    maximum = base + extra
    policy = ReconnectPolicy(
        base=base, maximum=maximum, max_retries=None, rng=ExtremeRandom(top=top)
    )
    delays = [d for d in fail_repeatedly(policy, 40) if d is not None]
    assert delays == sorted(delays)
    factor = 1.0 if top else 0.5
    assert delays[0] == pytest.approx(factor * base)
    assert delays[-1] == pytest.approx(factor * maximum)  # base * 2**39 is far past any cap


@given(max_retries=st.integers(0, 30), seed=seeds)
def test_exactly_max_retries_delays_then_none(max_retries: int, seed: int) -> None:
    policy = ReconnectPolicy(max_retries=max_retries, rng=random.Random(seed))
    delays = fail_repeatedly(policy, max_retries + 3)
    assert all(d is not None for d in delays[:max_retries])
    assert delays[max_retries:] == [None, None, None]
    assert policy.exhausted
    assert policy.attempts == max_retries  # reconnection attempts granted: the initial one is not
    assert policy.failures == max_retries + 3
    assert policy.total_attempts == max_retries + 3


def test_zero_retries_never_reconnects() -> None:
    policy = ReconnectPolicy(max_retries=0, rng=random.Random(1))
    policy.on_connect_attempt()
    policy.on_connected(now=100.0)
    assert policy.on_disconnected(now=1000.0) is None


def test_none_retries_forever_without_overflow() -> None:
    policy = ReconnectPolicy(base=1.0, maximum=30.0, max_retries=None, rng=random.Random(2))
    delays = fail_repeatedly(policy, 2000)
    assert all(d is not None and 15.0 <= d <= 30.0 for d in delays[10:])
    assert not policy.exhausted


@given(seed=seeds, failures=st.integers(0, 4), stable_after=st.floats(0.0, 100.0), up=extra)
def test_stable_connection_resets_the_counter(
    seed: int, failures: int, stable_after: float, up: float
) -> None:
    policy = ReconnectPolicy(
        base=1.0, maximum=30.0, max_retries=5, stable_after=stable_after, rng=random.Random(seed)
    )
    fail_repeatedly(policy, failures)
    policy.on_connect_attempt()
    policy.on_connected(now=0.0)  # from 0, so float rounding cannot shave the uptime
    delay = policy.on_disconnected(now=stable_after + up)
    assert policy.attempts == 1
    assert delay is not None
    assert 0.5 <= delay <= 1.0  # the first window again: min(30, 1 * 2**0)


@given(seed=seeds, failures=st.integers(0, 3), fraction=st.floats(0.0, 0.999))
def test_short_connection_does_not_reset_the_counter(
    seed: int, failures: int, fraction: float
) -> None:
    policy = ReconnectPolicy(
        base=1.0, maximum=30.0, max_retries=5, stable_after=10.0, rng=random.Random(seed)
    )
    fail_repeatedly(policy, failures)
    policy.on_connect_attempt()
    policy.on_connected(now=0.0)
    delay = policy.on_disconnected(now=10.0 * fraction)
    assert policy.attempts == failures + 1
    assert delay is not None
    upper = ceiling(1.0, 30.0, failures)
    assert 0.5 * upper <= delay <= upper


def test_server_that_accepts_then_drops_at_once_exhausts_the_budget() -> None:
    policy = ReconnectPolicy(max_retries=3, stable_after=10.0, rng=random.Random(3))
    results = []
    for i in range(5):
        policy.on_connect_attempt()
        policy.on_connected(now=float(i))
        results.append(policy.on_disconnected(now=i + 0.1))
    assert [r is None for r in results] == [False, False, False, True, True]
    assert policy.total_attempts == 5


def test_stability_is_measured_from_the_latest_connection() -> None:
    policy = ReconnectPolicy(max_retries=5, stable_after=10.0, rng=random.Random(4))
    policy.on_connect_attempt()
    policy.on_connected(now=0.0)
    policy.on_disconnected(now=1.0)  # short: counts as a failure
    policy.on_connect_attempt()
    assert policy.on_connect_failed(now=50.0) is not None  # never connected: no reset
    assert policy.attempts == 2
    policy.on_connect_attempt()
    policy.on_connected(now=60.0)
    policy.on_disconnected(now=65.0)  # only 5 s up, although 65 s since the first connect
    assert policy.attempts == 3


def test_disconnect_without_connect_counts_as_a_failure() -> None:
    policy = ReconnectPolicy(max_retries=5, rng=random.Random(5))
    policy.on_disconnected(now=1000.0)
    assert policy.attempts == 1


def test_reset_restores_an_exhausted_policy() -> None:
    policy = ReconnectPolicy(max_retries=1, rng=random.Random(6))
    fail_repeatedly(policy, 2)
    assert policy.exhausted
    policy.reset()
    assert not policy.exhausted
    assert policy.attempts == 0
    assert fail_repeatedly(policy, 1)[0] is not None


@given(seed=seeds, base=bases, extra=extra)
def test_same_seed_gives_the_same_delays(seed: int, base: float, extra: float) -> None:
    def run() -> list[float | None]:
        policy = ReconnectPolicy(
            base=base, maximum=base + extra, max_retries=8, rng=random.Random(seed)
        )
        return fail_repeatedly(policy, 10)

    assert run() == run()


def test_jitter_spreads_clients_apart() -> None:
    first_delays = set()
    for seed in range(20):
        policy = ReconnectPolicy(base=4.0, rng=random.Random(seed))
        first_delays.add(fail_repeatedly(policy, 1)[0])
    assert len(first_delays) > 10


def test_total_attempts_counts_successes_too() -> None:
    policy = ReconnectPolicy(rng=random.Random(7))
    for i in range(3):
        policy.on_connect_attempt()
        policy.on_connected(now=100.0 * i)
        policy.on_disconnected(now=100.0 * i + 50.0)
    assert policy.total_attempts == 3
    assert policy.attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base": -0.1},
        {"base": 2.0, "maximum": 1.0},
        {"max_retries": -1},
        {"stable_after": -1.0},
        {"base": float("nan")},
        {"maximum": float("inf")},
    ],
)
def test_invalid_arguments_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is not the point
        ReconnectPolicy(rng=random.Random(0), **kwargs)  # type: ignore[arg-type]


def connect_and_drop(policy: ReconnectPolicy, *, useful: bool, up: float = 0.5) -> float | None:
    policy.on_connect_attempt()
    policy.on_connected(now=0.0)
    if useful:
        policy.on_useful()
    return policy.on_disconnected(now=up)


def test_useful_connections_renew_the_retry_budget() -> None:
    policy = ReconnectPolicy(max_retries=2, stable_after=10.0, rng=random.Random(8))
    for _ in range(10):
        assert connect_and_drop(policy, useful=True) is not None
        assert (policy.attempts, policy.failures) == (1, 0)
    assert not policy.exhausted


def test_useful_but_short_connections_still_slow_down() -> None:
    # The budget is renewed, the pace is not: a server that delivers a little and drops at once
    # must not be hammered (300 connection requests per 5 minutes, protocol doc §5.1).
    policy = ReconnectPolicy(base=1.0, maximum=8.0, max_retries=2, rng=ExtremeRandom(top=True))
    delays = [connect_and_drop(policy, useful=True) for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert connect_and_drop(policy, useful=False, up=10.0) == 1.0  # a stable one resets the pace


def test_useful_report_before_the_handshake_is_ignored() -> None:
    policy = ReconnectPolicy(max_retries=1, rng=random.Random(9))
    policy.on_connect_attempt()
    policy.on_useful()  # nothing is open yet: nothing proved
    assert policy.on_connect_failed(now=0.0) is not None
    policy.on_connect_attempt()
    policy.on_useful()
    assert policy.on_connect_failed(now=1.0) is None
    assert (policy.attempts, policy.failures) == (1, 2)


def test_silent_connections_exhaust_the_budget_exactly() -> None:
    policy = ReconnectPolicy(max_retries=2, stable_after=10.0, rng=random.Random(10))
    assert connect_and_drop(policy, useful=True) is not None  # worked: a fresh budget of 2
    assert policy.attempts == 1
    assert connect_and_drop(policy, useful=False) is not None
    assert policy.attempts == 2
    assert connect_and_drop(policy, useful=False) is None
    assert policy.exhausted
    assert (policy.attempts, policy.failures) == (2, 2)


outcomes = st.lists(st.sampled_from(["failed", "silent", "useful", "stable"]), max_size=40)


@given(runs=outcomes, max_retries=st.none() | st.integers(0, 5), seed=seeds)
def test_budget_and_pace_follow_the_documented_rules(
    runs: list[str], max_retries: int | None, seed: int
) -> None:
    """A model of backoff.py's docstring: the budget counts reconnection attempts since the last
    useful connection; the step counts reconnects since the last stable one."""
    stable_after = 10.0
    policy = ReconnectPolicy(
        base=1.0, maximum=1000.0, max_retries=max_retries, stable_after=stable_after,
        rng=random.Random(seed),
    )  # fmt: skip
    granted = step = failures = 0
    for outcome in runs:
        policy.on_connect_attempt()
        if outcome == "failed":
            delay = policy.on_connect_failed(now=0.0)
        else:
            policy.on_connected(now=0.0)
            if outcome == "useful":
                policy.on_useful()
            delay = policy.on_disconnected(now=stable_after if outcome == "stable" else 1.0)
        if outcome in ("useful", "stable"):
            granted = failures = 0
        else:
            failures += 1
        if outcome == "stable":
            step = 0
        if max_retries is not None and granted >= max_retries:
            assert delay is None
            assert policy.exhausted
            assert (policy.attempts, policy.failures) == (granted, failures)
            return
        granted += 1
        assert delay is not None
        upper = min(1000.0, 2.0**step)
        assert 0.5 * upper <= delay <= upper
        step += 1
        assert (policy.attempts, policy.failures) == (granted, failures)
    assert not policy.exhausted
