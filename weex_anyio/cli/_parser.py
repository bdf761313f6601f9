"""The `weex-ws` command line: subcommands, their options, and argument checking.

Arguments are checked here, while parsing, so that a bad symbol, URL or number is a one-line
error with exit code 2 before anything connects.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from weex_proto._version import __version__
from weex_proto.channels import KlineInterval, PriceType, normalize_symbol
from weex_proto.config import parse_endpoint
from weex_proto.errors import ConfigError
from weex_proto.relaying import parse_shard
from weex_proto.replay import parse_speed

PROG = "weex-ws"
DEMO_SYMBOLS = ("cmt_btcusdt", "cmt_ethusdt", "cmt_solusdt")
RECORD_CHANNELS = ("ticker", "depth", "trades")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SIMULATOR_PORT = 8765

DESCRIPTION = """\
Stream, record and replay the WEEX futures WebSocket API v2 from the terminal.

  weex-ws demo [SYMBOLS...]             live dashboard from the built-in simulator (--live: WEEX,
                                        --nats URL: what relays publish); also 'dashboard'
  weex-ws simulate [--port N]           run the simulator alone, for the other commands' --url
                                        (--contracts N [--flood]: a whole-exchange feed)
  weex-ws tickers|book|trades SYMBOL... public streams from WEEX (--url for another server)
  weex-ws candles SYMBOL... [--interval] candles, each marked closed once final
  weex-ws account|positions|orders|fills private streams (needs WEEX_API_KEY, WEEX_SECRET_KEY,
                                        WEEX_PASSPHRASE)
  weex-ws record SYMBOL... --out FILE   raw frames to SQLite (.sqlite/.db) or JSON lines (.jsonl)
  weex-ws replay FILE                   a recording through the client, deterministically
  weex-ws relay SYMBOL... --nats URL    publish records to NATS JetStream (subjects weex.<channel>;
                                        --all FILE|LIST for every contract listed, --shard K/N)
  weex-ws tail --nats URL SUBJECT...    print what relays published

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


def non_negative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be 0 or a positive number of seconds, not {text}")
    return value


def book_depth(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 200:
        raise ValueError(f"must be between 1 and 200, not {text}")
    return value


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a TCP port (0 picks a free one), not {text}")
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


NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def nats_url(text: str) -> str:
    """A NATS server URL (or a comma-separated list): `nats://host:port` and nats-py's other
    schemes, or `host:port`; `http://...` is refused here rather than failing to connect."""
    for server in text.split(","):
        scheme, separator, _ = server.strip().partition("://")
        if separator and scheme.lower() not in NATS_SCHEMES:
            raise ValueError(
                f"the NATS URL must use nats://, tls://, ws:// or wss://, not {scheme}://"
            )
    return text


def channel_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [kind for kind in kinds if kind not in RECORD_CHANNELS]
    if unknown or not kinds:
        raise ValueError(f"channels must be a comma-separated list of {', '.join(RECORD_CHANNELS)}")
    return kinds


RELAY_CHANNELS = (*RECORD_CHANNELS, "kline", "account", "positions", "orders", "fills")
_RELAY_ALIASES = {"candles": "kline", "klines": "kline", "fill": "fills", "trade": "trades"}


def relay_channel_kinds(text: str) -> tuple[str, ...]:
    parts = (part.strip().lower() for part in text.split(",") if part.strip())
    kinds = tuple(dict.fromkeys(_RELAY_ALIASES.get(part, part) for part in parts))
    unknown = [kind for kind in kinds if kind not in RELAY_CHANNELS]
    if unknown or not kinds:
        raise ValueError(f"channels must be a comma-separated list of {', '.join(RELAY_CHANNELS)}")
    return kinds


def kline_interval(text: str) -> KlineInterval:
    member = KlineInterval.__members__.get(text.strip().upper())
    if member is None:
        raise ValueError(f"unknown interval {text!r}; one of {', '.join(KlineInterval)}")
    return member


def kline_intervals(text: str) -> tuple[KlineInterval, ...]:
    intervals = [kline_interval(part) for part in text.split(",") if part.strip()]
    if not intervals:
        raise ValueError("name at least one interval, e.g. MINUTE_1")
    return tuple(dict.fromkeys(intervals))


def kline_price_type(text: str) -> PriceType:
    member = PriceType.__members__.get(text.strip().upper())
    if member is None:
        raise ValueError(f"unknown price type {text!r}; one of {', '.join(PriceType)}")
    return member


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
    parser.add_argument(
        "--api",
        choices=("v2", "v3"),
        help="WEEX's protocol generation (default: $WEEX_API, else the one a /v2/ or /v3/ URL "
        "names, else v2)",
    )
    _retry_option(parser)


def _retry_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-retries",
        type=_checked(non_negative_int),
        default=5,
        metavar="N",
        help="reconnect attempts in a row before giving up with exit code 1 (default: 5); a "
        "server the first attempt cannot reach fails at once",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _global_options(parser, defaults=True)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    def command(name: str, help_text: str, *aliases: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, aliases=aliases)
        _global_options(sub, defaults=False)
        sub.set_defaults(command=name)  # the name, also when called by an alias
        return sub

    demo = command(
        "demo", "live terminal dashboard: tickers, order book, trades, health", "dashboard"
    )
    demo.add_argument(
        "symbols",
        nargs="*",
        type=_checked(symbol),
        default=list(DEMO_SYMBOLS),
        metavar="SYMBOL",
        help=f"contracts to show (default: {' '.join(DEMO_SYMBOLS)})",
    )
    source = demo.add_mutually_exclusive_group()
    source.add_argument("--live", action="store_true", help="stream from the real WEEX exchange")
    source.add_argument(
        "--url",
        type=_checked(url),
        metavar="URL",
        help="stream from this public endpoint instead, e.g. one started by 'weex-ws simulate'",
    )
    source.add_argument(
        "--nats",
        type=_checked(nats_url),
        metavar="URL",
        help="read what 'weex-ws relay' publishes to NATS JetStream at URL instead "
        "(needs weex-ws[nats])",
    )
    demo.add_argument(
        "--prefix", default="weex", help="with --nats: the relays' subject prefix (default: weex)"
    )
    demo.add_argument(
        "--lookback",
        type=_checked(positive_float),
        default=30.0,
        metavar="S",
        help="with --nats: start the book and trades S seconds back, so the book starts from "
        "a relay's periodic snapshot at once; more than the relay's --snapshot-interval "
        "(default: 30)",
    )
    demo.add_argument(
        "--depth", type=_checked(book_depth), default=10, metavar="N", help="ladder levels"
    )
    demo.add_argument(
        "--api",
        choices=("v2", "v3"),
        help="WEEX's protocol generation, of the built-in simulator too (default: $WEEX_API, "
        "else the one a /v2/ or /v3/ URL names, else v2)",
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

    _relay_commands(command)

    simulate = command(
        "simulate", "run the built-in WEEX simulator in the foreground (Ctrl-C stops it)"
    )
    simulate.add_argument(
        "symbols",
        nargs="*",
        type=_checked(symbol),
        default=list(DEMO_SYMBOLS),
        metavar="SYMBOL",
        help=f"contracts it lists (default: {' '.join(DEMO_SYMBOLS)})",
    )
    simulate.add_argument(
        "--port",
        type=_checked(port),
        default=SIMULATOR_PORT,
        metavar="N",
        help=f"TCP port on 127.0.0.1 (default: {SIMULATOR_PORT}; 0 picks a free one)",
    )
    simulate.add_argument(
        "--contracts",
        type=_checked(positive_int),
        metavar="N",
        help="a whole-exchange feed of N contracts (the SYMBOLs, then made-up ones), each "
        "channel at a WEEX-like rate: ticker ~5/s, depth ~10/s, trades in bursts",
    )
    simulate.add_argument(
        "--flood",
        action="store_true",
        help="push the feed as fast as the subscribers read it (for benchmarks)",
    )
    simulate.add_argument(
        "--api",
        choices=("v2", "v3"),
        help="the protocol generation of the URLs it prints (both are served; default: "
        "$WEEX_API, else v2)",
    )
    simulate.add_argument(
        "--sent-log",
        metavar="FILE",
        help="write a line per record the feed sends (channel, digest; with --contracts or "
        "--flood), to check that every record reached a consumer",
    )
    simulate.add_argument(
        "--duration", type=_checked(positive_float), metavar="S", help="stop after S seconds"
    )
    return parser


def _relay_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    relay = command("relay", "publish SYMBOL...'s records to NATS JetStream (needs weex-ws[nats])")
    relay.add_argument("symbols", nargs="*", type=_checked(symbol), metavar="SYMBOL")
    relay.add_argument(
        "--all",
        "--symbols-file",
        dest="all",
        metavar="FILE|LIST",
        help="relay every contract listed: a file with one symbol per line (# comments), "
        "or a list such as cmt_btcusdt,cmt_ethusdt",
    )
    relay.add_argument(
        "--channels",
        type=_checked(relay_channel_kinds),
        default=RECORD_CHANNELS,
        metavar="LIST",
        help="which channels, comma-separated: ticker, depth, trades, kline (per symbol), "
        "account, positions, orders, fills (private: need WEEX_API_KEY, WEEX_SECRET_KEY, "
        "WEEX_PASSPHRASE) (default: ticker,depth,trades)",
    )
    relay.add_argument(
        "--depth", type=_checked(wire_depth), default=15, metavar="15|200", help="depth channel"
    )
    relay.add_argument(
        "--interval",
        type=_checked(kline_intervals),
        default=(KlineInterval.MINUTE_1,),
        metavar="LIST",
        help="kline intervals, comma-separated (default: MINUTE_1)",
    )
    relay.add_argument(
        "--price-type",
        type=_checked(kline_price_type),
        default=PriceType.LAST_PRICE,
        metavar="LAST_PRICE|MARK_PRICE",
        help="which price the klines follow (default: LAST_PRICE)",
    )
    relay.add_argument(
        "--shard",
        type=_checked(parse_shard),
        metavar="K/N",
        help="relay only shard K of N: the contracts a stable hash puts there (all channels "
        "of a contract together; private channels in shard 1), so N relays cover the feed",
    )
    _nats_option(relay)
    relay.add_argument("--stream", default="WEEX", help="JetStream stream (default: WEEX)")
    relay.add_argument("--prefix", default="weex", help="subject prefix (default: weex)")
    relay.add_argument(
        "--max-age",
        type=_checked(positive_float),
        metavar="S",
        help="the stream keeps messages S seconds (default: no limit; an existing stream "
        "is updated)",
    )
    relay.add_argument(
        "--retention",
        choices=("limits", "interest", "workqueue"),
        help="the stream's retention policy (default: limits for a new stream; an existing "
        "stream is updated, or the relay says why JetStream will not)",
    )
    relay.add_argument(
        "--duplicate-window",
        type=_checked(positive_float),
        default=120.0,
        metavar="S",
        help="a new stream's de-duplication window (default: 120)",
    )
    relay.add_argument(
        "--outbox",
        type=_checked(positive_int),
        default=10_000,
        metavar="N",
        help="records held while NATS is slow or away; beyond that the oldest are dropped "
        "and flagged as a gap (default: 10000)",
    )
    relay.add_argument(
        "--window",
        type=_checked(positive_int),
        default=4000,
        metavar="N",
        help="publishes awaiting JetStream's ack at once (default: 4000)",
    )
    relay.add_argument(
        "--hold-back",
        type=_checked(non_negative_float),
        default=1.0,
        metavar="S",
        help="publish each channel's records from S seconds after it is (re)subscribed, so a "
        "second relay of the shard that lags by less stores the earlier ones first "
        "(default: 1; 0: at once)",
    )
    relay.add_argument(
        "--quiet",
        action="store_true",
        help="no start line, status line or summary on stderr (warnings still show)",
    )
    relay.add_argument(
        "--snapshot-interval",
        type=_checked(positive_float),
        default=10.0,
        metavar="S",
        help="publish each order book as a SNAPSHOT record every S seconds (default: 10)",
    )
    _connection_options(relay, private=False)
    relay.add_argument(
        "--private-url",
        type=_checked(url),
        metavar="URL",
        help="private endpoint, for the private channels (default: $WEEX_WS_PRIVATE_URL or WEEX's)",
    )
    relay.add_argument(
        "--duration", type=_checked(positive_float), metavar="S", help="stop after S seconds"
    )

    tail = command("tail", "print records relayed to NATS JetStream for SUBJECT...")
    tail.add_argument("subjects", nargs="+", metavar="SUBJECT", help="e.g. weex.ticker.* weex.>")
    _nats_option(tail)
    tail.add_argument(
        "--deliver",
        choices=("new", "all", "last"),
        default="new",
        help="start with new messages (default), all stored ones, or the last one",
    )
    tail.add_argument(
        "--since",
        type=_checked(positive_float),
        metavar="S",
        help="start with the messages of the last S seconds (instead of --deliver)",
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    _stop_options(tail, "stop after N messages")


def _nats_option(parser: argparse.ArgumentParser) -> None:
    """Every command that talks to NATS is told where: no command assumes a local server."""
    parser.add_argument(
        "--nats",
        required=True,
        type=_checked(nats_url),
        metavar="URL",
        help="NATS server, e.g. nats://127.0.0.1:4222",
    )
