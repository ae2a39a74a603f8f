"""The supervisord configuration of the native stack: ``var/supervisord.conf``.

Rendered anew by every ``hearth up`` from the broker and
:data:`hearth.platform.services.SERVICES` (never edit it by hand). Each program runs
through :mod:`hearth.platform.pidexec`, which records it, loads ``var/stack.env`` and counts
its starts before it becomes the program::

    [program:ingest]
    command=/repo/.venv/bin/python -m hearth.platform.pidexec --env-file /repo/var/stack.env
        --starts /repo/var/run/ingest.starts /repo/var/run/ingest.json ingest --
        /repo/.venv/bin/python -m hearth.ingest serve --host 127.0.0.1 --port 8103
    autorestart=true          restarted whenever it exits, the others untouched
    startsecs=5               it must live this long to count as started...
    startretries=4            ...else retried after 1, 2, 3, 4 s, then FATAL ("failed")
    stdout_logfile=/repo/var/log/ingest.log   rotated at 10 MB, 5 old files kept

supervisord itself listens only on a Unix socket of mode 0700 (``[unix_http_server]``):
only its owner can control it, so it needs no password. The socket lives in ``var/run``
unless that path is too long for a Unix socket (108 bytes), then in the temporary folder
under a name derived from ``var/``.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "LOG_BACKUPS",
    "LOG_MAX_BYTES",
    "START_RETRIES",
    "Program",
    "render_supervisord_conf",
    "socket_path",
]

LOG_MAX_BYTES: Final = 10 * 1024 * 1024
"""A process's log file is rotated when it reaches this size..."""
LOG_BACKUPS: Final = 5
"""...and this many rotated files are kept (``ingest.log.1`` ... ``ingest.log.5``)."""
START_RETRIES: Final = 4
"""Retries of a process that dies before ``startsecs`` (after 1, 2, 3, 4 s), then FATAL."""
STOP_WAIT: Final = 10
"""Seconds a process gets to exit after SIGTERM before supervisord kills it."""

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SOCKET_MAX = 100  # sun_path holds 108 bytes with its NUL; leave room


@dataclass(frozen=True, slots=True)
class Program:
    """One supervised process: its name, command, log file and start rules.

    ``startsecs`` is how long it must run before its start counts as successful;
    ``priority`` orders the starts (lower first: the broker before the services).
    """

    name: str
    argv: tuple[str, ...]
    log_file: Path
    startsecs: int = 5
    priority: int = 20

    def __post_init__(self) -> None:
        if _NAME.fullmatch(self.name) is None:
            raise ValueError(f"process name {self.name!r} is not [A-Za-z0-9_-]+")
        if not self.argv:
            raise ValueError(f"process {self.name} has no command")

    def section(self) -> str:
        """Its ``[program:<name>]`` section."""
        command = " ".join(shlex.quote(arg) for arg in self.argv)
        if "\n" in command or "\r" in command:
            raise ValueError(f"process {self.name} has a line break in its command")
        lines = [
            f"[program:{self.name}]",
            f"command={_escape(command)}",
            f"priority={self.priority}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={self.startsecs}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_escape(str(self.log_file))}",
            f"stdout_logfile_maxbytes={LOG_MAX_BYTES}",
            f"stdout_logfile_backups={LOG_BACKUPS}",
        ]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    """A value for supervisord's config: ``%`` starts an expansion there, so it is doubled."""
    return value.replace("%", "%%")


def socket_path(var_dir: Path) -> Path:
    """Where supervisord's control socket lives for the stack in ``var_dir``."""
    inside = var_dir / "run" / "supervisor.sock"
    if len(str(inside)) <= _SOCKET_MAX:
        return inside
    digest = hashlib.sha256(str(var_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"hearth-supervisor-{digest}.sock"


def render_supervisord_conf(
    programs: Sequence[Program],
    *,
    var_dir: Path,
    project_dir: Path,
    log_file: Path,
) -> str:
    """The whole ``supervisord.conf`` for ``programs`` (names must be unique).

    supervisord runs in the foreground (``nodaemon``: ``hearth up`` detaches it itself, to
    record it) and logs its own events to ``log_file``, rotated like the processes' logs.
    """
    names = [program.name for program in programs]
    if len(set(names)) != len(names):
        raise ValueError(f"process names are not unique: {names}")
    sock = _escape(str(socket_path(var_dir)))
    head = f"""\
; Rendered by `hearth up` (hearth.platform.stack); do not edit: it is rewritten.
[supervisord]
nodaemon=true
silent=true
logfile={_escape(str(log_file))}
logfile_maxbytes={LOG_MAX_BYTES}
logfile_backups={LOG_BACKUPS}
loglevel=info
pidfile={_escape(str(var_dir / "run" / "supervisord.pid"))}
directory={_escape(str(project_dir))}
childlogdir={_escape(str(log_file.parent))}
identifier=hearth

[unix_http_server]
file={sock}
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{sock}
"""
    return head + "".join("\n" + program.section() for program in programs)
