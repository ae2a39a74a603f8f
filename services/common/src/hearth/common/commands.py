"""The one command path's contract: what a caller asks the registry and what it answers.

``POST /registry/homes/{home}/devices/{device}/commands`` takes a :class:`CommandRequest`
and answers a :class:`CommandRecord`; ``GET .../commands`` lists records. Realtime's
``publish`` and automation call that same route with the caller's token (their requests
are built from these models, never retyped). The MQTT payloads the registry and the device
exchange are :class:`hearth.common.messages.Command` and :class:`~hearth.common.messages.Ack`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, JsonValue, StrictBool, StrictInt

from hearth.common.inputs import Slug, Text
from hearth.common.messages import CommandOutcome
from hearth.common.schemas import InputModel

__all__ = [
    "DEFAULT_TTL",
    "MAX_TTL",
    "MAX_WAIT",
    "CommandRecord",
    "CommandRequest",
    "CommandValue",
]

DEFAULT_TTL = 30
"""Seconds a command stays valid when the caller gives no ``ttl``."""
MAX_TTL = 86_400
"""The longest ``ttl`` (a day): a command is never "forever"."""
MAX_WAIT = 30.0
"""The longest ``wait`` a caller may ask for, in seconds."""

CommandValue = (
    StrictBool
    | StrictInt
    | Annotated[float, Field(strict=True, allow_inf_nan=False)]
    | Annotated[str, Text(63, min_length=1)]
)
"""What a command may set: a boolean, a number or an enum's text value."""


class CommandRequest(InputModel):
    """Set ``property`` of a device to ``value``.

    ``ttl``: seconds until the command expires (``expires_at``; the broker drops it from a
    sleeping device's queue then). ``wait``: seconds to wait for the device's ack (0 answers
    at once with ``outcome: null``).
    """

    property: Slug
    value: CommandValue
    ttl: Annotated[int, Field(ge=1, le=MAX_TTL)] = DEFAULT_TTL
    wait: Annotated[float, Field(ge=0, le=MAX_WAIT, allow_inf_nan=False)] = 0.0


class CommandRecord(BaseModel):
    """A command and what became of it, as the API shows it.

    ``outcome`` is ``null`` while no ack came and ``expires_at`` has not passed; ``timeout``
    appears only in the answer of a ``wait`` that ended first (the log then still says
    ``null`` until the ack or the expiry). ``reason`` is a rejection's reason, ``result``
    the value a ``done`` ack reported.
    """

    id: uuid.UUID
    home: str
    device: str
    property: str
    value: JsonValue
    issued_at: datetime
    expires_at: datetime | None
    by: uuid.UUID
    outcome: CommandOutcome | None
    reason: str | None = None
    result: JsonValue = None
    answered_at: datetime | None = None
