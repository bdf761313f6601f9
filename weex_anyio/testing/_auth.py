"""Judging an HTTP upgrade request: endpoint path, User-Agent, and private header authentication.

The rule is the documented one (protocol doc §1.3):
`ACCESS-SIGN = base64(HMAC-SHA256(secret, ACCESS-TIMESTAMP + "/v2/ws/private"))` (v3:
`+ "/v3/ws/private"`, docs/protocol-v3.md §1), with the timestamp in milliseconds and at
most `tolerance` seconds away from the server clock.
The exchange's real failure behaviour is undocumented; the simulator answers with an HTTP error
and the REST error body of doc §5.3, e.g.
`{"code":"40009","msg":"API verification failed","requestTime":1765776928145,"data":null}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from http import HTTPStatus

import attrs

PUBLIC_PATH = "/v2/ws/public"
PRIVATE_PATH = "/v2/ws/private"
V3_PUBLIC_PATH = "/v3/ws/public"
V3_PRIVATE_PATH = "/v3/ws/private"
_PUBLIC_PATHS = (PUBLIC_PATH, V3_PUBLIC_PATH)
_PATHS = (PUBLIC_PATH, PRIVATE_PATH, V3_PUBLIC_PATH, V3_PRIVATE_PATH)


@attrs.frozen(repr=False)
class Credentials:
    """The one API key the simulated exchange knows. repr() never shows the values."""

    api_key: str
    secret_key: str
    passphrase: str

    def __repr__(self) -> str:
        return "Credentials(api_key=<hidden>, secret_key=<hidden>, passphrase=<hidden>)"


@attrs.frozen
class Admitted:
    """The upgrade may go ahead."""

    path: str
    private: bool
    user_agent: str


@attrs.frozen
class Refused:
    """The upgrade is answered with an HTTP error; `reason` is for logs and never holds secrets."""

    status: int
    body: bytes
    content_type: str
    reason: str


def sign(secret_key: str, timestamp: str, path: str = PRIVATE_PATH) -> str:
    """The documented WebSocket signature (no HTTP method in the pre-hash string)."""
    digest = hmac.new(secret_key.encode(), (timestamp + path).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def refuse_with_status(status: int, reason: str) -> Refused:
    """A plain-text HTTP error, as a proxy or load balancer in front of the exchange would send."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"{status} {phrase}: {reason}\n".encode()
    return Refused(status, body, "text/plain; charset=utf-8", reason)


def refuse_too_many(limit: str, now: float) -> Refused:
    """HTTP 429 with the REST error body of code 429 ("Too many requests", doc §5.3); WEEX does
    not document how it refuses an IP over its connection limits, so this is our choice."""
    refused = _refuse_with_code(429, "429", "Too many requests", now)
    return attrs.evolve(refused, reason=f"{refused.reason}: {limit}")


def _refuse_with_code(status: int, code: str, msg: str, now: float) -> Refused:
    body = {"code": code, "msg": msg, "requestTime": int(now * 1000), "data": None}
    payload = json.dumps(body, separators=(",", ":")).encode()
    return Refused(status, payload, "application/json", f"{code} {msg}")


def judge(
    target: str,
    headers: Mapping[str, str],
    *,
    credentials: Credentials,
    require_user_agent: bool,
    timestamp_tolerance: float,
    now: float,
) -> Admitted | Refused:
    """Decide an upgrade request. `headers` has lower-case names; `now` is the server clock."""
    path = target.split("?", 1)[0]
    if path not in _PATHS:
        return refuse_with_status(404, f"no WebSocket endpoint at {path}")
    user_agent = headers.get("user-agent", "").strip()
    if require_user_agent and not user_agent:
        return refuse_with_status(403, "a User-Agent header is required")
    if path in _PUBLIC_PATHS:
        return Admitted(path, private=False, user_agent=user_agent)
    problem = _check_private_headers(headers, credentials, timestamp_tolerance, now, path)
    if problem is not None:
        return problem
    return Admitted(path, private=True, user_agent=user_agent)


_REQUIRED_HEADERS = (
    ("access-key", "40001", 'Header "ACCESS_KEY" is required'),
    ("access-sign", "40002", 'Header "ACCESS_SIGN" is required'),
    ("access-timestamp", "40003", 'Header "ACCESS_TIMESTAMP" is required'),
    ("access-passphrase", "40011", 'Header "ACCESS_PASSPHRASE" is required'),
)


def _check_private_headers(
    headers: Mapping[str, str], credentials: Credentials, tolerance: float, now: float, path: str
) -> Refused | None:
    for name, code, msg in _REQUIRED_HEADERS:
        if not headers.get(name, "").strip():
            return _refuse_with_code(400, code, msg, now)
    timestamp = headers["access-timestamp"].strip()
    if not timestamp.isascii() or not timestamp.isdigit():
        return _refuse_with_code(401, "40005", "Invalid ACCESS_TIMESTAMP", now)
    if abs(int(timestamp) / 1000 - now) > tolerance:
        return _refuse_with_code(401, "40008", "Request timestamp expired", now)
    if not _same(headers["access-key"], credentials.api_key):
        return _refuse_with_code(401, "40006", "Invalid ACCESS_KEY", now)
    if not _same(headers["access-passphrase"], credentials.passphrase):
        return _refuse_with_code(401, "40012", "Incorrect API key/Passphrase", now)
    expected = sign(credentials.secret_key, timestamp, path)  # v3 signs its own path
    if not _same(headers["access-sign"].strip(), expected):
        return _refuse_with_code(401, "40009", "API verification failed", now)
    return None


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that also copes with non-ASCII header bytes."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())
