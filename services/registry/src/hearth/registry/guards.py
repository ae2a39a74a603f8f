"""The access checks every use case starts with: the home (and device) when the caller may.

Anything of a home the caller may not see answers 404 (``home_not_found``), exactly as for
a home that does not exist; a visible home where the caller's role falls short answers 403
(``role_forbidden``); a token lacking a scope 403 (``insufficient_scope``). The rules
themselves are :mod:`hearth.registry.access`; these functions apply them inside a
transaction (:class:`~hearth.registry.repository.RegistryRepository`).
"""

from __future__ import annotations

import uuid
from typing import NoReturn

from hearth.common.authorization import Action, DenyReason, Role
from hearth.common.errors import InsufficientScope
from hearth.common.tokens import Caller
from hearth.registry.access import SCOPE_FOR, check_access
from hearth.registry.errors import DeviceNotFound, HomeNotFound, RoleForbids
from hearth.registry.models import Device, Home
from hearth.registry.repository import RegistryRepository

__all__ = ["guard_device", "guard_home", "raise_denied", "user_id"]


def user_id(caller: Caller) -> uuid.UUID:
    """The caller's user id as a UUID."""
    return uuid.UUID(caller.user_id)


def raise_denied(reason: DenyReason, home: str, action: Action) -> NoReturn:
    """Raise the error that answers ``reason`` (404, or 403 naming the scope or the role)."""
    if reason in ("not_found", "token_homes"):
        raise HomeNotFound(f"no home {home!r}")
    if reason == "scope":
        scope = SCOPE_FOR[action]
        raise InsufficientScope(scope if action is not Action.MANAGE else f"{scope} admin")
    raise RoleForbids(f"your role in {home!r} does not allow {action.value}")


async def guard_home(
    repo: RegistryRepository,
    caller: Caller,
    slug: str,
    action: Action,
    *,
    lock: bool = False,
) -> tuple[Home, Role | None]:
    """The home and the caller's role in it, when ``action`` is allowed; else raise.

    ``lock``: lock the home row for update (serialises membership changes).
    """
    home = await (repo.lock_home if lock else repo.get_home)(slug)
    role = await repo.find_role(slug, user_id(caller)) if home else None
    if home is None:
        raise HomeNotFound(f"no home {slug!r}")
    reason = check_access(caller, slug, role, action)
    if reason is not None:
        raise_denied(reason, slug, action)
    return home, role


async def guard_device(
    repo: RegistryRepository,
    caller: Caller,
    slug: str,
    device: str,
    action: Action,
    *,
    changes_login: bool = False,
) -> Device:
    """The live device when ``action`` is allowed on its home; else raise.

    ``changes_login``: hold the device-logins lock shared (see ``lock_logins``) first.
    """
    await guard_home(repo, caller, slug, action)
    if changes_login:
        await repo.lock_logins()
    found = await repo.get_device(slug, device)
    if found is None:
        raise DeviceNotFound(f"no device {device!r} in {slug!r}")
    return found
