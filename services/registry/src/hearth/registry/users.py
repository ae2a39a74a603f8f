"""AuthUsers: what the registry asks auth about users, forwarding the caller's own token.

``GET {auth_url}/auth/users/lookup?username=...`` turns a username into a user id (when
an owner adds a member); ``GET {auth_url}/auth/users/me`` tells the username of the
caller (when a home's creator becomes its owner). A :class:`~hearth.common.http.ServiceClient`:
the app's lifespan enters it (one pooled connection); its transport is injectable, so
tests can answer without a network.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, NamedTuple

from hearth.common.errors import Unauthorized
from hearth.common.http import ServiceClient
from hearth.registry.errors import AuthUnavailable, UserNotFound

__all__ = ["AuthUsers", "UserRef"]

log = logging.getLogger(__name__)


class UserRef(NamedTuple):
    """A user as the registry keeps them: auth's id and (immutable) username."""

    id: uuid.UUID
    username: str


class AuthUsers(ServiceClient):
    """A client of auth's user lookup; every call forwards the caller's ``Authorization``."""

    name = "auth"
    unavailable = AuthUnavailable

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
        response = await self.request(
            "GET", path, params=params, headers={"Authorization": authorization}
        )
        if response.status_code == 404:
            raise UserNotFound(f"no user {what}")
        if response.status_code == 401:
            raise Unauthorized("auth refused the caller's token")
        if response.status_code != 200:
            log.warning(
                "auth answered an error", extra={"path": path, "status": response.status_code}
            )
            raise AuthUnavailable(f"the auth service answered {response.status_code}")
        body = self.json_object(response)
        if "id" not in body:
            raise AuthUnavailable("the auth service answered something unexpected")
        return body
