"""The sans-IO NATS client core (`weex_proto.nats_protocol`): the handshake, what the server
sends (`MSG`, `HMSG`, `PING`, `-ERR`), bytes that are not NATS, the secrets, and the bytes it
writes, checked against the examples of the NATS client protocol reference
(docs.nats.io, "Client Protocol")."""

from __future__ import annotations

import gc
import itertools
import json
import types
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weex_proto.nats_protocol import (
    DEFAULT_MAX_PAYLOAD,
    MAX_CONTROL_LINE,
    Connected,
    NatsConnection,
    NatsEvent,
    NatsProtocolError,
    NatsState,
    Reply,
    ServerError,
    ServerInfo,
    msg_id_headers,
)

INFO = (
    b'INFO {"server_id":"NDXYZ","version":"2.10.0","proto":1,"headers":true,'
    b'"max_payload":1048576,"auth_required":true}\r\n'
)
PASSWORD = 'pa55-Wörd"HIDDEN-PW-42'
TOKEN = "HIDDEN-TOKEN-42"


def _ready(**credentials: str) -> NatsConnection:
    """A connection past its handshake (what it sent taken)."""
    conn = NatsConnection(**credentials)
    conn.receive_data(INFO)
    conn.connect()
    conn.data_to_send()
    assert conn.receive_data(b"PONG\r\n") == [Connected()]
    return conn


def _state(conn: NatsConnection) -> NatsState:
    """The state, unnarrowed: mypy would keep the last `assert conn.state is` for good."""
    return conn.state


def _connect_options(sent: bytes) -> dict[str, Any]:
    line, ping, rest = sent.split(b"\r\n")
    assert (ping, rest) == (b"PING", b"")
    verb, _, options = line.partition(b" ")
    assert verb == b"CONNECT"
    parsed: dict[str, Any] = json.loads(options)
    return parsed


# -- the handshake --------------------------------------------------------------------------


def test_handshake_info_connect_ping_pong() -> None:
    conn = NatsConnection(user="relay", password=PASSWORD, name="weex-ws test")
    assert repr(conn) == "<NatsConnection awaiting info>"
    assert conn.max_payload == DEFAULT_MAX_PAYLOAD

    events = conn.receive_data(INFO)
    assert events == [ServerInfo(max_payload=1048576, tls_required=False, headers=True,
                                 server_id="NDXYZ")]  # fmt: skip
    assert conn.state is NatsState.INFO_RECEIVED
    assert conn.data_to_send() == b""  # nothing until the adapter says connect()

    conn.connect()
    assert _state(conn) is NatsState.CONNECTING
    options = _connect_options(conn.data_to_send())
    assert options["verbose"] is False  # no +OK per publish
    assert options["pedantic"] is False
    assert options["headers"] is True  # HPUB with Nats-Msg-Id
    assert options["no_responders"] is True  # a 503 rather than silence when JetStream is away
    assert options["protocol"] == 1
    assert options["name"] == "weex-ws test"
    assert (options["user"], options["pass"]) == ("relay", PASSWORD)
    assert "auth_token" not in options
    assert conn.data_to_send() == b""

    assert conn.receive_data(b"PONG\r\n") == [Connected()]
    assert _state(conn) is NatsState.READY
    assert conn.receive_data(b"PONG\r\n") == []  # only the first PONG says connected


def test_token_goes_into_connect_as_auth_token() -> None:
    conn = NatsConnection(token=TOKEN)
    conn.receive_data(INFO)
    conn.connect()
    options = _connect_options(conn.data_to_send())
    assert options["auth_token"] == TOKEN
    assert "user" not in options and "pass" not in options


def test_no_credentials_no_credential_fields() -> None:
    conn = NatsConnection()
    conn.receive_data(INFO)
    conn.connect()
    options = _connect_options(conn.data_to_send())
    assert not {"user", "pass", "auth_token"} & options.keys()


def test_connect_before_info_is_refused() -> None:
    conn = NatsConnection()
    with pytest.raises(NatsProtocolError):
        conn.connect()
    assert conn.data_to_send() == b""


def test_info_sets_max_payload_and_tls_required() -> None:
    conn = NatsConnection()
    [info] = conn.receive_data(b'INFO {"max_payload":2048,"tls_required":true}\r\n')
    assert info == ServerInfo(max_payload=2048, tls_required=True, headers=False, server_id="")
    offered = NatsConnection().receive_data(b'INFO {"tls_available":true}\r\n')
    assert offered == [ServerInfo(DEFAULT_MAX_PAYLOAD, False, False, "", tls_available=True)]
    assert conn.max_payload == 2048
    # A later INFO (a cluster update) is no event and changes nothing.
    conn.connect()
    assert conn.receive_data(b'INFO {"max_payload":9}\r\nPONG\r\n') == [Connected()]
    assert conn.max_payload == 2048


# -- what the server sends ------------------------------------------------------------------


def test_msg() -> None:
    conn = _ready()
    events = conn.receive_data(b"MSG _INBOX.ab.7.0 1 11\r\nHello World\r\n")
    assert events == [Reply("_INBOX.ab.7.0", b"Hello World", None)]


def test_msg_with_a_reply_field() -> None:
    """The docs' `MSG FOO.BAR 9 GREETING.34 11`: the reply subject is not the size."""
    conn = _ready()
    events = conn.receive_data(b"MSG FOO.BAR 9 GREETING.34 11\r\nHello World\r\n")
    assert events == [Reply("FOO.BAR", b"Hello World", None)]


def test_msg_payload_holding_crlf_and_operations() -> None:
    conn = _ready()
    payload = b"PING\r\nMSG x 1 3\r\n\r\n"
    events = conn.receive_data(b"MSG a.b 1 %d\r\n%s\r\nPING\r\n" % (len(payload), payload))
    assert events == [Reply("a.b", payload)]
    assert conn.data_to_send() == b"PONG\r\n"  # the PING after the message, not those inside it


def test_msg_empty_payload() -> None:
    conn = _ready()
    assert conn.receive_data(b"MSG a 1 0\r\n\r\n") == [Reply("a", b"")]


def test_hmsg_no_responders_is_status_503() -> None:
    """What nats-server sends a request's inbox when nothing listens on the subject
    (JetStream's stream is gone): a header-only message with the status line."""
    conn = _ready()
    events = conn.receive_data(b"HMSG _INBOX.ab.3.1 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n")
    assert events == [Reply("_INBOX.ab.3.1", b"", "503")]


def test_hmsg_status_with_a_description() -> None:
    conn = _ready()
    headers = b"NATS/1.0 408 Request Timeout\r\n\r\n"
    line = b"HMSG _INBOX.a 1 %d %d\r\n" % (len(headers), len(headers))
    assert conn.receive_data(line + headers + b"\r\n") == [Reply("_INBOX.a", b"", "408")]


def test_hmsg_with_headers_and_reply_field() -> None:
    """The docs' `HMSG FOO.BAR 9 BAZ.69 34 45` example."""
    conn = _ready()
    events = conn.receive_data(
        b"HMSG FOO.BAR 9 BAZ.69 34 45\r\nNATS/1.0\r\nFoodGroup: vegetable\r\n\r\nHello World\r\n"
    )
    assert events == [Reply("FOO.BAR", b"Hello World", None)]


def test_messages_split_anywhere_wait_for_the_rest() -> None:
    conn = _ready()
    data = b"MSG a 1 5\r\nab\r\nc\r\nHMSG b 1 16 18\r\nNATS/1.0 503\r\n\r\nxy\r\n"
    events: list[NatsEvent] = []
    for byte in range(len(data)):
        events += conn.receive_data(data[byte : byte + 1])
    assert events == [Reply("a", b"ab\r\nc"), Reply("b", b"xy", "503")]


def test_server_ping_queues_a_pong() -> None:
    """...and says so (`pong_queued`): the relay's ack reader sends only then, so it never
    sends the publisher's bytes for it."""
    conn = _ready()
    conn.publish("a", b"x")
    assert not conn.pong_queued
    assert conn.receive_data(b"MSG a 1 1\r\nx\r\n") == [Reply("a", b"x")]
    assert not conn.pong_queued
    assert conn.receive_data(b"PING\r\n") == []
    assert conn.pong_queued
    assert conn.data_to_send() == b"PUB a 1\r\nx\r\nPONG\r\n"
    assert not conn.pong_queued
    assert conn.data_to_send() == b""
    conn.receive_data(b"PING\r\nPING\r\n")
    assert conn.data_to_send() == b"PONG\r\nPONG\r\n"


def test_server_ping_before_connect_is_answered() -> None:
    conn = NatsConnection()
    conn.receive_data(INFO + b"PING\r\n")
    assert conn.data_to_send() == b"PONG\r\n"


def test_plus_ok_is_no_event() -> None:
    conn = _ready()
    assert conn.receive_data(b"+OK\r\n+OK\r\n") == []
    assert conn.data_to_send() == b""


def test_fatal_err_closes() -> None:
    conn = NatsConnection(user="u", password=PASSWORD)
    conn.receive_data(INFO)
    conn.connect()
    events = conn.receive_data(b"-ERR 'Authorization Violation'\r\n")
    assert events == [ServerError("Authorization Violation", fatal=True)]
    assert conn.state is NatsState.CLOSED
    assert conn.receive_data(b"PONG\r\nMSG a 1 2\r\nok\r\n") == []  # nothing after the close


@pytest.mark.parametrize(
    "text",
    [
        'Permissions Violation for Publish to "weex.ticker.X"',
        'Permissions Violation for Subscription to "_INBOX.>"',
        "Invalid Subject",
    ],
)
def test_soft_err_keeps_the_connection(text: str) -> None:
    conn = _ready()
    events = conn.receive_data(b"-ERR '%s'\r\nMSG a 1 2\r\nok\r\n" % text.encode())
    assert events == [ServerError(text, fatal=False), Reply("a", b"ok")]
    assert conn.state is NatsState.READY


@pytest.mark.parametrize(
    "text",
    ["Maximum Payload Violation", "Stale Connection", "Unknown Protocol Operation",
     "Maximum Connections Exceeded"],
)  # fmt: skip
def test_other_errs_are_fatal(text: str) -> None:
    conn = _ready()
    assert conn.receive_data(b"-ERR '%s'\r\n" % text.encode()) == [ServerError(text, True)]
    assert conn.state is NatsState.CLOSED


# -- bytes that are not NATS ----------------------------------------------------------------


_NOT_NATS = {
    "http": b"HTTP/1.1 400 Bad Request\r\n\r\n",
    "ssh": b"SSH-2.0-OpenSSH_9.6\r\n",
    "info-not-json": b"INFO not json\r\n",
    "info-a-list": b"INFO [1, 2]\r\n",
    "max-payload-null": b'INFO {"max_payload": null}\r\n',
    "max-payload-text": b'INFO {"max_payload": "lots"}\r\n',
    "max-payload-list": b'INFO {"max_payload": [1]}\r\n',
    "max-payload-0": b'INFO {"max_payload": 0}\r\n',
    "max-payload-huge": b'INFO {"max_payload": 1000000000000}\r\n',
    "max-payload-true": b'INFO {"max_payload": true}\r\n',
    "info-nested-deep": b"INFO " + b"[" * 3000 + b"\r\n",
    "empty-line": b"\r\n",
    "msg-no-fields": INFO + b"MSG\r\n\r\n",
    "msg-no-sid": INFO + b"MSG a 1\r\n",
    "msg-a-field-too-many": INFO + b"MSG a 1 b c 4\r\nabcd\r\n",
    "msg-size-x": INFO + b"MSG a 1 x\r\n",
    "msg-size-negative": INFO + b"MSG a 1 -1\r\n",
    "msg-size-underscore": INFO + b"MSG a 1 1_0\r\n0123456789\r\n",
    "msg-size-plus": INFO + b"MSG a 1 +4\r\nabcd\r\n",
    "msg-payload-longer": INFO + b"MSG a 1 2\r\nabcd\r\n",
    "hmsg-one-size": INFO + b"HMSG a 1 5\r\n",
    "hmsg-headers-past-end": INFO + b"HMSG a 1 20 10\r\nNATS/1.0\r\n\r\n",
    "hmsg-size-x": INFO + b"HMSG a 1 x 10\r\n",
    "hmsgx": INFO + b"HMSGX a 1 0 2\r\nab\r\n",
}


@pytest.mark.parametrize("data", _NOT_NATS.values(), ids=_NOT_NATS.keys())
def test_not_nats_is_an_error_and_closes(data: bytes) -> None:
    conn = NatsConnection()
    with pytest.raises(NatsProtocolError):
        conn.receive_data(data)
    assert conn.state is NatsState.CLOSED
    assert conn.receive_data(INFO) == []


def test_a_control_line_past_the_limit_is_an_error_whole_or_in_pieces() -> None:
    """Past `MAX_CONTROL_LINE` bytes without an end of line: an error, not a growing buffer;
    and the same line arriving with its end is refused just the same."""
    conn = NatsConnection()
    piece = b"x" * 1000
    with pytest.raises(NatsProtocolError):  # noqa: PT012 - the error comes at some piece
        for _ in range(MAX_CONTROL_LINE // len(piece) + 2):
            conn.receive_data(piece)
            assert len(conn._buffer) <= MAX_CONTROL_LINE
    assert conn.state is NatsState.CLOSED

    long_info = b'INFO {"server_id":"%s"}\r\n' % (b"x" * MAX_CONTROL_LINE)
    conn = NatsConnection()
    with pytest.raises(NatsProtocolError):
        conn.receive_data(long_info)
    assert conn.state is NatsState.CLOSED


def test_a_control_line_at_the_limit_is_taken() -> None:
    padding = MAX_CONTROL_LINE - len(b'INFO {"server_id":""}')
    line = b'INFO {"server_id":"%s"}' % (b"x" * padding)
    assert len(line) == MAX_CONTROL_LINE
    conn = NatsConnection()
    [info] = conn.receive_data(line + b"\r\n")
    assert isinstance(info, ServerInfo)


def test_a_size_past_max_payload_is_an_error_before_the_payload() -> None:
    """A size the server would never send is refused on its control line: the parser does
    not wait (and buffer) for a gigabyte."""
    conn = NatsConnection()
    conn.receive_data(b'INFO {"max_payload":1024,"headers":true}\r\n')
    with pytest.raises(NatsProtocolError, match="bytes"):
        conn.receive_data(b"MSG a 1 1000000000\r\nxx")
    assert conn.state is NatsState.CLOSED

    conn = NatsConnection()
    conn.receive_data(b'INFO {"max_payload":1024,"headers":true}\r\n')
    with pytest.raises(NatsProtocolError):
        conn.receive_data(b"HMSG a 1 12 1000000000\r\n")


@given(chunks=st.lists(st.binary(max_size=3000), max_size=20))
def test_any_bytes_end_in_events_or_a_protocol_error_with_a_bounded_buffer(
    chunks: list[bytes],
) -> None:
    conn = _ready()
    for chunk in chunks:
        try:
            conn.receive_data(chunk)
        except NatsProtocolError:
            assert conn.state is NatsState.CLOSED
            return
        # A whole message may wait for the rest of its payload; nothing more than that.
        assert len(conn._buffer) <= MAX_CONTROL_LINE + 2 + conn.max_payload + 2


# -- secrets --------------------------------------------------------------------------------


def _reachable(root: object) -> Iterator[object]:
    """Every object reachable from `root` through references, short of classes, modules and
    functions (the code, not this connection's data)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(
            obj, type | types.ModuleType | types.FunctionType | types.BuiltinFunctionType
        ):
            continue
        seen.add(id(obj))
        yield obj
        stack.extend(gc.get_referents(obj))


def _assert_hidden(conn: NatsConnection) -> None:
    """No repr of anything reachable shows a secret (their `HIDDEN-` parts survive any
    escaping: JSON's, a bytes repr's)."""
    for obj in _reachable(conn):
        if type(obj) is str:
            continue  # the secret itself, held (hidden) by the credentials
        shown = repr(obj)
        assert "HIDDEN-" not in shown, f"{type(obj).__name__} shows a secret: {shown[:200]}"


@pytest.mark.parametrize("credentials", [{"user": "u", "password": PASSWORD}, {"token": TOKEN}])
def test_repr_never_shows_the_secret(credentials: dict[str, str]) -> None:
    conn = NatsConnection(**credentials)
    _assert_hidden(conn)
    conn.receive_data(INFO)
    conn.connect()  # CONNECT, with the secret, queued but not yet taken
    _assert_hidden(conn)
    assert b"HIDDEN-" in conn.data_to_send()  # it does go out, in CONNECT
    _assert_hidden(conn)
    conn.receive_data(b"PONG\r\n")
    _assert_hidden(conn)
    assert "<NatsConnection" in repr(conn)


# -- what we send ---------------------------------------------------------------------------


def test_hpub_bytes_are_the_docs_examples() -> None:
    """docs.nats.io, Client Protocol, HPUB: `HPUB <subject> [reply-to] <#header bytes>
    <#total bytes>␍␊[headers]␍␊␍␊[payload]␍␊`, the header size counting the blank line."""
    conn = _ready()
    conn.publish("FOO", b"Hello NATS!", headers=b"NATS/1.0\r\nBar: Baz\r\n\r\n")
    assert conn.data_to_send() == b"HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n"
    headers = b"NATS/1.0\r\nBREAKFAST: donut\r\nLUNCH: burger\r\n\r\n"
    conn.publish("FRONT.DOOR", b"Knock Knock", reply="JOKE.22", headers=headers)
    assert conn.data_to_send() == b"HPUB FRONT.DOOR JOKE.22 45 56\r\n" + headers + (
        b"Knock Knock\r\n"
    )
    conn.publish("NOTIFY", b"", headers=b"NATS/1.0\r\nBar: Baz\r\n\r\n")
    assert conn.data_to_send() == b"HPUB NOTIFY 22 22\r\nNATS/1.0\r\nBar: Baz\r\n\r\n\r\n"


def test_pub_bytes_are_the_docs_examples() -> None:
    """docs.nats.io, Client Protocol, PUB: `PUB <subject> [reply-to] <#bytes>␍␊[payload]␍␊`."""
    conn = _ready()
    conn.publish("FOO", b"Hello NATS!")
    conn.publish("FRONT.DOOR", b"Knock Knock", reply="JOKE.22")
    conn.publish("NOTIFY", b"")
    assert conn.data_to_send() == (
        b"PUB FOO 11\r\nHello NATS!\r\n"
        b"PUB FRONT.DOOR JOKE.22 11\r\nKnock Knock\r\n"
        b"PUB NOTIFY 0\r\n\r\n"
    )


def test_relay_publish_with_msg_id() -> None:
    conn = _ready()
    conn.publish("weex.ticker.BTC", b'{"a":1}', reply="_INBOX.x.5.0", headers=msg_id_headers("i7"))
    block = b"NATS/1.0\r\nNats-Msg-Id: i7\r\n\r\n"
    assert conn.data_to_send() == (
        b"HPUB weex.ticker.BTC _INBOX.x.5.0 %d %d\r\n%s{\"a\":1}\r\n" % (len(block), len(block) + 7,
                                                                          block)
    )  # fmt: skip


def test_sub_and_unsub() -> None:
    conn = _ready()
    assert conn.subscribe("_INBOX.ab.>") == 1
    assert conn.subscribe("FOO") == 2
    conn.unsubscribe(1)
    assert conn.data_to_send() == b"SUB _INBOX.ab.> 1\r\nSUB FOO 2\r\nUNSUB 1\r\n"


@pytest.mark.parametrize("subject", ["", "a b", "a\r\nPUB x 1", "a\tb"])
def test_subscribe_refuses_what_is_not_a_subject(subject: str) -> None:
    conn = _ready()
    with pytest.raises(ValueError, match="subject"):
        conn.subscribe(subject)
    assert conn.data_to_send() == b""


def test_client_ping() -> None:
    conn = _ready()
    conn.ping()
    assert conn.data_to_send() == b"PING\r\n"


# -- any stream of server operations, split anywhere ----------------------------------------

_token = st.text("abcXYZ019_-$", min_size=1, max_size=8)
_subject = st.lists(_token, min_size=1, max_size=4).map(".".join)
_payload = st.one_of(
    st.binary(max_size=64),
    st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b"x", b"MSG a 1 1\r\n", b"PING\r\n"]),
             max_size=12).map(b"".join),
)  # fmt: skip
_header_block = st.one_of(
    st.just(b"NATS/1.0\r\n\r\n"),
    st.sampled_from([b"503", b"408 Request Timeout", b"100 Idle Heartbeat"]).map(
        lambda status: b"NATS/1.0 " + status + b"\r\n\r\n"
    ),
    st.lists(st.tuples(_token, _token), min_size=1, max_size=3).map(
        lambda pairs: (
            b"NATS/1.0\r\n"
            + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in pairs)
            + b"\r\n"
        )
    ),
)


@st.composite
def _operation(draw: st.DrawFn) -> tuple[bytes, NatsEvent | None, bool]:
    """(the bytes of one server operation, the event it gives after the first INFO, whether
    it asks for a PONG)."""
    kind = draw(st.sampled_from(["INFO", "PING", "PONG", "+OK", "MSG", "HMSG", "-ERR"]))
    if kind == "INFO":
        server_id = draw(_token)
        return b'INFO {"server_id":"%s","headers":true}\r\n' % server_id.encode(), None, False
    if kind == "PING":
        return b"PING\r\n", None, True
    if kind in ("PONG", "+OK"):
        return kind.encode() + b"\r\n", None, False
    if kind == "-ERR":
        text = f'Permissions Violation for Publish to "{draw(_subject)}"'
        return b"-ERR '%s'\r\n" % text.encode(), ServerError(text, False), False
    subject, sid = draw(_subject), draw(st.integers(1, 99))
    reply = draw(st.one_of(st.just(""), _subject.map(lambda s: s + " ")))
    payload = draw(_payload)
    head = f"{subject} {sid} {reply}".encode()
    if kind == "MSG":
        return b"MSG %s%d\r\n%s\r\n" % (head, len(payload), payload), Reply(subject, payload), False
    headers = draw(_header_block)
    status = headers[9:12].decode() if headers[9:12].isdigit() else None
    total = len(headers) + len(payload)
    data = b"HMSG %s%d %d\r\n%s%s\r\n" % (head, len(headers), total, headers, payload)
    return data, Reply(subject, payload, status), False


@given(
    first_info=_operation().filter(lambda op: op[0].startswith(b"INFO")),
    operations=st.lists(_operation(), max_size=25),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
)
def test_any_operations_split_anywhere_give_the_same_events(
    first_info: tuple[bytes, NatsEvent | None, bool],
    operations: list[tuple[bytes, NatsEvent | None, bool]],
    cuts: list[int],
) -> None:
    stream = first_info[0] + b"".join(data for data, _, _ in operations)
    expected: list[NatsEvent] = [NatsConnection().receive_data(first_info[0])[0]]
    expected += [event for _, event, _ in operations if event is not None]
    pongs = sum(pong for _, _, pong in operations)

    whole = NatsConnection()
    assert whole.receive_data(stream) == expected
    assert whole.data_to_send() == b"PONG\r\n" * pongs

    split = NatsConnection()
    bounds = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    events: list[NatsEvent] = []
    for start, stop in itertools.pairwise(bounds):
        events += split.receive_data(stream[start:stop])
    assert events == expected
    assert split.data_to_send() == b"PONG\r\n" * pongs
    assert split._buffer == b""
    assert split.state is whole.state is NatsState.INFO_RECEIVED
