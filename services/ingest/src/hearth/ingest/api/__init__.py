"""Ingest's HTTP routes: the history API under ``/telemetry/homes/{home}/...``.

One router per resource: :mod:`~hearth.ingest.api.series` (a metric's readings, raw or
bucketed), :mod:`~hearth.ingest.api.latest`, :mod:`~hearth.ingest.api.export`,
:mod:`~hearth.ingest.api.imports`, :mod:`~hearth.ingest.api.rejects`,
:mod:`~hearth.ingest.api.retention`. Every route is
authorised by the registry (:mod:`hearth.ingest.history`). Beside them, the standard
``/healthz``, ``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

from fastapi import APIRouter

from hearth.ingest.api import export, imports, latest, rejects, retention, series

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    series.router,
    latest.router,
    export.router,
    imports.router,
    rejects.router,
    retention.router,
)
"""Every router of the app, included by ``create_app``."""
