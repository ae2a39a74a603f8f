"""The platform's one notion of "now": an aware UTC datetime with millisecond precision.

Millisecond precision is the platform's unit of time everywhere a moment is written down:
message timestamps are RFC 3339 with three fraction digits, token ``iat`` and revocation
marks are milliseconds. :func:`utc_now` truncates (never rounds up), so a moment taken
now is never in the future, and a value stored in a ``timestamptz`` column and read back
compares equal to the one written.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_now"]


def utc_now() -> datetime:
    """Now, as an aware UTC datetime truncated to milliseconds."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
