"""The on-disk outbox: readings kept while the broker is unreachable, replayed in order.

One JSON line per message (``{"t": topic, "p": payload}``), appended and flushed as it
comes; :meth:`Outbox.remove_first` rewrites the file (a temporary file, then an atomic
rename) once the broker acknowledged the oldest entries. Bounded in bytes: when a new entry
would pass ``max_bytes`` the oldest are dropped and counted in :attr:`Outbox.dropped`.
A file cut short by a power loss loses only its last line.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

__all__ = ["Outbox"]

log = logging.getLogger(__name__)


class Outbox:
    """A bounded FIFO of ``(topic, payload)`` on disk; thread-safe."""

    def __init__(self, path: Path, max_bytes: int = 1_000_000) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0
        self._lock = threading.Lock()
        self._lines: list[bytes] = []
        self._size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_bytes().splitlines():
                if self._valid(line):
                    self._lines.append(line + b"\n")
            self._size = sum(len(line) for line in self._lines)
        self._rewrite()

    @staticmethod
    def _valid(line: bytes) -> bool:
        try:
            body = json.loads(line)
        except ValueError:
            return False
        return isinstance(body, dict) and isinstance(body.get("t"), str) and "p" in body

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    def append(self, topic: str, payload: bytes) -> None:
        """Keep a message at the end (dropping the oldest when over ``max_bytes``)."""
        line = json.dumps({"t": topic, "p": payload.decode("utf-8")}).encode("utf-8") + b"\n"
        if len(line) > self.max_bytes:
            raise ValueError("a message larger than the whole outbox")
        with self._lock:
            dropped = 0
            while self._lines and self._size + len(line) > self.max_bytes:
                self._size -= len(self._lines.pop(0))
                dropped += 1
            self._lines.append(line)
            self._size += len(line)
            if dropped:
                self.dropped += dropped
                log.warning("outbox full: dropped the %d oldest readings", dropped)
                self._rewrite()
            else:
                with self.path.open("ab") as file:
                    file.write(line)

    def first(self, count: int) -> list[tuple[str, bytes]]:
        """The oldest ``count`` messages, oldest first (they stay until removed)."""
        with self._lock:
            lines = self._lines[:count]
        entries = [json.loads(line) for line in lines]
        return [(entry["t"], entry["p"].encode("utf-8")) for entry in entries]

    def remove_first(self, count: int) -> None:
        """Forget the oldest ``count`` messages (the broker has them)."""
        with self._lock:
            removed = self._lines[:count]
            del self._lines[:count]
            self._size -= sum(len(line) for line in removed)
            self._rewrite()

    def _rewrite(self) -> None:
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        with temporary.open("wb") as file:
            file.writelines(self._lines)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
