"""The native stack's subcommands of the ``hearth`` command, and ``hearth deploy-env``.

::

    hearth up                  start the native stack (docs/operations.md)
    hearth down                stop what `hearth up` started
    hearth status [--json]     each part up or down; exit 0 when all are up, else 3
    hearth logs [-n N] [--no-follow] [NAME...]
                               show and follow var/log/hearth.log
    hearth deploy-env [--file .env]
                               create the .env docker compose reads

:func:`add_stack_commands` registers them on the ``hearth`` parser (hearth.platform.cli).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from hearth.platform.deploy_env import ensure_deploy_env
from hearth.platform.stack_config import StackConfig
from hearth.platform.stack_logs import follow, tail

if TYPE_CHECKING:
    from hearth.platform.stack import Stack

__all__ = ["STATUS_NOT_UP", "add_stack_commands"]

STATUS_NOT_UP = 3
"""Exit status of ``hearth status`` when some part is down (as LSB's "not running")."""


def _stack() -> Stack:
    # Imported here: the stack pulls in the database driver, which `hearth secrets` never needs.
    from hearth.platform.stack import Stack

    return Stack(StackConfig.from_env())


def _cmd_up(args: argparse.Namespace) -> int:
    status = _stack().up()
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
    return 0 if status.up else STATUS_NOT_UP


def _cmd_logs(args: argparse.Namespace) -> int:
    log_file = StackConfig.from_env().log_file
    if args.no_follow:
        for line in tail(log_file, args.lines, args.names):
            print(line, end="")
        return 0
    follow(log_file, args.lines, args.names)
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
    p.set_defaults(func=_cmd_up)

    p = sub.add_parser("down", help="stop what `hearth up` started")
    p.set_defaults(func=_cmd_down)

    p = sub.add_parser("status", help="show each part of the native stack as up or down")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("logs", help="show and follow the native stack's log")
    p.add_argument("-n", "--lines", type=int, default=50, help="lines of history (default 50)")
    p.add_argument("--no-follow", action="store_true", help="print the history and exit")
    p.add_argument("names", nargs="*", help="only these processes (mosquitto, a service...)")
    p.set_defaults(func=_cmd_logs)

    p = sub.add_parser("deploy-env", help="create the .env file docker compose reads")
    p.add_argument("--file", type=Path, default=Path(".env"), help="default: .env")
    p.set_defaults(func=_cmd_deploy_env)
