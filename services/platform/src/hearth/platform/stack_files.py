"""Small files the native stack writes: ``var/stack.env`` and private (mode 0600) files.

``stack.env`` is a dotenv file of the settings every process gets: the database URL, the
broker's port, each service's own settings, and every ``HEARTH_*`` variable the operator
set for ``hearth up``. :mod:`hearth.platform.pidexec` loads it just before it becomes the
program, so a process restarted by the supervisor reads what the last ``hearth up`` wrote.
It may hold a database password, so it is mode 0600 like the secrets file.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["StartHistory", "read_env_file", "render_env_file", "write_private"]

_KEY = re.compile(r"[A-Z][A-Z0-9_]*")


def render_env_file(values: Mapping[str, str]) -> str:
    """Dotenv text, one ``KEY=value`` a line; values are written as they are (no quoting)."""
    lines = ["# Rendered by `hearth up`: the settings the stack gives its processes.\n"]
    for key, value in values.items():
        if _KEY.fullmatch(key) is None:
            raise ValueError(f"{key!r} is not an upper-case environment variable name")
        if "\n" in value or "\r" in value:
            raise ValueError(f"the value of {key} contains a line break")
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (atomically: readers see old or new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def read_env_file(path: Path) -> dict[str, str]:
    """The values of an env file :func:`render_env_file` wrote (comments skipped).

    The exact inverse of :func:`render_env_file` (no quotes, no ``export``): it runs in
    :mod:`hearth.platform.pidexec` before every program starts, so it imports nothing.
    """
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep or _KEY.fullmatch(key) is None:
                raise ValueError(f"{path}: not a KEY=value line: {line[:40]!r}")
            values[key] = value
    return values


@dataclass(slots=True)
class StartHistory:
    """How often a supervised program was started: ``var/run/<name>.starts`` (JSON).

    ``count`` is every start since ``hearth up`` (restarts = count - 1); ``recent`` the
    wall-clock times of the starts inside the crash-loop window, which
    :mod:`hearth.platform.pidexec` reads to refuse a program that keeps dying.
    """

    count: int = 0
    recent: list[float] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> StartHistory:
        """The history in ``path`` (empty when missing or unreadable)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(int(data["count"]), [float(t) for t in data["recent"]])
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    def write(self, path: Path) -> None:
        """Save it (atomically)."""
        write_private(path, json.dumps({"count": self.count, "recent": self.recent}) + "\n")

    def starts_within(self, window: float, now: float | None = None) -> int:
        """How many starts happened in the last ``window`` seconds."""
        now = time.time() if now is None else now
        return sum(1 for started in self.recent if now - started <= window)

    def started(self, window: float, now: float | None = None) -> None:
        """Count a start now, forgetting starts older than ``window``."""
        now = time.time() if now is None else now
        self.count += 1
        self.recent = [t for t in self.recent if now - t <= window] + [now]

    def forgive(self) -> None:
        """Forget the recent starts (an operator's ``up``/``restart``: try again in full)."""
        self.recent = []
