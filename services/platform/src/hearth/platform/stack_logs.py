"""``hearth logs``: the native stack's log files, one readable line per event.

Every supervised process writes its own file, ``var/log/<name>.log`` (rotated by
supervisord); ``supervisord.log`` is supervisord's own (spawned, exited, gave up);
``hearth.log`` is what ``hearth up``/``down`` did and the migrations' output (JSON lines,
written by :func:`append_log`). :func:`read_event` turns a line of any of them into an
:class:`Event`: the services' JSON lines, mosquitto's ``2026-11-29T10:00:00: text``,
supervisord's ``2026-11-29 10:00:00,123 INFO text``, or plain text (a crash before logging
was set up). An indented line continues the event before it (a traceback's frames) and is
counted, not shown: the file has it whole.

:func:`format_event` makes the line people read::

    10:00:00.123 ingest     INFO  stored a batch  rows=500 delay_ms=12
    10:00:01.002 supervisord INFO  exited: ingest (terminated by SIGKILL; not expected)

with colour only when the output is a terminal (and ``NO_COLOR`` is unset).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

__all__ = [
    "Event",
    "LogSource",
    "append_log",
    "follow",
    "format_event",
    "history",
    "last_lines",
    "read_event",
    "use_colour",
]

_POLL = 0.2
_MOSQUITTO = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d): (.*)$")
_SUPERVISORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ([A-Z]+) (.*)$")
_HIDDEN = frozenset(
    {"ts", "level", "logger", "message", "service", "replica", "exc", "stack", "color_message"}
)
_LEVEL_COLOURS = {"WARNING": "33", "WARN": "33", "ERROR": "31", "CRITICAL": "31;1", "CRIT": "31"}
_NAME_COLOURS = ("36", "32", "35", "34", "36;1", "32;1", "35;1", "34;1")


@dataclass(frozen=True, slots=True)
class LogSource:
    """One log file and the process name its lines are shown under."""

    name: str
    path: Path


@dataclass(slots=True)
class Event:
    """One log event: when (epoch seconds, None if the line had no time), who, what."""

    ts: float | None
    name: str
    level: str
    text: str
    extra: dict[str, object] = field(default_factory=dict)
    folded: int = 0


def _parse_iso(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def read_event(name: str, line: str) -> Event:
    """The event a log line of process ``name`` holds (see the module docstring)."""
    line = line.rstrip("\n")
    if line.startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if isinstance(data, dict) and "message" in data:
            extra = {k: v for k, v in data.items() if k not in _HIDDEN and v is not None}
            exc = data.get("exc") or data.get("stack")
            if isinstance(exc, str) and exc.strip():
                frames = exc.strip().splitlines()
                extra["error"] = frames[-1]
            source = data.get("source")
            return Event(
                _parse_iso(str(data.get("ts", ""))),
                str(source) if source else name,
                str(data.get("level", "INFO")),
                str(data["message"]),
                {k: v for k, v in extra.items() if k != "source"},
            )
    if match := _MOSQUITTO.match(line):
        return Event(_parse_iso(match.group(1)), name, "INFO", match.group(2))
    if match := _SUPERVISORD.match(line):
        stamp = _parse_iso(match.group(1).replace(" ", "T"))
        ts = None if stamp is None else stamp + int(match.group(2)) / 1000
        return Event(ts, name, match.group(3), match.group(4))
    return Event(None, name, "", line)


def _continues(line: str) -> bool:
    return line[:1] in (" ", "\t")


def _events(name: str, lines: Iterable[str]) -> list[Event]:
    """Events of consecutive lines: indented lines fold into the event before them."""
    events: list[Event] = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            continue
        if _continues(line) and events:
            events[-1].folded += 1
            continue
        events.append(read_event(name, line))
    return events


def _tail_lines(path: Path, count: int) -> list[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return list(deque(handle, maxlen=max(count, 0)))
    except FileNotFoundError:
        return []


def last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` events of one log file as readable lines without colour."""
    if count <= 0:
        return []
    events = _events(path.stem, _tail_lines(path, count * 4))[-count:]
    return [format_event(event, colour=False) for event in events]


def history(sources: Sequence[LogSource], count: int) -> list[Event]:
    """The last ``count`` events of all ``sources`` together, oldest first.

    A line without a time sorts right after the line before it in its own file.
    """
    merged: list[tuple[float, int, int, Event]] = []
    for number, source in enumerate(sources):
        last = 0.0
        for position, event in enumerate(_events(source.name, _tail_lines(source.path, count))):
            last = event.ts if event.ts is not None else last
            merged.append((last, number, position, event))
    merged.sort(key=lambda item: item[:3])
    return [item[3] for item in merged[-count:]] if count > 0 else []


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def _name_colour(name: str) -> str:
    return _NAME_COLOURS[sum(name.encode()) % len(_NAME_COLOURS)]


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (not text or any(c.isspace() for c in text)) else text


def format_event(event: Event, colour: bool = False, width: int = 11) -> str:
    """One line for people: local time, process, level, message, then ``key=value`` extras."""
    stamp = (
        time.strftime("%H:%M:%S", time.localtime(event.ts)) + f".{int(event.ts * 1000) % 1000:03d}"
        if event.ts is not None
        else " " * 12
    )
    name = _paint(event.name.ljust(width), _name_colour(event.name), colour)
    level = event.level.ljust(5) if event.level else "     "
    if event.level in _LEVEL_COLOURS:
        level = _paint(level, _LEVEL_COLOURS[event.level], colour)
    extras = "".join(f"  {key}={_value(value)}" for key, value in event.extra.items())
    more = f"  (+{event.folded} lines in the log file)" if event.folded else ""
    return f"{stamp} {name} {level} {event.text}{extras}{more}"


def use_colour(out: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return out.isatty() and not os.environ.get("NO_COLOR")


def append_log(log_file: Path, name: str, text: str) -> None:
    """Append ``text`` to the stack's own log as JSON lines under process ``name``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    ts = datetime.now().astimezone().isoformat(timespec="milliseconds")
    lines = text.splitlines() or [""]
    with log_file.open("a", encoding="utf-8") as log:
        for line in lines:
            record = {"ts": ts, "level": "INFO", "message": line, "source": name}
            log.write(json.dumps(record, ensure_ascii=False) + "\n")


@dataclass(slots=True)
class _Follower:
    source: LogSource
    handle: BinaryIO | None = None
    pending: bytes = b""

    def open(self, at_end: bool) -> None:
        try:
            self.handle = self.source.path.open("rb")
        except FileNotFoundError:
            self.handle = None
            return
        if at_end:
            self.handle.seek(0, os.SEEK_END)

    def read(self) -> list[str]:
        if self.handle is None:
            self.open(at_end=False)  # appeared since: read it from its start
            if self.handle is None:
                return []
        chunk = self.handle.read()
        if not chunk:
            if self._replaced():  # rotated (renamed to .1) or truncated: the new file
                self.handle.close()
                self.handle, self.pending = None, b""
            return []
        self.pending += chunk
        *complete, self.pending = self.pending.split(b"\n")
        return [raw.decode("utf-8", errors="replace") for raw in complete]

    def _replaced(self) -> bool:
        assert self.handle is not None
        try:
            current = self.source.path.stat()
        except FileNotFoundError:
            return False
        opened = os.fstat(self.handle.fileno())
        return current.st_ino != opened.st_ino or current.st_size < self.handle.tell()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def follow(
    sources: Sequence[LogSource],
    count: int,
    write: Callable[[str], None],
    colour: bool = False,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Write the last ``count`` events, then every new one as it is written (like ``tail -F``).

    Follows each file through rotation and waits for files that do not exist yet. Runs
    until ``keep_going()`` is false (checked between polls) or the user interrupts.
    """
    width = max([11, *(len(source.name) for source in sources)])
    for event in history(sources, count):
        write(format_event(event, colour, width) + "\n")
    followers = [_Follower(source) for source in sources]
    for follower in followers:
        follower.open(at_end=True)
    try:
        while keep_going():
            wrote = False
            for follower in followers:
                for event in _events(follower.source.name, follower.read()):
                    if event.ts is None:
                        event = replace(event, ts=time.time())
                    write(format_event(event, colour, width) + "\n")
                    wrote = True
            if not wrote:
                time.sleep(_POLL)
    except KeyboardInterrupt:
        pass
    finally:
        for follower in followers:
            follower.close()
