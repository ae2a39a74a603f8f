"""What the registry's routes need: its state, the service, the responses they document."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hearth.common.problems import Problem
from hearth.common.web import state_dependency
from hearth.registry.service import RegistryService
from hearth.registry.state import RegistryState

__all__ = ["READ_ERRORS", "WRITE_ERRORS", "ServiceDep", "StateDep"]

StateDep = Annotated[RegistryState, Depends(state_dependency(RegistryState))]
"""Everything the app was built with (:class:`~hearth.registry.state.RegistryState`)."""


def _service(state: StateDep) -> RegistryService:
    return state.service


ServiceDep = Annotated[RegistryService, Depends(_service)]
"""The app's :class:`RegistryService`."""

READ_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No valid access token"},
    403: {"model": Problem, "description": "The token lacks the scope"},
    404: {"model": Problem, "description": "No such home (or not one of yours), or no such item"},
}
"""The problems every route reading a home's data may answer."""

WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    **READ_ERRORS,
    403: {"model": Problem, "description": "Your role or your token's scope does not allow it"},
    409: {"model": Problem, "description": "Conflicts with the current state"},
}
"""The problems every route changing a home's data may answer."""
