"""The registry's migrations (schema ``registry``): ``MIGRATIONS.upgrade(url)``."""

from __future__ import annotations

from hearth.common.migrations import Migrations
from hearth.registry.models import RegistryModel

__all__ = ["MIGRATIONS"]

MIGRATIONS = Migrations("hearth.registry:migrations", RegistryModel.metadata)
"""Alembic over ``src/hearth/registry/migrations``; tables and version table in ``registry``."""
