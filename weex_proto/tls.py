"""The TLS context both adapters use by default: the system's CAs, hostname checks on."""

from __future__ import annotations

import logging
import ssl

log = logging.getLogger("weex_ws")


def default_ssl_context(verify: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        log.warning(
            "TLS certificate verification is OFF; only do this against a test server",
            extra={"weex_event": "tls_unverified"},
        )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
