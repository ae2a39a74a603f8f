"""IngestSettings: required database, the test hook refused in production, windows checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.common.errors import ConfigError
from hearth.ingest.config import IngestSettings
from hearth.ingest.consumer import ConsumerConfig

URL = "postgresql+asyncpg://ingest:s3cr3t-Value@db/hearth"


def settings(tmp_path: Path, **values: object) -> IngestSettings:
    return IngestSettings(secrets_file=tmp_path / "none.env", **values)


def test_defaults_give_a_persistent_session_named_after_the_replica(tmp_path: Path) -> None:
    config = ConsumerConfig.from_settings(
        settings(tmp_path, env="test", database_url=URL, replica="r1")
    )
    assert config.client_id == "ingest-r1"
    assert config.username == "svc-ingest-r1"
    assert config.status_topic == "hearth-sys/services/ingest/r1"
    assert config.subscription == "$share/ingest/hearth/+/+/telemetry/#"
    assert config.receive_maximum == 10_000
    assert config.session_expiry > 0


def test_the_database_url_is_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_INGEST_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="HEARTH_INGEST_DATABASE_URL"):
        settings(tmp_path, env="test")


def test_the_hold_hook_is_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="test hook"):
        settings(
            tmp_path,
            env="production",
            database_url=URL,
            mqtt_password="a-real-looking-secret-42",
            test_hold_dir=tmp_path,
        )


def test_receive_maximum_must_cover_a_batch(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RECEIVE_MAXIMUM"):
        settings(tmp_path, env="test", database_url=URL, batch_max_rows=5000, receive_maximum=100)
