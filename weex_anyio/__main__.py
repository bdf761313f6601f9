"""`python -m weex_anyio COMMAND ...`: the same as the `weex-ws` command (see `weex_anyio.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
