"""The reconcile route: make the broker's device logins match the registry, on demand."""

from __future__ import annotations

from fastapi import APIRouter

from hearth.common.auth import CurrentCaller
from hearth.common.problems import Problem
from hearth.registry.api.deps import ServiceDep
from hearth.registry.device_logins import ReconcileReport

__all__ = ["router"]

router = APIRouter(prefix="/registry", tags=["devices"])


@router.post(
    "/reconcile",
    summary="Make the broker's device logins match the registry (platform admins)",
    responses={
        401: {"model": Problem, "description": "No valid access token"},
        403: {"model": Problem, "description": "Not a platform admin"},
        503: {"model": Problem, "description": "The broker did not answer"},
    },
)
async def reconcile(caller: CurrentCaller, service: ServiceDep) -> ReconcileReport:
    """Creates missing device logins with their stored passwords, deletes device logins
    the registry does not know, repairs roles, passwords and the disabled flag; never
    touches a platform login. Also runs when the registry starts."""
    return await service.reconcile_for(caller)
