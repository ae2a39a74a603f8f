"""``hearth admin reset``: get back in when every admin is locked out, from the host.

With the secrets file (and the native stack's ``var/stack.env`` when there is one):

1. a new password is generated;
2. the broker login ``svc-auth-reset`` (auth's role, bound to client id ``auth-reset``)
   is made sure of, as the dynsec admin, so the reset can publish the admin's mark;
3. ``python -m hearth.auth reset-admin`` runs with auth's settings and that login and
   reads the password on stdin (never on the command line): the seeded admin
   (``HEARTH_AUTH_ADMIN_USERNAME``) is enabled, an admin, has the new password, its old
   tokens are revoked and its mark goes on the bus, which running services follow;
4. the new password replaces ``HEARTH_AUTH_ADMIN_PASSWORD`` in the secrets file (it is
   never printed).
"""

from __future__ import annotations

import os
import secrets as _random
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hearth.platform.bootstrap import ensure_replica_logins, wait_for_broker
from hearth.platform.dynsec_control import DynsecControl
from hearth.platform.errors import BootstrapError, PlatformError
from hearth.platform.logins import ADMIN_USERNAME
from hearth.platform.secrets import (
    ADMIN_PASSWORD_KEY,
    read_secrets,
    secrets_path,
    set_secret,
)
from hearth.platform.stack_files import read_env_file

__all__ = ["ADMIN_SECRET_KEY", "RESET_REPLICA", "AdminResetError", "reset_admin"]

RESET_REPLICA = "reset"
"""The auth replica name the reset runs as (login ``svc-auth-reset``)."""
ADMIN_SECRET_KEY = "HEARTH_AUTH_ADMIN_PASSWORD"  # noqa: S105 - a key name, not a value
"""Where the seeded admin's password is kept."""


class AdminResetError(PlatformError):
    """The reset did not happen (nothing was changed in the secrets file)."""


@dataclass(frozen=True, slots=True)
class ResetResult:
    """What a reset did (never the password)."""

    summary: str
    secrets_file: Path


def reset_admin(
    *,
    secrets_file: Path | None = None,
    stack_env: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 1884,
    environ: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> ResetResult:
    """Reset the seeded admin (see the module docstring); :class:`AdminResetError` if not."""
    target = secrets_path() if secrets_file is None else secrets_file
    values = read_secrets(target)
    env = dict(os.environ if environ is None else environ)
    if stack_env is not None and stack_env.exists():
        env.update(read_env_file(stack_env))
    env.update(
        {
            "HEARTH_SECRETS_FILE": str(target),
            "HEARTH_AUTH_REPLICA": RESET_REPLICA,
            "HEARTH_AUTH_MQTT_HOST": env.get("HEARTH_AUTH_MQTT_HOST", host),
            "HEARTH_AUTH_MQTT_PORT": env.get("HEARTH_AUTH_MQTT_PORT", str(port)),
            "HEARTH_AUTH_MQTT_USERNAME": "",
        }
    )
    admin_password = values.get(ADMIN_PASSWORD_KEY, "")
    # The broker as auth reaches it: the TLS port and its CA when plain MQTT is off.
    port = int(env["HEARTH_AUTH_MQTT_PORT"])
    ca = env.get("HEARTH_AUTH_MQTT_CA_FILE") or None
    try:
        wait_for_broker(host, port, 10.0)
        with DynsecControl(
            host, port, ADMIN_USERNAME, admin_password, ca_file=Path(ca) if ca else None
        ) as dynsec:
            ensure_replica_logins(dynsec, values, {"auth": (RESET_REPLICA,)})
    except (BootstrapError, PlatformError) as exc:
        raise AdminResetError(f"the broker login for the reset: {exc}") from None
    password = _random.token_urlsafe(24)
    done = subprocess.run(
        [sys.executable, "-m", "hearth.auth", "reset-admin"],
        input=f"{password}\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
        raise AdminResetError(f"hearth-auth reset-admin failed: {lines[-1]}")
    set_secret(target, ADMIN_SECRET_KEY, password)
    summary = done.stdout.strip().removeprefix("hearth-auth: ")
    return ResetResult(summary, target)
