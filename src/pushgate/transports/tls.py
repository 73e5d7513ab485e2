"""The client TLS context of every outgoing provider connection (`PUSHGATE_TLS_CA_FILE`)."""

from __future__ import annotations

import ssl


def client_ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """The system's trust store plus the PEM anchors of `ca_file` (private gateways,
    loopback test servers). Built once per transport: loading the store costs milliseconds."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context
