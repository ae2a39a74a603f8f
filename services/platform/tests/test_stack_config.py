"""The native stack's configuration, PostgreSQL decision, rendered files and service list."""

from __future__ import annotations

import configparser
import shlex
import sys
from pathlib import Path

import pytest

from hearth.platform.database_choice import (
    DatabaseChoice,
    DatabaseRequest,
    Decision,
    decide,
    read_choice,
    write_choice,
)
from hearth.platform.database_choice import Probe as ProbeResult
from hearth.platform.deploy_env import POSTGRES_PASSWORD_KEY, ensure_deploy_env
from hearth.platform.postgres import asyncpg_dsn, database_url, host_port, shown_url
from hearth.platform.secrets import SECRET_SPECS, parse_dotenv
from hearth.platform.services import SERVICES, ServiceSpec, render_args, service_env
from hearth.platform.stack_config import DEFAULT_PORTS, StackConfig, StackError, port_env
from hearth.platform.stack_files import render_env_file
from hearth.platform.supervisor_config import (
    LOG_MAX_BYTES,
    START_RETRIES,
    Program,
    render_supervisord_conf,
    socket_path,
)

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
        "mqtts": 8883,
    }
    assert config.port("broker") != 1883  # never the system's broker
    assert config.var_dir == tmp_path.resolve() / "var"
    assert config.secrets_file == config.var_dir / "secrets.env"
    assert config.postgres_mode == "auto"
    assert config.postgres_url == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert config.postgres_url_configured is False  # the default: "nothing configured"
    assert config.switch_database is False
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
        "HEARTH_POSTGRES_SWITCH": "yes",
    }
    config = StackConfig.from_env(env, cwd=tmp_path)
    assert config.var_dir == tmp_path.resolve() / "state"
    assert config.secrets_file == Path("/etc/hearth/secrets.env")
    assert config.port("broker") == 21884
    assert config.port("auth") == 28101
    assert config.port("registry") == 8102
    assert config.postgres_mode == "own"
    assert config.postgres_url == env["HEARTH_POSTGRES_URL"]
    assert config.postgres_url_configured is True
    assert config.switch_database is True
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
        ("HEARTH_POSTGRES_SWITCH", "please", "say yes"),
        ("HEARTH_MQTT_PLAIN", "maybe", "say on or off"),
        ("HEARTH_MQTT_PLAIN", "off", "needs MQTT over TLS"),  # without HEARTH_TLS
    ],
)
def test_bad_values_are_refused_naming_the_variable(key: str, value: str, message: str) -> None:
    with pytest.raises(StackError, match=message) as caught:
        StackConfig.from_env({key: value})
    assert key in str(caught.value)


def test_plain_mqtt_is_on_unless_turned_off_with_tls(tmp_path: Path) -> None:
    assert StackConfig.from_env({}, cwd=tmp_path).mqtt_plain is True
    on_tls = {"HEARTH_TLS": "generated", "HEARTH_MQTT_PLAIN": "off"}
    assert StackConfig.from_env(on_tls, cwd=tmp_path).mqtt_plain is False
    files = {
        "HEARTH_TLS": "files",
        "HEARTH_TLS_CERT_FILE": "c.pem",
        "HEARTH_TLS_KEY_FILE": "k.pem",
        "HEARTH_MQTT_PLAIN": "off",
    }
    with pytest.raises(StackError, match="HEARTH_TLS_CA_FILE"):
        StackConfig.from_env(files, cwd=tmp_path)
    config = StackConfig.from_env({**files, "HEARTH_TLS_CA_FILE": "ca.pem"}, cwd=tmp_path)
    assert config.front_door.tls_ca == tmp_path.resolve() / "ca.pem"


def test_port_env_names() -> None:
    assert port_env("broker") == "HEARTH_BROKER_PORT"
    assert port_env("own_postgres") == "HEARTH_OWN_POSTGRES_PORT"
    assert set(DEFAULT_PORTS) >= {"broker", "auth", "registry", "ingest", "realtime", "web"}


# --------------------------------------------------------------------------- PostgreSQL decision

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
OTHER = "postgresql://hearth:pw@db.example:5432/postgres"
SINCE = "2026-11-29T10:00:00+0000"


class Probe:
    """A stand-in for the server probe that counts its calls."""

    def __init__(self, answer: str = "answers", detail: str = "") -> None:
        self.result = ProbeResult(answer, detail)  # type: ignore[arg-type]
        self.calls: list[str] = []

    def __call__(self, url: str) -> ProbeResult:
        self.calls.append(url)
        return self.result


def _decide(
    request: DatabaseRequest,
    remembered: DatabaseChoice | None = None,
    probe: Probe | None = None,
    *,
    own_initialized: bool = False,
    have_binaries: bool = True,
) -> Decision:
    return decide(
        request,
        remembered,
        own_initialized=own_initialized,
        have_binaries=have_binaries,
        probe=probe or Probe(),
        now=lambda: SINCE,
    )


NOTHING = DatabaseRequest("auto", SERVER, url_configured=False)
OWN_ASKED = DatabaseRequest("own", SERVER, url_configured=False)
URL_ASKED = DatabaseRequest("auto", OTHER, url_configured=True)
OWN_CHOICE = DatabaseChoice("own", "", SINCE, "asked for")
SERVER_CHOICE = DatabaseChoice("existing", SERVER, SINCE, "asked for")


def test_nothing_configured_uses_the_default_server_when_it_answers() -> None:
    probe = Probe("answers")
    decision = _decide(NOTHING, probe=probe)
    assert (decision.choice.source, decision.choice.server_url, decision.new) == (
        "existing", SERVER, True)  # fmt: skip
    assert probe.calls == [SERVER]


def test_own_cluster_only_when_nothing_configured_and_nothing_answers() -> None:
    decision = _decide(NOTHING, probe=Probe("no_answer", "connection refused"))
    assert decision.choice.source == "own"
    assert "nothing configured and nothing answers" in decision.choice.reason
    own = _decide(OWN_ASKED, probe=Probe("no_answer"))
    assert own.choice.source == "own"
    assert "HEARTH_POSTGRES=own" in own.choice.reason


@pytest.mark.parametrize("answer", ["no_answer", "login_refused", "no_database"])
def test_an_explicit_url_that_fails_is_an_error_never_our_own_cluster(answer: str) -> None:
    with pytest.raises(StackError) as caught:
        _decide(URL_ASKED, probe=Probe(answer, "the driver's words"))
    message = str(caught.value)
    expected = {
        "no_answer": "no PostgreSQL answers at postgresql://hearth:***@db.example:5432/postgres",
        "login_refused": "answered but refused the login",
        "no_database": "answered but has no such database",
    }[answer]
    assert expected in message
    assert "the driver's words" in message
    assert "pw@" not in message  # never the password


def test_a_refused_login_on_the_default_is_not_taken_for_nothing_answering() -> None:
    with pytest.raises(StackError, match=r"answers on the default URL .* but refused the login"):
        _decide(NOTHING, probe=Probe("login_refused", "role does not exist"))


def test_the_remembered_choice_is_kept_and_a_different_request_is_refused() -> None:
    kept = _decide(NOTHING, OWN_CHOICE, Probe("answers"), own_initialized=True)
    assert (kept.choice, kept.new) == (OWN_CHOICE, False)
    with pytest.raises(StackError) as caught:
        _decide(URL_ASKED, OWN_CHOICE, own_initialized=True)
    message = str(caught.value)
    assert "this stack uses the stack's own cluster in var/postgres" in message
    assert "Nothing was switched" in message
    assert "HEARTH_POSTGRES_SWITCH=yes" in message
    with pytest.raises(StackError, match="uses the existing server"):
        _decide(OWN_ASKED, SERVER_CHOICE)
    same = _decide(DatabaseRequest("existing", SERVER, url_configured=True), SERVER_CHOICE)
    assert same.choice == SERVER_CHOICE  # asking for what is in use is no switch


def test_the_explicit_word_switches_and_says_so() -> None:
    switch = DatabaseRequest("auto", OTHER, url_configured=True, switch=True)
    decision = _decide(switch, OWN_CHOICE, Probe("answers"), own_initialized=True)
    assert (decision.choice.source, decision.choice.server_url, decision.new) == (
        "existing", OTHER, True)  # fmt: skip
    assert any("switching away from the stack's own cluster" in n for n in decision.notes)


def test_a_remembered_server_that_stopped_answering_is_an_error() -> None:
    with pytest.raises(StackError, match=r"no PostgreSQL answers at .*never falls back"):
        _decide(NOTHING, SERVER_CHOICE, Probe("no_answer", "connection refused"))


def test_an_older_var_with_a_cluster_keeps_using_it() -> None:
    probe = Probe()
    decision = _decide(NOTHING, None, probe, own_initialized=True)
    assert decision.choice.source == "own"
    assert probe.calls == []


def test_nothing_to_use_and_nothing_to_start_says_what_to_install() -> None:
    with pytest.raises(StackError, match="apt-get install postgresql"):
        _decide(NOTHING, probe=Probe("no_answer"), have_binaries=False)
    with pytest.raises(StackError, match="HEARTH_POSTGRES=own needs initdb"):
        _decide(OWN_ASKED, have_binaries=False)


def test_the_choice_round_trips_through_its_private_file(tmp_path: Path) -> None:
    path = tmp_path / "database.json"
    assert read_choice(path) is None
    write_choice(path, SERVER_CHOICE)
    assert read_choice(path) == SERVER_CHOICE
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    with pytest.raises(StackError, match="damaged"):
        read_choice(path)


def test_messages_never_show_a_database_password() -> None:
    url = "postgresql://hearth:s3cr3t-value@db:5432/postgres"
    with pytest.raises(StackError) as caught:
        _decide(DatabaseRequest("existing", url, url_configured=True), probe=Probe("no_answer"))
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


def test_supervisord_config_restarts_with_back_off_and_rotates_logs(tmp_path: Path) -> None:
    var = tmp_path / "var dir"
    broker = Program("mosquitto", ("/usr/sbin/mosquitto", "-c", "/a b/m%.conf"),
                     var / "log" / "mosquitto.log", startsecs=1, priority=10)  # fmt: skip
    text = render_supervisord_conf(
        [broker, Program("ingest", ("python", "-m", "x"), var / "log" / "ingest.log")],
        var_dir=var,
        project_dir=tmp_path,
        log_file=var / "log" / "supervisord.log",
    )
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    program = parser["program:mosquitto"]
    command = program["command"].replace("%%", "%")  # supervisord's own escaping
    assert shlex.split(command) == ["/usr/sbin/mosquitto", "-c", "/a b/m%.conf"]
    assert program["autorestart"] == "true"
    assert program["startretries"] == str(START_RETRIES)
    assert program["startsecs"] == "1"
    assert program["stdout_logfile_maxbytes"] == str(LOG_MAX_BYTES)
    assert int(program["stdout_logfile_backups"]) >= 1
    assert parser["program:ingest"]["startsecs"] == "5"
    assert parser["unix_http_server"]["chmod"] == "0700"
    assert parser["supervisord"]["nodaemon"] == "true"
    with pytest.raises(ValueError, match="unique"):
        render_supervisord_conf([broker, broker], var_dir=var, project_dir=tmp_path,
                                log_file=var / "s.log")  # fmt: skip
    with pytest.raises(ValueError, match="process name"):
        Program("bad name", ("x",), var / "x.log")


def test_the_control_socket_path_fits_a_unix_socket(tmp_path: Path) -> None:
    short = socket_path(Path("/srv/hearth/var"))
    assert short == Path("/srv/hearth/var/run/supervisor.sock")
    deep = socket_path(tmp_path / ("x" * 120) / "var")
    assert len(str(deep)) < 108
    assert deep == socket_path(tmp_path / ("x" * 120) / "var")  # stable for the same var/
    assert deep != socket_path(tmp_path / ("y" * 120) / "var")


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
        "service_mqtt_port": "1884",
        "service_mqtt_ca_file": "",
        "auth_port": "8101",
        "registry_port": "8102",
        "database_url": "postgresql+asyncpg://postgres@127.0.0.1:5432/hearth",
    }
    assert render_args(spec.command, values)[-4:] == ["--host", "127.0.0.1", "--port", "8101"]
    env = service_env(spec, values)
    expected = {
        "HEARTH_AUTH_DATABASE_URL": values["database_url"],
        "HEARTH_AUTH_MQTT_HOST": "127.0.0.1",
        "HEARTH_AUTH_MQTT_PORT": "1884",
        "HEARTH_AUTH_JWKS_URL": "http://127.0.0.1:8101/.well-known/jwks.json",
        "HEARTH_AUTH_REPLICA": "0",  # its login svc-auth-0 is bound to client id auth-0
        "HEARTH_AUTH_REGISTRY_URL": "http://127.0.0.1:8102",
    }
    assert env == expected  # no CA file: the variable is not set at all (plain MQTT)
    # Plain MQTT off: the TLS port and the CA the service trusts.
    tls = service_env(spec, {**values, "service_mqtt_port": "8883", "service_mqtt_ca_file": "/ca"})
    assert tls == {**expected, "HEARTH_AUTH_MQTT_PORT": "8883", "HEARTH_AUTH_MQTT_CA_FILE": "/ca"}
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
