"""Alembic environment of the registry service."""

from hearth.common.migrations import run_env
from hearth.registry.models import RegistryModel

run_env(RegistryModel.metadata)
