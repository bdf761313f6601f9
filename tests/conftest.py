"""Settings for the whole suite.

Hypothesis times every example (200 ms by default) and flags slow data generation: both are
wall-clock budgets, which a busy 2-core CI machine breaks at random. The suite checks behaviour,
never speed (that is `bench/`'s job), so both are off for every test.

Hypothesis keeps its example database and caches in `.venv/hypothesis` (unless
`HYPOTHESIS_STORAGE_DIRECTORY` says otherwise), with the other tools' caches: a test run leaves
nothing in the tree but `.venv/`.

`WEEX_WS_EXAMPLES=1000` runs every property test with that many examples instead of 100: a
shake-out before a release (CI samples fresh examples on each run, so a rare one found there
is a real bug, not noise).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY",
    str(Path(__file__).resolve().parent.parent / ".venv" / "hypothesis"),
)

from hypothesis import HealthCheck, settings  # after the directory is set

settings.register_profile(
    "weex-ws",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=int(os.environ.get("WEEX_WS_EXAMPLES", "100")),
)
settings.load_profile("weex-ws")
