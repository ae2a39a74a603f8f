"""The ingest service's Prometheus metrics, registered in the app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hearth.ingest.rejects import REASONS

__all__ = ["IngestMetrics"]


class IngestMetrics:
    """Counters and histograms of the telemetry pipeline (names below, ``_total`` for counters)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "hearth_ingest_messages_received",
            "Telemetry deliveries taken from the broker (retained and rejected included).",
            registry=registry,
        )
        self.stored = Counter(
            "hearth_ingest_rows_stored", "Telemetry rows committed.", registry=registry
        )
        self.duplicates = Counter(
            "hearth_ingest_duplicates_absorbed",
            "Readings not stored because the same reading was stored before (ts or id).",
            registry=registry,
        )
        self.rejected = Counter(
            "hearth_ingest_rejected",
            "Telemetry payloads refused, by reason (all acknowledged).",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:
            self.rejected.labels(reason)
        self.rejects_not_kept = Counter(
            "hearth_ingest_rejects_not_kept",
            "Rejects counted but not kept in the reject table (rate limit).",
            registry=registry,
        )
        self.discovered = Counter(
            "hearth_ingest_discovered_reported",
            "Undeclared metrics stored and reported to the registry as discovered.",
            registry=registry,
        )
        self.retained_skipped = Counter(
            "hearth_ingest_retained_skipped",
            "Deliveries flagged retained, acknowledged without storing.",
            registry=registry,
        )
        self.stale_acks = Counter(
            "hearth_ingest_stale_acks",
            "Committed deliveries not acknowledged because their connection was gone "
            "(the broker redelivers them; they are absorbed as duplicates).",
            registry=registry,
        )
        self.write_errors = Counter(
            "hearth_ingest_write_errors",
            "Failed batch writes (the batch is retried, nothing is acknowledged).",
            registry=registry,
        )
        self.seen_ids_purged = Counter(
            "hearth_ingest_seen_ids_purged",
            "Message ids forgotten after their dedup window.",
            registry=registry,
        )
        self.batch_rows = Histogram(
            "hearth_ingest_batch_size",
            "Deliveries per batch.",
            registry=registry,
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000),
        )
        self.batch_seconds = Histogram(
            "hearth_ingest_batch_write_seconds",
            "Time from the start of a batch write to its commit.",
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.batch_latency = Histogram(
            "hearth_ingest_batch_latency_seconds",
            "Time from a batch's first delivery to its acknowledgement.",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.connected = Gauge(
            "hearth_ingest_broker_connected",
            "1 while subscribed at the broker, else 0.",
            registry=registry,
        )
