"""``hearth reconcile``: ask the running registry to reconcile the broker's device logins.

The registry holds the device logins' truth (its table, passwords sealed) and the broker
connection to change them; this command only asks it, over HTTP, as the platform's first
admin: it logs in to auth with ``HEARTH_AUTH_ADMIN_USERNAME`` (``admin`` unless set) and
``HEARTH_AUTH_ADMIN_PASSWORD`` from the environment or the secrets file, then calls
``POST /registry/reconcile`` and returns its report. No secret is ever printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from hearth.platform.errors import ReconcileError
from hearth.platform.secrets import read_secrets

__all__ = ["ADMIN_PASSWORD_ENV", "ADMIN_USERNAME_ENV", "reconcile"]

ADMIN_USERNAME_ENV = "HEARTH_AUTH_ADMIN_USERNAME"
ADMIN_PASSWORD_ENV = "HEARTH_AUTH_ADMIN_PASSWORD"  # noqa: S105 - a key name, not a value


def _admin(secrets_file: Path | None) -> tuple[str, str]:
    values = read_secrets(secrets_file)
    username = os.environ.get(ADMIN_USERNAME_ENV) or values.get(ADMIN_USERNAME_ENV) or "admin"
    password = os.environ.get(ADMIN_PASSWORD_ENV) or values.get(ADMIN_PASSWORD_ENV)
    if not password:
        raise ReconcileError(f"{ADMIN_PASSWORD_ENV} is in neither the environment nor the file")
    return username, password


def reconcile(
    *,
    auth_url: str,
    registry_url: str,
    secrets_file: Path | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """The registry's reconcile report (``created``, ``deleted``, ``repaired``, ``unchanged``)."""
    username, password = _admin(secrets_file)
    try:
        with httpx.Client(timeout=timeout) as http:
            token = http.post(
                f"{auth_url.rstrip('/')}/auth/token",
                data={"username": username, "password": password},
            )
            if token.status_code != 200:
                raise ReconcileError(
                    f"auth refused the admin login {username!r} ({token.status_code})"
                )
            answer = http.post(
                f"{registry_url.rstrip('/')}/registry/reconcile",
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
    except httpx.HTTPError as exc:
        raise ReconcileError(f"cannot reach auth or the registry: {exc}") from None
    if answer.status_code != 200:
        detail = answer.json().get("detail", "") if answer.content else ""
        raise ReconcileError(f"the registry answered {answer.status_code}: {detail}")
    report: dict[str, Any] = answer.json()
    return report
