"""``hearth logs``: show and follow the native stack's log, optionally only some processes.

Every process's output goes to ``var/log/hearth.log``, one line at a time, in honcho's
format ``HH:MM:SS <name>.<n> | <text>`` (``system`` is honcho itself, ``hearth`` is ``hearth
up``/``down``, ``migrate-<service>`` a service's migrations). The file is appended to by
every ``up``, never truncated; delete it while the stack is down to start afresh.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

__all__ = ["append_log", "follow", "line_process", "tail"]

_PREFIX = re.compile(r"^\d\d:\d\d:\d\d (\S+?)(?:\.\d+)?\s*\| ")
_POLL = 0.2


def line_process(line: str) -> str | None:
    """The process name of a log line (``mosquitto`` for ``12:00:00 mosquitto.1 | ...``)."""
    match = _PREFIX.match(line)
    return match.group(1) if match else None


def _wanted(line: str, names: Collection[str]) -> bool:
    return not names or line_process(line) in names


def append_log(log_file: Path, name: str, text: str) -> None:
    """Append ``text`` to the log, each line in honcho's format under process ``name``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%H:%M:%S")
    lines = text.splitlines() or [""]
    with log_file.open("a", encoding="utf-8") as log:
        log.writelines(f"{stamp} {name} | {line}\n" for line in lines)


def tail(log_file: Path, lines: int, names: Collection[str] = ()) -> list[str]:
    """The last ``lines`` lines of the log (of processes ``names`` only, when given)."""
    try:
        with log_file.open(encoding="utf-8", errors="replace") as log:
            kept: deque[str] = deque(maxlen=max(lines, 0))
            kept.extend(line for line in log if _wanted(line, names))
    except FileNotFoundError:
        return []
    return list(kept)


def follow(
    log_file: Path,
    lines: int,
    names: Collection[str] = (),
    out: TextIO | None = None,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Print the last ``lines`` lines, then every new line as it is written, like ``tail -F``.

    Waits for the file to appear, and reads a replaced or truncated file from its start.
    Runs until ``keep_going()`` is false (checked between polls) or the user interrupts.
    """
    write = out.write if out is not None else _stdout_write
    for line in tail(log_file, lines, names):
        write(line)
    handle: BinaryIO | None = None
    pending = b""
    try:
        handle = _open_at_end(log_file)
        while keep_going():
            if handle is None:
                handle = _open_at_start(log_file)
                if handle is None:
                    time.sleep(_POLL)
                    continue
            chunk = handle.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    line = raw.decode("utf-8", errors="replace") + "\n"
                    if _wanted(line, names):
                        write(line)
                continue
            time.sleep(_POLL)
            if _replaced(log_file, handle):
                handle.close()
                handle, pending = None, b""
    except KeyboardInterrupt:
        pass
    finally:
        if handle is not None:
            handle.close()


def _open_at_end(log_file: Path) -> BinaryIO | None:
    try:
        handle = log_file.open("rb")
    except FileNotFoundError:
        return None
    handle.seek(0, os.SEEK_END)
    return handle


def _open_at_start(log_file: Path) -> BinaryIO | None:
    try:
        return log_file.open("rb")
    except FileNotFoundError:
        return None


def _replaced(log_file: Path, handle: BinaryIO) -> bool:
    """Whether the path now names another file, or the file shrank below our position."""
    try:
        current = log_file.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return current.st_ino != opened.st_ino or current.st_size < handle.tell()


def _stdout_write(text: str) -> None:
    print(text, end="", flush=True)
