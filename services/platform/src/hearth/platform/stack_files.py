"""The files ``hearth up`` renders for honcho: ``var/Procfile`` and ``var/stack.env``.

The Procfile is written anew by every ``hearth up`` from the broker and
:data:`hearth.platform.services.SERVICES` (never edit it by hand). Each line runs its
program through :mod:`hearth.platform.pidexec`, which records the process (pid and start
time) in ``var/run/<name>.json`` and then becomes the program, so the stack knows every
pid honcho's children have::

    mosquitto: exec /repo/.venv/bin/python -m hearth.platform.pidexec \
        /repo/var/run/mosquitto.json mosquitto -- /usr/sbin/mosquitto -c /repo/var/mosquitto.conf

``stack.env`` is a dotenv file of the settings every process gets (honcho loads it with
``-e``); it may hold a database password, so it is mode 0600 like the secrets file.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcfileEntry", "render_env_file", "render_procfile", "write_private"]

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_KEY = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class ProcfileEntry:
    """One process honcho runs: its name, its argument list and its record file."""

    name: str
    argv: tuple[str, ...]
    record: Path

    def __post_init__(self) -> None:
        if _NAME.fullmatch(self.name) is None:
            raise ValueError(f"process name {self.name!r} is not [A-Za-z0-9_-]+")
        if not self.argv:
            raise ValueError(f"process {self.name} has no command")

    def line(self, python: str = sys.executable) -> str:
        """The Procfile line: ``name: exec python -m hearth.platform.pidexec ... -- argv``."""
        wrapped = [
            python, "-m", "hearth.platform.pidexec", str(self.record), self.name, "--", *self.argv,
        ]  # fmt: skip
        command = " ".join(shlex.quote(arg) for arg in wrapped)
        if "\n" in command:
            raise ValueError(f"process {self.name} has a line break in its command")
        return f"{self.name}: exec {command}"


def render_procfile(entries: Sequence[ProcfileEntry], python: str = sys.executable) -> str:
    """The Procfile text for ``entries`` (names must be unique)."""
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"process names are not unique: {names}")
    head = "# Rendered by `hearth up` (hearth.platform.stack); do not edit: it is rewritten.\n"
    return head + "".join(entry.line(python) + "\n" for entry in entries)


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
