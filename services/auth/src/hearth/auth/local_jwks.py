"""An httpx transport answering JWKS requests from this replica's own KeyRing.

auth verifies its own tokens with ``hearth.common``'s :class:`TokenVerifier`, like
every service, but reads the keys from memory instead of calling itself over HTTP.
"""

from __future__ import annotations

import httpx

from hearth.auth.keys import KeyRing

__all__ = ["LOCAL_JWKS_URL", "LocalJwksTransport"]

LOCAL_JWKS_URL = "http://auth.local/.well-known/jwks.json"
"""The URL auth's own JwksClient asks (never leaves the process)."""


class LocalJwksTransport(httpx.AsyncBaseTransport):
    """Answers every request with the ring's current JWKS."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The JWKS of the published keys, as auth's endpoint would serve it."""
        body = self._ring.jwks().model_dump_json().encode()
        return httpx.Response(
            200, content=body, headers={"Content-Type": "application/json"}, request=request
        )
