"""The authorisation API and the device-type catalogue.

``POST /registry/authorize`` is called by other services with the user's own bearer
token forwarded: the caller *is* the user. Denials are answered 200 with ``allowed:
false`` and a ``reason`` (never 403), so callers can cache every answer for ``ttl``
seconds (also sent as ``Cache-Control: private, max-age=<ttl>``). Only a request
that is not an authorisation question at all (no valid token: 401; a malformed body:
422) is an error.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from hearth.common.auth import CurrentCaller
from hearth.common.authorization import AuthorizeAnswer, AuthorizeRequest
from hearth.common.problems import Problem
from hearth.registry.api.deps import ServiceDep
from hearth.registry.catalogue import CATALOGUE, DeviceType

__all__ = ["router"]

router = APIRouter(prefix="/registry")


@router.post(
    "/authorize",
    tags=["authorisation"],
    summary="May this user read, write or manage this topic, filter or home?",
    responses={401: {"model": Problem, "description": "No valid access token"}},
)
async def authorize(
    body: AuthorizeRequest, caller: CurrentCaller, service: ServiceDep, response: Response
) -> AuthorizeAnswer:
    """Allowed only if the target exists, the user's role allows the action, and the
    token's scope and homes do; writes go to command topics only, filters are read
    only and stay inside one home. A denial is a 200 with ``allowed: false``."""
    answer = await service.authorize(caller, body)
    response.headers["Cache-Control"] = f"private, max-age={answer.ttl}"
    return answer


@router.get("/device-types", summary="The catalogue of ready-made device types", tags=["devices"])
async def device_types(_caller: CurrentCaller) -> list[DeviceType]:
    """Each type's default interval, metrics and properties."""
    return list(CATALOGUE.values())
