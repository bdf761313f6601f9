"""Handshake signing for the private channel (protocol doc §1.3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from weex_proto.auth import handshake_headers, redact_headers, sign, timestamp_ms
from weex_proto.config import WeexConfig
from weex_proto.errors import ConfigError

API_KEY = "test-api-key-7f3a9c"
SECRET_KEY = "test-secret-key-b41d02"
PASSPHRASE = "test-passphrase-55e1"
CREDENTIALS = WeexConfig(api_key=API_KEY, secret_key=SECRET_KEY, passphrase=PASSPHRASE)


def reference_sign(secret: str, message: str) -> str:
    """The doc's formula, written out independently of weex_proto.auth."""
    mac = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


# --- sign ------------------------------------------------------------------------------------


def test_fixed_literal_vector() -> None:
    # Computed once, outside this code base, with the doc's Python snippet (§1.3) and a fixed
    # timestamp instead of time.time():
    #   python3 -c 'import base64,hmac,hashlib; secret="weex-test-secret"; ts="1700000000000";
    #     print(base64.b64encode(hmac.new(secret.encode(), (ts + "/v2/ws/private").encode(),
    #     hashlib.sha256).digest()).decode())'
    # and cross-checked with:
    #   echo -n "1700000000000/v2/ws/private" | openssl dgst -sha256 -hmac weex-test-secret \
    #     -binary | base64
    expected = "D+41gMnYmCDkdaWNAzMHZTiPfV5KXIi/O9C6IwnXrXU="
    assert sign("weex-test-secret", "1700000000000", "/v2/ws/private") == expected
    assert sign("weex-test-secret", "1700000000000") == expected  # default path


def test_anchor_wc_get_variant_does_not_match() -> None:
    # ANCHOR-wc signs ts + "GET" + path, which contradicts the docs. Its value for the vector
    # above (same one-liner with "GET" inserted) was 1D8uwTMcNwRY2VLdL+o0gxVC8r7YNl15kQPA3hIdTag=.
    ours = sign("weex-test-secret", "1700000000000")
    assert ours != "1D8uwTMcNwRY2VLdL+o0gxVC8r7YNl15kQPA3hIdTag="
    assert ours != reference_sign("weex-test-secret", "1700000000000GET/v2/ws/private")


texts = st.text(min_size=0, max_size=40)
timestamps = st.integers(0, 10**13).map(str)
request_paths = st.from_regex(r"/[a-z0-9/]{0,20}", fullmatch=True)


@given(secret=texts, ts=timestamps, path=request_paths)
def test_sign_matches_independent_hmac(secret: str, ts: str, path: str) -> None:
    assert sign(secret, ts, path) == reference_sign(secret, ts + path)


@given(secret=texts, ts=timestamps, path=request_paths)
def test_signature_is_base64_of_a_sha256_digest(secret: str, ts: str, path: str) -> None:
    assert len(base64.b64decode(sign(secret, ts, path), validate=True)) == 32


@given(secret=texts, other=texts, ts=timestamps)
def test_different_secret_changes_signature(secret: str, other: str, ts: str) -> None:
    # HMAC zero-pads keys to the block size, so secrets differing only by trailing NULs are
    # the same key by design (RFC 2104); every other difference must change the signature.
    assume(secret.rstrip("\x00") != other.rstrip("\x00"))
    assert sign(secret, ts) != sign(other, ts)


@given(ts=timestamps, other=timestamps)
def test_different_timestamp_changes_signature(ts: str, other: str) -> None:
    assume(ts != other)
    assert sign(SECRET_KEY, ts) != sign(SECRET_KEY, other)


def test_different_path_changes_signature() -> None:
    ts = "1700000000000"
    assert sign(SECRET_KEY, ts, "/v2/ws/private") != sign(SECRET_KEY, ts, "/v3/ws/private")
    assert sign(SECRET_KEY, ts, "/v2/ws/private") != sign(SECRET_KEY, ts, "/v2/ws/public")


# --- timestamp_ms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0.0, "0"),
        (1700000000.0, "1700000000000"),
        (1700000000.5, "1700000000500"),
        (1700000000.25, "1700000000250"),
        (1.0009765625, "1000"),  # 1 + 2**-10 s is 1000.97... ms: truncated, not rounded
    ],
)
def test_timestamp_ms_known_values(now: float, expected: str) -> None:
    assert timestamp_ms(now) == expected


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_timestamp_ms_is_whole_milliseconds_not_after_now(now: float) -> None:
    text = timestamp_ms(now)
    assert text.isdigit()
    assert 0 <= now * 1000 - int(text) < 1


@pytest.mark.parametrize("now", [-1.0, float("nan"), float("inf")])
def test_timestamp_ms_rejects_nonsense(now: float) -> None:
    with pytest.raises(ValueError, match="now"):
        timestamp_ms(now)


# --- handshake_headers -----------------------------------------------------------------------


def test_public_headers_are_just_the_user_agent() -> None:
    config = WeexConfig(user_agent="agent/1.0")
    assert handshake_headers(config, private=False, now=1700000000.0) == [
        ("User-Agent", "agent/1.0")
    ]


def test_public_headers_need_no_credentials_and_leak_none() -> None:
    assert handshake_headers(CREDENTIALS, private=False, now=1.0) == [
        ("User-Agent", CREDENTIALS.user_agent)
    ]


def test_private_headers_follow_the_doc() -> None:
    headers = handshake_headers(CREDENTIALS, private=True, now=1700000000.5)
    names = [name for name, _ in headers]
    assert names == [
        "User-Agent",
        "ACCESS-KEY",
        "ACCESS-PASSPHRASE",
        "ACCESS-TIMESTAMP",
        "ACCESS-SIGN",
    ]
    values = dict(headers)
    assert values["User-Agent"] == CREDENTIALS.user_agent
    assert values["ACCESS-KEY"] == API_KEY
    assert values["ACCESS-PASSPHRASE"] == PASSPHRASE
    ts = values["ACCESS-TIMESTAMP"]
    assert ts == "1700000000500"
    assert values["ACCESS-SIGN"] == reference_sign(SECRET_KEY, ts + "/v2/ws/private")


def test_private_headers_are_fresh_for_each_attempt() -> None:
    first = dict(handshake_headers(CREDENTIALS, private=True, now=1700000000.0))
    later = dict(handshake_headers(CREDENTIALS, private=True, now=1700000031.0))
    assert first["ACCESS-TIMESTAMP"] == "1700000000000"
    assert later["ACCESS-TIMESTAMP"] == "1700000031000"
    assert first["ACCESS-SIGN"] != later["ACCESS-SIGN"]


@pytest.mark.parametrize(
    ("private_url", "signed_path"),
    [
        ("ws://127.0.0.1:8765/v2/ws/private", "/v2/ws/private"),
        ("ws://127.0.0.1:8765/v2/ws/private?sim=1&x=2", "/v2/ws/private"),
        ("wss://[::1]:9443/custom/private", "/custom/private"),
        ("ws://127.0.0.1:8765", "/"),
    ],
)
def test_signed_path_is_the_private_url_path_without_query(
    private_url: str, signed_path: str
) -> None:
    config = WeexConfig(
        api_key=API_KEY, secret_key=SECRET_KEY, passphrase=PASSPHRASE, private_url=private_url
    )
    values = dict(handshake_headers(config, private=True, now=1700000000.0))
    assert values["ACCESS-SIGN"] == reference_sign(SECRET_KEY, "1700000000000" + signed_path)


@pytest.mark.parametrize("missing", ["api_key", "secret_key", "passphrase"])
def test_private_without_credentials_is_a_config_error(missing: str) -> None:
    fields: dict[str, Any] = {
        "api_key": API_KEY,
        "secret_key": SECRET_KEY,
        "passphrase": PASSPHRASE,
    }
    fields[missing] = ""
    with pytest.raises(ConfigError, match="WEEX_" + missing.upper()) as info:
        handshake_headers(WeexConfig(**fields), private=True, now=1700000000.0)
    for value in (API_KEY, SECRET_KEY, PASSPHRASE):
        assert value not in str(info.value)


# --- redact_headers --------------------------------------------------------------------------


def test_redact_masks_every_secret_header() -> None:
    headers = handshake_headers(CREDENTIALS, private=True, now=1700000000.0)
    signature = dict(headers)["ACCESS-SIGN"]
    redacted = redact_headers(headers)
    assert [name for name, _ in redacted] == [name for name, _ in headers]
    text = repr(redacted)
    for secret in (API_KEY, PASSPHRASE, SECRET_KEY, signature):
        assert secret not in text
    values = dict(redacted)
    assert values["User-Agent"] == CREDENTIALS.user_agent
    assert values["ACCESS-TIMESTAMP"] == "1700000000000"  # not secret, useful when debugging
    assert dict(headers)["ACCESS-KEY"] == API_KEY  # the input is left alone


@given(
    name=st.sampled_from(["access-key", "Access-Sign", "ACCESS-PASSPHRASE", "aCcEsS-kEy"]),
    value=st.text(alphabet=string.ascii_letters + string.digits, min_size=16, max_size=30),
)
def test_redact_is_case_insensitive(name: str, value: str) -> None:
    [(out_name, out_value)] = redact_headers([(name, value)])
    assert out_name == name
    assert value not in out_value


def test_redact_leaves_other_headers_alone() -> None:
    headers = [("Host", "example.com"), ("X-Access-Key-Hint", "visible")]
    assert redact_headers(headers) == headers
