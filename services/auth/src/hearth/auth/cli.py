"""``hearth-auth`` (or ``python -m hearth.auth``): ``serve``, ``migrate``, operator commands.

Settings come from ``HEARTH_AUTH_*`` and the secrets file, as for the app. Without a
command it serves on 127.0.0.1:8101. ``serve`` migrates too (in the app's lifespan,
advisory-locked); ``migrate`` alone is for the native stack's migrate step.
``rotate-keys`` and ``reset-admin`` are the operator's (:mod:`hearth.auth.operator`).
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
        commands={
            "rotate-keys": ("add a new token signing key now", "hearth.auth.operator:rotate_keys"),
            "reset-admin": (
                "re-enable the seeded admin with the new password read on stdin",
                "hearth.auth.operator:reset_admin",
            ),
        },
    )
