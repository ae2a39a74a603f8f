"""``hearth-realtime`` (or ``python -m hearth.realtime``): ``serve`` it.

Settings come from ``HEARTH_REALTIME_*`` and the secrets file, as for the app. Without a
command it serves on 127.0.0.1:8104, with the websocket implementation and compression of
its settings (``HEARTH_REALTIME_WEBSOCKET``, ``HEARTH_REALTIME_WEBSOCKET_DEFLATE``).
Realtime has no database, so no ``migrate``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hearth.common.service_cli import run_service_cli
from hearth.realtime.config import RealtimeSettings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``serve`` (the default)."""
    return run_service_cli(
        argv,
        service="realtime",
        app_factory="hearth.realtime.main:create_app",
        default_port=8104,
        server_options=lambda: RealtimeSettings.load().server_options(),
    )
