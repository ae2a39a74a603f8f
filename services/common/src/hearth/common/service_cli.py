"""The command line every service shares: ``hearth-<service> serve|migrate|<own command>``.

``serve`` (also what a bare ``python -m hearth.<service>`` does) runs the
service's app factory under uvicorn; ``migrate`` runs the service's migrate
coroutine alone (the native stack's migrate step; ``serve`` migrates too, in the
app's lifespan). A service may add operator commands of the same shape as
``migrate`` (``commands``: a coroutine that loads the settings, does one thing and
says what it did), such as auth's ``rotate-keys``, and uvicorn options of its own
(``server_options``: read from its settings when ``serve`` starts; realtime's websocket
implementation). Refused settings (a placeholder secret, say) end the command with
status 2 and one line naming the problem.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from hearth.common.errors import ConfigError

__all__ = ["run_service_cli"]

Migrate = Callable[[], Coroutine[Any, Any, str]]
"""Loads the service's settings, migrates its schema and says where it stands."""
MigrateRef = Migrate | str
"""A :data:`Migrate`, or where to import it from: ``"hearth.auth.migrate:migrate"`` (the
service's ``migrate.py``, imported only when the command runs)."""


def run_service_cli(
    argv: Sequence[str] | None,
    *,
    service: str,
    app_factory: str,
    default_port: int,
    migrate: MigrateRef | None = None,
    commands: Mapping[str, tuple[str, MigrateRef]] | None = None,
    server_options: Callable[[], Mapping[str, Any]] | None = None,
) -> int:
    """Parse ``argv`` for ``hearth-<service>`` and run ``serve``, ``migrate`` or a command.

    ``commands`` maps a command's name to its help line and its coroutine (or where to
    import it from), run like ``migrate``. ``server_options()`` (when given) is called as
    ``serve`` starts; its items go to ``uvicorn.run``.
    """
    prog = f"hearth-{service}"
    parser = argparse.ArgumentParser(
        prog=prog, description=f"Run the Hearth {service} service, or migrate its schema."
    )
    subparsers = parser.add_subparsers(dest="command")
    serve = subparsers.add_parser("serve", help=f"run the {service} service (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=default_port)
    if migrate is not None:
        subparsers.add_parser(
            "migrate", help=f"migrate the {service} schema to the newest revision"
        )
    own = dict(commands or {})
    for name, (help_text, _) in own.items():
        subparsers.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `python -m hearth.<service>` (the image's command): serve
        args = parser.parse_args(["serve"])
    try:
        if args.command == "migrate" and migrate is not None:
            print(f"{prog}: {asyncio.run(_resolve(migrate)())}")
            return 0
        if args.command in own:
            print(f"{prog}: {asyncio.run(_resolve(own[args.command][1])())}")
            return 0
        options = dict(server_options()) if server_options is not None else {}
        return _serve(app_factory, args.host, args.port, options)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # settings read by server_options (never their values)
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        print(f"{prog}: invalid settings: {problems}", file=sys.stderr)
        return 2


def _resolve(migrate: MigrateRef) -> Migrate:
    if not isinstance(migrate, str):
        return migrate
    module, _, name = migrate.partition(":")
    function: Migrate = getattr(importlib.import_module(module), name)
    return function


def _serve(app_factory: str, host: str, port: int, options: Mapping[str, Any]) -> int:
    import uvicorn

    uvicorn.run(
        app_factory,
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        **options,
    )
    return 0
