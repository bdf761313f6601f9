"""`examples/protocol_testing.py` runs, and the README shows exactly that file."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from examples import protocol_testing
from weex_proto.messages import Trade

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_block_is_the_example_file() -> None:
    readme = (ROOT / "README.md").read_text()
    source = (ROOT / "examples" / "protocol_testing.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert source in blocks


def test_the_example_tests_pass() -> None:
    protocol_testing.test_vwap_lies_between_the_extreme_prices()
    protocol_testing.test_a_lost_depth_update_makes_the_book_resync()
    protocol_testing.test_driving_a_connection_by_hand()


def test_the_example_vwap_is_right_on_a_known_case() -> None:
    trades = [
        Trade("cmt_btcusdt", 1, Decimal("100"), Decimal("1"), Decimal("100"), False),
        Trade("cmt_btcusdt", 2, Decimal("110"), Decimal("3"), Decimal("330"), True),
    ]
    assert protocol_testing.vwap(trades) == Decimal("107.5")
    assert protocol_testing.vwap([]) is None
