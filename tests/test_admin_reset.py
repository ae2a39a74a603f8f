"""``hearth admin reset``: the seeded admin is back, with a new password, while auth runs.

The seeded admin is disabled by another admin (so it is locked out), then the operator
runs ``hearth admin reset`` on the host with the secrets file and the stack's settings.
The running auth follows the admin's new mark on the bus: the new password logs in and
the new token is accepted at once, while tokens from before the reset are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hearth.platform.cli import main as hearth
from hearth.platform.secrets import read_secrets
from hearth.platform.stack_files import render_env_file
from hearth.testing.broker import RunningBroker
from hearth.testing.services import AuthStack, bearer


def test_admin_reset_gets_the_seeded_admin_back(
    make_auth: Callable[..., AuthStack],
    broker: RunningBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    auth = make_auth()
    settings = auth.settings
    seeded_token = auth.admin_token
    seeded_id = auth.me(seeded_token).json()["id"]
    other = auth.create_user(roles=["admin"])
    other_token = auth.login(other["username"], other["password"])["access_token"]
    disabled = auth.http.patch(
        f"/auth/users/{seeded_id}", json={"disabled": True}, headers=bearer(other_token)
    )
    assert disabled.status_code == 200, disabled.text
    old_password = settings.admin_password.get_secret_value()
    locked = auth.http.post(
        "/auth/token", data={"username": settings.admin_username, "password": old_password}
    )
    assert locked.status_code == 400
    assert auth.me(seeded_token).status_code == 401

    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(
        broker.secrets_file.read_text(encoding="utf-8")
        + f"HEARTH_AUTH_KEY_ENCRYPTION_KEY={settings.key_encryption_key.get_secret_value()}\n"
        + f"HEARTH_AUTH_ADMIN_PASSWORD={old_password}\n",
        encoding="utf-8",
    )
    stack_env = tmp_path / "stack.env"
    stack_env.write_text(
        render_env_file(
            {
                "HEARTH_ENV": "test",
                "HEARTH_AUTH_DATABASE_URL": settings.require_database_url(),
                "HEARTH_AUTH_ADMIN_USERNAME": settings.admin_username,
                "HEARTH_AUTH_MQTT_PORT": str(broker.port),
                "HEARTH_AUTH_PASSWORD_TIME_COST": "1",
                "HEARTH_AUTH_PASSWORD_MEMORY_KIB": "1024",
            }
        ),
        encoding="utf-8",
    )
    code = hearth(
        [
            "admin",
            "reset",
            "--secrets-file",
            str(secrets_file),
            "--stack-env",
            str(stack_env),
            "--port",
            str(broker.port),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "its mark is on the bus" in out
    new_password = read_secrets(secrets_file)["HEARTH_AUTH_ADMIN_PASSWORD"]
    assert new_password != old_password
    assert new_password not in out

    answer = auth.http.post(
        "/auth/token", data={"username": settings.admin_username, "password": new_password}
    )
    assert answer.status_code == 200, answer.text
    new_token = answer.json()["access_token"]
    # the running auth took the new mark from the bus: the admin is enabled again there
    assert auth.me(new_token).status_code == 200
    assert auth.http.get("/auth/users", headers=bearer(new_token)).status_code == 200
    assert auth.me(seeded_token).status_code == 401  # tokens from before stay revoked
    old = auth.http.post(
        "/auth/token", data={"username": settings.admin_username, "password": old_password}
    )
    assert old.status_code == 400
