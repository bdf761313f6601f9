"""The `weex-ws` command line: subcommands, their options, and argument checking.

Arguments are checked here, while parsing, so that a bad symbol, URL or number is a one-line
error with exit code 2 before anything connects.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from weex_proto.channels import normalize_symbol
from weex_proto.config import parse_endpoint
from weex_proto.errors import ConfigError
from weex_proto.replay import parse_speed

PROG = "weex-ws"
DEMO_SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt")
RECORD_CHANNELS = ("ticker", "depth", "trades")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

DESCRIPTION = """\
Stream, record and replay the WEEX futures WebSocket API v2 from the terminal.

  weex-ws demo [SYMBOLS...]             live dashboard from the built-in simulator (--live: WEEX)
  weex-ws tickers|book|trades SYMBOL... public streams from WEEX (--url for another server)
  weex-ws candles SYMBOL... [--interval] candles, each marked closed once final
  weex-ws account|positions|orders|fills private streams (needs WEEX_API_KEY, WEEX_SECRET_KEY,
                                        WEEX_PASSPHRASE)
  weex-ws record SYMBOL... --out FILE   raw frames to SQLite (.sqlite/.db) or JSON lines (.jsonl)
  weex-ws replay FILE                   a recording through the client, deterministically

Exit codes: 0 done (also after SIGTERM), 1 connection or server failure, 2 bad arguments,
configuration or recording file, 130 interrupted with Ctrl-C.
"""


class Parser(argparse.ArgumentParser):
    """argparse, with errors as one line instead of the usage block plus a line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------- value checks


def _checked(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """Turn ValueError/ConfigError from `convert` into argparse's one-line error."""

    def check(text: str) -> Any:
        try:
            return convert(text)
        except (ValueError, ConfigError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    check.__name__ = convert.__name__
    return check


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive whole number, not {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be 0 or more, not {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(f"must be a positive number of seconds, not {text}")
    return value


def book_depth(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 200:
        raise ValueError(f"must be between 1 and 200, not {text}")
    return value


def wire_depth(text: str) -> int:
    if text not in ("15", "200"):
        raise ValueError(f"WEEX serves depth 15 or 200, not {text}")
    return int(text)


def symbol(text: str) -> str:
    return normalize_symbol(text)


def url(text: str) -> str:
    parse_endpoint(text, what="the URL")
    return text


def channel_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [kind for kind in kinds if kind not in RECORD_CHANNELS]
    if unknown or not kinds:
        raise ValueError(f"channels must be a comma-separated list of {', '.join(RECORD_CHANNELS)}")
    return kinds


def speed(text: str) -> float | None:
    return parse_speed(text)


# --------------------------------------------------------------------------- the parser


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """`--log-level` and `--log-json`, accepted before or after the subcommand."""
    suppress: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="log messages from this level up on stderr (default: WARNING)",
        **({"default": "WARNING"} if defaults else suppress),
    )
    parser.add_argument(
        "--log-json",
        action="store_true",
        help="log as JSON lines with the structured fields (weex_event, ...); no secrets",
        **({"default": False} if defaults else suppress),
    )


def _stop_options(parser: argparse.ArgumentParser, count_help: str) -> None:
    parser.add_argument(
        "--duration", type=_checked(positive_float), metavar="S", help="stop after S seconds"
    )
    parser.add_argument("--count", type=_checked(positive_int), metavar="N", help=count_help)


def _connection_options(parser: argparse.ArgumentParser, *, private: bool) -> None:
    if private:
        parser.add_argument(
            "--private-url",
            "--url",
            dest="private_url",
            type=_checked(url),
            metavar="URL",
            help="private endpoint (default: $WEEX_WS_PRIVATE_URL or WEEX's)",
        )
    else:
        parser.add_argument(
            "--url",
            type=_checked(url),
            metavar="URL",
            help="public endpoint, e.g. ws://127.0.0.1:8765/v2/ws/public "
            "(default: $WEEX_WS_PUBLIC_URL or WEEX's)",
        )
    _retry_option(parser)


def _retry_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-retries",
        type=_checked(non_negative_int),
        default=5,
        metavar="N",
        help="reconnect attempts in a row before giving up with exit code 1 (default: 5)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, defaults=False)
        return sub

    demo = command("demo", "live terminal dashboard: tickers, order book, trades, health")
    demo.add_argument(
        "symbols",
        nargs="*",
        type=_checked(symbol),
        default=list(DEMO_SYMBOLS),
        metavar="SYMBOL",
        help=f"contracts to show (default: {' '.join(DEMO_SYMBOLS)})",
    )
    demo.add_argument("--live", action="store_true", help="stream from the real WEEX exchange")
    demo.add_argument(
        "--depth", type=_checked(book_depth), default=10, metavar="N", help="ladder levels"
    )
    _stop_options(demo, "stop after N messages")
    _retry_option(demo)

    for name, what in (
        ("tickers", "24h ticker pushes"),
        ("book", "local order books (snapshot plus deltas, checked for gaps)"),
        ("trades", "public trades"),
    ):
        sub = command(name, f"stream {what} for SYMBOL...")
        sub.add_argument("symbols", nargs="+", type=_checked(symbol), metavar="SYMBOL")
        if name == "book":
            sub.add_argument(
                "--depth",
                type=_checked(book_depth),
                default=5,
                metavar="N",
                help="levels per side (default: 5)",
            )
        _connection_options(sub, private=False)
        sub.add_argument("--json", action="store_true", help="one JSON object per line")
        _stop_options(sub, "stop after N messages")

    from ._candles import add_arguments as candle_arguments  # its own module: it imports ours

    candle_arguments(command("candles", "stream candles for SYMBOL... (kline channel)"))

    for name in ("account", "positions", "orders", "fills"):
        sub = command(name, f"stream your {name} (private; needs API credentials)")
        _connection_options(sub, private=True)
        sub.add_argument("--json", action="store_true", help="one JSON object per line")
        _stop_options(sub, "stop after N messages")

    record = command("record", "record raw frames for SYMBOL... to a file")
    record.add_argument("symbols", nargs="+", type=_checked(symbol), metavar="SYMBOL")
    record.add_argument(
        "--out",
        "-o",
        required=True,
        metavar="FILE",
        help="where to write: .sqlite/.sqlite3/.db (SQLite) or .jsonl/.ndjson (JSON lines)",
    )
    record.add_argument(
        "--channels",
        type=_checked(channel_kinds),
        default=RECORD_CHANNELS,
        metavar="LIST",
        help="which channels per symbol, comma-separated (default: ticker,depth,trades)",
    )
    record.add_argument(
        "--depth",
        type=_checked(wire_depth),
        default=15,
        metavar="15|200",
        help="depth channel to record (default: 15)",
    )
    record.add_argument("--append", action="store_true", help="add to an existing recording")
    _connection_options(record, private=False)
    _stop_options(record, "stop after N frames")

    replay = command("replay", "play a recording through the client")
    replay.add_argument("file", metavar="FILE", help="a recording made by 'weex-ws record'")
    replay.add_argument(
        "--speed",
        type=_checked(speed),
        default=1.0,
        metavar="recorded|max|FACTOR",
        help="pace frames as recorded (default), as fast as possible, or FACTOR times faster",
    )
    replay.add_argument("--json", action="store_true", help="one JSON object per line")
    replay.add_argument("--count", type=_checked(positive_int), metavar="N", help="stop after N")
    return parser
