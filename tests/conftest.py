"""Settings for the whole suite.

Hypothesis times every example (200 ms by default) and flags slow data generation: both are
wall-clock budgets, which a busy 2-core CI machine breaks at random. The suite checks behaviour,
never speed (that is `bench/`'s job), so both are off for every test.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("weex-ws", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("weex-ws")
