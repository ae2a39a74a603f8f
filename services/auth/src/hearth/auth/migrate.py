"""The auth service's migrations (schema ``auth``): ``MIGRATIONS.upgrade(url)``."""

from __future__ import annotations

from hearth.auth.models import AuthModel
from hearth.common.migrations import Migrations

__all__ = ["MIGRATIONS"]

MIGRATIONS = Migrations("hearth.auth:migrations", AuthModel.metadata)
"""Alembic over ``src/hearth/auth/migrations``; tables and version table in schema ``auth``."""
