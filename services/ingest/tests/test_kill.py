"""Kill test: 20,000 numbered QoS 1 messages, ingest SIGKILLed three times mid-stream.

The ingest service runs as a real subprocess (uvicorn, as in production) against a
Mosquitto and a PostgreSQL of the test's own. Four devices publish 5,000 numbered
messages each, paced over 20 s, half with a device ``ts`` and half with only an ``id``
(both deduplicated kinds). Meanwhile ingest is killed with SIGKILL:

1. while a batch is held between receive and commit (test hook ``before-commit``);
2. while a batch is held between commit and acknowledgement (``before-ack``): the
   broker redelivers that batch to the restarted replica, which absorbs it as
   duplicates (counted);
3. at a random point (when the stored count passes a random threshold).

Each time it is restarted with the same replica name (same persistent session).
At the end every message is stored exactly once.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from hearth.testing.broker import DeviceLoginFactory, MqttClientFactory, RunningBroker
from hearth.testing.database import fetch, fetchval, run_async
from hearth.testing.devices import register_device
from hearth.testing.ports import free_port
from hearth.testing.procs import ManagedProcess

N = 20_000
DEVICES = 4
PUBLISH_SECONDS = 20.0  # the stream outlasts three kills and restarts
HOME = "kill"
BOUND = 120.0
"""Seconds any wait here may take: generous, so a machine under heavy I/O (a restart that
needs 30 s and more) slows the test down instead of failing it."""


class IngestProcess:
    """``uvicorn --factory hearth.ingest.main:create_app`` as a child process."""

    def __init__(self, broker: RunningBroker, database_url: str, folder: Path) -> None:
        self.port = free_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port}"
        self.hold_dir = folder / "holds"
        self.hold_dir.mkdir()
        env = dict(os.environ)
        env.update(
            {
                "HEARTH_ENV": "test",
                "HEARTH_SECRETS_FILE": str(folder / "no-secrets.env"),
                "HEARTH_INGEST_DATABASE_URL": database_url,
                "HEARTH_INGEST_MQTT_HOST": broker.host,
                "HEARTH_INGEST_MQTT_PORT": str(broker.port),
                "HEARTH_INGEST_MQTT_PASSWORD": broker.service_login("ingest", "kill").password,
                "HEARTH_INGEST_REPLICA": "kill",
                "HEARTH_INGEST_TEST_HOLD_DIR": str(self.hold_dir),
            }
        )
        self.process = ManagedProcess(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "hearth.ingest.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            folder / "ingest.log",
            env=env,
        )
        self.starts = 0

    def start(self) -> None:
        """Start and wait until ``/readyz`` says database and subscription are fine."""
        self.process.start()
        self.starts += 1
        deadline = time.monotonic() + BOUND
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.running, f"ingest exited:\n{self.process.log_tail()}"
            assert time.monotonic() < deadline, f"ingest not ready:\n{self.process.log_tail()}"
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()

    def hold(self, point: str) -> None:
        (self.hold_dir / f"hold-{point}").touch()

    def release(self, point: str) -> None:
        (self.hold_dir / f"hold-{point}").unlink(missing_ok=True)
        (self.hold_dir / f"held-{point}").unlink(missing_ok=True)

    def wait_held(self, point: str, timeout: float = BOUND) -> int:
        """Wait until a batch is held at ``point``; return its size."""
        marker = self.hold_dir / f"held-{point}"
        wait_until(marker.exists, timeout, f"a batch held {point}", every=0.005)
        return int(json.loads(marker.read_text())["rows"])

    def counter(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=2).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics")


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.05
) -> None:
    """Poll ``predicate`` every ``every`` seconds (each poll costs CPU the 2 cores need)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def stored(url: str) -> int:
    return int(run_async(fetchval(url, "SELECT count(*) FROM ingest.telemetry")))  # type: ignore[arg-type]


def payload(device: int, seq: int, base: datetime) -> bytes:
    """Even numbers carry a device ts (unique per device), odd ones only an id."""
    if seq % 2 == 0:
        ts = base + timedelta(milliseconds=seq)
        return json.dumps({"value": seq, "ts": ts.isoformat(timespec="milliseconds")}).encode()
    return json.dumps({"value": seq, "id": f"boot{device}-{seq}"}).encode()


@pytest.mark.slow
@pytest.mark.timeout(15 * BOUND)
def test_sigkill_at_three_moments_loses_nothing_and_stores_nothing_twice(
    fresh_broker: RunningBroker,
    ingest_db: str,
    tmp_path: Path,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    broker = fresh_broker
    registrar = mqtt_client(broker, broker.service_login("registry", "registrar"))
    for i in range(DEVICES):
        register_device(registrar, HOME, f"dev{i}", ["seq"])
    ingest = IngestProcess(broker, ingest_db, tmp_path)
    ingest.start()  # creates the persistent session and its shared subscription

    per_device = N // DEVICES
    base = datetime.now(UTC) - timedelta(hours=1)
    publishers = [
        mqtt_client(broker, device_login(HOME, f"dev{i}", broker=broker), max_inflight=100)
        for i in range(DEVICES)
    ]
    errors: list[BaseException] = []

    def publish(i: int) -> None:
        try:
            client = publishers[i]
            topic = f"hearth/{HOME}/dev{i}/telemetry/seq"
            started = time.monotonic()
            infos = []
            for seq in range(per_device):
                infos.append(client.publish(topic, payload(i, seq, base), qos=1))
                if seq % 50 == 49:  # pace: the stream must outlast the kills
                    ahead = started + PUBLISH_SECONDS * seq / per_device - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            for info in infos:
                info.wait_for_publish(BOUND)
        except BaseException as exc:
            errors.append(exc)

    # Kill 1: a batch held between receive and commit.
    ingest.hold("before-commit")
    threads = [threading.Thread(target=publish, args=(i,)) for i in range(DEVICES)]
    for thread in threads:
        thread.start()
    held = ingest.wait_held("before-commit")
    assert held > 0
    assert stored(ingest_db) == 0  # held in an open transaction: nothing visible
    ingest.kill()
    ingest.release("before-commit")
    assert stored(ingest_db) == 0  # the transaction died with the process

    # Kill 2: a batch committed but not acknowledged.
    ingest.hold("before-ack")
    ingest.start()
    committed = ingest.wait_held("before-ack")
    at_kill_2 = stored(ingest_db)
    assert 0 < at_kill_2 < N
    ingest.kill()
    ingest.release("before-ack")

    # The broker redelivers the committed batch: every one of it is absorbed and counted.
    ingest.start()
    wait_until(
        lambda: ingest.counter("hearth_ingest_duplicates_absorbed_total") >= committed,
        BOUND,
        "the redelivered batch absorbed as duplicates",
    )
    duplicates_absorbed = ingest.counter("hearth_ingest_duplicates_absorbed_total")

    # Kill 3: at a random point of the stream.
    seed = random.randrange(1_000_000)
    # (at most N - one batch, polled closely, so the kill lands before the last row)
    threshold = min(stored(ingest_db) + random.Random(seed).randint(100, 2000), N - 5000)
    wait_until(
        lambda: stored(ingest_db) >= threshold,
        BOUND,
        f"{threshold} rows (seed {seed})",
        every=0.005,
    )
    ingest.kill()
    at_kill_3 = stored(ingest_db)
    assert at_kill_3 < N, f"kill 3 came after the stream (seed {seed})"

    ingest.start()
    for thread in threads:
        thread.join(BOUND)
    assert not errors, errors
    wait_until(lambda: stored(ingest_db) >= N, BOUND, f"{N} rows stored")

    rows = run_async(
        fetch(
            ingest_db,
            "SELECT count(*) AS n, count(DISTINCT (device, value)) AS distinct_n,"
            " count(*) FILTER (WHERE device_ts) AS with_ts FROM ingest.telemetry",
        )
    )
    assert (rows[0]["n"], rows[0]["distinct_n"], rows[0]["with_ts"]) == (N, N, N // 2)
    twice = run_async(
        fetch(
            ingest_db,
            "SELECT device, value FROM ingest.telemetry GROUP BY 1, 2 HAVING count(*) > 1",
        )
    )
    assert twice == []
    per_device_rows = run_async(
        fetch(ingest_db, "SELECT device, count(*) AS n FROM ingest.telemetry GROUP BY 1")
    )
    assert {r["device"]: r["n"] for r in per_device_rows} == {
        f"dev{i}": per_device for i in range(DEVICES)
    }
    assert duplicates_absorbed >= committed > 0
    assert ingest.starts == 4
    ingest.process.stop()
