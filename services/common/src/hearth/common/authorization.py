"""The registry's authorisation contract: may this user do this on a topic, filter or home?

One copy for both sides: the registry answers ``POST /registry/authorize`` with these
models, and every other service asks it through
:class:`hearth.common.registry_client.RegistryClient`, which sends the same request and
reads the same answer.

- The caller forwards the user's own bearer token, so the registry judges the user (and
  the token's scope and homes) itself.
- :class:`AuthorizeRequest`: an :class:`Action` on exactly one of a device ``topic``, a
  subscription ``filter`` (read only) or a ``home`` slug.
- :class:`AuthorizeAnswer`: allowed or not, the :data:`DenyReason` when not, the caller's
  :class:`Role` in the home, the property's capability on an allowed write to a command
  topic, and ``ttl``: how many seconds the answer may be cached. Denials are answered
  200 too, so callers cache them as well.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal, Self, get_args

from pydantic import BaseModel
from pydantic import model_validator as pydantic_model_validator

from hearth.common.capabilities import Property
from hearth.common.inputs import Text
from hearth.common.schemas import InputModel

__all__ = [
    "DENY_REASONS",
    "Action",
    "AuthorizeAnswer",
    "AuthorizeRequest",
    "DenyReason",
    "Role",
]


class Role(StrEnum):
    """A member's role in a home."""

    OWNER = "owner"
    """Manages everything: the home, its members, its devices; reads and controls."""
    MEMBER = "member"
    """Reads and controls (sends commands)."""
    VIEWER = "viewer"
    """Reads only (the classroom student)."""


class Action(StrEnum):
    """What a caller asks to do in a home."""

    READ = "read"
    WRITE = "write"
    MANAGE = "manage"


class AuthorizeRequest(InputModel):
    """May the caller (the user whose token is forwarded) do ``action`` on one target?

    Exactly one of ``topic`` (a device topic), ``filter`` (a subscription filter, read
    only) or ``home`` (a home slug) is given.
    """

    action: Action
    topic: Annotated[str, Text(1024, min_length=1)] | None = None
    filter: Annotated[str, Text(1024, min_length=1)] | None = None
    home: Annotated[str, Text(63, min_length=1)] | None = None

    @pydantic_model_validator(mode="after")
    def _one_target(self) -> Self:
        given = [name for name in ("topic", "filter", "home") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of topic, filter or home")
        return self


DenyReason = Literal[
    "invalid",
    "not_found",
    "role",
    "scope",
    "token_homes",
    "not_command",
    "filter_outside_home",
    "filter_read_only",
]
"""Why the registry says no: ``invalid`` (not a target of the grammar, or a filter that can
match no device topic), ``not_found`` (no such home, device or name, or one the user may
not see), ``role`` (the role does not allow the action), ``scope`` and ``token_homes`` (the
token does not), ``not_command`` (a write to a topic that is not a command topic),
``filter_outside_home`` (a filter that can reach beyond one home), ``filter_read_only``."""

DENY_REASONS: Final[tuple[DenyReason, ...]] = get_args(DenyReason)
"""Every :data:`DenyReason`, in order."""


class AuthorizeAnswer(BaseModel):
    """The registry's answer: allowed or not, why not, the caller's role, how long to cache.

    ``role`` is the caller's membership role in the target's home (``null`` when none, or
    when the target names no home). ``capability`` is the property's capability on an
    allowed write to a command topic. Denied answers are 200 too, so callers cache them.
    """

    allowed: bool
    role: Role | None = None
    reason: DenyReason | None = None
    capability: Property | None = None
    ttl: int
