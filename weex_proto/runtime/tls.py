"""The TLS context both adapters use by default: verified, hostname checks on.

Which CAs are trusted: the system's, or only those in `WeexConfig.ca_file` (`WEEX_CA_FILE`),
a PEM bundle, for a corporate proxy or a test server with its own CA. This is the one place
the client reads a file; it happens once, when the client is built, so a bad path fails there.
"""

from __future__ import annotations

import logging
import ssl

from ..errors import ConfigError

log = logging.getLogger("weex_ws")


def default_ssl_context(verify: bool = True, ca_file: str | None = None) -> ssl.SSLContext:
    """A client context trusting the system's CAs, or only the ones in `ca_file`.

    `verify=False` turns certificate checks off (with a warning), whatever `ca_file` says.
    """
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        warn_if_unverified(context)
        return context
    try:
        return ssl.create_default_context(cafile=ca_file)
    except OSError as exc:  # missing or unreadable file; ssl.SSLError (not PEM) is one too
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"ca_file (WEEX_CA_FILE) {ca_file!r} cannot be loaded as a PEM CA bundle: {reason}"
        ) from None


def warn_if_unverified(context: ssl.SSLContext) -> None:
    """Say so loudly when a context (ours or the user's) does not check certificates."""
    if context.verify_mode == ssl.CERT_NONE:
        log.warning(
            "TLS certificate verification is OFF; only do this against a test server",
            extra={"weex_event": "tls_unverified"},
        )
