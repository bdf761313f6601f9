"""`weex-ws simulate [--port N] [--contracts N [--flood]] [--api v3] [--sent-log FILE]`: the
built-in WEEX simulator in the foreground.

It prints where it listens, the contracts it lists (the `symbols` line, ready for `relay --all`),
the one account its private endpoint accepts, and command lines that point the other commands
at it; then it serves until Ctrl-C, SIGTERM or `--duration`.
The simulator listens on loopback only: it is a test double, not a service.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import shlex
from pathlib import Path
from typing import TextIO

from weex_proto.errors import ConfigError

from ..testing import SentLog, SimulatedWeexServer
from ._runtime import Stopper, simulator_api


def banner(server: SimulatedWeexServer) -> list[str]:
    """What a user needs to connect: URLs, credentials, and ready-made command lines."""
    credentials = server.credentials
    symbol = server.symbols[0].removeprefix("cmt_").upper()
    env = (
        f"WEEX_API_KEY={credentials.api_key} WEEX_SECRET_KEY={credentials.secret_key} "
        f"WEEX_PASSPHRASE={credentials.passphrase}"
    )
    return [
        f"weex-ws simulator listening on {server.host}:{server.port} (Ctrl-C to stop)",
        f"  public URL   {server.public_url}",
        f"  private URL  {server.private_url}",
        f"  symbols      {' '.join(server.symbols)}",
        f"  api key      {credentials.api_key}",
        f"  secret key   {credentials.secret_key}",
        f"  passphrase   {credentials.passphrase}",
        "try, in another terminal:",
        f"  weex-ws demo --url {shlex.quote(server.public_url)}",
        f"  weex-ws tickers {symbol} --url {shlex.quote(server.public_url)}",
        f"  {env} weex-ws orders --private-url {shlex.quote(server.private_url)}",
    ]


def _create(path: Path) -> TextIO:
    """The sent log, opened once before serving (buffered; closed when the simulator stops)."""
    return path.open("w", encoding="utf-8", newline="\n")


async def run_simulate(args: argparse.Namespace, stopper: Stopper, stdout: TextIO) -> int:
    if args.sent_log is not None and args.contracts is None and not args.flood:
        raise ConfigError("--sent-log logs the full feed: give --contracts N (or --flood)")
    try:
        with contextlib.ExitStack() as files:
            sent_log = None
            if args.sent_log is not None:
                try:
                    sent_log = SentLog(files.enter_context(_create(Path(args.sent_log))))
                except OSError as exc:
                    raise ConfigError(f"--sent-log {args.sent_log}: {exc.strerror}") from None
            server = SimulatedWeexServer(
                port=args.port,
                symbols=tuple(dict.fromkeys(args.symbols)),
                full_feed=args.contracts,
                flood=args.flood,
                on_push=sent_log,
                api=simulator_api(args.api),
            )
            async with server:
                stdout.write("".join(line + "\n" for line in banner(server)))
                stdout.flush()
                with stopper.scope:
                    await server.serve_forever()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE or "address already in use" in str(exc).lower():
            raise ConfigError(
                f"port {args.port} is already in use (choose another with --port N; "
                "--port 0 picks a free one)"
            ) from None
        raise
    return 0
