"""What every command shares: stopping (signals, --duration, --count), output, logging.

Stopping is one cancel scope per command. SIGINT and SIGTERM are caught as signals rather than
as a `KeyboardInterrupt` that could land anywhere, so a command always leaves through its normal
path: streams closed, the WebSocket closed cleanly, files flushed. A second Ctrl-C during that
shutdown is absorbed instead of tearing it down half-way.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Literal, TextIO

import anyio
import anyio.abc

from weex_proto.config import WeexConfig
from weex_proto.errors import (
    RETRYABLE_STATUSES,
    ConfigError,
    ConnectionClosedError,
    ReconnectExhaustedError,
    UnreachableError,
)
from weex_proto.events import WebSocketMessage
from weex_proto.logs import JsonLogFormatter, RedactingFormatter

from ._output import describe, json_line
from ._parser import PROG

CREDENTIAL_VARIABLES = ("WEEX_API_KEY", "WEEX_SECRET_KEY", "WEEX_PASSPHRASE")


class Stopper:
    """Why and when a command stops. Commands run their receiving part inside `scope`."""

    def __init__(self, duration: float | None = None) -> None:
        self.scope = anyio.CancelScope()
        if duration is not None:
            self.scope.deadline = anyio.current_time() + duration
        self.signal: int | None = None

    def stop(self) -> None:
        self.scope.cancel()

    def signalled(self, signum: int) -> None:
        if self.signal is None:
            self.signal = signum
        self.scope.cancel()

    @property
    def exit_code(self) -> int:
        """130 after Ctrl-C (the shell convention); a SIGTERM is a requested stop: 0."""
        return 130 if self.signal == signal.SIGINT else 0


async def watch_signals(
    stopper: Stopper, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Turn SIGINT/SIGTERM into a stop, for as long as the command runs."""
    listening = False
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            listening = True
            async for signum in signals:
                stopper.signalled(signum)
    except (NotImplementedError, ValueError, RuntimeError):
        if listening:
            raise
        # No signal handlers here (Windows, or not the main thread): Ctrl-C arrives as
        # KeyboardInterrupt instead, which `main` turns into exit code 130.
        task_status.started()


class Output:
    """Prints messages (human lines or JSON lines), counts them and honours `--count`."""

    def __init__(
        self,
        stream: TextIO,
        *,
        as_json: bool = False,
        count: int | None = None,
        on_done: Callable[[], None] = lambda: None,
    ) -> None:
        self.stream = stream
        self.as_json = as_json
        self.limit = count
        self.on_done = on_done
        self.emitted = 0
        self.closed = False

    @property
    def is_tty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def emit(self, message: WebSocketMessage[Any]) -> None:
        self.emit_line(json_line(message) if self.as_json else describe(message))

    def emit_line(self, text: str) -> None:
        """Print a ready-made line as one message (it counts for `--count`)."""
        if self.closed or (self.limit is not None and self.emitted >= self.limit):
            return
        self.line(text)
        self.emitted += 1
        if self.limit is not None and self.emitted >= self.limit:
            self.on_done()

    def line(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, like other command-line tools.
            self.closed = True
            _silence_stdout()
            self.on_done()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


# --------------------------------------------------------------------------- logging


def configure_logging(args: argparse.Namespace, stream: TextIO) -> Callable[[], None]:
    """Route every logger to `stream` at `--log-level`, as text or `--log-json` lines.

    The credentials in the environment are named to the formatter, which scrubs them from
    anything that would be written. Returns a function that undoes this.
    """
    secrets = [os.environ.get(name, "") for name in CREDENTIAL_VARIABLES]
    handler = logging.StreamHandler(stream)
    formatter: logging.Formatter
    if args.log_json:
        formatter = JsonLogFormatter(secrets=secrets)
    else:
        formatter = RedactingFormatter(
            "%(asctime)s weex-ws %(levelname)s %(message)s", secrets=secrets
        )
    handler.setFormatter(formatter)
    if logging.getLevelName(args.log_level) >= logging.WARNING:
        handler.addFilter(said_at_exit)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(args.log_level)

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(level)

    return restore


def error_line(args: argparse.Namespace, message: str, exit_code: int) -> str:
    """The command's last word when it fails: `weex-ws: error: ...`, or with `--log-json` a
    JSON line like every other on stderr (`weex_event` "failed", with the exit code)."""
    if not getattr(args, "log_json", False):
        return f"{PROG}: error: {message}"
    secrets = [os.environ.get(name, "") for name in CREDENTIAL_VARIABLES]
    record = logging.LogRecord(PROG, logging.ERROR, __file__, 0, message, None, None)
    record.weex_event = "failed"
    record.exit_code = exit_code
    return JsonLogFormatter(secrets=secrets).format(record)


def said_at_exit(record: logging.LogRecord) -> bool:
    """False for a log record that only repeats what the final error line will say.

    A command that fails prints one line saying why; the client's own warning about the same
    failure (a refused upgrade that will not be retried, a refused channel, giving up) would
    only say it twice. At --log-level INFO or DEBUG everything is shown.
    """
    event = getattr(record, "weex_event", None)
    if event in ("gave_up", "book_failed"):
        return False
    if event == "server_error":
        return getattr(record, "channel", None) is None or getattr(record, "kind", "") != "other"
    if event == "rejected":
        status = getattr(record, "status", 0)
        return isinstance(status, int) and (status in RETRYABLE_STATUSES or status >= 500)
    return True


# --------------------------------------------------------------------------- errors


def explain(error: BaseException) -> str:
    """One line saying what went wrong, for the final error message."""
    if isinstance(error, UnreachableError):
        return f"could not connect: {_reason(error.last_error or error)}"
    if isinstance(error, ReconnectExhaustedError):
        last = error.last_error
        reason = _reason(last) if last is not None else "no reason given"
        if not error.failures:  # max_retries=0 after a working connection dropped
            return f"gave up reconnecting: {reason}"
        attempts = "attempt" if error.failures == 1 else "attempts"
        return f"gave up connecting after {error.failures} {attempts} in a row: {reason}"
    return _reason(error)


def _reason(error: BaseException) -> str:
    # The client wraps transport failures; the socket error underneath says the most.
    cause = error.__cause__
    if isinstance(error, ConnectionClosedError):
        return _reason(cause) if isinstance(cause, OSError) else error.reason or str(error)
    text = str(error) or type(error).__name__
    if isinstance(cause, OSError):
        # os.strerror knows no resolver error ("Unknown error -2"): those say it themselves.
        errno = cause.errno if isinstance(cause.errno, int) and cause.errno > 0 else None
        detail = os.strerror(errno) if errno else cause.strerror
        if detail and detail not in text:
            text = f"{text}: {detail}"
    return text


def first_error(error: BaseException) -> BaseException:
    """The exception that matters inside (nested) exception groups: not a cancellation."""
    if isinstance(error, BaseExceptionGroup):
        found: list[BaseException] = [first_error(inner) for inner in error.exceptions]
        for inner in found:
            if not _is_cancellation(inner):
                return inner
        return found[0] if found else error
    return error


def _is_cancellation(error: BaseException) -> bool:
    # asyncio's CancelledError, or trio's Cancelled when anyio runs on trio.
    return isinstance(error, asyncio.CancelledError) or type(error).__name__ == "Cancelled"


def target_url(args: argparse.Namespace) -> str | None:
    """The endpoint a connecting command talks to, for error messages."""
    private = getattr(args, "command", "") in ("account", "positions", "orders", "fills")
    chosen = getattr(args, "private_url" if private else "url", None)
    if chosen:
        return str(chosen)
    if not hasattr(args, "max_retries") or (args.command == "demo" and not args.live):
        return None  # replay, the simulator and the demo's own simulator: nothing to name
    try:
        config = WeexConfig.from_env(**({"api": args.api} if getattr(args, "api", None) else {}))
    except ConfigError:
        return None
    return config.url(private)


def simulator_api(flag: str | None) -> Literal["v2", "v3"]:
    """The generation a simulator the CLI starts speaks: `--api`, else WEEX_API, else v2 (the
    rule every command follows). The rest of the environment is for a real exchange: unread."""
    wanted = flag or WeexConfig.from_env({"WEEX_API": os.environ.get("WEEX_API", "")}).api
    return "v3" if wanted == "v3" else "v2"


def client_options(args: Any) -> dict[str, Any]:
    """Options every command gives `WeexWebSocketClient`: a server the first attempt cannot
    reach is one line at once (`fail_fast`); `--max-retries` bounds reconnecting after that."""
    return {"max_retries": args.max_retries, "fail_fast": True}
