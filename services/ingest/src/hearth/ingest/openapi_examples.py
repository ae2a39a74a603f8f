"""Ingest's OpenAPI: its tag and one example per answer schema, the CSV import and export.

``create_app`` hands ``TAGS`` and ``EXAMPLES`` to ``create_service_app``
(:mod:`hearth.common.openapi_conventions`); the import and export routes use ``CSV`` and
``EXPORT``. services/platform/tests/test_openapi_conventions.py checks each example against
its schema.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["CSV", "EXAMPLES", "EXPORT", "TAGS"]

TAGS: Final = [
    {
        "name": "history",
        "description": "Stored readings: series, latest values, export, import, rejects.",
    },
    {
        "name": "retention",
        "description": "How long a home's readings are kept (and its rollups), with shorter "
        "overrides per device and per metric.",
    },
]

CSV: Final = (
    "device,metric,ts,value\n"
    "kitchen-th,temperature,2026-11-29T08:00:00Z,21.5\n"
    "kitchen-th,temperature,2026-11-29T08:01:00Z,21.6\n"
)
"""What ``POST .../import`` reads and ``GET .../export?format=csv`` writes."""

EXPORT: Final[dict[str, dict[str, Any]]] = {
    "text/csv; charset=utf-8": {"example": CSV},
    "application/x-ndjson": {
        "example": '{"device":"kitchen-th","metric":"temperature",'
        '"ts":"2026-11-29T08:00:00Z","value":21.5}\n'
    },
}

_AT: Final = "2026-11-29T08:00:00Z"

EXAMPLES: Final[dict[str, Any]] = {
    "SeriesOut": {
        "home": "maple-house",
        "device": "kitchen-th",
        "metric": "temperature",
        "from": "2026-11-29T00:00:00Z",
        "to": "2026-11-29T12:00:00Z",
        "bucket": "1h",
        "agg": "avg",
        "tz": "Europe/Berlin",
        "source": "rollup_hour",
        "truncated": False,
        "points": [{"ts": _AT, "value": 21.4, "count": 60}],
    },
    "LatestOut": {
        "home": "maple-house",
        "values": [
            {"device": "kitchen-th", "metric": "temperature", "ts": _AT, "value": 21.5},
            {"device": "lamp", "metric": "power", "ts": _AT, "value": True},
        ],
    },
    "ImportReport": {
        "status": "done",
        "lines": 3,
        "stored": 2,
        "duplicates": 0,
        "errors_total": 1,
        "errors": [{"line": 3, "error": "value: not a number"}],
    },
    "RejectOut": {
        "received_at": _AT,
        "topic": "hearth/maple-house/kitchen-th/telemetry/temperature",
        "device": "kitchen-th",
        "reason": "invalid_payload",
        "detail": "not JSON and not a number",
        "payload": "twenty-one",
        "payload_base64": None,
        "payload_size": 10,
        "truncated": False,
    },
    "RetentionIn": {"days": 90},
    "RetentionOut": {
        "home": "maple-house",
        "days": 365,
        "default": False,
        "overrides": [{"device": "kitchen-th", "metric": None, "days": 30}],
        "rollup_minute_days": 730,
        "rollup_hour_days": 3660,
    },
}
"""Schema name -> example."""
