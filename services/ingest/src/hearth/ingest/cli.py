"""``hearth-ingest`` (or ``python -m hearth.ingest``): ``serve`` it, ``migrate`` its schema.

Settings come from ``HEARTH_INGEST_*`` and the secrets file, as for the app. Without a
command it serves on 127.0.0.1:8103 (the HTTP app with the consumer). ``serve`` migrates
too (in the app's lifespan, advisory-locked); ``migrate`` alone is for the native stack's
migrate step.
"""

from __future__ import annotations

from collections.abc import Sequence

from hearth.common.service_cli import run_service_cli

__all__ = ["DEFAULT_PORT", "main"]

DEFAULT_PORT = 8103


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``serve`` (the default) or ``migrate``."""
    return run_service_cli(
        argv,
        service="ingest",
        app_factory="hearth.ingest.main:create_app",
        default_port=DEFAULT_PORT,
        migrate="hearth.ingest.migrate:migrate",
    )
