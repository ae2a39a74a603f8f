"""HearthSettings: env prefix, secrets file, placeholder refusal, nothing built at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from hearth.common.errors import ConfigError
from hearth.common.settings import HearthSettings, is_placeholder

REAL_PASSWORD = "Vq7-real-broker-password-3f9a"


class SampleSettings(HearthSettings):
    """A service's settings as a service would declare them."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_SAMPLE_")

    service: str = "sample"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HEARTH_* variable leaks in from the machine; no secrets file unless a test writes one."""
    for name in list(os.environ):
        if name.upper().startswith("HEARTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEARTH_SECRETS_FILE", str(tmp_path / "absent.env"))


def test_defaults_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_ENV", "development")
    settings = SampleSettings.load()
    assert settings.env == "development"
    assert settings.service == "sample"
    assert settings.mqtt_username == f"svc-sample-{settings.replica}"
    assert settings.client_id == f"sample-{settings.replica}"
    assert settings.token_audience == "hearth"
    assert settings.log_level == "INFO"
    assert settings.database_url is None


def test_production_is_the_default_and_refuses_an_empty_secret() -> None:
    with pytest.raises(ConfigError, match="HEARTH_SAMPLE_MQTT_PASSWORD"):
        SampleSettings()


@pytest.mark.parametrize(
    "placeholder",
    ["", "  ", "changeme", "CHANGE-ME", "secret", "password", "placeholder", "example", "xxx",
     "XXXXXXXX", "<broker password>", "${MQTT_PASSWORD}", "**********"],
)  # fmt: skip
def test_production_refuses_placeholders(monkeypatch: pytest.MonkeyPatch, placeholder: str) -> None:
    monkeypatch.setenv("HEARTH_SAMPLE_MQTT_PASSWORD", placeholder)
    with pytest.raises(ConfigError) as caught:
        SampleSettings()
    assert "HEARTH_SAMPLE_MQTT_PASSWORD" in str(caught.value)
    assert "development or test" in str(caught.value)


def test_placeholder_password_inside_the_database_url_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEARTH_SAMPLE_MQTT_PASSWORD", REAL_PASSWORD)
    monkeypatch.setenv(
        "HEARTH_SAMPLE_DATABASE_URL", "postgresql+asyncpg://hearth:changeme@db:5432/hearth"
    )
    with pytest.raises(ConfigError) as caught:
        SampleSettings()
    assert "HEARTH_SAMPLE_DATABASE_URL" in str(caught.value)
    assert "changeme" not in str(caught.value)


def test_database_url_must_be_asyncpg_and_the_error_hides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEARTH_ENV", "test")
    url = f"postgresql://hearth:{REAL_PASSWORD}@db/hearth"
    with pytest.raises(ConfigError, match="postgresql\\+asyncpg") as caught:
        SampleSettings(database_url=url)
    assert REAL_PASSWORD not in str(caught.value)


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_allow_placeholders(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("HEARTH_ENV", env)
    monkeypatch.setenv("HEARTH_SAMPLE_MQTT_PASSWORD", "changeme")
    assert SampleSettings().mqtt_password.get_secret_value() == "changeme"


def test_production_accepts_real_secrets_and_never_prints_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEARTH_SAMPLE_MQTT_PASSWORD", REAL_PASSWORD)
    monkeypatch.setenv(
        "HEARTH_SAMPLE_DATABASE_URL", f"postgresql+asyncpg://hearth:{REAL_PASSWORD}@db/hearth"
    )
    settings = SampleSettings()
    assert settings.is_production
    assert settings.mqtt_password.get_secret_value() == REAL_PASSWORD
    assert settings.database_url is not None
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert REAL_PASSWORD not in text


def test_trust_auth_database_url_without_password_is_fine_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEARTH_SAMPLE_MQTT_PASSWORD", REAL_PASSWORD)
    monkeypatch.setenv("HEARTH_SAMPLE_DATABASE_URL", "postgresql+asyncpg://postgres@db/hearth")
    assert SampleSettings().database_url is not None


def test_fields_are_read_with_the_service_prefix_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_ENV", "test")
    monkeypatch.setenv("HEARTH_SAMPLE_MQTT_HOST", "broker.sample")
    monkeypatch.setenv("HEARTH_SAMPLE_MQTT_PORT", "1999")
    monkeypatch.setenv("HEARTH_SAMPLE_REPLICA", "r2")
    monkeypatch.setenv("HEARTH_SAMPLE_LOG_LEVEL", "debug")
    monkeypatch.setenv("HEARTH_OTHER_MQTT_USERNAME", "svc-other")  # another service's
    monkeypatch.setenv("HEARTH_MQTT_USERNAME", "unprefixed")  # the base prefix, not ours
    settings = SampleSettings()
    assert (settings.mqtt_host, settings.mqtt_port) == ("broker.sample", 1999)
    assert settings.client_id == "sample-r2"
    assert settings.log_level == "DEBUG"
    assert settings.mqtt_username == "svc-sample-r2"
    assert settings.env == "test"


def test_env_and_secrets_file_are_read_unprefixed_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("HEARTH_SAMPLE_MQTT_PASSWORD=changeme\n")
    monkeypatch.setenv("HEARTH_SAMPLE_ENV", "development")
    monkeypatch.setenv("HEARTH_SAMPLE_SECRETS_FILE", str(secrets))
    with pytest.raises(ConfigError):  # still production, and the file was not read
        SampleSettings()
    monkeypatch.setenv("HEARTH_ENV", "development")
    assert SampleSettings().secrets_file == tmp_path / "absent.env"
    monkeypatch.setenv("HEARTH_SECRETS_FILE", str(secrets))
    settings = SampleSettings()
    assert settings.mqtt_password.get_secret_value() == "changeme"
    assert settings.env == "development"


def test_secrets_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text(
        f"HEARTH_SAMPLE_MQTT_PASSWORD={REAL_PASSWORD}\n"
        "HEARTH_SAMPLE_MQTT_HOST=from-file\n"
        "HEARTH_OTHER_MQTT_PASSWORD=not-ours\n"
        "HEARTH_BROKER_ADMIN_PASSWORD=also-not-ours\n"
    )
    monkeypatch.setenv("HEARTH_SECRETS_FILE", str(secrets))
    monkeypatch.setenv("HEARTH_SAMPLE_MQTT_HOST", "from-env")
    settings = SampleSettings()  # production: the file's real password passes
    assert settings.secrets_file == secrets
    assert settings.mqtt_password.get_secret_value() == REAL_PASSWORD
    assert settings.mqtt_host == "from-env"


def test_secrets_file_can_be_passed_directly(tmp_path: Path) -> None:
    secrets = tmp_path / "mine.env"
    secrets.write_text(f"HEARTH_SAMPLE_MQTT_PASSWORD={REAL_PASSWORD}\n")
    assert SampleSettings(secrets_file=secrets).mqtt_password.get_secret_value() == REAL_PASSWORD


def test_constructor_arguments_win_and_settings_are_frozen() -> None:
    settings = SampleSettings(env="test", mqtt_password=SecretStr(REAL_PASSWORD), replica="7")
    assert settings.client_id == "sample-7"
    with pytest.raises(ValueError, match="frozen"):
        settings.mqtt_host = "elsewhere"  # type: ignore[misc]


def test_bad_slugs_are_refused() -> None:
    with pytest.raises(ValueError, match="slug"):
        SampleSettings(env="test", replica="Not A Slug")


def test_is_placeholder() -> None:
    assert is_placeholder("Change-Me")
    assert not is_placeholder(REAL_PASSWORD)
    assert not is_placeholder("xx")


def test_nothing_is_built_at_import(tmp_path: Path) -> None:
    """Importing every hearth.common module in production with no secrets must not fail,
    and no module may hold a settings instance."""
    script = """
import importlib, pkgutil
import hearth.common
from hearth.common.settings import HearthSettings
names = [m.name for m in pkgutil.walk_packages(hearth.common.__path__, "hearth.common.")]
for name in names:
    module = importlib.import_module(name)
    held = [k for k, v in vars(module).items() if isinstance(v, HearthSettings)]
    assert not held, (name, held)
print(len(names))
"""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HEARTH_")}
    env["HEARTH_SECRETS_FILE"] = str(tmp_path / "absent.env")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 8


def test_service_urls_are_http_and_kept_without_a_trailing_slash(tmp_path: Path) -> None:
    settings = HearthSettings(
        env="test", secrets_file=tmp_path / "none.env", jwks_url="https://auth:1/jwks.json/"
    )
    assert settings.jwks_url == "https://auth:1/jwks.json"
    with pytest.raises(ValueError, match="http"):
        HearthSettings(env="test", secrets_file=tmp_path / "none.env", jwks_url="ftp://auth/")
