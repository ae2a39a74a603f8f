"""Ingest's own errors (all :class:`~hearth.common.errors.ServiceError` subclasses).

```
ServiceError
├── Forbidden
│   └── HistoryForbidden    403 history_forbidden: the registry says no (not a member of the
│                           home, a role, scope or token that does not allow it)
├── NotFound
│   └── TelemetryNotFound   404 telemetry_not_found: no such device or metric in a home the
│                           caller may read
├── InvalidQuery            422 invalid_query: a bad time range, bucket or aggregate
│   └── RangeTooLarge       422 range_too_large: wider than the range or point bounds
├── InvalidRetention        422 invalid_retention: longer than the rollups are kept
├── RetentionNotFound       404 retention_not_found: no such override to remove
├── InvalidImport           422 invalid_import: not a CSV with the expected header
└── ImportTooLarge          413 import_too_large: more lines than an import may hold
```

``RegistryUnavailable`` (503, :mod:`hearth.common.registry_client`) is raised as it is.
"""

from __future__ import annotations

from hearth.common.errors import Forbidden, NotFound, ServiceError

__all__ = [
    "HistoryForbidden",
    "ImportTooLarge",
    "InvalidImport",
    "InvalidQuery",
    "InvalidRetention",
    "RangeTooLarge",
    "RetentionNotFound",
    "TelemetryNotFound",
]


class HistoryForbidden(Forbidden):
    """The registry does not let the caller do this in the home."""

    code = "history_forbidden"
    title = "Forbidden"


class TelemetryNotFound(NotFound):
    """No such device or metric in a home the caller may read."""

    code = "telemetry_not_found"
    title = "Device or metric not found"


class InvalidQuery(ServiceError):
    """A query parameter combination that cannot be answered (e.g. ``from`` after ``to``)."""

    status = 422
    code = "invalid_query"
    title = "Invalid query"


class RangeTooLarge(InvalidQuery):
    """The range or the number of points asked for is beyond the stated bounds."""

    code = "range_too_large"
    title = "Range too large"


class InvalidImport(ServiceError):
    """The import body is not a CSV file with the expected header."""

    status = 422
    code = "invalid_import"
    title = "Invalid import file"


class ImportTooLarge(ServiceError):
    """The import holds more lines than one import may."""

    status = 413
    code = "import_too_large"
    title = "Import too large"


class InvalidRetention(ServiceError):
    """A retention the storage cannot honour (longer than the rollups are kept)."""

    status = 422
    code = "invalid_retention"
    title = "Invalid retention"


class RetentionNotFound(NotFound):
    """No such retention setting to remove."""

    code = "retention_not_found"
    title = "Retention setting not found"
