"""Ingest's migrations (schema ``ingest``) and the one ``migrate`` its lifespan and CLI run."""

from __future__ import annotations

from hearth.common.migrations import Migrations
from hearth.ingest.config import IngestSettings
from hearth.ingest.models import IngestModel

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS = Migrations("hearth.ingest:migrations", IngestModel.metadata)
"""Alembic over ``src/hearth/ingest/migrations``; tables and version table in ``ingest``."""


async def migrate(settings: IngestSettings | None = None) -> str:
    """Wait for the database and bring schema ``ingest`` to head; where it stands."""
    return await MIGRATIONS.migrate(settings or IngestSettings.load())
