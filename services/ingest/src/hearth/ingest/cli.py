"""``hearth-ingest`` (or ``python -m hearth.ingest``): ``serve`` (the HTTP app with the
consumer; the default, on 127.0.0.1:8103) and ``migrate``."""

from __future__ import annotations

from collections.abc import Sequence

from hearth.common.service_cli import run_service_cli

__all__ = ["DEFAULT_PORT", "main"]

DEFAULT_PORT = 8103


async def _migrate() -> str:
    from hearth.ingest.config import IngestSettings
    from hearth.ingest.main import MIGRATIONS, migrate

    await migrate(IngestSettings.load())
    return f"ingest schema at {MIGRATIONS.head()}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``serve`` (the default) or ``migrate``."""
    return run_service_cli(
        argv,
        service="ingest",
        app_factory="hearth.ingest.main:create_app",
        default_port=DEFAULT_PORT,
        migrate=_migrate,
    )
