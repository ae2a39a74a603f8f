"""What the operator sees when the database asked for cannot be used (the real `hearth up`).

Both cases fail before anything starts: no supervisord, no cluster of our own, nothing
remembered. The refused login is real: the harness's server refuses a role it lacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.platform.postgres import host_port
from hearth.platform.stack_config import DEFAULT_PORTS, port_env
from hearth.testing.database import PostgresServer
from hearth.testing.ports import free_port


def _up(var_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **{port_env(name): str(free_port()) for name in DEFAULT_PORTS},
        "HEARTH_VAR_DIR": str(var_dir),
        "HEARTH_POSTGRES_URL": url,
    }
    env.pop("HEARTH_POSTGRES", None)
    env.pop("HEARTH_SECRETS_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "hearth.platform", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _nothing_started(var_dir: Path) -> None:
    assert not (var_dir / "run" / "supervisord.json").exists()
    assert not (var_dir / "postgres").exists()  # never a cluster of our own instead
    assert not (var_dir / "database.json").exists()  # nothing remembered


def test_an_explicit_url_nothing_answers_on_says_so(tmp_path: Path) -> None:
    url = f"postgresql://postgres:typo-pass@127.0.0.1:{free_port()}/postgres"
    result = _up(tmp_path / "var", url)
    assert result.returncode == 1
    message = result.stderr.strip()
    print(message)
    assert message.startswith("hearth: error: no PostgreSQL answers at postgresql://postgres:***@")
    assert "asked for: HEARTH_POSTGRES_URL=" in message
    assert "never falls back to a database of its own" in message
    assert "typo-pass" not in result.stdout + result.stderr
    _nothing_started(tmp_path / "var")


def test_a_server_that_refuses_the_login_says_so(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    host, port = host_port(postgres_server.url)
    url = f"postgresql://hearth_no_such_role@{host}:{port}/postgres"
    result = _up(tmp_path / "var", url)
    assert result.returncode == 1
    message = result.stderr.strip()
    print(message)
    assert "answered but refused the login" in message
    assert 'role "hearth_no_such_role" does not exist' in message
    assert "no PostgreSQL answers" not in message  # the other error, not this one
    _nothing_started(tmp_path / "var")


@pytest.mark.parametrize("word", ["maybe", "1"])
def test_the_switch_word_is_yes(tmp_path: Path, word: str) -> None:
    env = {**os.environ, "HEARTH_VAR_DIR": str(tmp_path / "var"), "HEARTH_POSTGRES_SWITCH": word}
    result = subprocess.run(
        [sys.executable, "-m", "hearth.platform", "up"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "HEARTH_POSTGRES_SWITCH" in result.stderr
    assert "say yes" in result.stderr
