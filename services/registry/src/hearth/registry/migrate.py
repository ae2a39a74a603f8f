"""The registry's migrations (schema ``registry``) and the one ``migrate`` its lifespan and
CLI run."""

from __future__ import annotations

from hearth.common.migrations import Migrations
from hearth.registry.config import RegistrySettings
from hearth.registry.models import RegistryModel

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS = Migrations("hearth.registry:migrations", RegistryModel.metadata)
"""Alembic over ``src/hearth/registry/migrations``; tables and version table in ``registry``."""


async def migrate(settings: RegistrySettings | None = None) -> str:
    """Wait for the database and bring schema ``registry`` to head; where it stands."""
    return await MIGRATIONS.migrate(settings or RegistrySettings.load())
