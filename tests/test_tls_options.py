"""The TLS options when a client is built: `ssl_context=`, `ca_file` / WEEX_CA_FILE, `verify_tls`.

Connecting with them is tested on every adapter in test_adapters.py (against a trustme CA);
these are the failures and warnings that happen before any connection, for a client of
either WEEX dialect (v3's default URLs are wss:// too).
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

import weex_anyio
import weex_trio
from tests.adapters import BOTH_DIALECTS
from weex_proto.config import WeexConfig
from weex_proto.errors import ConfigError

CLIENT_CLASSES = pytest.mark.parametrize(
    "client_class",
    [weex_anyio.WeexWebSocketClient, weex_trio.WeexWebSocketClient],
    ids=["weex_anyio", "weex_trio"],
)
DIALECTS = pytest.mark.parametrize("api", BOTH_DIALECTS)
ClientClass = type[weex_anyio.WeexWebSocketClient] | type[weex_trio.WeexWebSocketClient]


def unverified_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "weex_event", None) == "tls_unverified"]


@DIALECTS
@CLIENT_CLASSES
def test_missing_or_non_pem_ca_file_fails_when_the_client_is_built(
    client_class: ClientClass, api: str, tmp_path: Path
) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    for path in (tmp_path / "missing.pem", not_pem):
        with pytest.raises(ConfigError, match="WEEX_CA_FILE") as info:
            client_class(WeexConfig(api=api, ca_file=path))
        assert str(path) in str(info.value)  # which file: a path is no secret


@DIALECTS
@CLIENT_CLASSES
def test_a_readable_ca_file_builds_a_client(
    client_class: ClientClass, api: str, tmp_path: Path
) -> None:
    trustme.CA().cert_pem.write_to_path(tmp_path / "ca.pem")
    client = client_class(WeexConfig(api=api, ca_file=tmp_path / "ca.pem"))
    assert client.config.dialect.name == api


@DIALECTS
@CLIENT_CLASSES
def test_ssl_context_with_a_custom_transport_is_refused(
    client_class: ClientClass, api: str
) -> None:
    async def transport(endpoint: object) -> Any:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="ssl_context"):
        client_class(
            WeexConfig(api=api), ssl_context=ssl.create_default_context(), transport=transport
        )


@DIALECTS
@CLIENT_CLASSES
def test_verification_is_on_by_default_and_off_only_with_a_warning(
    client_class: ClientClass, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="weex_ws")
    client_class(WeexConfig(api=api))
    client_class(WeexConfig(api=api), ssl_context=ssl.create_default_context())
    assert unverified_warnings(caplog) == []

    client_class(WeexConfig(api=api, verify_tls=False))
    assert len(unverified_warnings(caplog)) == 1

    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    client_class(WeexConfig(api=api), ssl_context=unverified)
    assert len(unverified_warnings(caplog)) == 2  # the user's own context is checked too
