"""Key rotation on demand: the admin endpoint and ``hearth-auth rotate-keys``.

The new key is published at once; verifiers pick its kid up without a restart; tokens
signed by the old key stay valid until they expire (the old key stays in the JWKS).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from hearth.auth.config import AuthSettings
from hearth.common.tokens import JwksClient, TokenVerifier
from hearth.testing.services import AuthStack, bearer


def _kids(auth: AuthStack) -> list[str]:
    return [key["kid"] for key in auth.http.get("/.well-known/jwks.json").json()["keys"]]


def _kid(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def test_rotation_keeps_old_tokens_valid_and_verifiers_follow(
    make_auth: Callable[..., AuthStack],
) -> None:
    auth = make_auth(key_publish_delay=0)
    old_token = auth.admin_token
    old_kid = _kid(old_token)
    jwks = JwksClient(f"{auth.url}/.well-known/jwks.json", min_refresh_interval=0.0)
    verifier = TokenVerifier(
        jwks, issuer=auth.settings.token_issuer, audience=auth.settings.token_audience
    )
    await verifier.verify(old_token)
    assert jwks.fetches == 1

    user = auth.create_user()
    user_token = auth.login(user["username"], user["password"])["access_token"]
    refused = auth.http.post("/auth/keys/rotate", headers=bearer(user_token))
    assert refused.status_code == 403
    rotated = auth.http.post("/auth/keys/rotate", headers=bearer(old_token))
    assert rotated.status_code == 201, rotated.text
    new_kid = rotated.json()["kid"]
    assert new_kid != old_kid
    assert set(_kids(auth)) == {old_kid, new_kid}

    new_token = auth.login(user["username"], user["password"])["access_token"]
    assert _kid(new_token) == new_kid
    caller = await verifier.verify(new_token)  # a new kid: one refresh, no restart
    assert caller.user_id == user["id"]
    assert jwks.fetches == 2
    assert (await verifier.verify(old_token)).is_admin  # the old key still verifies
    assert auth.me(old_token).status_code == 200
    assert auth.me(new_token).status_code == 200


def test_the_rotate_keys_command_adds_a_key_the_service_picks_up(
    make_auth: Callable[..., AuthStack], tmp_path: Path
) -> None:
    auth = make_auth(key_publish_delay=0)
    before = _kids(auth)
    env = {
        **os.environ,
        "HEARTH_ENV": "test",
        "HEARTH_SECRETS_FILE": str(tmp_path / "none.env"),
        "HEARTH_AUTH_DATABASE_URL": auth.settings.require_database_url(),
        "HEARTH_AUTH_KEY_ENCRYPTION_KEY": auth.settings.key_encryption_key.get_secret_value(),
        "HEARTH_AUTH_KEY_PUBLISH_DELAY": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "hearth.auth", "rotate-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    new = done.stdout.split("new signing key ", 1)[1].split(",", 1)[0]
    assert new not in before
    # the running service publishes the key the command stored (it reloads every 5 s)
    end = time.monotonic() + 30.0
    while new not in _kids(auth) and time.monotonic() < end:
        time.sleep(0.2)
    assert set(_kids(auth)) == {*before, new}
    assert auth.me(auth.admin_token).status_code == 200  # the old key still verifies


def test_a_retired_key_must_outlive_the_tokens_it_signed(tmp_path: Path) -> None:
    base = {
        "env": "test",
        "secrets_file": tmp_path / "none.env",
        "key_encryption_key": "x" * 32,
        "access_token_ttl": 900,
    }
    with pytest.raises(ValidationError, match="key_retention"):
        AuthSettings(**base, key_retention=600)
    assert AuthSettings(**base, key_retention=905).key_retention == 905
