"""IngestSettings: how an ingest replica connects, batches and keeps rejects (HEARTH_INGEST_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from hearth.common.errors import ConfigError
from hearth.common.settings import HearthSettings, ServiceUrl

__all__ = ["IngestSettings"]


class IngestSettings(HearthSettings):
    """The ingest service's settings; ``database_url`` is required."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_INGEST_")

    service: str = "ingest"
    database_url: SecretStr | None = Field(
        default=None, description="postgresql+asyncpg://...; required."
    )

    batch_max_rows: int = Field(
        default=5000, ge=1, le=50_000, description="A batch is written at this many messages..."
    )
    batch_max_delay: float = Field(
        default=0.05, gt=0, le=10, description="...or this many seconds after its first message."
    )
    receive_maximum: int = Field(
        default=10_000,
        ge=1,
        le=65_535,
        description="MQTT 5 Receive Maximum: QoS 1 messages the broker may have in flight "
        "toward this replica; at least two batches so the next fills while one commits.",
    )
    session_expiry: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        description="Seconds the broker keeps this replica's session and queue while it is away.",
    )
    mqtt_keepalive: int = Field(default=30, ge=5, le=3600)

    rejects_per_second: float = Field(
        default=10.0, gt=0, description="Rejects kept in the table per second (token bucket)..."
    )
    rejects_burst: int = Field(default=100, ge=1, description="...with this burst.")
    reject_payload_bytes: int = Field(
        default=256, ge=0, le=4096, description="How much of a rejected payload is kept."
    )

    seen_ids_ttl: float = Field(
        default=24 * 3600.0, gt=0, description="Seconds a message id is remembered for dedup."
    )
    cleanup_interval: float = Field(
        default=300.0, gt=0, description="Seconds between purges of expired message ids."
    )

    registry_url: ServiceUrl = Field(
        default="http://127.0.0.1:8102",
        description="Base URL of the registry (POST /registry/authorize, GET homes).",
    )
    registry_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds per registry call."
    )
    authorize_cache_size: int = Field(
        default=50_000, ge=0, description="Registry answers kept at most (0: no cache)."
    )

    history_max_range_days: int = Field(
        default=400, ge=1, le=3660, description="Widest from..to of a series, in days."
    )
    history_max_points: int = Field(
        default=10_000,
        ge=1,
        le=100_000,
        description="Most raw points or buckets one series answer holds.",
    )
    export_max_range_days: int = Field(
        default=3660, ge=1, le=36_600, description="Widest from..to of an export, in days."
    )
    import_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Largest CSV body POST .../import accepts (413 beyond).",
    )
    import_max_age_days: int = Field(
        default=3660, ge=1, le=36_600, description="Oldest device timestamp an import accepts."
    )

    retention_days: int = Field(
        default=365,
        ge=1,
        le=36_600,
        description="Days raw readings are kept in a home that sets none of its own "
        "(PUT /telemetry/homes/{home}/retention changes one home's).",
    )
    rollup_minute_days: int = Field(
        default=730, ge=1, le=36_600, description="Days 1-minute rollups are kept."
    )
    rollup_hour_days: int = Field(
        default=3660, ge=1, le=36_600, description="Days 1-hour rollups are kept."
    )
    partitions_ahead: int = Field(
        default=3, ge=1, le=24, description="Monthly partitions made ahead of the current one."
    )
    maintenance_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between runs of the storage job (partitions, rollups, retention).",
    )
    rollup_batch: int = Field(
        default=20_000, ge=1, description="Minutes rolled up per transaction."
    )
    retention_delete_batch: int = Field(
        default=10_000, ge=1, description="Readings one retention delete removes at most."
    )

    test_hold_dir: Path | None = Field(
        default=None,
        description="TEST HOOK, refused in production: a folder in which the files "
        "'hold-before-commit' / 'hold-before-ack' make the writer stop at that point "
        "(see hearth.ingest.hooks).",
    )

    @model_validator(mode="after")
    def _check_ingest(self) -> Self:
        self.require_database_url()
        if self.test_hold_dir is not None and self.is_production:
            raise ConfigError("HEARTH_INGEST_TEST_HOLD_DIR is a test hook, refused in production")
        if not self.retention_days <= self.rollup_minute_days <= self.rollup_hour_days:
            raise ConfigError(
                "rollups are kept longer than raw readings: HEARTH_INGEST_RETENTION_DAYS <= "
                "HEARTH_INGEST_ROLLUP_MINUTE_DAYS <= HEARTH_INGEST_ROLLUP_HOUR_DAYS"
            )
        if self.receive_maximum < self.batch_max_rows:
            raise ConfigError(
                "HEARTH_INGEST_RECEIVE_MAXIMUM must be >= HEARTH_INGEST_BATCH_MAX_ROWS"
            )
        return self

    @property
    def database(self) -> str:
        """The database URL as text (a secret: never log it)."""
        return self.require_database_url()
