"""What ``hearth status`` reports: each part's state, uptime, restarts, address, pid and RSS.

A part is ``up`` when its process runs and (if it has a port) listens. A failed part
carries the last lines of its log, so the reason is on the screen without ``make logs``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["PartStatus", "StackStatus", "human_bytes", "human_seconds"]

Kind = Literal["supervisor", "broker", "database", "service", "web"]


def human_seconds(seconds: float | None) -> str:
    """``42s``, ``5m03s``, ``2h07m``, ``3d04h`` (empty for None)."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def human_bytes(size: int | None) -> str:
    """``87.4 MB`` (10^6 bytes; empty for None)."""
    return "" if size is None else f"{size / 1e6:.1f} MB"


@dataclass(frozen=True, slots=True)
class PartStatus:
    """One part of the stack as ``hearth status`` reports it.

    ``state`` is supervisord's state in words (``running``, ``starting``, ``retrying``,
    ``failed``, ``stopped``...; ``down`` when nothing runs), ``restarts`` how often the
    supervisor started it again since ``up``, ``rss`` its resident memory in bytes.
    """

    name: str
    kind: Kind
    up: bool
    state: str
    address: str | None = None
    pid: int | None = None
    uptime: float | None = None
    restarts: int | None = None
    rss: int | None = None
    detail: str = ""
    last_lines: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class StackStatus:
    """Every part of the stack; ``up`` when each one is."""

    var_dir: Path
    parts: tuple[PartStatus, ...]
    database: str = ""

    @property
    def up(self) -> bool:
        """Whether every part is up."""
        return all(part.up for part in self.parts)

    @property
    def failed(self) -> tuple[PartStatus, ...]:
        """The parts the supervisor gave up on."""
        return tuple(part for part in self.parts if part.state == "failed")

    @property
    def total_rss(self) -> int:
        """The resident memory of every process the stack runs (the database excluded)."""
        return sum(part.rss or 0 for part in self.parts if part.kind != "database")

    def part(self, name: str) -> PartStatus:
        """The part called ``name`` (``KeyError`` if there is none)."""
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (``hearth status --json``)."""
        return {
            "up": self.up,
            "var_dir": str(self.var_dir),
            "database": self.database,
            "total_rss": self.total_rss,
            "parts": [asdict(part) for part in self.parts],
        }

    def lines(self) -> list[str]:
        """A table for people, one line per part; a failed part's last log lines below it."""
        header = ("NAME", "STATE", "UPTIME", "RESTARTS", "ADDRESS", "PID", "RSS")
        rows = [header]
        for part in self.parts:
            rows.append(
                (
                    part.name,
                    part.state,
                    human_seconds(part.uptime),
                    "" if part.restarts is None else str(part.restarts),
                    part.address or "",
                    str(part.pid) if part.pid else "",
                    human_bytes(part.rss),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        out = []
        for index, row in enumerate(rows):
            cells = [cell.rjust(widths[i]) if i in (2, 3, 5, 6) else cell.ljust(widths[i])
                     for i, cell in enumerate(row)]  # fmt: skip
            line = "  " + "  ".join(cells).rstrip()
            shown = self.parts[index - 1] if index else None
            if shown is not None and shown.detail:
                line += f"  {shown.detail}"
            out.append(line)
            if shown is not None:
                out.extend(f"      | {text}" for text in shown.last_lines)
        processes = [p for p in self.parts if p.kind != "database" and p.rss is not None]
        if processes:
            out.append(f"  total RSS of {len(processes)} processes: {human_bytes(self.total_rss)}")
        return out
