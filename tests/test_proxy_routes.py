"""Proxy URLs, and which proxy each endpoint takes: `proxy=`, `WEEX_PROXY`, the environment.

Expected behaviour follows curl and Python's urllib (lowercase variables first, NO_PROXY as a
list of names, IPs and CIDR blocks), as the README promises.
"""

from __future__ import annotations

import logging

import pytest

import weex_anyio
import weex_trio
from weex_proto.config import WeexConfig, parse_endpoint
from weex_proto.errors import ConfigError
from weex_proto.proxy import ProxyRoutes, ProxyURL, parse_proxy_url

WSS = parse_endpoint("wss://ws-contract.weex.com/v2/ws/public")
WS = parse_endpoint("ws://127.0.0.1:8080/v2/ws/public")


def route(environ: dict[str, str], url: str) -> str | None:
    proxy = ProxyRoutes.choose(None, environ).for_endpoint(parse_endpoint(url))
    return None if proxy is None else str(proxy)


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.corp:3128", ProxyURL("http", "proxy.corp", 3128)),
        ("proxy.corp:3128", ProxyURL("http", "proxy.corp", 3128)),
        ("HTTP://Proxy.Corp", ProxyURL("http", "proxy.corp", 80)),
        ("socks5://10.1.2.3", ProxyURL("socks5", "10.1.2.3", 1080)),
        ("socks5h://[::1]:9050/", ProxyURL("socks5h", "::1", 9050)),
        ("http://u%40corp:p%3Aw@proxy:8080", ProxyURL("http", "proxy", 8080, "u@corp", "p:w")),
    ],
)
def test_proxy_urls_are_taken_apart(url: str, expected: ProxyURL) -> None:
    assert parse_proxy_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("https://proxy:443", "not supported"),
        ("socks4://proxy:1080", "SOCKS4"),
        ("ftp://proxy", "http://, socks5:// or socks5h://"),
        ("http://:8080", "no host"),
        ("http://proxy:0", "port 0"),
        ("http://proxy:99999", "not a valid proxy URL"),
        ("http://proxy:8080/path", "nothing after"),
        ("http://proxy:8080\n", "whitespace"),
        ("socks5://u:" + "x" * 256 + "@proxy", "255 bytes"),
        ("http://u%0a:p@proxy", "control characters"),
    ],
)
def test_unusable_proxy_urls_say_why_without_showing_the_url(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint) as caught:
        parse_proxy_url(url, what="HTTPS_PROXY")
    assert str(caught.value).startswith("HTTPS_PROXY")
    assert "proxy:" not in str(caught.value) and "xxxx" not in str(caught.value)


def test_a_proxy_url_never_shows_its_credentials() -> None:
    proxy = parse_proxy_url("socks5h://alice:hunter2@[2001:db8::1]:1080")
    assert str(proxy) == "socks5h://[2001:db8::1]:1080"
    assert "hunter2" not in repr(proxy) and "alice" not in repr(proxy)
    assert "password=<set>" in repr(proxy)
    config = WeexConfig(proxy="http://alice:hunter2@proxy:3128")
    assert "hunter2" not in repr(config)
    assert "proxy='http://proxy:3128'" in repr(config)


# --------------------------------------------------------------------------- the choice


def test_an_explicit_choice_wins_and_false_means_direct() -> None:
    environ = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
    fixed = ProxyRoutes.choose("socks5://mine:1080")
    assert str(fixed.for_endpoint(WSS)) == str(fixed.for_endpoint(WS)) == "socks5://mine:1080"
    for direct in (False, ""):
        assert ProxyRoutes.choose(direct, environ).for_endpoint(WSS) is None
    with pytest.raises(ConfigError, match="proxy=True"):
        ProxyRoutes.choose(True)


def test_the_environment_picks_by_url_scheme() -> None:
    environ = {"HTTPS_PROXY": "http://secure:1", "HTTP_PROXY": "http://plain:2"}
    assert route(environ, "wss://weex.com/ws") == "http://secure:1"
    assert route(environ, "ws://weex.com/ws") == "http://plain:2"
    fallback = {"ALL_PROXY": "socks5h://all:3"}
    assert route(fallback, "wss://weex.com/ws") == route(fallback, "ws://weex.com/ws")
    assert route(fallback, "ws://weex.com/ws") == "socks5h://all:3"
    websocket_specific = {**environ, "wss_proxy": "http://ws-only:4", "ALL_PROXY": "http://a:5"}
    assert route(websocket_specific, "wss://weex.com/ws") == "http://ws-only:4"
    assert route({}, "wss://weex.com/ws") is None


def test_lowercase_wins_empty_is_unset_and_httpoxy_is_ignored() -> None:
    both = {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}
    assert route(both, "wss://weex.com/ws") == "http://lower:1"
    empty = {"https_proxy": " ", "HTTPS_PROXY": "http://upper:2"}
    assert route(empty, "wss://weex.com/ws") == "http://upper:2"
    cgi = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://attacker:1"}
    assert route(cgi, "ws://weex.com/ws") is None
    assert route({**cgi, "http_proxy": "http://mine:2"}, "ws://weex.com/ws") == "http://mine:2"


def test_a_bad_environment_proxy_names_its_variable() -> None:
    with pytest.raises(ConfigError, match=r"^https_proxy") as caught:
        ProxyRoutes.choose(None, {"https_proxy": "socks4://user:hunter2@p:1"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("*", "wss://ws-contract.weex.com/ws", True),
        ("weex.com", "wss://ws-contract.weex.com/ws", True),
        ("weex.com", "wss://weex.com/ws", True),
        ("weex.com", "wss://notweex.com/ws", False),
        (".weex.com", "wss://ws.weex.com/ws", True),
        ("*.weex.com", "wss://WS.Weex.COM./ws", True),
        ("ws.weex.com", "wss://weex.com/ws", False),
        ("other.com, weex.com", "wss://a.weex.com/ws", True),
        ("other.com weex.com", "wss://a.weex.com/ws", True),
        ("weex.com:443", "wss://a.weex.com/ws", True),
        ("weex.com:8443", "wss://a.weex.com/ws", False),
        ("127.0.0.1", "ws://127.0.0.1:8080/ws", True),
        ("127.0.0.1:9", "ws://127.0.0.1:8080/ws", False),
        ("10.0.0.0/8", "ws://10.20.30.40/ws", True),
        ("10.0.0.0/8", "ws://11.0.0.1/ws", False),
        ("::1", "ws://[::1]:8080/ws", True),
        ("[::1]:8080", "ws://[::1]:8080/ws", True),
        ("2001:db8::/32", "ws://[2001:db8:0:0::7]/ws", True),
        ("", "wss://weex.com/ws", False),
    ],
)
def test_no_proxy(no_proxy: str, url: str, bypassed: bool) -> None:
    environ = {"ALL_PROXY": "http://proxy:3128", "no_proxy": no_proxy}
    assert (route(environ, url) is None) is bypassed


def test_no_proxy_garbage_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    environ = {"ALL_PROXY": "http://proxy:3128", "NO_PROXY": "<local>,weex.com,host:port"}
    assert route(environ, "wss://ws.weex.com/ws") is None
    assert route(environ, "wss://local/ws") == "http://proxy:3128"
    assert "<local>" in caplog.text and "host:port" in caplog.text


def test_an_explicit_proxy_ignores_no_proxy() -> None:
    routes = ProxyRoutes.choose("http://mine:1")
    assert routes.for_endpoint(WS) is not None  # NO_PROXY is for the environment's proxies


# --------------------------------------------------------------------------- config and client


def test_weex_proxy_in_the_environment_fills_the_config() -> None:
    config = WeexConfig.from_env({"WEEX_PROXY": "socks5h://tor:9050"})
    assert config.proxy == "socks5h://tor:9050"
    assert WeexConfig.from_env({"WEEX_PROXY": ""}).proxy is None
    with pytest.raises(ConfigError, match=r"^proxy"):
        WeexConfig(proxy="gopher://x")
    with pytest.raises(ConfigError):
        WeexConfig(proxy=True)


@pytest.mark.parametrize(
    "client_class", [weex_anyio.WeexWebSocketClient, weex_trio.WeexWebSocketClient]
)
def test_clients_check_the_proxy_when_built(
    client_class: type[weex_anyio.WeexWebSocketClient] | type[weex_trio.WeexWebSocketClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks4://p:1")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("wss_proxy", raising=False)
    monkeypatch.delenv("WSS_PROXY", raising=False)
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        client_class(WeexConfig())
    client_class(WeexConfig(), proxy=False)  # the environment is not consulted
    client_class(WeexConfig(proxy="http://p:1"))  # nor when the config names a proxy
    with pytest.raises(ValueError, match="proxy= or transport="):
        client_class(WeexConfig(), proxy="http://p:1", transport=object())  # type: ignore[arg-type]
