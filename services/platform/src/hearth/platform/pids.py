"""Process records: which process the native stack started, told apart from a reused pid.

A pid alone is not an identity: once a process exits, the kernel may give its pid to an
unrelated program. A :class:`ProcessRecord` keeps the pid *and* the process's start time
(field 22 of ``/proc/<pid>/stat``, in clock ticks since boot), which no later process with
the same pid can share. Records live as small JSON files under ``var/run/`` and every signal
the stack sends goes through :func:`terminate`, which re-checks the identity first, so
``hearth down`` never signals a process it did not start.

Linux only (``/proc``), like the rest of the native stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "ProcessRecord",
    "descendants",
    "is_running",
    "read_record",
    "record_of",
    "rss_bytes",
    "seconds_running",
    "start_time_of",
    "terminate",
    "wait_gone",
    "write_record",
]

_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None if there is none.

    The command name (field 2) is in parentheses and may itself contain spaces and
    parentheses, so the fields are split after its *last* closing parenthesis; the first
    element returned is field 3 (the state).
    """
    try:
        raw = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    _, _, rest = raw.rpartition(")")
    fields = rest.split()
    return fields if len(fields) > 19 else None


def start_time_of(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot), or None if it is gone.

    A zombie (exited, not yet reaped by its parent) counts as gone.
    """
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def rss_bytes(pid: int) -> int | None:
    """The resident set size of process ``pid`` in bytes (``VmRSS``), or None if it is gone."""
    try:
        status = (_PROC / str(pid) / "status").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None  # a zombie or a kernel thread has no VmRSS


def seconds_running(record: ProcessRecord) -> float | None:
    """How long the recorded process has been running, in seconds (None if it is gone)."""
    if not record.running():
        return None
    try:
        since_boot = float((_PROC / "uptime").read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(since_boot - record.start_time / os.sysconf("SC_CLK_TCK"), 0.0)


def _parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """One process the stack started: its ``name`` (for messages), pid and start time."""

    name: str
    pid: int
    start_time: int

    def running(self) -> bool:
        """Whether this very process still runs (same pid *and* same start time)."""
        return start_time_of(self.pid) == self.start_time


def record_of(name: str, pid: int) -> ProcessRecord | None:
    """A record of the running process ``pid`` under ``name``, or None if it is not running."""
    started = start_time_of(pid)
    return None if started is None else ProcessRecord(name, pid, started)


def is_running(record: ProcessRecord | None) -> bool:
    """Whether ``record`` names a process that still runs (None: no)."""
    return record is not None and record.running()


def write_record(path: Path, record: ProcessRecord) -> None:
    """Write ``record`` to ``path`` as JSON (atomically: a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_record(path: Path) -> ProcessRecord | None:
    """The record in ``path``, or None when the file is missing or not a record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ProcessRecord(str(data["name"]), int(data["pid"]), int(data["start_time"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def descendants(root: ProcessRecord) -> list[ProcessRecord]:
    """Every running process below ``root`` in the process tree (children, grandchildren...)."""
    if not root.running():
        return []
    parents: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                parents.setdefault(parent, []).append(int(entry.name))
    found: list[ProcessRecord] = []
    todo = [root.pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            record = record_of(f"{root.name} child", child)
            if record is not None:
                found.append(record)
                todo.append(child)
    return found


def wait_gone(records: Iterable[ProcessRecord], timeout: float) -> list[ProcessRecord]:
    """Wait up to ``timeout`` seconds for every process to exit; return those still running."""
    left = [r for r in records if r.running()]
    deadline = time.monotonic() + timeout
    delay = 0.01
    while left and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        left = [r for r in left if r.running()]
    return left


def _signal(record: ProcessRecord, signum: int) -> None:
    if not record.running():  # the identity check right before the signal
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signum)


def terminate(
    records: Iterable[ProcessRecord], timeout: float = 10.0, signum: int = signal.SIGTERM
) -> list[ProcessRecord]:
    """Stop the processes: ``signum`` (SIGTERM), wait up to ``timeout`` s, then SIGKILL.

    Only processes whose pid *and* start time still match are signalled. Returns the records
    that were running when called (what was stopped).
    """
    running = [r for r in records if r.running()]
    for record in running:
        _signal(record, signum)
    for record in wait_gone(running, timeout):
        _signal(record, signal.SIGKILL)
    wait_gone(running, 5.0)
    return running
