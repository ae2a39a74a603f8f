"""Who may do what in a home: the rules, as pure functions (no database, no HTTP).

A caller's rights in a home come from three things, checked in this order:

1. **visibility**: a member (any role) or a platform admin sees the home; anyone else is
   told it does not exist (``not_found``), so homes cannot be discovered by probing;
2. **the token**: a token minted from an API key is limited to its ``homes``
   (``token_homes``) and its scope (``scope``): ``read`` for read, ``control`` for write
   and manage, and an API-key token also needs ``admin`` to manage;
3. **the role**: ``viewer`` reads; ``member`` reads and writes (commands); ``owner`` also
   manages (the home, its members, its devices, retention, import). A platform admin
   reads and manages every home; sending commands needs a member or owner role even for
   an admin (an operator adds themselves to a home first, which is itself an event).

The same rules answer the REST routes and ``POST /registry/authorize``.
"""

from __future__ import annotations

from typing import Final

from hearth.common.authorization import Action, DenyReason, Role
from hearth.common.tokens import Caller

__all__ = ["ROLE_ACTIONS", "SCOPE_FOR", "check_access"]

ROLE_ACTIONS: Final[dict[Role, frozenset[Action]]] = {
    Role.OWNER: frozenset({Action.READ, Action.WRITE, Action.MANAGE}),
    Role.MEMBER: frozenset({Action.READ, Action.WRITE}),
    Role.VIEWER: frozenset({Action.READ}),
}
"""What each membership role allows."""

_ADMIN_ACTIONS: Final = frozenset({Action.READ, Action.MANAGE})

SCOPE_FOR: Final[dict[Action, str]] = {
    Action.READ: "read",
    Action.WRITE: "control",
    Action.MANAGE: "control",
}
"""The token scope each action needs (API-key tokens also need ``admin`` to manage)."""


def visible(caller: Caller, role: Role | None) -> bool:
    """Whether the caller may know the home exists (a member, or an admin)."""
    return role is not None or caller.is_admin


def token_denies(caller: Caller, home: str, action: Action) -> DenyReason | None:
    """Why the token itself forbids ``action`` in ``home`` (its homes, its scope), or None."""
    if not caller.may_use_home(home):
        return "token_homes"
    if not caller.has_scope(SCOPE_FOR[action]):
        return "scope"
    if action is Action.MANAGE and caller.is_api_key and not caller.has_scope("admin"):
        return "scope"
    return None


def role_allows(caller: Caller, role: Role | None, action: Action) -> bool:
    """Whether the membership ``role`` (or the admin role) allows ``action``."""
    if role is not None and action in ROLE_ACTIONS[role]:
        return True
    return caller.is_admin and action in _ADMIN_ACTIONS


def check_access(caller: Caller, home: str, role: Role | None, action: Action) -> DenyReason | None:
    """Why ``caller`` (holding ``role`` in ``home``) may not do ``action`` there, or None.

    Checks visibility, then the token, then the role (see the module docstring).
    """
    if not visible(caller, role):
        return "not_found"
    denied = token_denies(caller, home, action)
    if denied is not None:
        return denied
    if not role_allows(caller, role, action):
        return "role"
    return None
