"""The ingest service as a real child process, for tests that kill it, starve it or run several.

:class:`IngestProcess` runs ``uvicorn --factory hearth.ingest.main:create_app`` against a
broker and a database of the test's own, as production does, with a stable replica name
(its persistent session survives a kill). Tests measure it from outside: ``/readyz``,
``/metrics`` and the RSS of the process (``/proc/<pid>/status``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from hearth.testing.broker import RunningBroker
from hearth.testing.ports import free_port
from hearth.testing.procs import ManagedProcess

__all__ = ["BOUND", "IngestProcess", "wait_until"]

BOUND = 120.0
"""Seconds any wait here may take: generous, so a machine under heavy I/O (a restart that
needs 30 s and more) slows a test down instead of failing it."""


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.05
) -> None:
    """Poll ``predicate`` every ``every`` seconds (each poll costs CPU the 2 cores need)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


class IngestProcess:
    """``uvicorn --factory hearth.ingest.main:create_app`` as a child process (one replica)."""

    def __init__(
        self,
        broker: RunningBroker,
        database_url: str,
        folder: Path,
        *,
        replica: str = "kill",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port}"
        self.replica = replica
        folder = folder / f"ingest-{replica}"
        folder.mkdir(parents=True, exist_ok=True)
        self.hold_dir = folder / "holds"
        self.hold_dir.mkdir(exist_ok=True)
        environ = dict(os.environ)
        environ.update(
            {
                "HEARTH_ENV": "test",
                "HEARTH_SECRETS_FILE": str(folder / "no-secrets.env"),
                "HEARTH_INGEST_DATABASE_URL": database_url,
                "HEARTH_INGEST_MQTT_HOST": broker.host,
                "HEARTH_INGEST_MQTT_PORT": str(broker.port),
                "HEARTH_INGEST_MQTT_PASSWORD": broker.service_login("ingest", replica).password,
                "HEARTH_INGEST_REPLICA": replica,
                "HEARTH_INGEST_TEST_HOLD_DIR": str(self.hold_dir),
                **(env or {}),
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
            env=environ,
        )
        self.starts = 0

    def start(self) -> None:
        """Start and wait until ``/readyz`` says every check is fine."""
        self.process.start()
        self.starts += 1
        deadline = time.monotonic() + BOUND
        while not self.ready():
            assert self.process.running, f"ingest exited:\n{self.process.log_tail()}"
            assert time.monotonic() < deadline, f"ingest not ready:\n{self.process.log_tail()}"
            time.sleep(0.05)

    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200 now."""
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def readiness(self) -> dict[str, object]:
        """``/readyz``'s body (the checks and their state)."""
        body: dict[str, object] = httpx.get(f"{self.url}/readyz", timeout=5).json()
        return body

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()

    def rss_bytes(self) -> int:
        """The process's resident set size now, read from outside (``/proc/<pid>/status``)."""
        pid = self.process.pid
        assert pid is not None
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

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
        """A metric's value from ``/metrics`` (the line ``name value``)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics")
