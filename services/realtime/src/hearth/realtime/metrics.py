"""RealtimeMetrics: the realtime service's Prometheus metrics, in its app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["RealtimeMetrics"]


class RealtimeMetrics:
    """Connections, rooms, broker subscriptions, deliveries, refusals and withdrawals."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "hearth_realtime_connections", "Connected Socket.IO sockets.", registry=registry
        )
        self.rooms = Gauge(
            "hearth_realtime_rooms", "Occupied rooms on this replica.", registry=registry
        )
        self.broker_subscriptions = Gauge(
            "hearth_realtime_broker_subscriptions",
            "Broker subscriptions held for rooms (one per occupied room).",
            registry=registry,
        )
        self.delivered = Counter(
            "hearth_realtime_messages_delivered_total",
            "message events sent to sockets (one per socket per room).",
            registry=registry,
        )
        self.refusals = Counter(
            "hearth_realtime_refusals_total",
            "Refused connects and subscribes, by event and error code.",
            ["event", "code"],
            registry=registry,
        )
        self.withdrawals = Counter(
            "hearth_realtime_withdrawals_total",
            "Sockets removed from a room (revoked) or disconnected, by reason.",
            ["reason"],
            registry=registry,
        )
