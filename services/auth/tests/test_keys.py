"""Signing keys: sealed in the database, stable across restarts, rotated with notice."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hearth.auth.keys import KeyCipher, KeyRing, KeysCorrupt, new_key_record
from hearth.auth.main import create_app
from hearth.common.clock import utc_now
from hearth.common.errors import ConfigError
from hearth.testing.apps import AppStartError, serve_app
from hearth.testing.broker import RunningBroker
from hearth.testing.services import ADMIN_PASSWORD, auth_settings


def test_a_sealed_key_opens_only_with_its_secret_and_kid() -> None:
    cipher = KeyCipher(secrets.token_urlsafe(32))
    key = Ed25519PrivateKey.generate()
    sealed = cipher.seal("kid-1", key)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    opened = cipher.open("kid-1", sealed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert opened == raw
    assert raw not in sealed
    with pytest.raises(KeysCorrupt):
        cipher.open("kid-2", sealed)
    with pytest.raises(KeysCorrupt):
        KeyCipher(secrets.token_urlsafe(32)).open("kid-1", sealed)
    with pytest.raises(ConfigError):
        KeyCipher("")


def test_a_successor_is_published_before_it_signs_and_the_old_key_retires() -> None:
    cipher = KeyCipher(secrets.token_urlsafe(32))
    now = utc_now()
    old = new_key_record(cipher, activates_at=now - timedelta(days=10))
    new = new_key_record(cipher, activates_at=now + timedelta(seconds=10))
    ring = KeyRing(cipher, retention=timedelta(hours=1))
    ring.load([new, old])
    assert ring.signing_key(now).kid == old.kid
    assert {key.kid for key in ring.jwks(now).keys} == {old.kid, new.kid}
    later = now + timedelta(seconds=11)
    assert ring.signing_key(later).kid == new.kid
    assert {key.kid for key in ring.jwks(later).keys} == {old.kid, new.kid}
    much_later = now + timedelta(hours=2)
    assert [key.kid for key in ring.jwks(much_later).keys] == [new.kid]


def _kids(url: str) -> list[str]:
    return [key["kid"] for key in httpx.get(f"{url}/.well-known/jwks.json").json()["keys"]]


def test_keys_survive_a_restart_and_need_the_right_secret(
    fresh_database: Callable[[], str], broker: RunningBroker, tmp_path: Path
) -> None:
    url = fresh_database()
    settings = auth_settings(url, broker, tmp_path)
    login = {"username": settings.admin_username, "password": ADMIN_PASSWORD}
    with serve_app(create_app(settings), wait_path="/readyz") as first:
        token = httpx.post(f"{first.url}/auth/token", data=login).json()["access_token"]
        kids = _kids(first.url)
    assert len(kids) == 1
    assert jwt.get_unverified_header(token)["kid"] == kids[0]

    with serve_app(create_app(settings), wait_path="/readyz") as second:
        assert _kids(second.url) == kids
        me = httpx.get(f"{second.url}/auth/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200

    wrong = auth_settings(url, broker, tmp_path, key_encryption_key=secrets.token_urlsafe(32))
    with pytest.raises(AppStartError):
        serve_app(create_app(wrong), wait_path="/readyz", startup_timeout=10)
