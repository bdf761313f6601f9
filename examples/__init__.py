"""Runnable examples of weex-ws: `python examples/NAME.py [--live]` (see each file's docstring).

This file makes `examples` a package, so tests can `from examples import ticker_monitor`.
"""
