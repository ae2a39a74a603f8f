"""The ``hearth`` command: the platform's own chores (secrets, broker config, bootstrap).

::

    hearth secrets                    create missing values in the secrets file
    hearth broker-config --out FILE   render mosquitto/hearth.conf.template
    hearth bootstrap                  offline dynsec init (when missing) + online logins/roles
    hearth front-door [--run]         render the front door's nginx config (and run nginx)
    hearth reconcile                  the registry puts the broker's device logins right
    hearth admin reset                re-enable the seeded admin with a new password (on the host)

It prints what it did, never a secret value; errors exit with status 1 and one line on
stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hearth.platform import broker_config
from hearth.platform.admin_reset import reset_admin
from hearth.platform.bootstrap import bootstrap
from hearth.platform.errors import PlatformError
from hearth.platform.front_door_cli import add_front_door_command
from hearth.platform.reconcile import reconcile
from hearth.platform.secrets import ensure_secrets
from hearth.platform.stack_cli import add_stack_commands

__all__ = ["build_parser", "main"]


def _cmd_secrets(args: argparse.Namespace) -> int:
    ensured = ensure_secrets(args.file)
    if ensured.created:
        for key in ensured.created:
            print(f"secrets: created {key} in {ensured.path}")
    else:
        print(f"secrets: {ensured.path} already has every value")
    return 0


_OVERRIDES = {
    "port": "port",
    "bind": "bind_address",
    "data_dir": "persistence_location",
    "dynsec_file": "dynsec_file",
    "plugin": "dynsec_plugin",
    "user": "user",
    "sys_interval": "sys_interval",
    "autosave_interval": "autosave_interval",
    "log_dest": "log_dest",
}


def _cmd_broker_config(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {
        field: getattr(args, option)
        for option, field in _OVERRIDES.items()
        if getattr(args, option) is not None
    }
    if args.data_dir is not None and args.dynsec_file is None and args.preset != "docker":
        overrides["dynsec_file"] = args.data_dir / broker_config.DYNSEC_FILE_NAME
    settings = broker_config.preset(args.preset, **overrides)
    template = args.template.read_text(encoding="utf-8") if args.template else None
    if str(args.out) == "-":
        sys.stdout.write(broker_config.render(settings, template))
        return 0
    broker_config.write_config(settings, args.out, template)
    print(f"broker-config: wrote {args.out} ({args.preset}, port {settings.port})")
    return 0


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    result = bootstrap(
        secrets_file=args.secrets_file,
        host=args.host,
        port=args.port,
        dynsec_file=args.dynsec_file,
        offline=args.offline,
        wait=args.wait,
        mosquitto_ctrl=args.mosquitto_ctrl,
        ca_file=args.ca_file,
    )
    for key in result.secrets_created:
        print(f"bootstrap: created secret {key} in {result.secrets_file}")
    if result.dynsec_file_created:
        print(f"bootstrap: created the dynsec file {args.dynsec_file} (admin login only)")
    for change in result.changes:
        print(f"bootstrap: {change}")
    if result.online and not result.changes:
        print(f"bootstrap: broker {args.host}:{args.port} already up to date")
    return 0


def _cmd_reconcile(args: argparse.Namespace) -> int:
    report = reconcile(
        auth_url=args.auth_url, registry_url=args.registry_url, secrets_file=args.secrets_file
    )
    for action in ("created", "deleted", "repaired"):
        for name in report.get(action, []):
            print(f"reconcile: {action} {name}")
    print(f"reconcile: {report.get('unchanged', 0)} device login(s) already right")
    return 0


def _cmd_admin_reset(args: argparse.Namespace) -> int:
    result = reset_admin(
        secrets_file=args.secrets_file,
        stack_env=args.stack_env,
        host=args.host,
        port=args.port,
    )
    print(f"admin reset: {result.summary}")
    print(f"admin reset: the new password is HEARTH_AUTH_ADMIN_PASSWORD in {result.secrets_file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hearth`` command."""
    parser = argparse.ArgumentParser(prog="hearth", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("secrets", help="create missing values in the secrets file")
    p.add_argument(
        "--file", type=Path, default=None, help="default: $HEARTH_SECRETS_FILE or var/secrets.env"
    )
    p.set_defaults(func=_cmd_secrets)

    p = sub.add_parser("broker-config", help="render the Mosquitto config")
    p.add_argument("--out", type=Path, required=True, help="file to write, or - for stdout")
    p.add_argument("--preset", choices=("native", "docker", "test"), default="native")
    p.add_argument("--port", type=int)
    p.add_argument("--bind", help="listener address (native: 127.0.0.1, docker: 0.0.0.0)")
    p.add_argument("--data-dir", type=Path, help="persistence folder (and dynsec file's folder)")
    p.add_argument("--dynsec-file", type=Path)
    p.add_argument("--plugin", type=Path, help="dynsec plugin .so (default: detected)")
    p.add_argument("--user", help="user mosquitto runs as when started as root")
    p.add_argument("--sys-interval", type=int)
    p.add_argument("--autosave-interval", type=int)
    p.add_argument("--log-dest", help="stderr, stdout, 'file /abs/path', ...")
    p.add_argument("--template", type=Path, help="default: mosquitto/hearth.conf.template")
    p.set_defaults(func=_cmd_broker_config)

    p = sub.add_parser("bootstrap", help="create the broker's logins and roles (idempotent)")
    p.add_argument("--secrets-file", type=Path, default=None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1884)
    p.add_argument(
        "--dynsec-file",
        type=Path,
        help="the broker's dynsec file: created offline (with the admin login) when missing",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="only the offline phase (secrets, dynsec file): run before starting mosquitto",
    )
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the broker")
    p.add_argument("--mosquitto-ctrl", default="mosquitto_ctrl")
    p.add_argument(
        "--ca-file",
        type=Path,
        help="MQTT over TLS trusting this CA (--port is then the TLS port, e.g. 8883 with "
        "HEARTH_MQTT_PLAIN=off)",
    )
    p.set_defaults(func=_cmd_bootstrap)

    p = sub.add_parser(
        "reconcile", help="have the registry make the broker's device logins match its table"
    )
    p.add_argument("--secrets-file", type=Path, default=None)
    p.add_argument("--auth-url", default="http://127.0.0.1:8101")
    p.add_argument("--registry-url", default="http://127.0.0.1:8102")
    p.set_defaults(func=_cmd_reconcile)

    p = sub.add_parser("admin", help="recover platform administration (on the host)")
    admin = p.add_subparsers(dest="admin_command", required=True)
    p = admin.add_parser(
        "reset",
        help="re-enable the seeded admin with a new password (kept in the secrets file)",
    )
    p.add_argument("--secrets-file", type=Path, default=None)
    p.add_argument(
        "--stack-env",
        type=Path,
        default=Path("var/stack.env"),
        help="the native stack's settings, when it runs (default: var/stack.env)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the broker")
    p.add_argument("--port", type=int, default=1884)
    p.set_defaults(func=_cmd_admin_reset)

    add_front_door_command(sub)  # hearth.platform.front_door_cli
    add_stack_commands(sub)  # up, down, status, logs, deploy-env (hearth.platform.stack_cli)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hearth`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except PlatformError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
