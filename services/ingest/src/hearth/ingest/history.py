"""HistoryService: the rules of the history API, knowing nothing of FastAPI, SQL or MQTT.

Every call is authorised by the registry first, through the shared
:class:`~hearth.common.registry_client.RegistryClient` (the caller's own token forwarded;
answers cached and dropped on the registry's change events):

| call | asked of the registry |
| --- | --- |
| series | ``read`` on the topic ``hearth/{home}/{device}/telemetry/{metric}`` |
| latest, export, rejects | ``read`` on the home |
| import | ``manage`` on the home, then ``read`` on each (device, metric) topic in the file |

A denial becomes a problem: the registry's ``not_found`` for a caller who may see the home
(a member or an admin) is 404 ``telemetry_not_found`` (no such device or declared metric);
for anyone else it is 403 ``history_forbidden``, the same whether the home exists or not,
so homes cannot be discovered by probing; ``role``, ``scope``, ``token_homes`` are 403 too.

Bounds (:class:`HistoryLimits`, from the settings): a series spans at most
``max_range`` and answers at most ``max_points`` points or buckets; an export spans at
most ``export_max_range``; beyond, 422 ``range_too_large``. Day buckets are aligned to
the home's time zone (:class:`~hearth.ingest.homes.HomeZones`).
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from hearth.common.authorization import Action
from hearth.common.db import Transactions
from hearth.common.errors import Unauthorized
from hearth.common.messages import format_timestamp
from hearth.common.registry_client import Decision, RegistryClient
from hearth.common.tokens import Caller
from hearth.common.topics import parse_filter, telemetry_topic
from hearth.ingest.config import IngestSettings
from hearth.ingest.errors import (
    HistoryForbidden,
    InvalidQuery,
    RangeTooLarge,
    TelemetryNotFound,
)
from hearth.ingest.history_repository import HistoryRepository
from hearth.ingest.homes import HomeZones
from hearth.ingest.imports import ImportLine, LineError, read_lines
from hearth.ingest.models import (
    Aggregate,
    BucketPoint,
    ImportLineError,
    ImportReport,
    LatestOut,
    LatestValue,
    Point,
    RejectOut,
    SeriesOut,
)
from hearth.ingest.repository import IngestRepository, ReadingRow

__all__ = [
    "EXPORT_MEDIA_TYPES",
    "Bucket",
    "ExportFormat",
    "HistoryLimits",
    "HistoryService",
    "SeriesSource",
    "body_lines",
    "check_range",
    "refuse",
    "rollup_source",
]

log = logging.getLogger(__name__)


class Bucket(StrEnum):
    """Bucket widths a series may be cut into (``1d``: calendar days in the home's zone)."""

    MINUTE = "1m"
    FIVE_MINUTES = "5m"
    FIFTEEN_MINUTES = "15m"
    HOUR = "1h"
    SIX_HOURS = "6h"
    DAY = "1d"


_STEPS: Final[dict[Bucket, timedelta]] = {
    Bucket.MINUTE: timedelta(minutes=1),
    Bucket.FIVE_MINUTES: timedelta(minutes=5),
    Bucket.FIFTEEN_MINUTES: timedelta(minutes=15),
    Bucket.HOUR: timedelta(hours=1),
    Bucket.SIX_HOURS: timedelta(hours=6),
    Bucket.DAY: timedelta(days=1),
}


class SeriesSource(StrEnum):
    """Where a bucketed series may be read from: ``auto`` (rollups when the bucket allows)
    or ``raw`` (always the raw rows)."""

    AUTO = "auto"
    RAW = "raw"


_HOUR: Final = timedelta(hours=1)
_MINUTE: Final = timedelta(minutes=1)


def _aligned(moment: datetime, unit: timedelta) -> bool:
    return moment.timestamp() % unit.total_seconds() == 0


def _whole_hour_zone(zone: str, start: datetime, end: datetime) -> bool:
    """Whether ``zone``'s offset is whole hours on every day from ``start`` to ``end``."""
    tz = ZoneInfo(zone)
    day = start
    while day <= end + timedelta(days=1):
        offset = day.astimezone(tz).utcoffset() or timedelta()
        if offset % _HOUR:
            return False
        day += timedelta(days=1)
    return True


def rollup_source(bucket: Bucket, start: datetime, end: datetime, zone: str | None) -> str:
    """The coarsest storage a bucketed answer can be read from exactly: ``hour`` rollups
    when the bucket is whole hours (day buckets: in a zone whose offset is whole hours)
    and ``from``/``to`` fall on hours, else ``minute`` rollups when they fall on minutes,
    else ``raw`` rows (a rollup bucket must lie entirely inside from..to)."""
    whole_hours = _STEPS[bucket] % _HOUR == timedelta()
    if (
        whole_hours
        and _aligned(start, _HOUR)
        and _aligned(end, _HOUR)
        and (zone is None or _whole_hour_zone(zone, start, end))
    ):
        return "hour"
    if _aligned(start, _MINUTE) and _aligned(end, _MINUTE):
        return "minute"
    return "raw"


class ExportFormat(StrEnum):
    """What an export is written as."""

    CSV = "csv"
    NDJSON = "ndjson"


EXPORT_MEDIA_TYPES: Final[dict[ExportFormat, str]] = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.NDJSON: "application/x-ndjson",
}


@dataclass(frozen=True)
class HistoryLimits:
    """The history API's bounds (stated in OpenAPI; 422 ``range_too_large`` beyond)."""

    max_range: timedelta = timedelta(days=400)
    max_points: int = 10_000
    export_max_range: timedelta = timedelta(days=3660)
    import_max_age: timedelta = timedelta(days=3660)
    import_batch: int = 5000
    import_errors_shown: int = 100
    import_max_metrics: int = 1000
    max_latest: int = 10_000
    max_rejects: int = 1000

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> HistoryLimits:
        """The bounds the settings give."""
        return cls(
            max_range=timedelta(days=settings.history_max_range_days),
            max_points=settings.history_max_points,
            export_max_range=timedelta(days=settings.export_max_range_days),
            import_max_age=timedelta(days=settings.import_max_age_days),
        )


def _value(value: float, is_bool: bool) -> float | bool:
    return bool(value) if is_bool else value


def _shown(value: float, is_bool: bool) -> str:
    """A value as both CSV and JSON write it: ``true``/``false``, or the float's repr (finite:
    the parser never stores NaN or infinity)."""
    if is_bool:
        return "true" if value else "false"
    return repr(value)


# Slugs, RFC 3339 times and finite numbers need no quoting or escaping in either format.
_CSV_LINE: Final = "{device},{metric},{ts},{value}\r\n"
_NDJSON_LINE: Final = '{{"device":"{device}","metric":"{metric}","ts":"{ts}","value":{value}}}\n'


def refuse(caller: Caller, decision: Decision, what: str) -> None:
    """Raise the problem for a denied ``decision`` (see the module docstring)."""
    if decision.allowed:
        return
    if decision.reason == "unauthorized":
        raise Unauthorized("the registry refused the access token")
    if decision.reason == "invalid":
        raise InvalidQuery(f"{what} is not a valid target")
    if decision.reason == "not_found" and (decision.role is not None or caller.is_admin):
        raise TelemetryNotFound(f"{what} does not exist")
    raise HistoryForbidden(f"you may not do this with {what} ({decision.reason})")


def check_range(start: datetime, end: datetime, widest: timedelta) -> None:
    """Refuse ``start >= end`` (422 ``invalid_query``) or a span wider than ``widest``."""
    if start >= end:
        raise InvalidQuery("'from' must be before 'to'")
    if end - start > widest:
        raise RangeTooLarge(
            f"from..to spans {end - start}; at most {widest.days} days may be asked at once"
        )


class HistoryService:
    """The history API's rules (see the module docstring)."""

    def __init__(
        self,
        history: Transactions[HistoryRepository],
        writes: Transactions[IngestRepository],
        registry: RegistryClient,
        zones: HomeZones,
        limits: HistoryLimits | None = None,
    ) -> None:
        self._history = history
        self._writes = writes
        self._registry = registry
        self._zones = zones
        self.limits = limits or HistoryLimits()

    # ------------------------------------------------------------------ authorisation

    async def _may_read_metric(self, caller: Caller, home: str, device: str, metric: str) -> None:
        target = parse_filter(telemetry_topic(home, device, metric))
        decision = await self._registry.may_read(caller, target)
        refuse(caller, decision, f"metric {metric!r} of device {device!r} in home {home!r}")

    async def _may(self, caller: Caller, action: Action, home: str) -> None:
        decision = await self._registry.authorize_home(caller, action, home)
        refuse(caller, decision, f"home {home!r}")

    # ------------------------------------------------------------------ series

    async def series(
        self,
        caller: Caller,
        home: str,
        device: str,
        metric: str,
        *,
        start: datetime,
        end: datetime,
        bucket: Bucket | None,
        agg: Aggregate,
        limit: int,
        source: SeriesSource = SeriesSource.AUTO,
    ) -> SeriesOut:
        """Raw points (up to ``limit``) or one aggregate per bucket, ``start`` to ``end``;
        buckets from the rollups when ``source`` is ``auto`` and the bucket allows
        (:func:`rollup_source`). The answer's ``source`` says which was read."""
        check_range(start, end, self.limits.max_range)
        if bucket is not None and (end - start) / _STEPS[bucket] > self.limits.max_points:
            raise RangeTooLarge(
                f"{bucket.value} buckets over from..to would be more than "
                f"{self.limits.max_points}: use a wider bucket or a shorter range"
            )
        await self._may_read_metric(caller, home, device, metric)
        zone = await self._zones.zone(caller, home) if bucket is Bucket.DAY else None
        points: list[Point] | list[BucketPoint]
        truncated = False
        used = "raw"
        async with self._history() as repo:
            if bucket is None:
                rows = await repo.raw(home, device, metric, start, end, limit + 1)
                truncated = len(rows) > limit
                points = [Point(ts=r.ts, value=_value(r.value, r.is_bool)) for r in rows[:limit]]
            else:
                if source is SeriesSource.AUTO:
                    used = rollup_source(bucket, start, end, zone)
                buckets = await repo.buckets(
                    home,
                    device,
                    metric,
                    start,
                    end,
                    agg,
                    step=_STEPS[bucket],
                    zone=zone,
                    source=used,
                )
                points = [BucketPoint(ts=b.ts, value=b.value, count=b.count) for b in buckets]
        return SeriesOut(
            home=home,
            device=device,
            metric=metric,
            from_=start,
            to=end,
            bucket=bucket.value if bucket is not None else None,
            agg=agg if bucket is not None else None,
            tz=zone,
            source="raw" if used == "raw" else f"rollup_{used}",
            truncated=truncated,
            points=points,
        )

    # ------------------------------------------------------------------ latest, rejects

    async def latest(self, caller: Caller, home: str) -> LatestOut:
        """The newest reading of every metric of every device of ``home``."""
        await self._may(caller, Action.READ, home)
        async with self._history() as repo:
            rows = await repo.latest(home, self.limits.max_latest)
        return LatestOut(
            home=home,
            values=[
                LatestValue(
                    device=r.device, metric=r.metric, ts=r.ts, value=_value(r.value, r.is_bool)
                )
                for r in rows
            ],
        )

    async def rejects(
        self, caller: Caller, home: str, *, device: str | None, since: datetime, limit: int
    ) -> list[RejectOut]:
        """The newest kept rejects of ``home`` (of ``device`` if given), newest first."""
        await self._may(caller, Action.READ, home)
        async with self._history() as repo:
            rows = await repo.rejects(home, device, since, limit)
        out = []
        for r in rows:
            try:
                shown, encoded = r.payload.decode("utf-8"), None
            except UnicodeDecodeError:
                shown, encoded = None, base64.b64encode(r.payload).decode("ascii")
            if shown is not None and any(ord(c) < 32 and c not in "\t\n\r" for c in shown):
                shown, encoded = None, base64.b64encode(r.payload).decode("ascii")
            out.append(
                RejectOut(
                    received_at=r.received_at,
                    topic=r.topic,
                    device=r.device,
                    reason=r.reason,
                    detail=r.detail,
                    payload=shown,
                    payload_base64=encoded,
                    payload_size=r.payload_size,
                    truncated=len(r.payload) < r.payload_size,
                )
            )
        return out

    # ------------------------------------------------------------------ export

    async def check_export(self, caller: Caller, home: str, start: datetime, end: datetime) -> None:
        """Refuse an export before its response starts (range, then the registry)."""
        check_range(start, end, self.limits.export_max_range)
        await self._may(caller, Action.READ, home)

    async def export(
        self,
        home: str,
        *,
        start: datetime,
        end: datetime,
        device: str | None,
        metric: str | None,
        fmt: ExportFormat,
    ) -> AsyncIterator[bytes]:
        """The export's bytes, a partition of rows at a time (call :meth:`check_export` first)."""
        if fmt is ExportFormat.CSV:
            yield b"device,metric,ts,value\r\n"
        async with self._history() as repo:
            async for rows in repo.export(home, start, end, device, metric):
                line = _CSV_LINE if fmt is ExportFormat.CSV else _NDJSON_LINE
                yield "".join(
                    line.format(
                        device=r.device,
                        metric=r.metric,
                        ts=format_timestamp(r.ts),
                        value=_shown(r.value, r.is_bool),
                    )
                    for r in rows
                ).encode("utf-8")

    # ------------------------------------------------------------------ import

    async def import_csv(
        self, caller: Caller, home: str, text_lines: Iterable[str]
    ) -> ImportReport:
        """Store a CSV backfill (see :mod:`hearth.ingest.imports`); nothing is stored twice.

        Lines are read and stored ``import_batch`` at a time, each batch in its own
        transaction through the live path's deduplication (a reading with a device time
        is unique on home, device, metric and time): importing a file again, or the rest
        of a file after a failure, stores only what is not stored yet.
        """
        await self._may(caller, Action.MANAGE, home)
        limits = self.limits
        now = datetime.now(UTC)
        allowed: dict[tuple[str, str], str | None] = {}
        errors: list[ImportLineError] = []
        report = {"lines": 0, "stored": 0, "duplicates": 0, "errors": 0}
        batch: list[ReadingRow] = []

        def refuse_line(line: int, error: str) -> None:
            report["errors"] += 1
            if len(errors) < limits.import_errors_shown:
                errors.append(ImportLineError(line=line, error=error))

        async def flush() -> None:
            if batch:
                async with self._writes() as repo:
                    result = await repo.write_batch(batch)
                    await repo.commit()
                report["stored"] += result.stored
                report["duplicates"] += result.duplicates
                batch.clear()
                log.info(
                    "history import",
                    extra={"home": home, **report},
                )

        for item in read_lines(text_lines, now=now, max_age=limits.import_max_age):
            report["lines"] += 1
            if isinstance(item, LineError):
                refuse_line(item.line, item.error)
                continue
            problem = await self._check_pair(caller, home, item, allowed)
            if problem is not None:
                refuse_line(item.line, problem)
                continue
            batch.append(
                ReadingRow(
                    home=home,
                    device=item.device,
                    metric=item.metric,
                    value=item.value,
                    is_bool=item.is_bool,
                    ts=item.ts,
                    msg_id=None,
                    received_at=now,
                )
            )
            if len(batch) >= limits.import_batch:
                await flush()
        await flush()
        return ImportReport(
            lines=report["lines"],
            stored=report["stored"],
            duplicates=report["duplicates"],
            errors_total=report["errors"],
            errors=errors,
        )

    async def _check_pair(
        self,
        caller: Caller,
        home: str,
        item: ImportLine,
        allowed: dict[tuple[str, str], str | None],
    ) -> str | None:
        """Why ``item``'s device and metric cannot be imported, or ``None`` (memoised)."""
        key = (item.device, item.metric)
        if key in allowed:
            return allowed[key]
        if len(allowed) >= self.limits.import_max_metrics:
            return f"more than {self.limits.import_max_metrics} device metrics in one import"
        try:
            await self._may_read_metric(caller, home, item.device, item.metric)
        except TelemetryNotFound:
            allowed[key] = (
                f"device {item.device!r} has no metric {item.metric!r} (or no such device)"
            )
        except HistoryForbidden as exc:
            allowed[key] = exc.message
        else:
            allowed[key] = None
        return allowed[key]


def body_lines(body: bytes) -> Iterator[str]:
    """The lines of an import body, decoded as it is read (bytes that are not UTF-8 become
    U+FFFD, so their line is refused by the line's own checks, not the whole file)."""
    return io.TextIOWrapper(io.BytesIO(body), encoding="utf-8", errors="replace", newline="")
