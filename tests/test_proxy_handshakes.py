"""The sans-IO proxy handshakes, byte by byte: what they send, what they make of every reply.

Replies are written here from RFC 9110 (CONNECT) and RFC 1928/1929 (SOCKS5), not taken from the
code under test. Hostile replies (garbage, oversized headers, truncation) must end in a
`ProxyError`, never another exception or a hang, and no error text may carry the credentials.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weex_proto.errors import (
    LocalProtocolError,
    ProxyAuthenticationError,
    ProxyConnectionError,
    ProxyError,
    ProxyProtocolError,
    ProxyTunnelRefusedError,
)
from weex_proto.proxy import (
    MAX_REPLY_SIZE,
    HttpConnectHandshake,
    ProxyHandshake,
    Socks5Handshake,
    TunnelEstablished,
    parse_proxy_url,
    proxy_handshake,
)

PASSWORD = "pa:ss@w0rd"
HTTP = parse_proxy_url("http://alice:pa%3Ass%40w0rd@10.0.0.1:3128")
HTTP_ANONYMOUS = parse_proxy_url("http://10.0.0.1:3128")
SOCKS = parse_proxy_url("socks5h://alice:pa%3Ass%40w0rd@10.0.0.1:1080")
SOCKS_ANONYMOUS = parse_proxy_url("socks5://10.0.0.1:1080")
SECRETS = (PASSWORD, base64.b64encode(f"alice:{PASSWORD}".encode()).decode())
WEBSOCKET_BYTES = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"


def feed_bytewise(handshake: ProxyHandshake, reply: bytes) -> TunnelEstablished | None:
    """Feed `reply` one byte at a time; the event, which must come with the last byte only."""
    for index in range(len(reply)):
        event = handshake.receive_data(reply[index : index + 1])
        if event is not None:
            assert index == len(reply) - 1, f"tunnel up after {index + 1} of {len(reply)} bytes"
            return event
    return None


def assert_clean(error: BaseException) -> None:
    for secret in SECRETS:
        assert secret not in str(error)
        assert secret not in repr(error)


# --------------------------------------------------------------------------- HTTP CONNECT


def test_connect_request_names_the_target_and_sends_basic_credentials() -> None:
    handshake = HttpConnectHandshake(HTTP, "ws-contract.weex.com", 443, user_agent="ua/1")
    request = handshake.data_to_send()
    login = base64.b64encode(f"alice:{PASSWORD}".encode())
    assert request == (
        b"CONNECT ws-contract.weex.com:443 HTTP/1.1\r\n"
        b"Host: ws-contract.weex.com:443\r\n"
        b"User-Agent: ua/1\r\n"
        b"Proxy-Authorization: Basic " + login + b"\r\n\r\n"
    )
    assert handshake.data_to_send() == b""


def test_connect_request_without_credentials_and_to_an_ipv6_target() -> None:
    request = HttpConnectHandshake(HTTP_ANONYMOUS, "2001:db8::1", 8443).data_to_send()
    assert request == b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n"


def test_a_200_reply_fed_byte_by_byte_opens_the_tunnel_at_its_last_byte() -> None:
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    reply = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 squid\r\n\r\n"
    assert feed_bytewise(handshake, reply) == TunnelEstablished(b"")
    with pytest.raises(LocalProtocolError):
        handshake.receive_data(b"more")


def test_interim_1xx_replies_are_skipped_and_http_1_0_is_fine() -> None:
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    event = feed_bytewise(handshake, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n")
    assert event == TunnelEstablished(b"")


@given(cut=st.integers(min_value=0, max_value=len(WEBSOCKET_BYTES)), split=st.data())
def test_bytes_right_after_the_200_are_handed_on_not_lost(cut: int, split: st.DataObject) -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    # b"" would mean end of stream: the first read holds at least one byte
    at = split.draw(st.integers(min_value=1, max_value=len(reply) - 1), label="first read")
    assert handshake.receive_data(reply[:at]) is None
    event = handshake.receive_data(reply[at:] + WEBSOCKET_BYTES[:cut])
    assert event == TunnelEstablished(WEBSOCKET_BYTES[:cut])


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(403, False), (400, False), (405, False), (502, True), (503, True), (504, True), (429, True)],
)
def test_other_statuses_are_refusals_retryable_when_the_exchange_may_come_back(
    status: int, retryable: bool
) -> None:
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    with pytest.raises(ProxyTunnelRefusedError) as caught:
        feed_bytewise(handshake, f"HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\n\r\n".encode())
    assert caught.value.status_code == status
    assert caught.value.retryable is retryable
    assert f"HTTP {status} Nope" in str(caught.value)
    assert caught.value.proxy == "http://10.0.0.1:3128"
    assert_clean(caught.value)
    with pytest.raises(LocalProtocolError):
        handshake.receive_data(b"")


def test_407_is_an_authentication_error_that_is_not_retried() -> None:
    reply = (
        b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n'
    )
    with pytest.raises(ProxyAuthenticationError, match="refused our credentials") as caught:
        feed_bytewise(HttpConnectHandshake(HTTP, "weex.test", 443), reply)
    assert not caught.value.retryable
    assert_clean(caught.value)
    with pytest.raises(ProxyAuthenticationError, match="user:password@"):
        feed_bytewise(HttpConnectHandshake(HTTP_ANONYMOUS, "weex.test", 443), reply)


def test_407_asking_for_a_scheme_we_lack_says_so() -> None:
    reply = (
        b"HTTP/1.1 407 Auth\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\n\r\n"
    )
    with pytest.raises(ProxyAuthenticationError, match=r"NTLM or Negotiate.*only Basic"):
        HttpConnectHandshake(HTTP, "weex.test", 443).receive_data(reply)


def test_a_proxy_that_hangs_up_is_a_retryable_connection_error() -> None:
    with pytest.raises(ProxyConnectionError, match="without answering") as caught:
        HttpConnectHandshake(HTTP, "weex.test", 443).receive_data(b"")
    assert caught.value.retryable
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    assert handshake.receive_data(b"HTTP/1.1 200 OK\r\nVia: x") is None
    with pytest.raises(ProxyConnectionError, match="middle of its reply"):
        handshake.receive_data(b"")


def test_oversized_headers_are_refused_before_the_buffer_grows_without_end() -> None:
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    handshake.receive_data(b"HTTP/1.1 200 OK\r\n")
    header = b"X-Padding: " + b"a" * 1000 + b"\r\n"
    fed = 0
    with pytest.raises(ProxyProtocolError, match="headers over 16384 bytes") as caught:  # noqa: PT012
        while fed <= 2 * MAX_REPLY_SIZE:
            handshake.receive_data(header)
            fed += len(header)
    assert fed <= MAX_REPLY_SIZE + len(header)
    assert not caught.value.retryable


def reply_head(size: int, *, headers: int = 1, status: bytes = b"200 OK") -> bytes:
    """A valid reply head (status line, `headers` padding headers, blank line) of `size` bytes."""
    start, end = b"HTTP/1.1 " + status + b"\r\n", b"\r\n"
    names = [f"X-Pad-{number}: ".encode() for number in range(headers)]
    room = size - len(start) - len(end) - sum(len(name) + 2 for name in names)
    assert room >= headers, "too small for that many headers"
    values = [b"a" * (room // headers + (number < room % headers)) for number in range(headers)]
    head = (
        start
        + b"".join(name + value + b"\r\n" for name, value in zip(names, values, strict=True))
        + end
    )
    assert len(head) == size
    return head


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` as reads ending at `cuts` (no empty read: that would mean end of stream)."""
    edges = sorted({cut for cut in cuts if 0 < cut < len(data)})
    reads = [data[a:b] for a, b in zip([0, *edges], [*edges, len(data)], strict=True)]
    return reads if data else []


def test_a_whole_reply_with_headers_over_the_limit_in_one_read_is_refused() -> None:
    for head in (reply_head(20 * 1024), reply_head(20 * 1024, headers=400)):
        handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
        with pytest.raises(ProxyProtocolError, match="headers over 16384 bytes") as caught:
            handshake.receive_data(head + WEBSOCKET_BYTES)
        assert not caught.value.retryable
        assert_clean(caught.value)
        with pytest.raises(LocalProtocolError):
            handshake.receive_data(b"")


def test_the_limit_counts_the_head_not_the_tunnel_bytes_after_it() -> None:
    tunnel_bytes = WEBSOCKET_BYTES * 2000  # far more than MAX_REPLY_SIZE, in the same read
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    event = handshake.receive_data(reply_head(MAX_REPLY_SIZE) + tunnel_bytes)
    assert event == TunnelEstablished(tunnel_bytes)
    with pytest.raises(ProxyProtocolError, match="headers over"):
        HttpConnectHandshake(HTTP, "weex.test", 443).receive_data(
            reply_head(MAX_REPLY_SIZE + 1) + tunnel_bytes
        )


def test_an_oversized_refusal_is_refused_for_its_size_whatever_its_status() -> None:
    head = reply_head(MAX_REPLY_SIZE + 1, status=b"407 Proxy Authentication Required")
    with pytest.raises(ProxyProtocolError, match="headers over"):
        HttpConnectHandshake(HTTP, "weex.test", 443).receive_data(head)


def test_interim_replies_count_towards_the_limit() -> None:
    interim = reply_head(MAX_REPLY_SIZE // 2, status=b"100 Continue")
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    with pytest.raises(ProxyProtocolError, match="headers over"):
        handshake.receive_data(interim + reply_head(MAX_REPLY_SIZE // 2 + 1))
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    event = handshake.receive_data(interim + reply_head(MAX_REPLY_SIZE // 2) + b"tail")
    assert event == TunnelEstablished(b"tail")


@given(
    size=st.one_of(
        st.integers(min_value=MAX_REPLY_SIZE - 64, max_value=MAX_REPLY_SIZE + 64),
        st.integers(min_value=1024, max_value=3 * MAX_REPLY_SIZE),
    ),
    headers=st.integers(min_value=1, max_value=60),
    trailing=st.binary(max_size=64),
    cuts=st.lists(st.integers(min_value=0, max_value=4 * MAX_REPLY_SIZE), max_size=8),
)
def test_any_split_of_a_reply_into_reads_gives_the_same_verdict(
    size: int, headers: int, trailing: bytes, cuts: list[int]
) -> None:
    """Over the limit is refused, at or under it opens the tunnel with the bytes after it."""
    data = reply_head(size, headers=headers) + trailing
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    reads = split_at(data, cuts)
    if size > MAX_REPLY_SIZE:
        with pytest.raises(ProxyProtocolError, match="headers over"):  # noqa: PT012
            for chunk in reads:
                assert handshake.receive_data(chunk) is None
        return
    for number, chunk in enumerate(reads):
        event = handshake.receive_data(chunk)
        if event is not None:
            assert event.trailing_data + b"".join(reads[number + 1 :]) == trailing
            return
    raise AssertionError("the tunnel never opened")


def test_garbage_and_a_socks_reply_are_protocol_errors() -> None:
    with pytest.raises(ProxyProtocolError, match="not valid HTTP"):
        HttpConnectHandshake(HTTP, "weex.test", 443).receive_data(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(ProxyProtocolError, match="socks5://"):
        HttpConnectHandshake(HTTP, "weex.test", 443).receive_data(b"\x05\xff")


@given(st.lists(st.binary(max_size=64), max_size=8), st.booleans())
def test_any_reply_ends_in_a_tunnel_a_proxy_error_or_more_waiting(
    chunks: list[bytes], hang_up: bool
) -> None:
    handshake = HttpConnectHandshake(HTTP, "weex.test", 443)
    try:
        for chunk in [*chunks, b""] if hang_up else chunks:
            if handshake.receive_data(chunk) is not None:
                return
    except ProxyError as exc:
        assert_clean(exc)


# --------------------------------------------------------------------------- SOCKS5


def test_socks5_without_login_offers_no_auth_and_connects_to_an_ip() -> None:
    handshake = Socks5Handshake(SOCKS_ANONYMOUS, "192.0.2.7", 443)
    assert handshake.data_to_send() == b"\x05\x01\x00"
    assert feed_bytewise(handshake, b"\x05\x00") is None
    assert handshake.data_to_send() == b"\x05\x01\x00\x01\xc0\x00\x02\x07\x01\xbb"
    event = feed_bytewise(handshake, b"\x05\x00\x00\x01\x0a\x00\x00\x01\x04\x38")
    assert event == TunnelEstablished(b"")


def test_socks5h_logs_in_and_sends_the_name_for_the_proxy_to_resolve() -> None:
    handshake = Socks5Handshake(SOCKS, "ws.weex.test", 8443)
    assert handshake.data_to_send() == b"\x05\x02\x00\x02"
    assert feed_bytewise(handshake, b"\x05\x02") is None
    password = PASSWORD.encode()
    assert handshake.data_to_send() == b"\x01\x05alice" + bytes([len(password)]) + password
    assert feed_bytewise(handshake, b"\x01\x00") is None
    assert handshake.data_to_send() == b"\x05\x01\x00\x03\x0cws.weex.test\x20\xfb"
    # bound address as a name, then IPv6: both framed right
    reply = b"\x05\x00\x00\x03\x05proxy\x04\x38"
    assert feed_bytewise(handshake, reply) == TunnelEstablished(b"")


def test_socks5_ipv6_target_and_reply() -> None:
    handshake = proxy_handshake(SOCKS_ANONYMOUS, "2001:db8::1", 443)
    handshake.data_to_send()
    handshake.receive_data(b"\x05\x00")
    target = bytes.fromhex("20010db8000000000000000000000001")
    assert handshake.data_to_send() == b"\x05\x01\x00\x04" + target + b"\x01\xbb"
    reply = b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x00"
    assert feed_bytewise(handshake, reply) == TunnelEstablished(b"")


@given(cut=st.integers(min_value=0, max_value=len(WEBSOCKET_BYTES)))
def test_socks5_bytes_after_the_reply_are_handed_on(cut: int) -> None:
    handshake = Socks5Handshake(SOCKS_ANONYMOUS, "192.0.2.7", 443)
    # the method choice and the CONNECT reply in one read, then the exchange's bytes
    reply = b"\x05\x00" + b"\x05\x00\x00\x01\x0a\x00\x00\x01\x04\x38" + WEBSOCKET_BYTES[:cut]
    assert handshake.receive_data(reply) == TunnelEstablished(WEBSOCKET_BYTES[:cut])


def test_socks5_login_refused_by_status_or_by_hanging_up() -> None:
    for answer in (b"\x01\x01", b"\x05\x01"):  # RFC 1929 version 1, and servers that say 5
        handshake = Socks5Handshake(SOCKS, "weex.test", 443)
        handshake.receive_data(b"\x05\x02")
        with pytest.raises(ProxyAuthenticationError, match="refused our user name") as caught:
            feed_bytewise(handshake, answer)
        assert not caught.value.retryable
        assert_clean(caught.value)
    handshake = Socks5Handshake(SOCKS, "weex.test", 443)
    handshake.receive_data(b"\x05\x02")
    with pytest.raises(ProxyAuthenticationError, match="hung up"):
        handshake.receive_data(b"")
    lenient = Socks5Handshake(SOCKS, "weex.test", 443)
    lenient.receive_data(b"\x05\x02")
    lenient.data_to_send()
    assert lenient.receive_data(b"\x05\x00") is None  # version 5 with status 0: logged in
    assert lenient.data_to_send().startswith(b"\x05\x01\x00\x03")


LOGIN_ADVICE = r"requires a username and password .*socks5://user:pass@host:port"


def test_socks5_no_acceptable_method_is_an_authentication_error() -> None:
    handshake = Socks5Handshake(SOCKS_ANONYMOUS, "weex.test", 443)
    assert handshake.data_to_send() == b"\x05\x01\x00"  # "no authentication", nothing else
    with pytest.raises(ProxyAuthenticationError, match=LOGIN_ADVICE) as caught:
        feed_bytewise(handshake, b"\x05\xff")
    assert not caught.value.retryable
    assert "no acceptable methods" in str(caught.value)
    with pytest.raises(ProxyAuthenticationError, match="none of our") as caught:
        Socks5Handshake(SOCKS, "weex.test", 443).receive_data(b"\x05\xff")
    assert "user:pass@" not in str(caught.value)  # we gave a login: the advice would be wrong
    assert_clean(caught.value)


def test_socks5_hanging_up_on_a_greeting_without_login_says_a_login_is_required() -> None:
    handshake = Socks5Handshake(parse_proxy_url("socks5h://127.0.0.1:1080"), "weex.test", 443)
    assert handshake.data_to_send() == b"\x05\x01\x00"
    with pytest.raises(ProxyAuthenticationError, match=LOGIN_ADVICE.replace("5:", "5h:")) as caught:
        handshake.receive_data(b"")
    assert not caught.value.retryable
    assert "closed the connection" in str(caught.value)


def test_socks5_hanging_up_anywhere_else_stays_a_connection_error() -> None:
    # before our greeting went out: it never saw what we offer
    with pytest.raises(ProxyConnectionError):
        Socks5Handshake(SOCKS_ANONYMOUS, "weex.test", 443).receive_data(b"")
    # we offered a login too: a hang-up is no answer to "which method"
    offering = Socks5Handshake(SOCKS, "weex.test", 443)
    offering.data_to_send()
    with pytest.raises(ProxyConnectionError, match="before answering") as caught:
        offering.receive_data(b"")
    assert caught.value.retryable
    # it accepted "no authentication", then hung up before answering the CONNECT
    accepted = Socks5Handshake(SOCKS_ANONYMOUS, "weex.test", 443)
    accepted.data_to_send()
    assert accepted.receive_data(b"\x05\x00") is None
    accepted.data_to_send()
    with pytest.raises(ProxyConnectionError, match="before answering"):
        accepted.receive_data(b"")


SOCKS_CONVERSATION = b"\x05\x00" + b"\x05\x00\x00\x01\x0a\x00\x00\x01\x04\x38"
"""A whole answer to an anonymous client: "no authentication", then "succeeded"."""


@given(
    cut=st.integers(min_value=0, max_value=len(SOCKS_CONVERSATION) - 1),
    cuts=st.lists(st.integers(min_value=0, max_value=len(SOCKS_CONVERSATION)), max_size=4),
)
def test_socks5_a_hang_up_is_a_login_refusal_only_before_any_answer(
    cut: int, cuts: list[int]
) -> None:
    handshake = Socks5Handshake(SOCKS_ANONYMOUS, "192.0.2.7", 443)
    for chunk in split_at(SOCKS_CONVERSATION[:cut], cuts):
        handshake.data_to_send()
        assert handshake.receive_data(chunk) is None
    handshake.data_to_send()
    expected = ProxyAuthenticationError if cut == 0 else ProxyConnectionError
    with pytest.raises(ProxyError) as caught:
        handshake.receive_data(b"")
    assert type(caught.value) is expected
    assert caught.value.retryable is (expected is ProxyConnectionError)


def test_socks5_a_method_we_did_not_offer_is_a_protocol_error() -> None:
    for method in (b"\x02", b"\x01", b"\x80"):
        with pytest.raises(ProxyProtocolError, match="did not offer"):
            Socks5Handshake(SOCKS_ANONYMOUS, "weex.test", 443).receive_data(b"\x05" + method)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(1, True), (2, False), (3, True), (4, True), (5, True), (6, True), (7, False), (8, False)],
)
def test_socks5_refusals_carry_the_reply_code(code: int, retryable: bool) -> None:
    handshake = Socks5Handshake(SOCKS_ANONYMOUS, "192.0.2.7", 443)
    handshake.receive_data(b"\x05\x00")
    with pytest.raises(ProxyTunnelRefusedError) as caught:
        feed_bytewise(handshake, bytes([5, code]))  # a refusal needs no bound address
    assert caught.value.reply_code == code
    assert caught.value.retryable is retryable
    assert f"SOCKS5 reply {code}" in str(caught.value)


def test_socks5_garbage_replies() -> None:
    with pytest.raises(ProxyProtocolError, match="http:// URL"):
        Socks5Handshake(SOCKS, "weex.test", 443).receive_data(b"HTTP/1.1 400 Bad Request\r\n")
    handshake = Socks5Handshake(SOCKS_ANONYMOUS, "weex.test", 443)
    handshake.receive_data(b"\x05\x00")
    with pytest.raises(ProxyProtocolError, match="address type 9"):
        handshake.receive_data(b"\x05\x00\x00\x09\x00\x00")
    handshake = Socks5Handshake(SOCKS_ANONYMOUS, "weex.test", 443)
    handshake.receive_data(b"\x05\x00")
    with pytest.raises(ProxyTunnelRefusedError, match="unknown reply code") as caught:
        handshake.receive_data(b"\x05\x42")
    assert not caught.value.retryable


def test_socks5_hang_up_before_or_during_a_reply_is_retryable() -> None:
    with pytest.raises(ProxyConnectionError, match="before answering") as caught:
        Socks5Handshake(SOCKS_ANONYMOUS, "weex.test", 443).receive_data(b"")
    assert caught.value.retryable
    handshake = Socks5Handshake(SOCKS_ANONYMOUS, "weex.test", 443)
    handshake.receive_data(b"\x05\x00\x05\x00\x00")
    with pytest.raises(ProxyConnectionError, match="before its reply"):
        handshake.receive_data(b"")


@given(st.lists(st.binary(max_size=32), max_size=8), st.booleans(), st.booleans())
def test_socks5_any_reply_ends_in_a_tunnel_a_proxy_error_or_more_waiting(
    chunks: list[bytes], hang_up: bool, login: bool
) -> None:
    handshake = Socks5Handshake(SOCKS if login else SOCKS_ANONYMOUS, "weex.test", 443)
    try:
        for chunk in [*chunks, b""] if hang_up else chunks:
            if handshake.receive_data(chunk) is not None:
                return
            handshake.data_to_send()
    except ProxyError as exc:
        assert_clean(exc)
