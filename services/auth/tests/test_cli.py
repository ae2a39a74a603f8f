"""The ``hearth-auth`` command: ``migrate`` brings a database's auth schema to head."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hearth.auth.migrate import MIGRATIONS
from hearth.testing.database import run_async


def test_migrate_command(fresh_database: Callable[[], str], tmp_path: Path) -> None:
    url = fresh_database()
    env = {
        **os.environ,
        "HEARTH_ENV": "test",
        "HEARTH_SECRETS_FILE": str(tmp_path / "none.env"),
        "HEARTH_AUTH_DATABASE_URL": url,
        "HEARTH_AUTH_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
    }
    done = subprocess.run(
        [sys.executable, "-m", "hearth.auth", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert run_async(MIGRATIONS.current(url)) == MIGRATIONS.head() == "0002"
