"""The native stack: ``hearth up``, ``down``, ``status``, ``restart`` (``make up``...).

``up`` brings the platform up on this machine without Docker, in this order:

1. the secrets file (created or completed: :func:`hearth.platform.secrets.ensure_secrets`);
2. the broker config, rendered with the ``native`` preset into ``var/mosquitto.conf``
   (own port, default 1884: never the system's 1883; with ``HEARTH_TLS`` also MQTT over TLS
   on 8883), and the bootstrap's offline phase (the dynsec file with the admin login, which
   must exist before mosquitto starts); then the front door's site and nginx config
   (:mod:`hearth.platform.front_door`, certificates from :mod:`hearth.platform.tls`);
3. PostgreSQL: the database chosen and remembered by :mod:`hearth.platform.database_choice`
   (an existing server, or a cluster of our own), and the stack's database in it;
4. ``var/stack.env`` and every service's migrations (:data:`hearth.platform.services.SERVICES`);
5. supervisord, detached, running ``var/supervisord.conf``: mosquitto, every service and
   the front door (``web``: nginx), each restarted when it dies
   (:mod:`hearth.platform.supervisor_config`);
6. the bootstrap's online phase (service roles, a bound login per replica), then it waits
   until every service listens or the supervisor gave up on it, and prints where everything
   is.

A process that keeps failing ends in the ``failed`` state (supervisord's FATAL) while the
others run on; ``up`` then says which, with the end of its log, and exits non-zero. ``up``
on a running stack rewrites ``var/stack.env`` and starts what is not running (after a fix);
``restart`` restarts named processes.

What ``up`` started is recorded under ``var/run/`` (pid *and* start time of supervisord, of
each supervised process and of our own PostgreSQL: :mod:`hearth.platform.pids`). ``down``
asks supervisord to stop everything, then stops whatever recorded process still runs (each
checked by identity), and never a PostgreSQL server it did not start.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from hearth.platform import broker_config
from hearth.platform.bootstrap import bootstrap
from hearth.platform.database_choice import (
    SWITCH_ENV,
    DatabaseChoice,
    DatabaseRequest,
    conflicts,
    decide,
    probe_server,
    read_choice,
    refusal,
    write_choice,
)
from hearth.platform.errors import PlatformError
from hearth.platform.front_door import FrontDoorSettings, worker_user
from hearth.platform.front_door import write_config as write_front_door_config
from hearth.platform.front_door_routes import routed_services
from hearth.platform.front_door_site import write_site
from hearth.platform.pids import (
    ProcessRecord,
    is_running,
    read_record,
    rss_bytes,
    seconds_running,
    terminate,
    wait_gone,
    write_record,
)
from hearth.platform.postgres import (
    OwnCluster,
    database_url,
    ensure_database,
    find_pg_bindir,
    host_port,
    server_answers,
    shown_url,
)
from hearth.platform.secrets import ensure_secrets
from hearth.platform.services import SERVICES, ServiceSpec, render_args, service_env
from hearth.platform.stack_config import StackConfig, StackError, port_env
from hearth.platform.stack_files import StartHistory, render_env_file, write_private
from hearth.platform.stack_logs import append_log, last_lines
from hearth.platform.stack_status import PartStatus, StackStatus
from hearth.platform.supervisor_client import ProcessInfo, SupervisorClient
from hearth.platform.supervisor_config import (
    START_RETRIES,
    STOP_WAIT,
    Program,
    render_supervisord_conf,
    socket_path,
)
from hearth.platform.tls import TlsFiles

__all__ = ["PartStatus", "Stack", "StackStatus"]

SUPERVISOR = "supervisord"
BROKER = "mosquitto"
WEB = "web"
"""The front door (nginx), supervised like the services, started after them."""
MQTTS = "mqtts"
"""The broker's MQTT over TLS port (with ``HEARTH_TLS``)."""
POSTGRES_RECORD = "postgres"
STATE_FILE = "stack.json"
FAILED_LINES = 8
"""How many of a failed process's last log lines ``status`` and ``up`` show."""


def _port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _find_program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


@dataclass(slots=True)
class _State:
    """What ``up`` recorded in ``var/run/stack.json`` (mode 0600: the URL may hold a password)."""

    ports: dict[str, int]
    services: list[str]
    postgres_source: Literal["existing", "own"]
    database_url: str
    own_postgres_port: int | None = None
    started: float = field(default_factory=time.time)


class Stack:
    """The native stack of one ``var/`` folder (see the module docstring).

    ``services`` defaults to :data:`~hearth.platform.services.SERVICES`; ``out`` receives
    every line of progress (``print`` by default).
    """

    def __init__(
        self,
        config: StackConfig,
        services: Sequence[ServiceSpec] = SERVICES,
        out: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.services = tuple(services)
        self.out = out
        self.supervisor = SupervisorClient(socket_path(config.var_dir))

    # ----------------------------------------------------------------------- records

    def _record(self, name: str) -> ProcessRecord | None:
        return read_record(self.config.record_file(name))

    def _names(self) -> list[str]:
        """Every supervised process, the broker first."""
        return [BROKER, *(spec.name for spec in self.services), WEB]

    def _recorded_processes(self) -> list[ProcessRecord]:
        """Records of supervised processes, from the record files (any ever recorded)."""
        skip = {SUPERVISOR, POSTGRES_RECORD}
        found = []
        for path in sorted(self.config.run_dir.glob("*.json")):
            if path.stem in skip or path.name == STATE_FILE:
                continue
            record = read_record(path)
            if record is not None:
                found.append(record)
        return found

    def _state(self) -> _State | None:
        try:
            data = json.loads((self.config.run_dir / STATE_FILE).read_text(encoding="utf-8"))
            return _State(**data)
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _write_state(self, state: _State) -> None:
        write_private(self.config.run_dir / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")

    def _own_cluster(self, port: int | None = None) -> OwnCluster:
        return OwnCluster(
            self.config.postgres_dir,
            port or self.config.own_postgres_port,
            self.config.log_dir / "postgres.log",
        )

    def _supervisor_up(self) -> bool:
        return is_running(self._record(SUPERVISOR)) and self.supervisor.reachable()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``up``/``down``/``restart`` at a time per ``var/`` folder."""
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.config.run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _log(self, text: str) -> None:
        self.out(text)
        append_log(self.config.log_file, "hearth", text)

    # ----------------------------------------------------------------------- up

    def up(self) -> StackStatus:
        """Bring the stack up (or repair a running one); return its status."""
        with self._locked():
            if self._supervisor_up():
                return self._repair()
            self._stop_leftovers()
            started_postgres = False
            supervised = False
            try:
                self._check_tools()
                self._check_ports()
                self._prepare_folders()
                self._secrets()
                self._broker_files()
                self._front_door_files()
                choice, server_url, started_postgres = self._postgres()
                db_url = database_url(server_url, self.config.database_name)
                if ensure_database(server_url, self.config.database_name):
                    self._log(f"created database {self.config.database_name}")
                self._remember(choice)
                values = self._values(db_url)
                stack_env = self._write_stack_env(values)
                self._write_state(
                    _State(
                        ports=dict(self.config.ports),
                        services=[spec.name for spec in self.services],
                        postgres_source=choice.source,
                        database_url=db_url,
                        own_postgres_port=(
                            self.config.own_postgres_port if choice.source == "own" else None
                        ),
                    )
                )
                self._migrate(values, stack_env)
                self._write_supervisor_config(values)
                self._start_supervisor()
                supervised = True
                if self._wait_ready([BROKER]):
                    self._bootstrap_online()
                    self._wait_ready([*(spec.name for spec in self.services), WEB])
            except BaseException:
                if not supervised or not self._supervisor_up():
                    self._stop_processes()
                    if started_postgres:
                        self._stop_own_postgres()
                    if read_record(self.config.record_file(POSTGRES_RECORD)) is None:
                        (self.config.run_dir / STATE_FILE).unlink(missing_ok=True)
                else:  # interrupted or the bootstrap failed: stop what this up started
                    self._shutdown()
                    if started_postgres:
                        self._stop_own_postgres()
                raise
            status = self.status()
            self._print_summary(status)
            return status

    def _repair(self) -> StackStatus:
        """``up`` on a running stack: current settings to ``stack.env``, start what is down."""
        state = self._state()
        if state is None:
            raise StackError(
                "supervisord runs but var/run/stack.json is missing: `make down`, then `make up`"
            )
        self._check_database_request()
        self._write_stack_env(self._values(state.database_url))
        self._bootstrap_online()  # logins for replicas added since (HEARTH_<SERVICE>_REPLICAS)
        infos = self.supervisor.processes()
        down = [
            name for name, info in infos.items() if info.state in ("FATAL", "STOPPED", "EXITED")
        ]
        if not down:
            self.out(f"hearth: the stack is already up (supervisord pid {self._pid(SUPERVISOR)})")
        for name in down:
            self._log(f"starting {name} again (it was {infos[name].word})")
            self._forgive(name)
            self.supervisor.start(name)
        if down:
            self._wait_ready(down)
        status = self.status()
        self._print_summary(status)
        return status

    def _pid(self, name: str) -> int | None:
        record = self._record(name)
        return record.pid if record is not None else None

    def _check_database_request(self) -> None:
        """On a running stack: refuse a request for another database (never switched live)."""
        remembered = read_choice(self.config.database_choice)
        request = self._database_request()
        if remembered is None or not conflicts(request, remembered):
            return
        if not request.switch:
            raise refusal(request, remembered)
        raise StackError(
            "the database is switched only while the stack is down: `make down`, then "
            f"`make up {SWITCH_ENV}=yes` with the new settings"
        )

    def _check_tools(self) -> None:
        missing = []
        if _find_program("mosquitto") is None:
            missing.append("mosquitto (the broker)")
        if not self.config.dynsec_file.exists() and _find_program("mosquitto_ctrl") is None:
            missing.append("mosquitto_ctrl (Debian: in the mosquitto package)")
        try:
            broker_config.find_dynsec_plugin()
        except PlatformError:
            missing.append("mosquitto_dynamic_security.so (Debian: in the mosquitto package)")
        if _find_program("nginx") is None:
            missing.append("nginx (the front door; Debian: nginx-light)")
        if missing:
            raise StackError(
                "missing: "
                + "; ".join(missing)
                + ". Run scripts/install-tools as root (or: apt-get install mosquitto nginx-light)"
            )

    def _check_ports(self) -> None:
        wanted = [("broker", self.config.port("broker"))] if self.config.mqtt_plain else []
        wanted += [(spec.name, self.config.port(spec.name)) for spec in self.services]
        wanted.append((WEB, self.config.port(WEB)))
        if self.config.front_door.tls != "off":
            wanted.append((MQTTS, self.config.port(MQTTS)))
        ports = [port for _, port in wanted]
        if len(set(ports)) != len(ports):
            raise StackError(f"two parts of the stack share a port: {wanted}")
        for name, port in wanted:
            if _port_open(self.config.host, port):
                raise StackError(
                    f"port {port} ({name}) is in use by another program: stop it, or choose "
                    f"another port with {port_env(name)}"
                )

    def _prepare_folders(self) -> None:
        for folder in (self.config.var_dir, self.config.run_dir, self.config.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.config.broker_data.mkdir(parents=True, exist_ok=True)
        append_log(self.config.log_file, "hearth", f"up in {self.config.var_dir}")

    def _secrets(self) -> None:
        ensured = ensure_secrets(self.config.secrets_file)
        if ensured.created:
            self._log(f"created {len(ensured.created)} secrets in {ensured.path}")

    def _tls(self) -> TlsFiles | None:
        """The certificate of the front door and the broker's TLS listener (None: TLS off)."""
        return self.config.front_door.tls_files(self.config.tls_dir)

    def _broker_files(self) -> None:
        tls = self._tls()
        settings = broker_config.preset(
            "native",
            base=self.config.var_dir.parent,
            port=self.config.port("broker"),
            persistence_location=self.config.broker_data,
            dynsec_file=self.config.dynsec_file,
            tls_port=self.config.port(MQTTS) if tls else None,
            tls_cert=tls.cert if tls else None,
            tls_key=tls.key if tls else None,
            plain=self.config.mqtt_plain,
        )
        broker_config.write_config(settings, self.config.broker_config)
        result = bootstrap(
            secrets_file=self.config.secrets_file,
            dynsec_file=self.config.dynsec_file,
            offline=True,
        )
        if result.dynsec_file_created:
            self._log(f"created the broker's dynsec file {self.config.dynsec_file}")

    def _front_door_files(self) -> None:
        """The front door's site (docs portal, CA certificate) and nginx config."""
        options = self.config.front_door
        tls = self._tls()
        web = self.config.web_dir
        write_site(web / "site", tls.ca if tls else None)
        host = self.config.host
        settings = FrontDoorSettings(
            listen=f"{host}:{self.config.port(WEB)}",
            upstreams={name: f"{host}:{self.config.port(name)}" for name in routed_services()},
            site_dir=web / "site",
            work_dir=web,
            cors_origins=options.cors_origins,
            tls=tls,
            user=worker_user(),
        )
        write_front_door_config(settings, web / "nginx.conf")

    def _database_request(self) -> DatabaseRequest:
        return DatabaseRequest(
            self.config.postgres_mode,
            self.config.postgres_url,
            self.config.postgres_url_configured,
            self.config.switch_database,
        )

    def _postgres(self) -> tuple[DatabaseChoice, str, bool]:
        """Decide on PostgreSQL and start our own if that is the choice.

        Returns the choice, the server's maintenance URL and whether our cluster was started now.
        """
        cluster = self._own_cluster()
        decision = decide(
            self._database_request(),
            read_choice(self.config.database_choice),
            own_initialized=cluster.initialized,
            have_binaries=find_pg_bindir() is not None,
            probe=probe_server,
        )
        for note in decision.notes:
            self._log(f"PostgreSQL: {note}")
        choice = decision.choice
        if decision.new:
            self._log(f"PostgreSQL: using {choice.describe()} ({choice.reason})")
        if choice.source == "existing":
            return choice, choice.server_url, False
        if cluster.running:
            self._log(f"PostgreSQL: our cluster already runs on port {cluster.port}")
        elif _port_open(self.config.host, cluster.port):
            raise StackError(
                f"port {cluster.port} (our PostgreSQL) is in use by another program: set "
                f"{port_env('own_postgres')}"
            )
        started = not cluster.running
        if cluster.init():
            self._log(f"PostgreSQL: created a cluster in {cluster.data}")
        record = cluster.start(self.config.start_timeout)
        write_record(self.config.record_file(POSTGRES_RECORD), record)
        if started:
            self._log(f"PostgreSQL: started on port {cluster.port} (pid {record.pid})")
        return choice, cluster.url, started

    def _remember(self, choice: DatabaseChoice) -> None:
        if read_choice(self.config.database_choice) != choice:
            write_choice(self.config.database_choice, choice)
            self._log(f"PostgreSQL: the choice is remembered in {self.config.database_choice}")

    def _values(self, db_url: str) -> dict[str, str]:
        values = {
            "python": sys.executable,
            "host": self.config.host,
            "database_url": db_url,
            "var_dir": str(self.config.var_dir),
            "secrets_file": str(self.config.secrets_file),
        }
        values.update({f"{name}_port": str(port) for name, port in self.config.ports.items()})
        values.update(self._mqtt_values())
        return values

    def _mqtt_values(self) -> dict[str, str]:
        """How services and devices reach the broker (services.py: ``{service_mqtt_port}``...).

        Services use plain MQTT while it is on, else TLS trusting the CA; with TLS on, the
        config download tells devices the TLS port and hands them the CA.
        """
        tls = self._tls()
        ca = str(tls.ca) if tls is not None and tls.ca is not None else ""
        plain = self.config.mqtt_plain
        return {
            "service_mqtt_port": str(self.config.port("broker" if plain else MQTTS)),
            "service_mqtt_ca_file": "" if plain else ca,
            "device_mqtt_port": str(self.config.port("broker" if tls is None else MQTTS)),
            "device_mqtt_tls": "false" if tls is None else "true",
            "device_mqtt_ca_file": ca,
        }

    @property
    def _broker_port(self) -> int:
        """The port the broker's admin and readiness checks use (TLS when plain is off)."""
        return self.config.port("broker" if self.config.mqtt_plain else MQTTS)

    @property
    def _broker_ca(self) -> Path | None:
        """The CA to trust on :attr:`_broker_port` (None: plain MQTT)."""
        tls = None if self.config.mqtt_plain else self._tls()
        return tls.ca if tls is not None else None

    def _service_values(self, spec: ServiceSpec, values: Mapping[str, str]) -> dict[str, str]:
        return {**values, "port": str(self.config.port(spec.name))}

    def _write_stack_env(self, values: Mapping[str, str]) -> dict[str, str]:
        """``var/stack.env``: the operator's ``HEARTH_*`` settings, then the stack's own.

        supervisord runs without the operator's ``HEARTH_*`` variables, so what a process
        gets is exactly this file: a setting fixed (or removed) for the next ``up`` reaches
        the processes it starts.
        """
        env = {key: value for key, value in os.environ.items() if key.startswith("HEARTH_")}
        env.update(
            {
                "HEARTH_VAR_DIR": values["var_dir"],
                "HEARTH_SECRETS_FILE": values["secrets_file"],
                "HEARTH_DATABASE_URL": values["database_url"],
                "HEARTH_BROKER_HOST": values["host"],
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({port_env(name): str(port) for name, port in self.config.ports.items()})
        for spec in self.services:
            env.update(service_env(spec, self._service_values(spec, values)))
        write_private(self.config.stack_env, render_env_file(env))
        return env

    def _migrate(self, values: Mapping[str, str], stack_env: Mapping[str, str]) -> None:
        for spec in self.services:
            if spec.migrate is None:
                continue
            argv = render_args(spec.migrate, self._service_values(spec, values))
            self._log(f"migrating {spec.name}")
            proc = subprocess.run(
                argv,
                cwd=self.config.project_dir,
                env={**os.environ, **stack_env},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            output = (proc.stdout + proc.stderr).strip()
            if output:
                append_log(self.config.log_file, f"migrate-{spec.name}", output)
            if proc.returncode != 0:
                tail = "\n".join(output.splitlines()[-15:])
                raise StackError(
                    f"the migrations of {spec.name} failed (exit {proc.returncode}):\n{tail}"
                )

    def _wrapped(self, name: str, argv: Sequence[str]) -> tuple[str, ...]:
        """``argv`` run through pidexec: recorded, with ``stack.env``, starts counted."""
        return (
            sys.executable, "-m", "hearth.platform.pidexec",
            "--env-file", str(self.config.stack_env),
            "--starts", str(self.config.starts_file(name)),
            str(self.config.record_file(name)), name, "--", *argv,
        )  # fmt: skip

    def _programs(self, values: Mapping[str, str]) -> list[Program]:
        mosquitto = _find_program("mosquitto")
        assert mosquitto is not None  # _check_tools made sure
        broker_argv = (mosquitto, "-c", str(self.config.broker_config))
        programs = [
            Program(
                BROKER,
                self._wrapped(BROKER, broker_argv),
                self.config.process_log(BROKER),
                startsecs=1,
                priority=10,
            )
        ]
        for spec in self.services:
            argv = render_args(spec.command, self._service_values(spec, values))
            programs.append(
                Program(
                    spec.name, self._wrapped(spec.name, argv), self.config.process_log(spec.name)
                )
            )
        nginx = _find_program("nginx")
        assert nginx is not None  # _check_tools made sure
        web = self.config.web_dir
        web_argv = (nginx, "-p", str(web), "-e", "stderr", "-c", str(web / "nginx.conf"))
        programs.append(
            Program(
                WEB,
                self._wrapped(WEB, web_argv),
                self.config.process_log(WEB),
                startsecs=1,
                priority=30,
            )
        )
        return programs

    def _write_supervisor_config(self, values: Mapping[str, str]) -> None:
        text = render_supervisord_conf(
            self._programs(values),
            var_dir=self.config.var_dir,
            project_dir=self.config.project_dir,
            log_file=self.config.process_log(SUPERVISOR),
        )
        write_private(self.config.supervisor_config, text)

    def _start_supervisor(self) -> None:
        for name in self._names():
            self.config.record_file(name).unlink(missing_ok=True)
            self.config.starts_file(name).unlink(missing_ok=True)
        record_file = self.config.record_file(SUPERVISOR)
        record_file.unlink(missing_ok=True)
        conf = str(self.config.supervisor_config)
        supervisord = [sys.executable, "-m", "supervisor.supervisord", "-c", conf]
        launcher = [
            sys.executable, "-m", "hearth.platform.pidexec", "--detach",
            "--log", str(self.config.log_file), str(record_file), SUPERVISOR, "--", *supervisord,
        ]  # fmt: skip
        # The operator's HEARTH_* settings reach the processes through stack.env only.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        proc = subprocess.run(
            launcher,
            cwd=self.config.project_dir,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        record = self._record(SUPERVISOR)
        if proc.returncode != 0 or record is None:
            raise StackError(f"cannot start supervisord: {proc.stderr.strip()}")
        deadline = time.monotonic() + self.config.start_timeout
        while not self.supervisor.reachable():
            if not record.running():
                tail = "\n".join(last_lines(self.config.log_file, 15))
                raise StackError(f"supervisord exited at start; the log's end:\n{tail}")
            if time.monotonic() >= deadline:
                raise StackError(
                    f"supervisord did not answer within {self.config.start_timeout:g} s"
                )
            time.sleep(0.05)
        self._log(
            f"started supervisord (pid {record.pid}); logs in {self.config.log_dir}, "
            f"config {self.config.supervisor_config}"
        )

    def _ready(self, name: str, info: ProcessInfo | None) -> bool:
        return (
            info is not None
            and info.state in ("RUNNING", "STARTING")
            and _port_open(
                self.config.host, self._broker_port if name == BROKER else self.config.port(name)
            )
        )

    def _wait_ready(self, names: Sequence[str]) -> bool:
        """Wait until each process listens or the supervisor gave up on it; True if all listen.

        The wait ends after ``start_timeout`` unless a process is still being retried (its
        retries are bounded: it ends running or failed), and after three times that at most.
        """
        start = time.monotonic()
        timeout = self.config.start_timeout
        waiting = list(names)
        delay = 0.02
        while True:
            infos = self.supervisor.processes()
            waiting = [
                name for name in waiting
                if not self._ready(name, infos.get(name))
                and (infos.get(name) is None or infos[name].state != "FATAL")
            ]  # fmt: skip
            if not waiting:
                break
            elapsed = time.monotonic() - start
            retrying = any(infos[n].state == "BACKOFF" for n in waiting if n in infos)
            if elapsed >= timeout * 3 or (elapsed >= timeout and not retrying):
                for name in waiting:
                    self._log(f"{name} did not listen within {elapsed:.0f} s (still trying)")
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        infos = self.supervisor.processes()
        failed = [name for name in names if name in infos and infos[name].state == "FATAL"]
        for name in failed:
            self._log(f"{name} failed: the supervisor gave up on it (see below)")
        return not failed

    def _bootstrap_online(self) -> None:
        result = bootstrap(
            secrets_file=self.config.secrets_file,
            host=self.config.host,
            port=self._broker_port,
            wait=min(self.config.start_timeout, 5.0),  # it listened a moment ago
            ca_file=self._broker_ca,
        )
        for change in result.changes:
            self._log(f"broker: {change}")

    def _print_summary(self, status: StackStatus) -> None:
        word = "up" if status.up else "NOT fully up"
        self.out(f"\nThe Hearth stack is {word} (var: {self.config.var_dir}):")
        for line in status.lines():
            self.out(line)
        for part in status.failed:
            self.out(
                f"{part.name} FAILED: fix the cause shown above (full log: "
                f"{self.config.process_log(part.name)}), then `make up` starts it again"
            )
        if not self.services:
            self.out(
                "  (no services yet: each service's issue adds it to hearth.platform.services)"
            )
        self.out("")
        for line in self._urls(status):
            self.out(line)
        self.out(
            f"Admin:    login `admin`; its password is HEARTH_AUTH_ADMIN_PASSWORD in "
            f"{self.config.secrets_file} (mode 0600; never commit it)"
        )
        self.out(
            f"Logs:     make logs  (one process: make logs SERVICE=ingest; files in "
            f"{self.config.log_dir})"
        )
        self.out("Status:   make status      Stop: make down (stops only what make up started)")

    def _urls(self, status: StackStatus) -> list[str]:
        host = self.config.host
        lines = []
        web = f"{self.config.front_door.scheme}://{host}:{self.config.port(WEB)}"
        lines.append(f"{'web:':<9} {web}/  (every API on one origin; docs: {web}/docs/)")
        if self.config.front_door.tls == "generated":
            lines.append(f"{'CA:':<9} {web}/tls/ca.crt  (the platform's CA: trust it)")
        for spec in self.services:
            lines.append(f"{spec.name + ':':<9} http://{host}:{self.config.port(spec.name)}/docs")
        if self.config.mqtt_plain:
            lines.append(
                f"{'broker:':<9} mqtt://{host}:{self.config.port('broker')}  (logins only: "
                "services from the secrets file, devices from the registry)"
            )
        if self.config.front_door.tls != "off":
            lines.append(
                f"{'mqtts:':<9} mqtts://{host}:{self.config.port(MQTTS)}  (MQTT over TLS, the "
                "same logins; plain MQTT " + ("on too)" if self.config.mqtt_plain else "off)")
            )
        if status.database:
            lines.append(f"{'database:':<9} {status.database}")
        return lines

    # ----------------------------------------------------------------------- restart

    def restart(self, names: Sequence[str]) -> StackStatus:
        """Restart the named processes (all when empty) with the current ``stack.env``."""
        with self._locked():
            if not self._supervisor_up():
                raise StackError("the stack is not up: `make up` starts it")
            infos = self.supervisor.processes()
            unknown = [name for name in names if name not in infos]
            if unknown:
                raise StackError(
                    f"no such process: {', '.join(unknown)} (known: {', '.join(infos)})"
                )
            chosen = list(names) or list(infos)
            for name in chosen:
                self._log(f"restarting {name}")
                self._forgive(name)
                self.supervisor.stop(name)
                self.supervisor.start(name)
            self._wait_ready(chosen)
            return self.status()

    def _forgive(self, name: str) -> None:
        """An operator asked for a fresh start: the crash-loop guard forgets earlier starts."""
        path = self.config.starts_file(name)
        history = StartHistory.read(path)
        history.forgive()
        history.write(path)

    # ----------------------------------------------------------------------- down

    def down(self) -> list[str]:
        """Stop what ``up`` started; return the names of what was stopped ([] if nothing)."""
        with self._locked():
            stopped = [f"{r.name} (pid {r.pid})" for r in self._shutdown()]
            own = self._stop_own_postgres()
            if own:
                stopped.append(own)
            (self.config.run_dir / STATE_FILE).unlink(missing_ok=True)
        if stopped:
            self._log("stopped " + ", ".join(stopped))
        else:
            self.out("hearth: nothing to stop (the stack is not up)")
        return stopped

    def _shutdown(self) -> list[ProcessRecord]:
        """supervisord stops its processes and exits; then whatever recorded still runs."""
        supervisor = self._record(SUPERVISOR)
        running = [r for r in (supervisor, *self._recorded_processes()) if is_running(r)]
        if supervisor is not None and supervisor.running():
            try:
                self.supervisor.shutdown()
                # it stops each process (SIGTERM, SIGKILL after STOP_WAIT s), in turn
                grace = STOP_WAIT * (len(self._names()) + 1) + 5.0
                wait_gone([supervisor], grace)
            except (StackError, OSError):
                pass  # not answering: stopped below, with its processes
        self._stop_processes()
        return [r for r in running if r is not None]

    def _stop_processes(self) -> list[ProcessRecord]:
        """Stop supervisord and every recorded process still running; remove their records."""
        supervisor = self._record(SUPERVISOR)
        children = self._recorded_processes()
        running = [r for r in (supervisor, *children) if r is not None and r.running()]
        if supervisor is not None:
            terminate([supervisor], timeout=STOP_WAIT * 2.0)
        terminate(children, timeout=float(STOP_WAIT))
        for path in self.config.run_dir.glob("*"):
            kept = path.stem == POSTGRES_RECORD or path.name == STATE_FILE
            if path.suffix in (".json", ".starts") and not kept:
                path.unlink(missing_ok=True)
        return running

    def _stop_leftovers(self) -> None:
        """Before a new ``up``: stop processes a dead supervisord left behind (a kill -9)."""
        left = [r for r in self._recorded_processes() if r.running()]
        if left:
            names = ", ".join(f"{r.name} (pid {r.pid})" for r in left)
            self._log(f"stopping what a previous run left behind: {names}")
        self._stop_processes()

    def _stop_own_postgres(self) -> str | None:
        """Stop the PostgreSQL cluster ``up`` started, if any; never another server."""
        record_file = self.config.record_file(POSTGRES_RECORD)
        record = read_record(record_file)
        if record is None:
            return None
        state = self._state()
        port = state.own_postgres_port if state and state.own_postgres_port else None
        cluster = self._own_cluster(port)
        postmaster = cluster.postmaster()
        if record.running() and postmaster == record:
            try:
                cluster.stop(self.config.start_timeout)
            except StackError as exc:
                self.out(f"hearth: pg_ctl stop failed ({exc}); stopping the postmaster directly")
                terminate([record], timeout=30.0, signum=signal.SIGINT)
            wait_gone([record], 10.0)
        record_file.unlink(missing_ok=True)
        return f"postgres (pid {record.pid})" if not record.running() else None

    # ----------------------------------------------------------------------- status

    def status(self) -> StackStatus:
        """Each part: supervisord, the broker, the database and every service."""
        state = self._state()
        ports = dict(self.config.ports)
        if state is not None:
            ports.update(state.ports)
        infos: dict[str, ProcessInfo] = {}
        supervisor = self._record(SUPERVISOR)
        if is_running(supervisor):
            try:
                infos = self.supervisor.processes()
            except (StackError, OSError):
                infos = {}
        parts = [self._supervisor_part(supervisor, bool(infos))]
        broker_port = ports["broker"] if self.config.mqtt_plain else ports[MQTTS]
        parts.append(self._process_part(BROKER, "broker", broker_port, infos))
        parts.append(self._database_part(state))
        names = state.services if state is not None else [s.name for s in self.services]
        for name in names:
            parts.append(self._process_part(name, "service", ports.get(name), infos))
        parts.append(self._process_part(WEB, "web", ports.get(WEB), infos))
        return StackStatus(self.config.var_dir, tuple(parts), self._database_line(state))

    def _supervisor_part(self, record: ProcessRecord | None, answers: bool) -> PartStatus:
        running = is_running(record)
        assert record is not None or not running
        state = "running" if running and answers else ("not answering" if running else "down")
        return PartStatus(
            SUPERVISOR,
            "supervisor",
            running and answers,
            state,
            pid=record.pid if running and record else None,
            uptime=seconds_running(record) if running and record else None,
            rss=rss_bytes(record.pid) if running and record else None,
        )

    def _process_part(
        self,
        name: str,
        kind: Literal["broker", "service", "web"],
        port: int | None,
        infos: Mapping[str, ProcessInfo],
    ) -> PartStatus:
        host = self.config.host
        address = f"{host}:{port}" if port is not None else None
        listening = port is None or _port_open(host, port)
        history = StartHistory.read(self.config.starts_file(name))
        restarts = max(history.count - 1, 0) if history.count else None
        info = infos.get(name)
        if info is None:  # no supervisor: an orphan from a killed supervisord, or nothing
            record = self._record(name)
            running = is_running(record)
            pid = record.pid if running and record is not None else None
            state = "running (unsupervised)" if running else "down"
            detail = "port in use by another program" if listening and not running else ""
            return PartStatus(
                name, kind, False, state, address, pid, restarts=restarts,
                rss=rss_bytes(pid) if pid else None, detail=detail,
            )  # fmt: skip
        detail = ""
        lines: tuple[str, ...] = ()
        if info.state == "FATAL":
            detail = f"gave up after {START_RETRIES + 1} tries in a row"
            if info.spawn_error and not info.spawn_error.startswith("Exited too quickly"):
                detail += f": {info.spawn_error}"  # could not even be spawned
            else:
                detail += ": it exited within its first seconds each time; the end of its log:"
            lines = tuple(last_lines(self.config.process_log(name), FAILED_LINES))
        elif info.state == "BACKOFF":
            detail = "exited at start; trying again after a pause"
        elif info.state in ("RUNNING", "STARTING") and not listening:
            detail = "not listening yet"
        up = info.state in ("RUNNING", "STARTING") and listening
        return PartStatus(
            name, kind, up, info.word, address, info.pid, info.uptime, restarts,
            rss_bytes(info.pid) if info.pid else None, detail, lines,
        )  # fmt: skip

    def _database_part(self, state: _State | None) -> PartStatus:
        if state is None:
            url, pid, detail = self.config.postgres_url, None, "not started by hearth"
        else:
            url = state.database_url
            own = read_record(self.config.record_file(POSTGRES_RECORD))
            pid = own.pid if is_running(own) and own is not None else None
            where = "our own cluster" if state.postgres_source == "own" else "existing server"
            detail = f"{shown_url(url)} ({where})"
        host, port = host_port(url)
        answers = server_answers(url)
        return PartStatus(
            "database", "database", answers, "answering" if answers else "not answering",
            f"{host}:{port}", pid, detail=detail,
        )  # fmt: skip

    def _database_line(self, state: _State | None) -> str:
        choice = read_choice(self.config.database_choice)
        if choice is None or state is None:
            return ""
        return (
            f"{shown_url(state.database_url)} ({choice.describe()}; chosen {choice.since}: "
            f"{choice.reason}; remembered in {self.config.database_choice})"
        )
