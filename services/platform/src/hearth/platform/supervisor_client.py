"""Talking to the stack's supervisord over its Unix socket (XML-RPC, as supervisorctl does).

:class:`SupervisorClient` asks for every process's state and starts, restarts or shuts
down. supervisord's states, and the words ``hearth status`` shows for them:

    STARTING  starting     spawned, not yet alive for ``startsecs``
    RUNNING   running
    BACKOFF   retrying     died before ``startsecs``; started again after a growing wait
    FATAL     failed       died too often at start (or refused as a crash loop): given up
    EXITED    exited       exited; restarted at once (autorestart)
    STOPPING  stopping
    STOPPED   stopped      stopped by the operator or never started
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from supervisor.xmlrpc import Faults

from hearth.platform.stack_config import StackError

__all__ = ["STATE_WORDS", "ProcessInfo", "SupervisorClient"]

STATE_WORDS: Final[Mapping[str, str]] = {
    "STARTING": "starting",
    "RUNNING": "running",
    "BACKOFF": "retrying",
    "FATAL": "failed",
    "EXITED": "exited",
    "STOPPING": "stopping",
    "STOPPED": "stopped",
    "UNKNOWN": "unknown",
}


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One supervised process as supervisord reports it."""

    name: str
    state: str
    pid: int | None
    started: float | None
    now: float
    exit_status: int
    spawn_error: str

    @property
    def word(self) -> str:
        """The state as ``hearth status`` shows it (``failed`` for FATAL...)."""
        return STATE_WORDS.get(self.state, self.state.lower())

    @property
    def uptime(self) -> float | None:
        """Seconds since it started, while it runs."""
        if self.state not in ("RUNNING", "STARTING") or not self.started:
            return None
        return max(self.now - self.started, 0.0)

    @classmethod
    def from_rpc(cls, info: Mapping[str, Any]) -> ProcessInfo:
        """From one entry of ``getAllProcessInfo``."""
        pid = int(info.get("pid") or 0)
        start = float(info.get("start") or 0)
        return cls(
            name=str(info["name"]),
            state=str(info["statename"]),
            pid=pid or None,
            started=start or None,
            now=float(info.get("now") or 0),
            exit_status=int(info.get("exitstatus") or 0),
            spawn_error=str(info.get("spawnerr") or ""),
        )


CALL_TIMEOUT = 60.0
"""Seconds one call may take (stopping a process waits for it: up to its stop timeout)."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket, closed with the connection (no socket left behind)."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=CALL_TIMEOUT)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CALL_TIMEOUT)
            sock.connect(str(self._path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = _UnixConnection(self._path)
        self._connection = (host, connection)  # what Transport.close() closes
        return connection


class SupervisorClient:
    """XML-RPC to the supervisord listening on ``socket`` (a Unix socket path)."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def _call(self, method: str, *args: Any) -> Any:
        transport = _UnixTransport(self.socket)
        try:
            with xmlrpc.client.ServerProxy("http://localhost", transport=transport) as proxy:
                return getattr(proxy.supervisor, method)(*args)
        except OSError as exc:
            raise StackError(f"supervisord does not answer on {self.socket}: {exc}") from None
        finally:
            transport.close()

    def reachable(self) -> bool:
        """Whether supervisord answers (and is running, not shutting down)."""
        try:
            state = self._call("getState")
        except (StackError, xmlrpc.client.Error):
            return False
        return cast(str, state.get("statename")) == "RUNNING"

    def processes(self) -> dict[str, ProcessInfo]:
        """Every process by name."""
        return {
            info["name"]: ProcessInfo.from_rpc(info) for info in self._call("getAllProcessInfo")
        }

    def start(self, name: str) -> None:
        """Start ``name`` without waiting for it (already running: nothing happens)."""
        try:
            self._call("startProcess", name, False)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.ALREADY_STARTED:
                raise StackError(f"supervisord cannot start {name}: {fault.faultString}") from None

    def stop(self, name: str) -> None:
        """Stop ``name`` and wait until it stopped (not running: nothing happens)."""
        try:
            self._call("stopProcess", name, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.NOT_RUNNING:
                raise StackError(f"supervisord cannot stop {name}: {fault.faultString}") from None

    def shutdown(self) -> None:
        """Ask supervisord to stop every process and exit (returns at once)."""
        self._call("shutdown")
