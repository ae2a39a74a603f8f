"""The native stack's configuration, PostgreSQL decision, rendered files and service list."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from hearth.platform.deploy_env import POSTGRES_PASSWORD_KEY, ensure_deploy_env
from hearth.platform.postgres import (
    asyncpg_dsn,
    database_url,
    host_port,
    plan_postgres,
    shown_url,
)
from hearth.platform.procfile import ProcfileEntry, render_env_file, render_procfile
from hearth.platform.secrets import SECRET_SPECS, parse_dotenv
from hearth.platform.services import SERVICES, ServiceSpec, render_args, service_env
from hearth.platform.stack_config import DEFAULT_PORTS, StackConfig, StackError, port_env

# --------------------------------------------------------------------------- configuration


def test_defaults_are_the_documented_ports_and_folders(tmp_path: Path) -> None:
    config = StackConfig.from_env({}, cwd=tmp_path)
    assert dict(config.ports) == {
        "broker": 1884,
        "web": 8100,
        "auth": 8101,
        "registry": 8102,
        "ingest": 8103,
        "realtime": 8104,
    }
    assert config.port("broker") != 1883  # never the system's broker
    assert config.var_dir == tmp_path.resolve() / "var"
    assert config.secrets_file == config.var_dir / "secrets.env"
    assert config.postgres_mode == "auto"
    assert config.postgres_url == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert config.database_name == "hearth"
    assert config.own_postgres_port == 5433
    assert config.record_file("mosquitto") == config.var_dir / "run" / "mosquitto.json"
    assert config.log_file == config.var_dir / "log" / "hearth.log"


def test_environment_overrides_every_setting(tmp_path: Path) -> None:
    env = {
        "HEARTH_VAR_DIR": "state",
        "HEARTH_SECRETS_FILE": "/etc/hearth/secrets.env",
        "HEARTH_BROKER_PORT": "21884",
        "HEARTH_AUTH_PORT": "28101",
        "HEARTH_POSTGRES": "own",
        "HEARTH_POSTGRES_URL": "postgresql://me:pw@db.example:6543/postgres",
        "HEARTH_DATABASE_NAME": "hearth_ci",
        "HEARTH_OWN_POSTGRES_PORT": "25433",
        "HEARTH_START_TIMEOUT": "7.5",
    }
    config = StackConfig.from_env(env, cwd=tmp_path)
    assert config.var_dir == tmp_path.resolve() / "state"
    assert config.secrets_file == Path("/etc/hearth/secrets.env")
    assert config.port("broker") == 21884
    assert config.port("auth") == 28101
    assert config.port("registry") == 8102
    assert config.postgres_mode == "own"
    assert config.postgres_url == env["HEARTH_POSTGRES_URL"]
    assert config.database_name == "hearth_ci"
    assert config.own_postgres_port == 25433
    assert config.start_timeout == 7.5


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("HEARTH_BROKER_PORT", "eighty", "not a port number"),
        ("HEARTH_AUTH_PORT", "70000", "outside 1..65535"),
        ("HEARTH_POSTGRES", "maybe", "auto, existing, own"),
        ("HEARTH_DATABASE_NAME", "Robert'); DROP", "lower-case"),
        ("HEARTH_START_TIMEOUT", "soon", "not seconds"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(key: str, value: str, message: str) -> None:
    with pytest.raises(StackError, match=message) as caught:
        StackConfig.from_env({key: value})
    assert key in str(caught.value)


def test_port_env_names() -> None:
    assert port_env("broker") == "HEARTH_BROKER_PORT"
    assert port_env("own_postgres") == "HEARTH_OWN_POSTGRES_PORT"
    assert set(DEFAULT_PORTS) >= {"broker", "auth", "registry", "ingest", "realtime", "web"}


# --------------------------------------------------------------------------- PostgreSQL decision

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
OWN = "postgresql+asyncpg://postgres@127.0.0.1:5433/postgres"


class Probe:
    """A stand-in for the server probe that counts its calls."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def __call__(self, url: str) -> bool:
        self.calls.append(url)
        return self.answer


@pytest.mark.parametrize(
    ("mode", "initialized", "answers", "binaries", "source", "url"),
    [
        ("auto", False, True, True, "existing", SERVER),
        ("auto", False, True, False, "existing", SERVER),
        ("auto", False, False, True, "own", OWN),
        ("auto", True, True, True, "own", OWN),  # our cluster's data stays in use
        ("existing", True, True, True, "existing", SERVER),
        ("existing", False, True, False, "existing", SERVER),
        ("own", False, True, True, "own", OWN),
        ("own", True, False, True, "own", OWN),
    ],
)
def test_plan_postgres_decides(
    mode: str, initialized: bool, answers: bool, binaries: bool, source: str, url: str
) -> None:
    probe = Probe(answers)
    plan = plan_postgres(
        mode,  # type: ignore[arg-type]
        SERVER,
        OWN,
        own_initialized=initialized,
        have_binaries=binaries,
        answers=probe,
    )
    assert (plan.source, plan.server_url) == (source, url)
    assert plan.reason
    assert len(probe.calls) <= 1


def test_own_mode_and_our_old_cluster_never_probe_the_server() -> None:
    for mode, initialized in (("own", False), ("auto", True)):
        probe = Probe(True)
        plan_postgres(
            mode,  # type: ignore[arg-type]
            SERVER,
            OWN,
            own_initialized=initialized,
            have_binaries=True,
            answers=probe,
        )
        assert probe.calls == []


def test_existing_mode_without_a_server_says_what_to_do() -> None:
    with pytest.raises(StackError, match=r"no PostgreSQL answers at .*HEARTH_POSTGRES=own"):
        plan_postgres(
            "existing", SERVER, OWN, own_initialized=False, have_binaries=True, answers=Probe(False)
        )


def test_nothing_to_use_and_nothing_to_start_says_what_to_install() -> None:
    with pytest.raises(StackError, match="apt-get install postgresql"):
        plan_postgres(
            "auto", SERVER, OWN, own_initialized=False, have_binaries=False, answers=Probe(False)
        )
    with pytest.raises(StackError, match="HEARTH_POSTGRES=own needs initdb"):
        plan_postgres(
            "own", SERVER, OWN, own_initialized=False, have_binaries=False, answers=Probe(True)
        )


def test_messages_never_show_a_database_password() -> None:
    url = "postgresql://hearth:s3cr3t-value@db:5432/postgres"
    with pytest.raises(StackError) as caught:
        plan_postgres(
            "existing", url, OWN, own_initialized=False, have_binaries=False, answers=Probe(False)
        )
    assert "s3cr3t-value" not in str(caught.value)
    assert shown_url(url) == "postgresql://hearth:***@db:5432/postgres"


def test_url_helpers() -> None:
    url = "postgresql://me:p%40ss@db.example:6543/postgres?sslmode=require"
    assert database_url(url, "hearth") == (
        "postgresql+asyncpg://me:p%40ss@db.example:6543/hearth?sslmode=require"
    )
    assert asyncpg_dsn(database_url(url, "hearth")).startswith("postgresql://me:p%40ss@")
    assert host_port(url) == ("db.example", 6543)
    assert host_port("postgresql://postgres@localhost/postgres") == ("localhost", 5432)
    with pytest.raises(StackError, match="not a PostgreSQL URL"):
        database_url("mysql://root:pw@db/x", "hearth")


# --------------------------------------------------------------------------- rendered files


def test_procfile_lines_run_each_program_under_its_record(tmp_path: Path) -> None:
    record = tmp_path / "run dir" / "mosquitto.json"
    entry = ProcfileEntry("mosquitto", ("/usr/sbin/mosquitto", "-c", "/a b/m.conf"), record)
    text = render_procfile([entry], python="/venv/bin/python")
    line = text.splitlines()[-1]
    name, _, command = line.partition(": ")
    assert name == "mosquitto"
    assert shlex.split(command) == [
        "exec", "/venv/bin/python", "-m", "hearth.platform.pidexec", str(record), "mosquitto",
        "--", "/usr/sbin/mosquitto", "-c", "/a b/m.conf",
    ]  # fmt: skip
    assert text.startswith("#")


def test_procfile_refuses_duplicate_or_bad_names(tmp_path: Path) -> None:
    entry = ProcfileEntry("auth", ("x",), tmp_path / "a.json")
    with pytest.raises(ValueError, match="unique"):
        render_procfile([entry, entry])
    with pytest.raises(ValueError, match="process name"):
        ProcfileEntry("bad name", ("x",), tmp_path / "b.json")


def test_env_file_round_trips_through_the_dotenv_parser() -> None:
    values = {"HEARTH_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/hearth"}
    assert parse_dotenv(render_env_file(values)) == values
    with pytest.raises(ValueError, match="line break"):
        render_env_file({"HEARTH_X": "a\nB=c"})
    with pytest.raises(ValueError, match="upper-case"):
        render_env_file({"lower": "x"})


# --------------------------------------------------------------------------- services


def test_the_service_list_is_valid_and_every_service_has_a_port() -> None:
    names = [spec.name for spec in SERVICES]
    assert len(names) == len(set(names))
    for spec in SERVICES:
        assert spec.name in DEFAULT_PORTS, f"{spec.name} needs a default port"


def test_service_commands_and_env_are_rendered() -> None:
    spec = ServiceSpec(
        name="auth",
        command=("{python}", "-m", "uvicorn", "--host", "{host}", "--port", "{port}"),
        migrate=("{python}", "-m", "hearth.auth.migrate"),
        env={"HEARTH_AUTH_REGISTRY_URL": "http://{host}:{registry_port}"},
    )
    values = {
        "python": sys.executable,
        "host": "127.0.0.1",
        "port": "8101",
        "broker_port": "1884",
        "auth_port": "8101",
        "registry_port": "8102",
        "database_url": "postgresql+asyncpg://postgres@127.0.0.1:5432/hearth",
    }
    assert render_args(spec.command, values)[-4:] == ["--host", "127.0.0.1", "--port", "8101"]
    env = service_env(spec, values)
    assert env == {
        "HEARTH_AUTH_DATABASE_URL": values["database_url"],
        "HEARTH_AUTH_MQTT_HOST": "127.0.0.1",
        "HEARTH_AUTH_MQTT_PORT": "1884",
        "HEARTH_AUTH_JWKS_URL": "http://127.0.0.1:8101/.well-known/jwks.json",
        "HEARTH_AUTH_REPLICA": "0",  # its login svc-auth-0 is bound to client id auth-0
        "HEARTH_AUTH_REGISTRY_URL": "http://127.0.0.1:8102",
    }
    with pytest.raises(KeyError):
        render_args(("{nope}",), values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Auth", "command": ("x",)}, "lower-case word"),
        ({"name": "auth", "command": ()}, "empty command"),
        ({"name": "auth", "command": ("x",), "migrate": ()}, "empty migrate"),
    ],
)
def test_bad_service_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceSpec(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- compose .env


def test_deploy_env_holds_every_platform_secret_and_the_database_password(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".env"
    first = ensure_deploy_env(path)
    assert set(first.created) == {spec.key for spec in SECRET_SPECS} | {POSTGRES_PASSWORD_KEY}
    assert path.stat().st_mode & 0o777 == 0o600
    assert all(len(value) >= 32 for value in first.values.values())
    again = ensure_deploy_env(path)
    assert again.created == ()
    assert again.values == first.values
