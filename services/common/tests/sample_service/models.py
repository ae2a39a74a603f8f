"""The sample service's tables, in their own schema ``sample`` with their own metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from hearth.common.db import service_registry

SCHEMA = "sample"


class SampleModel(SQLModel, registry=service_registry(SCHEMA)):
    """Base of every sample table model: tables land in schema ``sample``."""


class Gadget(SampleModel, table=True):
    """A thing with the column kinds services use: text, number, flag, time."""

    __table_args__ = (UniqueConstraint("home", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    home: str = Field(max_length=63, index=True)
    name: str = Field(max_length=63)
    reading: float | None = None
    enabled: bool = True
    seen_at: datetime
