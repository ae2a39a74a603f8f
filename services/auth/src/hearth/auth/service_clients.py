"""The client-credentials grant for platform services (service identities).

Which services may get tokens, and with which scopes, is the contract in
:mod:`hearth.common.service_identities`; each one's secret is
``HEARTH_<SERVICE>_CLIENT_SECRET`` from the secrets file (auth's settings read it). A
service whose secret is not configured gets no tokens. Secrets are compared in constant
time; a refusal never says whether the service exists.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from hearth.auth.errors import InvalidClient
from hearth.auth.issuer import TokenIssuer
from hearth.auth.models import ServiceTokenResponse
from hearth.common.service_identities import SERVICE_SCOPES

__all__ = ["ServiceClients"]


class ServiceClients:
    """Mints service tokens for the configured service identities."""

    def __init__(self, secrets: Mapping[str, str], issuer: TokenIssuer) -> None:
        self._secrets = {name: value for name, value in secrets.items() if value}
        self._issuer = issuer

    def __repr__(self) -> str:
        return f"ServiceClients({sorted(self._secrets)})"

    def token(self, client_id: str, client_secret: str) -> ServiceTokenResponse:
        """A token for ``client_id`` if ``client_secret`` is its secret."""
        expected = self._secrets.get(client_id, "")
        matched = hmac.compare_digest(expected.encode(), client_secret.encode())
        if not expected or not matched:
            raise InvalidClient("unknown client or wrong client secret")
        access = self._issuer.service_token(client_id, sorted(SERVICE_SCOPES[client_id]))
        return ServiceTokenResponse(
            access_token=access.token, expires_in=access.expires_in, scope=access.scope
        )
