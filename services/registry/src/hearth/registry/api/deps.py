"""What the registry's routes need: the service and the responses they document."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.common.problems import Problem
from hearth.registry.service import RegistryService

__all__ = ["READ_ERRORS", "WRITE_ERRORS", "ServiceDep"]


def _service(request: Request) -> RegistryService:
    service = request.app.state.registry_service
    assert isinstance(service, RegistryService)
    return service


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
