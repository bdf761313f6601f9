"""The relay's NATS link (`weex_anyio.cli._nats_link.open_link`) against a real nats-server:
user/password and token authentication, refusals, a closed port, a peer that is not NATS,
and TLS with the certificate verified. Every failure is one `NatsUnavailableError` line
without the secret in it."""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path

import anyio
import anyio.abc
import anyio.streams.tls
import pytest
import trustme

from tests.natsserver import HANG_GUARD, NatsServer, running_nats_server
from tests.proxyserver import free_port
from weex_anyio.cli._nats_link import (
    NatsLink,
    NatsUnavailableError,
    open_link,
    url_credentials,
    without_credentials,
)
from weex_proto.nats_protocol import Reply, msg_id_headers

USER = "relay"
PASSWORD = "p@ss:w/rd%HIDDEN"  # every character a URL must escape
TOKEN = "HIDDEN-token-s3cr3t"
BACKENDS = ["asyncio", "trio"]

StartServer = Callable[..., NatsServer]


@pytest.fixture
def start_nats(tmp_path: Path) -> Iterator[StartServer]:
    """Starts nats-servers with the given flags; each is reaped when the test ends."""
    running: list[Generator[NatsServer, None, None]] = []

    def start(*flags: str) -> NatsServer:
        server = running_nats_server(tmp_path / f"server{len(running)}", *flags)
        running.append(server)
        return next(server)

    yield start
    for server in running:
        server.close()  # the generator's `finally` stops the process


def _run(main: Callable[[], Awaitable[None]], backend: str = "asyncio") -> None:
    async def guarded() -> None:
        with anyio.fail_after(HANG_GUARD):  # a hang guard, not a time budget
            await main()

    anyio.run(guarded, backend=backend)


def _url(server: NatsServer, credentials: str = "", scheme: str = "nats") -> str:
    return f"{scheme}://{credentials}127.0.0.1:{server.port}"


def _user_url(server: NatsServer, password: str = PASSWORD) -> str:
    return _url(server, f"{USER}:{urllib.parse.quote(password, safe='')}@")


async def _next_reply(link: NatsLink) -> Reply:
    while True:
        for event in link.conn.receive_data(await link.receive_bytes()):
            if isinstance(event, Reply):
                return event
        await link.flush()


async def _round_trip(link: NatsLink) -> None:
    """A message through the server and back on our own subscription."""
    sid = link.conn.subscribe("_INBOX.test.>")
    link.conn.publish("_INBOX.test.1", b"hello\r\nPING\r\n")
    await link.flush()
    assert await _next_reply(link) == Reply("_INBOX.test.1", b"hello\r\nPING\r\n")
    link.conn.unsubscribe(sid)
    await link.flush()


async def _refusal(url: str, **options: object) -> str:
    with pytest.raises(NatsUnavailableError) as caught:
        await open_link(url, HANG_GUARD, **options)  # type: ignore[arg-type]
    text = str(caught.value)
    assert "\n" not in text
    # No chained exception under it in a traceback (one line is the whole story).
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    return text


# -- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_password_publishes_to_jetstream_as_the_relay_does(
    start_nats: StartServer, backend: str
) -> None:
    """Through `nats://user:password@`: a stream made through the JetStream API, an HPUB
    with a `Nats-Msg-Id` acked (and acked as a duplicate the second time), and a publish
    nothing listens to answered by a 503."""
    server = start_nats("--user", USER, "--pass", PASSWORD)

    async def main() -> None:
        link = await open_link(_user_url(server), HANG_GUARD)
        try:
            conn = link.conn
            conn.subscribe("_INBOX.j.>")
            config = {"name": "T", "subjects": ["t.>"], "storage": "memory"}
            conn.publish("$JS.API.STREAM.CREATE.T", json.dumps(config).encode(), reply="_INBOX.j.0")
            await link.flush()
            created = await _next_reply(link)
            assert json.loads(created.data)["config"]["name"] == "T"

            acks = []
            for n in (1, 2):
                conn.publish("t.a", b'{"n":1}', reply=f"_INBOX.j.{n}", headers=msg_id_headers("m1"))
                await link.flush()
                acks.append(await _next_reply(link))
            assert [json.loads(ack.data) for ack in acks] == [
                {"stream": "T", "seq": 1},
                {"stream": "T", "seq": 1, "duplicate": True},
            ]
            conn.publish("u.nothing", b"x", reply="_INBOX.j.9", headers=msg_id_headers("m2"))
            await link.flush()
            assert await _next_reply(link) == Reply("_INBOX.j.9", b"", "503")
        finally:
            await link.aclose()

    _run(main, backend)


def test_scheme_less_url_with_user_and_password(start_nats: StartServer) -> None:
    server = start_nats("--user", USER, "--pass", PASSWORD)
    url = _user_url(server).removeprefix("nats://")

    async def main() -> None:
        link = await open_link(url, HANG_GUARD)
        try:
            await _round_trip(link)
        finally:
            await link.aclose()
        text = await _refusal(url.replace("HIDDEN", "WRONG"))
        assert "Authorization Violation" in text
        assert "WRONG" not in text and "w%2Frd" not in text
        closed = f"{USER}:HIDDEN@127.0.0.1:{free_port()}"
        assert "HIDDEN" not in await _refusal(closed)

    _run(main)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_password_names_the_refusal_not_the_password(
    start_nats: StartServer, backend: str
) -> None:
    server = start_nats("--user", USER, "--pass", PASSWORD)

    async def main() -> None:
        text = await _refusal(_user_url(server, "not-the-HIDDEN-one"))
        assert "Authorization Violation" in text
        assert f"nats://127.0.0.1:{server.port}" in text
        assert "HIDDEN" not in text and USER not in text
        # No credentials at all: refused just the same.
        assert "Authorization Violation" in await _refusal(_url(server))

    _run(main, backend)


def test_token(start_nats: StartServer) -> None:
    server = start_nats("--auth", TOKEN)

    async def main() -> None:
        link = await open_link(_url(server, f"{TOKEN}@"), HANG_GUARD)
        try:
            await _round_trip(link)
        finally:
            await link.aclose()
        text = await _refusal(_url(server, "HIDDEN-wrong-token@"))
        assert "Authorization Violation" in text
        assert "HIDDEN" not in text

    _run(main)


# -- what is not a NATS server --------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_closed_port_is_one_line_quickly(backend: str) -> None:
    port = free_port()

    async def main() -> None:
        text = await _refusal(f"nats://{USER}:{TOKEN}@127.0.0.1:{port}")
        assert text.startswith(f"nats://127.0.0.1:{port}: cannot reach NATS")
        assert "HIDDEN" not in text

    _run(main, backend)


Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@contextlib.asynccontextmanager
async def _peer(answer: bytes = b"", *, then_close: bool = True) -> AsyncIterator[int]:
    """A loopback TCP server sending `answer` to each connection (then closing it, or
    keeping it open and silent); its port."""

    async def serve(stream: anyio.abc.SocketStream) -> None:
        if answer:
            await stream.send(answer)
        if not then_close:
            await anyio.sleep_forever()

    async with _serving(serve) as port:
        yield port


@contextlib.asynccontextmanager
async def _serving(handler: Handler) -> AsyncIterator[int]:
    """A loopback TCP server running `handler` on each connection (closed after); its port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await handler(stream)

    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        yield port
        group.cancel_scope.cancel()


async def _read_until(stream: anyio.abc.SocketStream, end: bytes) -> bytes:
    received = b""
    while not received.endswith(end):
        received += await stream.receive()
    return received


def test_a_peer_that_is_not_nats() -> None:
    async def main() -> None:
        async with _peer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as port:
            text = await _refusal(f"nats://127.0.0.1:{port}")
        assert text.startswith(f"nats://127.0.0.1:{port}: not a NATS server")

    _run(main)


def test_a_silent_peer_is_a_timeout_not_a_hang() -> None:
    async def main() -> None:
        async with _peer(b"", then_close=False) as port:
            with pytest.raises(NatsUnavailableError, match=r"no NATS handshake within 0\.2s"):
                await open_link(f"nats://127.0.0.1:{port}", 0.2)

    _run(main)


def test_info_and_a_fatal_error_together_are_that_error() -> None:
    """A server taking no more connections sends its INFO and the -ERR in one go: the error
    is what the user reads, not a complaint about the protocol."""
    info = b'INFO {"server_id":"X","headers":true,"max_payload":1048576}\r\n'

    async def main() -> None:
        async with _peer(info + b"-ERR 'maximum connections exceeded'\r\n") as port:
            text = await _refusal(f"nats://127.0.0.1:{port}")
        assert text == (
            f"nats://127.0.0.1:{port}: NATS refused the connection: maximum connections exceeded"
        )

    _run(main)


def test_a_server_ping_during_the_handshake_is_answered() -> None:
    """A server may PING before it answers our PING: the link answers it and connects."""
    info = b'INFO {"server_id":"X","headers":true,"max_payload":1048576}\r\n'

    async def server(stream: anyio.abc.SocketStream) -> None:
        await stream.send(info)
        connect = await _read_until(stream, b"PING\r\n")
        assert connect.startswith(b"CONNECT {")
        await stream.send(b"PING\r\n")
        assert await _read_until(stream, b"PONG\r\n") == b"PONG\r\n"
        await stream.send(b"PONG\r\n")
        await anyio.sleep_forever()

    async def main() -> None:
        async with _serving(server) as port:
            link = await open_link(f"nats://127.0.0.1:{port}", HANG_GUARD)
            await link.aclose()

    _run(main)


def test_a_server_without_headers_is_refused() -> None:
    async def main() -> None:
        async with _peer(b'INFO {"server_id":"old","max_payload":1048576}\r\n') as port:
            assert "headers" in await _refusal(f"nats://127.0.0.1:{port}")

    _run(main)


@pytest.mark.parametrize("url", ["nats://127.0.0.1:http", "nats://127.0.0.1:99999"])
def test_a_bad_port_is_one_line(url: str) -> None:
    async def main() -> None:
        assert "port" in await _refusal(url)

    _run(main)


def test_other_schemes_are_refused() -> None:
    async def main() -> None:
        assert "nats:// or tls://" in await _refusal("http://127.0.0.1:4222")

    _run(main)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://u:p%40ss@host:4222", "nats://host:4222"),
        ("nats://TOKEN@host:4222", "nats://host:4222"),
        ("tls://u:pw@[::1]:4222", "tls://[::1]:4222"),
        ("u:pw@host:4222", "host:4222"),
        ("nats://u:p@ss@host", "nats://host"),
        ("nats://host:4222", "nats://host:4222"),
        ("host", "host"),
    ],
)
def test_without_credentials(url: str, shown: str) -> None:
    assert without_credentials(url) == shown


@pytest.mark.parametrize(
    ("url", "credentials"),
    [
        ("nats://u:p%40ss%2Fw%25@host:4222", {"user": "u", "password": "p@ss/w%"}),
        ("u:pw@host", {"user": "u", "password": "pw"}),
        ("nats://TOK%2Fen@host", {"token": "TOK/en"}),
        ("tls://host:4222", {}),
    ],
)
def test_url_credentials_are_decoded(url: str, credentials: dict[str, str]) -> None:
    assert url_credentials(url) == credentials


def test_nats_py_takes_the_same_credentials(start_nats: StartServer) -> None:
    """nats-py sends a URL's credentials still percent-encoded; given `url_credentials`
    (the link's reading of the URL) it connects where the link does."""
    import nats

    server = start_nats("--user", USER, "--pass", PASSWORD)
    url = _user_url(server)

    async def main() -> None:
        nc = await nats.connect(
            without_credentials(url), allow_reconnect=False, **url_credentials(url)
        )
        await nc.close()

    _run(main)


def test_the_commands_nats_py_connection_takes_an_encoded_password(
    start_nats: StartServer,
) -> None:
    """`connect_nats` (the relay's stream management, `tail`, `dashboard`) reaches a server
    whose password needs percent-encoding in the URL, as the relay's own link does."""
    from weex_anyio.cli._relay import close_nats, connect_nats

    server = start_nats("--user", USER, "--pass", PASSWORD)

    async def main() -> None:
        nc = await connect_nats(_user_url(server), reconnect=False)
        try:
            assert nc.is_connected
        finally:
            await close_nats(nc)

    _run(main)


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[trustme.CA, list[str]]:
    """A test CA and nats-server's flags for a certificate it issued for 127.0.0.1."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    return ca, ["--tls", "--tlscert", str(cert), "--tlskey", str(key)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_tls_certificate_not_trusted_is_refused(
    start_nats: StartServer, tls_files: tuple[trustme.CA, list[str]], backend: str
) -> None:
    """The server asks for TLS in its INFO (the URL says nats://); its certificate comes
    from a CA the system does not trust: verification is on, so no connection."""
    _, flags = tls_files
    server = start_nats("--user", USER, "--pass", PASSWORD, *flags)

    async def main() -> None:
        text = await _refusal(_user_url(server))
        assert text.startswith(f"nats://127.0.0.1:{server.port}: the server's TLS certificate")
        assert "not trusted" in text and "certificate" in text.split(":", 3)[-1]
        assert "HIDDEN" not in text

    _run(main, backend)


@pytest.mark.parametrize("scheme", ["nats", "tls"])
def test_tls_with_the_ca_trusted(
    start_nats: StartServer, tls_files: tuple[trustme.CA, list[str]], scheme: str
) -> None:
    ca, flags = tls_files
    server = start_nats("--user", USER, "--pass", PASSWORD, *flags)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async def main() -> None:
        url = _user_url(server).replace("nats://", f"{scheme}://")
        link = await open_link(url, HANG_GUARD, ssl_context=trusting)
        try:
            tls = link.stream.extra(anyio.streams.tls.TLSAttribute.ssl_object)  # noqa: S610
            assert tls.version() is not None
            await _round_trip(link)
        finally:
            await link.aclose()

    _run(main)


def test_tls_url_to_a_plain_server_fails_in_one_line(start_nats: StartServer) -> None:
    server = start_nats()

    async def main() -> None:
        text = await _refusal(_url(server, scheme="tls"))
        assert text == f"tls://127.0.0.1:{server.port}: the URL asks for TLS; the server has none"

    _run(main)
