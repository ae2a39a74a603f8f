"""Reading a CSV backfill: one reading per line, or the reason the line is refused.

The file (UTF-8, ``text/csv``) starts with the header ``device,metric,ts,value`` (the
columns in any order, nothing else); every other line is one reading:

- ``device``, ``metric``: slugs (``[a-z0-9][a-z0-9-]{0,62}``);
- ``ts``: the device's time, RFC 3339 with an offset (``2026-01-01T00:00:00Z``) or epoch
  seconds; not more than 5 minutes ahead and at most ``max_age`` old (older than the live
  parser's 30 days: that is what a backfill is for);
- ``value``: what a device may publish as a bare payload: a number or ``true``/``false``
  (:func:`hearth.common.telemetry.parse_telemetry`, so the same bounds apply).

Blank lines are skipped. :func:`read_lines` yields an :class:`ImportLine` or a
:class:`LineError` for each line; it never raises for a bad line, only
:class:`~hearth.ingest.errors.InvalidImport` for a file that is not such a CSV at all.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from hearth.common.messages import format_timestamp, parse_timestamp
from hearth.common.telemetry import TelemetryRejected, parse_telemetry
from hearth.common.topics import is_slug
from hearth.ingest.errors import InvalidImport

__all__ = ["COLUMNS", "ImportLine", "LineError", "read_lines"]

COLUMNS: Final = ("device", "metric", "ts", "value")
"""The header of an import file (any order)."""
_MAX_FIELD = 100
_FUTURE_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ImportLine:
    """One accepted line."""

    line: int
    device: str
    metric: str
    ts: datetime
    value: float
    is_bool: bool


@dataclass(frozen=True, slots=True)
class LineError:
    """One refused line: its number (the header is line 1) and why."""

    line: int
    error: str


def _parse_ts(raw: str, now: datetime, max_age: timedelta) -> datetime:
    try:
        number = float(raw)
    except ValueError:
        ts = parse_timestamp(raw)
    else:
        ts = parse_timestamp(number)
    if ts > now + _FUTURE_SKEW:
        raise ValueError(f"ts {format_timestamp(ts)} is in the future")
    if ts < now - max_age:
        raise ValueError(f"ts {format_timestamp(ts)} is older than {max_age.days} days")
    return ts


def _read_line(
    number: int, fields: dict[str, str], now: datetime, max_age: timedelta
) -> ImportLine | LineError:
    device, metric = fields["device"].strip(), fields["metric"].strip()
    if not is_slug(device):
        return LineError(number, f"device {device[:_MAX_FIELD]!r} is not a slug")
    if not is_slug(metric):
        return LineError(number, f"metric {metric[:_MAX_FIELD]!r} is not a slug")
    try:
        ts = _parse_ts(fields["ts"].strip(), now, max_age)
    except (ValueError, OverflowError) as exc:
        return LineError(number, f"ts: {str(exc)[:200]}")
    raw_value = fields["value"].strip()
    if raw_value.startswith("{"):
        return LineError(number, "value: a number, true or false")
    try:
        reading = parse_telemetry(raw_value.encode("utf-8"))
    except TelemetryRejected as exc:
        return LineError(number, f"value: {exc.detail[:200]}")
    return ImportLine(number, device, metric, ts, reading.value, reading.is_bool)


def read_lines(
    lines: Iterable[str], *, now: datetime, max_age: timedelta
) -> Iterator[ImportLine | LineError]:
    """Each data line of a CSV import, read (see the module docstring).

    Raises :class:`InvalidImport` when the header is not ``device,metric,ts,value``.
    """
    reader = csv.reader(iter(lines))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise InvalidImport(
            "the file is empty: expected the header device,metric,ts,value"
        ) from None
    except csv.Error as exc:
        raise InvalidImport(f"the header is not CSV: {exc}") from None
    if sorted(header) != sorted(COLUMNS):
        raise InvalidImport(
            f"the header must be device,metric,ts,value (any order), not {','.join(header)[:200]}"
        )
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield LineError(reader.line_num, f"not CSV: {exc}")
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield LineError(reader.line_num, f"{len(row)} fields, expected {len(header)}")
            continue
        yield _read_line(reader.line_num, dict(zip(header, row, strict=True)), now, max_age)
