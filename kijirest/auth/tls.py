"""HTTPS served by the gateway itself: `tls_cert` / `tls_key` (PEM) → an `ssl.SSLContext` for the
TCPSite. The context is Python's server default (`ssl.create_default_context(CLIENT_AUTH)`: TLS 1.2
or later, the platform's cipher choice); no client certificates are asked. Behind a reverse proxy
that terminates TLS, leave both unset and listen on loopback (README, "Running it for a team").
"""

from __future__ import annotations

import ssl

__all__ = ["TlsError", "server_context"]


class TlsError(ValueError):
    """Certificate or key files that cannot be used; the message names the setting."""


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as exc:
        raise TlsError(f"tls_cert / tls_key: {exc.filename}: no such file") from None
    except ssl.SSLError as exc:
        raise TlsError(
            f"tls_cert {cert_file} / tls_key {key_file}: not a PEM certificate and its key ({exc.reason})"
        ) from None
    except OSError as exc:
        raise TlsError(f"tls_cert / tls_key: {exc}") from None
    return context
