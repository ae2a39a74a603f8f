"""The native stack's subcommands of the ``hearth`` command, and ``hearth deploy-env``.

::

    hearth up [--switch-database]
                               start the native stack, or start what is down in it
                               (docs/operations.md)
    hearth down                stop what `hearth up` started
    hearth status [--json]     each part's state, uptime, restarts, address, pid, RSS;
                               exit 0 when all are up, else 3
    hearth restart [NAME...]   restart processes (all when none is named)
    hearth logs [-n N] [--no-follow] [NAME...]
                               show and follow the processes' logs, one line per event
    hearth deploy-env [--file .env]
                               create the .env docker compose reads

:func:`add_stack_commands` registers them on the ``hearth`` parser (hearth.platform.cli).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hearth.platform.deploy_env import ensure_deploy_env
from hearth.platform.services import SERVICES
from hearth.platform.stack_config import StackConfig, StackError
from hearth.platform.stack_logs import LogSource, follow, format_event, history, use_colour

if TYPE_CHECKING:
    from hearth.platform.stack import Stack

__all__ = ["STATUS_NOT_UP", "add_stack_commands"]

STATUS_NOT_UP = 3
"""Exit status of ``hearth status`` when some part is down (as LSB's "not running")."""


def _stack(switch_database: bool = False) -> Stack:
    # Imported here: the stack pulls in the database driver, which `hearth secrets` never needs.
    from hearth.platform.stack import Stack

    config = StackConfig.from_env()
    if switch_database:
        config = dataclasses.replace(config, switch_database=True)
    return Stack(config)


def _cmd_up(args: argparse.Namespace) -> int:
    status = _stack(args.switch_database).up()
    return 0 if status.up else STATUS_NOT_UP


def _cmd_restart(args: argparse.Namespace) -> int:
    status = _stack().restart(args.names)
    for line in status.lines():
        print(line)
    return 0 if status.up else STATUS_NOT_UP


def _cmd_down(args: argparse.Namespace) -> int:
    _stack().down()
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    stack = _stack()
    status = stack.status()
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    else:
        word = "up" if status.up else "not (fully) up"
        print(f"Hearth stack in {status.var_dir}: {word}")
        for line in status.lines():
            print(line)
        if status.database:
            print(f"Database: {status.database}")
    return 0 if status.up else STATUS_NOT_UP


LOG_NAMES = ("hearth", "supervisord", "mosquitto", *(spec.name for spec in SERVICES))
"""Every log ``hearth logs`` knows, in the order they are listed."""


def _log_sources(config: StackConfig, names: list[str]) -> list[LogSource]:
    unknown = [name for name in names if name not in LOG_NAMES]
    if unknown:
        raise StackError(f"no log named {', '.join(unknown)}; known: {', '.join(LOG_NAMES)}")
    return [LogSource(name, config.process_log(name)) for name in names or LOG_NAMES]


def _cmd_logs(args: argparse.Namespace) -> int:
    sources = _log_sources(StackConfig.from_env(), args.names)
    colour = use_colour(sys.stdout)
    if args.no_follow:
        for event in history(sources, args.lines):
            print(format_event(event, colour))
        return 0
    follow(sources, args.lines, lambda text: print(text, end="", flush=True), colour)
    return 0


def _cmd_deploy_env(args: argparse.Namespace) -> int:
    ensured = ensure_deploy_env(args.file)
    if ensured.created:
        for key in ensured.created:
            print(f"deploy-env: created {key} in {ensured.path}")
    else:
        print(f"deploy-env: {ensured.path} already has every value")
    return 0


def add_stack_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``up``, ``down``, ``status``, ``logs`` and ``deploy-env`` to the ``hearth`` parser."""
    p = sub.add_parser("up", help="start the native stack (broker, database, services)")
    p.add_argument(
        "--switch-database",
        action="store_true",
        help="use the database HEARTH_POSTGRES/HEARTH_POSTGRES_URL ask for, not the remembered "
        "one (also: HEARTH_POSTGRES_SWITCH=yes)",
    )
    p.set_defaults(func=_cmd_up)

    p = sub.add_parser("restart", help="restart processes of the running stack")
    p.add_argument("names", nargs="*", help="mosquitto, a service... (default: every process)")
    p.set_defaults(func=_cmd_restart)

    p = sub.add_parser("down", help="stop what `hearth up` started")
    p.set_defaults(func=_cmd_down)

    p = sub.add_parser("status", help="show each part's state, uptime, restarts, address, RSS")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("logs", help="show and follow the native stack's logs")
    p.add_argument("-n", "--lines", type=int, default=50, help="events of history (default 50)")
    p.add_argument("--no-follow", action="store_true", help="print the history and exit")
    p.add_argument("names", nargs="*", help=f"only these logs ({', '.join(LOG_NAMES)})")
    p.set_defaults(func=_cmd_logs)

    p = sub.add_parser("deploy-env", help="create the .env file docker compose reads")
    p.add_argument("--file", type=Path, default=Path(".env"), help="default: .env")
    p.set_defaults(func=_cmd_deploy_env)
