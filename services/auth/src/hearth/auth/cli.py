"""``hearth-auth`` (or ``python -m hearth.auth``): ``serve`` the service, ``migrate`` its schema.

Settings come from ``HEARTH_AUTH_*`` and the secrets file, as for the app. Without a
command it serves on 127.0.0.1:8101. ``serve`` migrates too (in the app's lifespan,
advisory-locked); ``migrate`` alone is for the native stack's migrate step.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _migrate() -> int:
    from hearth.auth.config import AuthSettings
    from hearth.auth.main import _database_url
    from hearth.auth.migrate import MIGRATIONS
    from hearth.common.db import wait_for_database

    settings = AuthSettings.load()
    url = _database_url(settings)

    async def run() -> None:
        await wait_for_database(url, timeout=settings.database_wait)
        await MIGRATIONS.upgrade(url)

    asyncio.run(run())
    print(f"auth schema at {MIGRATIONS.head()}")
    return 0


def _serve(host: str, port: int) -> int:
    import uvicorn

    uvicorn.run(
        "hearth.auth.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run ``serve`` or ``migrate``."""
    parser = argparse.ArgumentParser(prog="hearth-auth", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the auth service (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8101)
    commands.add_parser("migrate", help="migrate the auth schema to the newest revision")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        return _migrate()
    if args.command is None:  # plain `python -m hearth.auth` (the image's default): serve
        return _serve("127.0.0.1", 8101)
    return _serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
