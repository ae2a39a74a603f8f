"""RealtimeMetrics: the realtime service's Prometheus metrics, in its app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["RealtimeMetrics"]


class RealtimeMetrics:
    """Connections, rooms, broker subscriptions, deliveries, bursts, refusals, withdrawals."""

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
            "Room messages handed to sockets (one per socket per room), alone or in bursts.",
            registry=registry,
        )
        self.bursts = Counter(
            "hearth_realtime_bursts_total",
            "messages events sent: bursts coalesced while a socket was backlogged.",
            registry=registry,
        )
        self.conflated = Counter(
            "hearth_realtime_messages_conflated_total",
            "Room messages replaced by a newer value of their topic before a socket that "
            "could not keep up was sent them (the newer one carries conflated: n).",
            registry=registry,
        )
        self.slow_disconnects = Counter(
            "hearth_realtime_slow_disconnects_total",
            "Sockets disconnected because their backlog reached its limit.",
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
