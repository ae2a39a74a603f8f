"""``hearth-auth`` (or ``python -m hearth.auth``): ``serve`` the service, ``migrate`` its schema.

Settings come from ``HEARTH_AUTH_*`` and the secrets file, as for the app. Without a
command it serves on 127.0.0.1:8101. ``serve`` migrates too (in the app's lifespan,
advisory-locked); ``migrate`` alone is for the native stack's migrate step.
"""

from __future__ import annotations

from collections.abc import Sequence

from hearth.common.service_cli import run_service_cli

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``serve`` (the default) or ``migrate``."""
    return run_service_cli(
        argv,
        service="auth",
        app_factory="hearth.auth.main:create_app",
        default_port=8101,
        migrate="hearth.auth.migrate:migrate",
    )
