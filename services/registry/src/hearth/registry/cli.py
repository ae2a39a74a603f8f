"""``hearth-registry`` (or ``python -m hearth.registry``): ``serve`` it, ``migrate`` its schema.

Settings come from ``HEARTH_REGISTRY_*`` and the secrets file, as for the app. Without a
command it serves on 127.0.0.1:8102. ``serve`` migrates too (in the app's lifespan,
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
        service="registry",
        app_factory="hearth.registry.main:create_app",
        default_port=8102,
        migrate="hearth.registry.migrate:migrate",
    )
