"""What ingest's routes need: its state and the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hearth.common.web import state_dependency
from hearth.ingest.service import IngestService
from hearth.ingest.state import IngestState

__all__ = ["ServiceDep", "StateDep"]

StateDep = Annotated[IngestState, Depends(state_dependency(IngestState))]
"""Everything the app was built with (:class:`~hearth.ingest.state.IngestState`)."""


def _service(state: StateDep) -> IngestService:
    return state.service


ServiceDep = Annotated[IngestService, Depends(_service)]
"""The app's :class:`~hearth.ingest.service.IngestService`."""
