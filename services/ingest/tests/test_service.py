"""The ingest app in-process against a real Mosquitto and PostgreSQL: readings and rejects."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from hearth.common.telemetry import CAPABILITY_REASONS, RejectReason
from hearth.ingest.main import create_app
from hearth.ingest.rejects import INVALID_TOPIC
from hearth.testing.apps import RunningApp
from hearth.testing.broker import DeviceLoginFactory, MqttClientFactory, RunningBroker
from hearth.testing.database import fetch, run_async
from hearth.testing.devices import register_device
from hearth.testing.services import ingest_settings


def metric_values(url: str, name: str) -> dict[str, float]:
    """``{labels_text: value}`` of one metric family from ``/metrics``."""
    text = httpx.get(f"{url}/metrics").text
    found: dict[str, float] = {}
    for match in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE):
        found[match.group(1) or ""] = float(match.group(2))
    return found


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` every 20 ms until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def test_valid_readings_are_stored_and_each_reject_is_counted_and_kept(
    fresh_broker: RunningBroker,
    ingest_db: str,
    tmp_path: Path,
    app_server: Callable[..., RunningApp],
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    broker = fresh_broker
    app = app_server(
        create_app(ingest_settings(broker, ingest_db, tmp_path, replica="t1")),
        wait_path="/healthz",
    )
    wait_until(lambda: httpx.get(f"{app.url}/readyz").status_code == 200, what="/readyz")
    watcher = mqtt_client(broker, broker.admin)
    register_device(
        mqtt_client(broker, broker.service_login("registry", "registrar")), "h1", "d1", ["temp"]
    )
    watcher.subscribe_and_wait("hearth-sys/services/ingest/t1")
    birth = watcher.wait_for_messages(1)[0]
    assert json.loads(birth.payload)["state"] == "online"

    device = mqtt_client(broker, device_login("h1", "d1", broker=broker))
    now = datetime.now(UTC)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # noqa: E731
    valid = [
        b"21.5",
        b"true",
        json.dumps({"value": 2, "ts": iso(now - timedelta(seconds=1))}).encode(),
        json.dumps({"value": 3, "id": "boot1-1"}).encode(),
    ]
    bad: dict[str, tuple[str, bytes]] = {
        RejectReason.TOO_LARGE: ("temp", b"1" * 2000),
        RejectReason.INVALID_UTF8: ("temp", b"\xff\xfe21"),
        RejectReason.NOT_A_NUMBER: ("temp", b"hello"),
        RejectReason.NOT_FINITE: ("temp", b"NaN"),
        RejectReason.OUT_OF_RANGE: ("temp", b"1e13"),
        RejectReason.WRONG_SHAPE: ("temp", b"[1, 2]"),
        RejectReason.UNKNOWN_KEYS: ("temp", b'{"value": 1, "unit": "C"}'),
        RejectReason.TS_IN_FUTURE: (
            "temp",
            json.dumps({"value": 1, "ts": iso(now + timedelta(hours=1))}).encode(),
        ),
        RejectReason.TS_TOO_OLD: (
            "temp",
            json.dumps({"value": 1, "ts": iso(now - timedelta(days=60))}).encode(),
        ),
        INVALID_TOPIC: ("Temp", b"4"),
    }
    # Every reason of the parser (the capability checks: test_capabilities.py).
    assert set(bad) == {r.value for r in RejectReason if r not in CAPABILITY_REASONS} | {
        INVALID_TOPIC
    }
    # interleave: valid, bad, valid, bad...
    for i, (reason, (metric, payload)) in enumerate(bad.items()):
        if i < len(valid):
            device.publish_and_wait("hearth/h1/d1/telemetry/temp", valid[i])
        assert device.publish_and_wait(f"hearth/h1/d1/telemetry/{metric}", payload) is not None, (
            reason
        )

    def rejected() -> dict[str, float]:
        return {
            re.sub(r'\{reason="(.*)"\}', r"\1", k): v
            for k, v in metric_values(app.url, "hearth_ingest_rejected_total").items()
        }

    wait_until(lambda: sum(rejected().values()) >= len(bad), what="rejects counted")
    assert rejected() == dict.fromkeys(bad, 1.0) | dict.fromkeys(CAPABILITY_REASONS, 0.0)
    wait_until(
        lambda: metric_values(app.url, "hearth_ingest_rows_stored_total").get("") == len(valid),
        what="rows stored",
    )

    rows = run_async(
        fetch(ingest_db, "SELECT value, is_bool, device_ts, msg_id FROM ingest.telemetry")
    )
    assert sorted((r["value"], r["is_bool"], r["device_ts"], r["msg_id"]) for r in rows) == [
        (1.0, True, False, None),
        (2.0, False, True, None),
        (3.0, False, False, "boot1-1"),
        (21.5, False, False, None),
    ]
    kept = run_async(
        fetch(ingest_db, "SELECT topic, reason, payload, payload_size FROM ingest.reject")
    )
    assert {r["reason"]: (r["topic"], r["payload_size"]) for r in kept} == {
        reason: (f"hearth/h1/d1/telemetry/{metric}", len(payload))
        for reason, (metric, payload) in bad.items()
    }
    assert max(len(r["payload"]) for r in kept) == 256  # the 2,000-byte one, truncated
    counters = {
        name: metric_values(app.url, name).get("")
        for name in (
            "hearth_ingest_messages_received_total",
            "hearth_ingest_duplicates_absorbed_total",
            "hearth_ingest_rejects_not_kept_total",
        )
    }
    assert counters == {
        "hearth_ingest_messages_received_total": len(valid) + len(bad),
        "hearth_ingest_duplicates_absorbed_total": 0.0,
        "hearth_ingest_rejects_not_kept_total": 0.0,
    }

    app.stop()
    offline = watcher.wait_for_messages(2)[1]
    assert json.loads(offline.payload)["reason"] == "disconnect"

    # Everything was acknowledged (readings, rejects): the same session, resumed, gets
    # nothing again; only what is sent now.
    again = app_server(
        create_app(ingest_settings(broker, ingest_db, tmp_path, replica="t1")),
        wait_path="/healthz",
    )
    wait_until(lambda: httpx.get(f"{again.url}/readyz").status_code == 200, what="/readyz")
    device.publish_and_wait("hearth/h1/d1/telemetry/temp", b"5")
    wait_until(
        lambda: metric_values(again.url, "hearth_ingest_rows_stored_total").get("") == 1,
        what="the new row",
    )
    assert metric_values(again.url, "hearth_ingest_messages_received_total")[""] == 1


def test_retained_values_are_not_replayed_but_live_retained_readings_stored(
    fresh_broker: RunningBroker,
    ingest_db: str,
    tmp_path: Path,
    app_server: Callable[..., RunningApp],
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    broker = fresh_broker
    topic = "hearth/h2/d1/telemetry/temp"
    register_device(
        mqtt_client(broker, broker.service_login("registry", "registrar")), "h2", "d1", ["temp"]
    )
    device = mqtt_client(broker, device_login("h2", "d1", broker=broker))
    # Published (retained, as devices do) before ingest's session exists. It was never live
    # for ingest: the subscription's retain handling keeps the broker from replaying it.
    assert device.publish_and_wait(topic, b"99", 1, True) is not None
    app = app_server(
        create_app(ingest_settings(broker, ingest_db, tmp_path, replica="t2")),
        wait_path="/readyz",
    )
    # A live reading published with the retain flag arrives unflagged and is stored.
    assert device.publish_and_wait(topic, b"7", 1, True) is not None
    wait_until(
        lambda: metric_values(app.url, "hearth_ingest_rows_stored_total").get("") == 1,
        what="the live reading stored",
    )
    rows = run_async(fetch(ingest_db, "SELECT value FROM ingest.telemetry"))
    assert [r["value"] for r in rows] == [7.0]
    # The live reading came after any replay would have: only it was delivered.
    assert metric_values(app.url, "hearth_ingest_messages_received_total")[""] == 1
    assert metric_values(app.url, "hearth_ingest_retained_skipped_total").get("", 0) == 0
