"""``hearth-ingest``: ``serve`` (the HTTP app with the consumer; the default) and ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["DEFAULT_PORT", "main"]

DEFAULT_PORT = 8103


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hearth-ingest`` command; return its exit status."""
    parser = argparse.ArgumentParser(prog="hearth-ingest", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the service (migrates first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    commands.add_parser("migrate", help="wait for the database and migrate it to head")
    args = parser.parse_args(argv)
    if args.command is None:  # `python -m hearth.ingest` alone serves (the image's command)
        args = parser.parse_args(["serve"])

    if args.command == "migrate":
        from hearth.common.errors import ConfigError
        from hearth.ingest.config import IngestSettings
        from hearth.ingest.main import migrate

        try:
            settings = IngestSettings.load()
        except ConfigError as exc:
            print(f"hearth-ingest: {exc}", file=sys.stderr)
            return 2
        asyncio.run(migrate(settings))
        print("hearth-ingest: database migrated")
        return 0

    import uvicorn

    uvicorn.run(
        "hearth.ingest.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
    )
    return 0
