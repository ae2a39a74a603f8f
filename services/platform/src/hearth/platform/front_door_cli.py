"""``hearth front-door``: render the front door's site and nginx config, then run nginx.

The compose ``web`` container runs it (``--compose``: each service at ``<name>:<port>`` on the
compose network); the native stack renders the same files itself (``hearth up``)::

    hearth front-door --compose --work-dir /tmp/hearth-web --tls-dir /var/lib/hearth/tls --run

The ``HEARTH_WEB_*`` settings (:mod:`hearth.platform.front_door_config`) come from the
environment. ``--run`` replaces this process with nginx (so it gets the container's signals).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from hearth.platform.front_door import FrontDoorError, FrontDoorSettings, worker_user, write_config
from hearth.platform.front_door_config import FrontDoorOptions
from hearth.platform.front_door_routes import routed_services
from hearth.platform.front_door_site import write_site
from hearth.platform.stack_config import DEFAULT_PORTS, HOST

__all__ = ["add_front_door_command"]


def _upstreams(args: argparse.Namespace) -> dict[str, str]:
    host_of = (lambda name: name) if args.compose else (lambda _name: HOST)
    upstreams = {name: f"{host_of(name)}:{DEFAULT_PORTS[name]}" for name in routed_services()}
    for item in args.upstream:
        name, sep, address = item.partition("=")
        if not sep:
            raise FrontDoorError(f"--upstream {item!r} is not NAME=HOST:PORT")
        upstreams[name] = address
    return upstreams


def _cmd_front_door(args: argparse.Namespace) -> int:
    options = FrontDoorOptions.from_env(os.environ, Path.cwd())
    work: Path = args.work_dir.resolve()
    tls = options.tls_files(args.tls_dir.resolve())
    site = write_site(work / "site", tls.ca if tls else None)
    settings = FrontDoorSettings(
        listen=args.listen,
        upstreams=_upstreams(args),
        site_dir=site,
        work_dir=work,
        cors_origins=options.cors_origins,
        tls=tls,
        user=args.user or worker_user(),
    )
    conf = work / "nginx.conf"
    write_config(settings, conf)
    print(
        f"front-door: wrote {conf} ({options.scheme} on {args.listen}, "
        f"{len(options.cors_origins)} CORS origins)",
        flush=True,
    )
    if not args.run:
        return 0
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        raise FrontDoorError("nginx is not installed (Debian: apt-get install nginx-light)")
    os.execv(nginx, [nginx, "-p", str(work), "-e", "stderr", "-c", str(conf)])  # noqa: S606


def add_front_door_command(sub: Any) -> None:
    """Add ``front-door`` to the ``hearth`` command's subparsers."""
    p = sub.add_parser("front-door", help="render the front door (nginx) and optionally run it")
    p.add_argument("--listen", default=str(DEFAULT_PORTS["web"]), help="PORT or ADDRESS:PORT")
    p.add_argument(
        "--compose", action="store_true", help="services at <name>:<port> (compose network)"
    )
    p.add_argument(
        "--upstream", action="append", default=[], help="NAME=HOST:PORT (repeatable override)"
    )
    p.add_argument("--work-dir", type=Path, default=Path("var/web"))
    p.add_argument("--tls-dir", type=Path, default=Path("var/tls"), help="HEARTH_TLS=generated")
    p.add_argument("--user", help="the workers' user when started as root (default: root)")
    p.add_argument("--run", action="store_true", help="then become nginx")
    p.set_defaults(func=_cmd_front_door)
