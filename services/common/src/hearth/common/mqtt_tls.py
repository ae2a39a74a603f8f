"""MQTT over TLS for the services: one client context, trusting the platform's CA only.

A service's ``mqtt_ca_file`` setting (``HEARTH_<SERVICE>_MQTT_CA_FILE``) turns it on; both
MQTT clients (:mod:`hearth.common.mqtt`, ingest's paho consumer) build their context here.
The broker's certificate must name ``mqtt_host`` (docs/broker.md, "TLS").
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["tls_context"]


def tls_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """A client TLS context trusting ``ca_file`` only (host name checked); None: plain MQTT."""
    if ca_file is None:
        return None
    return ssl.create_default_context(cafile=str(ca_file))
