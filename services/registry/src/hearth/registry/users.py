"""AuthUsers: what the registry asks auth about users, forwarding the caller's own token.

``GET {auth_url}/auth/users/lookup?username=...`` turns a username into a user id (when
an owner adds a member); ``GET {auth_url}/auth/users/me`` tells the username of the
caller (when a home's creator becomes its owner). The HTTP client is long-lived (the
app's lifespan owns it); its transport is injectable, so tests can answer without a
network.
"""

from __future__ import annotations

import logging
import uuid
from types import TracebackType
from typing import Any, NamedTuple, Self

import httpx

from hearth.common.errors import Unauthorized
from hearth.registry.errors import AuthUnavailable, UserNotFound

__all__ = ["AuthUsers", "UserRef"]

log = logging.getLogger(__name__)


class UserRef(NamedTuple):
    """A user as the registry keeps them: auth's id and (immutable) username."""

    id: uuid.UUID
    username: str


class AuthUsers:
    """A client of auth's user lookup; every call forwards the caller's ``Authorization``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def lookup(self, username: str, authorization: str) -> UserRef:
        """The user named ``username``; :class:`UserNotFound` when auth knows none."""
        body = await self._get(
            "/auth/users/lookup", authorization, params={"username": username}, what=username
        )
        return UserRef(uuid.UUID(str(body["id"])), username)

    async def me(self, authorization: str) -> UserRef:
        """The caller behind ``authorization`` (their id and username)."""
        body = await self._get("/auth/users/me", authorization, what="the caller")
        return UserRef(uuid.UUID(str(body["id"])), str(body["username"]))

    async def _get(
        self, path: str, authorization: str, *, what: str, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            response = await self._client.get(
                path, params=params, headers={"Authorization": authorization}
            )
        except httpx.HTTPError as exc:
            log.warning("auth did not answer", extra={"path": path, "error": type(exc).__name__})
            raise AuthUnavailable("the auth service did not answer") from None
        if response.status_code == 404:
            raise UserNotFound(f"no user {what}")
        if response.status_code == 401:
            raise Unauthorized("auth refused the caller's token")
        if response.status_code != 200:
            log.warning(
                "auth answered an error", extra={"path": path, "status": response.status_code}
            )
            raise AuthUnavailable(f"the auth service answered {response.status_code}")
        try:
            body = response.json()
            if not isinstance(body, dict) or "id" not in body:
                raise ValueError("no id")
        except ValueError:
            raise AuthUnavailable("the auth service answered something unexpected") from None
        return body
