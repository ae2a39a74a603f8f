"""Per-device rate limits: over the limit is acked, counted, sampled, and holds nobody up.

Unit tests of :class:`hearth.ingest.rate.DeviceRateLimiter` on a fake clock, then the real
thing: an ingest subprocess with a limit of 20 msg/s (burst 50) on a broker and database of
the test's own; one device floods 600 messages, another sends 100 within its limit at the
same time.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from hearth.common.telemetry import RejectReason
from hearth.ingest.rate import DeviceRateLimiter
from hearth.testing.broker import DeviceLoginFactory, MqttClientFactory, RunningBroker
from hearth.testing.database import fetch, run_async
from hearth.testing.devices import register_device
from hearth.testing.ingest import BOUND, IngestProcess, wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_per_device_refills_at_the_rate() -> None:
    clock = Clock()
    rates = DeviceRateLimiter(10, 5, clock=clock)
    assert [rates.allow("h", "flood") for _ in range(7)] == [True] * 5 + [False] * 2
    assert rates.allow("h", "calm")  # another device has its own bucket (positive control)
    clock.now = 0.5  # five tokens back
    assert [rates.allow("h", "flood") for _ in range(6)] == [True] * 5 + [False]


def test_one_sample_per_device_per_period() -> None:
    clock = Clock()
    rates = DeviceRateLimiter(1, 1, sample_period=60, clock=clock)
    rates.allow("h", "d")
    assert not rates.allow("h", "d")
    assert rates.sample("h", "d")
    assert not rates.sample("h", "d")
    clock.now = 61
    assert rates.sample("h", "d")


def test_buckets_are_bounded_in_number() -> None:
    rates = DeviceRateLimiter(1, 1, max_devices=100)
    for i in range(1_000):
        rates.allow("h", f"d{i}")
    assert len(rates) == 100


def test_a_flooding_device_is_limited_and_the_others_are_not_held_up(
    fresh_broker: RunningBroker,
    ingest_db: str,
    tmp_path: Path,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    home, flood_n, calm_n = "rates", 600, 100
    registrar = mqtt_client(fresh_broker, fresh_broker.service_login("registry", "registrar"))
    for device in ("flood", "calm"):
        register_device(registrar, home, device, ["seq"])
    ingest = IngestProcess(
        fresh_broker,
        ingest_db,
        tmp_path,
        replica="rates",
        env={"HEARTH_INGEST_DEVICE_RATE": "20", "HEARTH_INGEST_DEVICE_BURST": "50"},
    )
    ingest.start()
    flood = mqtt_client(fresh_broker, device_login(home, "flood", broker=fresh_broker))
    calm = mqtt_client(fresh_broker, device_login(home, "calm", broker=fresh_broker))

    def send(client: object, device: str, count: int, pause: float) -> None:
        infos = []
        for seq in range(count):
            body = json.dumps({"value": seq, "id": f"{device}-{seq}"}).encode()
            infos.append(client.publish(f"hearth/{home}/{device}/telemetry/seq", body, qos=1))  # type: ignore[attr-defined]
            if pause:
                time.sleep(pause)  # the calm device paces itself at ~10 msg/s, under its limit
        for info in infos:
            info.wait_for_publish(BOUND)

    started = time.monotonic()
    threads = [
        threading.Thread(target=send, args=(flood, "flood", flood_n, 0.0)),
        threading.Thread(target=send, args=(calm, "calm", calm_n, 0.1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    elapsed = time.monotonic() - started

    def counts() -> dict[str, int]:
        rows = run_async(
            fetch(ingest_db, "SELECT device, count(*) AS n FROM ingest.telemetry GROUP BY 1")
        )
        return {r["device"]: r["n"] for r in rows}

    def limited() -> float:
        return ingest.counter(
            f'hearth_ingest_rejected_total{{reason="{RejectReason.RATE_LIMITED.value}"}}'
        )

    wait_until(
        lambda: (
            counts().get("calm", 0) == calm_n and counts().get("flood", 0) + limited() == flood_n
        ),
        BOUND,
        "every message stored or counted",
    )
    stored = counts()
    # The calm device is not held up: every one of its messages stored (positive control).
    assert stored["calm"] == calm_n
    # The flood got its burst and its rate over the time it took, and no more.
    assert 50 <= stored["flood"] <= 50 + 20 * elapsed + 1
    assert limited() == flood_n - stored["flood"] > 0
    # Sampled: one kept reject for the flooding device (one per minute), none for the calm one.
    kept = run_async(
        fetch(ingest_db, "SELECT device, reason, detail FROM ingest.reject ORDER BY id")
    )
    assert [(r["device"], r["reason"]) for r in kept] == [("flood", "rate_limited")]
    assert "20 messages/s" in kept[0]["detail"]
    ingest.stop()
