"""The registry's tables (schema ``registry``) and the schemas its API reads and writes.

One family per entity: ``HomeCreate``/``HomeUpdate`` in, ``HomePublic`` out; the same
for members and devices. Table models are never returned as they are. Every input model
forbids unknown fields.

A deleted device stays as a row with ``deleted_at`` set (its tombstone): the primary key
``(home, slug)`` then keeps the slug from ever being used again in that home, and every
query for live devices filters on ``deleted_at IS NULL``.

A device's broker password is kept sealed (``password_sealed``, see
:mod:`hearth.registry.passwords`), not hashed: dynsec 2.0.11 takes plain-text passwords
only and the broker must be rebuildable from this table. ``credentials_generation``
counts the passwords it had (the login's dynsec description names the one the broker
holds). A tombstone keeps neither.
"""

from __future__ import annotations

import functools
import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    Field,
    JsonValue,
    field_validator,
)
from pydantic import model_validator as pydantic_model_validator
from sqlalchemy import Column, Index, LargeBinary, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from hearth.common.authorization import Role
from hearth.common.capabilities import Metric, Property, check_unique_names
from hearth.common.capability_feed import MAX_METRICS, DeviceSnapshot
from hearth.common.clock import utc_now
from hearth.common.commands import CommandRecord
from hearth.common.db import service_registry, timestamp_column
from hearth.common.inputs import FreeText, Slug, Text
from hearth.common.messages import CommandOutcome, StatusReason
from hearth.common.schemas import InputModel
from hearth.common.usernames import Username
from hearth.registry.catalogue import DeviceTypeName

__all__ = [
    "SCHEMA",
    "CommandRow",
    "Device",
    "DeviceCreate",
    "DeviceCredentials",
    "DeviceDetail",
    "DevicePublic",
    "DeviceUpdate",
    "DeviceWithCredentials",
    "Home",
    "HomeCreate",
    "HomePublic",
    "HomeUpdate",
    "MemberAdd",
    "MemberPublic",
    "MemberUpdate",
    "Membership",
    "PropertyState",
    "RegistryModel",
]

SCHEMA = "registry"

Name = Annotated[str, FreeText(100, min_length=1)]
"""A home's or device's name: free text, 1 to 100 characters."""
Area = Annotated[str, FreeText(63)]
"""Where a device is (``kitchen``): free text, at most 63 characters."""
TimeZone = Annotated[str, Text(64, min_length=1)]
"""An IANA time zone name (checked against the system's list)."""
Interval = Annotated[int, Field(ge=1, le=86400, description="Expected seconds between messages.")]


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError("must be an IANA time zone name such as Europe/Berlin or UTC")
    return value


# ----------------------------------------------------------------------------- tables


class RegistryModel(SQLModel, registry=service_registry(SCHEMA)):
    """Base of every registry table model: tables land in schema ``registry``."""


class Home(RegistryModel, table=True):
    """A home: the unit of membership and of every topic's second level."""

    __tablename__ = "homes"

    slug: str = SQLField(primary_key=True, max_length=63)
    name: str = SQLField(max_length=100)
    timezone: str = SQLField(max_length=64)
    created_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())
    updated_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())


class Membership(RegistryModel, table=True):
    """A user's role in a home; ``username`` is auth's (immutable there) at the time of adding."""

    __tablename__ = "memberships"

    home: str = SQLField(
        primary_key=True, max_length=63, foreign_key="registry.homes.slug", ondelete="CASCADE"
    )
    user_id: uuid.UUID = SQLField(primary_key=True, index=True)
    role: str = SQLField(max_length=16)
    username: str = SQLField(max_length=63)
    created_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())
    updated_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())


class Device(RegistryModel, table=True):
    """A device of a home with its capabilities; a tombstone once ``deleted_at`` is set."""

    __tablename__ = "devices"

    home: str = SQLField(
        primary_key=True, max_length=63, foreign_key="registry.homes.slug", ondelete="CASCADE"
    )
    slug: str = SQLField(primary_key=True, max_length=63)
    name: str = SQLField(max_length=100)
    type: str = SQLField(max_length=63)
    area: str = SQLField(default="", max_length=63)
    gateway: str | None = SQLField(default=None, max_length=63)
    interval: int
    metrics: list[dict[str, Any]] = SQLField(
        default_factory=list, sa_column=Column(JSONB, nullable=False)
    )
    properties: list[dict[str, Any]] = SQLField(
        default_factory=list, sa_column=Column(JSONB, nullable=False)
    )
    refuse_undeclared: bool = SQLField(default=False)
    created_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())
    updated_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())
    deleted_at: datetime | None = SQLField(default=None, sa_column=timestamp_column(nullable=True))
    disabled: bool = SQLField(default=False, sa_column_kwargs={"server_default": "false"})
    password_sealed: bytes | None = SQLField(
        default=None, sa_column=Column(LargeBinary, nullable=True), repr=False
    )
    credentials_generation: int = SQLField(default=0, sa_column_kwargs={"server_default": "0"})
    online: bool = SQLField(default=False, sa_column_kwargs={"server_default": "false"})
    presence_reason: str | None = SQLField(default=None, max_length=16)
    presence_at: datetime | None = SQLField(default=None, sa_column=timestamp_column(nullable=True))

    def find_metric(self, name: str) -> Metric | None:
        """The registered metric ``name``, or ``None``."""
        for item in self.metrics:
            if item.get("name") == name:
                return Metric.model_validate(item)
        return None

    def snapshot(self) -> DeviceSnapshot:
        """What ingest is told of this device (:mod:`hearth.common.capability_feed`)."""
        return DeviceSnapshot(
            home=self.home,
            device=self.slug,
            metrics=[Metric.model_validate(m) for m in self.metrics],
            refuse_undeclared=self.refuse_undeclared,
        )

    def find_property(self, name: str) -> Property | None:
        """The registered property ``name``, or ``None``."""
        for item in self.properties:
            if item.get("name") == name:
                return Property.model_validate(item)
        return None


class CommandRow(RegistryModel, table=True):
    """One command sent to a device and what became of it (the command log).

    ``outcome`` stays ``NULL`` until the device's ack or the registry's ``expired``
    (recorded once: the first verdict wins).
    """

    __tablename__ = "commands"
    __table_args__ = (
        Index("ix_commands_device_issued", "home", "device", "issued_at"),
        Index("ix_commands_pending_expiry", "expires_at", postgresql_where=text("outcome IS NULL")),
    )

    id: uuid.UUID = SQLField(primary_key=True)
    home: str = SQLField(max_length=63, foreign_key="registry.homes.slug", ondelete="CASCADE")
    device: str = SQLField(max_length=63)
    property: str = SQLField(max_length=63)
    value: Any = SQLField(sa_column=Column(JSONB, nullable=False))
    issued_at: datetime = SQLField(sa_column=timestamp_column())
    expires_at: datetime | None = SQLField(default=None, sa_column=timestamp_column(nullable=True))
    by: uuid.UUID
    outcome: str | None = SQLField(default=None, max_length=16)
    reason: str | None = SQLField(default=None, max_length=200)
    result: Any = SQLField(default=None, sa_column=Column(JSONB, nullable=True))
    answered_at: datetime | None = SQLField(default=None, sa_column=timestamp_column(nullable=True))

    def record(self) -> CommandRecord:
        """The command as the API shows it."""
        return CommandRecord(
            id=self.id,
            home=self.home,
            device=self.device,
            property=self.property,
            value=self.value,
            issued_at=self.issued_at,
            expires_at=self.expires_at,
            by=self.by,
            outcome=None if self.outcome is None else CommandOutcome(self.outcome),
            reason=self.reason,
            result=self.result,
            answered_at=self.answered_at,
        )


# ----------------------------------------------------------------------------- schemas


class HomeCreate(InputModel):
    """Create a home; its creator becomes its owner. The slug never changes."""

    slug: Slug
    name: Name
    timezone: TimeZone = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)


class HomeUpdate(InputModel):
    """Rename a home or change its time zone (owners)."""

    name: Name | None = None
    timezone: TimeZone | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class HomePublic(BaseModel):
    """A home as the API shows it, with the caller's role in it (``null`` for an admin)."""

    slug: str
    name: str
    timezone: str
    role: Role | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, home: Home, role: Role | None) -> HomePublic:
        """The public face of ``home`` for a caller holding ``role``."""
        return cls(
            slug=home.slug,
            name=home.name,
            timezone=home.timezone,
            role=role,
            created_at=home.created_at,
            updated_at=home.updated_at,
        )


class MemberAdd(InputModel):
    """Add a user (by auth username) to a home with a role (owners)."""

    username: Username
    role: Role = Role.MEMBER


class MemberUpdate(InputModel):
    """Change a member's role (owners)."""

    role: Role


class MemberPublic(BaseModel):
    """A member of a home."""

    user_id: uuid.UUID
    username: str
    role: Role
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, membership: Membership) -> MemberPublic:
        """The public face of ``membership``."""
        return cls(
            user_id=membership.user_id,
            username=membership.username,
            role=Role(membership.role),
            created_at=membership.created_at,
            updated_at=membership.updated_at,
        )


RefuseUndeclared = Annotated[
    bool,
    Field(
        description="Refuse readings of metrics the device does not declare (rejected "
        "`undeclared_metric`) instead of storing them and adding them as discovered metrics."
    ),
]


class _Capabilities(InputModel):
    metrics: Annotated[list[Metric], Field(max_length=MAX_METRICS)] | None = None
    properties: Annotated[list[Property], Field(max_length=64)] | None = None
    refuse_undeclared: RefuseUndeclared | None = None

    @pydantic_model_validator(mode="after")
    def _unique(self) -> Self:
        check_unique_names(self.metrics or [], "metric")
        check_unique_names(self.properties or [], "property")
        return self


class DeviceCreate(_Capabilities):
    """Add a device to a home (owners). The type's catalogue entry fills the interval,
    metrics and properties that are not given."""

    slug: Slug
    name: Name
    type: DeviceTypeName = "generic"
    area: Area = ""
    gateway: Slug | None = None
    interval: Interval | None = None


class DeviceUpdate(_Capabilities):
    """Change a device (owners); slug and type never change. ``gateway: null`` clears it.

    ``disabled: true`` refuses the device's broker login (and disconnects it) until
    ``disabled: false``.
    """

    name: Name | None = None
    area: Area | None = None
    gateway: Slug | None = None
    interval: Interval | None = None
    disabled: bool | None = None


class DevicePublic(BaseModel):
    """A device as the API shows it."""

    home: str
    slug: str
    name: str
    type: str
    area: str
    gateway: str | None
    interval: int
    metrics: list[Metric]
    properties: list[Property]
    disabled: bool
    online: bool = Field(description="Whether the device is connected (its last status).")
    status_reason: StatusReason | None = Field(
        description="Why it is online or offline: connected, will, disconnect or silent."
    )
    last_seen: datetime | None = Field(
        description="When the registry last heard the device (any message of its own)."
    )
    refuse_undeclared: RefuseUndeclared
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, device: Device, last_seen: datetime | None = None) -> DevicePublic:
        """The public face of ``device`` (``last_seen`` from the live shadow, if known)."""
        heard = device.presence_at if device.presence_reason in _DEVICE_SAID else None
        if heard is not None and (last_seen is None or heard > last_seen):
            last_seen = heard
        reason = device.presence_reason
        return cls(
            home=device.home,
            slug=device.slug,
            name=device.name,
            type=device.type,
            area=device.area,
            gateway=device.gateway,
            interval=device.interval,
            metrics=[Metric.model_validate(m) for m in device.metrics],
            properties=[Property.model_validate(p) for p in device.properties],
            disabled=device.disabled,
            online=device.online,
            status_reason=None if reason is None else StatusReason(reason),
            last_seen=last_seen,
            refuse_undeclared=device.refuse_undeclared,
            created_at=device.created_at,
            updated_at=device.updated_at,
        )


_DEVICE_SAID = frozenset({StatusReason.CONNECTED.value, StatusReason.DISCONNECT.value})
"""Statuses the device itself publishes: their time is a time it was heard."""


class PropertyState(BaseModel):
    """One property in a device's shadow: what the device reports, what was last asked.

    ``mismatch`` is true when a command asked for a value and the device does not report
    that value (yet, or at all: a rejected or expired command leaves it true).
    """

    reported: JsonValue = None
    reported_at: datetime | None = None
    desired: JsonValue = None
    desired_at: datetime | None = None
    desired_outcome: CommandOutcome | None = None
    mismatch: bool = False


class DeviceDetail(DevicePublic):
    """A device with its shadow: each property's reported and desired state."""

    state: dict[str, PropertyState]


class DeviceCredentials(BaseModel):
    """A device's broker login: shown once, when it is created or rotated."""

    username: str = Field(description="The broker login, dev.<home>.<device>.")
    password: str = Field(
        description="Shown only in this answer; the registry keeps it sealed.", repr=False
    )
    client_id: str = Field(description="The only client id the login may use (the username).")


class DeviceWithCredentials(DevicePublic):
    """A device with its new broker login (the answer of create and of a rotation)."""

    credentials: DeviceCredentials
