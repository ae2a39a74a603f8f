"""Alembic environment of the auth service."""

from hearth.auth.models import AuthModel
from hearth.common.migrations import run_env

run_env(AuthModel.metadata)
