"""The hearth-ingest command: migrate, and a clear error without a database URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hearth.ingest.cli import main
from hearth.ingest.migrate import MIGRATIONS
from hearth.testing.database import run_async


def test_migrate_brings_the_database_to_head(
    fresh_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = fresh_database()
    monkeypatch.setenv("HEARTH_ENV", "test")
    monkeypatch.setenv("HEARTH_SECRETS_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("HEARTH_INGEST_DATABASE_URL", url)
    assert main(["migrate"]) == 0
    assert run_async(MIGRATIONS.current(url)) == MIGRATIONS.head()


def test_migrate_without_a_database_url_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEARTH_ENV", "test")
    monkeypatch.setenv("HEARTH_SECRETS_FILE", str(tmp_path / "none.env"))
    monkeypatch.delenv("HEARTH_INGEST_DATABASE_URL", raising=False)
    assert main(["migrate"]) == 2
    assert "HEARTH_INGEST_DATABASE_URL is required" in capsys.readouterr().err
