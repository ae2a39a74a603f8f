"""Auth's migrations (schema ``auth``) and the one ``migrate`` its lifespan and CLI run."""

from __future__ import annotations

from hearth.auth.config import AuthSettings
from hearth.auth.models import AuthModel
from hearth.common.migrations import Migrations

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS = Migrations("hearth.auth:migrations", AuthModel.metadata)
"""Alembic over ``src/hearth/auth/migrations``; tables and version table in schema ``auth``."""


async def migrate(settings: AuthSettings | None = None) -> str:
    """Wait for the database and bring schema ``auth`` to head; where it stands."""
    return await MIGRATIONS.migrate(settings or AuthSettings.load())
