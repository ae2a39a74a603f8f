"""The generated secrets file: created once, never changed, private."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hearth.platform.errors import SecretsError
from hearth.platform.logins import PLATFORM_SERVICES
from hearth.platform.secrets import (
    ADMIN_PASSWORD_KEY,
    SECRET_SPECS,
    SecretSpec,
    ensure_secrets,
    mqtt_password_key,
    parse_dotenv,
    read_secrets,
    secrets_path,
    set_secret,
)

EXPECTED_KEYS = {
    "HEARTH_BROKER_ADMIN_PASSWORD",
    "HEARTH_AUTH_MQTT_PASSWORD",
    "HEARTH_REGISTRY_MQTT_PASSWORD",
    "HEARTH_INGEST_MQTT_PASSWORD",
    "HEARTH_REALTIME_MQTT_PASSWORD",
    "HEARTH_AUTH_KEY_ENCRYPTION_KEY",
    "HEARTH_AUTH_ADMIN_PASSWORD",
    "HEARTH_AUTOMATION_CLIENT_SECRET",  # issue 17: the automation service identity
    "HEARTH_REGISTRY_DEVICE_KEY",
}
SERVICE_KEYS = {
    "HEARTH_AUTH_KEY_ENCRYPTION_KEY",
    "HEARTH_AUTH_ADMIN_PASSWORD",
    "HEARTH_AUTOMATION_CLIENT_SECRET",
    "HEARTH_REGISTRY_DEVICE_KEY",
}


def test_spec_list_has_the_admin_and_one_password_per_service() -> None:
    keys = [spec.key for spec in SECRET_SPECS]
    assert set(keys) == EXPECTED_KEYS
    assert len(keys) == len(set(keys))
    broker_keys = {mqtt_password_key(s) for s in PLATFORM_SERVICES} | {ADMIN_PASSWORD_KEY}
    assert broker_keys | SERVICE_KEYS == set(keys)


def test_creates_a_private_file_with_strong_values(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secrets.env"
    ensured = ensure_secrets(path)
    assert ensured.path == path
    assert set(ensured.created) == EXPECTED_KEYS
    assert path.stat().st_mode & 0o777 == 0o600
    values = read_secrets(path)
    assert values == dict(ensured.values)
    assert len(set(values.values())) == len(values)  # no two alike
    for value in values.values():
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)  # 32 random bytes, no quoting needed


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    ensure_secrets(path)
    before = path.read_bytes()
    again = ensure_secrets(path)
    assert again.created == ()
    assert path.read_bytes() == before


def test_existing_values_and_unknown_keys_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    path.write_text(
        "# hand-written\nHEARTH_AUTH_MQTT_PASSWORD=mine\nexport OTHER_THING='kept value'\n"
    )
    path.chmod(0o644)
    ensured = ensure_secrets(path)
    assert "HEARTH_AUTH_MQTT_PASSWORD" not in ensured.created
    assert set(ensured.created) == EXPECTED_KEYS - {"HEARTH_AUTH_MQTT_PASSWORD"}
    values = read_secrets(path)
    assert values["HEARTH_AUTH_MQTT_PASSWORD"] == "mine"
    assert values["OTHER_THING"] == "kept value"
    assert path.read_text().startswith("# hand-written\n")
    assert path.stat().st_mode & 0o777 == 0o600


def test_loose_permissions_are_tightened_even_when_nothing_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    ensure_secrets(path)
    path.chmod(0o664)
    assert ensure_secrets(path).created == ()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_later_issue_extends_the_list(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    ensure_secrets(path)
    extra = SecretSpec("HEARTH_AUTH_SIGNING_KEY_PASSPHRASE", "auth: signing key passphrase")
    ensured = ensure_secrets(path, (*SECRET_SPECS, extra))
    assert ensured.created == ("HEARTH_AUTH_SIGNING_KEY_PASSPHRASE",)
    assert len(read_secrets(path)) == len(EXPECTED_KEYS) + 1


def test_env_var_chooses_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HEARTH_SECRETS_FILE", raising=False)
    assert secrets_path() == Path("var/secrets.env")
    monkeypatch.setenv("HEARTH_SECRETS_FILE", str(tmp_path / "x.env"))
    assert secrets_path() == tmp_path / "x.env"
    assert ensure_secrets().path == tmp_path / "x.env"


def test_missing_file_and_bad_lines_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="hearth secrets"):
        read_secrets(tmp_path / "none.env")
    with pytest.raises(SecretsError, match="line 2"):
        parse_dotenv("A=1\nnot a pair\n")


def test_parse_dotenv_forms() -> None:
    text = "\n# c\nA=1\nexport B = \"two words\"\nC='x'\nD=\nA=3\n"
    assert parse_dotenv(text) == {"A": "3", "B": "two words", "C": "x", "D": ""}


def test_spec_refuses_weak_or_odd_definitions() -> None:
    with pytest.raises(ValueError, match="env name"):
        SecretSpec("lower", "x")
    with pytest.raises(ValueError, match="16 random bytes"):
        SecretSpec("HEARTH_X", "x", nbytes=8)
    with pytest.raises(ValueError, match="unknown platform service"):
        mqtt_password_key("web")


def test_set_secret_replaces_one_value_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    ensured = ensure_secrets(path)
    path.write_text(path.read_text(encoding="utf-8") + "# mine\nOTHER=kept\n", encoding="utf-8")
    set_secret(path, "HEARTH_AUTH_ADMIN_PASSWORD", "new-value-123")
    values = read_secrets(path)
    assert values["HEARTH_AUTH_ADMIN_PASSWORD"] == "new-value-123"
    assert values["OTHER"] == "kept"
    assert "# mine" in path.read_text(encoding="utf-8")
    unchanged = {k: v for k, v in ensured.values.items() if k != "HEARTH_AUTH_ADMIN_PASSWORD"}
    assert {k: values[k] for k in unchanged} == unchanged
    assert path.stat().st_mode & 0o777 == 0o600
    set_secret(path, "HEARTH_NEW_KEY", "added")
    assert read_secrets(path)["HEARTH_NEW_KEY"] == "added"
