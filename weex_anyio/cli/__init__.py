"""The `weex-ws` command (also `python -m weex_anyio`): stream, record and replay WEEX data.

    weex-ws demo                         dashboard from the built-in simulator
    weex-ws tickers BTCUSDT --json       line-delimited JSON from the real exchange
    weex-ws record BTCUSDT --out day.sqlite --duration 3600
    weex-ws replay day.sqlite --speed max --json
    weex-ws simulate --port 8765         the simulator alone, for the other commands' --url

`main(argv)` returns the exit code: 0 done (a SIGTERM is a requested stop), 1 the connection or
the server failed, 2 bad arguments, configuration or recording file, 130 Ctrl-C. Every error is
one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import anyio

from weex_proto.channels import is_private_channel, parse_channel
from weex_proto.config import DEFAULT_PRIVATE_URL
from weex_proto.errors import ConfigError, HandshakeRejectedError, ServerError, WeexError
from weex_proto.replay import RecordingError

from ._memory import return_large_buffers_when_freed
from ._parser import build_parser
from ._runtime import (
    Output,
    Stopper,
    configure_logging,
    error_line,
    explain,
    first_error,
    target_url,
    watch_signals,
)
from ._streams import config_for

__all__ = ["main", "run"]


async def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run the parsed command; its exceptions propagate (`main` turns them into exit codes)."""
    stopper = Stopper(getattr(args, "duration", None))
    out = Output(
        stdout,
        as_json=getattr(args, "json", False),
        count=getattr(args, "count", None),
        on_done=stopper.stop,
    )
    async with anyio.create_task_group() as task_group:
        await task_group.start(watch_signals, stopper)
        try:
            code = await _dispatch(args, stopper, out, stderr)
        finally:
            task_group.cancel_scope.cancel()
    return code if stopper.signal is None else stopper.exit_code


async def _dispatch(args: argparse.Namespace, stopper: Stopper, out: Output, stderr: TextIO) -> int:
    # Imported here so `weex-ws --help` and argument errors stay quick.
    command = args.command
    if command == "demo":
        from ._dashboard import run_demo

        return await run_demo(args, stopper, out)
    if command == "record":
        from ._record import run_record

        return await run_record(args, stopper, stderr)
    if command == "candles":
        from ._candles import run_candles

        return await run_candles(args, stopper, out)
    if command == "replay":
        from ._replay_command import run_replay

        return await run_replay(args, stopper, out, stderr)
    if command == "relay":
        from ._relay import run_relay

        return await run_relay(args, stopper, stderr)
    if command == "tail":
        from ._tail import run_tail

        return await run_tail(args, stopper, out)
    if command == "simulate":
        from ._simulate import run_simulate

        return await run_simulate(args, stopper, out.stream)
    from ._streams import run_stream

    return await run_stream(args, stopper, out)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse, run, and map the outcome to an exit code."""
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help (0) or a bad argument (2), already reported
        return exc.code if isinstance(exc.code, int) else 2
    stdout, stderr = sys.stdout, sys.stderr
    restore_logging = configure_logging(args, stderr)
    return_large_buffers_when_freed()  # a command runs for hours: RSS follows what it holds

    def fail(code: int, message: str) -> int:
        stderr.write(error_line(args, message, code) + "\n")
        stderr.flush()
        return code

    try:
        return anyio.run(run, args, stdout, stderr)
    except BaseException as raised:  # every outcome becomes an exit code, never a traceback
        error = first_error(raised)
        if isinstance(error, KeyboardInterrupt):
            return 130
        if isinstance(error, ConfigError | RecordingError):
            return fail(2, str(error))
        refused = _refused_symbol(error)
        if refused is not None:
            return fail(2, refused)
        refused = _refused_private_channel(args, error)
        if refused is not None:
            return fail(1, refused)
        if isinstance(error, WeexError):
            return fail(1, _with_url(args, error))
        if isinstance(error, OSError):  # e.g. --out in a directory that does not exist
            detail = f"{error.filename}: {error.strerror}" if error.filename else str(error)
            return fail(2, detail)
        raise
    finally:
        restore_logging()


def _refused_symbol(error: BaseException) -> str | None:
    """An unknown symbol, said as such: the server refused a channel of one contract."""
    if not isinstance(error, ServerError) or error.channel is None:
        return None
    symbol = getattr(parse_channel(error.channel), "symbol", None)
    if symbol is None:
        return None
    return f"unknown symbol {symbol}: the server refused {error.channel} ({error})"


def _refused_private_channel(args: argparse.Namespace, error: BaseException) -> str | None:
    """A private channel refused, with the likely reason: a public URL given as the private
    endpoint, where WEEX (and the simulator) say only that the channel is invalid."""
    if not isinstance(error, ServerError) or error.channel is None:
        return None
    if not is_private_channel(error.channel):
        return None
    url = target_url(args) or "the private endpoint"
    return (
        f"{url}: the server refused the private channel {error.channel} ({error}); "
        f"is this the private endpoint? WEEX's is {_weex_private_url(args)}, "
        "and 'weex-ws simulate' prints its own"
    )


def _weex_private_url(args: argparse.Namespace) -> str:
    """WEEX's private URL in the protocol generation the command spoke (v3's for v3)."""
    try:
        return config_for(args).dialect.private_url
    except ConfigError:
        return DEFAULT_PRIVATE_URL


def _with_url(args: argparse.Namespace, error: WeexError) -> str:
    """The reason, naming the URL when the server could not be reached or refused us."""
    text = explain(error)
    cause = getattr(error, "last_error", None) or error
    if isinstance(cause, HandshakeRejectedError | OSError) or isinstance(cause.__cause__, OSError):
        url = target_url(args)
        if url is not None and url not in text:
            return f"{url}: {text}"
    return text
