"""WeexConfig: defaults from the protocol doc, env loading, validation, secret hiding, endpoints."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import attrs
import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weex_proto.config import Endpoint, WeexConfig
from weex_proto.connection import WeexConnection
from weex_proto.errors import ConfigError

FULL_ENV = {
    "WEEX_API_KEY": "env-api-key-0001",
    "WEEX_SECRET_KEY": "env-secret-key-0002",
    "WEEX_PASSPHRASE": "env-passphrase-0003",
    "WEEX_WS_PUBLIC_URL": "ws://127.0.0.1:8765/v2/ws/public",
    "WEEX_WS_PRIVATE_URL": "ws://127.0.0.1:8765/v2/ws/private",
    "WEEX_USER_AGENT": "my-bot/2.0",
}

# Long random tokens: if one shows up in a repr, it leaked (it cannot appear by coincidence).
secret_tokens = st.text(alphabet=string.ascii_letters + string.digits, min_size=16, max_size=40)


def test_defaults_are_the_documented_v2_urls() -> None:
    config = WeexConfig()
    assert config.public_url == "wss://ws-contract.weex.com/v2/ws/public"
    assert config.private_url == "wss://ws-contract.weex.com/v2/ws/private"
    assert config.user_agent
    assert config.verify_tls is True
    assert not config.has_credentials


def test_config_is_frozen() -> None:
    config = WeexConfig()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.api_key = "x"  # type: ignore[misc]


# --- secrets stay out of repr ---------------------------------------------------------------


@given(api_key=secret_tokens, secret_key=secret_tokens, passphrase=secret_tokens)
def test_repr_and_str_never_show_secrets(api_key: str, secret_key: str, passphrase: str) -> None:
    config = WeexConfig(api_key=api_key, secret_key=secret_key, passphrase=passphrase)
    for text in (repr(config), str(config)):
        assert api_key not in text
        assert secret_key not in text
        assert passphrase not in text
        assert text.count("=<set>") == 3


def test_repr_says_which_secrets_are_unset() -> None:
    text = repr(WeexConfig(api_key="k" * 20))
    assert "api_key=<set>" in text
    assert "secret_key=<unset>" in text
    assert "passphrase=<unset>" in text
    assert "wss://ws-contract.weex.com/v2/ws/public" in text  # non-secrets stay visible


# --- from_env --------------------------------------------------------------------------------


def test_from_env_reads_every_variable() -> None:
    config = WeexConfig.from_env(FULL_ENV)
    assert config == WeexConfig(
        api_key="env-api-key-0001",
        secret_key="env-secret-key-0002",
        passphrase="env-passphrase-0003",
        public_url="ws://127.0.0.1:8765/v2/ws/public",
        private_url="ws://127.0.0.1:8765/v2/ws/private",
        user_agent="my-bot/2.0",
    )
    assert config.has_credentials


def test_from_env_reads_the_protocol_generation() -> None:
    config = WeexConfig.from_env({"WEEX_API": "v3"})
    assert config.api == "v3" and config.dialect.name == "v3"
    assert config.url(False) == "wss://ws-contract.weex.com/v3/ws/public"
    assert WeexConfig.from_env({"WEEX_API": "v3"}, api="v2").dialect.name == "v2"
    with pytest.raises(ConfigError, match="api is 'v3' but the URLs are v2 URLs"):
        WeexConfig.from_env({**FULL_ENV, "WEEX_API": "v3"})
    with pytest.raises(ConfigError, match="api must be 'v2' or 'v3'"):
        WeexConfig.from_env({"WEEX_API": "v4"})


def test_from_env_with_empty_mapping_gives_defaults() -> None:
    assert WeexConfig.from_env({}) == WeexConfig()


def test_from_env_treats_empty_variables_as_missing() -> None:
    env = {name: "" for name in FULL_ENV}
    assert WeexConfig.from_env(env) == WeexConfig()


def test_from_env_overrides_win() -> None:
    config = WeexConfig.from_env(FULL_ENV, api_key="override-key", verify_tls=False)
    assert config.api_key == "override-key"
    assert config.secret_key == "env-secret-key-0002"
    assert config.verify_tls is False


def test_ca_file_comes_from_the_environment_or_an_argument(tmp_path: Path) -> None:
    assert WeexConfig().ca_file is None  # the system's CAs
    assert WeexConfig.from_env({"WEEX_CA_FILE": "/etc/corp/ca.pem"}).ca_file == "/etc/corp/ca.pem"
    assert WeexConfig.from_env({"WEEX_CA_FILE": ""}).ca_file is None
    assert WeexConfig(ca_file=tmp_path / "ca.pem").ca_file == str(tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match="ca_file"):
        WeexConfig(ca_file=" ")


def test_from_env_rejects_unknown_override() -> None:
    with pytest.raises(TypeError):
        WeexConfig.from_env({}, no_such_field="x")


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FULL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEEX_API_KEY", "from-os-environ")
    monkeypatch.setenv("WEEX_USER_AGENT", "os-agent/1")
    config = WeexConfig.from_env()
    assert config.api_key == "from-os-environ"
    assert config.user_agent == "os-agent/1"
    assert config.secret_key == ""


def test_from_env_validates() -> None:
    with pytest.raises(ConfigError, match="public_url"):
        WeexConfig.from_env({"WEEX_WS_PUBLIC_URL": "https://ws-contract.weex.com/v2/ws/public"})


# --- credentials -----------------------------------------------------------------------------

CREDENTIAL_ENV = {
    "api_key": "WEEX_API_KEY",
    "secret_key": "WEEX_SECRET_KEY",
    "passphrase": "WEEX_PASSPHRASE",
}


@given(present=st.sets(st.sampled_from(sorted(CREDENTIAL_ENV))), values=st.data())
def test_require_credentials_names_exactly_the_missing_variables(
    present: set[str], values: st.DataObject
) -> None:
    given_values: dict[str, Any] = {field: values.draw(secret_tokens) for field in present}
    config = WeexConfig(**given_values)
    assert config.has_credentials == (len(present) == 3)
    if len(present) == 3:
        config.require_credentials()
        return
    with pytest.raises(ConfigError) as info:
        config.require_credentials()
    message = str(info.value)
    for field, variable in CREDENTIAL_ENV.items():
        assert (variable in message) == (field not in present)
    for value in given_values.values():
        assert value not in message


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://ws-contract.weex.com/v2/ws/public",
        "http://localhost/",
        "ftp://host/",
        "ws-contract.weex.com/v2/ws/public",
        "",
        "wss:///v2/ws/public",
        "wss://[::1/x",
        "ws://localhost:99999/",
        "ws://localhost:abc/",
        "ws://localhost:0/",
        "wss://host/path#frag",
        "wss://a..b/",  # an empty label
        "wss://" + "a" * 64 + ".example/",  # a label longer than DNS allows
        "wss://ex%41mple.com/",  # percent-escapes are no host name
        "wss://host!/",
        "wss://[::1]x/",  # text after the IPv6 literal
        "wss://[v1.future]/",  # not an IPv6 address
    ],
)
@pytest.mark.parametrize("field", ["public_url", "private_url"])
def test_bad_urls_are_config_errors(field: str, url: str) -> None:
    fields: dict[str, Any] = {field: url}
    with pytest.raises(ConfigError, match=field):
        WeexConfig(**fields)


# Every way a URL can carry a character that has no place on the wire: whitespace, line breaks
# (a `.env` file's trailing newline, or a header injection attempt), C0/C1 controls, DEL,
# zero-width and bidi format characters, Unicode spaces and a lone surrogate.
UNWIRABLE = [
    " ",
    "\t",
    "\r",
    "\n",
    "\r\nX-Injected: 1",
    "\x00",
    "\x1f",
    "\x7f",
    "\x85",
    "\u200b",
    "\u202e",
    "\u00a0",
    "\u2028",
    "\u3000",
    "\ud800",
]


@pytest.mark.parametrize("bad", UNWIRABLE)
@pytest.mark.parametrize(
    "template",
    [
        "wss://host.example/v2/ws/{bad}public-secret-path",
        "wss://host.example/v2/ws/public-secret-path?token={bad}x",
        "wss://host{bad}.example/public-secret-path",
        "wss://host.example:44{bad}3/public-secret-path",
        "{bad}wss://host.example/public-secret-path",
        "wss://host.example/public-secret-path{bad}",
    ],
)
@pytest.mark.parametrize("field", ["public_url", "private_url"])
def test_whitespace_and_control_characters_are_refused_anywhere(
    field: str, template: str, bad: str
) -> None:
    fields: dict[str, Any] = {field: template.format(bad=bad)}
    with pytest.raises(ConfigError, match=field) as info:
        WeexConfig(**fields)
    assert "secret-path" not in str(info.value)  # the URL is never echoed


@pytest.mark.parametrize(
    ("variable", "field"),
    [("WEEX_WS_PUBLIC_URL", "public_url"), ("WEEX_WS_PRIVATE_URL", "private_url")],
)
@pytest.mark.parametrize(
    "url",
    ["ws://127.0.0.1:8765/v2/ws/public\n", "ws://127.0.0.1:8765/v2 ws", "ws://h/a\r\nX: 1"],
)
def test_unwirable_url_from_the_environment_is_a_config_error(
    variable: str, field: str, url: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        WeexConfig.from_env({variable: url})


@pytest.mark.parametrize(
    ("url", "path"),
    [
        # RFC 3987 §3.1: each non-ASCII character becomes the %XX escapes of its UTF-8 bytes.
        ("ws://h/caf\u00e9", "/caf%C3%A9"),
        ("ws://h/v2?q=\u20ac1", "/v2?q=%E2%82%AC1"),
        ("ws://h/\U0001f600", "/%F0%9F%98%80"),
        ("ws://h/already%20encoded/%E2%82%AC\u20ac", "/already%20encoded/%E2%82%AC%E2%82%AC"),
        ("ws://h/a%zz", "/a%zz"),  # ASCII is left exactly as written
    ],
)
def test_non_ascii_path_and_query_are_percent_encoded(url: str, path: str) -> None:
    assert WeexConfig(public_url=url).endpoint(private=False).path == path


@pytest.mark.parametrize(
    ("url", "host", "host_header"),
    [
        # RFC 3492 §7.1 / RFC 3490: the ACE form of "bücher" is "xn--bcher-kva".
        ("wss://b\u00fccher.example/x", "xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("ws://B\u00dcCHER.example:8080/", "xn--bcher-kva.example", "xn--bcher-kva.example:8080"),
        ("ws://xn--bcher-kva.example/", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_non_ascii_host_is_idna_encoded(url: str, host: str, host_header: str) -> None:
    endpoint = WeexConfig(public_url=url).endpoint(private=False)
    assert (endpoint.host, endpoint.host_header) == (host, host_header)


# Characters a URL is made of, the ones that have no place in one, and anything else.
url_pieces = st.lists(
    st.sampled_from(list("azAZ09-._~:/?#[]@!$&'()*+,;=%"))
    | st.sampled_from(UNWIRABLE)
    | st.characters(),
    max_size=30,
).map("".join)


@given(
    scheme=st.sampled_from(["ws://", "wss://", "WSS://"]),
    host=st.sampled_from(["h.example", "127.0.0.1", "[::1]", "b\u00fccher.example"]) | url_pieces,
    rest=url_pieces,
)
def test_every_accepted_url_gives_a_request_the_server_reads_back(
    scheme: str, host: str, rest: str
) -> None:
    url = scheme + host + rest
    try:
        config = WeexConfig(public_url=url)
    except ConfigError:
        return  # refused at startup with a typed error: fine
    endpoint = config.endpoint(private=False)
    connection = WeexConnection(config)
    connection.initiate(now=0.0)  # must not raise: that would happen at connect time
    # An HTTP server reads back exactly the target and Host we meant (h11 is what wsproto uses).
    server = h11.Connection(h11.SERVER)
    server.receive_data(connection.data_to_send())
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert request.target == endpoint.path.encode("ascii")
    assert dict(request.headers)[b"host"] == endpoint.host_header.encode("ascii")
    assert endpoint.host.isascii()  # what the socket and TLS are given


def test_url_with_userinfo_is_rejected_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        WeexConfig(private_url="wss://user:hunter2-password@host/v2/ws/private")
    assert "hunter2-password" not in str(info.value)


@pytest.mark.parametrize("url", ["ws://localhost:8765/v2/ws/public", "WSS://Example.COM/x"])
def test_ws_and_wss_in_any_case_are_accepted(url: str) -> None:
    assert WeexConfig(public_url=url).public_url == url


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the point is the base class
        WeexConfig(public_url="http://x/")


@pytest.mark.parametrize("user_agent", ["", "   "])
def test_empty_user_agent_is_rejected(user_agent: str) -> None:
    with pytest.raises(ConfigError, match="User-Agent"):
        WeexConfig(user_agent=user_agent)


@pytest.mark.parametrize("field", ["api_key", "passphrase", "user_agent"])
@pytest.mark.parametrize("bad", ["\n", "\r\nX-Injected: 1", "\x00", "é"])
def test_header_values_must_be_printable_ascii(field: str, bad: str) -> None:
    fields: dict[str, Any] = {field: "secret-value-1234" + bad}
    with pytest.raises(ConfigError, match=field) as info:
        WeexConfig(**fields)
    assert "secret-value-1234" not in str(info.value)


# --- endpoints -------------------------------------------------------------------------------


def test_default_endpoints() -> None:
    config = WeexConfig()
    assert config.endpoint(private=False) == Endpoint(
        scheme="wss", host="ws-contract.weex.com", port=443, path="/v2/ws/public", secure=True
    )
    private = config.endpoint(private=True)
    assert private.path == "/v2/ws/private"
    assert private.host_header == "ws-contract.weex.com"


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path", "host_header"),
    [
        ("ws://localhost:8765", "ws", "localhost", 8765, "/", "localhost:8765"),
        ("ws://localhost", "ws", "localhost", 80, "/", "localhost"),
        ("ws://localhost:80/", "ws", "localhost", 80, "/", "localhost"),
        ("wss://h.example:443/a", "wss", "h.example", 443, "/a", "h.example"),
        ("wss://h.example:80/a", "wss", "h.example", 80, "/a", "h.example:80"),
        ("ws://h.example:443/a", "ws", "h.example", 443, "/a", "h.example:443"),
        ("ws://h/p?x=1&y=2", "ws", "h", 80, "/p?x=1&y=2", "h"),
        ("ws://h?x=1", "ws", "h", 80, "/?x=1", "h"),
        ("ws://[::1]:9000/x", "ws", "::1", 9000, "/x", "[::1]:9000"),
        ("wss://[2001:db8::1]/", "wss", "2001:db8::1", 443, "/", "[2001:db8::1]"),
        ("WSS://Host.Example/P", "wss", "host.example", 443, "/P", "host.example"),
    ],
)
def test_endpoint_parsing(
    url: str, scheme: str, host: str, port: int, path: str, host_header: str
) -> None:
    endpoint = WeexConfig(private_url=url).endpoint(private=True)
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.path) == (
        scheme,
        host,
        port,
        path,
    )
    assert endpoint.secure == (scheme == "wss")
    assert endpoint.host_header == host_header


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_url_is_the_dialects_default_unless_one_is_given(api: str) -> None:
    config = WeexConfig(api=api)
    assert config.url(False) == f"wss://ws-contract.weex.com/{api}/ws/public"
    assert config.url(True) == f"wss://ws-contract.weex.com/{api}/ws/private"
    assert config.endpoint(True).path == f"/{api}/ws/private"
    given = WeexConfig(api=api, public_url="ws://127.0.0.1:9/feed")
    assert given.url(False) == "ws://127.0.0.1:9/feed"
    assert given.url(True) == f"wss://ws-contract.weex.com/{api}/ws/private"


def test_endpoint_picks_public_or_private() -> None:
    config = WeexConfig(public_url="ws://pub:1/public", private_url="ws://priv:2/private")
    assert config.endpoint(False).host == "pub"
    assert config.endpoint(True).host == "priv"


hostnames = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9]{0,5}){0,2}", fullmatch=True)
paths = st.from_regex(r"(/[A-Za-z0-9._~-]{0,8}){0,4}", fullmatch=True)


@given(
    secure=st.booleans(),
    host=hostnames,
    port=st.none() | st.integers(1, 65535),
    path=paths,
    query=st.none() | st.from_regex(r"[a-z0-9=&]{1,12}", fullmatch=True),
)
def test_endpoint_round_trips_its_parts(
    secure: bool, host: str, port: int | None, path: str, query: str | None
) -> None:
    scheme = "wss" if secure else "ws"
    url = f"{scheme}://{host}" + (f":{port}" if port is not None else "") + path
    if query is not None:
        url += f"?{query}"
    endpoint = WeexConfig(public_url=url).endpoint(private=False)
    default_port = 443 if secure else 80
    assert endpoint.scheme == scheme
    assert endpoint.secure is secure
    assert endpoint.host == host
    assert endpoint.port == (port if port is not None else default_port)
    assert endpoint.path == (path or "/") + (f"?{query}" if query is not None else "")
    if port is None or port == default_port:
        assert endpoint.host_header == host
    else:
        assert endpoint.host_header == f"{host}:{port}"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            "127.0.0.1:8765/v2/ws/public",
            "public_url has no scheme: it must start with ws:// or wss://",
        ),
        (
            "localhost:8765/v2/ws/public",
            "public_url has no scheme: it must start with ws:// or wss://",
        ),
        ("http://127.0.0.1:8765/v2/ws/public", "public_url must use ws:// or wss://, not http://"),
    ],
)
def test_a_url_without_a_websocket_scheme_is_said_plainly(url: str, said: str) -> None:
    with pytest.raises(ConfigError) as info:
        WeexConfig(public_url=url)
    assert str(info.value) == said
