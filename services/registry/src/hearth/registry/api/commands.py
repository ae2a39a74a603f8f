"""Command routes: send a command to a device (optionally waiting for its ack), the log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from hearth.common.auth import CurrentCaller
from hearth.common.commands import CommandRecord, CommandRequest
from hearth.common.inputs import page_size
from hearth.common.problems import Problem
from hearth.registry.api.deps import READ_ERRORS, WRITE_ERRORS, StateDep
from hearth.registry.api.params import DeviceSlug, HomeSlug
from hearth.registry.commands import CommandService

__all__ = ["router"]

router = APIRouter(prefix="/registry/homes/{home}/devices/{device}/commands", tags=["commands"])


def _commands(state: StateDep) -> CommandService:
    return state.commands


CommandsDep = Annotated[CommandService, Depends(_commands)]

_SEND_ERRORS: dict[int | str, dict[str, object]] = {
    **WRITE_ERRORS,
    422: {
        "model": Problem,
        "description": "Unknown property (unknown_property), or a value the capability "
        "refuses (invalid_value: the detail names the bound)",
    },
    503: {
        "model": Problem,
        "description": "The broker did not take the command, or too "
        "many calls wait for acks (too_many_waiting)",
    },
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, summary="Send a command", responses=_SEND_ERRORS
)
async def send_command(
    home: HomeSlug,
    device: DeviceSlug,
    body: CommandRequest,
    caller: CurrentCaller,
    commands: CommandsDep,
    response: Response,
) -> CommandRecord:
    """Members and owners set a property of a device; the value is checked against its
    capability. Published at QoS 1 with ``expires_at`` (now + ``ttl``) and the MQTT 5
    message expiry. With ``wait`` the answer waits for the verdict: ``done``,
    ``rejected`` (with the device's ``reason``), ``expired`` or ``timeout``; without,
    ``outcome`` is ``null`` and the log tells later."""
    record = await commands.send(caller, home, device, body)
    response.headers["Location"] = f"/registry/homes/{home}/devices/{device}/commands"
    return record


@router.get("", summary="The device's command log", responses=READ_ERRORS)
async def list_commands(
    home: HomeSlug,
    device: DeviceSlug,
    caller: CurrentCaller,
    commands: CommandsDep,
    since: Annotated[
        datetime | None, Query(description="Only commands issued after this moment.")
    ] = None,
    limit: Annotated[int, page_size(500), Query(description="At most this many.")] = 100,
) -> list[CommandRecord]:
    """Every command of the device issued after ``since`` with its outcome, newest first
    (members, owners and viewers)."""
    return await commands.history(caller, home, device, since=since, limit=limit)
