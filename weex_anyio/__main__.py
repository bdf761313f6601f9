"""`python -m weex_anyio demo [SYMBOLS...] [--live]`."""

from __future__ import annotations

import sys

from ._demo import main as demo_main


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "demo":
        print("usage: python -m weex_anyio demo [SYMBOLS...] [--live] [--duration S] [--count N]")
        return 2
    return demo_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
