"""``hearth-registry`` (or ``python -m hearth.registry``): ``serve`` it, ``migrate`` its schema.

Settings come from ``HEARTH_REGISTRY_*`` and the secrets file, as for the app. Without a
command it serves on 127.0.0.1:8102. ``serve`` migrates too (in the app's lifespan,
advisory-locked); ``migrate`` alone is for the native stack's migrate step.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _migrate() -> int:
    from hearth.common.db import wait_for_database
    from hearth.registry.config import RegistrySettings
    from hearth.registry.main import database_url
    from hearth.registry.migrate import MIGRATIONS

    settings = RegistrySettings.load()
    url = database_url(settings)

    async def run() -> None:
        await wait_for_database(url, timeout=settings.database_wait)
        await MIGRATIONS.upgrade(url)

    asyncio.run(run())
    print(f"registry schema at {MIGRATIONS.head()}")
    return 0


def _serve(host: str, port: int) -> int:
    import uvicorn

    uvicorn.run(
        "hearth.registry.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run ``serve`` or ``migrate``."""
    parser = argparse.ArgumentParser(prog="hearth-registry", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the registry (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8102)
    commands.add_parser("migrate", help="migrate the registry schema to the newest revision")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        return _migrate()
    if args.command is None:  # plain `python -m hearth.registry` (the image's default): serve
        return _serve("127.0.0.1", 8102)
    return _serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
