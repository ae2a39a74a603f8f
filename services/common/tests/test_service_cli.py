"""The shared ``hearth-<service> serve|migrate`` command line."""

from __future__ import annotations

import sys
import types

import pytest

from hearth.common.errors import ConfigError
from hearth.common.service_cli import run_service_cli


def test_migrate_runs_the_service_migration_and_says_where_it_stands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran: list[str] = []

    async def migrate() -> str:
        ran.append("migrated")
        return "sample schema at 0001"

    code = run_service_cli(
        ["migrate"], service="sample", app_factory="x:y", default_port=1, migrate=migrate
    )
    assert (code, ran) == (0, ["migrated"])
    assert capsys.readouterr().out == "hearth-sample: sample schema at 0001\n"


def test_refused_settings_end_with_status_2_and_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def migrate() -> str:
        raise ConfigError("HEARTH_SAMPLE_DATABASE_URL is required")

    code = run_service_cli(
        ["migrate"], service="sample", app_factory="x:y", default_port=1, migrate=migrate
    )
    assert code == 2
    assert capsys.readouterr().err == "hearth-sample: HEARTH_SAMPLE_DATABASE_URL is required\n"


def test_a_service_without_migrations_has_no_migrate_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_service_cli(["migrate"], service="sample", app_factory="x:y", default_port=1)
    assert exited.value.code == 2
    assert "invalid choice: 'migrate'" in capsys.readouterr().err


def test_migrate_may_be_named_and_is_imported_only_when_it_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def migrate() -> str:
        return "sample schema at 0002"

    module = types.ModuleType("sample_migrate")
    module.migrate = migrate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sample_migrate", module)
    named = "sample_migrate:migrate"
    code = run_service_cli(
        ["migrate"], service="sample", app_factory="x:y", default_port=1, migrate=named
    )
    assert code == 0
    assert capsys.readouterr().out == "hearth-sample: sample schema at 0002\n"


def test_server_options_of_the_service_go_to_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    ran: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.append(options))
    code = run_service_cli(
        ["serve", "--port", "9"],
        service="sample",
        app_factory="x:y",
        default_port=1,
        server_options=lambda: {"ws": "wsproto", "ws_per_message_deflate": False},
    )
    assert code == 0
    assert ran[0]["ws"] == "wsproto"
    assert ran[0]["ws_per_message_deflate"] is False
    assert ran[0]["port"] == 9
    ran.clear()
    run_service_cli(["serve"], service="sample", app_factory="x:y", default_port=1)
    assert "ws" not in ran[0]  # control: without server_options, uvicorn's defaults


def test_refused_server_options_end_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    def refused() -> dict[str, object]:
        raise ConfigError("HEARTH_SAMPLE_WEBSOCKET is not one of the choices")

    code = run_service_cli(
        ["serve"], service="sample", app_factory="x:y", default_port=1, server_options=refused
    )
    assert code == 2
    assert "HEARTH_SAMPLE_WEBSOCKET" in capsys.readouterr().err
