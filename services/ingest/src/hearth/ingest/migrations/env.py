"""Alembic environment of the ingest service (schema ``ingest``)."""

from hearth.common.migrations import run_env
from hearth.ingest.models import IngestModel

run_env(IngestModel.metadata)
