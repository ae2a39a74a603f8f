"""What ingest's routes need: its state, the services, the shared parameters and problems."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Path, Query

from hearth.common.inputs import Slug
from hearth.common.problems import Problem
from hearth.common.web import state_dependency
from hearth.ingest.errors import InvalidQuery
from hearth.ingest.history import HistoryService
from hearth.ingest.service import IngestService
from hearth.ingest.state import IngestState

__all__ = [
    "HISTORY_ERRORS",
    "DeviceSlug",
    "HistoryDep",
    "HomeSlug",
    "MetricSlug",
    "ServiceDep",
    "StateDep",
    "TimeRange",
    "aware",
]

StateDep = Annotated[IngestState, Depends(state_dependency(IngestState))]
"""Everything the app was built with (:class:`~hearth.ingest.state.IngestState`)."""


def _service(state: StateDep) -> IngestService:
    return state.service


ServiceDep = Annotated[IngestService, Depends(_service)]
"""The app's :class:`~hearth.ingest.service.IngestService`."""


def _history(state: StateDep) -> HistoryService:
    return state.history


HistoryDep = Annotated[HistoryService, Depends(_history)]
"""The app's :class:`~hearth.ingest.history.HistoryService`."""

HomeSlug = Annotated[Slug, Path(description="The home's slug.")]
DeviceSlug = Annotated[Slug, Path(description="The device's slug.")]
MetricSlug = Annotated[Slug, Path(description="The metric's name.")]

HISTORY_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No valid access token"},
    403: {
        "model": Problem,
        "description": "history_forbidden: not a home of yours, or your role, scope or "
        "token does not allow it",
    },
    404: {"model": Problem, "description": "telemetry_not_found: no such device or metric"},
    422: {
        "model": Problem,
        "description": "invalid_query (e.g. from after to, a time without an offset) or "
        "range_too_large (beyond the stated bounds)",
    },
    503: {"model": Problem, "description": "registry_unavailable: the registry did not answer"},
}
"""The problems every history route may answer."""


def aware(value: datetime | None, name: str) -> datetime | None:
    """``value`` in UTC; 422 ``invalid_query`` when it has no UTC offset."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidQuery(f"'{name}' needs a UTC offset (e.g. 2026-01-01T00:00:00Z)")
    return value.astimezone(UTC)


class TimeRange:
    """``from`` (inclusive) and ``to`` (exclusive): RFC 3339 with an offset.

    ``to`` defaults to now and ``from`` to one day before ``to``.
    """

    def __init__(
        self,
        from_: Annotated[
            datetime | None,
            Query(alias="from", description="Start, inclusive (default: a day before 'to')."),
        ] = None,
        to: Annotated[datetime | None, Query(description="End, exclusive (default: now).")] = None,
    ) -> None:
        end = aware(to, "to") or datetime.now(UTC)
        self.end = end
        self.start = aware(from_, "from") or end - timedelta(days=1)
