"""The ``hearth-registry`` command: ``migrate`` brings a database's registry schema to head."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hearth.common.migrations import Migrations
from hearth.registry.migrate import MIGRATIONS
from hearth.testing.database import run_async


def test_migrate_command(fresh_database: Callable[[], str], tmp_path: Path) -> None:
    url = fresh_database()
    env = {
        **os.environ,
        "HEARTH_ENV": "test",
        "HEARTH_SECRETS_FILE": str(tmp_path / "none.env"),
        "HEARTH_REGISTRY_DATABASE_URL": url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "hearth.registry", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert run_async(MIGRATIONS.current(url)) == MIGRATIONS.head() == "0004"
    assert "registry schema at 0004" in done.stdout


def test_the_models_match_the_migrations(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    migrations: Migrations = MIGRATIONS
    run_async(migrations.upgrade(url))
    assert run_async(migrations.diff(url)) == []
