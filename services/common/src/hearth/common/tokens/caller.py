"""Caller: who is making a request, as proven by a verified access token."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ADMIN_ROLE", "Caller"]

ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    """The verified identity behind a request.

    ``homes`` is ``None`` for a user's own token (the registry decides per
    home) and for an API key limited to no homes; otherwise the set of home slugs
    an API-key token is limited to. ``api_key`` is the id of the API key a token
    was minted from (``None`` for a login's token). ``service`` is the platform
    service a client-credentials token was minted for (then ``user_id`` is that
    service's name, never a user id; only verifiers built with
    ``accept_services=True`` let such tokens in). ``issued_at``/``expires_at`` are
    epoch seconds. ``token`` is the raw bearer token, kept to forward to the
    registry; it never appears in ``repr``.
    """

    user_id: str
    roles: frozenset[str]
    scopes: frozenset[str]
    homes: frozenset[str] | None
    token_id: str
    issued_at: float
    expires_at: float
    token: str = field(repr=False, compare=False)
    api_key: str | None = None
    service: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the caller holds the platform ``admin`` role."""
        return ADMIN_ROLE in self.roles

    @property
    def is_api_key(self) -> bool:
        """Whether the token was minted from an API key (it carries ``key`` or ``homes``)."""
        return self.api_key is not None or self.homes is not None

    @property
    def is_service(self) -> bool:
        """Whether the token is a platform service's own (client-credentials grant)."""
        return self.service is not None

    @property
    def is_session(self) -> bool:
        """Whether the token comes from a user's login (not an API key, not a service)."""
        return not self.is_api_key and not self.is_service

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants ``scope`` (``read``, ``control``, ``admin``)."""
        return scope in self.scopes

    def may_use_home(self, home: str) -> bool:
        """Whether the token itself allows ``home`` (API-key tokens are limited to theirs).

        This is not the registry's answer about membership; it only narrows it.
        """
        return self.homes is None or home in self.homes

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value that forwards this caller's token."""
        return f"Bearer {self.token}"
