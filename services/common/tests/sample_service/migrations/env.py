"""Alembic environment of the sample service (what every service's env.py looks like)."""

from hearth.common.migrations import run_env
from sample_service.models import SampleModel

run_env(SampleModel.metadata)
